//! Putting a new container id in the place of the old one where engines write it: as a whole
//! path component of a mount source (`.../overlay-containers/ID/userdata/hosts`), and as a
//! delimited part of `linux.cgroupsPath` (`/ID`, `/libpod_parent/libpod-ID`,
//! `machine.slice:libpod:ID`, `crio-ID.scope`). Replacing every substring corrupted strings
//! that merely contain the old id: a short id such as `a` inside `/var/lib/...`.

/// `s` with every whole path component equal to `old` replaced by `new`; `None` when there is
/// none.
pub fn in_path(s: &str, old: &str, new: &str) -> Option<String> {
    swap(s, old, new, |c| c == '/', |c| c == '/')
}

/// `s` (a `linux.cgroupsPath`, a path or systemd's `slice:prefix:name`) with every occurrence of
/// `old` that starts a component or follows an engine's prefix (`/` or `:` or `-` before it)
/// and ends one (`/`, `:` or a unit suffix's `.` after it) replaced by `new`; `None` when there
/// is none.
pub fn in_cgroups_path(s: &str, old: &str, new: &str) -> Option<String> {
    swap(
        s,
        old,
        new,
        |c| matches!(c, '/' | ':' | '-'),
        |c| matches!(c, '/' | ':' | '.'),
    )
}

/// Replaces the occurrences of `old` in `s` that the start of `s` or a character `before`
/// accepts precede, and the end of `s` or a character `after` accepts follow.
fn swap(
    s: &str,
    old: &str,
    new: &str,
    before: impl Fn(char) -> bool,
    after: impl Fn(char) -> bool,
) -> Option<String> {
    if old.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    let mut changed = false;
    while let Some(i) = rest.find(old) {
        let head = &rest[..i];
        let pre = head.chars().next_back().or(prev);
        let tail = &rest[i + old.len()..];
        if pre.is_none_or(&before) && tail.chars().next().is_none_or(&after) {
            out.push_str(head);
            out.push_str(new);
            changed = true;
            prev = old.chars().next_back();
            rest = tail;
        } else {
            // Not delimited: keep its first character and look again after it.
            let c = rest[i..].chars().next().unwrap_or_default();
            out.push_str(&rest[..i + c.len_utf8()]);
            prev = Some(c);
            rest = &rest[i + c.len_utf8()..];
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_id_inside_other_words_stays() {
        assert_eq!(
            in_path("/var/lib/a/userdata/hosts", "a", "b").as_deref(),
            Some("/var/lib/b/userdata/hosts")
        );
        assert_eq!(in_path("/bin/sh", "a", "b"), None);
        assert_eq!(
            in_path("/data/aa/a", "a", "b").as_deref(),
            Some("/data/aa/b")
        );
        assert_eq!(in_path("a", "a", "b").as_deref(), Some("b"));
        assert_eq!(in_path("/a/a/", "a", "b").as_deref(), Some("/b/b/"));
        assert_eq!(in_path("/x", "", "b"), None);
        assert_eq!(in_cgroups_path("/a", "a", "b").as_deref(), Some("/b"));
        assert_eq!(
            in_cgroups_path("/libpod_parent/libpod-a", "a", "b").as_deref(),
            Some("/libpod_parent/libpod-b")
        );
        assert_eq!(
            in_cgroups_path("machine.slice:libpod:a", "a", "b").as_deref(),
            Some("machine.slice:libpod:b")
        );
        assert_eq!(
            in_cgroups_path("/kubepods/crio-a.scope", "a", "b").as_deref(),
            Some("/kubepods/crio-b.scope")
        );
        assert_eq!(in_cgroups_path("/machine.slice/parent", "a", "b"), None);
        assert_eq!(in_cgroups_path("/libpod_parent/x", "parent", "y"), None);
        // Overlapping candidates: "aa" in "aaa" is never delimited on both sides.
        assert_eq!(in_path("/aaa/aa", "aa", "b").as_deref(), Some("/aaa/b"));
        assert_eq!(in_path("/é/a", "a", "b").as_deref(), Some("/é/b"));
    }
}
