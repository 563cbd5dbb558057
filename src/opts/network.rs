//! Network: TCP connections, sockets, interfaces, the network lock, the page server.

use super::*;

/// Checkpoint and restore established TCP connections (runc --tcp-established).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tcp_established(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tcp_established)
    }
}

/// Skip in-flight TCP connections (runc --tcp-skip-in-flight).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tcp_skip_in_flight(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tcp_skip_in_flight)
    }
}

/// Restore TCP connections closed (runc restore --tcp-close).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tcp_close(opts: *mut ckpt_opts, value: bool) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tcp_close)
    }
}

/// Allow external unix sockets (runc --ext-unix-sk).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_ext_unix_sk(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_ext_unix_sk)
    }
}

/// The page server to send pages to, or to serve lazy pages on: "ADDRESS:PORT", IPv6 in brackets ("[::1]:27277"), port 1..65535 (runc --page-server).
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_page_server(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "page server", |o, s| o.set_page_server(s))
    }
}

/// How CRIU locks the network: "iptables", "nftables" or "skip".
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_network_lock(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "network lock method", |o, s| {
            o.set_network_lock(s)
        })
    }
}

/// A veth pair to restore: `if_in` inside the tree, `if_out` outside (deprecated by CRIU in
/// favour of `ckpt_opts_add_external`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_veth_pair(
    opts: *mut ckpt_opts,
    if_in: *const c_char,
    if_out: *const c_char,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| -> std::result::Result<(), Failure> {
            // SAFETY: NULL or NUL-terminated, per the contract.
            let (a, b) = unsafe {
                (
                    text(if_in, "veth inside name")?,
                    text(if_out, "veth outside name")?,
                )
            };
            Ok(o.add_veth_pair(a, b)?)
        })
    }
}

/// An external unix socket by inode (deprecated by CRIU in favour of `ckpt_opts_add_external`
/// with `unix[INODE]`): CRIU dumps the tree's unix socket of that inode though its peer is
/// not dumped, one end of a stream connection included, and its restore needs a descriptor
/// connected to the peer, inherited as `socket:[INODE]` (`ckpt_opts_add_inherit_fd`). CRIU
/// reads these inodes only when ext_unix_sk is sent: when the caller has not set it
/// (`ckpt_opts_set_ext_unix_sk`), ckpt sends it on for them, as libcriu's
/// `criu_add_unix_sk` does (before, the inodes were ignored and CRIU refused the socket).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_unix_sk_ino(
    opts: *mut ckpt_opts,
    inode: u32,
) -> ckpt_status {
    boundary! {
        number(opts, inode, Options::add_unix_sk_ino)
    }
}
