//! Checkpoints: a dump or single pre-dump, and iterative pre-dumps on one connection.

use super::*;

fn check_dump_state(o: &Options, pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Error::invalid(format!("pid {pid} is not a process id")));
    }
    let Some(status) = o.container_status else {
        return Ok(());
    };
    let status = match crate::procstatus::state(pid) {
        None | Some('Z') | Some('X') => ContainerStatus::Stopped,
        _ => status,
    };
    match status {
        ContainerStatus::Created | ContainerStatus::Stopped => Err(Error::new(
            Code::InvalidState,
            format!(
                "container cannot be checkpointed in {} state",
                status.name()
            ),
        )),
        ContainerStatus::Running | ContainerStatus::Paused => Ok(()),
    }
}

fn validate_dump(o: &Options, pid: i32) -> Result<()> {
    o.check_cancelled()?;
    check_dump_state(o, pid)?;
    super::target::check(pid)?;
    if o.lazy_pages == Some(true) && o.page_server.is_none() {
        return Err(Error::invalid(
            "lazy-pages needs a page-server ADDRESS:PORT to serve the pages from",
        ));
    }
    Ok(())
}

/// The last check before criu starts (the others' refusals come first): a criu swrk child
/// cannot dump a tree that holds it; a `criu service` elsewhere may.
fn not_the_caller(o: &Options, pid: i32) -> Result<()> {
    if o.service_address().is_none() {
        super::target::check_not_ancestor(pid)?;
        // criu swrk runs with ckpt's credentials; a criu service has its own.
        super::rlimits::check(pid)?;
    }
    Ok(())
}

/// Checkpoints the tree rooted at `pid` (a single pre-dump when the pre-dump flag is set) and
/// returns CRIU's statistics for it. A panic in the notification callback fails the dump as a
/// failing callback does (criu told to abort and reaped), then goes on in the caller.
pub fn checkpoint(o: &Options, pid: i32) -> Result<Stats> {
    super::callback_panic::resumed_after(|| checkpoint_inner(o, pid))
}

fn checkpoint_inner(o: &Options, pid: i32) -> Result<Stats> {
    validate_dump(o, pid)?;
    let ws = Workspace::open(
        o,
        if o.pre_dump == Some(true) {
            Op::PreDump
        } else {
            Op::Dump
        },
        true,
    )?;
    if let Some(parent) = &o.parent_path {
        paths::check_parent(&ws.images.path, parent)?;
    }
    if o.pre_dump == Some(true) {
        require_mem_track(o, "pre-dump")?;
    } else if o.parent_path.is_some() {
        require_mem_track(o, "a dump on top of a parent image (parent-path)")?;
    }
    if o.lazy_pages == Some(true) {
        require_lazy_pages(o)?;
    }
    let (op, ty, what) = if o.pre_dump == Some(true) {
        (Op::PreDump, CriuReqType::SinglePreDump, "pre-dump")
    } else {
        (Op::Dump, CriuReqType::Dump, "dump")
    };
    not_the_caller(o, pid)?;
    let (_, mut outcome) = run_watched(o, &ws, op, ty, Some(pid), &[], what, None, &mut |_| {})
        .map_err(|e| explain_missing(e, pid))
        .map_err(|e| match op {
            Op::Dump => super::netunlock::after(o, pid, e),
            _ => e,
        })?;
    if op == Op::Dump && o.leave_running != Some(true) {
        outcome |= crate::error::outcome::TREE_KILLED;
    }
    let mut st = ws.stats(false).unwrap_or_default();
    st.outcome = outcome;
    Ok(st)
}

/// CRIU logs a vanished pid only as fallout ("Unable to detach from N"); when the process is
/// gone, say so first. The log path and excerpt stay as CRIU left them.
fn explain_missing(mut e: Error, pid: i32) -> Error {
    if e.code == Code::Criu && crate::procstatus::state(pid).is_none() {
        e.message = format!("process {pid} does not exist: {}", e.message);
    }
    e
}

/// Iterative migration on one connection: PRE_DUMP rounds, each in `image_path/pre-N` on top
/// of the one before, while `go_on(round, stats)` says so (at most `max_rounds`, which must
/// be at least 1, as in C), then the final DUMP in the image path with the last round as its
/// parent.
pub fn checkpoint_iterative(
    o: &Options,
    pid: i32,
    max_rounds: u32,
    go_on: &mut dyn FnMut(u32, &Stats) -> bool,
) -> Result<Stats> {
    checkpoint_iterative_with(o, pid, max_rounds, &mut |r, s| Ok(go_on(r, s)))
}

/// `checkpoint_iterative`, with a `go_on` that may also end the sequence with an error
/// (no final dump follows).
pub fn checkpoint_iterative_with(
    o: &Options,
    pid: i32,
    max_rounds: u32,
    go_on: &mut dyn FnMut(u32, &Stats) -> Result<bool>,
) -> Result<Stats> {
    super::callback_panic::resumed_after(|| iterative(o, pid, max_rounds, go_on))
}

fn iterative(
    o: &Options,
    pid: i32,
    max_rounds: u32,
    go_on: &mut dyn FnMut(u32, &Stats) -> Result<bool>,
) -> Result<Stats> {
    if max_rounds == 0 {
        return Err(Error::invalid("max_rounds must be at least 1"));
    }
    validate_dump(o, pid)?;
    let final_ws = Workspace::open(o, Op::Dump, true)?;
    require_mem_track(o, "iterative pre-dump")?;
    not_the_caller(o, pid)?;
    let (mut conn, _) = connect(o, Op::PreDump, &[])?;
    let mut parent: Option<String> = None;
    let mut round = 0;
    loop {
        round += 1;
        let dir_name = format!("pre-{round}");
        let dir = paths::open_dir(
            "pre-dump image path",
            &final_ws.images.path.join(&dir_name),
            true,
        )?;
        let mut req_opts = request::build(
            o,
            Op::PreDump,
            Some(pid),
            &FdNumbers {
                images_dir: dir.fd.as_raw_fd(),
                work_dir: final_ws.work.as_ref().map(|w| w.fd.as_raw_fd()),
                inherit: vec![],
            },
        );
        req_opts.parent_img = parent.as_ref().map(|p| format!("../{p}").into_bytes());
        req_opts.track_mem = Some(true);
        if req_opts.log_file.is_some() {
            req_opts.log_file = Some(format!("pre-dump-{round}.log").into_bytes());
        }
        let log = final_ws.log_named(o, &format!("pre-dump-{round}.log"));
        let req = CriuReq {
            r#type: CriuReqType::PreDump as i32,
            opts: Some(req_opts),
            ..Default::default()
        };
        session::exchange(&mut conn, &req, "pre-dump", &log, &mut |n| {
            handle_notification(o, n)
        })?;
        // CRIU writes stats-dump into the work directory when there is one.
        let stats_dir = final_ws
            .work
            .as_ref()
            .map_or(dir.fd.as_fd(), |w| w.fd.as_fd());
        let st = stats::read_in(stats_dir, dir.fd.as_fd(), false, None).unwrap_or_default();
        parent = Some(dir_name);
        if round >= max_rounds || !go_on(round, &st)? {
            break;
        }
    }
    let mut req_opts = request::build(o, Op::Dump, Some(pid), &final_ws.numbers(vec![]));
    req_opts.parent_img = parent.map(String::into_bytes);
    req_opts.track_mem = Some(true);
    let req = CriuReq {
        r#type: CriuReqType::Dump as i32,
        opts: Some(req_opts),
        ..Default::default()
    };
    session::exchange(&mut conn, &req, "dump", &final_ws.log, &mut |n| {
        handle_notification(o, n)
    })
    .map_err(|e| super::netunlock::after(o, pid, e))?;
    let mut outcome = if conn.deadline_passed_after_no_return() {
        crate::error::outcome::DEADLINE_PASSED
    } else {
        0
    };
    if o.leave_running != Some(true) {
        outcome |= crate::error::outcome::TREE_KILLED;
    }
    conn.finish();
    let mut st = final_ws.stats(false).unwrap_or_default();
    st.outcome = outcome;
    Ok(st)
}
