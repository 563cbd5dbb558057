//! ckpt: checkpoint and restore of process trees through CRIU's RPC, for container runtimes.
//!
//! The safe Rust core (`options`, `request`, `transport`, `session`, `ops`) does the work; `ffi`
//! is a thin C boundary over it. Nothing here is process-wide mutable state: two handles used by
//! two threads never see each other.

/// cbindgen:ignore
pub mod archive;
/// cbindgen:ignore
pub mod criu_stderr;
/// cbindgen:ignore
pub mod error;
#[cfg(feature = "capi")]
pub mod ffi;
/// cbindgen:ignore
pub mod logfile;
/// cbindgen:ignore
pub mod notify;
/// cbindgen:ignore
pub mod ops;
/// cbindgen:ignore
pub mod options;
/// cbindgen:ignore
pub mod paths;
/// cbindgen:ignore
pub mod proto;
/// cbindgen:ignore
pub mod request;
/// cbindgen:ignore
pub mod session;
/// cbindgen:ignore
pub mod spawn;
/// cbindgen:ignore
pub mod stats;
/// cbindgen:ignore
pub mod transport;

pub use error::{Code, Error, Result};
pub use notify::Notification;
pub use ops::{Features, Restored, Version};
pub use options::Options;
pub use stats::{Key as StatKey, Stats};

/// This library's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
