//! A byte writer over a caller buffer that never allocates and never fails mid-way: it
//! writes what fits and counts everything, so the caller learns the exact length needed.

/// Writes into `buffer`, counting every byte offered (written or not).
pub(crate) struct Writer<'a> {
    buffer: &'a mut [u8],
    needed: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buffer: &'a mut [u8]) -> Self {
        Self { buffer, needed: 0 }
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        if let Some(target) = self
            .buffer
            .get_mut(self.needed..)
            .and_then(|rest| rest.get_mut(..bytes.len()))
        {
            target.copy_from_slice(bytes);
        }
        self.needed = self.needed.saturating_add(bytes.len());
    }

    pub(crate) fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        let mut digits = itoa::Buffer::new();
        self.str(digits.format(value));
    }

    /// Two-digit zero-padded number (dates).
    pub(crate) fn two_digits(&mut self, value: u64) {
        if value < 10 {
            self.bytes(b"0");
        }
        self.u64(value);
    }

    /// The bytes offered so far (written or not).
    pub(crate) const fn len(&self) -> usize {
        self.needed
    }

    /// The bytes needed, and whether they all fit.
    pub(crate) fn finish(self) -> Result<usize, usize> {
        if self.needed <= self.buffer.len() {
            Ok(self.needed)
        } else {
            Err(self.needed)
        }
    }
}
