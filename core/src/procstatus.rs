//! /proc/PID/status, read by field.

/// The text of a process's /proc/PID/status.
pub(crate) struct Status(String);

impl Status {
    /// The status of `pid` (a number, or `self`).
    pub(crate) fn read(pid: impl std::fmt::Display) -> std::io::Result<Status> {
        std::fs::read_to_string(format!("/proc/{pid}/status")).map(Status)
    }

    /// A status of the text `t` (for tests of its readers).
    #[cfg(test)]
    pub(crate) fn of(t: &str) -> Status {
        Status(t.to_string())
    }

    /// The value of the line `name:` (`Tgid`, `Uid`, `SigPnd`, ...), without the name and the
    /// white space around it; None when there is no such line.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    }
}

/// The state letter of `pid` (R, S, D, T, t, Z, ...): None when it does not exist.
pub(crate) fn state(pid: impl std::fmt::Display) -> Option<char> {
    Status::read(pid).ok()?.field("State")?.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_its_letter() {
        assert_eq!(state("thread-self"), Some('R'));
        assert_eq!(state(i32::MAX), None);
    }

    #[test]
    fn fields_are_found_by_their_whole_name() {
        let s = Status::of("Tgid:\t12\nNSpid:\t12\t1\nPid:\t12\nSigPnd:\t0000000000000100\n");
        assert_eq!(s.field("Pid"), Some("12"));
        assert_eq!(s.field("NSpid"), Some("12\t1"));
        assert_eq!(s.field("SigPnd"), Some("0000000000000100"));
        assert_eq!(s.field("Sig"), None);
        assert!(Status::read("self").unwrap().field("Tgid").is_some());
    }
}
