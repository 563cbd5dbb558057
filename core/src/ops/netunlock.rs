//! A dump whose criu did not finish (it died, or ckpt killed it at the deadline or on a
//! cancellation) may leave CRIU's iptables network lock in the tree's network namespace, when
//! the tree has one of its own: CRIU removes the lock on every path of its own, a dead criu on
//! none, and the tree would run on with every packet dropped. ckpt removes it, and the error
//! says so. The same for a process tree and a container (the container layer's dump is this
//! one).

use crate::error::{Code, Error, outcome};
use crate::options::{NetworkLock, Options};

/// `e`, after removing the lock criu may have left in `pid`'s network namespace when the lock
/// method is iptables (set, or CRIU's default) and criu did not finish.
pub(super) fn after(o: &Options, pid: i32, mut e: Error) -> Error {
    let iptables = matches!(o.network_lock, None | Some(NetworkLock::Iptables));
    let unfinished = matches!(e.code, Code::CriuDied | Code::Timeout | Code::Cancelled)
        || e.outcome & outcome::TREE_STATE_UNKNOWN != 0;
    if iptables && unfinished && crate::container::netlock::undo_iptables(pid) {
        e.message.push_str(
            "; the network lock (iptables) criu left in the tree's network namespace was removed",
        );
    }
    e
}
