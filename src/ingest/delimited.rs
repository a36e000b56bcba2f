//! The one reader of delimited files (purchases, catalogues): opening (gzip, standard
//! input, the delimiter sniffed or given, `::` collapsed), the header (a UTF-8 BOM
//! dropped), columns resolved by name or position, records with the line each starts on,
//! the unclosed-quote guard, and the rejects file. Every file-level problem is one
//! [`SourceError`], whatever the file holds.

use std::cell::Cell;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::rc::Rc;

use super::chunks::{ChunkRecords, Splitter};
#[cfg(feature = "parquet")]
use super::parquet::{ParquetSource, RowGroup};
use super::source;
use super::{ColumnRef, DOUBLE_COLON, Progress};
use crate::output::AtomicFile;

/// Why a delimited file could not be read: problems of the file, its header and its rows,
/// whatever they hold. Messages start with `FILE:LINE:` where a line is known.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened.
    #[error("{path}: cannot open: {error}")]
    Open {
        /// The file.
        path: String,
        /// The OS error.
        error: io::Error,
    },
    /// Reading failed part way (disk error).
    #[error("{path}:{line}: read failed: {error}")]
    Read {
        /// The file.
        path: String,
        /// Line where reading stopped.
        line: u64,
        /// The OS error.
        error: io::Error,
    },
    /// The gzip stream is damaged or cut short.
    #[error("{path}:{line}: unreadable gzip stream: {detail}")]
    Gzip {
        /// The file.
        path: String,
        /// Line where decompression failed.
        line: u64,
        /// What the decoder said.
        detail: String,
    },
    /// The file is not text: a binary format given where a delimited file was expected.
    #[error("{path}: this is not a delimited text file{}; give a CSV or TSV file (plain or gzip)", kind.map(|k| format!(" but looks like {k}")).unwrap_or_default())]
    NotText {
        /// The file.
        path: String,
        /// What it looks like, when its first bytes say.
        kind: Option<&'static str>,
    },
    /// No data rows at all.
    #[error("{path}: {what}")]
    Empty {
        /// The file.
        path: String,
        /// "the file is empty" or "the file has a header but no rows".
        what: &'static str,
    },
    /// A column name not in the header.
    #[error("{path}:1: column {column}: not in the header; the header's columns are: {available}")]
    NoSuchColumn {
        /// The file.
        path: String,
        /// The name asked for.
        column: String,
        /// The header, comma-separated.
        available: String,
    },
    /// A column position past the end of the header, or a name without a header.
    #[error("{path}:1: column {column}: {reason}")]
    BadColumn {
        /// The file.
        path: String,
        /// The column as given.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad row (the first, when not skipping).
    #[error("{path}:{line}: column {column}: {reason}")]
    Row {
        /// The file.
        path: String,
        /// 1-based line of the row.
        line: u64,
        /// Column name (header name, or `#N`).
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// A Parquet file that cannot be read (not Parquet, truncated, damaged, or a folder's
    /// files whose columns differ).
    #[error("{path}: {detail}")]
    Parquet {
        /// The file.
        path: String,
        /// What is wrong, and where.
        detail: String,
    },
    /// A bad row of a Parquet file (the first, when not skipping).
    #[error("{path}: row group {group}, row {row}: column {column}: {reason}")]
    ParquetRow {
        /// The file.
        path: String,
        /// Row group, from 0.
        group: usize,
        /// Row within the row group, from 0.
        row: u64,
        /// Column name.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// The rejects file could not be written.
    #[error("{path}: cannot write the rejects file: {error}")]
    Rejects {
        /// The rejects file.
        path: String,
        /// The OS error.
        error: io::Error,
    },
}

impl SourceError {
    /// Whether the error is the machine's (a disk or the rejects file failing) rather than
    /// the input's.
    pub fn is_io(&self) -> bool {
        matches!(self, SourceError::Read { .. } | SourceError::Rejects { .. })
    }
}

/// A problem with one row: its class (counted in the summary) and the message.
pub(crate) struct RowProblem {
    pub(crate) column: String,
    pub(crate) class: &'static str,
    pub(crate) reason: String,
}

/// Line breaks one record may hold inside quoted fields before it is taken for an
/// unclosed quote.
pub(crate) const MAX_LINES_IN_RECORD: usize = 64;

/// The option combinations every delimited reader refuses: a rejects file without
/// skipping, or a delimiter it cannot read.
pub(crate) fn check_options(delimiter: Option<u8>, rejects: bool, skip_invalid: bool) -> Result<(), &'static str> {
    if rejects && !skip_invalid {
        return Err("a rejects file is written only when invalid rows are skipped (--skip-invalid)");
    }
    match delimiter {
        Some(d) if !matches!(d, b',' | b'\t' | b';' | b'|' | DOUBLE_COLON) => {
            Err("the delimiter must be one of , \\t ; | ::")
        }
        _ => Ok(()),
    }
}

/// A field's text as shown in a message: quoted, and cut to its first 60 characters
/// (with its length) when longer, so that a damaged file cannot flood the log.
pub(crate) fn shown(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &text[..cut], text.len()),
    }
}

/// A number as shown in a message: plain when short, in exponent form when it would take
/// more than a dozen digits (`1e308`, not 309 of them).
pub(crate) fn shown_number(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e12).contains(&v.abs()) { format!("{v:e}") } else { format!("{v}") }
}

/// How a file is shown in messages (`<stdin>` for `-`).
pub(crate) fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" { "<stdin>".to_string() } else { path.display().to_string() }
}

pub(crate) fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "\\t".into(),
        DOUBLE_COLON => "::".into(),
        d => (d as char).to_string(),
    }
}

/// One data record of a delimited file.
pub(crate) struct Record<'a, F: ?Sized = csv::ByteRecord> {
    /// The line it starts on (for an unclosed quote, the line the quote opened on).
    pub(crate) line: u64,
    pub(crate) fields: &'a F,
    /// What makes the whole record bad before its fields are looked at.
    pub(crate) problem: Option<RowProblem>,
}

/// The fields of one data record as the row rules read them (`ingest::classify`): the
/// text of a delimited file's record, or a Parquet row's typed values, which give numbers,
/// times and dictionary ids without a round trip through text.
pub(crate) trait Fields {
    /// The number of fields.
    fn len(&self) -> usize;
    /// Field `p`'s text (empty for a null).
    fn text(&self, p: usize) -> Result<&str, std::str::Utf8Error>;
    /// Field `p` as a finite number; `None` when it is not one (the rules then say why
    /// from its text).
    fn number(&self, p: usize) -> Option<f64> {
        number_of(self.text(p).ok()?)
    }
    /// Field `p` as unix seconds; `None` when it is not a time.
    fn time(&self, p: usize) -> Option<i64> {
        crate::time::parse(self.text(p).ok()?)
    }
    /// A key standing for field `p`'s value within the chunk (a dictionary id), so that
    /// a chunk resolves each distinct id once; `None` when there is none.
    fn key(&self, _p: usize) -> Option<usize> {
        None
    }
    /// The record as a line of a file delimited by `delimiter` ([`encode_record`]).
    fn encode(&self, delimiter: u8) -> Vec<u8>;
}

/// A field's text as a finite number (spaces around it allowed).
pub(crate) fn number_of(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

impl Fields for csv::ByteRecord {
    fn len(&self) -> usize {
        csv::ByteRecord::len(self)
    }
    fn text(&self, p: usize) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self[p])
    }
    fn encode(&self, delimiter: u8) -> Vec<u8> {
        encode_record(self, delimiter)
    }
}

/// A chunk of the input: a stretch of a delimited file, or a Parquet row group.
pub(crate) enum Records {
    Text(ChunkRecords),
    #[cfg(feature = "parquet")]
    Parquet(RowGroup),
}

impl Records {
    /// Moves to the next record; `false` at the end of the chunk.
    fn advance(&mut self) -> Result<bool, SourceError> {
        match self {
            Records::Text(c) => c.advance(),
            #[cfg(feature = "parquet")]
            Records::Parquet(g) => g.advance(),
        }
    }

    /// The record [`Records::advance`] moved to.
    fn record(&mut self) -> Record<'_> {
        match self {
            Records::Text(c) => c.record(),
            #[cfg(feature = "parquet")]
            Records::Parquet(g) => g.record(),
        }
    }

    /// The next data record with its fields as the row rules read them ([`Fields`]), or
    /// `None` at the end of the chunk.
    pub(crate) fn next_fields(&mut self) -> Result<Option<Record<'_, dyn Fields + '_>>, SourceError> {
        match self {
            Records::Text(c) => Ok(c.next_record()?.map(|r| {
                let fields: &dyn Fields = r.fields;
                Record { line: r.line, fields, problem: r.problem }
            })),
            #[cfg(feature = "parquet")]
            Records::Parquet(g) => g.next_fields(),
        }
    }

    /// The chunk's size in bytes (compressed, for a row group).
    pub(crate) fn len(&self) -> usize {
        match self {
            Records::Text(c) => c.len(),
            #[cfg(feature = "parquet")]
            Records::Parquet(g) => g.len(),
        }
    }

    /// The line of the last record read (the chunk's first line before any).
    fn line(&self) -> u64 {
        match self {
            Records::Text(c) => c.line(),
            #[cfg(feature = "parquet")]
            Records::Parquet(g) => g.line(),
        }
    }

    fn records(&self) -> u64 {
        match self {
            Records::Text(c) => c.records,
            #[cfg(feature = "parquet")]
            Records::Parquet(g) => g.records,
        }
    }

    /// [`row_error`] for the record on `line` of file `path`; a Parquet row's names its
    /// file, row group and row instead of a line.
    pub(crate) fn row_error(&self, path: &str, line: u64, p: RowProblem) -> SourceError {
        match self {
            Records::Text(_) => row_error(path, line, p),
            #[cfg(feature = "parquet")]
            Records::Parquet(g) => g.row_error(line, p),
        }
    }
}

/// An open delimited file, read one record at a time ([`Delimited::next_record`]) or in
/// chunks parsed on the worker threads ([`Delimited::par_chunks`]); both read each chunk
/// with [`ChunkRecords`], so they give the same records, lines and problems.
pub(crate) struct Delimited {
    name: String,
    splitter: Splitter,
    /// A Parquet input instead, whose row groups are the chunks.
    #[cfg(feature = "parquet")]
    parquet: Option<ParquetSource>,
    /// The chunk being read (after the header, the rest of the first).
    current: Option<Records>,
    header: Option<Vec<String>>,
    /// The line the next record is expected on (where a failed read is reported).
    line: u64,
    rows: u64,
    pub(crate) gzip: bool,
    pub(crate) delimiter: u8,
    size: Option<u64>,
    consumed: Rc<Cell<u64>>,
}

impl Delimited {
    /// Opens `path` (`-` is standard input) and reads the header when there is one; the
    /// file is cut into chunks of about `chunk_bytes` ([`super::DEFAULT_CHUNK_BYTES`]).
    pub(crate) fn open(
        path: &Path,
        delimiter: Option<u8>,
        has_header: bool,
        chunk_bytes: usize,
    ) -> Result<Self, SourceError> {
        let name = display_name(path);
        #[cfg(feature = "parquet")]
        if path.is_dir() {
            return Self::open_parquet(name, ParquetSource::open(path, chunk_bytes)?, chunk_bytes);
        }
        let mut opened = source::open(path).map_err(|error| SourceError::Open { path: name.clone(), error })?;
        let first = opened.reader.fill_buf().map_err(|e| stream_error(&name, 1, opened.gzip, e))?;
        #[cfg(feature = "parquet")]
        if !opened.gzip && super::parquet::is_parquet(path, first) {
            return Self::open_parquet(name, ParquetSource::open(path, chunk_bytes)?, chunk_bytes);
        }
        if first.is_empty() {
            return Err(SourceError::Empty { path: name, what: "the file is empty" });
        }
        if let Some(kind) = binary_kind(first) {
            return Err(SourceError::NotText { path: name, kind });
        }
        let delimiter = delimiter.unwrap_or_else(|| source::sniff_delimiter(first));
        let (gzip, size, consumed) = (opened.gzip, opened.size, opened.consumed.clone());
        let reader: Box<dyn io::Read> = if delimiter == DOUBLE_COLON {
            Box::new(source::DoubleColon::new(opened.reader))
        } else {
            Box::new(opened.reader)
        };
        let mut splitter = Splitter::new(reader, delimiter, chunk_bytes);
        let current = splitter.next_chunk().map(|c| Records::Text(ChunkRecords::new(c, &name, delimiter, None)));
        let mut d = Delimited {
            name,
            splitter,
            #[cfg(feature = "parquet")]
            parquet: None,
            current,
            header: None,
            line: 1,
            rows: 0,
            gzip,
            delimiter,
            size,
            consumed,
        };
        if has_header {
            let read = match d.current.as_mut() {
                Some(Records::Text(c)) => c.read_raw()?,
                _ => false,
            };
            if !read {
                d.end_of_stream()?;
                return Err(SourceError::Empty { path: d.name, what: "the file is empty" });
            }
            let Some(Records::Text(c)) = d.current.as_mut() else { unreachable!("a header was read from it") };
            let mut h: Vec<String> = c.raw().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            if let Some(first) = h.first_mut() {
                *first = first.trim_start_matches('\u{feff}').to_string();
            }
            c.set_header_len(h.len());
            d.header = Some(h);
            d.line = 2;
        }
        Ok(d)
    }

    /// A Parquet input as a comma-separated file with a header, which is what its records
    /// are (the delimiter is that of the rejects file, and of the export whose lines the
    /// rows' lines are).
    #[cfg(feature = "parquet")]
    fn open_parquet(name: String, pq: ParquetSource, chunk_bytes: usize) -> Result<Self, SourceError> {
        Ok(Delimited {
            name,
            splitter: Splitter::new(Box::new(io::empty()), b',', chunk_bytes),
            header: Some(pq.header().to_vec()),
            size: Some(pq.size),
            consumed: pq.consumed.clone(),
            parquet: Some(pq),
            current: None,
            line: 2,
            rows: 0,
            gzip: false,
            delimiter: b',',
        })
    }

    /// Whether the input is Parquet.
    pub(crate) fn is_parquet(&self) -> bool {
        #[cfg(feature = "parquet")]
        return self.parquet.is_some();
        #[cfg(not(feature = "parquet"))]
        false
    }

    /// Reads only the columns at these positions, when that saves work (Parquet: the
    /// others are not decoded, and are empty in every record).
    pub(crate) fn read_only(&mut self, _positions: &[usize]) {
        #[cfg(feature = "parquet")]
        if let Some(pq) = self.parquet.as_mut() {
            pq.read_only(_positions);
        }
    }

    /// An error when the column at `p` cannot be read (a Parquet column of a type with no
    /// text form).
    pub(crate) fn check_readable(&self, _p: usize) -> Result<(), SourceError> {
        #[cfg(feature = "parquet")]
        if let Some(pq) = &self.parquet {
            return pq.check_readable(&self.name, _p);
        }
        Ok(())
    }

    /// The file's size on disk, when known.
    pub(crate) fn size(&self) -> Option<u64> {
        self.size
    }

    /// The file as shown in messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The error that ended the stream early, if any.
    fn end_of_stream(&mut self) -> Result<(), SourceError> {
        match self.splitter.take_error() {
            Some(e) => Err(stream_error(&self.name, self.line, self.gzip, e)),
            None => Ok(()),
        }
    }

    /// After the last record: an error when the stream failed or the file had no data rows.
    fn end(&mut self) -> Result<(), SourceError> {
        self.end_of_stream()?;
        if self.rows == 0 {
            let what = if self.is_parquet() {
                "the file has columns but no rows"
            } else {
                "the file has a header but no rows"
            };
            return Err(SourceError::Empty { path: self.name.clone(), what });
        }
        Ok(())
    }

    /// The chunk to read next.
    fn next_chunk(&mut self) -> Option<Records> {
        if let Some(c) = self.current.take() {
            return Some(c);
        }
        #[cfg(feature = "parquet")]
        if let Some(pq) = self.parquet.as_mut() {
            return pq.next_group().map(Records::Parquet);
        }
        let header_len = self.header.as_ref().map(Vec::len);
        self.splitter.next_chunk().map(|c| Records::Text(ChunkRecords::new(c, &self.name, self.delimiter, header_len)))
    }

    /// Counts a chunk's records, `last` the line of its last.
    fn note(&mut self, records: u64, last: u64) {
        self.rows += records;
        if records > 0 {
            self.line = last + 1;
        }
    }

    /// The next data record; `None` at the end of the file (an error when the file had no
    /// data rows at all).
    pub(crate) fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        loop {
            if self.current.is_none() {
                self.current = self.next_chunk();
            }
            let Some(c) = self.current.as_mut() else {
                self.end()?;
                return Ok(None);
            };
            if c.advance()? {
                break;
            }
            self.current = None;
        }
        let c = self.current.as_mut().expect("a record was just read from it");
        self.rows += 1;
        self.line = c.line() + 1;
        Ok(Some(c.record()))
    }

    /// Reads every remaining record: `parse` reads one chunk's records on a worker thread,
    /// `merge` takes what it returned, chunk by chunk in file order, on this thread. At most
    /// a few chunks per thread are in flight, so memory stays bounded. With one thread the
    /// chunks are parsed here, one after another.
    pub(crate) fn par_chunks<T: Send, E: From<SourceError>>(
        &mut self,
        parse: &(dyn Fn(&mut Records) -> T + Sync),
        merge: &mut dyn FnMut(T) -> Result<(), E>,
    ) -> Result<(), E> {
        let parse_one = |mut c: Records| {
            let out = parse(&mut c);
            (out, c.records(), c.line())
        };
        let threads = rayon::current_num_threads();
        if threads <= 1 {
            while let Some(c) = self.next_chunk() {
                let (out, records, last) = parse_one(c);
                self.note(records, last);
                merge(out)?;
            }
            return Ok(self.end()?);
        }
        type Parsed<T> = std::thread::Result<(T, u64, u64)>;
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Parsed<T>)>();
        let mut result = Ok(());
        let on_worker = rayon::current_thread_index().is_some();
        rayon::in_place_scope(|s| {
            let (mut sent, mut merged, mut more) = (0usize, 0usize, true);
            let mut ready: std::collections::BTreeMap<usize, Parsed<T>> = std::collections::BTreeMap::new();
            loop {
                while more && result.is_ok() && sent - merged < 2 * threads + 1 {
                    match self.next_chunk() {
                        Some(c) => {
                            let (tx, k, parse_one) = (tx.clone(), sent, &parse_one);
                            s.spawn(move |_| {
                                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_one(c)));
                                let _ = tx.send((k, out));
                            });
                            sent += 1;
                        }
                        None => more = false,
                    }
                }
                if merged == sent {
                    break;
                }
                let out = loop {
                    if let Some(out) = ready.remove(&merged) {
                        break out;
                    }
                    // On a worker thread of the pool (a caller inside `install`), run
                    // waiting tasks, the chunks among them, rather than block one worker.
                    let got = if on_worker {
                        rx.try_recv().ok().or_else(|| match rayon::yield_now() {
                            Some(rayon::Yield::Executed) => None,
                            _ => rx.recv_timeout(std::time::Duration::from_millis(1)).ok(),
                        })
                    } else {
                        Some(rx.recv().expect("a worker holds the sender until it has sent"))
                    };
                    if let Some((k, out)) = got {
                        ready.insert(k, out);
                    }
                };
                merged += 1;
                let (out, records, last) = out.unwrap_or_else(|p| std::panic::resume_unwind(p));
                if result.is_ok() {
                    self.note(records, last);
                    result = merge(out);
                }
            }
        });
        result?;
        Ok(self.end()?)
    }

    /// The header's column names (BOM dropped), when the file has a header.
    pub(crate) fn header(&self) -> Option<&[String]> {
        self.header.as_deref()
    }

    /// Tells how far the read is, while records are borrowed.
    pub(crate) fn meter(&self) -> Meter {
        Meter { consumed: self.consumed.clone(), size: self.size }
    }

    /// A column's 0-based position and display name: by 1-based position, or by header
    /// name (exact, then ignoring case and surrounding spaces if that matches one column
    /// only).
    pub(crate) fn column(&self, col: &ColumnRef) -> Result<(usize, String), SourceError> {
        let path = || self.name.clone();
        let header = self.header.as_deref();
        let p = match (col, header) {
            (ColumnRef::Detect, _) => {
                return Err(SourceError::BadColumn {
                    path: path(),
                    column: "?".into(),
                    reason: "only the customer and item columns are found by their names; give the others".into(),
                });
            }
            (ColumnRef::Position(p), _) => p.saturating_sub(1),
            (ColumnRef::Name(n), None) => {
                return Err(SourceError::BadColumn {
                    path: path(),
                    column: n.clone(),
                    reason: "columns can be named only when the file has a header; give its position (1, 2, ...)"
                        .into(),
                });
            }
            (ColumnRef::Name(n), Some(h)) => {
                let exact = h.iter().position(|c| c == n);
                if let Some(p) = exact {
                    if let Some(q) = (p + 1..h.len()).find(|&q| h[q] == *n) {
                        return Err(SourceError::BadColumn {
                            path: path(),
                            column: n.clone(),
                            reason: format!(
                                "ambiguous: the header names columns {} and {} so; give a position",
                                p + 1,
                                q + 1
                            ),
                        });
                    }
                }
                let loose: Vec<usize> = (0..h.len()).filter(|&i| h[i].trim().eq_ignore_ascii_case(n.trim())).collect();
                match (exact, loose.as_slice()) {
                    (Some(p), _) | (None, &[p]) => p,
                    (None, [_, _, ..]) => {
                        let matches: Vec<&str> = loose.iter().map(|&i| h[i].as_str()).collect();
                        return Err(SourceError::BadColumn {
                            path: path(),
                            column: n.clone(),
                            reason: format!(
                                "ambiguous: matches {} when case is ignored; give the exact name",
                                matches.join(", ")
                            ),
                        });
                    }
                    _ => {
                        return Err(SourceError::NoSuchColumn {
                            path: path(),
                            column: n.clone(),
                            available: h.join(", "),
                        });
                    }
                }
            }
        };
        match header {
            Some(h) if p >= h.len() => Err(SourceError::BadColumn {
                path: path(),
                column: (p + 1).to_string(),
                reason: format!("the header has only {} columns", h.len()),
            }),
            Some(h) => self.check_readable(p).map(|()| (p, h[p].clone())),
            None => Ok((p, format!("#{}", p + 1))),
        }
    }
}

/// What the error of a bad row adds: how to skip such rows instead of stopping.
pub(crate) const SKIP_HINT: &str = " (--skip-invalid skips such rows, counted, into a rejects file)";

/// The error for a bad row of file `path` at `line` that stops a read (bad rows are not
/// being skipped), with the way to skip them instead.
pub(crate) fn row_error(path: &str, line: u64, p: RowProblem) -> SourceError {
    let reason = format!("{}{SKIP_HINT}", p.reason);
    SourceError::Row { path: path.into(), line, column: p.column, reason }
}

/// How many bytes of the file a read has consumed.
pub(crate) struct Meter {
    consumed: Rc<Cell<u64>>,
    size: Option<u64>,
}

impl Meter {
    /// The progress after `rows` data rows.
    pub(crate) fn at(&self, rows: u64) -> Progress {
        Progress { rows, bytes: self.consumed.get(), total_bytes: self.size }
    }
}

/// What a file that is not text looks like, from its first (decoded) bytes: `Some(None)`
/// for unknown binary data (a NUL byte), `None` for text.
fn binary_kind(first: &[u8]) -> Option<Option<&'static str>> {
    /// Reaching here, Parquet came through standard input or gzip, or the build lacks it.
    const PARQUET: &str = if cfg!(feature = "parquet") {
        "a Parquet file (read from a file or folder path, not standard input or gzip)"
    } else {
        "a Parquet file, which this build cannot read (build with --features parquet)"
    };
    const MAGIC: [(&[u8], &str); 7] = [
        (b"PAR1", PARQUET),
        (b"PK\x03\x04", "a zip archive (or an Excel .xlsx workbook)"),
        (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook"),
        (b"SQLite format 3\0", "an SQLite database"),
        (b"%PDF-", "a PDF document"),
        (b"\xfd7zXZ\0", "an xz file"),
        (b"\x28\xb5\x2f\xfd", "a zstd file"),
    ];
    if let Some(&(_, kind)) = MAGIC.iter().find(|(m, _)| first.starts_with(m)) {
        return Some(Some(kind));
    }
    first.iter().take(4096).any(|&b| b == 0).then_some(None)
}

fn stream_error(path: &str, line: u64, gzip: bool, e: io::Error) -> SourceError {
    let decoding =
        matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof);
    if gzip && decoding {
        SourceError::Gzip { path: path.into(), line, detail: e.to_string() }
    } else {
        SourceError::Read { path: path.into(), line, error: e }
    }
}

/// A record as one line of a delimited file: fields joined by the delimiter (`::` for
/// [`DOUBLE_COLON`]), each quoted (quotes doubled) when it holds a delimiter, quote or line
/// break; bytes otherwise unchanged.
pub(crate) fn encode_record(rec: &csv::ByteRecord, delimiter: u8) -> Vec<u8> {
    let sep: &[u8] = if delimiter == DOUBLE_COLON { b"::" } else { std::slice::from_ref(&delimiter) };
    let mut out = Vec::with_capacity(rec.as_slice().len() + rec.len() * 3);
    for (k, f) in rec.iter().enumerate() {
        if k > 0 {
            out.extend_from_slice(sep);
        }
        let special = |b: &u8| matches!(b, b'"' | b'\n' | b'\r') || *b == delimiter;
        if f.iter().any(special) {
            out.push(b'"');
            for &b in f {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(f);
        }
    }
    out
}

/// The rejects file: `line,column,reason,record`, written atomically.
pub(crate) struct RejectsFile {
    path: String,
    out: csv::Writer<AtomicFile>,
    delimiter: u8,
}

impl RejectsFile {
    pub(crate) fn create(path: &Path, delimiter: u8) -> Result<Self, SourceError> {
        let name = path.display().to_string();
        let file = AtomicFile::create(path).map_err(|error| SourceError::Rejects { path: name.clone(), error })?;
        let mut r = RejectsFile { path: name, out: csv::Writer::from_writer(file), delimiter };
        r.out.write_record(["line", "column", "reason", "record"]).map_err(|e| r.err(e))?;
        Ok(r)
    }

    fn err(&self, e: csv::Error) -> SourceError {
        SourceError::Rejects { path: self.path.clone(), error: io::Error::other(e) }
    }

    /// Writes one rejected record. Its `record` field holds the record as a line of the input's
    /// own format, bytes unchanged (fields quoted where they need it), so that a fixed line can
    /// be fed back in.
    pub(crate) fn write(&mut self, line: u64, p: &RowProblem, rec: &csv::ByteRecord) -> Result<(), SourceError> {
        self.write_encoded(line, p, &encode_record(rec, self.delimiter))
    }

    /// [`RejectsFile::write`] of a record already encoded by [`encode_record`] (on a worker).
    pub(crate) fn write_encoded(&mut self, line: u64, p: &RowProblem, raw: &[u8]) -> Result<(), SourceError> {
        let line = line.to_string();
        self.out.write_record([line.as_bytes(), p.column.as_bytes(), p.reason.as_bytes(), raw]).map_err(|e| self.err(e))
    }

    pub(crate) fn commit(self) -> Result<(), SourceError> {
        let path = self.path;
        let io = |error| SourceError::Rejects { path: path.clone(), error };
        let mut file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.flush().map_err(io)?;
        file.commit().map_err(io)
    }
}
