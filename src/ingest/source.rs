//! Opening a purchases file: plain or gzip (by magic bytes, not by name), standard input
//! for `-`, and the delimiter sniffed from the first line when none is given.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
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

/// Where the newlines of the decoded stream are, so that a record's line can be found
/// from its end offset. The CSV reader's own start position is stamped before it skips
/// blank lines and the `\n` of a CRLF, so it can be one or more lines early.
#[derive(Default)]
pub(crate) struct Newlines {
    /// Newlines before the first offset still held.
    dropped: u64,
    /// Offsets of newlines not yet passed by the reader (bounded by its read-ahead).
    offsets: VecDeque<u64>,
    /// Bytes handed out so far.
    seen: u64,
}

impl Newlines {
    /// 1-based line of the byte at `offset`; forgets newlines before it (offsets asked
    /// for must not decrease).
    pub(crate) fn line_at(&mut self, offset: u64) -> u64 {
        while self.offsets.front().is_some_and(|&o| o < offset) {
            self.offsets.pop_front();
            self.dropped += 1;
        }
        self.dropped + 1
    }
}

/// Records newline offsets of the decoded bytes as the CSV reader pulls them.
pub(crate) struct LineIndexed<R> {
    inner: R,
    index: Rc<RefCell<Newlines>>,
}

impl<R: Read> Read for LineIndexed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut idx = self.index.borrow_mut();
        let base = idx.seen;
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            idx.offsets.push_back(base + i as u64);
        }
        idx.seen += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> LineIndexed<R> {
    /// The first bytes of the stream, without consuming them.
    pub(crate) fn peek(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
}

/// An opened input: the decoded byte stream and what we learnt opening it.
pub(crate) struct Opened {
    pub(crate) reader: LineIndexed<BufReader<Box<dyn Read>>>,
    /// Newline offsets of the decoded stream, filled as `reader` is read.
    pub(crate) newlines: Rc<RefCell<Newlines>>,
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
    let newlines = Rc::new(RefCell::new(Newlines::default()));
    let reader = LineIndexed { inner: BufReader::with_capacity(1 << 16, decoded), index: newlines.clone() };
    Ok(Opened { reader, newlines, gzip, size, consumed })
}

/// The candidate delimiter that occurs most often outside quotes in the first line;
/// `,` when none occurs.
pub(crate) fn sniff_delimiter(first_chunk: &[u8]) -> u8 {
    let line = first_chunk.split(|&b| b == b'\n').next().unwrap_or_default();
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
    }
}
