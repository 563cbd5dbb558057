//! What a failure caused by something reaching outside the container means, in the
//! container's terms: CRIU names a socket by inode and a file by its path below CRIU's root,
//! and says `--ext-unix-sk` (its command line); ckpt adds which host socket or host file it
//! is and what the caller can do. `runc checkpoint` and `runc restore` print CRIU's line alone.

use super::facts::RecordedMount;
use crate::error::{Code, Error};

/// Adds to a failed container checkpoint's or restore's message what CRIU's line means for
/// the container, when ckpt recognises it; any other error is left as it is.
pub fn explain(e: &mut Error, mounts: &[RecordedMount]) {
    if e.code != Code::Criu {
        return;
    }
    let excerpt = e.log_excerpt.as_deref().unwrap_or("");
    let why = unix_without_peer(&e.message)
        .or_else(|| stream_half(&e.message, excerpt))
        .or_else(|| external_in_image(&e.message, excerpt))
        .or_else(|| ext_unix_sk_needed(&e.message, excerpt))
        .or_else(|| bad_size(&e.message, mounts))
        .or_else(|| cannot_connect(&e.message));
    if let Some(w) = why {
        while e.message.ends_with('.') {
            e.message.pop();
        }
        e.message.push_str(". ");
        e.message.push_str(&w);
    }
}

/// The text after `key` up to the next character that cannot be part of a number.
fn number_after(s: &str, key: &str) -> Option<u64> {
    let rest = &s[s.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// "Unix socket A without peer B": CRIU looks for a socket's peer only among the sockets of
/// the network namespaces it dumps, and a socket on the host (a datagram one a container
/// sends to, like /dev/log) is in none of them, `ext_unix_sk` or not.
fn unix_without_peer(msg: &str) -> Option<String> {
    let peer = number_after(msg, "without peer ")?;
    let sock = number_after(msg, "Unix socket ")?;
    let name = match host_unix_path(peer) {
        Some(p) if !p.is_empty() => format!(" ({p} in ckpt's network namespace)"),
        Some(_) => " (an unnamed socket in ckpt's network namespace)".to_string(),
        None => String::new(),
    };
    Some(format!(
        "The container's unix socket {sock} is connected to socket {peer}{name}, which is not in the container's network namespace: CRIU looks for a peer only there, so a socket connected to one on the host (a datagram socket sending to a host socket such as /dev/log) cannot be checkpointed, ext_unix_sk or not (runc checkpoint --ext-unix-sk fails the same way); close it before the checkpoint, or run the container in the host's network namespace"
    ))
}

/// How a stream socket of the container, connected outside it, can be carried over: named by
/// inode at the checkpoint, given a new connection at the restore.
fn by_inode(ino: Option<u64>) -> String {
    let (n, flag, key) = match ino {
        Some(i) => (format!(", here {i},"), i.to_string(), socket_key(ino)),
        None => (String::new(), "INODE".to_string(), socket_key(ino)),
    };
    format!(
        "name the container's socket by inode{n} with Options::add_unix_sk_ino or ckpt_opts_add_unix_sk_ino (Go's UnixSocketInodes, the command's --ext-unix-sk-ino {flag}) and give the restore a socket connected to its peer as the inherited descriptor {key} ({})",
        inherit_setters(&key)
    )
}

/// The key CRIU gives the unix socket of inode `ino` among inherited descriptors.
fn socket_key(ino: Option<u64>) -> String {
    match ino {
        Some(i) => format!("socket:[{i}]"),
        None => "socket:[INODE]".to_string(),
    }
}

/// Every way a caller gives the restore a descriptor under `key`: the Rust and C setters,
/// Go's field and the command's flag.
fn inherit_setters(key: &str) -> String {
    format!(
        "Options::add_inherit_fd, ckpt_opts_add_inherit_fd, Go's InheritFds, the command's --inherit-fd fd[N]:{key} with N a descriptor ckpt holds"
    )
}

/// The number after `key` on the excerpt's last line that holds `marker`.
fn excerpt_number(excerpt: &str, marker: &str, key: &str) -> Option<u64> {
    excerpt
        .lines()
        .rev()
        .find(|l| l.contains(marker))
        .and_then(|l| number_after(l, key))
}

/// "Can't dump half of stream unix connection": a stream connection to a process outside
/// the container. CRIU dumps it only named by inode, and then needs a new connection at the
/// restore. CRIU's log line before names the outside socket, whose peer is the container's.
fn stream_half(msg: &str, excerpt: &str) -> Option<String> {
    if !msg.contains("Can't dump half of stream unix connection") {
        return None;
    }
    let ino = excerpt_number(excerpt, "Ext stream not supported", "peer_ino ");
    Some(format!(
        "A unix stream socket of the container is connected to a process outside it: ext_unix_sk alone does not let CRIU dump one end of a stream connection (runc checkpoint --ext-unix-sk fails the same way); close the connection before the checkpoint, or {}",
        by_inode(ino)
    ))
}

/// "External socket found in image" on restore: the images hold a socket of the container
/// connected outside it that was named by inode at the checkpoint; CRIU wants a descriptor
/// for it. CRIU's log line before names the socket.
fn external_in_image(msg: &str, excerpt: &str) -> Option<String> {
    if !msg.contains("External socket found in image") {
        return None;
    }
    let key = socket_key(excerpt_number(excerpt, "Opening standalone", "ino "));
    Some(format!(
        "The images hold a unix socket of the container that was connected to a socket outside it and named by inode at the checkpoint: give the restore a socket connected to that peer as the inherited descriptor {key} ({})",
        inherit_setters(&key)
    ))
}

/// CRIU's advice names its command-line option; ckpt's callers set it elsewhere.
fn ext_unix_sk_needed(msg: &str, excerpt: &str) -> Option<String> {
    if !msg.contains("External socket is used") {
        return None;
    }
    // CRIU's line before names the outside socket; its peer, when it has one, is the
    // container's (a stream connection's end).
    let ino = excerpt_number(excerpt, "Runaway socket", "peer_ino ").filter(|&i| i != 0);
    Some(format!(
        "A unix socket of the container is connected to a socket outside it: set ext_unix_sk (Options::set_ext_unix_sk, ckpt_opts_set_ext_unix_sk, Go's ExternalUnixConnections, the command's --ext-unix-sk) to checkpoint a datagram socket, whose peer must be bound again under its name, at that path inside the container, at the restore; for a stream socket, {}",
        by_inode(ino)
    ))
}

/// "File X has bad size A (expect B)": a file open at the checkpoint (not with O_APPEND)
/// whose size changed since; X is below CRIU's root, so when it is in a bind mount ckpt names
/// the host file.
fn bad_size(msg: &str, mounts: &[RecordedMount]) -> Option<String> {
    let at = msg.find("File ")? + "File ".len();
    let rest = &msg[at..];
    let (path, sizes) = rest.split_once(" has bad size ")?;
    let now = number_after(sizes, "")?;
    let then = number_after(sizes, "(expect ")?;
    let inside = format!("/{}", path.trim_start_matches('/'));
    let host = mounts
        .iter()
        .filter(|m| m.origin == "spec" || m.origin == "discovered")
        .filter_map(|m| {
            let mp = m.mountpoint.trim_end_matches('/');
            if inside == mp {
                Some(m.source.clone())
            } else {
                let below = inside.strip_prefix(mp)?.strip_prefix('/')?;
                Some(format!("{}/{below}", m.source.trim_end_matches('/')))
            }
        })
        .next_back();
    let which = match host {
        Some(h) => format!("{inside} in the container, host file {h} (a bind mount),"),
        None => format!("{inside} in the container"),
    };
    Some(format!(
        "The file {which} is {now} bytes now and was {then} bytes at the checkpoint, where the container held it open: CRIU restores an open file only at the size it had then (`runc restore` fails the same way); bring it back to {then} bytes, or have the container open it with O_APPEND, whose size CRIU does not check"
    ))
}

/// "Can't connect N socket: No such file or directory" on restore: a unix socket connected
/// to one outside the container at the checkpoint is connected again by the name its peer
/// was bound to on the host, looked up inside the restored container.
fn cannot_connect(msg: &str) -> Option<String> {
    let sock = number_after(msg, "Can't connect ")?;
    if !msg.contains("No such file or directory") && !msg.contains("Connection refused") {
        return None;
    }
    Some(format!(
        "The container's unix socket {sock} was connected to a socket outside it at the checkpoint: CRIU connects it again by the name the peer was bound to on the host, looked up inside the restored container, so a socket there must be bound again under that name and reachable at that same path in the container (a bind mount whose destination is its host path, as /dev/log is usually given)"
    ))
}

/// The path of the unix socket with inode `ino` in ckpt's network namespace ("" when it has
/// none), from /proc/net/unix; None when there is no such socket.
fn host_unix_path(ino: u64) -> Option<String> {
    let t = std::fs::read_to_string("/proc/self/net/unix").ok()?;
    t.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(6)?.parse::<u64>().ok()? == ino).then(|| f.get(7).unwrap_or(&"").to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::facts::Kind;

    fn err(m: &str) -> Error {
        Error::new(Code::Criu, m)
    }

    #[test]
    fn a_grown_bind_mounted_file_names_the_host_file() {
        let mounts = vec![RecordedMount {
            mountpoint: "/ext".into(),
            source: "/srv/shared".into(),
            kind: Kind::Dir,
            origin: "spec".into(),
            hierarchy: None,
        }];
        let mut e = err(
            "criu restore failed:      1: Error (criu/files-reg.c:2175): File ext/log has bad size 41 (expect 36); the restored tree (pid 650) was killed",
        );
        explain(&mut e, &mounts);
        assert!(
            e.message.contains(
                "The file /ext/log in the container, host file /srv/shared/log (a bind mount), is 41 bytes now and was 36 bytes"
            ),
            "{}",
            e.message
        );
        let mut e = err("criu restore failed: File opt/x has bad size 1 (expect 0)");
        explain(&mut e, &mounts);
        assert!(
            e.message
                .contains("The file /opt/x in the container is 1 bytes")
        );
    }

    #[test]
    fn socket_failures_are_explained_and_others_left_alone() {
        let mut e = err(
            "criu dump failed: Error (criu/sk-unix.c:418): unix: Unix socket 1 without peer 4294967295",
        );
        explain(&mut e, &[]);
        assert!(
            e.message
                .contains("unix socket 1 is connected to socket 4294967295, which is not in the container's network namespace"),
            "{}",
            e.message
        );
        let mut e =
            err("criu dump failed: unix: Can't dump half of stream unix connection. name: (null)");
        explain(&mut e, &[]);
        assert!(e.message.contains("close the connection"));
        // Each way to name the socket and give the restore its descriptor, the command's too.
        for want in [
            "Options::add_unix_sk_ino",
            "ckpt_opts_add_unix_sk_ino",
            "Go's UnixSocketInodes",
            "--ext-unix-sk-ino INODE",
            "Options::add_inherit_fd",
            "ckpt_opts_add_inherit_fd",
            "Go's InheritFds",
            "--inherit-fd fd[N]:socket:[INODE]",
        ] {
            assert!(e.message.contains(want), "{want}: {}", e.message);
        }
        let mut e = Error::new(
            Code::Criu,
            "criu dump failed: unix: Can't dump half of stream unix connection. name: (null)",
        );
        e.log_excerpt = Some(
            "(00.01) Error (criu/sk-unix.c:806): unix: Ext stream not supported: ino 0x1 peer_ino 4242".into(),
        );
        explain(&mut e, &[]);
        assert!(
            e.message.contains("here 4242,")
                && e.message.contains("--ext-unix-sk-ino 4242")
                && e.message.contains("--inherit-fd fd[N]:socket:[4242]"),
            "{}",
            e.message
        );
        let mut e = Error::new(
            Code::Criu,
            "criu restore failed: unix: External socket found in image. Consider using the --ext-unix-sk option to allow restoring it.",
        );
        e.log_excerpt =
            Some("(00.02) unix: Opening standalone socket (id 0x9 ino 777 peer 0)".into());
        explain(&mut e, &[]);
        assert!(
            e.message.contains("inherited descriptor socket:[777]")
                && e.message
                    .contains("Go's InheritFds, the command's --inherit-fd fd[N]:socket:[777]"),
            "{}",
            e.message
        );
        let mut e = err(
            "criu dump failed: unix: External socket is used. Consider using --ext-unix-sk option.",
        );
        explain(&mut e, &[]);
        assert!(e.message.contains("ckpt_opts_set_ext_unix_sk"));
        let mut e = err(
            "criu restore failed:      1: Error (criu/sk-unix.c:1406): unix: Can't connect 12 socket: No such file or directory; the restored tree (pid 1) was killed",
        );
        explain(&mut e, &[]);
        assert!(
            e.message.contains("unix socket 12 was connected"),
            "{}",
            e.message
        );
        let before = err("criu dump failed: something else");
        let mut e = before.clone();
        explain(&mut e, &[]);
        assert_eq!(e, before);
        let before = Error::new(Code::InvalidState, "Unix socket 1 without peer 2");
        let mut e = before.clone();
        explain(&mut e, &[]);
        assert_eq!(e, before);
    }
}
