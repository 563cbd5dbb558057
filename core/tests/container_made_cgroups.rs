//! A container restore reports the cgroup directories made for it (`Restored::made_cgroups`):
//! those that did not exist before, every hierarchy's, deepest first, so that the caller can
//! remove them in that order once the container is gone; a cgroup that existed before is not
//! listed and stays. Real runc 1.1.5 container, real criu. Needs root and runc.

mod common;

use ckpt::container;
use common::containers::{
    Counting, advancing, kill_and_reap, remove_cgroup_tree, restore_bundle, runc_ready, wait_gone,
};
use common::{options, serial};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The directories named `id` under /sys/fs/cgroup's hierarchies.
fn named(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(id))
        .filter(|d| d.exists())
        .collect()
}

/// Removes every tree named `id` on drop: the nested cgroups of a failed test.
struct Sweep(String);
impl Drop for Sweep {
    fn drop(&mut self) {
        for d in named(&self.0) {
            remove_cgroup_tree(&d);
        }
    }
}

#[test]
fn a_container_restore_reports_the_cgroups_made_for_it_deepest_first() {
    if !runc_ready() {
        return;
    }
    let _g = serial();
    let c = Counting::start("leftovers", "made");
    let _sweep = Sweep(c.id.clone());
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.remove_dumped();
    assert_eq!(
        named(&c.id),
        Vec::<PathBuf>::new(),
        "no cgroup left by runc"
    );

    // Restored below parents that do not exist yet, except in the pids hierarchy, where the
    // top one is made here first: it existed before, so it is not reported and stays.
    let cfg = c.bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    spec["linux"]["cgroupsPath"] = json!(format!("/{}/nest/ctr", c.id));
    std::fs::write(&cfg, spec.to_string()).unwrap();
    let pids_top = Path::new("/sys/fs/cgroup/pids").join(&c.id);
    std::fs::create_dir(&pids_top).unwrap();

    let (_, r) = restore_bundle(&mut o, &c.bundle).unwrap_or_else(|e| panic!("restore: {e:?}"));
    let made = r.made_cgroups.clone();
    let pid = r.pid;
    let alive = advancing(&c.bundle);
    kill_and_reap(pid);
    wait_gone(pid, Duration::from_secs(2));
    assert!(alive, "the restored container counts");
    eprintln!("made: {made:#?}");

    for h in ["cpu", "memory", "freezer", "cpuset", "pids"] {
        let top = Path::new("/sys/fs/cgroup").join(h).join(&c.id);
        let nest = top.join("nest");
        let ctr = nest.join("ctr");
        let at = |p: &Path| made.iter().position(|m| m == p);
        let (Some(i_ctr), Some(i_nest)) = (at(&ctr), at(&nest)) else {
            panic!("{h}: {} or {} not reported", ctr.display(), nest.display());
        };
        assert!(i_ctr < i_nest, "{h}: ctr after nest");
        if h == "pids" {
            assert_eq!(
                at(&top),
                None,
                "the pids cgroup that existed before is reported"
            );
        } else {
            assert!(
                at(&top).is_some_and(|i| i > i_nest),
                "{h}: top not after nest"
            );
        }
    }
    for (i, a) in made.iter().enumerate() {
        assert!(
            a.starts_with("/sys/fs/cgroup") && a.to_string_lossy().contains(&c.id),
            "{} is not the container's",
            a.display()
        );
        for b in &made[i + 1..] {
            assert!(
                !b.starts_with(a),
                "{} comes after {}, which holds it",
                b.display(),
                a.display()
            );
        }
    }

    // Removed in the order given, the container gone, every one goes (the killed tasks take
    // the kernel a moment to leave).
    let end = Instant::now() + Duration::from_secs(5);
    let mut left = made.clone();
    while !left.is_empty() && Instant::now() < end {
        left.retain(|d| std::fs::remove_dir(d).is_err());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        left,
        Vec::<PathBuf>::new(),
        "not removable in the order given"
    );
    assert_eq!(
        named(&c.id),
        vec![pids_top.clone()],
        "only the one made before stays"
    );
    std::fs::remove_dir(&pids_top).unwrap();
}
