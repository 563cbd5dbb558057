//! Checkpoint archive speed, side by side in one run (medians of the rounds):
//!
//! 1. Throughput: a process with 1 GiB resident (half random bytes, half repeated text) is
//!    checkpointed once by CRIU through ckpt (leave-running); its images are then exported
//!    (zstd level 1, gzip level 1, none) and imported, each round timing ckpt alone.
//!    Throughput is the images' bytes over the time.
//! 2. Against Podman 4.3.1 for a busybox container: `podman container checkpoint --export`
//!    (CRIU dump included) against `runc checkpoint` plus ckpt's export of those images, and
//!    `podman container restore --import` against ckpt's import (verify + unpack + spec).
//!    The restore through ckpt needs the container layer; it is not on this branch.
//!
//! Run as root after scripts/setup.sh: `cargo run --release -p ckpt-core --example archive-bench`
//! (`CKPT_BENCH_ROUNDS`, default 5; `CKPT_BENCH_SKIP_PODMAN=1` skips part 2;
//! `CKPT_BENCH_DIR` is where images and archives go, default the temporary directory).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ckpt::archive::{self, Compression, EngineConfig, ExportRequest, ImportOptions};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn dir_bytes(p: &Path) -> u64 {
    fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn spec() -> serde_json::Value {
    serde_json::json!({"ociVersion": "1.0.2", "process": {"args": ["python3"], "cwd": "/"}, "root": {"path": "/"}})
}

fn ok(c: &mut Command) {
    let o = c.output().expect("spawn");
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn out(c: &mut Command) -> String {
    let o = c.output().expect("spawn");
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn throughput(base: &Path, rounds: usize) {
    let py = std::env::var("CKPT_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let script = "import os,sys,time\n\
        a=bytearray(os.urandom(512<<20))\n\
        t=(b'the quick brown fox jumps over the lazy dog 0123456789\\n'*((512<<20)//55+1))[:512<<20]\n\
        c=bytearray(t)\n\
        del t\n\
        print('ready',flush=True)\n\
        time.sleep(3600)\n";
    let mut cmd = Command::new(py);
    cmd.args(["-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let images = base.join("big-img");
    let mut o = ckpt::Options::new();
    o.set_image_path(&images).expect("image path");
    o.set_leave_running(true);
    let t = Instant::now();
    let r = ckpt::ops::checkpoint(&o, child.id() as i32);
    let dump = t.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let stats = r.expect("checkpoint of the 1 GiB process");
    let bytes = dir_bytes(&images);
    println!(
        "1 GiB-resident process: CRIU dump through ckpt {:.2} s, images {:.0} MiB ({:.2} GB/s for CRIU)",
        secs(dump),
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / secs(dump) / 1e9
    );
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "compression", "export s", "GB/s", "import s", "GB/s", "ratio"
    );
    for (c, no_sync) in [
        (Compression::default(), false),
        (Compression::default(), true),
        (Compression::Gzip { level: 1 }, true),
        (Compression::None, false),
        (Compression::None, true),
    ] {
        let (mut ex, mut im) = (Vec::new(), Vec::new());
        let mut size = 0;
        for i in 0..rounds {
            let a = base.join(format!("big-{}.tar", c.name()));
            let req = ExportRequest {
                images_dir: images.clone(),
                spec: spec(),
                config: EngineConfig {
                    name: Some("ckpt-archive-bench".into()),
                    ..Default::default()
                },
                stats: Some(stats.clone()),
                compression: c,
                no_sync,
                ..Default::default()
            };
            let t = Instant::now();
            let (_, w) = archive::export(&req, &a).expect("export");
            ex.push(secs(t.elapsed()));
            size = w.archive_bytes;
            let target = base.join(format!("big-imp-{i}"));
            let t = Instant::now();
            archive::import(&a, &target, &ImportOptions::default()).expect("import");
            im.push(secs(t.elapsed()));
            fs::remove_dir_all(&target).unwrap();
            fs::remove_file(&a).unwrap();
        }
        let (e, m) = (median(&mut ex), median(&mut im));
        println!(
            "{:<14} {:>10.3} {:>10.2} {:>10.3} {:>10.2} {:>10.2}",
            format!("{}{}", c.name(), if no_sync { "" } else { "+fsync" }),
            e,
            bytes as f64 / e / 1e9,
            m,
            bytes as f64 / m / 1e9,
            size as f64 / bytes as f64
        );
    }
    let _ = fs::remove_dir_all(&images);
}

struct Pod {
    conf: PathBuf,
    tag: String,
    image: String,
}

impl Pod {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf);
        c
    }
    fn run(&self, name: &str) -> String {
        out(self.cmd().args([
            "run",
            "-d",
            "--runtime",
            "runc",
            "--name",
            name,
            &self.image,
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done",
        ]))
    }
    fn rm(&self, name: &str) {
        let _ = self.cmd().args(["rm", "-f", "-t", "0", name]).output();
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Ok(o) = self
            .cmd()
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
        {
            for n in String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|n| n.starts_with(&self.tag))
            {
                self.rm(n);
            }
        }
        let _ = self.cmd().args(["rmi", "-f", &self.image]).output();
    }
}

fn podman(base: &Path, rounds: usize) {
    let tag = format!("ckpt-archive-{}-bench", std::process::id());
    let root = base.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for c in ["sh", "sleep", "cat", "mv"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(c)).unwrap();
    }
    let conf = base.join("containers.conf");
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\",\"nproc=32768:32768\"]\n",
    )
    .unwrap();
    let p = Pod {
        conf,
        image: format!("localhost/{tag}-img"),
        tag: tag.clone(),
    };
    let tarball = base.join("rootfs.tar");
    ok(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg("."));
    ok(p.cmd().arg("import").arg(&tarball).arg(&p.image));
    let (mut p_exp, mut p_imp, mut runc_dump, mut c_exp, mut c_imp, mut p_imp_ckpt) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for i in 0..rounds {
        // Podman alone.
        let name = format!("{tag}-p{i}");
        p.run(&name);
        std::thread::sleep(Duration::from_millis(500));
        let a = base.join(format!("podman-{i}.tar.gz"));
        let t = Instant::now();
        ok(p.cmd()
            .args(["container", "checkpoint", "--export"])
            .arg(&a)
            .arg(&name));
        p_exp.push(secs(t.elapsed()));
        p.rm(&name);
        let t = Instant::now();
        ok(p.cmd().args(["container", "restore", "--import"]).arg(&a));
        p_imp.push(secs(t.elapsed()));
        p.rm(&name);

        // runc's checkpoint of a Podman container, archived by ckpt.
        let name = format!("{tag}-c{i}");
        let id = p.run(&name);
        std::thread::sleep(Duration::from_millis(500));
        let fmt = |f: &str| out(p.cmd().args(["inspect", "--format", f, &name]));
        let spec: serde_json::Value =
            serde_json::from_slice(&fs::read(fmt("{{.OCIConfigPath}}")).unwrap()).unwrap();
        let upper = PathBuf::from(fmt("{{.GraphDriver.Data.UpperDir}}"));
        let image_id = fmt("{{.Image}}");
        let (img, work) = (
            base.join(format!("img-{i}")),
            base.join(format!("work-{i}")),
        );
        let t = Instant::now();
        ok(Command::new("runc")
            .args([
                "--criu",
                "/usr/local/sbin/criu",
                "checkpoint",
                "--image-path",
            ])
            .arg(&img)
            .arg("--work-path")
            .arg(&work)
            .arg(&id));
        runc_dump.push(secs(t.elapsed()));
        let a = base.join(format!("ckpt-{i}.tar.zst"));
        let t = Instant::now();
        archive::export(
            &ExportRequest {
                images_dir: img.clone(),
                work_dir: Some(work),
                spec,
                config: EngineConfig {
                    name: Some(name.clone()),
                    id: Some(id),
                    image_name: Some(format!("{}:latest", p.image)),
                    image_id: Some(image_id),
                    extra: serde_json::json!({"createNetNS": true, "networkMode": "bridge"})
                        .as_object()
                        .unwrap()
                        .clone(),
                    ..Default::default()
                },
                rootfs: Some(archive::RootfsChanges::OverlayUpper { upper, lower: None }),
                ..Default::default()
            },
            &a,
        )
        .expect("export");
        c_exp.push(secs(t.elapsed()));
        let target = base.join(format!("imp-{i}"));
        let t = Instant::now();
        archive::import(
            &a,
            &target,
            &ImportOptions {
                name: Some(format!("{name}-x")),
                ..Default::default()
            },
        )
        .expect("import");
        c_imp.push(secs(t.elapsed()));
        p.rm(&name);
        let t = Instant::now();
        ok(p.cmd().args(["container", "restore", "--import"]).arg(&a));
        p_imp_ckpt.push(secs(t.elapsed()));
        p.rm(&name);
    }
    let (pe, pi, rd, ce, ci, pic) = (
        median(&mut p_exp),
        median(&mut p_imp),
        median(&mut runc_dump),
        median(&mut c_exp),
        median(&mut c_imp),
        median(&mut p_imp_ckpt),
    );
    println!("busybox container, {rounds} rounds, medians (s):");
    println!("  podman checkpoint --export            {pe:.3}");
    println!("  runc checkpoint                       {rd:.3}");
    println!(
        "  ckpt export (archive only)            {ce:.4}   ratio to podman's export: {:.3}",
        ce / pe
    );
    println!(
        "  runc checkpoint + ckpt export         {:.3}   ratio: {:.3}",
        rd + ce,
        (rd + ce) / pe
    );
    println!("  podman restore --import               {pi:.3}");
    println!(
        "  ckpt import (verify, unpack, spec)    {ci:.4}   ratio to podman's import+restore: {:.3}",
        ci / pi
    );
    println!("  podman restore --import ckpt's archive {pic:.3}");
}

fn main() {
    let rounds: usize = std::env::var("CKPT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // CKPT_BENCH_DIR=/dev/shm measures ckpt without the disk.
    let parent = std::env::var_os("CKPT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let base = parent.join(format!("ckpt-archive-{}-bench", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).unwrap();
    let r = std::panic::catch_unwind(|| {
        throughput(&base, rounds);
        if std::env::var_os("CKPT_BENCH_SKIP_PODMAN").is_none() {
            podman(&base, rounds);
        }
    });
    let _ = fs::remove_dir_all(&base);
    if r.is_err() {
        std::process::exit(1);
    }
}
