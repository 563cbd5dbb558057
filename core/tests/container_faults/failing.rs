//! Ways the container fault tests make an operation fail (included with `#[path]`): an action
//! script that kills criu, a notification callback that refuses.

#![allow(dead_code)] // each test binary uses a part of this module

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A CRIU configuration file whose action script SIGKILLs criu (its parent) at `action`.
pub fn killing_config(dir: &Path, action: &str) -> PathBuf {
    let script = dir.join(format!("kill-{action}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = {action} ] || exit 0\nkill -9 $PPID\nsleep 1\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.join(format!("kill-{action}.conf"));
    std::fs::write(&conf, format!("action-script {}\n", script.display())).unwrap();
    conf
}

/// A notification callback that fails ("refusing") at the notification `at`, and lets every
/// other one pass.
pub fn refusing_at(at: &str) -> Arc<ckpt::options::NotifyFn> {
    let a = at.to_string();
    Arc::new(move |n: &ckpt::Notification| {
        if n.script == a {
            Err("refusing".into())
        } else {
            Ok(())
        }
    })
}
