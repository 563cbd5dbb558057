//! The receiving side of a migration: a page server, and the lazy-pages daemon.

use super::*;

/// A page server [`page_server`] started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageServerStarted {
    /// The serving process. Not the caller's child: nothing to reap.
    pub pid: i32,
    /// The TCP port it listens on (the one asked for).
    pub port: i32,
}

/// Starts a page server (the receiving side of a migration) on the page-server address;
/// returns its pid and the port it listens on (the one asked for). The server is forked from
/// criu; it runs in the caller's session with /dev/null as its stdio, outlives criu, and exits
/// when the dump that feeds it is done. Once criu exits the kernel gives it to init, or to the
/// caller when the caller is a child subreaper, which must then reap it, as it must reap a
/// server that failed to start. ckpt cannot reap a failed one itself: it cannot tell it apart
/// from the caller's own children.
pub fn page_server(o: &Options) -> Result<PageServerStarted> {
    super::callback_panic::resumed_after(|| page_server_inner(o))
}

fn page_server_inner(o: &Options) -> Result<PageServerStarted> {
    // Before the image directory is created: a cancelled operation creates nothing.
    o.check_cancelled()?;
    if o.page_server.is_none() {
        return Err(Error::invalid(
            "a page server needs a page-server ADDRESS:PORT to listen on",
        ));
    }
    let ws = Workspace::open(o, Op::PageServer, true)?;
    let (mut conn, _) = connect(o, Op::PageServer, &[])?;
    // PAGE_SERVER_CHLD rather than PAGE_SERVER: CRIU 4.x answers PAGE_SERVER with pid 0 (the
    // daemonised server's pid is lost in cr_page_server), while it answers PAGE_SERVER_CHLD
    // with the pid of the process that serves.
    let req = CriuReq {
        r#type: CriuReqType::PageServerChld as i32,
        opts: Some(request::build(o, Op::PageServer, None, &ws.numbers(vec![]))),
        ..Default::default()
    };
    let resp = session::converse(&mut conn, &req, &ws.log, &mut |n| handle_notification(o, n))?;
    if !resp.success {
        return Err(session::criu_failure(
            &resp,
            "page-server",
            &ws.log,
            &mut conn,
        ));
    }
    conn.finish();
    // CRIU answers both forms with the type PAGE_SERVER.
    let answered = [CriuReqType::PageServer as i32, req.r#type];
    if !answered.contains(&resp.r#type) {
        return Err(Error::new(
            Code::Protocol,
            format!(
                "criu answered a PAGE_SERVER_CHLD request with {}",
                session::type_name(resp.r#type)
            ),
        ));
    }
    let ps = resp.ps.ok_or_else(|| {
        Error::new(
            Code::Protocol,
            "criu answered PAGE_SERVER_CHLD without its address",
        )
    })?;
    match (ps.pid, ps.port) {
        (Some(pid), Some(port)) if pid > 0 && port > 0 => Ok(PageServerStarted { pid, port }),
        _ => Err(Error::new(
            Code::Protocol,
            format!(
                "criu answered PAGE_SERVER_CHLD without a pid and port ({:?}, {:?})",
                ps.pid, ps.port
            ),
        )),
    }
}

/// Starts `criu lazy-pages` for the restoring side of a lazy restore: it hands the restored
/// tree its memory on demand, fetched from the dumping side's page server when a page-server
/// address is set (lazy migration), else read from the image path (post-copy restore of local
/// images). The daemon is a child of the caller, who reaps it; it exits once every page has
/// been served. With a status fd set, the daemon writes one byte to it once it listens for the
/// restore (CRIU's `--status-fd`): start the lazy restore only then. The status fd passes to
/// the daemon. Its log is `lazy-pages.log` in the work directory.
pub fn lazy_pages_daemon(o: &Options) -> Result<i32> {
    o.check_cancelled()?;
    let images = paths::open_dir("image path", o.image_dir()?, false)?;
    // It reads pstree.img at once and dies without it: say so here instead.
    if !images.path.join("inventory.img").exists() {
        return Err(Error::new(
            Code::NotFound,
            format!(
                "image path {} holds no checkpoint (inventory.img is missing)",
                images.path.display()
            ),
        ));
    }
    let work: PathBuf = o.work_path.clone().unwrap_or_else(|| images.path.clone());
    let port = o.page_server.as_ref().map(|ps| ps.port.to_string());
    let verbosity = format!("-v{}", o.log_level.unwrap_or(request::DEFAULT_LOG_LEVEL));
    let mut args: Vec<&OsStr> = vec![OsStr::new("criu"), OsStr::new("lazy-pages")];
    if let (Some(ps), Some(port)) = (&o.page_server, &port) {
        args.extend([
            OsStr::new("--page-server"),
            OsStr::new("--address"),
            OsStr::new(&ps.address),
            OsStr::new("--port"),
            OsStr::new(port),
        ]);
    }
    args.extend([
        OsStr::new("-D"),
        images.path.as_os_str(),
        OsStr::new("-W"),
        work.as_os_str(),
        OsStr::new("-o"),
        OsStr::new("lazy-pages.log"),
        OsStr::new(&verbosity),
    ]);
    // The status fd becomes the daemon's fd 3 (spawn's first extra descriptor).
    let status = o.take_status_fd();
    let status_no = crate::spawn::FIRST_CHILD_FD.to_string();
    if status.is_some() {
        args.push(OsStr::new("--status-fd"));
        args.push(OsStr::new(&status_no));
    }
    let fds: Vec<BorrowedFd<'_>> = status.iter().map(|f| f.as_fd()).collect();
    crate::spawn::spawn(criu_binary(o).as_os_str(), &args, &fds, Stdio::Null)
}
