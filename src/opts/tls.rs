//! TLS for the page server connection.

use super::*;

/// Encrypt page-server traffic with TLS.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls(opts: *mut ckpt_opts, value: bool) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tls)
    }
}

/// Do not verify the TLS peer's common name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_no_cn_verify(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tls_no_cn_verify)
    }
}

/// The TLS CA certificate file for the page server.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_cacert(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "TLS CA certificate", |o, s| {
            o.set_tls_cacert(s)
        })
    }
}

/// The TLS certificate revocation list file.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_cacrl(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "TLS CA CRL", |o, s| o.set_tls_cacrl(s))
    }
}

/// The TLS certificate file.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_cert(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "TLS certificate", |o, s| o.set_tls_cert(s))
    }
}

/// The TLS private key file.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_key(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "TLS key", |o, s| o.set_tls_key(s))
    }
}
