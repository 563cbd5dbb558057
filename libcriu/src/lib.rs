//! libcriu.so.2 on ckpt: every function of CRIU 4.x's `criu.h`, with libcriu's signatures,
//! return values and errno conventions, implemented on ckpt's safe core (its transport to
//! `criu swrk` or a service, its request/notification session and CRIU's RPC messages).
//!
//! A value a setter refuses is remembered, and the next operation CRIU would refuse fails as
//! CRIU fails it (-EBADE, errno EBADRQC) instead of running with a default; strings are sent as
//! the bytes they are, as libcriu sends them.
//!
//! It keeps libcriu's behaviour where programs depend on it and fixes it where libcriu is
//! broken: `criu_set_timeout` reaches CRIU, `criu_set_page_server_address_port` returns 0 on
//! success, strings set twice or freed with the options do not leak, the global options are
//! safe to use from several threads (and a fork never copies their lock held), criu is
//! started with posix_spawn (no copy of the caller's memory) and receives no descriptor it
//! was not asked to, and the library can be loaded and unloaded again and again, as crun
//! does for every operation.

mod connect;
pub mod ffi;
mod fork_safety;
mod notify;
pub mod ops;
pub mod opts;
pub mod outcome;
mod registry;
mod service_fd;
