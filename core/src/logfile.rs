//! The part of CRIU's log that explains a failure: each `Error` line with the lines just
//! before it, as runc prints them, bounded so a runaway log cannot flood the caller.

use std::io::{BufRead, BufReader};
use std::path::Path;

/// Lines of context kept before each error line.
pub const CONTEXT: usize = 3;
/// The excerpt never grows past this many bytes.
pub const MAX_BYTES: usize = 16 * 1024;

fn is_error(line: &str) -> bool {
    line.contains("Error (") || line.starts_with("Error:") || line.contains(": Error")
}

/// Returns `None` when the log cannot be read or holds no error line.
pub fn excerpt(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let lines: Vec<String> = BufReader::new(f)
        .split(b'\n')
        .map_while(|l| l.ok())
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect();
    excerpt_of(&lines)
}

pub fn excerpt_of(lines: &[String]) -> Option<String> {
    let mut keep = vec![false; lines.len()];
    let mut any = false;
    for (i, l) in lines.iter().enumerate() {
        if is_error(l) {
            any = true;
            for k in keep.iter_mut().take(i + 1).skip(i.saturating_sub(CONTEXT)) {
                *k = true;
            }
        }
    }
    if !any {
        return None;
    }
    let mut out = String::new();
    let mut last: Option<usize> = None;
    for (i, l) in lines.iter().enumerate().filter(|(i, _)| keep[*i]) {
        if last.is_some_and(|p| p + 1 != i) {
            out.push_str("...\n");
        }
        if out.len() + l.len() + 1 > MAX_BYTES {
            out.push_str("... (excerpt truncated)\n");
            break;
        }
        out.push_str(l);
        out.push('\n');
        last = Some(i);
    }
    Some(out)
}

/// Error lines CRIU prints on every run here or as a summary of an earlier error: they never
/// explain a failure by themselves.
pub fn is_noise(line: &str) -> bool {
    line.contains("Can't setup RLIMIT_NOFILE") || line.trim_end().ends_with("FAILED.")
}

/// The first error line that is not noise, for the one-line message: CRIU's first real error is
/// usually the cause, what follows is fallout.
pub fn cause_line(excerpt: &str) -> Option<&str> {
    let mut errors = excerpt.lines().filter(|l| is_error(l));
    let all: Vec<&str> = errors.by_ref().collect();
    all.iter()
        .find(|l| !is_noise(l))
        .or(all.last())
        .map(|l| without_timestamp(l.trim()))
}

/// CRIU prefixes each log line with "(SS.UUUUUU) "; a one-line message reads better without.
fn without_timestamp(line: &str) -> &str {
    line.strip_prefix('(')
        .and_then(|rest| rest.split_once(") "))
        .filter(|(t, _)| t.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map_or(line, |(_, msg)| msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_and_gaps() {
        let lines: Vec<String> = (0..20)
            .map(|i| match i {
                5 => "(00.1) Error (criu/cr-dump.c:1): boom".into(),
                15 => "(00.2) Error (criu/util.c:2): bang".into(),
                _ => format!("line {i}"),
            })
            .collect();
        let e = excerpt_of(&lines).unwrap();
        assert!(e.starts_with("line 2\nline 3\nline 4\n(00.1) Error"));
        assert!(e.contains("...\nline 12\n"));
        assert_eq!(cause_line(&e), Some("Error (criu/cr-dump.c:1): boom"));
        assert!(excerpt_of(&["fine".into()]).is_none());
    }

    #[test]
    fn bounded() {
        let lines: Vec<String> = (0..100_000).map(|i| format!("Error (x): {i}")).collect();
        assert!(excerpt_of(&lines).unwrap().len() <= MAX_BYTES + 64);
    }
}
