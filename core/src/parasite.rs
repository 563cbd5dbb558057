//! Where CRIU's parasite code is in a tree it dumps. criu works inside each task it dumps:
//! it maps its parasite blob (a memfd named `CRIUMFD`) and runs it there, and it runs single
//! system calls (the mmap and munmap of that blob) by writing a syscall instruction at the
//! start of the task's first executable mapping for a moment. A criu killed during either
//! leaves a task that cannot go back to its own code: it dies, and a container's init takes
//! the container with it. A criu stopped while neither holds for any task it traces can be
//! killed without that.

/// The address ranges of the `CRIUMFD` mappings in a /proc/PID/maps text.
pub(crate) fn criumfd_ranges(maps: &str) -> Vec<(u64, u64)> {
    maps.lines()
        .filter(|l| l.contains("CRIUMFD"))
        .filter_map(range)
        .collect()
}

/// The start and end of a maps line's range.
fn range(line: &str) -> Option<(u64, u64)> {
    let (a, b) = line.split(' ').next()?.split_once('-')?;
    Some((hex(a)?, hex(b)?))
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// `pid`'s user-space program counter: the last field of /proc/PID/syscall, also for a task
/// outside a system call; None for a task that runs, or one that cannot be read.
pub(crate) fn program_counter(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    hex(s.split_whitespace().last()?)
}

/// How far past an executable mapping's start a program counter counts as criu's injected
/// system call (a syscall instruction and the trap after it, with room to spare).
const INJECTED_SYSCALL: u64 = 64;

/// Whether losing criu now could kill `pid`: its `CRIUMFD` blob is mapped (criu runs or is
/// about to run its parasite there, or has yet to unmap it), or it stands at the start of an
/// executable mapping, where criu's injected system calls run from code it swapped in.
fn holds_criu_code(pid: i32) -> bool {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return false;
    };
    if !criumfd_ranges(&maps).is_empty() {
        return true;
    }
    let Some(pc) = program_counter(pid) else {
        return false;
    };
    maps.lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|p| p.contains('x')))
        .filter_map(range)
        .any(|(start, _)| (start..start + INJECTED_SYSCALL).contains(&pc))
}

/// The processes criu (`criu`) traces: the tasks of the tree it dumps, seized all at once
/// when the dump begins.
pub(crate) fn traced_by(criu: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let criu = criu.to_string();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            crate::procstatus::Status::read(pid)
                .is_ok_and(|s| s.field("TracerPid") == Some(criu.as_str()))
        })
        .collect()
}

/// The tasks of `traced` that would die with criu now (see `holds_criu_code`).
pub(crate) fn holding(traced: &[i32]) -> Vec<i32> {
    traced
        .iter()
        .copied()
        .filter(|&p| holds_criu_code(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criumfd_ranges_are_read_from_maps() {
        let maps = "\
55d0c0000000-55d0c0001000 r-xp 00000000 08:01 123 /bin/sh
7f0000000000-7f0000004000 rwxs 00000000 00:01 99 /memfd:CRIUMFD (deleted)
7fff00000000-7fff00021000 rw-p 00000000 00:00 0 [stack]";
        assert_eq!(
            criumfd_ranges(maps),
            vec![(0x7f00_0000_0000, 0x7f00_0000_4000)]
        );
        assert!(criumfd_ranges("").is_empty());
    }

    #[test]
    fn this_process_holds_no_criu_code() {
        assert!(!holds_criu_code(std::process::id() as i32));
        assert!(traced_by(i32::MAX).is_empty());
    }
}
