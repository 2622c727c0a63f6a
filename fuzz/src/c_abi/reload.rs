//! Reloading a policy handle from TOML text or a file, with its report.

use std::ffi::CString;
use std::ptr;

use ratecore::policy::ConfigError;
use ratecore_ffi::{
    ratecore_policy_reload_file, ratecore_policy_reload_toml, ratecore_reload_report,
};

use super::args::{CStrArg, FileArg, SliceArg, RELOAD_FILES};
use super::call::Call;
use super::{out_ptr, policy_arg, slice_ptr, Arena, Wide, S};

/// Makes one reload call and checks it against the Rust API.
#[allow(clippy::too_many_lines)]
pub(super) fn step(arena: &mut Arena, call: &Call) {
    match call {
        Call::PolicyReload {
            handle,
            text,
            how,
            origin,
            file,
            error_len,
            error_arg,
            report,
            size,
        } => {
            let (target, hp, mut faults) = policy_arg(arena, *handle);
            faults.out(*report);
            // A size below the full report's but covering its first version (up to
            // `dropped`) is accepted: that version is written.
            let (size, _) = size.of::<ratecore_reload_report>();
            let first = std::mem::offset_of!(ratecore_reload_report, overrides_dropped);
            if size < first {
                faults.0.push(S::InvalidArgument);
            }
            let mut ebuf = vec![0xaa_u8; usize::from(*error_len) + 1];
            let untouched = ebuf.clone();
            let (ep, elen) = slice_ptr(&mut ebuf, *error_arg);
            let mut slot = [Wide::new(ratecore_reload_report { size, ..REPORT }); 2];
            let slot_untouched = slot;
            let rp = out_ptr(&mut slot, *report).cast::<ratecore_reload_report>();
            let (status, source) = match file {
                None => {
                    let text = text.text();
                    if crate::policy::table_bytes(&text) > crate::policy::MAX_TABLE_BYTES {
                        return;
                    }
                    let t = CStrArg::new(&text, *how);
                    let o = CStrArg::new(&origin.text, origin.how);
                    faults.0.extend(t.fault);
                    faults.0.extend(o.fault);
                    // SAFETY: every pointer is valid for its length, NULL, or misaligned.
                    let status = unsafe {
                        ratecore_policy_reload_toml(
                            hp,
                            t.ptr(),
                            t.len,
                            o.ptr(),
                            o.len,
                            ep.cast(),
                            elen,
                            rp,
                        )
                    };
                    let origin = if o.text.is_empty() {
                        "<string>".to_string()
                    } else {
                        o.text.clone()
                    };
                    (status, Reload::Text(t.text, origin))
                }
                Some(file) => {
                    let path = match file {
                        FileArg::Path(i) => Some(repo_path(RELOAD_FILES[usize::from(*i) % 5])),
                        FileArg::Null => None,
                        FileArg::InvalidUtf8 => Some(b"examples/\xff.toml".to_vec()),
                    };
                    let text = path.as_deref().and_then(|p| {
                        std::fs::read_to_string(String::from_utf8_lossy(p).as_ref()).ok()
                    });
                    if text.is_some_and(|t| {
                        crate::policy::table_bytes(&t) > crate::policy::MAX_TABLE_BYTES
                    }) {
                        return;
                    }
                    let path = path.map(|p| CString::new(p).expect("no NUL"));
                    let pp = path.as_ref().map_or(ptr::null(), |p| p.as_ptr());
                    match path.as_ref().map(|p| p.to_str()) {
                        None => faults.0.push(S::NullPointer),
                        Some(Err(_)) => faults.0.push(S::InvalidUtf8),
                        Some(Ok(_)) => {}
                    }
                    // SAFETY: every pointer is valid for its length, NULL, or misaligned;
                    // the path is NULL or NUL-terminated.
                    let status =
                        unsafe { ratecore_policy_reload_file(hp, pp, ep.cast(), elen, rp) };
                    let path = path.and_then(|p| p.into_string().ok()).unwrap_or_default();
                    (status, Reload::File(path))
                }
            };
            let fine = faults.judge(status, "policy_reload");
            if !fine || status != S::Ok {
                assert!(
                    slot.iter().zip(&slot_untouched).all(|(a, b)| a.same(b)),
                    "report written with {status:?}"
                );
            }
            if !fine {
                assert_eq!(ebuf, untouched, "error written with an argument fault");
                return;
            }
            let h = &mut arena.policies[target.expect("live")];
            let expected = match &source {
                Reload::Text(text, origin) => h.mirror.reload_toml_str(text, origin),
                Reload::File(path) => h.mirror.reload_toml_file(path),
            };
            match expected {
                Ok(want) => {
                    assert_eq!(status, S::Ok, "policy_reload");
                    assert_eq!(ebuf, untouched, "error written on success");
                    let got = slot[0].value;
                    let full = std::mem::size_of::<ratecore_reload_report>();
                    let written = if size >= full { full } else { first };
                    assert_eq!(
                        (got.size, got.kept, got.fresh, got.dropped),
                        (written, want.kept, want.fresh, want.dropped),
                        "reload report differs"
                    );
                    let overrides_dropped = if written == full {
                        want.overrides_dropped
                    } else {
                        slot_untouched[0].value.overrides_dropped
                    };
                    assert_eq!(
                        got.overrides_dropped, overrides_dropped,
                        "reload report's overrides_dropped"
                    );
                    assert_eq!(
                        slot[0].tail, slot_untouched[0].tail,
                        "wrote past the report"
                    );
                    assert!(slot[1].same(&slot_untouched[1]), "wrote past the report");
                    h.budget = h.budget.reloaded(&h.mirror);
                }
                Err(e) => {
                    let want = if e.message.starts_with("cannot read: ") {
                        S::ConfigUnreadable
                    } else {
                        S::InvalidConfig
                    };
                    assert_eq!(status, want, "policy_reload: {e}");
                    assert_error_text(&e, &ebuf, &untouched, elen, *error_arg);
                }
            }
        }
        _ => unreachable!("not a reload call: {call:?}"),
    }
}

/// Where a reload reads its policy from.
enum Reload {
    /// TOML text and its origin.
    Text(String, String),
    /// A file's path.
    File(String),
}

/// `path` (relative to the repository) for the fuzz binary, wherever it runs.
fn repo_path(path: &str) -> Vec<u8> {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")).into_bytes()
}

/// Checks the error buffer after a configuration error: the message, NUL-terminated and
/// truncated to fit, when the buffer was passed writable; untouched otherwise.
pub(super) fn assert_error_text(
    error: &ConfigError,
    buf: &[u8],
    untouched: &[u8],
    len: usize,
    arg: SliceArg,
) {
    assert_error_message(&error.to_string(), buf, untouched, len, arg);
}

/// Checks an error buffer after an error with `message`, as [`assert_error_text`].
pub(super) fn assert_error_message(
    message: &str,
    buf: &[u8],
    untouched: &[u8],
    len: usize,
    arg: SliceArg,
) {
    if len > 0 && matches!(arg, SliceArg::Exact | SliceArg::Misaligned) {
        let n = message.len().min(len - 1);
        let mut want = vec![0u8; len];
        want[..n].copy_from_slice(&message.as_bytes()[..n]);
        assert_eq!(&buf[..len], &want[..], "error text");
        assert_eq!(buf[len..], untouched[len..], "wrote past the error buffer");
    } else {
        assert_eq!(buf, untouched, "error written to an unusable buffer");
    }
}

/// The pattern a reload report slot holds before a call (its size set per call).
const REPORT: ratecore_reload_report = ratecore_reload_report {
    size: 0,
    kept: 0x5e5e,
    fresh: 0x5e5f,
    dropped: 0x5e60,
    overrides_dropped: 0x5e61,
};
