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
//! The restore brings the tree back as a child of the calling process, which reaps it:
//!
//! ```no_run
//! let mut opts = ckpt::Options::new();
//! opts.set_image_path("/var/lib/app/checkpoint")?;
//! let restored = ckpt::ops::restore(&opts)?;
//! println!("restored tree's root: pid {}", restored.pid);
//! # Ok::<(), ckpt::Error>(())
//! ```
//!
//! An OCI container (runc's or crun's) goes through [`container`], which prepares what CRIU
//! needs from the bundle's `config.json` and the container's mounts, cgroups and namespaces,
//! and puts the options back as they were afterwards:
//!
//! ```no_run
//! use ckpt::container::{self, RestoreRequest};
//!
//! // The bundle and init pid of runc's container "web" (default state root /run/runc).
//! let web = container::runtime::locate("runc", None, "web")?;
//! let mut opts = ckpt::Options::new();
//! opts.set_image_path("/var/lib/ckpt/web")?;
//! let (plan, _stats) = container::checkpoint(&mut opts, &web.bundle, web.pid, false)?;
//! println!("{}", plan.to_json()); // every CRIU option and host action, with its reason
//!
//! // Later (the container gone, `runc delete web` run): restore it from the same bundle.
//! // Its init becomes this process's child; runc does not know it.
//! let req = RestoreRequest { bundle: web.bundle.clone(), ..Default::default() };
//! let (_plan, restored) = container::restore(&mut opts, req)?;
//! println!("container init: pid {}", restored.pid);
//! # Ok::<(), ckpt::Error>(())
//! ```
//!
//! Errors carry a stable [`Code`], and [`outcome`] bits say what happened to the workload
//! (killed by the dump, state unknown after a timeout, ...). Operations stop early through a
//! [`Cancel`] token or [`Options::set_timeout`]; notification callbacks
//! ([`Options::set_notify`]) see each CRIU notification ([`notify`]).
//!
//! The safe core (`options`, `request`, `transport`, `session`, `ops`) does the work; the C ABI
//! (libckpt.so.0, the crate one directory up) and the libcriu.so.2 drop-in are thin layers over
//! it. Nothing here is process-wide mutable state: two handles used by two threads never see
//! each other.

#![warn(missing_docs)]

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
    parasite,
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
pub(crate) mod procstatus;
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
