//! Checkpoint archive speed, side by side in one run (medians of the rounds):
//!
//! 1. Throughput: a process with 1 GiB resident (half random bytes, half repeated text) is
//!    checkpointed once by CRIU through ckpt (leave-running); its images are then exported
//!    (zstd level 1, gzip level 1, none) and imported, each round timing ckpt alone.
//!    Throughput is the images' bytes over the time; the import's CPU time (user + system,
//!    both of its threads) is printed beside it.
//!    Baselines in the same run: copying the same image files with read/write (1 MiB
//!    buffers) beside each import (before it in even rounds, after it in odd ones), the
//!    machine's own speed for writing that many bytes into new files, and GNU tar extracting
//!    each archive ckpt wrote (`tar -x --zstd` / `-z`).
//! 2. Against Podman 4.3.1 for a busybox container, each round: `podman container checkpoint
//!    --export` against ckpt's container checkpoint of a Podman container plus the export from
//!    its bundle; `podman container restore --import` against ckpt's import and restore
//!    (`archive::restore`: overlay over the image's rootfs, the container layer's restore) of
//!    the same archive; and Podman's import of ckpt's archive.
//!
//! Run as root after scripts/setup.sh: `cargo run --release -p ckpt-core --example archive-bench`
//! (`CKPT_BENCH_ROUNDS`, default 5; `CKPT_BENCH_SKIP_PODMAN=1` skips part 2;
//! `CKPT_BENCH_DIR` is where images and archives go, default the temporary directory).

#[path = "../core/tests/common/cgroup_sweep.rs"]
mod cgroup_sweep;
use cgroup_sweep::remove_cgroups_named;
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

/// CPU time (user + system) of this process so far, every thread included.
fn cpu() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
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
    // Baseline: the same files copied with read/write through one 1 MiB buffer.
    let copy_round = |i: usize| -> f64 {
        let to = base.join(format!("copy-{i}"));
        fs::create_dir(&to).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let t = Instant::now();
        for e in fs::read_dir(&images).unwrap().flatten() {
            let mut r = fs::File::open(e.path()).unwrap();
            let mut w = fs::File::create(to.join(e.file_name())).unwrap();
            loop {
                let n = std::io::Read::read(&mut r, &mut buf).unwrap();
                if n == 0 {
                    break;
                }
                std::io::Write::write_all(&mut w, &buf[..n]).unwrap();
            }
        }
        let d = secs(t.elapsed());
        fs::remove_dir_all(&to).unwrap();
        d
    };
    let mut cp: Vec<f64> = (0..rounds).map(copy_round).collect();
    let copy = median(&mut cp);
    println!(
        "baseline, the image files copied with read/write (1 MiB): {copy:.3} s, {:.2} GB/s",
        bytes as f64 / copy / 1e9
    );
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "compression",
        "export s",
        "GB/s",
        "import s",
        "GB/s",
        "cpu s",
        "ratio",
        "copy s",
        "import/copy",
        "tar -x s"
    );
    for (c, no_sync) in [
        (Compression::default(), false),
        (Compression::default(), true),
        (Compression::Gzip { level: 1 }, true),
        (Compression::None, false),
        (Compression::None, true),
    ] {
        let (mut ex, mut im, mut gx, mut ic, mut rc) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
            // The copy baseline beside each import, in alternating order: on this VM, memory
            // freed a while ago costs the host's page faults to write again, memory freed
            // just now does not.
            if i % 2 == 0 {
                rc.push(copy_round(i));
            }
            let t = Instant::now();
            let c0 = cpu();
            archive::import(&a, &target, &ImportOptions::default()).expect("import");
            im.push(secs(t.elapsed()));
            ic.push(cpu() - c0);
            fs::remove_dir_all(&target).unwrap();
            if i % 2 == 1 {
                rc.push(copy_round(i));
            }
            // GNU tar's extraction of the same archive, side by side.
            fs::create_dir(&target).unwrap();
            let mut x = Command::new("tar");
            x.arg("-C").arg(&target).arg("-x").arg("-f").arg(&a);
            match c {
                Compression::Zstd { .. } => x.arg("--zstd"),
                Compression::Gzip { .. } => x.arg("-z"),
                Compression::None => &mut x,
            };
            let t = Instant::now();
            ok(&mut x);
            gx.push(secs(t.elapsed()));
            fs::remove_dir_all(&target).unwrap();
            fs::remove_file(&a).unwrap();
        }
        let (e, m, g, mc, copy) = (
            median(&mut ex),
            median(&mut im),
            median(&mut gx),
            median(&mut ic),
            median(&mut rc),
        );
        println!(
            "{:<14} {:>10.3} {:>10.2} {:>10.3} {:>10.2} {:>10.3} {:>10.2} {:>10.3} {:>12.2} {:>10.3}",
            format!("{}{}", c.name(), if no_sync { "" } else { "+fsync" }),
            e,
            bytes as f64 / e / 1e9,
            m,
            bytes as f64 / m / 1e9,
            mc,
            size as f64 / bytes as f64,
            copy,
            m / copy,
            g
        );
    }
    let _ = fs::remove_dir_all(&images);
}

struct Pod {
    /// Ids of the containers started, for the cgroups runc leaves behind under Podman here.
    ids: std::cell::RefCell<Vec<String>>,
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
        let id = out(self.cmd().args([
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
        ]));
        self.ids.borrow_mut().push(id.clone());
        id
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
        for id in self.ids.borrow().iter() {
            remove_cgroups_named(id);
        }
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
        ids: Default::default(),
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
    // The restored containers join a network namespace of their own (Podman's container
    // joined one by path).
    let netns = format!("{tag}-net");
    ok(Command::new("ip").args(["netns", "add", &netns]));
    let netns_path = format!("/run/netns/{netns}");
    let mut t: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut push = |k: &'static str, v: f64| t.entry(k).or_default().push(v);
    for i in 0..rounds {
        // Podman alone.
        let name = format!("{tag}-p{i}");
        p.run(&name);
        std::thread::sleep(Duration::from_millis(500));
        let a = base.join(format!("podman-{i}.tar.gz"));
        let s0 = Instant::now();
        ok(p.cmd()
            .args(["container", "checkpoint", "--export"])
            .arg(&a)
            .arg(&name));
        push("p_exp", secs(s0.elapsed()));
        p.rm(&name);
        let s0 = Instant::now();
        ok(p.cmd().args(["container", "restore", "--import"]).arg(&a));
        push("p_imp", secs(s0.elapsed()));
        p.rm(&name);

        // ckpt: import and restore of Podman's archive through the container layer.
        let bundle = base.join(format!("restored-{i}"));
        let mut o = ckpt::Options::new();
        let null = || -> Option<std::os::fd::OwnedFd> {
            Some(
                fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .unwrap()
                    .into(),
            )
        };
        let s0 = Instant::now();
        let r = archive::restore::restore(
            &mut o,
            &a,
            archive::ImportRestore {
                bundle: bundle.clone(),
                rootfs: archive::NewRootfs::Overlay {
                    lower: root.clone(),
                },
                name: Some(format!("{name}-r")),
                id: None,
                namespaces: vec![("network".into(), Some(netns_path.clone()))],
                limits: Default::default(),
                keep_network: false,
                stdio: [None, null(), null()],
                hooks: None,
            },
        )
        .expect("ckpt import and restore of Podman's archive");
        push("c_imp", secs(s0.elapsed()));
        // SAFETY: kill and reap the restored init, our child.
        unsafe {
            libc::kill(r.restored.pid, libc::SIGKILL);
            libc::waitpid(r.restored.pid, std::ptr::null_mut(), 0);
        }
        remove_cgroups_named(r.imported.config.id.as_deref().unwrap_or("-"));
        let _ = fs::remove_dir_all(&bundle);

        // ckpt: the container layer's checkpoint of a Podman container, then the export from
        // its bundle (spec, overlay upper directory).
        let name = format!("{tag}-c{i}");
        let id = p.run(&name);
        std::thread::sleep(Duration::from_millis(500));
        let fmt = |f: &str| out(p.cmd().args(["inspect", "--format", f, &name]));
        let cbundle = PathBuf::from(fmt("{{.OCIConfigPath}}"))
            .parent()
            .unwrap()
            .to_path_buf();
        let pid: i32 = fmt("{{.State.Pid}}").parse().unwrap();
        let image_id = fmt("{{.Image}}");
        let img = base.join(format!("img-{i}"));
        let a = base.join(format!("ckpt-{i}.tar.zst"));
        let mut o = ckpt::Options::new();
        o.set_image_path(&img).unwrap();
        let s0 = Instant::now();
        ckpt::container::checkpoint(&mut o, &cbundle, pid, false).expect("container checkpoint");
        let s1 = Instant::now();
        let mut req = ExportRequest {
            images_dir: img.clone(),
            config: EngineConfig {
                name: Some(name.clone()),
                id: Some(id),
                image_name: Some(format!("{}:latest", p.image)),
                image_id: Some(image_id),
                runtime: Some("runc".into()),
                extra: serde_json::json!({"createNetNS": true, "networkMode": "bridge"})
                    .as_object()
                    .unwrap()
                    .clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        archive::container_export::fill_from_bundle(&mut req, &cbundle).expect("bundle");
        archive::export(&req, &a).expect("export");
        push("c_dump", secs(s1 - s0));
        push("c_exp", secs(s1.elapsed()));
        push("c_dump_exp", secs(s0.elapsed()));
        p.rm(&name);
        let s0 = Instant::now();
        ok(p.cmd().args(["container", "restore", "--import"]).arg(&a));
        push("p_imp_ckpt", secs(s0.elapsed()));
        p.rm(&name);
    }
    let _ = Command::new("ip").args(["netns", "del", &netns]).output();
    let mut m = |k: &str| median(t.get_mut(k).unwrap());
    let (pe, pi, cd, ce, cde, ci, pic) = (
        m("p_exp"),
        m("p_imp"),
        m("c_dump"),
        m("c_exp"),
        m("c_dump_exp"),
        m("c_imp"),
        m("p_imp_ckpt"),
    );
    println!("busybox container, {rounds} rounds, medians (s):");
    println!("  podman container checkpoint --export          {pe:.3}");
    println!("  ckpt container checkpoint                      {cd:.3}");
    println!("  ckpt export (archive only)                     {ce:.4}");
    println!(
        "  ckpt container checkpoint + export            {cde:.3}   ratio to podman: {:.2} (target 0.30)",
        cde / pe
    );
    println!("  podman container restore --import             {pi:.3}");
    println!(
        "  ckpt import + container restore               {ci:.3}   ratio to podman: {:.2} (target 0.50)",
        ci / pi
    );
    println!("  podman container restore --import ckpt's      {pic:.3}");
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
