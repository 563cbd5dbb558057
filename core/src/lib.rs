//! ckpt: checkpoint and restore of process trees through CRIU's RPC, for container runtimes.
//!
//! What runc's `checkpoint` and `restore` do, as a library: set [`Options`], then call one of
//! the operations in [`ops`]. Each operation starts `criu swrk` (or talks to a running
//! `criu service`), holds one RPC conversation with it, reaps it, and returns either what
//! CRIU reported ([`Stats`], [`Restored`], ...) or an [`Error`] with a stable [`Code`], a
//! sentence, CRIU's errno and an excerpt of CRIU's log.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let mut opts = ckpt::Options::new();
//! opts.set_image_path("/var/lib/app/checkpoint")?;
//! opts.set_leave_running(true);
//! opts.set_timeout(Some(Duration::from_secs(60)));
//! // Dump the process tree rooted at pid 4242 (needs root and CRIU 4.x).
//! let stats = ckpt::ops::checkpoint(&opts, 4242)?;
//! if let Some(us) = stats.get(ckpt::StatKey::FrozenTimeUs) {
//!     println!("the tree was frozen for {us} µs");
//! }
//! # Ok::<(), ckpt::Error>(())
//! ```
//!
//! The safe core (`options`, `request`, `transport`, `session`, `ops`) does the work; the C ABI
//! (libckpt.so.0, the crate one directory up) and the libcriu.so.2 drop-in are thin layers over
//! it. Nothing here is process-wide mutable state: two handles used by two threads never see
//! each other.

// The pipeline behind the operations. Private: with the hidden `internals` feature they are
// public (and undocumented, with no stability promise) for ckpt's own tests, the fake criu,
// the fuzzers and the libcriu drop-in, which speak CRIU's RPC themselves.
macro_rules! internal {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal!(
    criu_stderr,
    error,
    frozen,
    logfile,
    paths,
    proto,
    request,
    session,
    spawn,
    stats,
    sweep,
    transport,
    tree,
);

pub mod archive;
pub mod cancel;
pub mod container;
pub mod notify;
pub mod ops;
pub mod options;
pub(crate) mod sigpipe;
// The guard that stops a C callback's thread exit before it unwinds into Rust frames: the C
// boundaries over the core (libckpt.so.0, libcriu.so.2) call their callbacks through it.
#[doc(hidden)]
pub mod thread_exit;

pub use cancel::Cancel;
pub use error::{Code, Error, Result, outcome};
pub use notify::Notification;
pub use ops::{Features, PageServerStarted, Restored, Version};
pub use options::Options;
pub use stats::{Key as StatKey, Stats};

/// This library's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
