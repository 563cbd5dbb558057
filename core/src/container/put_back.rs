//! The caller's options put back as they were when a container operation ends, on every path:
//! also when the caller's notification callback or hook panics, which a Rust runtime may catch
//! (a request handler, an async task) and then use the same options again.

use super::apply::{self, Saved};
use crate::options::{NotifyFn, Options};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

/// The options, borrowed for one operation: the plan's settings, the callbacks ckpt wraps
/// around the caller's, and a shortened timeout are taken off again when this is dropped.
pub(super) struct PutBack<'a> {
    o: &'a mut Options,
    saved: Option<Saved>,
    notify: Option<Arc<NotifyFn>>,
    op_timeout: Option<Duration>,
}

impl<'a> PutBack<'a> {
    pub(super) fn new(o: &'a mut Options) -> PutBack<'a> {
        PutBack {
            saved: Some(apply::save(o)),
            notify: o.notify.clone(),
            op_timeout: o.op_timeout,
            o,
        }
    }
}

impl Deref for PutBack<'_> {
    type Target = Options;
    fn deref(&self) -> &Options {
        self.o
    }
}

impl DerefMut for PutBack<'_> {
    fn deref_mut(&mut self) -> &mut Options {
        self.o
    }
}

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        self.o.notify = self.notify.take();
        self.o.op_timeout = self.op_timeout;
        if let Some(s) = self.saved.take() {
            apply::revert(self.o, s);
        }
    }
}
