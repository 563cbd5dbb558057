//! Questions to CRIU that change nothing: its version, the kernel features it finds, CHECK,
//! and the feature checks other operations make before they start.

use super::*;

/// CRIU's version, as it reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// Major number (4 for CRIU 4.1.1).
    pub major: i32,
    /// Minor number (1 for CRIU 4.1.1).
    pub minor: i32,
    /// Sublevel (1 for CRIU 4.1.1); 0 when CRIU gave none.
    pub sublevel: i32,
    /// Extra number; 0 when CRIU gave none.
    pub extra: i32,
    /// The git id of a development build.
    pub gitid: Option<String>,
    /// The release name.
    pub name: Option<String>,
}

impl Version {
    /// major*10000 + minor*100 + sublevel, as libcriu's criu_get_version; saturated at
    /// `i32::MIN` and `i32::MAX` for numbers no CRIU release has (never an overflow).
    pub fn number(&self) -> i32 {
        let n =
            i64::from(self.major) * 10000 + i64::from(self.minor) * 100 + i64::from(self.sublevel);
        n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}

/// What CRIU answered for each feature; `None` where it gave no answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Memory change tracking (soft-dirty bits): pre-dump and dumps on a parent image.
    pub mem_track: Option<bool>,
    /// userfaultfd: lazy pages.
    pub lazy_pages: Option<bool>,
    /// The pidfd store iterative pre-dumps use to detect pid reuse.
    pub pidfd_store: Option<bool>,
}

/// What CRIU said about itself, kept on the options (the handle) so that each question is
/// asked once per handle and criu binary (runc spawns criu for its version before every
/// checkpoint). A different criu path or service socket starts afresh.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    from: Option<(Option<PathBuf>, Option<PathBuf>)>,
    version: Option<Version>,
    features: Features,
}

fn answers(o: &Options) -> std::sync::MutexGuard<'_, Answers> {
    let mut a = o.criu_answers.lock().unwrap_or_else(|p| p.into_inner());
    let key = (o.criu_path.clone(), o.service_address.clone());
    if a.from.as_ref() != Some(&key) {
        *a = Answers {
            from: Some(key),
            ..Default::default()
        };
    }
    a
}

impl Features {
    fn merge(&mut self, f: Features) {
        self.mem_track = f.mem_track.or(self.mem_track);
        self.lazy_pages = f.lazy_pages.or(self.lazy_pages);
        self.pidfd_store = f.pidfd_store.or(self.pidfd_store);
    }
}

/// CRIU's version: asked once per handle and criu binary, then remembered.
pub fn version(o: &Options) -> Result<Version> {
    // A cached answer asks nothing of criu, but the query is still an operation: a triggered
    // token stops it as it stops every other (docs/guarantees.md, "Cancellation").
    o.check_cancelled()?;
    let mut a = answers(o);
    if let Some(v) = &a.version {
        return Ok(v.clone());
    }
    let v = ask_version(o)?;
    a.version = Some(v.clone());
    Ok(v)
}

fn ask_version(o: &Options) -> Result<Version> {
    let req = CriuReq {
        r#type: CriuReqType::Version as i32,
        ..Default::default()
    };
    let resp = simple(o, req, "version")?;
    let v = resp
        .version
        .ok_or_else(|| Error::new(Code::Protocol, "criu answered VERSION without a version"))?;
    Ok(Version {
        major: v.major_number,
        minor: v.minor_number,
        sublevel: v.sublevel.unwrap_or(0),
        extra: v.extra.unwrap_or(0),
        gitid: v.gitid,
        name: v.name,
    })
}

/// Asks CRIU about every feature it can check; the answer is CRIU's, never the question echoed.
/// Always asks; the answers are remembered for the checks operations make.
pub fn feature_check(o: &Options) -> Result<Features> {
    let ask = CriuFeatures {
        mem_track: Some(true),
        lazy_pages: Some(true),
        pidfd_store: Some(true),
    };
    let mut a = answers(o);
    let f = feature_query(o, ask)?;
    a.features.merge(f);
    Ok(f)
}

/// One feature's answer: from what this handle already heard from CRIU, else asked (once).
fn cached_feature(
    o: &Options,
    pick: fn(&Features) -> Option<bool>,
    ask: CriuFeatures,
) -> Result<Option<bool>> {
    o.check_cancelled()?;
    let mut a = answers(o);
    if let Some(v) = pick(&a.features) {
        return Ok(Some(v));
    }
    let f = feature_query(o, ask)?;
    a.features.merge(f);
    Ok(pick(&a.features))
}

fn feature_query(o: &Options, ask: CriuFeatures) -> Result<Features> {
    let req = CriuReq {
        r#type: CriuReqType::FeatureCheck as i32,
        features: Some(ask),
        ..Default::default()
    };
    // CRIU reports a missing feature as success=false with the features filled in; read them
    // from the reply either way.
    let (mut conn, _) = connect(o, Op::Check, &[])?;
    conn.send(&req)?;
    let reply = conn.recv()?;
    let f = reply.resp.features.clone().ok_or_else(|| {
        if reply.resp.success {
            Error::new(
                Code::Protocol,
                "criu answered FEATURE_CHECK without features",
            )
        } else {
            session::criu_failure(&reply.resp, "feature check", &LogRef::default(), &mut conn)
        }
    })?;
    conn.finish();
    Ok(Features {
        mem_track: f.mem_track,
        lazy_pages: f.lazy_pages,
        pidfd_store: f.pidfd_store,
    })
}

/// CRIU's CHECK request: does this kernel have what CRIU needs? CRIU writes its log,
/// `check.log` (or the options' log file name), into the image path, which is created when
/// missing; without an image path, into a private temporary directory that is removed
/// unless the check fails (the error's log path then names it).
pub fn check(o: &Options) -> Result<()> {
    // Before the image directory is created: a cancelled operation creates nothing.
    o.check_cancelled()?;
    // CRIU 4.1.1 serves CHECK over RPC only with options naming an images directory, where
    // it writes check.log (a request without options crashes its worker). Use the caller's
    // image path when set, else a private temporary directory, kept only when the check
    // fails and CRIU wrote its log there, so the log can be read.
    if o.image_path.is_some() {
        let ws = Workspace::open(o, Op::Check, true)?;
        return run(o, &ws, Op::Check, CriuReqType::Check, None, &[], "check").map(drop);
    }
    let tmp = fresh_temp_dir("ckpt-check")?;
    let images = paths::open_dir("check directory", &tmp, false)?;
    let log_name = o
        .log_file
        .as_deref()
        .unwrap_or(Op::Check.default_log().as_ref());
    let ws = Workspace {
        log: log_ref(o, &images, log_name),
        images,
        work: None,
        _lock: None,
    };
    let r = run(o, &ws, Op::Check, CriuReqType::Check, None, &[], "check");
    drop(ws);
    let logged = std::fs::metadata(tmp.join(log_name)).is_ok_and(|m| m.len() > 0);
    match r {
        Err(e) if logged => Err(e),
        // A criu that failed before it logged (killed, not started, its log sent to its
        // standard error) leaves the directory empty: it goes, and the error names no log in it.
        Err(mut e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            if let Some(p) = e.log_path.take_if(|p| p.starts_with(&tmp)) {
                let unread = format!("its log {} could not be read", p.display());
                e.message = e.message.replace(&unread, "it wrote no log");
            }
            Err(e)
        }
        Ok(_) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
    }
}

/// A new directory, mode 0700, in the temporary directory. mkdir fails on any existing name,
/// symlinks included, so the directory is always one this call created. The name comes from
/// the pid, the thread and the clock, so no process-wide counter is needed.
fn fresh_temp_dir(prefix: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    let mut last = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{tid}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::io(
        format!("creating a {prefix} directory"),
        last.map_or_else(|| "no attempt".to_string(), |e| e.to_string()),
    ))
}

pub(super) fn require_mem_track(o: &Options, why: &str) -> Result<()> {
    let f = cached_feature(
        o,
        |f| f.mem_track,
        CriuFeatures {
            mem_track: Some(true),
            ..Default::default()
        },
    )?;
    if f != Some(true) {
        return Err(Error::new(
            Code::Unsupported,
            format!(
                "{why} needs memory change tracking, which CRIU reports unavailable on this kernel (soft-dirty bits, CONFIG_MEM_SOFT_DIRTY)"
            ),
        ));
    }
    Ok(())
}

pub(super) fn require_lazy_pages(o: &Options) -> Result<()> {
    let f = cached_feature(
        o,
        |f| f.lazy_pages,
        CriuFeatures {
            lazy_pages: Some(true),
            ..Default::default()
        },
    )?;
    if f != Some(true) {
        return Err(Error::new(
            Code::Unsupported,
            "lazy-pages needs userfaultfd support, which CRIU reports unavailable on this kernel",
        ));
    }
    Ok(())
}
