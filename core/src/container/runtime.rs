//! A container started by runc or crun, found from the runtime's own state: its bundle and
//! its init's pid.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where a runtime's container is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The container's OCI bundle directory.
    pub bundle: PathBuf,
    /// The container's init, as the runtime recorded it.
    pub pid: i32,
    /// When the runtime created the container (RFC 3339), if its state says.
    pub created: Option<String>,
}

#[derive(Deserialize)]
struct RuncConfig {
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct RuncState {
    init_process_pid: i32,
    config: RuncConfig,
    #[serde(default)]
    created: Option<String>,
}

#[derive(Deserialize)]
struct CrunStatus {
    pid: i32,
    bundle: PathBuf,
    #[serde(default)]
    created: Option<String>,
}

/// runc's state.json text: the bundle from its `bundle=` label.
pub fn parse_runc_state(text: &str) -> Result<Located> {
    let s: RuncState = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("runc state.json is not runc 1.x's format: {e}")))?;
    let bundle = s
        .config
        .labels
        .iter()
        .find_map(|l| l.strip_prefix("bundle="))
        .ok_or_else(|| Error::invalid("runc state.json has no bundle= label"))?;
    Ok(Located {
        bundle: bundle.into(),
        pid: s.init_process_pid,
        created: s.created,
    })
}

/// crun's status file text.
pub fn parse_crun_status(text: &str) -> Result<Located> {
    let s: CrunStatus = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("crun status is not crun 1.x's format: {e}")))?;
    Ok(Located {
        bundle: s.bundle,
        pid: s.pid,
        created: s.created,
    })
}

type Parser = fn(&str) -> Result<Located>;

/// Finds container `id` of `runtime` ("runc" or "crun") under its state root (default
/// /run/runc, /run/crun).
pub fn locate(runtime: &str, root: Option<&Path>, id: &str) -> Result<Located> {
    if id.is_empty() || id.contains(['/', '\0']) || id == "." || id == ".." {
        return Err(Error::invalid(format!("invalid container id {id:?}")));
    }
    if let Some(r) = root.filter(|r| !r.as_os_str().is_empty()) {
        crate::options::check_path(&format!("{runtime} state root"), r.as_os_str())?;
    }
    if root.is_some_and(|r| r.as_os_str().is_empty()) {
        // An empty root would read `ID/state.json` from the current directory.
        return Err(Error::invalid(format!(
            "{runtime} state root is empty: give the runtime's --root directory, or none for its default"
        )));
    }
    let (default, file, parse): (&str, &str, Parser) = match runtime {
        "runc" => ("/run/runc", "state.json", parse_runc_state),
        "crun" => ("/run/crun", "status", parse_crun_status),
        _ => {
            return Err(Error::invalid(format!(
                "unknown runtime {runtime:?}: expected runc or crun"
            )));
        }
    };
    let dir = root.unwrap_or(Path::new(default)).join(id);
    let path = dir.join(file);
    let text = super::statefile::read(&path)
        .map_err(|e| Error::new(e.code, format!("{runtime} container {id}: {}", e.message)))?;
    // The parsers' messages name the file by kind only: say which one.
    let located = parse(&text).map_err(|e| {
        Error::new(
            e.code,
            format!(
                "{runtime} container {id}: {}: {}",
                path.display(),
                e.message
            ),
        )
    })?;
    // Both runtimes keep the fifo the init waits on until `start`: its pid is the runtime's
    // own init process, not the container's program.
    super::created::refuse(super::created::Seen::StateDir(&dir))
        .map_err(|e| Error::new(e.code, format!("{runtime} container {id}: {}", e.message)))?;
    Ok(located)
}
