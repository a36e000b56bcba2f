//! A CSV table (as every cobuy output is first written) into a Parquet file: each column
//! typed by its values, read twice from the spooled CSV so memory holds one batch.
//!
//! A column is `int64` when every non-empty value is an integer written canonically (no
//! sign but `-`, no leading zero: `007` stays text, so ids keep their bytes), `float64`
//! when every non-empty value is a canonically written decimal number, and a string
//! otherwise; empty fields are nulls. Reading the Parquet file back as cobuy does gives
//! the CSV's text for every id and the same number for every number.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Rows per batch handed to the writer.
const BATCH_ROWS: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Int,
    Float,
    Text,
}

/// An integer as `itoa` writes it: what parses and prints back to the same bytes.
fn is_int(t: &[u8]) -> bool {
    let digits = t.strip_prefix(b"-").unwrap_or(t);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
        && t != b"-0"
}

/// A decimal number without a leading `+`, spaces or redundant leading zeros (`0.5`,
/// `-12.25`, `1e-7`), finite.
fn is_float(t: &[u8]) -> bool {
    let digits = t.strip_prefix(b"-").unwrap_or(t);
    let leading_zero = digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit();
    !digits.is_empty()
        && digits[0].is_ascii_digit()
        && !leading_zero
        && std::str::from_utf8(t).ok().and_then(|s| s.parse::<f64>().ok()).is_some_and(f64::is_finite)
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn reader(csv_path: &Path) -> io::Result<csv::Reader<BufReader<File>>> {
    let f = BufReader::with_capacity(1 << 20, File::open(csv_path)?);
    Ok(csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(f))
}

/// Writes the CSV at `csv_path` (with a header) into `out` as Parquet (snappy).
pub(super) fn csv_to_parquet(csv_path: &Path, out: &mut (impl Write + Send)) -> io::Result<()> {
    let mut r = reader(csv_path)?;
    let header: Vec<String> =
        r.byte_headers().map_err(invalid)?.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
    let mut kinds = vec![None::<Kind>; header.len()];
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec).map_err(invalid)? {
        for (k, f) in kinds.iter_mut().zip(rec.iter()) {
            if f.is_empty() || *k == Some(Kind::Text) {
                continue;
            }
            *k = Some(match *k {
                None | Some(Kind::Int) if is_int(f) => Kind::Int,
                None | Some(Kind::Int) | Some(Kind::Float) if is_float(f) => Kind::Float,
                _ => Kind::Text,
            });
        }
    }
    let kinds: Vec<Kind> = kinds.into_iter().map(|k| k.unwrap_or(Kind::Text)).collect();
    let fields: Vec<Field> = header
        .iter()
        .zip(&kinds)
        .map(|(name, k)| {
            let t = match k {
                Kind::Int => DataType::Int64,
                Kind::Float => DataType::Float64,
                Kind::Text => DataType::Utf8,
            };
            Field::new(name, t, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(invalid)?;
    let mut r = reader(csv_path)?;
    let mut builders: Vec<Column> = kinds.iter().map(|&k| Column::new(k)).collect();
    let mut rows = 0;
    loop {
        let more = r.read_byte_record(&mut rec).map_err(invalid)?;
        if more {
            for (b, f) in builders.iter_mut().zip(rec.iter()) {
                b.push(f)?;
            }
            rows += 1;
        }
        if rows == BATCH_ROWS || (!more && rows > 0) {
            let columns: Vec<ArrayRef> = builders.iter_mut().map(Column::finish).collect();
            w.write(&RecordBatch::try_new(schema.clone(), columns).map_err(invalid)?).map_err(invalid)?;
            rows = 0;
        }
        if !more {
            break;
        }
    }
    w.close().map_err(invalid)?;
    Ok(())
}

enum Column {
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
}

impl Column {
    fn new(k: Kind) -> Column {
        match k {
            Kind::Int => Column::Int(Int64Builder::new()),
            Kind::Float => Column::Float(Float64Builder::new()),
            Kind::Text => Column::Text(StringBuilder::new()),
        }
    }

    fn push(&mut self, f: &[u8]) -> io::Result<()> {
        if f.is_empty() {
            match self {
                Column::Int(b) => b.append_null(),
                Column::Float(b) => b.append_null(),
                Column::Text(b) => b.append_null(),
            }
            return Ok(());
        }
        let text = std::str::from_utf8(f).map_err(invalid)?;
        match self {
            Column::Int(b) => b.append_value(text.parse().map_err(invalid)?),
            Column::Float(b) => b.append_value(text.parse().map_err(invalid)?),
            Column::Text(b) => b.append_value(text),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Int(b) => Arc::new(b.finish()),
            Column::Float(b) => Arc::new(b.finish()),
            Column::Text(b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_numbers_are_typed() {
        for t in ["0", "7", "-12", "123456789012345678"] {
            assert!(is_int(t.as_bytes()), "{t}");
        }
        for t in ["007", "+1", "-0", "", "1.0", " 1", "1234567890123456789"] {
            assert!(!is_int(t.as_bytes()), "{t}");
        }
        for t in ["0.5", "-12.25", "1e-7", "3", "0"] {
            assert!(is_float(t.as_bytes()), "{t}");
        }
        for t in ["007", "+1.5", ".5", "NaN", "inf", "1e999", "00.5", " 1"] {
            assert!(!is_float(t.as_bytes()), "{t}");
        }
    }
}
