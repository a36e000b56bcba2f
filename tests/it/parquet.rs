//! Parquet in and out: a Parquet file (or a folder of them) gives the model bytes, row
//! buckets, rejects and errors of the same rows written as CSV, for every column type a
//! Parquet writer uses for ids, quantities, amounts and times; damaged files are exit 2;
//! a `.parquet` output holds the values of the CSV output.
//!
//! The CSV is the oracle: it is written from the same values by code independent of the
//! reader (dates formatted here from the civil calendar), and read by the CSV path. A model
//! names the file it was fitted on (`info.source`), so each input is called `purchases`
//! (Parquet is known by its magic bytes) in a folder of its own.

use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Date32Builder, TimestampNanosecondBuilder};
use arrow_array::builder::{Decimal128Builder, Float32Builder, Float64Builder, Int32Builder, Int64Builder};
use arrow_array::builder::{StringBuilder, StringDictionaryBuilder, TimestampMillisecondBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::common::{Lcg, civil, rows_summary, run_cobuy};

/// One purchase row, as values.
#[derive(Clone)]
struct Row {
    customer: Option<u32>,
    item: Option<u32>,
    quantity: Option<i64>,
    cents: i64,
    /// Unix seconds.
    time: i64,
    basket: u32,
}

fn rows(n: usize, seed: u64) -> Vec<Row> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let customer = rng.skewed(200);
            let q = match rng.below(100) {
                0..=3 => -1,
                4 => 0,
                _ => 1 + i64::from(rng.below(3)),
            };
            Row {
                customer: Some(customer),
                item: Some(rng.skewed(60)),
                quantity: Some(q),
                cents: q * (i64::from(rng.below(3000)) + 1),
                // 2023 and a bit, to the second.
                time: 1_672_531_200 + i64::from(rng.below(400 * 86_400)),
                basket: customer * 10 + rng.below(5),
            }
        })
        .collect()
}

fn customer_text(c: u32) -> String {
    (10_000 + 7 * c).to_string()
}

fn item_text(i: u32) -> String {
    if i % 3 == 0 { format!("SKU-{i:03}") } else { (500 + i).to_string() }
}

fn cents_text(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

/// `YYYY-MM-DD HH:MM:SS` of unix seconds.
fn time_text(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    format!("{} {:02}:{:02}:{:02}", civil(days), secs / 3600, secs / 60 % 60, secs % 60)
}

const HEADER: &str = "customer,item,quantity,amount,time,basket";
const FLAGS: [&str; 12] = [
    "--customer-col",
    "customer",
    "--item-col",
    "item",
    "--quantity-col",
    "quantity",
    "--amount-col",
    "amount",
    "--time-col",
    "time",
    "--basket-col",
    "basket",
];

fn write_csv(path: &Path, rows: &[Row]) {
    let mut text = format!("{HEADER}\n");
    for r in rows {
        let opt = |v: Option<String>| v.unwrap_or_default();
        text += &format!(
            "{},{},{},{},{},{}\n",
            opt(r.customer.map(customer_text)),
            opt(r.item.map(item_text)),
            opt(r.quantity.map(|q| q.to_string())),
            cents_text(r.cents),
            time_text(r.time),
            r.basket
        );
    }
    fs::write(path, text).unwrap();
}

/// How each column is typed in a Parquet variant.
#[derive(Clone, Copy)]
enum Variant {
    /// int64 customers, dictionary strings for items, int32 quantities, decimal(12, 2)
    /// amounts, millisecond timestamps, int64 baskets.
    Typed,
    /// string customers, plain strings for items, float64 quantities, float32 amounts,
    /// nanosecond timestamps in UTC, string baskets.
    Floats,
    /// Every column a string, times as the CSV writes them.
    Strings,
}

fn batch(rows: &[Row], v: Variant) -> RecordBatch {
    let strings = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        let mut b = StringBuilder::new();
        rows.iter().for_each(|r| b.append_option(f(r)));
        Arc::new(b.finish())
    };
    let (customer, item, quantity, amount, time, basket): (ArrayRef, ArrayRef, ArrayRef, ArrayRef, ArrayRef, ArrayRef) =
        match v {
            Variant::Typed => {
                let mut c = Int64Builder::new();
                let mut i = StringDictionaryBuilder::<Int32Type>::new();
                let mut q = Int32Builder::new();
                let mut a = Decimal128Builder::new().with_precision_and_scale(12, 2).unwrap();
                let mut t = TimestampMillisecondBuilder::new();
                let mut b = Int64Builder::new();
                for r in rows {
                    c.append_option(r.customer.map(|c| customer_text(c).parse::<i64>().unwrap()));
                    i.append_option(r.item.map(item_text));
                    q.append_option(r.quantity.map(|q| q as i32));
                    a.append_value(i128::from(r.cents));
                    t.append_value(r.time * 1000 + 999); // the fraction is dropped, as in a CSV time
                    b.append_value(i64::from(r.basket));
                }
                (
                    Arc::new(c.finish()),
                    Arc::new(i.finish()),
                    Arc::new(q.finish()),
                    Arc::new(a.finish()),
                    Arc::new(t.finish()),
                    Arc::new(b.finish()),
                )
            }
            Variant::Floats => {
                let mut q = Float64Builder::new();
                let mut a = Float32Builder::new();
                let mut t = TimestampNanosecondBuilder::new().with_timezone("UTC");
                for r in rows {
                    q.append_option(r.quantity.map(|q| q as f64));
                    a.append_value(cents_text(r.cents).parse::<f32>().unwrap());
                    t.append_value(r.time * 1_000_000_000);
                }
                (
                    strings(&|r| r.customer.map(customer_text)),
                    strings(&|r| r.item.map(item_text)),
                    Arc::new(q.finish()),
                    Arc::new(a.finish()),
                    Arc::new(t.finish()),
                    strings(&|r| Some(r.basket.to_string())),
                )
            }
            Variant::Strings => (
                strings(&|r| r.customer.map(customer_text)),
                strings(&|r| r.item.map(item_text)),
                strings(&|r| r.quantity.map(|q| q.to_string())),
                strings(&|r| Some(cents_text(r.cents))),
                strings(&|r| Some(time_text(r.time))),
                strings(&|r| Some(r.basket.to_string())),
            ),
        };
    RecordBatch::try_from_iter([
        ("customer", customer),
        ("item", item),
        ("quantity", quantity),
        ("amount", amount),
        ("time", time),
        ("basket", basket),
    ])
    .unwrap()
}

/// Writes `rows` as Parquet in row groups of `group_rows`, compressed with `codec`.
fn write_parquet(path: &Path, rows: &[Row], v: Variant, group_rows: usize, codec: Compression) {
    let b = batch(rows, v);
    let props =
        WriterProperties::builder().set_max_row_group_row_count(Some(group_rows)).set_compression(codec).build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), b.schema(), Some(props)).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
}

fn fit(dir: &Path, input: &str, model: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["fit", "--purchases", input, "--model", model, "--threads", "2"];
    args.extend_from_slice(&FLAGS);
    args.extend_from_slice(extra);
    let out = run_cobuy(dir, &args);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn fit_ok(dir: &Path, input: &str, model: &str) -> Vec<u8> {
    let (code, err) = fit(dir, input, model, &[]);
    assert_eq!(code, 0, "{input}: {err}");
    fs::read(dir.join(model)).unwrap()
}

/// The folder `case` of `dir`, made, and its `purchases` path.
fn case(dir: &Path, case: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let d = dir.join(case);
    fs::create_dir_all(&d).unwrap();
    let p = d.join("purchases");
    (d, p)
}

#[test]
fn parquet_gives_the_model_bytes_of_its_csv_for_every_column_type() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = rows(4000, 16);
    let (csv_dir, csv) = case(d, "csv");
    write_csv(&csv, &rows);
    let want = fit_ok(&csv_dir, "purchases", "m.cobuy");
    let cases = [
        (Variant::Typed, 700, Compression::SNAPPY),
        (Variant::Floats, 4000, Compression::ZSTD(Default::default())),
        (Variant::Strings, 333, Compression::GZIP(Default::default())),
    ];
    for (k, (v, groups, codec)) in cases.into_iter().enumerate() {
        let (pq_dir, pq) = case(d, &format!("pq{k}"));
        write_parquet(&pq, &rows, v, groups, codec);
        assert!(fit_ok(&pq_dir, "purchases", "m.cobuy") == want, "case {k}: model bytes differ from the CSV's");
    }
    // A folder: its files in name order are one table, whatever their row groups.
    let (folder_dir, folder) = case(d, "folder");
    fs::create_dir(&folder).unwrap();
    write_parquet(&folder.join("part-1.parquet"), &rows[..1500], Variant::Typed, 400, Compression::SNAPPY);
    write_parquet(&folder.join("part-2.parquet"), &rows[1500..], Variant::Typed, 1000, Compression::UNCOMPRESSED);
    fs::write(folder.join("_SUCCESS"), "").unwrap();
    assert!(fit_ok(&folder_dir, "purchases", "m.cobuy") == want, "the folder's model bytes differ from the CSV's");
}

#[test]
fn dates_read_as_midnight_as_in_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = String::from("customer,item,time\n");
    let mut date = Date32Builder::new();
    let (mut c, mut i) = (StringBuilder::new(), StringBuilder::new());
    for k in 0..300i32 {
        let day = 19_000 + k % 41;
        text += &format!("c{},i{},{}\n", k % 17, k % 13, &time_text(i64::from(day) * 86_400)[..10]);
        c.append_value(format!("c{}", k % 17));
        i.append_value(format!("i{}", k % 13));
        date.append_value(day);
    }
    let ((csv_dir, csv), (pq_dir, pq)) = (case(d, "csv"), case(d, "pq"));
    fs::write(csv, text).unwrap();
    let b = RecordBatch::try_from_iter([
        ("customer", Arc::new(c.finish()) as ArrayRef),
        ("item", Arc::new(i.finish()) as ArrayRef),
        ("time", Arc::new(date.finish()) as ArrayRef),
    ])
    .unwrap();
    let mut w = ArrowWriter::try_new(File::create(pq).unwrap(), b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let fit = |dir: &Path| {
        let out = run_cobuy(dir, &["fit", "--purchases", "purchases", "--time-col", "time", "--model", "m.cobuy"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        fs::read(dir.join("m.cobuy")).unwrap()
    };
    assert!(fit(&csv_dir) == fit(&pq_dir));
}

/// Everything a read gives, printed: the merged purchases and summary, or the error.
fn read_all(path: &Path, chunk_bytes: usize, skip: bool) -> String {
    let mut cols = cobuy::ingest::Columns::new("customer", "item");
    cols.quantity = Some("quantity".into());
    cols.amount = Some("amount".into());
    cols.time = Some("time".into());
    cols.basket = Some("basket".into());
    let mut o = cobuy::ingest::IngestOptions::new(cols);
    o.chunk_bytes = chunk_bytes;
    o.skip_invalid = skip;
    match cobuy::ingest::read_purchases(path, &o) {
        Ok(r) => {
            let i = &r.interactions;
            format!("{:?} {:?} {:?} {:?} {:?}", i.customers(), i.items(), i.counts(), i.amount(), r.summary)
        }
        Err(e) => e.to_string().replace(&path.display().to_string(), "FILE"),
    }
}

#[test]
fn any_batching_on_any_threads_reads_what_the_csv_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = with_nulls(&rows(3000, 5));
    write_csv(&d.join("p.csv"), &rows);
    // One large row group (decoded batch by batch on the reading thread when there are
    // more threads than groups), and many small ones (each decoded on a worker).
    write_parquet(&d.join("one.parquet"), &rows, Variant::Floats, 3000, Compression::SNAPPY);
    write_parquet(&d.join("many.parquet"), &rows, Variant::Typed, 250, Compression::SNAPPY);
    for skip in [true, false] {
        let want = read_all(&d.join("p.csv"), 1 << 20, skip);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for file in ["one.parquet", "many.parquet"] {
                for chunk_bytes in [64, 64 * 7, 64 * 1000, 1 << 22] {
                    let got = pool.install(|| read_all(&d.join(file), chunk_bytes, skip));
                    // A stopping error names a row group and row where the CSV names a line.
                    if skip {
                        assert!(got == want, "{file}, {threads} threads, chunks of {chunk_bytes} bytes");
                    } else {
                        let first = rows.iter().position(|r| r.item.is_none() || r.quantity.is_none()).unwrap();
                        let at = if file == "one.parquet" { (0, first) } else { (first / 250, first % 250) };
                        let want = format!("FILE: row group {}, row {}: column item: the item id is empty", at.0, at.1);
                        assert!(got.starts_with(&want), "{got}");
                    }
                }
            }
        }
    }
}

/// The rows with a few nulls (empty fields in the CSV).
fn with_nulls(rows: &[Row]) -> Vec<Row> {
    let mut rows = rows.to_vec();
    for k in (37..rows.len()).step_by(211) {
        match k % 3 {
            0 => rows[k].customer = None,
            1 => rows[k].item = None,
            _ => rows[k].quantity = None,
        }
    }
    rows
}

fn rejects(path: &Path) -> Vec<(String, String, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    // Byte records: a rejected record may hold bytes that are not UTF-8.
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    r.byte_records().map(|r| r.unwrap()).map(|r| (text(&r[0]), text(&r[1]), text(&r[2]))).collect()
}

#[test]
fn nulls_are_the_empty_fields_of_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = with_nulls(&rows(3000, 7));
    let ((csv_dir, csv), (pq_dir, pq)) = (case(d, "csv"), case(d, "pq"));
    write_csv(&csv, &rows);
    write_parquet(&pq, &rows, Variant::Typed, 500, Compression::SNAPPY);
    fs::copy(&csv, d.join("n.csv")).unwrap();
    fs::copy(&pq, d.join("n.parquet")).unwrap();
    // Skipped: the same buckets, the same rejects (lines of the CSV export, columns, reasons).
    let skip = |dir: &Path| {
        let (code, err) = fit(dir, "purchases", "m.cobuy", &["--skip-invalid", "--rejects", "rejects.csv"]);
        assert_eq!(code, 0, "{err}");
        (rows_summary(&err), fs::read(dir.join("m.cobuy")).unwrap(), rejects(&dir.join("rejects.csv")))
    };
    let (csv_summary, csv_model, want) = skip(&csv_dir);
    let (pq_summary, pq_model, got) = skip(&pq_dir);
    assert_eq!(pq_summary, csv_summary);
    assert!(csv_summary.1.values().sum::<u64>() > 0, "{csv_summary:?}");
    assert!(pq_model == csv_model);
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // Not skipped: the first bad row stops the read, named by file, row group and row.
    let first = rows.iter().position(|r| r.customer.is_some() && (r.item.is_none() || r.quantity.is_none())).unwrap();
    let column = if rows[first].item.is_none() { "item" } else { "quantity" };
    let (code, err) = fit(d, "n.parquet", "m.cobuy", &[]);
    assert_eq!(code, 2, "{err}");
    let want = format!("n.parquet: row group {}, row {}: column {column}: ", first / 500, first % 500);
    assert!(err.contains(&want), "want {want:?} in {err}");
    let (_, csv_err) = fit(d, "n.csv", "m.cobuy", &[]);
    let reason = |e: &str| e.split(&format!("column {column}: ")).nth(1).map(|r| r.lines().next().unwrap().to_string());
    assert_eq!(reason(&err), reason(&csv_err));
}

#[test]
fn bad_parquet_files_are_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = rows(2000, 3);
    write_parquet(&d.join("good.parquet"), &rows, Variant::Typed, 500, Compression::SNAPPY);
    let good = fs::read(d.join("good.parquet")).unwrap();
    fs::write(d.join("text.parquet"), "customer,item\n1,2\n").unwrap();
    fs::write(d.join("cut.parquet"), &good[..good.len() / 2]).unwrap();
    fs::write(d.join("empty.parquet"), "").unwrap();
    fs::create_dir(d.join("none")).unwrap();
    fs::create_dir(d.join("mixed")).unwrap();
    fs::write(d.join("mixed/a.parquet"), &good).unwrap();
    write_parquet(&d.join("pq4.parquet"), &rows, Variant::Typed, 500, Compression::SNAPPY);
    let b = batch(&rows, Variant::Typed);
    let b = b.project(&[1, 0, 2, 3, 4, 5]).unwrap();
    let mut w = ArrowWriter::try_new(File::create(d.join("mixed/b.parquet")).unwrap(), b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let cases: [(&str, &[&str], &str); 6] = [
        ("text.parquet", &[], "text.parquet: not a readable Parquet file"),
        ("cut.parquet", &[], "cut.parquet: not a readable Parquet file"),
        ("empty.parquet", &[], "empty.parquet: not a readable Parquet file"),
        ("none", &[], "none: the folder holds no .parquet files"),
        ("mixed", &[], "b.parquet: its columns (item, customer, quantity, amount, time, basket) differ"),
        (
            "good.parquet",
            &["--rating-col", "stars", "--min-value", "3"],
            "column stars: not in the header; the header's columns are: customer, item, quantity",
        ),
    ];
    for (input, extra, want) in cases {
        let (code, err) = fit(d, input, "m.cobuy", extra);
        assert_eq!(code, 2, "{input}: {err}");
        assert!(err.contains(want), "{input}: want {want:?} in {err}");
        assert!(!err.contains("panicked"), "{input}: {err}");
    }
    // Damaged bytes inside the data pages: an error or a read, never a panic.
    for k in 1..24 {
        let mut bad = good.clone();
        let at = 8 + k * (good.len() - 400) / 24;
        bad[at] ^= 0x5a;
        bad[at + 1] = bad[at + 1].wrapping_add(77);
        fs::write(d.join("bad.parquet"), &bad).unwrap();
        let (code, err) = fit(d, "bad.parquet", "m.cobuy", &["--skip-invalid"]);
        assert!(code == 0 || code == 2, "byte {at}: exit {code}: {err}");
        assert!(!err.contains("panicked"), "byte {at}: {err}");
    }
}

/// A Parquet file's rows as text: integers in decimal, floats as numbers, nulls empty.
fn parquet_cells(path: &Path) -> (Vec<String>, Vec<Vec<Cell>>) {
    let r = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let header = r.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut out = Vec::new();
    for b in r.build().unwrap() {
        let b = b.unwrap();
        for i in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        use arrow_array::cast::AsArray;
                        use arrow_array::types::{Float64Type, Int64Type};
                        if c.is_null(i) {
                            return Cell::Null;
                        }
                        match c.data_type() {
                            arrow_schema::DataType::Int64 => Cell::Int(c.as_primitive::<Int64Type>().value(i)),
                            arrow_schema::DataType::Float64 => Cell::Float(c.as_primitive::<Float64Type>().value(i)),
                            arrow_schema::DataType::Utf8 => Cell::Text(c.as_string::<i32>().value(i).to_string()),
                            t => panic!("unexpected type {t}"),
                        }
                    })
                    .collect(),
            );
        }
    }
    (header, out)
}

#[derive(Debug)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

/// Whether a CSV field holds this cell's value.
fn holds(field: &str, cell: &Cell) -> bool {
    match cell {
        Cell::Null => field.is_empty(),
        Cell::Int(v) => field == v.to_string(),
        Cell::Float(v) => field.parse::<f64>() == Ok(*v),
        Cell::Text(t) => field == t,
    }
}

#[test]
fn parquet_outputs_hold_the_csv_outputs_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = rows(3000, 11);
    write_csv(&d.join("p.csv"), &rows);
    fit_ok(d, "p.csv", "m.cobuy");
    let runs: [&[&str]; 3] = [
        &["recommend", "--model", "m.cobuy", "--top", "5", "--out", "OUT"],
        &["similar-customers", "--model", "m.cobuy", "--top", "3", "--out", "OUT"],
        &["rules", "--purchases", "p.csv", "--customer-col", "customer", "--item-col", "item", "--out", "OUT"],
    ];
    for args in runs {
        for out in ["o.csv", "o.parquet"] {
            let args: Vec<&str> = args.iter().map(|a| if *a == "OUT" { out } else { a }).collect();
            let res = run_cobuy(d, &args);
            assert!(res.status.success(), "{args:?}: {}", String::from_utf8_lossy(&res.stderr));
        }
        let mut csv = csv::Reader::from_path(d.join("o.csv")).unwrap();
        let want_header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
        let want: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
        let (header, got) = parquet_cells(&d.join("o.parquet"));
        assert_eq!(header, want_header, "{}", args[0]);
        assert_eq!(got.len(), want.len(), "{}", args[0]);
        assert!(!got.is_empty());
        for (g, w) in got.iter().zip(&want) {
            assert!(g.len() == w.len() && w.iter().zip(g).all(|(f, c)| holds(f, c)), "{}: {w:?} vs {g:?}", args[0]);
        }
        // Ids that look like numbers come back with their text when read as input again.
        assert!(got.iter().any(|r| matches!(r[0], Cell::Int(_))) || args[0] == "rules", "{}", args[0]);
    }
}

/// A column of one of the types a Parquet writer uses, with the text a CSV export of the
/// same values holds in each row (empty for a null; times as unix seconds, the fraction of a
/// second dropped; floats in their shortest form in their own width).
#[derive(Clone, Copy, Debug)]
enum Kind {
    CustomerInt64,
    CustomerUInt64,
    CustomerLargeUtf8,
    CustomerDict16,
    ItemDict32,
    ItemBinary,
    ItemInt32,
    ItemUtf8,
    QuantityInt8,
    QuantityInt16,
    QuantityUInt32,
    QuantityFloat64,
    QuantityUtf8,
    AmountFloat64,
    AmountDecimal,
    AmountFloat32,
    TimeSeconds,
    TimeMillisUtc,
    TimeMicros,
    TimeNanosUtc,
    TimeDate32,
    TimeDate64,
    TimeInt64,
    TimeUtf8,
    BasketInt64,
    BasketUtf8,
    BasketDictInt64,
}

/// Column `kind` for `n` rows (seeded by `seed`): the array, and each row's CSV field.
fn typed_column(kind: Kind, n: usize, seed: u64) -> (ArrayRef, Vec<Vec<u8>>) {
    use Kind::*;
    use arrow_array::types::Int16Type;
    use arrow_array::*;
    let mut rng = Lcg(seed);
    // A null in about one row of 40, none in the first rows (so that every chunk has some ids).
    let null = |rng: &mut Lcg, k: usize| k > 20 && rng.below(40) == 0;
    let text = |v: &Option<String>| v.clone().unwrap_or_default().into_bytes();
    let strings = |f: &mut dyn FnMut(&mut Lcg, usize) -> Option<String>, rng: &mut Lcg| -> Vec<Option<String>> {
        (0..n).map(|k| if null(rng, k) { None } else { f(rng, k) }).collect()
    };
    let ints = |f: &mut dyn FnMut(&mut Lcg, usize) -> i64, rng: &mut Lcg| -> Vec<Option<i64>> {
        (0..n).map(|k| if null(rng, k) { None } else { Some(f(rng, k)) }).collect()
    };
    let int_texts =
        |v: &[Option<i64>]| v.iter().map(|x| x.map(|x| x.to_string()).unwrap_or_default().into_bytes()).collect();
    // A quantity: mostly 1 to 3, some returns, zeros, and values out of range.
    let quantity = |rng: &mut Lcg, _: usize| match rng.below(100) {
        0..=5 => -1 - i64::from(rng.below(2)),
        6..=7 => 0,
        _ => 1 + i64::from(rng.below(3)),
    };
    // Times in 2023; a few out of the range of dates cobuy reads (after 9999, before year 0).
    let seconds = |rng: &mut Lcg, _: usize| match rng.below(150) {
        0 => 253_402_300_800 + i64::from(rng.below(1000)),
        1 => -62_167_219_201 - i64::from(rng.below(1000)),
        _ => 1_672_531_200 + i64::from(rng.below(365 * 86_400)),
    };
    let customer = |rng: &mut Lcg| rng.skewed(150);
    let item = |rng: &mut Lcg| rng.skewed(60);
    match kind {
        CustomerInt64 | ItemInt32 | BasketInt64 | QuantityInt8 | QuantityInt16 | QuantityUInt32 | TimeInt64 => {
            let v = ints(
                &mut |rng, _| match kind {
                    CustomerInt64 => 10_000 + 7 * i64::from(customer(rng)),
                    ItemInt32 => i64::from(item(rng)) - 5,
                    BasketInt64 => i64::from(rng.below(400)),
                    QuantityUInt32 => quantity(rng, 0).abs(),
                    TimeInt64 => seconds(rng, 0),
                    _ => quantity(rng, 0),
                },
                &mut rng,
            );
            let a: ArrayRef = match kind {
                ItemInt32 => Arc::new(v.iter().map(|x| x.map(|x| x as i32)).collect::<Int32Array>()),
                QuantityInt8 => Arc::new(v.iter().map(|x| x.map(|x| x as i8)).collect::<Int8Array>()),
                QuantityInt16 => Arc::new(v.iter().map(|x| x.map(|x| x as i16)).collect::<Int16Array>()),
                QuantityUInt32 => Arc::new(v.iter().map(|x| x.map(|x| x as u32)).collect::<UInt32Array>()),
                _ => Arc::new(v.iter().copied().collect::<Int64Array>()),
            };
            (a, int_texts(&v))
        }
        CustomerUInt64 => {
            let v: Vec<Option<u64>> =
                (0..n).map(|k| (!null(&mut rng, k)).then(|| (1 << 63) + 13 * u64::from(customer(&mut rng)))).collect();
            let t = v.iter().map(|x| x.map(|x| x.to_string()).unwrap_or_default().into_bytes()).collect();
            (Arc::new(v.into_iter().collect::<UInt64Array>()), t)
        }
        CustomerLargeUtf8 | ItemUtf8 | QuantityUtf8 | TimeUtf8 | BasketUtf8 => {
            let v = strings(
                &mut |rng, _| match kind {
                    // Some ids blank: a guest row, or an empty item.
                    CustomerLargeUtf8 if rng.below(60) == 0 => Some("  ".into()),
                    CustomerLargeUtf8 => Some(format!("c{}", customer(rng))),
                    ItemUtf8 if rng.below(80) == 0 => Some(" ".into()),
                    ItemUtf8 => Some(format!("item {}", item(rng))),
                    QuantityUtf8 => Some(match rng.below(60) {
                        0 => "x".into(),
                        1 => String::new(),
                        2 => " 2 ".into(),
                        _ => quantity(rng, 0).to_string(),
                    }),
                    TimeUtf8 => Some(match rng.below(60) {
                        0 => "2023-02-30".into(),
                        _ => {
                            let t = seconds(rng, 0).clamp(0, 1 << 40);
                            time_text(t)
                        }
                    }),
                    _ => Some(format!("b{}", rng.below(400))),
                },
                &mut rng,
            );
            let t = v.iter().map(text).collect();
            let a: ArrayRef = match kind {
                CustomerLargeUtf8 => Arc::new(v.iter().map(Option::as_deref).collect::<LargeStringArray>()),
                _ => Arc::new(v.iter().map(Option::as_deref).collect::<StringArray>()),
            };
            (a, t)
        }
        CustomerDict16 | ItemDict32 => {
            // Dictionary values with a blank one and a null one; keys with nulls.
            let (count, name) = if matches!(kind, CustomerDict16) { (150, "cust-") } else { (60, "SKU-") };
            let mut values: Vec<Option<String>> = (0..count).map(|k| Some(format!("{name}{k}"))).collect();
            values.push(Some(" ".into()));
            values.push(None);
            let keys: Vec<Option<i64>> = (0..n)
                .map(|k| {
                    if null(&mut rng, k) {
                        return None;
                    }
                    let key = match rng.below(100) {
                        0 => count + 1,
                        1 => count,
                        _ if matches!(kind, CustomerDict16) => customer(&mut rng),
                        _ => item(&mut rng),
                    };
                    Some(i64::from(key))
                })
                .collect();
            let t = keys.iter().map(|k| k.map_or(Vec::new(), |k| text(&values[k as usize]))).collect();
            let values: ArrayRef = Arc::new(values.iter().map(Option::as_deref).collect::<StringArray>());
            let a: ArrayRef = if matches!(kind, CustomerDict16) {
                let keys = keys.iter().map(|k| k.map(|k| k as i16)).collect::<Int16Array>();
                Arc::new(DictionaryArray::<Int16Type>::try_new(keys, values).unwrap())
            } else {
                let keys = keys.iter().map(|k| k.map(|k| k as i32)).collect::<Int32Array>();
                Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).unwrap())
            };
            (a, t)
        }
        BasketDictInt64 => {
            let keys = ints(&mut |rng, _| i64::from(rng.below(300)), &mut rng);
            let t = keys.iter().map(|k| k.map(|k| (5_000_000 + 3 * k).to_string()).unwrap_or_default().into_bytes());
            let values: ArrayRef = Arc::new((0..300).map(|k| 5_000_000 + 3 * k).collect::<Int64Array>());
            let keys = keys.iter().map(|k| k.map(|k| k as i32)).collect::<Int32Array>();
            (Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).unwrap()), t.collect())
        }
        ItemBinary => {
            // Some ids are not UTF-8: rejected as the CSV's bytes are.
            let v: Vec<Option<Vec<u8>>> = (0..n)
                .map(|k| {
                    (!null(&mut rng, k)).then(|| match rng.below(70) {
                        0 => b"bad\xff\xfe".to_vec(),
                        _ => format!("b{}", item(&mut rng)).into_bytes(),
                    })
                })
                .collect();
            let t = v.iter().map(|x| x.clone().unwrap_or_default()).collect();
            (Arc::new(v.iter().map(Option::as_deref).collect::<BinaryArray>()), t)
        }
        QuantityFloat64 | AmountFloat64 => {
            let v: Vec<Option<f64>> = (0..n)
                .map(|k| {
                    (!null(&mut rng, k)).then(|| match rng.below(80) {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        2 => -0.0,
                        3 => 1e300,
                        4 => 0.1 + 0.2,
                        _ if matches!(kind, AmountFloat64) => f64::from(rng.below(5000)) / 100.0 - 3.0,
                        _ => quantity(&mut rng, 0) as f64 * 1.5,
                    })
                })
                .collect();
            let t = v.iter().map(|x| x.map(float_text).unwrap_or_default().into_bytes()).collect();
            (Arc::new(v.into_iter().collect::<Float64Array>()), t)
        }
        AmountFloat32 => {
            let v: Vec<Option<f32>> =
                (0..n).map(|k| (!null(&mut rng, k)).then(|| (rng.below(5000) as f32) / 100.0 - 3.0)).collect();
            // The shortest text of the f32 (2.99, not 2.990000009536743).
            let t = v.iter().map(|x| x.map(|x| format!("{x}")).unwrap_or_default().into_bytes()).collect();
            (Arc::new(v.into_iter().collect::<Float32Array>()), t)
        }
        AmountDecimal => {
            let v = ints(&mut |rng, _| i64::from(rng.below(5000)) - 300, &mut rng);
            let t = v.iter().map(|x| x.map(cents_text).unwrap_or_default().into_bytes()).collect();
            let a = v.iter().map(|x| x.map(i128::from)).collect::<Decimal128Array>();
            (Arc::new(a.with_precision_and_scale(12, 2).unwrap()), t)
        }
        TimeSeconds | TimeMillisUtc | TimeMicros | TimeNanosUtc | TimeDate32 | TimeDate64 => {
            let v = ints(&mut |rng, k| seconds(rng, k), &mut rng);
            // A fraction of a second within the second (dropped, counting down for times
            // before 1970 as for those after).
            let mut frac = Lcg(seed ^ 99);
            let mut scaled = |per: i64| -> Vec<Option<i64>> {
                v.iter().map(|x| x.map(|s| s * per + i64::from(frac.below(per as u32)))).collect()
            };
            let (a, t): (ArrayRef, Vec<Option<i64>>) = match kind {
                TimeSeconds => (Arc::new(v.iter().copied().collect::<TimestampSecondArray>()), v.clone()),
                TimeMillisUtc => {
                    let a = scaled(1000).into_iter().collect::<TimestampMillisecondArray>().with_timezone("UTC");
                    (Arc::new(a), v.clone())
                }
                TimeMicros => {
                    (Arc::new(scaled(1_000_000).into_iter().collect::<TimestampMicrosecondArray>()), v.clone())
                }
                TimeNanosUtc => {
                    // Nanoseconds reach only years 1677 to 2262: the times out of range are
                    // taken to the year 2200.
                    let v: Vec<Option<i64>> = v.iter().map(|x| x.map(|s| s.clamp(0, 7_258_118_400))).collect();
                    let a: TimestampNanosecondArray = v.iter().map(|x| x.map(|s| s * 1_000_000_000 + 7)).collect();
                    (Arc::new(a.with_timezone("UTC")), v)
                }
                TimeDate32 => {
                    let days: Vec<Option<i64>> = v.iter().map(|x| x.map(|s| s.div_euclid(86_400))).collect();
                    let a = days.iter().map(|d| d.map(|d| d as i32)).collect::<Date32Array>();
                    (Arc::new(a), days.iter().map(|d| d.map(|d| d * 86_400)).collect())
                }
                _ => (Arc::new(scaled(1000).into_iter().collect::<Date64Array>()), v.clone()),
            };
            (a, int_texts(&t))
        }
    }
}

/// The shortest text of a double, with the words a CSV holds for the values that are not
/// finite.
fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:?}")
    }
}

/// [`read_all`] with a rejects file, returned with the rest.
fn read_with_rejects(path: &Path, chunk_bytes: usize, rejects: &Path) -> (String, Vec<(String, String, String)>) {
    let mut cols = cobuy::ingest::Columns::new("customer", "item");
    cols.quantity = Some("quantity".into());
    cols.amount = Some("amount".into());
    cols.time = Some("time".into());
    cols.basket = Some("basket".into());
    let mut o = cobuy::ingest::IngestOptions::new(cols);
    (o.chunk_bytes, o.skip_invalid, o.rejects) = (chunk_bytes, true, Some(rejects.to_path_buf()));
    let got = match cobuy::ingest::read_purchases(path, &o) {
        Ok(r) => {
            let i = &r.interactions;
            format!("{:?} {:?} {:?} {:?} {:?}", i.customers(), i.items(), i.counts(), i.amount(), r.summary)
        }
        Err(e) => e.to_string().replace(&path.display().to_string(), "FILE"),
    };
    (got, self::rejects(rejects))
}

#[test]
fn typed_columns_of_every_type_read_as_their_csv_with_the_same_rejects_and_errors() {
    use Kind::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 1500;
    let tables: [[Kind; 6]; 8] = [
        [CustomerInt64, ItemDict32, QuantityInt8, AmountDecimal, TimeMillisUtc, BasketInt64],
        [CustomerUInt64, ItemBinary, QuantityFloat64, AmountFloat64, TimeSeconds, BasketUtf8],
        [CustomerLargeUtf8, ItemInt32, QuantityUtf8, AmountFloat32, TimeDate32, BasketDictInt64],
        [CustomerDict16, ItemUtf8, QuantityInt16, AmountFloat64, TimeNanosUtc, BasketInt64],
        [CustomerLargeUtf8, ItemDict32, QuantityUInt32, AmountDecimal, TimeMicros, BasketUtf8],
        [CustomerInt64, ItemUtf8, QuantityFloat64, AmountFloat32, TimeInt64, BasketDictInt64],
        [CustomerUInt64, ItemInt32, QuantityInt16, AmountFloat64, TimeUtf8, BasketInt64],
        [CustomerDict16, ItemBinary, QuantityInt8, AmountDecimal, TimeDate64, BasketUtf8],
    ];
    for (t, kinds) in tables.iter().enumerate() {
        let columns: Vec<(ArrayRef, Vec<Vec<u8>>)> =
            kinds.iter().enumerate().map(|(k, &kind)| typed_column(kind, n, 100 * t as u64 + k as u64)).collect();
        let mut text = format!("{HEADER}\n").into_bytes();
        for r in 0..n {
            for (k, (_, fields)) in columns.iter().enumerate() {
                if k > 0 {
                    text.push(b',');
                }
                text.extend_from_slice(&fields[r]);
            }
            text.push(b'\n');
        }
        let csv = d.join(format!("t{t}.csv"));
        fs::write(&csv, text).unwrap();
        let names = HEADER.split(',');
        let b = RecordBatch::try_from_iter(names.zip(columns.iter().map(|c| c.0.clone()))).unwrap();
        // Row groups of 97 rows in pages of 40; writers that keep every page dictionary-
        // encoded (read as dictionaries), that fall back to plain pages part way through a
        // column chunk (a dictionary page of 200 bytes at most), and that write no
        // dictionaries.
        let pq = d.join(format!("t{t}.parquet"));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(97))
            .set_data_page_row_count_limit(40)
            .set_write_batch_size(40);
        let props = match t % 3 {
            0 => props,
            1 => props.set_dictionary_page_size_limit(200),
            _ => props.set_dictionary_enabled(false),
        };
        let mut w = ArrowWriter::try_new(File::create(&pq).unwrap(), b.schema(), Some(props.build())).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        let want = read_with_rejects(&csv, 1 << 20, &d.join("want.csv"));
        assert!(!want.1.is_empty() && want.0.contains("purchase_rows"), "table {t}: {want:?}");
        let want_error = read_all(&csv, 1 << 20, false);
        let (line, rest) = want_error.strip_prefix("FILE:").unwrap().split_once(": ").unwrap();
        let row = line.parse::<usize>().unwrap() - 2;
        let want_error = format!("FILE: row group {}, row {}: {rest}", row / 97, row % 97);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            // Batches of 1, 7 and 65,536 rows.
            for chunk_bytes in [64, 64 * 7, 1 << 22] {
                let got = pool.install(|| read_with_rejects(&pq, chunk_bytes, &d.join("got.csv")));
                let case = format!("table {t} ({kinds:?}), {threads} threads, chunks of {chunk_bytes} bytes");
                assert!(got.0 == want.0, "{case}:\n{}\n{}", got.0, want.0);
                assert_eq!(got.1, want.1, "{case}");
                assert_eq!(pool.install(|| read_all(&pq, chunk_bytes, false)), want_error, "{case}");
            }
        }
    }
}
