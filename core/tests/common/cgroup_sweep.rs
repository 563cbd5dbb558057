//! Removing the cgroups CRIU made for a restored container, by a name they contain. Std only,
//! so the archive bench includes this file as well as the tests.

use std::path::{Path, PathBuf};

/// Removes every cgroup directory under /sys/fs/cgroup whose path contains `needle` (every
/// hierarchy, CRIU's nested copies included, down to 6 levels), deepest first.
pub fn remove_cgroups_named(needle: &str) {
    fn walk(d: &Path, needle: &str, out: &mut Vec<PathBuf>, depth: usize) {
        if depth > 6 {
            return;
        }
        let Ok(it) = std::fs::read_dir(d) else { return };
        for e in it.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let p = e.path();
                walk(&p, needle, out, depth + 1);
                if p.to_string_lossy().contains(needle) {
                    out.push(p);
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), needle, &mut found, 0);
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in found {
        let _ = std::fs::remove_dir(&p);
    }
}
