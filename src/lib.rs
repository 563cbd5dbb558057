//! ckpt: checkpoint and restore of process trees through CRIU's RPC, for container runtimes.
//!
//! The safe Rust core (`options`, `request`, `transport`, `session`, `ops`) does the work; `ffi`
//! is a thin C boundary over it. Nothing here is process-wide mutable state: two handles used by
//! two threads never see each other.

pub mod error;
pub mod ffi;
pub mod logfile;
pub mod notify;
pub mod ops;
pub mod options;
pub mod paths;
pub mod proto;
pub mod request;
pub mod session;
pub mod spawn;
pub mod stats;
pub mod transport;

pub use error::{Code, Error, Result};
pub use notify::Notification;
pub use ops::{Features, Restored, Version};
pub use options::Options;
pub use stats::{Key as StatKey, Stats};

/// This library's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
