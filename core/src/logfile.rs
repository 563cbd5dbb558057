//! The part of CRIU's log that explains a failure: each `Error` line, and each line that says
//! something failed, with the lines just before it, as runc prints them, without the lines
//! CRIU writes on every run, and bounded so a runaway log cannot flood the caller.

use std::io::{BufRead, BufReader};
use std::os::fd::BorrowedFd;
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
    excerpt_of_file(std::fs::File::open(path).ok()?)
}

/// As `excerpt`, for the log `name` in the directory open as `dir`: no absolute path is
/// built, so a directory whose path is near PATH_MAX is read as well as any.
pub fn excerpt_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> Option<String> {
    use nix::fcntl::{OFlag, openat};
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    excerpt_of_file(std::fs::File::from(fd))
}

/// Bytes of a log read from its start for an excerpt; a longer log is read this far and from
/// `TAIL_BYTES` before its end, so a runaway log (CRIU looping on a bad image wrote 17 GB
/// here in ten minutes, and went on writing while ckpt read it) costs bounded time and memory.
pub const HEAD_BYTES: u64 = 16 << 20;
/// Bytes read from the end of a log longer than `HEAD_BYTES + TAIL_BYTES`.
pub const TAIL_BYTES: u64 = 1 << 20;

fn lines_of(r: impl std::io::Read, out: &mut Vec<String>) {
    out.extend(
        BufReader::new(r)
            .split(b'\n')
            .map_while(|l| l.ok())
            .map(|l| String::from_utf8_lossy(&l).into_owned()),
    );
}

fn excerpt_of_file(f: std::fs::File) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    // Only what the log holds now: a writer still appending cannot keep the reading going.
    let len = f.metadata().ok()?.len();
    let mut lines = vec![];
    if len <= HEAD_BYTES + TAIL_BYTES {
        lines_of((&f).take(len), &mut lines);
        return excerpt_of(&lines);
    }
    lines_of((&f).take(HEAD_BYTES), &mut lines);
    // The head's last line may be cut; the tail's first one is.
    lines.pop();
    let skipped = lines.len();
    let mut tail = vec![];
    if (&f).seek(SeekFrom::Start(len - TAIL_BYTES)).is_ok() {
        lines_of((&f).take(TAIL_BYTES), &mut tail);
    }
    lines.extend(tail.into_iter().skip(1));
    let mut out = excerpt_of(&lines)?;
    out.push_str(&format!(
        "{NOTE}read the first {} MiB and the last {} MiB of this {len}-byte log, after line {skipped})\n",
        HEAD_BYTES >> 20,
        TAIL_BYTES >> 20
    ));
    Some(out)
}

/// Lines CRIU writes on every run here, failure or not: they never explain a failure, and
/// they are left out of excerpts (the log keeps them).
const HARMLESS: [&str; 2] = [
    // CRIU cannot raise its own descriptor limit in this environment; it carries on.
    "Can't setup RLIMIT_NOFILE",
    // Hugetlb sizes the kernel supports but has no device number for.
    "is supported but cannot get dev's number",
];

/// How ckpt's own closing line of an excerpt starts.
const NOTE: &str = "(ckpt ";

/// Whether `line` is one CRIU writes on every run (see `HARMLESS`).
pub fn is_harmless(line: &str) -> bool {
    HARMLESS.iter().any(|h| line.contains(h))
}

/// Whether `line` says something failed without being an `Error` line: CRIU reports some
/// causes at info level ("Can't connect to server 127.0.0.1:1").
fn reads_like_failure(line: &str) -> bool {
    const WORDS: [&str; 7] = [
        "can't ",
        "cannot ",
        "unable to ",
        "failed to ",
        "no such ",
        "refused",
        "denied",
    ];
    let l = line.to_ascii_lowercase();
    WORDS.iter().any(|w| l.contains(w))
}

/// The lines that explain a failure: every `Error` line and every line that reads like a
/// failure (CRIU logs some causes at info level), each with the `CONTEXT` lines before it,
/// `...` between separate pieces, as runc prints them. Lines CRIU writes on every run
/// (`is_harmless`) are left out, and a closing line says how many. `None` when nothing
/// explains a failure.
pub fn excerpt_of(lines: &[String]) -> Option<String> {
    let harmless: Vec<bool> = lines.iter().map(|l| is_harmless(l)).collect();
    let mut keep = vec![false; lines.len()];
    let mut any = false;
    for (i, l) in lines.iter().enumerate() {
        if !harmless[i] && (is_error(l) || reads_like_failure(l)) {
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
    for (i, l) in lines
        .iter()
        .enumerate()
        .filter(|(i, _)| keep[*i] && !harmless[*i])
    {
        if last.is_some_and(|p| (p + 1..i).any(|k| !harmless[k])) {
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
    let left_out = harmless.iter().filter(|h| **h).count();
    if left_out > 0 {
        out.push_str(&format!(
            "{NOTE}left out {left_out} line{} CRIU writes on every run here, such as \"rlimit: Can't setup RLIMIT_NOFILE for self\"; the full log has {})\n",
            if left_out == 1 { "" } else { "s" },
            if left_out == 1 { "it" } else { "them" },
        ));
    }
    Some(out)
}

/// Error lines that never explain a failure by themselves: those CRIU writes on every run,
/// and its summaries of an earlier error ("Dumping FAILED.").
pub fn is_noise(line: &str) -> bool {
    is_harmless(line) || line.trim_end().ends_with("FAILED.")
}

/// The line of an excerpt that names the cause, for the one-line message. CRIU's first real
/// error is usually the cause and what follows is fallout, unless a line just before it, in
/// the same piece of the excerpt, says what failed first ("Can't connect to server" before
/// "Unable to detach from N"): then that line.
pub fn cause_line(excerpt: &str) -> Option<&str> {
    let lines: Vec<&str> = excerpt.lines().filter(|l| !l.starts_with(NOTE)).collect();
    let first_error = lines.iter().position(|l| is_error(l) && !is_noise(l));
    let pick = match first_error {
        Some(e) => {
            let piece_start = lines[..e]
                .iter()
                .rposition(|l| *l == "...")
                .map_or(0, |p| p + 1);
            lines[piece_start..e]
                .iter()
                .position(|l| !is_error(l) && reads_like_failure(l) && !is_noise(l))
                .map_or(e, |p| piece_start + p)
        }
        None => lines
            .iter()
            .position(|l| reads_like_failure(l) && !is_noise(l))
            .or_else(|| lines.iter().rposition(|l| is_error(l)))?,
    };
    Some(without_timestamp(lines[pick].trim()))
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

    /// A huge log is read at its start and its end only; the excerpt has the errors of both
    /// and says what was read.
    #[test]
    fn a_huge_log_is_read_at_its_ends() {
        use std::io::Write;
        let p = std::env::temp_dir().join(format!("ckpt-logfile-{}-huge.log", std::process::id()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        writeln!(f, "(00.1) Error (criu/a.c:1): first").unwrap();
        let filler = "(00.2)      1: Advanced iov 0 bytes, 3->3 iovs, 0 tail\n";
        let n = (HEAD_BYTES + TAIL_BYTES + (8 << 20)) as usize / filler.len();
        for i in 0..n {
            if i == (HEAD_BYTES + (4 << 20)) as usize / filler.len() {
                writeln!(f, "(00.3) Error (criu/b.c:2): middle").unwrap();
            }
            f.write_all(filler.as_bytes()).unwrap();
        }
        writeln!(f, "(00.4) Error (criu/c.c:3): last").unwrap();
        drop(f);
        let e = excerpt(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert!(e.contains("first") && e.contains("last"), "{e}");
        assert!(!e.contains("middle"), "{e}");
        assert!(e.contains("read the first 16 MiB and the last 1 MiB"), "{e}");
        assert_eq!(cause_line(&e), Some("Error (criu/a.c:1): first"));
    }

    #[test]
    fn bounded() {
        let lines: Vec<String> = (0..100_000).map(|i| format!("Error (x): {i}")).collect();
        assert!(excerpt_of(&lines).unwrap().len() <= MAX_BYTES + 64);
    }

    /// CRIU 4.1.1's log of a dump to a page server that does not listen: the cause is an
    /// info line; the rlimit line, which every run has, is left out.
    #[test]
    fn the_cause_before_the_fallout_and_no_harmless_lines() {
        let log = [
            "(00.008336) Hugetlb size 2 Mb is supported but cannot get dev's number",
            "(00.053927) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
            "(00.058647) cg:     `- [pids] -> [/] [0]",
            "(00.058648) cg: Set 1 is criu one",
            "(00.058671) Connecting to server 127.0.0.1:1",
            "(00.058747) Can't connect to server 127.0.0.1:1",
            "(00.058765) net: Unlock network",
            "(00.058771) Unfreezing tasks into 1",
            "(00.058774) \tUnseizing 6585 into 1",
            "(00.058781) Error (compel/src/lib/infect.c:418): Unable to detach from 6585: No such process",
            "(00.058797) Error (criu/cr-dump.c:2111): Dumping FAILED.",
        ];
        let lines: Vec<String> = log.iter().map(|l| l.to_string()).collect();
        let e = excerpt_of(&lines).unwrap();
        assert!(e.contains("Can't connect to server 127.0.0.1:1"), "{e}");
        assert!(!e.contains("RLIMIT_NOFILE for self: Operation"), "{e}");
        assert!(!e.contains("Hugetlb"), "{e}");
        assert!(
            e.contains("left out 2 lines CRIU writes on every run here"),
            "{e}"
        );
        assert_eq!(cause_line(&e), Some("Can't connect to server 127.0.0.1:1"));
        // Only harmless errors: nothing explains a failure.
        assert!(excerpt_of(&lines[..2]).is_none());
    }
}
