//! Reports written as text lines of tab-separated fields into a caller buffer
//! (`ratecore_policy_overrides`, `ratecore_policy_offenders`): the field escaping and
//! the copy that reports the length needed.

use crate::ffi::{output, output_slice, Out, OutSlice};
use crate::status::ratecore_status;

/// Appends `bytes` to `line` escaped so that the field holds printable ASCII only and
/// cannot break a line or a field: bytes 0x20 to 0x7e but the backslash as they are, the
/// backslash as `\\`, every other byte (tab, newline, control, non-ASCII) as `\xNN`, two
/// lowercase hex digits.
pub(crate) fn push_escaped(line: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        match b {
            b'\\' => line.extend_from_slice(b"\\\\"),
            0x20..=0x7e => line.push(b),
            _ => {
                let hex = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'?');
                line.extend_from_slice(&[b'\\', b'x', hex(b >> 4), hex(b & 0x0f)]);
            }
        }
    }
}

/// Appends one line: the fields, each escaped, separated by tabs, then a newline.
pub(crate) fn push_line(text: &mut Vec<u8>, fields: &[&[u8]]) {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            text.push(b'\t');
        }
        push_escaped(text, field);
    }
    text.push(b'\n');
}

/// A caller's text buffer and the pointer its length goes to, checked before any work.
pub(crate) struct TextOut {
    buffer: OutSlice<u8>,
    len: Out<usize>,
}

impl TextOut {
    /// Checks the buffer `(out, cap)` and `len_out`.
    ///
    /// # Errors
    /// As for `output` and `output_slice`.
    ///
    /// # Safety
    /// `out` valid for `cap` writes (or NULL with 0) and `len_out` NULL or valid for one
    /// write, until the exported function returns; the `TextOut` must not outlive that
    /// call.
    pub(crate) unsafe fn new(
        out: *mut u8,
        cap: usize,
        len_out: *mut usize,
    ) -> Result<Self, ratecore_status> {
        Ok(Self {
            // SAFETY: forwarded from this function's contract.
            len: unsafe { output(len_out) }?,
            // SAFETY: forwarded from this function's contract.
            buffer: unsafe { output_slice(out, cap) }?,
        })
    }

    /// Copies `text` and writes its length; when it does not fit, writes only the length
    /// needed and returns `BufferTooSmall`, the buffer untouched. Bytes past the text are
    /// never written.
    pub(crate) fn deliver(self, text: &[u8]) -> Result<(), ratecore_status> {
        self.len.write(text.len());
        if text.len() > self.buffer.len() {
            return Err(ratecore_status::BufferTooSmall);
        }
        self.buffer.write_all(text.iter().copied());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped_to_printable_ascii() {
        let mut text = Vec::new();
        push_line(
            &mut text,
            &[
                b"plain key",
                b"tab\there",
                b"a\\b",
                b"\n\r\0\x7f\xff",
                "é".as_bytes(),
            ],
        );
        assert_eq!(
            text,
            b"plain key\ttab\\x09here\ta\\\\b\t\\x0a\\x0d\\x00\\x7f\\xff\t\\xc3\\xa9\n"
        );
        assert!(text
            .iter()
            .all(|&b| b == b'\t' || b == b'\n' || (0x20..=0x7e).contains(&b)));
    }
}
