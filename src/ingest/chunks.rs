//! A delimited stream cut into chunks that end on record boundaries, so that the chunks
//! can be parsed on many threads and their results taken back in file order.
//!
//! A chunk ends just after a newline at which the csv crate is between records and the
//! quote-following of [`Quotes`] is at a field's start (a file without quotes is cut at
//! its last newline, found by `memchr`; a file with quotes is followed byte by byte, in
//! the reading thread). A chunk knows the line it starts on, so each parses alone to the
//! same records, lines and problems as reading the whole stream would give.

use std::collections::VecDeque;
use std::io::{self, Read};

use super::delimited::{MAX_LINES_IN_RECORD, Record, RowProblem, SourceError};

/// Bytes a chunk holds at least (unless the stream ends first): large enough that a
/// chunk's setup and its ids' second lookup are small against its parsing, small enough
/// that the few chunks in flight cost little memory.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Where the text read so far stands, quoting-wise, as [`Quotes`] follows it.
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

/// Follows the quoting of the text (as the csv crate reads it: a quote opens a field only
/// at the field's start, `""` inside is one quote), so that a quote still open when the
/// stream ends can be named by the line it opened on, and text after a closing quote
/// (`"b"x`, which the csv crate reads as `bx`) by its line.
#[derive(Debug, Clone)]
pub(crate) struct Quotes {
    delimiter: u8,
    quote: Quote,
    /// 1-based line of the next byte.
    line: u64,
    /// The line the quoted field now open started on.
    opened: u64,
    /// Lines where text follows a closing quote, not yet claimed by a record.
    stray: VecDeque<u64>,
}

impl Quotes {
    /// Follows text that starts at a field's start on line `line`.
    pub(crate) fn new(delimiter: u8, line: u64) -> Self {
        Quotes { delimiter, quote: Quote::FieldStart, line, opened: 0, stray: VecDeque::new() }
    }

    /// The line of a quoted field still open after the text scanned so far.
    pub(crate) fn open_at_end(&self) -> Option<u64> {
        (self.quote == Quote::Quoted).then_some(self.opened)
    }

    pub(crate) fn scan(&mut self, bytes: &[u8]) {
        // Only newlines, quotes and delimiters change the state; a run of other bytes
        // moves a field from its start (or from after a closing quote) into its text.
        let mut after = 0;
        for i in memchr::memchr3_iter(b'\n', b'"', self.delimiter, bytes) {
            if i > after {
                self.text(&bytes[after..i]);
            }
            after = i + 1;
            let b = bytes[i];
            if self.quote == Quote::FieldStart && b == b'"' {
                self.opened = self.line;
            }
            self.quote = special(self.quote, b);
            if b == b'\n' {
                self.line += 1;
            }
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
                self.stray.push_back(self.line);
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

/// [`Quotes`]' step on a newline, a quote or a delimiter.
fn special(q: Quote, b: u8) -> Quote {
    match (q, b) {
        (Quote::Quoted, b'"') => Quote::Closing,
        (Quote::Quoted, _) => Quote::Quoted,
        (Quote::Closing, b'"') => Quote::Quoted,
        (Quote::FieldStart, b'"') => Quote::Quoted,
        (Quote::Unquoted, b'"') => Quote::Unquoted,
        _ => Quote::FieldStart, // a delimiter or newline outside quotes
    }
}

/// Where the csv crate's reader stands (its states folded to those that matter for
/// quoting; `\r` and `\n` both end records, as its default terminator does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Csv {
    Record,
    Field,
    Unquoted,
    Quoted,
    AfterQuote,
}

impl Csv {
    fn step(self, b: u8, delimiter: u8) -> Csv {
        let term = b == b'\n' || b == b'\r';
        let start = |b: u8| match b {
            b'"' => Csv::Quoted,
            _ if b == delimiter => Csv::Field,
            _ if term => Csv::Record,
            _ => Csv::Unquoted,
        };
        match self {
            Csv::Record if term => Csv::Record,
            Csv::Record | Csv::Field => start(b),
            Csv::Quoted if b == b'"' => Csv::AfterQuote,
            Csv::Quoted => Csv::Quoted,
            Csv::AfterQuote if b == b'"' => Csv::Quoted,
            Csv::Unquoted | Csv::AfterQuote if b == delimiter => Csv::Field,
            Csv::Unquoted | Csv::AfterQuote if term => Csv::Record,
            Csv::Unquoted | Csv::AfterQuote => Csv::Unquoted,
        }
    }
}

/// [`Quotes`]' step on any byte (its runs of text taken a byte at a time).
fn quote_step(q: Quote, b: u8, delimiter: u8) -> Quote {
    if b == b'\n' || b == b'"' || b == delimiter {
        return special(q, b);
    }
    match q {
        Quote::Quoted => Quote::Quoted,
        Quote::FieldStart | Quote::Closing if b == b'\r' => q,
        _ => Quote::Unquoted,
    }
}

/// Consecutive records of the stream, starting at a record's start.
pub(crate) struct Chunk {
    bytes: Vec<u8>,
    /// The line of its first byte.
    first_line: u64,
    /// It ends where the stream ends (or where reading it failed).
    last: bool,
    /// Reading the stream failed after these bytes: a record they leave unfinished is dropped.
    truncated: bool,
}

/// Bytes read at a time: followed while they are still in the cache.
const PIECE: usize = 1 << 18;

/// Cuts a stream into [`Chunk`]s of about `target` bytes.
pub(crate) struct Splitter {
    input: Box<dyn Read>,
    delimiter: u8,
    target: usize,
    /// Bytes read and not yet handed out; they start at a record's start.
    buf: Vec<u8>,
    /// Bytes wanted in `buf` before a chunk is cut.
    want: usize,
    /// The line of `buf`'s first byte.
    line: u64,
    /// How far `buf` was followed, both machines' states there, and the newlines before.
    scanned: usize,
    csv: Csv,
    quote: Quote,
    newlines: u64,
    /// The last boundary found, and the newlines before it.
    boundary: Option<(usize, u64)>,
    end: bool,
    done: bool,
    error: Option<io::Error>,
}

impl Splitter {
    pub(crate) fn new(input: Box<dyn Read>, delimiter: u8, target: usize) -> Self {
        let target = target.max(1);
        Splitter {
            input,
            delimiter,
            target,
            buf: Vec::new(),
            want: target,
            line: 1,
            scanned: 0,
            csv: Csv::Record,
            quote: Quote::FieldStart,
            newlines: 0,
            boundary: None,
            end: false,
            done: false,
            error: None,
        }
    }

    /// The error that ended the stream, once every chunk was handed out.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Reads up to a piece more, without zeroing the buffer first.
    fn fill(&mut self) {
        let ask = (self.want - self.buf.len()).min(PIECE);
        match (&mut self.input).take(ask as u64).read_to_end(&mut self.buf) {
            Ok(n) => self.end = n < ask,
            // The bytes read before the error are in `buf`.
            Err(e) => {
                self.error = Some(e);
                self.end = true;
            }
        }
    }

    /// Follows `buf` from `scanned` to its end, noting the last boundary.
    fn follow(&mut self) {
        let d = self.delimiter;
        let rest = &self.buf[self.scanned..];
        let quoted = self.csv == Csv::Quoted || self.quote == Quote::Quoted;
        if !quoted && memchr::memchr(b'"', rest).is_none() {
            // No quote: every newline is a boundary; follow only the text after the last.
            let from = match memchr::memrchr(b'\n', rest) {
                Some(i) => {
                    self.newlines += memchr::memchr_iter(b'\n', rest).count() as u64;
                    self.boundary = Some((self.scanned + i + 1, self.newlines));
                    (self.csv, self.quote) = (Csv::Record, Quote::FieldStart);
                    i + 1
                }
                None => 0,
            };
            for &b in &rest[from..] {
                (self.csv, self.quote) = (self.csv.step(b, d), quote_step(self.quote, b, d));
            }
        } else {
            for (i, &b) in rest.iter().enumerate() {
                (self.csv, self.quote) = (self.csv.step(b, d), quote_step(self.quote, b, d));
                if b == b'\n' {
                    self.newlines += 1;
                    if self.csv == Csv::Record && self.quote == Quote::FieldStart {
                        self.boundary = Some((self.scanned + i + 1, self.newlines));
                    }
                }
            }
        }
        self.scanned = self.buf.len();
    }

    /// The next chunk; `None` once the stream is used up.
    pub(crate) fn next_chunk(&mut self) -> Option<Chunk> {
        if self.done {
            return None;
        }
        loop {
            if self.end {
                self.done = true;
                let bytes = std::mem::take(&mut self.buf);
                if bytes.is_empty() && self.error.is_none() {
                    return None;
                }
                let truncated = self.error.is_some();
                return Some(Chunk { bytes, first_line: self.line, last: true, truncated });
            }
            if self.buf.len() >= self.want {
                if let Some((end, newlines)) = self.boundary.take() {
                    let mut rest = Vec::with_capacity(self.target.max(self.buf.len() - end) + PIECE);
                    rest.extend_from_slice(&self.buf[end..]);
                    let mut bytes = std::mem::replace(&mut self.buf, rest);
                    bytes.truncate(end);
                    let first_line = self.line;
                    self.line += newlines;
                    self.newlines -= newlines;
                    self.scanned -= end;
                    self.want = self.target;
                    return Some(Chunk { bytes, first_line, last: false, truncated: false });
                }
                // No boundary yet (a very long record): read on.
                self.want = self.buf.len() + self.target;
            }
            self.fill();
            if !self.end {
                self.follow();
            }
        }
    }
}

/// A chunk's bytes as the csv reader takes them, noting when it asked past their end.
struct Tail {
    bytes: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Read for Tail {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.bytes.len() - self.pos);
        out[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        if n == 0 && !out.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

/// One chunk's records, read one at a time (on any thread): each record's first line, the
/// unclosed-quote guard and the problems that make a whole record bad.
pub(crate) struct ChunkRecords {
    name: String,
    csv: csv::Reader<Tail>,
    record: csv::ByteRecord,
    /// Offsets of the chunk's newlines (for a chunk with quotes), and how many newlines lie
    /// before the last offset asked for (before `pos` in a chunk without quotes).
    newlines: Vec<usize>,
    passed: usize,
    /// The line of the record `read_plain` read last.
    line_of_start: u64,
    first_line: u64,
    /// Quote-following, for a chunk that holds a quote.
    quotes: Option<Quotes>,
    last: bool,
    truncated: bool,
    delimiter: u8,
    /// Where a chunk without quotes is read from, and where its current record starts.
    pos: usize,
    start: usize,
    header_len: Option<usize>,
    /// The current record's line and problem.
    line: u64,
    problem: Option<RowProblem>,
    /// Records read.
    pub(crate) records: u64,
}

impl ChunkRecords {
    pub(crate) fn new(chunk: Chunk, name: &str, delimiter: u8, header_len: Option<usize>) -> Self {
        let quotes = memchr::memchr(b'"', &chunk.bytes).is_some().then(|| {
            let mut q = Quotes::new(delimiter, chunk.first_line);
            q.scan(&chunk.bytes);
            q
        });
        // A chunk without quotes counts its newlines as it reads (`read_plain`).
        let newlines = if quotes.is_some() { memchr::memchr_iter(b'\n', &chunk.bytes).collect() } else { Vec::new() };
        let csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Tail { bytes: chunk.bytes, pos: 0, eof: false });
        ChunkRecords {
            name: name.to_string(),
            csv,
            record: csv::ByteRecord::new(),
            newlines,
            passed: 0,
            line_of_start: chunk.first_line,
            first_line: chunk.first_line,
            quotes,
            last: chunk.last,
            truncated: chunk.truncated,
            delimiter,
            pos: 0,
            start: 0,
            header_len,
            line: chunk.first_line,
            problem: None,
            records: 0,
        }
    }

    pub(crate) fn set_header_len(&mut self, n: usize) {
        self.header_len = Some(n);
    }

    /// The line of the byte at `offset` (offsets asked for must not decrease).
    fn line_at(&mut self, offset: usize) -> u64 {
        while self.newlines.get(self.passed).is_some_and(|&o| o < offset) {
            self.passed += 1;
        }
        self.first_line + self.passed as u64
    }

    /// Reads the next record without looking at it (the header); `false` at the end.
    pub(crate) fn read_raw(&mut self) -> Result<bool, SourceError> {
        if self.quotes.is_none() {
            return Ok(self.read_plain());
        }
        let line = self.line;
        let more = self.csv.read_byte_record(&mut self.record).map_err(|e| SourceError::Row {
            path: self.name.clone(),
            line,
            column: "-".into(),
            reason: format!("malformed CSV: {:?}", e.into_kind()),
        })?;
        // The rest of a stream whose reading failed: the record it cuts short is dropped.
        Ok(more && !(self.truncated && self.csv.get_ref().eof))
    }

    /// [`ChunkRecords::read_raw`] for a chunk without quotes, where the csv crate's reading
    /// is simple and done here without it: blank lines (any run of `\r` and `\n`) are
    /// skipped, a record ends at `\r`, `\n` or the end, and its fields are the bytes
    /// between delimiters.
    fn read_plain(&mut self) -> bool {
        let bytes = &self.csv.get_ref().bytes;
        let start = self.pos + bytes[self.pos..].iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
        self.passed += bytes[self.pos..start].iter().filter(|&&b| b == b'\n').count();
        if start == bytes.len() {
            self.pos = start;
            return false;
        }
        let (end, next) = match memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
            Some(i) => (start + i, start + i + 1),
            // The rest of a stream whose reading failed: the record it cuts short is dropped.
            None if self.truncated => {
                self.pos = bytes.len();
                return false;
            }
            None => (bytes.len(), bytes.len()),
        };
        self.record.clear();
        let d = self.delimiter;
        let mut from = start;
        for i in memchr::memchr_iter(d, &bytes[start..end]) {
            self.record.push_field(&bytes[from..start + i]);
            from = start + i + 1;
        }
        self.record.push_field(&bytes[from..end]);
        (self.start, self.pos) = (start, next);
        // The record's line: the newlines before its start; then its terminator's is passed.
        self.line_of_start = self.first_line + self.passed as u64;
        self.passed += usize::from(bytes.get(end) == Some(&b'\n'));
        true
    }

    /// The record [`ChunkRecords::read_raw`] read.
    pub(crate) fn raw(&self) -> &csv::ByteRecord {
        &self.record
    }

    /// Moves to the next data record; `false` at the end of the chunk. A record whose
    /// quoted fields run over [`MAX_LINES_IN_RECORD`] lines is an error whatever the
    /// caller's policy for bad rows: a quote that never closes would swallow the rest of
    /// the file into one field. A quote still open at the end of the file makes the last
    /// record a bad row, named by the line the quote opened on.
    pub(crate) fn advance(&mut self) -> Result<bool, SourceError> {
        if !self.read_raw()? {
            return Ok(false);
        }
        let (spanned, mut line) = if self.quotes.is_none() {
            (0, self.line_of_start)
        } else {
            // The line of the record's last byte (just before the terminator the reader
            // consumed, or the end of input) minus the newlines inside its fields.
            let end = self.csv.position().byte() as usize;
            let spanned = memchr::memchr_iter(b'\n', self.record.as_slice()).count();
            (spanned, self.line_at(end.saturating_sub(1)).saturating_sub(spanned as u64))
        };
        let unclosed = match &self.quotes {
            Some(q) if self.last && self.csv.get_ref().eof => q.open_at_end(),
            _ => None,
        };
        if spanned > MAX_LINES_IN_RECORD {
            let ends_in_newline = self.record.iter().next_back().is_some_and(|f| f.ends_with(b"\n"));
            return Err(SourceError::Row {
                path: self.name.clone(),
                line: unclosed.unwrap_or(line + u64::from(ends_in_newline)),
                column: "-".into(),
                reason: format!(
                    "a quoted field opened on this line runs over {spanned} lines; a closing quote is probably missing"
                ),
            });
        }
        let stray = self.quotes.as_mut().is_some_and(|q| q.stray_text(line, line + spanned as u64));
        self.problem = if let Some(opened) = unclosed {
            line = opened;
            Some(RowProblem {
                column: "-".into(),
                class: "unclosed quote",
                reason: "a quoted field opened on this line is never closed: the rest of the file would be one field"
                    .into(),
            })
        } else if stray {
            Some(RowProblem {
                column: "-".into(),
                class: "text after a closing quote",
                reason: "text follows a quoted field's closing quote (as in \"b\"x); quote the whole field and double \
                         the quotes inside it"
                    .into(),
            })
        } else {
            match self.header_len {
                Some(h) if self.record.len() > h => Some(RowProblem {
                    column: "-".into(),
                    class: "extra fields",
                    reason: format!("the row has {} fields, the header has {h}", self.record.len()),
                }),
                _ => None,
            }
        };
        self.line = line;
        self.records += 1;
        Ok(true)
    }

    /// The record [`ChunkRecords::advance`] moved to.
    pub(crate) fn record(&mut self) -> Record<'_> {
        Record { line: self.line, fields: &self.record, problem: self.problem.take() }
    }

    /// The chunk's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.csv.get_ref().bytes.len()
    }

    /// The line of the last record read (the chunk's first line before any).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The next data record, or `None` at the end of the chunk.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        Ok(if self.advance()? { Some(self.record()) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of a quote still open at the end, scanning `text` in pieces of `chunk` bytes.
    fn open_quote(text: &[u8], chunk: usize) -> Option<u64> {
        let mut q = Quotes::new(b',', 1);
        for piece in text.chunks(chunk) {
            q.scan(piece);
        }
        q.open_at_end()
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

    fn records(text: &[u8]) -> Vec<csv::ByteRecord> {
        let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
        r.byte_records().map(Result::unwrap).collect()
    }

    /// The chunks, read back to back, are the stream; each starts on the line counted from
    /// the stream, and the csv crate reads the same records from the chunks one by one as
    /// from the whole stream.
    #[test]
    fn chunks_cut_only_between_records() {
        let texts: [&[u8]; 6] = [
            b"a,b\n\"c\nd\",e\r\nf,\"g\"\"\n\"\n\nh\ri,j\n",
            b"x\r\"a\nb\"\nc\n", // a bare CR ends a record: the quote after it opens a field
            b"a,b\"c\nd\n\"e\n",
            b"\"unclosed\nline\n",
            b"a,\"b\"x\ny\n\"\"\n",
            b"no newline at the end",
        ];
        for text in texts {
            for target in 1..text.len() + 2 {
                let mut s = Splitter::new(Box::new(io::Cursor::new(text.to_vec())), b',', target);
                let (mut all, mut line, mut recs) = (Vec::new(), 1, Vec::new());
                while let Some(c) = s.next_chunk() {
                    assert_eq!(c.first_line, line);
                    line += c.bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                    recs.extend(records(&c.bytes));
                    all.extend_from_slice(&c.bytes);
                }
                assert_eq!(all, text);
                assert_eq!(recs, records(text), "{:?} in chunks of {target}", String::from_utf8_lossy(text));
            }
        }
    }
}
