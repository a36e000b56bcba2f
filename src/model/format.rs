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

use std::borrow::Cow;
use std::io::{self, Write};

use rayon::prelude::*;

use super::ModelError;
use crate::ids::IdTable;

pub(crate) const MAGIC: &[u8; 8] = b"COBUY\0MF";
const FOOTER: &[u8; 8] = b"COBUYEND";
pub(crate) const HEADER_LEN: usize = 20;
pub(crate) const FOOTER_LEN: usize = 16;
/// The format this build writes. 2 added latent models (ALS factor sections, new
/// algorithms and parameters in META); version 1 files read unchanged.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this build reads.
pub const OLDEST_READABLE: u32 = 1;

/// Writes a model file to `out`, section by section, as it goes: nothing is gathered in
/// memory, so saving a model costs its bytes' checksums and the copy into the file, and
/// the first sections can be written (and reach the disk) while later ones are computed.
pub(crate) struct Writer<W> {
    out: W,
    /// Bytes written so far, for the footer.
    written: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the header of a file of `sections` sections.
    pub(crate) fn start(mut out: W, sections: u32) -> io::Result<Self> {
        let mut head = [0u8; HEADER_LEN];
        head[..8].copy_from_slice(MAGIC);
        head[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        head[12..16].copy_from_slice(&sections.to_le_bytes());
        let crc = crc32fast::hash(&head[..16]);
        head[16..20].copy_from_slice(&crc.to_le_bytes());
        out.write_all(&head)?;
        Ok(Writer { out, written: HEADER_LEN as u64 })
    }

    pub(crate) fn section(&mut self, tag: &[u8; 4], payload: &[u8]) -> io::Result<()> {
        let len = payload.len() as u64;
        let mut head = [0u8; 16];
        head[..4].copy_from_slice(tag);
        head[4..12].copy_from_slice(&len.to_le_bytes());
        head[12..].copy_from_slice(&section_crc(tag, len, payload).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(payload)?;
        self.written += 16 + len;
        Ok(())
    }

    /// The output, with the bytes written so far (to go on with [`Writer::resume`]).
    pub(crate) fn pause(self) -> (W, u64) {
        (self.out, self.written)
    }

    /// Goes on writing a file whose first `written` bytes a paused writer wrote.
    pub(crate) fn resume(out: W, written: u64) -> Self {
        Writer { out, written }
    }

    /// Writes the footer; the file is complete.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let total = self.written + FOOTER_LEN as u64;
        self.out.write_all(FOOTER)?;
        self.out.write_all(&total.to_le_bytes())?;
        Ok(self.out)
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
        let mut found = Vec::new();
        // The first problem in file order: a section that overruns the file is reported
        // after the checksums of those before it.
        let mut overrun = None;
        for _ in 0..count {
            let Some(head) = body.get(at..at + 16) else {
                overrun = Some(ModelError::Corrupt("section table overruns the file".into()));
                break;
            };
            let tag: [u8; 4] = head[..4].try_into().expect("4 bytes");
            let len = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
            let crc = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
            let start = at + 16;
            let Some(payload) = usize::try_from(len).ok().and_then(|len| body.get(start..start.checked_add(len)?))
            else {
                overrun = Some(ModelError::Corrupt(format!("section {} overruns the file", tag_name(&tag))));
                break;
            };
            found.push((tag, crc, payload));
            at = start + payload.len();
        }
        // Checksummed in parallel: on a large model this is most of what reading costs.
        let bad = found.par_iter().position_first(|(tag, crc, p)| section_crc(tag, p.len() as u64, p) != *crc);
        if let Some(k) = bad {
            return Err(ModelError::Corrupt(format!("section {} checksum mismatch", tag_name(&found[k].0))));
        }
        if let Some(e) = overrun {
            return Err(e);
        }
        if at != body.len() {
            return Err(ModelError::Corrupt("bytes after the last section".into()));
        }
        let list = found.into_iter().map(|(tag, _, payload)| (tag, payload)).collect();
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
///
/// # Safety
/// Implemented only for primitive numbers: no padding, and every bit pattern is a value,
/// so a slice of them may be viewed as bytes and bytes copied into them.
pub(crate) unsafe trait Pod: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn take(b: &[u8]) -> Self;
}

macro_rules! pod {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive number (see the trait).
        unsafe impl Pod for $t {
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

/// The stored bytes of `values`: on a little-endian machine their memory as it is (no copy).
pub(crate) fn raw<T: Pod>(values: &[T]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: `T: Pod` has no padding; the bytes are those of the slice, borrowed as long.
        Cow::Borrowed(unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) })
    } else {
        let mut out = Vec::with_capacity(values.len() * T::SIZE);
        values.iter().for_each(|v| v.put(&mut out));
        Cow::Owned(out)
    }
}

pub(crate) fn decode<T: Pod>(tag: &[u8; 4], bytes: &[u8]) -> Result<Vec<T>, ModelError> {
    if bytes.len() % T::SIZE != 0 {
        return Err(ModelError::Corrupt(format!("section {} has a partial value", tag_name(tag))));
    }
    let n = bytes.len() / T::SIZE;
    if cfg!(target_endian = "big") {
        return Ok(bytes.chunks_exact(T::SIZE).map(T::take).collect());
    }
    let mut out = Vec::<T>::with_capacity(n);
    // SAFETY: `out` has room for `n` values, `n * T::SIZE == bytes.len()` bytes, which are
    // copied whole (little-endian: the stored order is the memory order); any bytes make a
    // valid `T: Pod`, so all `n` are initialised.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), bytes.len());
        out.set_len(n);
    }
    Ok(out)
}

/// Row pointers are `usize` in memory and `u64` on disk.
pub(crate) fn raw_ptr(ptr: &[usize]) -> Cow<'_, [u8]> {
    if size_of::<usize>() == size_of::<u64>() && cfg!(target_endian = "little") {
        // SAFETY: `usize` is a `u64` here, a primitive number as `Pod` asks.
        Cow::Borrowed(unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast::<u8>(), size_of_val(ptr)) })
    } else {
        Cow::Owned(raw(&ptr.iter().map(|&p| p as u64).collect::<Vec<_>>()).into_owned())
    }
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
