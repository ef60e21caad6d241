//! Leaf helpers that read and write the payload primitives: little-endian integers, and byte
//! strings and UTF-8 text prefixed with a u32 length. The reader never trusts a length or a
//! count: each is checked against the bytes that remain before anything is allocated.
//!
//! A reader over a shared buffer ([`Reader::shared`]) hands out message bodies as [`Bytes`]
//! views of that buffer: a 1 KiB record costs a reference count, not an allocation and a copy.

use bytes::Bytes;

use super::error::PayloadError;
use crate::limits::NAME_BYTES_MAX;

/// A cursor over one frame's payload.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    /// The buffer `bytes` started as, when shared: [`Reader::blob`] slices it instead of
    /// copying.
    shared: Option<&'a Bytes>,
    /// Bytes taken so far: where `bytes` starts inside `shared`.
    taken: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            shared: None,
            taken: 0,
        }
    }

    /// A reader whose blobs are views of `payload`.
    pub(crate) fn shared(payload: &'a Bytes) -> Reader<'a> {
        Reader {
            bytes: payload,
            shared: Some(payload),
            taken: 0,
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PayloadError> {
        if n > self.bytes.len() {
            return Err(PayloadError::Truncated { field });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        self.taken += n;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], PayloadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, PayloadError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, PayloadError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, PayloadError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A 0/1 byte.
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, PayloadError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(PayloadError::BadTag { field, tag }),
        }
    }

    /// A u32 length, then that many bytes.
    fn blob_slice(&mut self, field: &'static str) -> Result<&'a [u8], PayloadError> {
        let length = self.u32(field)?;
        let n = usize::try_from(length).unwrap_or(usize::MAX);
        if n > self.bytes.len() {
            return Err(PayloadError::TooLong {
                field,
                length: u64::from(length),
            });
        }
        self.take(n, field)
    }

    /// A u32 length, then that many bytes: a view of the shared buffer, else a copy.
    pub(crate) fn blob(&mut self, field: &'static str) -> Result<Bytes, PayloadError> {
        let start = self.taken;
        let slice = self.blob_slice(field)?;
        Ok(match self.shared {
            Some(shared) => shared.slice(start + 4..self.taken),
            None => Bytes::copy_from_slice(slice),
        })
    }

    /// A u32 length, then that many bytes of UTF-8.
    pub(crate) fn text(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let slice = self.blob_slice(field)?;
        let text = std::str::from_utf8(slice).map_err(|_| PayloadError::NotUtf8 { field })?;
        Ok(text.to_string())
    }

    /// Text of at most [`NAME_BYTES_MAX`] bytes.
    pub(crate) fn name(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let text = self.text(field)?;
        if text.len() > NAME_BYTES_MAX {
            return Err(PayloadError::TooLong {
                field,
                length: text.len() as u64,
            });
        }
        Ok(text)
    }

    /// A u32 element count, checked against `max` and against the remaining bytes, given that
    /// each element takes at least `element_bytes_min` bytes. The result is safe to pass to
    /// `Vec::with_capacity`.
    pub(crate) fn count(
        &mut self,
        field: &'static str,
        element_bytes_min: usize,
        max: usize,
    ) -> Result<usize, PayloadError> {
        let count = self.u32(field)?;
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        let fits = n.saturating_mul(element_bytes_min.max(1)) <= self.bytes.len();
        if n > max || !fits {
            return Err(PayloadError::TooLong {
                field,
                length: u64::from(count),
            });
        }
        Ok(n)
    }

    /// Ends the payload: every byte must have been read.
    pub(crate) fn finish(self) -> Result<(), PayloadError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(PayloadError::Trailing(n)),
        }
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// A length prefix; lengths past u32 saturate, and the frame limit then rejects the frame.
pub(crate) fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u32(out, u32::try_from(n).unwrap_or(u32::MAX));
}

pub(crate) fn put_blob(out: &mut Vec<u8>, v: &[u8]) {
    put_len(out, v.len());
    out.extend_from_slice(v);
}

pub(crate) fn put_text(out: &mut Vec<u8>, v: &str) {
    put_blob(out, v.as_bytes());
}
