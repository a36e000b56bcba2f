//! Opening a purchases file: plain or gzip (by magic bytes, not by name), standard input
//! for `-`, and the delimiter sniffed from the first line when none is given.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::MultiGzDecoder;

/// Counts the bytes read from the underlying (possibly compressed) file, for progress.
pub(crate) struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// An opened input: the decoded byte stream and what we learnt opening it.
pub(crate) struct Opened {
    pub(crate) reader: BufReader<Box<dyn Read>>,
    pub(crate) gzip: bool,
    /// Size of the file on disk, when known (not for standard input).
    pub(crate) size: Option<u64>,
    /// Bytes of the file on disk consumed so far.
    pub(crate) consumed: Rc<Cell<u64>>,
}

/// Opens `path` (`-` is standard input), undoing gzip when the data starts with its magic.
pub(crate) fn open(path: &Path) -> io::Result<Opened> {
    let consumed = Rc::new(Cell::new(0));
    let (raw, size): (Box<dyn Read>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = File::open(path)?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut raw = BufReader::with_capacity(1 << 16, Counting { inner: raw, read: consumed.clone() });
    let gzip = raw.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let decoded: Box<dyn Read> = if gzip { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let reader = BufReader::with_capacity(1 << 16, decoded);
    Ok(Opened { reader, gzip, size, consumed })
}

/// Turns each `::` into [`super::DOUBLE_COLON`], the one-byte delimiter the CSV reader
/// is given for `::`-separated files (MovieLens `ratings.dat`); single colons pass through.
pub(crate) struct DoubleColon<R> {
    pub(crate) inner: R,
    /// A `:` was the last byte seen and its partner is not known yet.
    pending: bool,
}

impl<R> DoubleColon<R> {
    pub(crate) fn new(inner: R) -> Self {
        DoubleColon { inner, pending: false }
    }
}

impl<R: BufRead> Read for DoubleColon<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                if std::mem::take(&mut self.pending) {
                    out[n] = b':';
                    n += 1;
                }
                break;
            }
            let mut used = 0;
            while used < buf.len() && n < out.len() {
                let b = buf[used];
                if std::mem::take(&mut self.pending) {
                    if b == b':' {
                        out[n] = super::DOUBLE_COLON;
                        n += 1;
                        used += 1;
                        continue;
                    }
                    out[n] = b':';
                    n += 1;
                    continue; // `b` is looked at again, with room permitting
                }
                used += 1;
                if b == b':' {
                    self.pending = true;
                } else {
                    out[n] = b;
                    n += 1;
                }
            }
            self.inner.consume(used);
            if n > 0 {
                break;
            }
        }
        Ok(n)
    }
}

/// The candidate delimiter that occurs most often outside quotes in the first line
/// (`::` counts as one); `,` when none occurs.
pub(crate) fn sniff_delimiter(first_chunk: &[u8]) -> u8 {
    let line = first_chunk.split(|&b| b == b'\n').next().unwrap_or_default();
    let double = line.windows(2).filter(|w| w == b"::").count();
    let others = line.iter().filter(|b| b",\t;|".contains(b)).count();
    if double > 0 && double >= others {
        return super::DOUBLE_COLON;
    }
    let mut counts = [0usize; 4];
    let candidates = [b',', b'\t', b';', b'|'];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(k) = candidates.iter().position(|&c| c == b) {
                counts[k] += 1;
            }
        }
    }
    // Ties go to the earlier candidate; `,` wins when nothing occurs.
    let best = (0..4).max_by_key(|&k| (counts[k], std::cmp::Reverse(k))).unwrap_or(0);
    if counts[best] == 0 { b',' } else { candidates[best] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_delimiter_outside_quotes() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(sniff_delimiter(b"196\t242\t3\t881250949\n"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a,b\";\"c,d\";e"), b';');
        assert_eq!(sniff_delimiter(b"a|b"), b'|');
        assert_eq!(sniff_delimiter(b"single"), b',');
        assert_eq!(sniff_delimiter(b"1::1193::5::978300760\n"), super::super::DOUBLE_COLON);
        assert_eq!(sniff_delimiter(b"a,b,time\n1,2,12:30"), b',');
    }

    #[test]
    fn double_colons_collapse_whatever_the_read_sizes() {
        let text = b"1::2::a:b::c:\n::x:::y::\n:";
        let want: Vec<u8> = b"1\x1f2\x1fa:b\x1fc:\n\x1fx\x1f:y\x1f\n:".to_vec();
        for cap in 1..8 {
            for chunk in 1..8 {
                let mut r = DoubleColon::new(BufReader::with_capacity(cap, &text[..]));
                let mut got = Vec::new();
                let mut buf = vec![0u8; chunk];
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, want, "buffer {cap}, reads of {chunk}");
            }
        }
    }
}
