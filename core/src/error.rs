//! What went wrong, in a form both Rust and C callers can act on: a stable code, a sentence,
//! CRIU's errno and, when CRIU ran, where its log is and the part of it that explains the failure.

use std::fmt;
use std::path::PathBuf;

/// Stable numbers: they are part of the C ABI (`ckpt_status`) and never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    Ok = 0,
    NullArgument = 1,
    InvalidUtf8 = 2,
    InvalidArgument = 3,
    BadFd = 4,
    InvalidState = 5,
    Unsupported = 6,
    Io = 7,
    Spawn = 8,
    Protocol = 9,
    Criu = 10,
    CriuDied = 11,
    Timeout = 12,
    Callback = 13,
    Panic = 14,
    NotFound = 15,
    PidInUse = 16,
}

impl Code {
    /// Every code, in numeric order; the C layer and the tests walk it.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::NullArgument,
        Code::InvalidUtf8,
        Code::InvalidArgument,
        Code::BadFd,
        Code::InvalidState,
        Code::Unsupported,
        Code::Io,
        Code::Spawn,
        Code::Protocol,
        Code::Criu,
        Code::CriuDied,
        Code::Timeout,
        Code::Callback,
        Code::Panic,
        Code::NotFound,
        Code::PidInUse,
    ];

    pub fn from_u32(n: u32) -> Option<Code> {
        Code::ALL.get(n as usize).copied()
    }

    /// A static description, NUL-terminated so the C layer can hand it out without allocating.
    pub fn describe_c(self) -> &'static str {
        match self {
            Code::Ok => "success\0",
            Code::NullArgument => "a required pointer argument was NULL\0",
            Code::InvalidUtf8 => "a string argument was not valid UTF-8 or held a NUL byte\0",
            Code::InvalidArgument => "an argument was out of range or malformed\0",
            Code::BadFd => "a file descriptor argument was not open or not usable\0",
            Code::InvalidState => "the process or container is not in a state that allows this\0",
            Code::Unsupported => "CRIU or the kernel lacks a feature this needs\0",
            Code::Io => "a local file system or system call operation failed\0",
            Code::Spawn => "the criu binary could not be started\0",
            Code::Protocol => "CRIU sent a reply that breaks the RPC protocol\0",
            Code::Criu => "CRIU reported that the operation failed\0",
            Code::CriuDied => "CRIU exited or closed the connection before replying\0",
            Code::Timeout => "the operation timed out; criu was killed\0",
            Code::Callback => "a notification callback aborted the operation\0",
            Code::Panic => "an internal error was caught at the API boundary\0",
            Code::NotFound => "the requested item does not exist\0",
            Code::PidInUse => "a pid needed by the restore is already in use\0",
        }
    }

    pub fn describe(self) -> &'static str {
        let s = self.describe_c();
        &s[..s.len() - 1]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// CRIU's `cr_errno` when CRIU reported one, else 0.
    pub criu_errno: i32,
    pub log_path: Option<PathBuf>,
    /// The `Error` lines of CRIU's log with a little context before each.
    pub log_excerpt: Option<String>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            criu_errno: 0,
            log_path: None,
            log_excerpt: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Code::InvalidArgument, message)
    }

    pub fn io(context: impl fmt::Display, err: impl fmt::Display) -> Error {
        Error::new(Code::Io, format!("{context}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(p) = &self.log_path {
            write!(f, " (log: {})", p.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
