//! Two ways of reaching CRIU besides spawning `criu swrk`, against the real CRIU: a running
//! `criu service` socket (`Options::service_address`), and CRIU's RPC configuration file
//! (`Options::config_file`).

mod common;

use std::path::Path;
use std::process::Command;

use ckpt::{Code, ops};
use common::*;

/// A `criu service` daemon on a unix socket; stopped (and its pid file's process killed) on drop.
struct Service {
    pid: i32,
}

impl Service {
    fn start(dir: &TempDir) -> (Service, std::path::PathBuf) {
        let sock = dir.join("criu.sock");
        let pidfile = dir.join("service.pid");
        let work = dir.sub("service-work");
        run(Command::new("criu")
            .arg("service")
            .arg("--address")
            .arg(&sock)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("-d")
            .arg("-W")
            .arg(&work)
            .arg("-o")
            .arg("service.log")
            .arg("-v4"));
        let pid = wait_for("the service's pid file", WAIT, || {
            std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
        });
        wait_for("the service socket", WAIT, || sock.exists().then_some(()));
        (Service { pid }, sock)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a pid read from the service's own pid file.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

#[test]
fn version_and_dump_through_a_running_criu_service() {
    if !criu_allowed("version_and_dump_through_a_running_criu_service") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("service");
    let (_svc, sock) = Service::start(&dir);
    let mut o = options(&dir.join("img"));
    o.set_service_address(&sock).unwrap();

    let v = ops::version(&o).expect("version through the service");
    let swrk = ops::version(&options(&dir.join("unused"))).expect("version through swrk");
    assert_eq!(v, swrk, "the service and swrk are the same criu");

    let counter = dir.join("counter");
    let w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 3);
    o.set_leave_running(true);
    let st = ops::checkpoint(&o, w.pid).expect("dump through the service");
    assert!(st.get(ckpt::StatKey::PagesWritten).is_some_and(|n| n > 0));
    assert!(
        dir.join("img/inventory.img").is_file(),
        "images in the image path"
    );
    let now = read_counter(&counter).expect("counter");
    wait_counter(&counter, now + 2);

    // Inherited descriptors cannot travel to a service: refused before anything is sent.
    let (r, _w) = pipe();
    o.add_inherit_fd("pipe:[1]", r).unwrap();
    let e = ops::restore(&o).expect_err("inherit fds with a service");
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
}

#[test]
fn service_address_that_nobody_listens_on() {
    let dir = TempDir::new("nosvc");
    let mut o = options(&dir.join("img"));
    o.set_service_address(dir.join("nobody.sock")).unwrap();
    let e = ops::version(&o).expect_err("no service");
    assert_eq!(e.code, Code::Spawn, "{e}");
    assert!(e.message.contains("cannot connect to criu service"), "{e}");
}

fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).expect("writing the CRIU config file");
}

#[test]
fn rpc_config_file_reaches_criu() {
    if !criu_allowed("rpc_config_file_reaches_criu") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("rpcconf");
    let counter = dir.join("counter");
    let w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 3);

    // The config file names the log; CRIU honours a log file from an RPC config file.
    let conf = dir.join("criu.conf");
    write_config(&conf, "log-file from-config.log\n");
    let mut o = options(&dir.join("img"));
    o.set_leave_running(true);
    o.set_config_file(&conf).unwrap();
    ops::checkpoint(&o, w.pid).expect("dump with an RPC config file");
    let log = dir.join("img/from-config.log");
    assert!(
        log.is_file(),
        "CRIU wrote its log where the config file said ({})",
        log.display()
    );

    // A config file CRIU cannot parse fails the request before CRIU's log opens; ckpt quotes
    // what criu said on its standard error.
    write_config(&conf, "no-such-criu-option\n");
    let e = ops::checkpoint(&o, w.pid).expect_err("a broken config file");
    assert_eq!(e.code, Code::Criu, "{e}");
    assert!(
        e.message
            .contains("unrecognized option '--no-such-criu-option'"),
        "{e}"
    );
}
