//! The container layer from the command line, for scripts that compare it with runc:
//!   container checkpoint BUNDLE PID IMAGES [leave-running]
//!   container restore BUNDLE IMAGES PIDFILE
//!   container explain-checkpoint BUNDLE PID IMAGES | explain-restore BUNDLE IMAGES
//! $CKPT_CRIU names the criu binary; $CKPT_NETWORK_LOCK (iptables, nftables, skip) overrides
//! the layer's choice of network lock, to measure each.

use ckpt::container::{self, RestoreRequest};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize| a.get(i).cloned().unwrap_or_else(|| usage());
    let mut o = ckpt::Options::new();
    if let Some(c) = std::env::var_os("CKPT_CRIU") {
        o.set_criu_path(c).expect("criu path");
    }
    if let Ok(l) = std::env::var("CKPT_NETWORK_LOCK") {
        o.set_network_lock(&l).expect("network lock");
    }
    let r = match arg(1).as_str() {
        "checkpoint" | "explain-checkpoint" => {
            o.set_image_path(arg(4)).expect("image path");
            if let Some(x) = a.get(5) {
                o.set_leave_running(x == "leave-running");
            }
            let pid: i32 = arg(3).parse().unwrap_or_else(|_| usage());
            if a[1] == "checkpoint" {
                container::checkpoint(&mut o, arg(2).as_ref(), pid, false).map(|(p, _)| p)
            } else {
                container::plan_checkpoint(&o, arg(2).as_ref(), pid, false)
            }
        }
        "restore" | "explain-restore" => {
            o.set_image_path(arg(3)).expect("image path");
            let req = RestoreRequest {
                bundle: arg(2).into(),
                ..Default::default()
            };
            if a[1] == "restore" {
                o.set_pid_file(arg(4)).expect("pid file");
                container::restore(&mut o, req).map(|(p, _)| p)
            } else {
                container::plan_restore(&o, &req)
            }
        }
        _ => usage(),
    };
    match r {
        Ok(p) => println!("{}", p.to_json()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: container checkpoint|explain-checkpoint BUNDLE PID IMAGES [leave-running] | restore BUNDLE IMAGES PIDFILE | explain-restore BUNDLE IMAGES"
    );
    std::process::exit(2);
}
