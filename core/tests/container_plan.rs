//! The container layer's decisions on inputs recorded from real runc 1.1.5 and crun 1.21
//! busybox containers on this machine (tests/data/containers/capture.sh): fast and root-free.

use ckpt::container::cgroups;
use ckpt::container::facts::*;
use ckpt::container::mountinfo;
use ckpt::container::plan::{self, Action, Criu, FdSource, Plan, Wants};
use ckpt::error::Code;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/containers");
const CAP: &str = "/tmp/ckpt-containers-CAPTURE";

fn text(rt: &str, f: &str) -> String {
    std::fs::read_to_string(Path::new(DATA).join(rt).join(f)).unwrap()
}

fn bundle(rt: &str) -> Bundle {
    Bundle {
        dir: format!("{CAP}/{rt}").into(),
        spec: serde_json::from_str(&text(rt, "config.json")).unwrap(),
        rootfs: format!("{CAP}/{rt}/rootfs").into(),
    }
}

fn host(rt: &str) -> Host {
    Host {
        mounts: mountinfo::parse(&text(rt, "host-mountinfo")).unwrap(),
        iptables_restore: true,
        runc_conf: false,
        run_tmpfs: true,
    }
}

fn facts(rt: &str) -> CheckpointFacts {
    let b = bundle(rt);
    let mut kinds = BTreeMap::new();
    for l in text(rt, "types").lines().chain(text(rt, "masked").lines()) {
        let (k, p) = l.split_once(' ').unwrap();
        match k {
            "dir" => kinds.insert(p.to_string(), Kind::Dir),
            "file" => kinds.insert(p.to_string(), Kind::File),
            _ => None,
        };
    }
    let ns_inodes = text(rt, "nspaths")
        .lines()
        .map(|l| {
            // config.json's type names; the layer names them as oci-spec prints them.
            let f: Vec<&str> = l.split(' ').collect();
            let t = match f[0] {
                "network" => "net",
                "mount" => "mnt",
                t => t,
            };
            (t.to_string(), f[2].parse().unwrap())
        })
        .collect();
    let resolved = b
        .spec
        .mounts()
        .clone()
        .unwrap()
        .iter()
        .map(|m| {
            let d = m.destination().to_string_lossy().into_owned();
            (d.clone(), d)
        })
        .collect();
    CheckpointFacts {
        host: host(rt),
        running: Running {
            pid: text(rt, "pid").trim().parse().unwrap(),
            mounts: mountinfo::parse(&text(rt, "mountinfo")).unwrap(),
            cgroups: cgroups::parse(&text(rt, "cgroup")).unwrap(),
            kinds,
            ns_inodes,
            resolved,
            stdio: vec!["/dev/null".into(), "pipe:[4242]".into(), "/dev/null".into()],
            veths: Some(vec![]),
        },
        bundle: b,
    }
}

fn opts(p: &Plan) -> Vec<Criu> {
    p.criu.iter().map(|s| s.what.clone()).collect()
}

fn ext(p: &Plan) -> BTreeMap<String, String> {
    opts(p)
        .into_iter()
        .filter_map(|c| match c {
            Criu::ExtMount { key, val } => Some((key, val)),
            _ => None,
        })
        .collect()
}

const V1: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
];

#[test]
fn runc_checkpoint_plan() {
    let p = plan::checkpoint(&facts("runc"), &Wants::default()).unwrap();
    let o = opts(&p);
    assert_eq!(o[0], Criu::Root(format!("{CAP}/runc/rootfs")));
    let e = ext(&p);
    // Bind mounts of config.json, the device bind, the hook's mount: key = value = mountpoint.
    for mp in ["/data/file", "/data/dir", "/dev/net/tun", "/hooked"] {
        assert_eq!(e.get(mp).map(String::as_str), Some(mp), "{mp}: {e:?}");
    }
    for c in V1 {
        let mp = format!("/sys/fs/cgroup/{c}");
        assert_eq!(e.get(&mp), Some(&mp), "cgroup mount {mp}");
    }
    // Masked files: /dev/null bound over them; masked directories are tmpfs, CRIU's own.
    assert_eq!(e.get("/proc/keys").unwrap(), "/dev/null");
    assert_eq!(e.get("/proc/timer_list").unwrap(), "/dev/null");
    for internal in [
        "/proc/acpi",
        "/sys/firmware",
        "/scratch",
        "/proc/bus",
        "/proc/sys",
        "/dev/pts",
    ] {
        assert!(!e.contains_key(internal), "{internal} must be CRIU's");
    }
    assert_eq!(e.len(), 4 + 9 + 2, "{e:?}");
    // The network namespace given by path is external; nothing is emptied.
    assert!(o.contains(&Criu::External("net[4026532177]:extRootNetNS".into())));
    assert!(!o.iter().any(|c| matches!(c, Criu::EmptyNs(_))));
    assert!(o.contains(&Criu::FreezeCgroup(
        "/sys/fs/cgroup/freezer/ckpt-containers-CAPTURE-runc".into()
    )));
    // A v1 freezer: ckpt freezes it first (CRIU would check it only every 100 ms).
    let first: Vec<&Action> = p
        .actions
        .iter()
        .map(|a| &a.what)
        .filter(|a| matches!(a, Action::FreezeFirst { .. }))
        .collect();
    assert_eq!(
        first,
        [&Action::FreezeFirst {
            cgroup: "/sys/fs/cgroup/freezer/ckpt-containers-CAPTURE-runc".into()
        }]
    );
    assert!(o.contains(&Criu::ManageCgroupsMode("soft".into())));
    // Every hierarchy is mounted from its root under /sys/fs/cgroup, named as CRIU names
    // them in a yard: CRIU uses those mounts.
    assert!(o.contains(&Criu::CgroupYard("/sys/fs/cgroup".into())));
    // The container has its own cgroup in every hierarchy: nothing to restrict.
    assert!(!o.iter().any(|c| matches!(c, Criu::CgroupDumpController(_))));
    // A network namespace the runtime keeps: its state is carried, so it is locked.
    assert!(o.contains(&Criu::NetworkLock("iptables".into())));
    let rec = p.record.as_ref().unwrap();
    let hooked = rec
        .mounts
        .iter()
        .find(|m| m.mountpoint == "/hooked")
        .unwrap();
    assert_eq!(hooked.origin, "discovered");
    assert_eq!(hooked.source, format!("{CAP}/runc/hook-src"));
    assert_eq!(hooked.kind, Kind::Dir);
    let file = rec
        .mounts
        .iter()
        .find(|m| m.mountpoint == "/data/file")
        .unwrap();
    assert_eq!((file.kind, file.origin.as_str()), (Kind::File, "spec"));
    let tun = rec
        .mounts
        .iter()
        .find(|m| m.mountpoint == "/dev/net/tun")
        .unwrap();
    assert_eq!((tun.kind, tun.origin.as_str()), (Kind::File, "device"));
    assert_eq!(p.descriptors.as_ref().unwrap()[1], "pipe:[4242]");
    assert!(p.criu.iter().all(|s| !s.reason.is_empty()));
}

#[test]
fn crun_checkpoint_plan_keeps_to_the_containers_cgroups() {
    let p = plan::checkpoint(&facts("crun"), &Wants::default()).unwrap();
    let o = opts(&p);
    // crun leaves the init in cgroup2's root here: only the v1 hierarchies are dumped.
    let dumped: Vec<String> = o
        .iter()
        .filter_map(|c| match c {
            Criu::CgroupDumpController(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dumped.len(), 9, "{dumped:?}");
    assert!(!dumped.iter().any(|d| d.is_empty()));
    assert!(dumped.contains(&"name=systemd".to_string()));
    assert_eq!(
        p.record.as_ref().unwrap().skipped_cgroups,
        vec![String::new()]
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("cgroup2") && n.contains("root cgroup"))
    );
    assert!(o.contains(&Criu::EmptyNs("network".into())));
    assert!(o.contains(&Criu::NetworkLock("skip".into())));
    let e = ext(&p);
    assert_eq!(e.get("/hooked").map(String::as_str), Some("/hooked"));
    assert_eq!(e.get("/proc/keys").unwrap(), "/dev/null");
    assert_eq!(e.len(), 4 + 9 + 2, "{e:?}");
}

#[test]
fn a_container_in_every_root_cgroup_is_refused_unless_cgroups_are_ignored() {
    let mut f = facts("crun");
    for c in &mut f.running.cgroups {
        c.path = "/".into();
    }
    let e = plan::checkpoint(&f, &Wants::default()).unwrap_err();
    assert_eq!(e.code, Code::InvalidState);
    assert!(
        e.message.contains("root cgroup of every hierarchy"),
        "{}",
        e.message
    );
    let w = Wants {
        manage_cgroups_mode: Some("ignore".into()),
        ..Default::default()
    };
    let p = plan::checkpoint(&f, &w).unwrap();
    assert!(!opts(&p).iter().any(|c| matches!(c, Criu::FreezeCgroup(_))));
    // No freezer cgroup of its own: nothing for ckpt to freeze either.
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a.what, Action::FreezeFirst { .. }))
    );
}

#[test]
fn lock_and_network_choices() {
    let mut f = facts("crun");
    let w = Wants {
        tcp_established: true,
        ..Default::default()
    };
    assert!(
        opts(&plan::checkpoint(&f, &w).unwrap()).contains(&Criu::NetworkLock("iptables".into()))
    );
    f.host.iptables_restore = false;
    assert!(
        opts(&plan::checkpoint(&f, &w).unwrap()).contains(&Criu::NetworkLock("nftables".into()))
    );
    let w = Wants {
        network_lock: Some("iptables".into()),
        keep_network: true,
        ..Default::default()
    };
    let o = opts(&plan::checkpoint(&f, &w).unwrap());
    assert!(o.contains(&Criu::NetworkLock("iptables".into())));
    assert!(!o.iter().any(|c| matches!(c, Criu::EmptyNs(_))));
}

#[test]
fn a_run_that_is_not_a_tmpfs_is_noted() {
    // CRIU keeps its kernel-probe cache only on a tmpfs /run: without it every start probes.
    let mut f = facts("runc");
    let kdat = |p: &Plan| p.notes.iter().any(|n| n.contains("/run/criu.kdat"));
    assert!(!kdat(&plan::checkpoint(&f, &Wants::default()).unwrap()));
    f.host.run_tmpfs = false;
    assert!(kdat(&plan::checkpoint(&f, &Wants::default()).unwrap()));
    let mut r = restore_facts(
        "runc",
        plan::checkpoint(&facts("runc"), &Wants::default())
            .unwrap()
            .record
            .unwrap(),
    );
    assert!(!kdat(&plan::restore(&r, &Wants::default()).unwrap()));
    r.host.run_tmpfs = false;
    assert!(kdat(&plan::restore(&r, &Wants::default()).unwrap()));
}

#[test]
fn the_hosts_cgroup_mounts_are_crius_yard_only_when_laid_out_as_one() {
    let rec = plan::checkpoint(&facts("runc"), &Wants::default())
        .unwrap()
        .record
        .unwrap();
    let mut rf = restore_facts("runc", rec);
    let yard = |p: &Plan| {
        opts(p).iter().find_map(|c| match c {
            Criu::CgroupYard(y) => Some(y.clone()),
            _ => None,
        })
    };
    // No readable cgroup.img: CRIU mounts the hierarchies itself.
    assert_eq!(yard(&plan::restore(&rf, &Wants::default()).unwrap()), None);
    let all: Vec<Vec<String>> = [
        "",
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "name=systemd",
    ]
    .iter()
    .map(|c| vec![c.to_string()])
    .collect();
    rf.image_controllers = Some(all.clone());
    assert_eq!(
        yard(&plan::restore(&rf, &Wants::default()).unwrap()).as_deref(),
        Some("/sys/fs/cgroup")
    );
    // A hierarchy the host does not mount (CRIU would mount it inside the host's directory).
    let mut more = all.clone();
    more.push(vec!["net_cls".into(), "net_prio".into()]);
    rf.image_controllers = Some(more);
    let p = plan::restore(&rf, &Wants::default()).unwrap();
    assert_eq!(yard(&p), None);
    assert!(p.notes.iter().any(|n| n.contains("cgroup yard")));
    // Cgroups ignored: no yard.
    rf.image_controllers = Some(all);
    let w = Wants {
        manage_cgroups_mode: Some("ignore".into()),
        ..Default::default()
    };
    assert_eq!(yard(&plan::restore(&rf, &w).unwrap()), None);
    // A hierarchy mounted from below its root: not a yard.
    let mut f = facts("runc");
    for m in &mut f.host.mounts {
        if m.mount_point == "/sys/fs/cgroup/memory" {
            m.root = "/ckpt-containers-CAPTURE-runc".into();
        }
    }
    assert_eq!(
        yard(&plan::checkpoint(&f, &Wants::default()).unwrap()),
        None
    );
    // crun's container: only the v1 hierarchies are dumped, all under /sys/fs/cgroup.
    assert_eq!(
        yard(&plan::checkpoint(&facts("crun"), &Wants::default()).unwrap()).as_deref(),
        Some("/sys/fs/cgroup")
    );
}

#[test]
fn a_symlinked_destination_is_keyed_by_where_it_resolves() {
    let mut f = facts("runc");
    // config.json says /link/dir; inside the rootfs /link is a symlink to /data.
    let mut spec = f.bundle.spec.clone();
    let mut mounts = spec.mounts().clone().unwrap();
    for m in &mut mounts {
        if m.destination() == Path::new("/data/dir") {
            m.set_destination(PathBuf::from("/link/dir"));
        }
    }
    spec.set_mounts(Some(mounts));
    f.bundle.spec = spec;
    f.running
        .resolved
        .insert("/link/dir".into(), "/data/dir".into());
    let p = plan::checkpoint(&f, &Wants::default()).unwrap();
    let step = p
        .criu
        .iter()
        .find(|s| {
            s.what
                == Criu::ExtMount {
                    key: "/data/dir".into(),
                    val: "/data/dir".into(),
                }
        })
        .unwrap();
    assert!(
        step.reason.contains("resolves to /data/dir"),
        "{}",
        step.reason
    );
    assert_eq!(
        p.record
            .unwrap()
            .mounts
            .iter()
            .find(|m| m.mountpoint == "/data/dir")
            .unwrap()
            .origin,
        "spec"
    );
}

fn restore_facts(rt: &str, rec: Record) -> RestoreFacts {
    let f = facts(rt);
    let existing = rec
        .mounts
        .iter()
        .map(|m| (m.mountpoint.clone(), m.kind))
        .collect();
    let host_exists = rec
        .mounts
        .iter()
        .map(|m| (m.source.clone(), true))
        .collect();
    RestoreFacts {
        host: f.host,
        bundle: f.bundle,
        record: rec,
        existing,
        host_exists,
        missing_fs_mountpoints: vec![],
        criu_root: "/tmp/ckpt-criu-root-test".into(),
        image_controllers: None,
        image_cgroup_dirs: None,
        stdio_given: [false, true, false],
        hooks: true,
        image_file_locks: false,
    }
}

#[test]
fn runc_restore_plan() {
    let rec = plan::checkpoint(&facts("runc"), &Wants::default())
        .unwrap()
        .record
        .unwrap();
    let mut rf = restore_facts("runc", rec);
    rf.existing.remove("/hooked");
    rf.existing.remove("/data/file");
    let p = plan::restore(&rf, &Wants::default()).unwrap();
    let o = opts(&p);
    assert_eq!(o[0], Criu::Root("/tmp/ckpt-criu-root-test".into()));
    assert!(
        matches!(&p.actions[0].what, Action::BindRootfs { source, target, .. }
        if source == Path::new(&format!("{CAP}/runc/rootfs")) && target == Path::new("/tmp/ckpt-criu-root-test"))
    );
    let e = ext(&p);
    assert_eq!(e["/data/file"], format!("{CAP}/runc/host-file"));
    assert_eq!(e["/data/dir"], format!("{CAP}/runc/host-dir"));
    assert_eq!(e["/dev/net/tun"], "/dev/net/tun");
    assert_eq!(e["/hooked"], format!("{CAP}/runc/hook-src"));
    assert_eq!(e["/dev/null"], "/dev/null");
    assert_eq!(
        e["/sys/fs/cgroup/cpu"],
        "/sys/fs/cgroup/cpu/ckpt-containers-CAPTURE-runc"
    );
    assert_eq!(
        e["/sys/fs/cgroup/systemd"],
        "/sys/fs/cgroup/systemd/ckpt-containers-CAPTURE-runc"
    );
    // Masked files: both keys CRIU may find in the images, runc's (/dev/null) and crun's
    // (the path), map to /dev/null.
    assert_eq!(e["/proc/keys"], "/dev/null");
    assert_eq!(e["/proc/timer_list"], "/dev/null");
    // Missing mountpoints are made with the kind recorded at checkpoint.
    let created: Vec<(PathBuf, Kind)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.what {
            Action::CreateMountpoint { path, kind, .. } => Some((path.clone(), *kind)),
            _ => None,
        })
        .collect();
    assert!(
        created.contains(&(format!("{CAP}/runc/rootfs/hooked").into(), Kind::Dir)),
        "{created:?}"
    );
    assert!(
        created.contains(&(format!("{CAP}/runc/rootfs/data/file").into(), Kind::File)),
        "{created:?}"
    );
    assert!(o.contains(&Criu::InheritFd {
        key: "extRootNetNS".into(),
        from: FdSource::NamespaceFile("/var/run/netns/ckpt-containers-CAPTURE-net".into())
    }));
    assert!(o.contains(&Criu::InheritFd {
        key: "pipe:[4242]".into(),
        from: FdSource::Stdio(1)
    }));
    assert!(o.contains(&Criu::EvasiveDevices(true)));
    assert!(o.contains(&Criu::CgroupRoot {
        controller: "freezer".into(),
        path: "/ckpt-containers-CAPTURE-runc".into()
    }));
    assert!(o.contains(&Criu::CgroupRoot {
        controller: "name=systemd".into(),
        path: "/ckpt-containers-CAPTURE-runc".into()
    }));
    assert!(o.contains(&Criu::NetworkLock("iptables".into())));
    let callbacks = p
        .actions
        .iter()
        .filter(|a| matches!(a.what, Action::Callback { .. }))
        .count();
    assert_eq!(callbacks, 2);
}

#[test]
fn restore_refuses_what_criu_would_fail_on() {
    let rec = plan::checkpoint(&facts("crun"), &Wants::default())
        .unwrap()
        .record
        .unwrap();
    let mut rf = restore_facts("crun", rec.clone());
    rf.stdio_given = [false; 3];
    let e = plan::restore(&rf, &Wants::default()).unwrap_err();
    assert!(
        e.message.contains("stdout was pipe:[4242]"),
        "{}",
        e.message
    );
    let mut rf = restore_facts("crun", rec);
    rf.host_exists.insert(format!("{CAP}/crun/hook-src"), false);
    let e = plan::restore(&rf, &Wants::default()).unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert!(
        e.message.contains("hook-src") && e.message.contains("/hooked"),
        "{}",
        e.message
    );
}

/// In the cgroup modes in which CRIU creates no cgroup (ignore, none, props), a restore whose
/// cgroup mounts would be bound from cgroups that do not exist is refused before CRIU, naming
/// the cgroup and the mode; CRIU failed on it with "Failed to open_tree ...". In soft, full
/// and strict modes CRIU creates them, and the plan notes it.
#[test]
fn a_missing_cgroup_is_refused_in_modes_where_criu_creates_none() {
    let rec = plan::checkpoint(&facts("runc"), &Wants::default())
        .unwrap()
        .record
        .unwrap();
    let cpu = "/sys/fs/cgroup/cpu/ckpt-containers-CAPTURE-runc";
    let mut rf = restore_facts("runc", rec);
    rf.host_exists.insert(cpu.into(), false);
    for mode in ["ignore", "none", "props"] {
        let w = Wants {
            manage_cgroups_mode: Some(mode.into()),
            ..Wants::default()
        };
        let e = plan::restore(&rf, &w).unwrap_err();
        assert_eq!(e.code, Code::NotFound, "{mode}: {}", e.message);
        assert!(
            e.message.contains(cpu) && e.message.contains(&format!("mode {mode}")),
            "{}",
            e.message
        );
    }
    for mode in ["soft", "full", "strict"] {
        let w = Wants {
            manage_cgroups_mode: Some(mode.into()),
            ..Wants::default()
        };
        let p = plan::restore(&rf, &w).unwrap();
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains(cpu) && n.contains("CRIU creates it")),
            "{mode}: {:?}",
            p.notes
        );
    }
    // Images checkpointed in mode ignore hold no cgroup directory: nothing for CRIU to create
    // in any mode.
    rf.image_cgroup_dirs = Some(false);
    let e = plan::restore(&rf, &Wants::default()).unwrap_err();
    assert_eq!(e.code, Code::NotFound, "{}", e.message);
    assert!(
        e.message.contains(cpu) && e.message.contains("the images hold no cgroup"),
        "{}",
        e.message
    );
    rf.host_exists.insert(cpu.into(), true);
    plan::restore(&rf, &Wants::default()).unwrap();
    let w = Wants {
        manage_cgroups_mode: Some("ignore".into()),
        ..Wants::default()
    };
    assert_eq!(
        ext(&plan::restore(&rf, &w).unwrap())["/sys/fs/cgroup/cpu"],
        cpu
    );
}

/// Of the namespace types `ckpt_archive_opts_set_namespace` (and the command's --namespace)
/// accept, a path is joined for ipc, uts and user (network and pid: `runc_restore_plan`), and
/// refused before CRIU for mount, cgroup and time, which CRIU cannot restore into.
#[test]
fn a_namespace_path_is_joined_or_refused_by_type() {
    let rec = plan::checkpoint(&facts("runc"), &Wants::default())
        .unwrap()
        .record
        .unwrap();
    for (t, joined) in [
        ("ipc", true),
        ("uts", true),
        ("user", true),
        ("mount", false),
        ("cgroup", false),
        ("time", false),
    ] {
        let mut rf = restore_facts("runc", rec.clone());
        rf.existing.remove("/hooked");
        rf.existing.remove("/data/file");
        let path = join_ns_by_path(&mut rf.bundle.spec, t);
        let r = plan::restore(&rf, &Wants::default());
        if joined {
            let p = r.unwrap_or_else(|e| panic!("{t}: {e:?}"));
            assert!(
                opts(&p).contains(&Criu::JoinNs {
                    ns: t.into(),
                    file: path.clone()
                }),
                "{t}"
            );
        } else {
            let e = r.expect_err(t);
            assert_eq!(e.code, Code::Unsupported, "{t}: {e:?}");
            assert!(
                e.message
                    .contains(&format!("namespace given by path {path}")),
                "{t}: {e:?}"
            );
        }
    }
}

/// Makes the spec's namespace `t` the one of pid 1, given by path; returns the path.
fn join_ns_by_path(spec: &mut oci_spec::runtime::Spec, t: &str) -> String {
    let mut v = serde_json::to_value(&*spec).unwrap();
    let nss = v["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != t);
    let path = format!("/proc/1/ns/{t}");
    nss.push(serde_json::json!({"type": t, "path": path}));
    *spec = serde_json::from_value(v).unwrap();
    path
}

#[test]
fn a_checkpoint_whose_namespace_path_no_restore_takes_is_refused() {
    for (t, refused) in [
        ("ipc", false),
        ("uts", false),
        ("mount", true),
        ("cgroup", true),
        ("time", true),
    ] {
        let mut f = facts("crun");
        let path = join_ns_by_path(&mut f.bundle.spec, t);
        let r = plan::checkpoint(&f, &Wants::default());
        if refused {
            let e = r.expect_err(t);
            assert_eq!(e.code, Code::Unsupported, "{t}: {e:?}");
            assert!(
                e.message
                    .contains(&format!("namespace given by path {path}")),
                "{t}: {e:?}"
            );
        } else {
            r.unwrap_or_else(|e| panic!("{t}: {e:?}"));
        }
    }
}

#[test]
fn crun_restore_plan() {
    let rec = plan::checkpoint(&facts("crun"), &Wants::default())
        .unwrap()
        .record
        .unwrap();
    let p = plan::restore(&restore_facts("crun", rec), &Wants::default()).unwrap();
    let o = opts(&p);
    assert!(o.contains(&Criu::EmptyNs("network".into())));
    assert!(o.contains(&Criu::NetworkLock("skip".into())));
    let roots = o
        .iter()
        .filter(|c| matches!(c, Criu::CgroupRoot { .. }))
        .count();
    assert_eq!(roots, 9);
}

#[test]
fn a_crun_container_s_masked_files_are_keyed_as_crun_keys_them() {
    // `crun restore` maps each masked file by its path; `runc restore` maps /dev/null.
    let w = Wants {
        runtime: Some("crun".into()),
        ..Default::default()
    };
    let p = plan::checkpoint(&facts("crun"), &w).unwrap();
    let e = ext(&p);
    assert_eq!(e["/proc/keys"], "/proc/keys");
    assert_eq!(e["/proc/timer_list"], "/proc/timer_list");
    assert_eq!(e["/data/file"], "/data/file", "bind mounts are keyed alike");
    let step = p
        .criu
        .iter()
        .find(|s| matches!(&s.what, Criu::ExtMount { key, .. } if key == "/proc/keys"))
        .unwrap();
    assert!(step.reason.contains("crun"), "{}", step.reason);
    let e = ext(&plan::checkpoint(&facts("crun"), &Wants::default()).unwrap());
    assert_eq!(e["/proc/keys"], "/dev/null", "runc's key unless told crun");
}

#[test]
fn images_crun_wrote_restore_with_cruns_masked_keys() {
    // crun checkpoint leaves no record either: every masked path maps to /dev/null.
    let b = bundle("crun");
    let h = host("crun");
    let rec = plan::record_from_runc(
        &b.spec,
        &h.mounts,
        vec!["/dev/null".into(); 3],
        &BTreeMap::new(),
    );
    let mut rf = restore_facts("crun", rec);
    rf.hooks = false;
    rf.stdio_given = [false; 3];
    let p = plan::restore(&rf, &Wants::default()).unwrap();
    let e = ext(&p);
    for m in ["/proc/keys", "/proc/timer_list", "/proc/kcore", "/dev/null"] {
        assert_eq!(e[m], "/dev/null", "{m}");
    }
    assert_eq!(e["/data/dir"], format!("{CAP}/crun/host-dir"));
}

#[test]
fn images_runc_wrote_restore_with_runcs_external_mounts() {
    let b = bundle("runc");
    let h = host("runc");
    let kinds = [(format!("{CAP}/runc/host-file"), Kind::File)]
        .into_iter()
        .collect();
    let rec = plan::record_from_runc(&b.spec, &h.mounts, vec!["/dev/null".into(); 3], &kinds);
    let mut rf = restore_facts("runc", rec);
    rf.hooks = false;
    let p = plan::restore(&rf, &Wants::default()).unwrap();
    let e = ext(&p);
    assert_eq!(e["/data/file"], format!("{CAP}/runc/host-file"));
    assert_eq!(
        e["/sys/fs/cgroup/freezer"],
        "/sys/fs/cgroup/freezer/ckpt-containers-CAPTURE-runc"
    );
    assert_eq!(e["/dev/null"], "/dev/null");
    assert!(opts(&p).contains(&Criu::NetworkLock("iptables".into())));
}

#[test]
fn explain_is_the_plan_as_json_with_a_reason_for_everything() {
    let p = plan::checkpoint(&facts("runc"), &Wants::default()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(v["operation"], "checkpoint");
    assert_eq!(v["criu"][0]["option"], "root");
    assert_eq!(v["criu"][0]["value"], format!("{CAP}/runc/rootfs"));
    for s in v["criu"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["actions"].as_array().unwrap())
    {
        assert!(s["reason"].as_str().is_some_and(|r| r.len() > 10), "{s}");
    }
    let ext = v["criu"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["option"] == "ext_mount" && s["value"]["key"] == "/hooked")
        .unwrap();
    assert!(
        ext["reason"]
            .as_str()
            .unwrap()
            .contains("not in config.json")
    );
    assert_eq!(v["record"]["mounts"].as_array().unwrap().len(), 15);
    assert_eq!(v["descriptors"][0], "/dev/null");
    let rec = p.record.unwrap();
    let r = plan::restore(&restore_facts("runc", rec), &Wants::default()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["operation"], "restore");
    assert_eq!(v["actions"][0]["action"], "bind_rootfs");
    assert!(v.get("record").is_none());
}

#[test]
fn runtime_state_files() {
    let l = ckpt::container::runtime::parse_runc_state(&text("runc", "state.json")).unwrap();
    assert_eq!(l.bundle, PathBuf::from(format!("{CAP}/runc")));
    assert_eq!(l.pid.to_string(), text("runc", "pid").trim());
    assert_eq!(l.created.as_deref(), Some("2026-11-30T13:23:33.187079358Z"));
    let l = ckpt::container::runtime::parse_crun_status(&text("crun", "status")).unwrap();
    assert_eq!(l.bundle, PathBuf::from(format!("{CAP}/crun")));
    assert_eq!(l.created.as_deref(), Some("2026-11-30T13:23:34.319377Z"));
    assert!(ckpt::container::runtime::parse_runc_state("{}").is_err());
    assert!(ckpt::container::runtime::locate("docker", None, "x").is_err());
    assert!(ckpt::container::runtime::locate("runc", None, "../x").is_err());
}

/// A container the runtime created but did not start (its exec.fifo still there) is refused
/// with the reason, before CRIU: its pid is the runtime's init, which CRIU fails on with an
/// unrelated message about mounts.
#[test]
fn a_created_but_not_started_container_is_refused() {
    use ckpt::container::runtime::locate;
    let root = std::env::temp_dir().join(format!("ckpt-containers-{}-created", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (rt, file) in [("runc", "state.json"), ("crun", "status")] {
        let dir = root.join(rt).join("c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), text(rt, file)).unwrap();
        let fifo = dir.join("exec.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = locate(rt, Some(&root.join(rt)), "c1").unwrap_err();
        assert_eq!(e.code, Code::InvalidState, "{rt}: {e:?}");
        assert!(
            e.message.contains("created but not started") && e.message.contains("exec.fifo"),
            "{rt}: {}",
            e.message
        );
        std::fs::remove_file(&fifo).unwrap();
        let l = locate(rt, Some(&root.join(rt)), "c1").unwrap();
        assert!(l.pid > 0, "{rt}: a started container is found");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// Bad input is refused by the reading step with the file and the fault named.
#[test]
fn bad_bundles_are_refused_before_criu() {
    use ckpt::container::read;
    let d = std::env::temp_dir().join(format!("ckpt-containers-{}-bad", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let e = read::bundle(&d.join("nope")).unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert!(e.message.contains("is not a directory"), "{}", e.message);
    let e = read::bundle(&d).unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert!(
        e.message.contains("config.json does not exist"),
        "{}",
        e.message
    );
    std::fs::write(d.join("config.json"), "not json").unwrap();
    let e = read::bundle(&d).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.message.contains("is not a valid OCI runtime spec"),
        "{}",
        e.message
    );
    std::fs::write(d.join("config.json"), text("runc", "config.json")).unwrap();
    let e = read::bundle(&d).unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert!(
        e.message.contains("rootfs") && e.message.contains("does not exist"),
        "{}",
        e.message
    );
    let mut spec: serde_json::Value = serde_json::from_str(&text("runc", "config.json")).unwrap();
    spec["root"]["path"] = "rootfs".into();
    std::fs::write(d.join("config.json"), spec.to_string()).unwrap();
    std::fs::create_dir(d.join("rootfs")).unwrap();
    read::bundle(&d).unwrap();
    // This test's own process is not that container's init.
    let e = read::checkpoint_facts(&d, std::process::id() as i32).unwrap_err();
    assert_eq!(e.code, Code::InvalidState);
    assert!(
        e.message.contains("is not in the container"),
        "{}",
        e.message
    );
    let e = read::checkpoint_facts(&d, 0).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    // An init that exited and is not reaped yet: said so, not a failed read of its root.
    let mut z = std::process::Command::new("true").spawn().unwrap();
    let stat = format!("/proc/{}/stat", z.id());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !std::fs::read_to_string(&stat).unwrap().contains(") Z") {
        assert!(std::time::Instant::now() < until, "no zombie");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let e = read::checkpoint_facts(&d, z.id() as i32).unwrap_err();
    z.wait().unwrap();
    assert_eq!(e.code, Code::InvalidState, "{e:?}");
    assert!(e.message.contains("has exited"), "{}", e.message);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn criu_config_file_from_the_annotation_else_runcs_default() {
    let mut f = facts("runc");
    let cfg = |p: &Plan| {
        opts(p).into_iter().find_map(|c| match c {
            Criu::ConfigFile(x) => Some(x),
            _ => None,
        })
    };
    assert_eq!(cfg(&plan::checkpoint(&f, &Wants::default()).unwrap()), None);
    f.host.runc_conf = true;
    assert_eq!(
        cfg(&plan::checkpoint(&f, &Wants::default()).unwrap()).as_deref(),
        Some("/etc/criu/runc.conf")
    );
    let mut spec = f.bundle.spec.clone();
    spec.set_annotations(Some(
        [(
            "org.criu.config".to_string(),
            "/etc/criu/mine.conf".to_string(),
        )]
        .into_iter()
        .collect(),
    ));
    f.bundle.spec = spec;
    let p = plan::checkpoint(&f, &Wants::default()).unwrap();
    assert_eq!(cfg(&p).as_deref(), Some("/etc/criu/mine.conf"));
    assert!(
        p.criu
            .iter()
            .any(|s| s.reason.contains("org.criu.config annotation"))
    );
}

#[test]
fn a_mountpoint_under_a_bind_mount_is_made_in_that_binds_source() {
    // config.json binds host-dir on /data/dir and inner-src on /data/dir/inner: the inner
    // mountpoint sits in host-dir (runc's issue 2748), and a mount under the hook's /hooked
    // sits in hook-src.
    let mut f = facts("runc");
    let mut spec = f.bundle.spec.clone();
    let mut mounts = spec.mounts().clone().unwrap();
    let inner: oci_spec::runtime::Mount = serde_json::from_value(serde_json::json!({
        "destination": "/data/dir/inner", "type": "bind",
        "source": format!("{CAP}/runc/inner-src"), "options": ["rbind"]}))
    .unwrap();
    let deep: oci_spec::runtime::Mount = serde_json::from_value(serde_json::json!({
        "destination": "/hooked/deep/file", "type": "bind",
        "source": format!("{CAP}/runc/host-file"), "options": ["bind"]}))
    .unwrap();
    mounts.push(inner);
    mounts.push(deep);
    spec.set_mounts(Some(mounts));
    f.bundle.spec = spec;
    for mp in ["/data/dir/inner", "/hooked/deep/file"] {
        f.running.resolved.insert(mp.into(), mp.into());
    }
    f.running
        .kinds
        .insert("/hooked/deep/file".into(), Kind::File);
    f.running.mounts.extend(
        mountinfo::parse(&format!(
            "120 87 254:0 {CAP}/runc/inner-src /data/dir/inner rw,relatime - ext4 /dev/vda rw\n\
             121 90 254:0 {CAP}/runc/host-file /hooked/deep/file rw,relatime - ext4 /dev/vda rw\n"
        ))
        .unwrap(),
    );
    let rec = plan::checkpoint(&f, &Wants::default())
        .unwrap()
        .record
        .unwrap();
    let mut rf = restore_facts("runc", rec);
    rf.bundle = f.bundle.clone();
    rf.existing.remove("/data/dir/inner");
    rf.existing.remove("/hooked/deep/file");
    let p = plan::restore(&rf, &Wants::default()).unwrap();
    let created: Vec<(PathBuf, Kind, String)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.what {
            Action::CreateMountpoint { path, kind, .. } => {
                Some((path.clone(), *kind, a.reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(
        created[0].0,
        PathBuf::from(format!("{CAP}/runc/host-dir/inner"))
    );
    assert_eq!(created[0].1, Kind::Dir);
    assert!(
        created[0].2.contains("under bind mount /data/dir"),
        "{}",
        created[0].2
    );
    assert_eq!(
        created[1].0,
        PathBuf::from(format!("{CAP}/runc/hook-src/deep/file"))
    );
    assert_eq!(created[1].1, Kind::File);
    // CRIU mounts them as usual, the outer bind first (it mounts parents before children).
    let e = ext(&p);
    assert_eq!(e["/data/dir/inner"], format!("{CAP}/runc/inner-src"));
    assert_eq!(e["/hooked/deep/file"], format!("{CAP}/runc/host-file"));
}

#[test]
fn veth_pairs_are_recreated_when_the_network_is_kept() {
    use ckpt::container::veth::Veth;
    let mut f = facts("crun");
    f.running.veths = Some(vec![Veth {
        inside: "eth0".into(),
        outside: "veth1a2b".into(),
        bridge: Some("cni0".into()),
    }]);
    // By default (as runc) the namespace is restored empty: the pair is noted, not recorded.
    let p = plan::checkpoint(&f, &Wants::default()).unwrap();
    assert!(p.record.as_ref().unwrap().veths.is_empty());
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("veth pair eth0") && n.contains("restored empty")),
        "{:?}",
        p.notes
    );
    let keep = Wants {
        keep_network: true,
        ..Default::default()
    };
    let rec = plan::checkpoint(&f, &keep).unwrap().record.unwrap();
    assert_eq!(rec.veths.len(), 1);
    // The record survives its JSON form (ckpt-container.json).
    let rec: Record = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
    let rf = restore_facts("crun", rec.clone());
    let p = plan::restore(&rf, &keep).unwrap();
    assert!(opts(&p).contains(&Criu::VethPair {
        inside: "eth0".into(),
        outside: "veth1a2b@cni0".into()
    }));
    assert!(!opts(&p).iter().any(|c| matches!(c, Criu::EmptyNs(_))));
    // Restored empty: no pair; the caller's own pairs replace the recorded ones.
    let p = plan::restore(&restore_facts("crun", rec.clone()), &Wants::default()).unwrap();
    assert!(!opts(&p).iter().any(|c| matches!(c, Criu::VethPair { .. })));
    let mine = Wants {
        keep_network: true,
        caller_veths: true,
        ..Default::default()
    };
    let p = plan::restore(&restore_facts("crun", rec), &mine).unwrap();
    assert!(!opts(&p).iter().any(|c| matches!(c, Criu::VethPair { .. })));
    assert!(p.notes.iter().any(|n| n.contains("caller's veth pairs")));
    // Unreadable (no sysfs in the container) with the network kept: said in the plan.
    f.running.veths = None;
    let p = plan::checkpoint(&f, &keep).unwrap();
    assert!(p.notes.iter().any(|n| n.contains("could not be read")));
}

#[test]
fn empty_tmpfs_candidates_are_the_whole_tmpfs_mounts_with_nothing_below() {
    let p = plan::checkpoint(&facts("runc"), &Wants::default()).unwrap();
    let empty: Vec<(&str, u32)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.what {
            Action::EmptyTmpfs {
                mountpoint,
                mount_id,
            } => Some((mountpoint.as_str(), *mount_id)),
            _ => None,
        })
        .collect();
    // /dev and /sys/fs/cgroup have mounts below them, /dev's file system is also bound on
    // the masked files: CRIU tars those; the others are looked at once the container is frozen.
    assert_eq!(
        empty,
        [
            ("/dev/shm", 73),
            ("/scratch", 88),
            ("/proc/acpi", 50),
            ("/sys/firmware", 53)
        ]
    );
    // Nothing of it reaches CRIU's request or the record before the dump.
    assert!(!p.criu.iter().any(|c| matches!(&c.what,
        Criu::ExtMount { val, .. } if val.starts_with(ckpt::container::emptyfs::KEY_PREFIX))));
    // In a user namespace CRIU's tar records owners as the namespace sees them: none.
    let mut f = facts("runc");
    let mut linux = f.bundle.spec.linux().clone().unwrap();
    let mut ns = linux.namespaces().clone().unwrap_or_default();
    ns.push(
        oci_spec::runtime::LinuxNamespaceBuilder::default()
            .typ(oci_spec::runtime::LinuxNamespaceType::User)
            .build()
            .unwrap(),
    );
    linux.set_namespaces(Some(ns));
    f.bundle.spec.set_linux(Some(linux));
    let p = plan::checkpoint(&f, &Wants::default()).unwrap();
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a.what, Action::EmptyTmpfs { .. }))
    );
}

/// Images that hold file locks are restored with `file_locks`: without it CRIU restored the
/// files but not their locks, silently (`core/tests/container_workloads.rs`
/// `file_locks_are_held_after_restore_with_the_file_locks_option` found the flock free).
#[test]
fn images_with_file_locks_are_restored_with_them() {
    let rec = plan::checkpoint(&facts("runc"), &Wants::default())
        .unwrap()
        .record
        .unwrap();
    let mut rf = restore_facts("runc", rec);
    let locks = |p: &plan::Plan| {
        p.criu
            .iter()
            .filter(|s| matches!(s.what, plan::Criu::FileLocks(_)))
            .count()
    };
    assert_eq!(locks(&plan::restore(&rf, &Wants::default()).unwrap()), 0);
    rf.image_file_locks = true;
    let p = plan::restore(&rf, &Wants::default()).unwrap();
    assert!(
        p.criu
            .iter()
            .any(|s| s.what == plan::Criu::FileLocks(true) && s.reason.contains("filelocks.img")),
        "{:?}",
        p.criu
    );
}
