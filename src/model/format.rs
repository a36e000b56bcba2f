//! The on-disk model format. Only this file knows it.
//!
//! ```text
//! header   "COBUY\0MF"  format version u32  section count u32  crc32(previous 16 bytes) u32
//! section  tag [u8; 4]  payload length u64  crc32(tag, length, payload) u32  payload
//!   ...
//! footer   "COBUYEND"  total file length u64
//! ```
//! All integers little-endian. Arrays are raw little-endian `u32`/`u64`/`i64`/`f32`; the
//! `META` section is JSON (parameters and fit information, human-readable and tolerant of
//! added fields). Readers check, in order: the footer (a truncated file fails here), the
//! header checksum, the version, then every section's checksum, then every structural
//! invariant of the decoded matrices (in `Model::from_bytes`). Unknown sections
//! are skipped, so later versions can add optional data without breaking older readers.

use super::ModelError;
use crate::ids::IdTable;

pub(crate) const MAGIC: &[u8; 8] = b"COBUY\0MF";
const FOOTER: &[u8; 8] = b"COBUYEND";
const HEADER_LEN: usize = 20;
const FOOTER_LEN: usize = 16;
/// The format this build writes. 2 added latent models (ALS factor sections, new
/// algorithms and parameters in META); version 1 files read unchanged.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this build reads.
pub const OLDEST_READABLE: u32 = 1;

/// Builds a model file in memory, section by section.
pub(crate) struct Writer {
    buf: Vec<u8>,
    sections: u32,
}

impl Writer {
    pub(crate) fn new() -> Self {
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&[0; 8]); // section count and header crc, filled by finish
        Writer { buf, sections: 0 }
    }

    pub(crate) fn section(&mut self, tag: &[u8; 4], payload: &[u8]) {
        self.buf.extend_from_slice(tag);
        self.buf.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(&section_crc(tag, payload.len() as u64, payload).to_le_bytes());
        self.buf.extend_from_slice(payload);
        self.sections += 1;
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf[12..16].copy_from_slice(&self.sections.to_le_bytes());
        let crc = crc32fast::hash(&self.buf[..16]);
        self.buf[16..20].copy_from_slice(&crc.to_le_bytes());
        self.buf.extend_from_slice(FOOTER);
        let total = (self.buf.len() + 8) as u64;
        self.buf.extend_from_slice(&total.to_le_bytes());
        self.buf
    }
}

/// The sections of a verified file, in file order.
pub(crate) struct Sections<'a> {
    pub(crate) version: u32,
    list: Vec<([u8; 4], &'a [u8])>,
}

impl<'a> Sections<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, ModelError> {
        if bytes.len() < 8 && MAGIC.starts_with(bytes) {
            return Err(ModelError::Truncated { expected: None, found: bytes.len() as u64 });
        }
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(ModelError::NotAModel);
        }
        if bytes.len() < HEADER_LEN + FOOTER_LEN {
            return Err(ModelError::Truncated { expected: None, found: bytes.len() as u64 });
        }
        let tail = &bytes[bytes.len() - FOOTER_LEN..];
        let total = u64::from_le_bytes(tail[8..].try_into().expect("8 bytes"));
        if &tail[..8] != FOOTER || total != bytes.len() as u64 {
            let expected = (&tail[..8] == FOOTER).then_some(total);
            return Err(ModelError::Truncated { expected, found: bytes.len() as u64 });
        }
        let stored_crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes[..16]) != stored_crc {
            return Err(ModelError::Corrupt("header checksum mismatch".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > FORMAT_VERSION {
            return Err(ModelError::NewerFormat { found: version, supported: FORMAT_VERSION });
        }
        if version < OLDEST_READABLE {
            return Err(ModelError::OlderFormat { found: version, oldest: OLDEST_READABLE });
        }
        let count = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        let body = &bytes[HEADER_LEN..bytes.len() - FOOTER_LEN];
        let mut at = 0usize;
        let mut list = Vec::new();
        for _ in 0..count {
            let head =
                body.get(at..at + 16).ok_or_else(|| ModelError::Corrupt("section table overruns the file".into()))?;
            let tag: [u8; 4] = head[..4].try_into().expect("4 bytes");
            let len = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
            let crc = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
            let start = at + 16;
            let payload = usize::try_from(len)
                .ok()
                .and_then(|len| body.get(start..start.checked_add(len)?))
                .ok_or_else(|| ModelError::Corrupt(format!("section {} overruns the file", tag_name(&tag))))?;
            if section_crc(&tag, len, payload) != crc {
                return Err(ModelError::Corrupt(format!("section {} checksum mismatch", tag_name(&tag))));
            }
            list.push((tag, payload));
            at = start + payload.len();
        }
        if at != body.len() {
            return Err(ModelError::Corrupt("bytes after the last section".into()));
        }
        Ok(Sections { version, list })
    }

    /// A section's payload; an error when a required section is missing.
    pub(crate) fn get(&self, tag: &[u8; 4]) -> Result<&'a [u8], ModelError> {
        self.optional(tag).ok_or_else(|| ModelError::Corrupt(format!("section {} is missing", tag_name(tag))))
    }

    pub(crate) fn optional(&self, tag: &[u8; 4]) -> Option<&'a [u8]> {
        self.list.iter().find(|(t, _)| t == tag).map(|(_, p)| *p)
    }
}

/// A section's checksum covers its tag and length too, so a damaged tag cannot turn a
/// section into an unknown (skipped) one.
fn section_crc(tag: &[u8; 4], len: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(tag);
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn tag_name(tag: &[u8; 4]) -> String {
    String::from_utf8_lossy(tag).into_owned()
}

/// Fixed-width little-endian values, for arrays stored raw.
pub(crate) trait Pod: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn take(b: &[u8]) -> Self;
}

macro_rules! pod {
    ($($t:ty),*) => {$(
        impl Pod for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn take(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("exact chunk"))
            }
        }
    )*};
}
pod!(u32, u64, i64, f32, f64);

pub(crate) fn encode<T: Pod>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::SIZE);
    values.iter().for_each(|v| v.put(&mut out));
    out
}

pub(crate) fn decode<T: Pod>(tag: &[u8; 4], bytes: &[u8]) -> Result<Vec<T>, ModelError> {
    if bytes.len() % T::SIZE != 0 {
        return Err(ModelError::Corrupt(format!("section {} has a partial value", tag_name(tag))));
    }
    Ok(bytes.chunks_exact(T::SIZE).map(T::take).collect())
}

/// Row pointers are `usize` in memory and `u64` on disk.
pub(crate) fn encode_ptr(ptr: &[usize]) -> Vec<u8> {
    encode(&ptr.iter().map(|&p| p as u64).collect::<Vec<_>>())
}

pub(crate) fn decode_ptr(tag: &[u8; 4], bytes: &[u8]) -> Result<Vec<usize>, ModelError> {
    decode::<u64>(tag, bytes)?
        .into_iter()
        .map(|p| usize::try_from(p).map_err(|_| ModelError::Corrupt("row pointer too large".into())))
        .collect()
}

/// Ids: count u64, then each length u32, then all bytes.
pub(crate) fn encode_ids(ids: &IdTable) -> Vec<u8> {
    let (text, ends) = ids.parts();
    let mut out = Vec::with_capacity(8 + 4 * ends.len() + text.len());
    out.extend_from_slice(&(ends.len() as u64).to_le_bytes());
    let mut start = 0;
    for &end in ends {
        ((end - start) as u32).put(&mut out);
        start = end;
    }
    out.extend_from_slice(text.as_bytes());
    out
}

/// Reads ids written by [`encode_ids`]; they must be valid UTF-8, distinct and sorted.
pub(crate) fn decode_ids(tag: &[u8; 4], bytes: &[u8]) -> Result<IdTable, ModelError> {
    let bad = |what: &str| ModelError::Corrupt(format!("section {}: {what}", tag_name(tag)));
    let n =
        usize::try_from(u64::take(bytes.get(..8).ok_or_else(|| bad("too short"))?)).map_err(|_| bad("too many ids"))?;
    let lens_end = n.checked_mul(4).and_then(|l| l.checked_add(8)).ok_or_else(|| bad("too many ids"))?;
    let lens = bytes.get(8..lens_end).ok_or_else(|| bad("lengths overrun the section"))?;
    let mut ends = Vec::with_capacity(n);
    let mut end = 0usize;
    for len in lens.chunks_exact(4).map(u32::take) {
        end = end.checked_add(len as usize).ok_or_else(|| bad("lengths overflow"))?;
        ends.push(end);
    }
    if lens_end + end != bytes.len() {
        return Err(bad("lengths do not match the text"));
    }
    let text = String::from_utf8(bytes[lens_end..].to_vec()).map_err(|_| bad("ids are not UTF-8"))?;
    IdTable::from_parts(text, ends).ok_or_else(|| bad("ids are not distinct, sorted and whole"))
}
