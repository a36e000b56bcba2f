//! Parquet input: a file, or a folder of them read in name order as one table, turned into
//! the records a delimited file gives, so that purchases and catalogues go through the
//! same column flags, validation, summaries, rejects and errors as CSV.
//!
//! Each value becomes the text a CSV export would hold: strings as they are, integers in
//! decimal, floats in their shortest round-trip form (an `f32` as an `f32`, so `2.99`
//! stays `2.99`), decimals with their scale, timestamps and dates as unix seconds (the
//! fraction of a second dropped, as `time::parse` drops it), and nulls as empty fields.
//! Parsing that text gives exactly the values, so a Parquet file and its CSV export give
//! the same model bytes. A row's "line" is its line in that export (row + 2, the header
//! being line 1, counted across the files of a folder), which is what the rejects file and
//! the summary's lines hold; a row error names the file, the row group and the row.
//!
//! The purchases' row rules read those values without the text where it is not needed
//! ([`TypedRow`]): strings straight from the arrays, integers, doubles, timestamps and
//! dates as numbers (each the number its text parses to), and string columns whose pages
//! are all dictionary-encoded as dictionaries, whose ids a chunk resolves once each. Only
//! the rows a rejects file keeps, catalogues, and the other types are formatted.
//!
//! Row groups are the chunks of [`super::Delimited::par_chunks`]: each is decoded on a
//! worker thread (only the columns read) and taken in file order.

use std::cell::Cell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Encoding;

use super::delimited::{Fields, Record, RowProblem, SKIP_HINT, SourceError, display_name, encode_record, number_of};

/// Bytes of a chunk ([`super::DEFAULT_CHUNK_BYTES`]) per row decoded at a time: the
/// default chunk size makes batches of 65,536 rows.
const BYTES_PER_ROW: usize = 64;

/// Whether `path` is to be read as Parquet: a folder, a name ending in `.parquet`, or a
/// file that starts with Parquet's magic bytes (`first`, its first bytes).
pub(crate) fn is_parquet(path: &Path, first: &[u8]) -> bool {
    path.is_dir() || has_parquet_extension(path) || first.starts_with(b"PAR1")
}

fn has_parquet_extension(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// One file of the input.
struct PqFile {
    path: PathBuf,
    name: String,
    meta: ArrowReaderMetadata,
}

/// An open Parquet input: its files, their common columns, and the next row group.
pub(crate) struct ParquetSource {
    files: Vec<Arc<PqFile>>,
    header: Vec<String>,
    types: Vec<DataType>,
    /// The columns decoded (by position); the others are left empty in every record.
    read: Arc<Vec<bool>>,
    next: (usize, usize),
    /// Row groups in all the files.
    groups: usize,
    /// Rows decoded at a time.
    batch_rows: usize,
    serial: Option<Serial>,
    next_line: u64,
    pub(crate) size: u64,
    pub(crate) consumed: Rc<Cell<u64>>,
}

fn parquet_error(path: &str, detail: impl std::fmt::Display) -> SourceError {
    SourceError::Parquet { path: path.to_string(), detail: detail.to_string() }
}

impl ParquetSource {
    /// Opens a Parquet file, or every `*.parquet` file of a folder (names starting with `.`
    /// or `_` left out, as Spark and Hive leave markers there), which must all have the same
    /// column names in the same order.
    /// Decodes batches of `chunk_bytes / 64` rows (nothing read depends on it).
    pub(crate) fn open(path: &Path, chunk_bytes: usize) -> Result<Self, SourceError> {
        let name = display_name(path);
        if path.as_os_str() == "-" {
            return Err(parquet_error(&name, "Parquet cannot be read from standard input; give the file's path"));
        }
        let open_error = |error| SourceError::Open { path: name.clone(), error };
        let paths = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(open_error)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    !n.starts_with('.') && !n.starts_with('_') && has_parquet_extension(p) && p.is_file()
                })
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(parquet_error(&name, "the folder holds no .parquet files"));
            }
            v
        } else {
            vec![path.to_path_buf()]
        };
        let mut files = Vec::with_capacity(paths.len());
        let (mut size, mut header, mut types) = (0, Vec::new(), Vec::new());
        for p in paths {
            let pname = display_name(&p);
            let f = File::open(&p).map_err(|error| SourceError::Open { path: pname.clone(), error })?;
            size += f.metadata().map(|m| m.len()).unwrap_or(0);
            let meta = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new())
                .map_err(|e| parquet_error(&pname, format!("not a readable Parquet file: {e}")))?;
            let fields = meta.schema().fields();
            let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
            if files.is_empty() {
                header = names;
                types = fields.iter().map(|f| f.data_type().clone()).collect();
            } else if names != header {
                return Err(parquet_error(
                    &pname,
                    format!(
                        "its columns ({}) differ from those of the folder's first file ({})",
                        names.join(", "),
                        header.join(", ")
                    ),
                ));
            }
            files.push(Arc::new(PqFile { path: p, name: pname, meta }));
        }
        let read = Arc::new(types.iter().map(readable).collect());
        let groups = files.iter().map(|f| f.meta.metadata().num_row_groups()).sum();
        Ok(ParquetSource {
            files,
            header,
            types,
            read,
            next: (0, 0),
            groups,
            batch_rows: (chunk_bytes / BYTES_PER_ROW).max(1),
            serial: None,
            next_line: 2,
            size,
            consumed: Rc::default(),
        })
    }

    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    /// An error when column `p` holds a type that has no text form (lists, structs, ...).
    pub(crate) fn check_readable(&self, name: &str, p: usize) -> Result<(), SourceError> {
        match self.types.get(p) {
            Some(t) if !readable(t) => Err(SourceError::BadColumn {
                path: name.to_string(),
                column: self.header[p].clone(),
                reason: format!("its Parquet type {t} cannot be read as an id, number or time"),
            }),
            _ => Ok(()),
        }
    }

    /// Decodes only the columns at `positions` (the others are left empty).
    pub(crate) fn read_only(&mut self, positions: &[usize]) {
        self.read = Arc::new((0..self.header.len()).map(|p| positions.contains(&p)).collect());
    }

    /// The next chunk, in file order: a row group decoded where it is read when there are
    /// enough of them to keep every thread busy; otherwise (one large row group, as many
    /// writers make) a batch of a row group decoded here, in order, and formatted and
    /// validated where it is read. The records are the same either way.
    pub(crate) fn next_group(&mut self) -> Option<RowGroup> {
        if let Some(serial) = self.serial.as_mut() {
            let batch = serial.decoder.next_batch();
            match &batch {
                Ok(None) => self.serial = None,
                Ok(Some(b)) => {
                    let rows = b.num_rows();
                    let bytes = (serial.bytes as f64 * rows as f64 / serial.rows.max(1) as f64) as usize;
                    self.consumed.set(self.consumed.get() + bytes as u64);
                    let chunk = RowGroup::new(serial.decoder.clone_unread(), serial.first_line, serial.line, bytes);
                    serial.line += rows as u64;
                    return Some(chunk.with_batch(batch));
                }
                // The error ends the read where the chunk is read, in file order.
                Err(_) => {
                    let chunk = RowGroup::new(serial.decoder.clone_unread(), serial.first_line, serial.line, 0);
                    self.serial = None;
                    self.next = (self.files.len(), 0);
                    return Some(chunk.with_batch(batch));
                }
            }
        }
        loop {
            let (f, g) = self.next;
            let file = self.files.get(f)?;
            let groups = file.meta.metadata().row_groups();
            if g >= groups.len() {
                self.next = (f + 1, 0);
                continue;
            }
            self.next = (f, g + 1);
            let rows = groups[g].num_rows().max(0) as u64;
            let bytes = groups[g].compressed_size().max(0) as usize;
            let first_line = self.next_line;
            self.next_line += rows;
            let decoder =
                Decoder { file: file.clone(), group: g, read: self.read.clone(), rows: self.batch_rows, reader: None };
            let threads = rayon::current_num_threads();
            if threads > 1 && self.groups < 2 * threads && rows > self.batch_rows as u64 {
                self.serial = Some(Serial { decoder, first_line, line: first_line, rows, bytes });
                return self.next_group();
            }
            self.consumed.set(self.consumed.get() + bytes as u64);
            return Some(RowGroup::new(decoder, first_line, first_line, bytes));
        }
    }
}

/// A row group being decoded on the reading thread, batch by batch.
struct Serial {
    decoder: Decoder,
    first_line: u64,
    /// The line of the next batch's first row.
    line: u64,
    rows: u64,
    bytes: usize,
}

/// Decodes one row group's read columns, batch by batch.
struct Decoder {
    file: Arc<PqFile>,
    group: usize,
    read: Arc<Vec<bool>>,
    /// Rows per batch.
    rows: usize,
    reader: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
}

impl Decoder {
    /// The same row group, not yet read.
    fn clone_unread(&self) -> Decoder {
        Decoder { file: self.file.clone(), group: self.group, read: self.read.clone(), rows: self.rows, reader: None }
    }

    fn error(&self, detail: impl std::fmt::Display) -> SourceError {
        parquet_error(&self.file.name, format!("row group {}: {detail}", self.group))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        if self.reader.is_none() {
            let f = File::open(&self.file.path)
                .map_err(|error| SourceError::Open { path: self.file.name.clone(), error })?;
            let meta = dictionary_strings(&self.file.meta, self.group, &self.read);
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta);
            let roots = (0..self.read.len()).filter(|&p| self.read[p]);
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            let reader = builder
                .with_row_groups(vec![self.group])
                .with_projection(mask)
                .with_batch_size(self.rows)
                .build()
                .map_err(|e| self.error(e))?;
            self.reader = Some(reader);
        }
        let reader = self.reader.as_mut().expect("made above");
        reader.next().transpose().map_err(|e| self.error(e))
    }
}

/// `meta`, with the read string columns whose pages in row group `group` are all
/// dictionary-encoded read as dictionary arrays: the row group's dictionary is then decoded
/// once, not copied into every row, and each distinct id is resolved once
/// ([`Fields::key`]). Columns that are not so, or files with a type the hint cannot take,
/// are read as they are.
fn dictionary_strings(meta: &ArrowReaderMetadata, group: usize, read: &[bool]) -> ArrowReaderMetadata {
    let parquet = meta.metadata();
    let descr = parquet.file_metadata().schema_descr();
    let chunks = parquet.row_group(group).columns();
    let all_dictionary = |root: usize| {
        let mut leaves = (0..descr.num_columns()).filter(|&l| descr.get_column_root_idx(l) == root);
        match (leaves.next(), leaves.next()) {
            (Some(l), None) => {
                let c = &chunks[l];
                c.dictionary_page_offset().is_some()
                    && c.page_encoding_stats_mask()
                        .is_some_and(|m| m.is_only(Encoding::RLE_DICTIONARY) || m.is_only(Encoding::PLAIN_DICTIONARY))
            }
            _ => false,
        }
    };
    let schema = meta.schema();
    let mut changed = false;
    let fields: Vec<Field> = (schema.fields().iter().enumerate())
        .map(|(p, f)| {
            let strings = matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8);
            if read.get(p) == Some(&true) && strings && all_dictionary(p) {
                changed = true;
                let t = DataType::Dictionary(Box::new(DataType::Int32), Box::new(f.data_type().clone()));
                f.as_ref().clone().with_data_type(t)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    if !changed {
        return meta.clone();
    }
    let hint = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    ArrowReaderMetadata::try_new(parquet.clone(), ArrowReaderOptions::new().with_schema(hint))
        .unwrap_or_else(|_| meta.clone())
}

/// Whether a column of this type has a text form cobuy reads.
fn readable(t: &DataType) -> bool {
    use DataType::*;
    match t {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float32 | Float64 => true,
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView => true,
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) | Date32 | Date64 | Timestamp(..) => true,
        Dictionary(_, v) => readable(v) && !matches!(**v, Dictionary(..)),
        _ => false,
    }
}

/// A chunk of the input: a row group decoded where it is read (on a worker), or one batch
/// of a row group decoded already ([`ParquetSource::next_group`]).
pub(crate) struct RowGroup {
    decoder: Decoder,
    /// The line of the row group's first row.
    first_line: u64,
    bytes: usize,
    /// The batch decoded already; then it is the whole chunk.
    batch: Option<Result<Option<RecordBatch>, SourceError>>,
    /// The current batch and row.
    row: TypedRow,
    batch_rows: usize,
    /// The next row of the batch.
    at: usize,
    line: u64,
    pub(crate) records: u64,
    record: csv::ByteRecord,
    /// The field being formatted.
    field: Vec<u8>,
    done: bool,
    /// Each column's last dictionary and the key of its first value ([`Fields::key`]).
    dictionaries: Vec<Option<(ArrayRef, usize)>>,
    /// The key of the next new dictionary's first value.
    next_key: usize,
}

impl RowGroup {
    /// The chunk of `decoder`'s row group whose rows start on line `line`.
    fn new(decoder: Decoder, first_line: u64, line: u64, bytes: usize) -> RowGroup {
        RowGroup {
            decoder,
            first_line,
            bytes,
            batch: None,
            row: TypedRow::default(),
            batch_rows: 0,
            at: 0,
            line: line.saturating_sub(1),
            records: 0,
            record: csv::ByteRecord::new(),
            field: Vec::new(),
            done: false,
            dictionaries: Vec::new(),
            next_key: 0,
        }
    }

    /// The chunk is this batch only.
    fn with_batch(mut self, batch: Result<Option<RecordBatch>, SourceError>) -> RowGroup {
        self.batch = Some(batch);
        self
    }

    /// The row group's compressed size.
    pub(crate) fn len(&self) -> usize {
        self.bytes
    }

    /// The line of the last record read (the one before the group's first, before any).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The error that stops the read at the row on `line`: file, row group and row (both
    /// counted from 0, as pyarrow counts them), column.
    pub(crate) fn row_error(&self, line: u64, p: RowProblem) -> SourceError {
        SourceError::ParquetRow {
            path: self.decoder.file.name.clone(),
            group: self.decoder.group,
            row: line - self.first_line,
            column: p.column,
            reason: format!("{}{SKIP_HINT}", p.reason),
        }
    }

    /// Decodes the next batch when the current one is read; `false` at the end of the
    /// row group.
    fn load(&mut self) -> Result<bool, SourceError> {
        while self.at >= self.batch_rows {
            if self.done {
                return Ok(false);
            }
            let next = match self.batch.as_mut() {
                Some(b) => {
                    self.done = true;
                    std::mem::replace(b, Ok(None))
                }
                None => self.decoder.next_batch(),
            };
            let batch = match next {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.done = true;
                    return Ok(false);
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            // The projection holds the read columns only, in file order.
            let mut decoded = batch.columns().iter();
            let read = self.decoder.read.clone();
            self.dictionaries.resize(read.len(), None);
            self.row.columns = (0..read.len())
                .map(|p| match read[p].then(|| decoded.next()).flatten() {
                    Some(a) => Column::of(a, &mut |values| self.dictionary_key(p, values)),
                    None => Column::Skip,
                })
                .collect();
            self.row.texts.resize(read.len(), Vec::new());
            (self.batch_rows, self.at) = (batch.num_rows(), 0);
        }
        Ok(true)
    }

    /// The key of the first value of column `p`'s dictionary `values`: the same as the
    /// last batch's when it is the same dictionary (a column chunk's batches share it).
    fn dictionary_key(&mut self, p: usize, values: &ArrayRef) -> usize {
        if let Some((last, key)) = &self.dictionaries[p] {
            if last.len() == values.len() && last.to_data().ptr_eq(&values.to_data()) {
                return *key;
            }
        }
        let key = self.next_key;
        self.next_key += values.len();
        self.dictionaries[p] = Some((values.clone(), key));
        key
    }

    fn step(&mut self) {
        self.at += 1;
        self.records += 1;
        self.line += 1;
    }

    /// Moves to the next row, as text ([`RowGroup::record`]); `false` at the end of the
    /// row group.
    pub(crate) fn advance(&mut self) -> Result<bool, SourceError> {
        if !self.load()? {
            return Ok(false);
        }
        self.record.clear();
        for c in &self.row.columns {
            self.field.clear();
            c.put(self.at, &mut self.field);
            self.record.push_field(&self.field);
        }
        self.step();
        Ok(true)
    }

    /// The record [`RowGroup::advance`] moved to.
    pub(crate) fn record(&mut self) -> Record<'_> {
        Record { line: self.line, fields: &self.record, problem: None }
    }

    /// The next row with its typed values ([`TypedRow`]), or `None` at the end of the row
    /// group.
    pub(crate) fn next_fields(&mut self) -> Result<Option<Record<'_, dyn Fields + '_>>, SourceError> {
        if !self.load()? {
            return Ok(None);
        }
        let i = self.at;
        for (c, text) in self.row.columns.iter().zip(&mut self.row.texts) {
            if matches!(c, Column::Array(_) | Column::Keyed { .. }) {
                text.clear();
                c.put(i, text);
            }
        }
        self.row.i = i;
        self.step();
        Ok(Some(Record { line: self.line, fields: &self.row, problem: None }))
    }
}

/// One row of a decoded batch, read by the row rules as it is: strings and dictionary
/// strings borrowed from the arrays, integers, doubles and times as numbers; only the
/// other columns' values are formatted (into `texts`), as a CSV export holds them.
#[derive(Default)]
struct TypedRow {
    columns: Vec<Column>,
    /// The formatted value of each column not of strings in row `i`.
    texts: Vec<Vec<u8>>,
    i: usize,
}

impl Fields for TypedRow {
    fn len(&self) -> usize {
        self.columns.len()
    }

    fn text(&self, p: usize) -> Result<&str, std::str::Utf8Error> {
        match self.columns[p].str_at(self.i) {
            Some(s) => Ok(s),
            None => std::str::from_utf8(&self.texts[p]),
        }
    }

    fn number(&self, p: usize) -> Option<f64> {
        if let Column::Array(a) = &self.columns[p] {
            if a.is_valid(self.i) {
                if let Some(v) = typed_number(a.as_ref(), self.i) {
                    return v;
                }
            }
        }
        number_of(self.text(p).ok()?)
    }

    fn time(&self, p: usize) -> Option<i64> {
        if let Column::Array(a) = &self.columns[p] {
            if a.is_valid(self.i) {
                if let Some(t) = typed_seconds(a.as_ref(), self.i) {
                    return Some(t).filter(|t| (crate::time::MIN..=crate::time::MAX).contains(t));
                }
            }
        }
        crate::time::parse(self.text(p).ok()?)
    }

    fn key(&self, p: usize) -> Option<usize> {
        match &self.columns[p] {
            Column::Dictionary { array, keys, first_key, .. } if array.is_valid(self.i) => {
                Some(first_key + keys[self.i])
            }
            _ => None,
        }
    }

    fn encode(&self, delimiter: u8) -> Vec<u8> {
        let mut record = csv::ByteRecord::new();
        let mut field = Vec::new();
        for c in &self.columns {
            field.clear();
            c.put(self.i, &mut field);
            record.push_field(&field);
        }
        encode_record(&record, delimiter)
    }
}

/// A valid integer or double's value (`Some(None)`: a double that is not finite); `None`
/// for the other types, read from their text.
fn typed_number(a: &dyn Array, i: usize) -> Option<Option<f64>> {
    use DataType::*;
    // An integer converts to the nearest double, as parsing its decimal text does; a
    // double's shortest text parses back to it. (An f32's shortest text does not parse to
    // its widened value, and decimals may not be exact: both are read from their text.)
    let v = match a.data_type() {
        Int8 => f64::from(a.as_primitive::<Int8Type>().value(i)),
        Int16 => f64::from(a.as_primitive::<Int16Type>().value(i)),
        Int32 => f64::from(a.as_primitive::<Int32Type>().value(i)),
        Int64 => a.as_primitive::<Int64Type>().value(i) as f64,
        UInt8 => f64::from(a.as_primitive::<UInt8Type>().value(i)),
        UInt16 => f64::from(a.as_primitive::<UInt16Type>().value(i)),
        UInt32 => f64::from(a.as_primitive::<UInt32Type>().value(i)),
        UInt64 => a.as_primitive::<UInt64Type>().value(i) as f64,
        Float64 => a.as_primitive::<Float64Type>().value(i),
        _ => return None,
    };
    Some(Some(v).filter(|v| v.is_finite()))
}

/// A valid timestamp or date's unix seconds (the fraction of a second dropped); `None` for
/// the other types.
fn typed_seconds(a: &dyn Array, i: usize) -> Option<i64> {
    use DataType::*;
    Some(match a.data_type() {
        Date32 => i64::from(a.as_primitive::<Date32Type>().value(i)) * crate::time::DAY,
        Date64 => a.as_primitive::<Date64Type>().value(i).div_euclid(1000),
        Timestamp(unit, _) => {
            let (v, per_second) = match unit {
                TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().value(i), 1),
                TimeUnit::Millisecond => (a.as_primitive::<TimestampMillisecondType>().value(i), 1_000),
                TimeUnit::Microsecond => (a.as_primitive::<TimestampMicrosecondType>().value(i), 1_000_000),
                TimeUnit::Nanosecond => (a.as_primitive::<TimestampNanosecondType>().value(i), 1_000_000_000),
            };
            v.div_euclid(per_second)
        }
        _ => return None,
    })
}

/// A decoded column of one batch.
enum Column {
    Skip,
    Utf8(arrow_array::StringArray),
    LargeUtf8(arrow_array::LargeStringArray),
    /// A dictionary of strings: its keys (as positions in `values`), and the chunk's key
    /// of its first value ([`Fields::key`]).
    Dictionary {
        array: ArrayRef,
        keys: Vec<usize>,
        values: Box<Column>,
        first_key: usize,
    },
    /// Any other type, read from its text...
    Array(ArrayRef),
    /// ... or a dictionary of it: its keys (positions in `values`).
    Keyed {
        array: ArrayRef,
        keys: Vec<usize>,
        values: ArrayRef,
    },
}

impl Column {
    /// The column of `a`; `first_key` gives the key of a dictionary's first value.
    fn of(a: &ArrayRef, first_key: &mut dyn FnMut(&ArrayRef) -> usize) -> Column {
        match a.data_type() {
            DataType::Utf8 => return Column::Utf8(a.as_string::<i32>().clone()),
            DataType::LargeUtf8 => return Column::LargeUtf8(a.as_string::<i64>().clone()),
            _ => {}
        }
        match a.as_any_dictionary_opt() {
            // A dictionary without values: every key is null (a batch of null ids).
            Some(d) if d.values().is_empty() => Column::Array(a.clone()),
            Some(d) if matches!(d.values().data_type(), DataType::Utf8 | DataType::LargeUtf8) => {
                let values = d.values().clone();
                Column::Dictionary {
                    array: a.clone(),
                    keys: d.normalized_keys(),
                    first_key: first_key(&values),
                    values: Box::new(Column::of(&values, &mut |_| 0)),
                }
            }
            Some(d) => Column::Keyed { array: a.clone(), keys: d.normalized_keys(), values: d.values().clone() },
            None => Column::Array(a.clone()),
        }
    }

    /// Row `i`'s string ("" for a null); `None` when the column is not of strings.
    fn str_at(&self, i: usize) -> Option<&str> {
        match self {
            Column::Skip => Some(""),
            Column::Utf8(a) => Some(if a.is_valid(i) { a.value(i) } else { "" }),
            Column::LargeUtf8(a) => Some(if a.is_valid(i) { a.value(i) } else { "" }),
            Column::Dictionary { array, keys, values, .. } => {
                if array.is_valid(i) {
                    values.str_at(keys[i])
                } else {
                    Some("")
                }
            }
            Column::Array(_) | Column::Keyed { .. } => None,
        }
    }

    /// Appends row `i`'s text (nothing for a null).
    fn put(&self, i: usize, out: &mut Vec<u8>) {
        match (self, self.str_at(i)) {
            (_, Some(s)) => out.extend_from_slice(s.as_bytes()),
            (Column::Array(a), None) if a.is_valid(i) => put_value(a.as_ref(), i, out),
            (Column::Keyed { array, keys, values }, None) if array.is_valid(i) && values.is_valid(keys[i]) => {
                put_value(values.as_ref(), keys[i], out)
            }
            _ => {}
        }
    }
}

fn put_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A decimal's unscaled value as text with `scale` digits after the point.
fn put_decimal(out: &mut Vec<u8>, unscaled: &str, scale: i8) {
    let (sign, digits) = unscaled.strip_prefix('-').map_or(("", unscaled), |d| ("-", d));
    out.extend_from_slice(sign.as_bytes());
    if scale <= 0 {
        out.extend_from_slice(digits.as_bytes());
        out.extend(std::iter::repeat_n(b'0', scale.unsigned_abs() as usize));
        return;
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    out.extend_from_slice(int.as_bytes());
    out.push(b'.');
    out.extend_from_slice(frac.as_bytes());
}

/// Appends the text of the (valid) value at `i` of a readable array.
fn put_value(a: &dyn Array, i: usize, out: &mut Vec<u8>) {
    use DataType::*;
    match a.data_type() {
        Null => {}
        Boolean => out.extend_from_slice(if a.as_boolean().value(i) { b"true" } else { b"false" }),
        Int8 => put_int(out, a.as_primitive::<Int8Type>().value(i)),
        Int16 => put_int(out, a.as_primitive::<Int16Type>().value(i)),
        Int32 => put_int(out, a.as_primitive::<Int32Type>().value(i)),
        Int64 => put_int(out, a.as_primitive::<Int64Type>().value(i)),
        UInt8 => put_int(out, a.as_primitive::<UInt8Type>().value(i)),
        UInt16 => put_int(out, a.as_primitive::<UInt16Type>().value(i)),
        UInt32 => put_int(out, a.as_primitive::<UInt32Type>().value(i)),
        UInt64 => put_int(out, a.as_primitive::<UInt64Type>().value(i)),
        // Shortest round-trip text; not-finite values as the words a CSV holds.
        Float32 => put_float(out, a.as_primitive::<Float32Type>().value(i)),
        Float64 => put_float(out, a.as_primitive::<Float64Type>().value(i)),
        Decimal32(_, s) => put_decimal(out, &a.as_primitive::<Decimal32Type>().value(i).to_string(), *s),
        Decimal64(_, s) => put_decimal(out, &a.as_primitive::<Decimal64Type>().value(i).to_string(), *s),
        Decimal128(_, s) => put_decimal(out, &a.as_primitive::<Decimal128Type>().value(i).to_string(), *s),
        Decimal256(_, s) => put_decimal(out, &a.as_primitive::<Decimal256Type>().value(i).to_string(), *s),
        Date32 | Date64 | Timestamp(..) => {
            if let Some(seconds) = typed_seconds(a, i) {
                put_int(out, seconds);
            }
        }
        Utf8 => out.extend_from_slice(a.as_string::<i32>().value(i).as_bytes()),
        LargeUtf8 => out.extend_from_slice(a.as_string::<i64>().value(i).as_bytes()),
        Utf8View => out.extend_from_slice(a.as_string_view().value(i).as_bytes()),
        Binary => out.extend_from_slice(a.as_binary::<i32>().value(i)),
        LargeBinary => out.extend_from_slice(a.as_binary::<i64>().value(i)),
        BinaryView => out.extend_from_slice(a.as_binary_view().value(i)),
        // `readable` keeps every other type from being decoded.
        _ => {}
    }
}

/// The shortest text that parses back to `v` in its own width (an `f32`'s `2.99` stays
/// `2.99`, as a CSV export writes it); not-finite values as the words a CSV holds.
fn put_float<F: ryu::Float + Into<f64>>(out: &mut Vec<u8>, v: F) {
    let wide: f64 = v.into();
    if wide.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else if wide.is_nan() {
        out.extend_from_slice(b"NaN");
    } else {
        out.extend_from_slice(if wide > 0.0 { b"inf" } else { b"-inf" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        let text = |u: &str, s: i8| {
            let mut out = Vec::new();
            put_decimal(&mut out, u, s);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text("1234", 2), "12.34");
        assert_eq!(text("-5", 2), "-0.05");
        assert_eq!(text("0", 3), "0.000");
        assert_eq!(text("12", 0), "12");
        assert_eq!(text("12", -2), "1200");
    }
}
