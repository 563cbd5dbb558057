//! Finding a container from its runtime's state (`container::runtime::locate`) reads only a
//! regular file of bounded size: a FIFO at runc's `state.json` or crun's `status` used to block
//! the call for ever (the open waited for a writer), and a huge file was read whole. Each is
//! refused at once with the file and what it is named. Needs no root.

use ckpt::container::runtime::locate;
use ckpt::container::statefile::MAX_BYTES;
use ckpt::error::{Code, Error};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/containers");

fn root(name: &str) -> PathBuf {
    let r = std::env::temp_dir().join(format!("leftovers-{}-state-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&r);
    r
}

/// `locate` in a thread, so that a call that blocks fails the test instead of hanging it; a
/// FIFO it waits on is then opened for writing, which lets it go.
fn locate_within(rt: &'static str, root: &Path, fifo: Option<&Path>) -> Result<(), Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    let r = root.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(locate(rt, Some(&r), "c1").map(|_| ()));
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(r) => r,
        Err(_) => {
            if let Some(f) = fifo {
                let _ = std::fs::OpenOptions::new().write(true).open(f);
            }
            panic!("{rt}: locate blocked for 5 s on {}", root.display());
        }
    }
}

#[test]
fn state_files_that_are_not_regular_files_or_too_large_are_refused_at_once() {
    for (rt, file) in [("runc", "state.json"), ("crun", "status")] {
        let root = root(rt);
        let dir = root.join("c1");
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join(file);

        nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = locate_within(rt, &root, Some(&state)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{rt}: {e:?}");
        assert_eq!(
            e.message,
            format!(
                "{rt} container c1: {} is a FIFO, not a regular file",
                state.display()
            )
        );
        std::fs::remove_file(&state).unwrap();

        // Sparse: no disk is used.
        let f = std::fs::File::create(&state).unwrap();
        f.set_len(MAX_BYTES + 1).unwrap();
        let e = locate_within(rt, &root, None).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{rt}: {e:?}");
        assert!(e.message.contains("is larger than 4194304 bytes"), "{e:?}");
        f.set_len(64 << 30).unwrap();
        let e = locate_within(rt, &root, None).unwrap_err();
        assert!(e.message.contains("is larger than"), "{rt}: 64 GiB: {e:?}");
        std::fs::remove_file(&state).unwrap();

        std::fs::create_dir(&state).unwrap();
        let e = locate_within(rt, &root, None).unwrap_err();
        assert!(
            e.message.ends_with("is a directory, not a regular file"),
            "{rt}: {e:?}"
        );
        std::fs::remove_dir(&state).unwrap();

        let real = root.join("elsewhere");
        std::fs::copy(Path::new(DATA).join(rt).join(file), &real).unwrap();
        std::os::unix::fs::symlink(&real, &state).unwrap();
        let e = locate_within(rt, &root, None).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{rt}: {e:?}");
        assert!(
            e.message
                .ends_with("is a symbolic link, not a regular file"),
            "{rt}: {e:?}"
        );
        std::fs::remove_file(&state).unwrap();

        // The real thing, and a missing one.
        std::fs::rename(&real, &state).unwrap();
        locate_within(rt, &root, None).unwrap_or_else(|e| panic!("{rt}: {e:?}"));
        std::fs::remove_file(&state).unwrap();
        let e = locate_within(rt, &root, None).unwrap_err();
        assert_eq!(e.code, Code::NotFound, "{rt}: {e:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
