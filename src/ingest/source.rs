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
///
/// Once the delimiter is known it also follows the quoting of the text (as the csv crate
/// reads it: a quote opens a field only at the field's start, `""` inside is one quote),
/// so that a quote still open when the stream ends can be named by the line it opened on.
#[derive(Default)]
pub(crate) struct Newlines {
    /// Newlines before the first offset still held.
    dropped: u64,
    /// Offsets of newlines not yet passed by the reader (bounded by its read-ahead).
    offsets: VecDeque<u64>,
    /// Bytes handed out so far.
    seen: u64,
    /// The field delimiter, once known: quotes are followed from then on.
    delimiter: Option<u8>,
    quote: Quote,
    /// The line the quoted field now open started on.
    opened: u64,
    /// The stream has ended.
    eof: bool,
    /// Lines where text follows a closing quote (`"b"x`, which the csv crate reads as `bx`),
    /// not yet claimed by a record.
    stray: VecDeque<u64>,
}

/// Where the text read so far stands, quoting-wise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Quote {
    /// At the start of a field.
    #[default]
    FieldStart,
    /// In a field that did not start with a quote (quotes in it are plain bytes).
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote in a quoted field: closed, unless another quote follows.
    Closing,
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

    /// Follows quotes from now on (call before the CSV reader reads anything).
    pub(crate) fn follow_quotes(&mut self, delimiter: u8) {
        self.delimiter = Some(delimiter);
    }

    /// The line of a quoted field that was still open when the stream ended.
    pub(crate) fn unclosed_quote(&self) -> Option<u64> {
        (self.eof && self.quote == Quote::Quoted).then_some(self.opened)
    }

    fn scan(&mut self, bytes: &[u8]) {
        let base = self.seen;
        self.seen += bytes.len() as u64;
        let Some(d) = self.delimiter else {
            self.offsets.extend(memchr::memchr_iter(b'\n', bytes).map(|i| base + i as u64));
            return;
        };
        // Only newlines, quotes and delimiters change the state; a run of other bytes
        // moves a field from its start (or from after a closing quote) into its text.
        let mut after = 0;
        for i in memchr::memchr3_iter(b'\n', b'"', d, bytes) {
            if i > after {
                self.text(&bytes[after..i]);
            }
            after = i + 1;
            let b = bytes[i];
            if b == b'\n' {
                self.offsets.push_back(base + i as u64);
            }
            self.quote = match (self.quote, b) {
                (Quote::Quoted, b'"') => Quote::Closing,
                (Quote::Quoted, _) => Quote::Quoted,
                (Quote::Closing, b'"') => Quote::Quoted,
                (Quote::FieldStart, b'"') => {
                    self.opened = self.dropped + self.offsets.len() as u64 + 1;
                    Quote::Quoted
                }
                (Quote::Unquoted, b'"') => Quote::Unquoted,
                _ => Quote::FieldStart, // a delimiter or newline outside quotes
            };
        }
        if bytes.len() > after {
            self.text(&bytes[after..]);
        }
    }

    /// A run of bytes that are neither newlines, quotes nor delimiters. Carriage returns
    /// alone change nothing: they end records as newlines do.
    fn text(&mut self, run: &[u8]) {
        match self.quote {
            Quote::Quoted => {}
            Quote::FieldStart | Quote::Closing if run.iter().all(|&b| b == b'\r') => {}
            Quote::Closing => {
                self.stray.push_back(self.dropped + self.offsets.len() as u64 + 1);
                self.quote = Quote::Unquoted;
            }
            _ => self.quote = Quote::Unquoted,
        }
    }

    /// Whether text follows a closing quote on lines `first..=last` (claimed once).
    pub(crate) fn stray_text(&mut self, first: u64, last: u64) -> bool {
        while self.stray.front().is_some_and(|&l| l < first) {
            self.stray.pop_front();
        }
        let mut found = false;
        while self.stray.front().is_some_and(|&l| l <= last) {
            self.stray.pop_front();
            found = true;
        }
        found
    }
}

/// Records newline offsets (and quoting) of the decoded bytes as the CSV reader pulls them.
pub(crate) struct LineIndexed<R> {
    inner: R,
    index: Rc<RefCell<Newlines>>,
}

impl<R: Read> Read for LineIndexed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut idx = self.index.borrow_mut();
        if n == 0 && !buf.is_empty() {
            idx.eof = true;
        }
        idx.scan(&buf[..n]);
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

impl<R> LineIndexed<R> {
    /// The reader inside (before anything was read through this one).
    pub(crate) fn into_parts(self) -> (R, Rc<RefCell<Newlines>>) {
        (self.inner, self.index)
    }

    pub(crate) fn new(inner: R, index: Rc<RefCell<Newlines>>) -> Self {
        LineIndexed { inner, index }
    }
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

    /// The line of a quote still open at the end, scanning `text` in reads of `chunk` bytes.
    fn open_quote(text: &[u8], chunk: usize) -> Option<u64> {
        let index = Rc::new(RefCell::new(Newlines::default()));
        index.borrow_mut().follow_quotes(b',');
        let mut r = LineIndexed::new(BufReader::with_capacity(chunk, text), index.clone());
        let mut buf = vec![0u8; chunk];
        while r.read(&mut buf).unwrap() > 0 {}
        index.borrow().unclosed_quote()
    }

    #[test]
    fn a_quote_open_at_the_end_is_found_whatever_the_read_sizes() {
        let cases: [(&[u8], Option<u64>); 9] = [
            (b"a,b\nc,\"d\ne\n", Some(2)),
            (b"a,b\nc,\"d\"\"\ne\n", Some(2)), // an escaped quote does not close it
            (b"a,b\nc,\"d\"\ne\n", None),      // closed, then a new record
            (b"a,b\"c\nd\n", None),            // a quote inside an unquoted field is a byte
            (b"a,\"b\"x,\"\n", Some(1)),       // `"b"x` is closed; the last field opens a new quote
            (b"\"a\nb\nc", Some(1)),
            (b"a,\"\"\n", None),        // an empty quoted field
            (b"a,\"b\r\n\"\r\n", None), // CRLF inside and after quotes
            (b"", None),
        ];
        for (text, want) in cases {
            for chunk in [1, 2, 3, 7, 64] {
                assert_eq!(open_quote(text, chunk), want, "{:?} in reads of {chunk}", String::from_utf8_lossy(text));
            }
        }
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
