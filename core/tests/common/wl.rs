//! The workload program of the container tests (`data/workloads/wl.c`, one mode per kind of
//! kernel object): built once per test binary, copied into a busybox rootfs, and read back
//! from the `/counter` it rewrites every 50 ms with its round and the first fault it saw.

use super::containers::busybox_rootfs;
use super::not_exercised;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The program, built with `gcc -static` into the target's scratch directory (not /tmp:
/// nothing is left there) under `name`. None (said so) when gcc cannot link a static program.
pub fn binary(name: &str) -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/workloads/wl.c");
        // Cargo gives integration tests a scratch directory; the soak bench, which shares
        // this module, gets none and never builds the program.
        let scratch =
            option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let out = scratch.join(name);
        match Command::new("gcc")
            .args(["-static", "-pthread", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
        {
            Ok(o) if o.status.success() => Some(out),
            Ok(o) => {
                not_exercised(&format!(
                    "{name}: gcc -static failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
                None
            }
            Err(e) => {
                not_exercised(&format!("{name}: no gcc: {e}"));
                None
            }
        }
    })
    .clone()
}

/// A busybox rootfs at `rootfs` with the program as `/bin/wl`.
pub fn rootfs(rootfs: &Path, program: &Path) {
    busybox_rootfs(rootfs, &["bin", "proc", "sys", "dev", "tmp"], &["sh"]);
    std::fs::copy(program, rootfs.join("bin/wl")).unwrap();
}

/// The round the workload in `bundle` last reported and the first fault it saw.
pub fn round(bundle: &Path) -> (u64, i32) {
    let s = std::fs::read_to_string(bundle.join("rootfs/counter")).unwrap_or_default();
    let mut it = s.split_whitespace();
    let r = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let f = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (r, f)
}

/// Waits (up to 10 s) for round `n` of the workload in `bundle`, asserting no fault was seen.
pub fn wait_round(bundle: &Path, n: u64, what: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (r, f) = round(bundle);
        assert_eq!(
            f, 0,
            "the workload saw fault {f} (round {r}) waiting for {what}"
        );
        if r >= n {
            return;
        }
        assert!(Instant::now() < end, "round {r}, waiting for {n}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines of CRIU's `what`.log in `images` that report an error.
pub fn log_errors(images: &Path, what: &str) -> String {
    std::fs::read_to_string(images.join(format!("{what}.log")))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Error") || l.contains("rror ("))
        .collect::<Vec<_>>()
        .join("\n")
}
