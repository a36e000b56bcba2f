//! End-to-end tests of `cobuy fit` input handling: every way a purchases file can be bad,
//! the row accounting, and a small MovieLens-style fit + recommend round trip.
//!
//! Fixtures live in `tests/data/ingest/`; files that need raw bytes (invalid UTF-8, CRLF,
//! gzip) are written into a temporary folder at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use tempfile::TempDir;

use crate::common::rows_summary;

/// Runs the binary; returns (exit code, stdout, stderr). A death by signal is code -1.
fn cobuy(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cobuy")).args(args).output().expect("the cobuy binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fixture file.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ingest").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// A scratch folder: inputs go in `in/`, everything the binary writes goes in `out/`.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("in")).expect("in dir");
        Scratch { dir }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn model(&self) -> PathBuf {
        self.out().join("model.cobuy")
    }

    /// Writes an input file (raw bytes) and returns its path.
    fn input(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join("in").join(name);
        fs::write(&p, bytes).expect("write input");
        p
    }

    /// `cobuy fit --purchases INPUT --model MODEL EXTRA...`
    fn fit(&self, input: &Path, extra: &[&str]) -> (i32, String, String) {
        let model = self.model();
        let mut args = vec!["fit", "--purchases", s(input), "--model", s(&model)];
        args.extend_from_slice(extra);
        cobuy(&args)
    }

    /// Nothing was written: no model, no temporary file, no rejects file.
    fn assert_nothing_written(&self) {
        assert!(!self.model().exists(), "a model file was written");
        let out = self.out();
        if out.exists() {
            let left: Vec<_> =
                fs::read_dir(&out).expect("read out dir").map(|e| e.expect("entry").file_name()).collect();
            assert!(left.is_empty(), "files left in the output folder: {left:?}");
        }
    }
}

/// The single `cobuy: error: ...` line of stderr (without the prefix).
fn error_line(stderr: &str) -> &str {
    let errors: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("cobuy: error: ")).collect();
    assert_eq!(errors.len(), 1, "expected exactly one error line in stderr:\n{stderr}");
    errors[0]
}

/// Asserts a failed fit: exit 2, no model, and an error line `FILE:LINE: column COL: ...`
/// whose reason contains `reason`.
fn assert_row_error(sc: &Scratch, res: &(i32, String, String), file: &Path, line: u64, column: &str, reason: &str) {
    let (code, _, stderr) = res;
    assert_eq!(*code, 2, "exit code; stderr:\n{stderr}");
    let err = error_line(stderr);
    let prefix = format!("{}:{line}: column {column}: ", s(file));
    assert!(err.starts_with(&prefix), "expected the error to start with {prefix:?}, got {err:?}");
    assert!(err.contains(reason), "expected {reason:?} in {err:?}");
    sc.assert_nothing_written();
}

/// The `rejected by reason: ...` log line.
fn rejected_by_reason(stderr: &str) -> &str {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("cobuy: rejected by reason: "))
        .map(|l| l.split_once("; written to ").map_or(l, |(reasons, _)| reasons))
        .unwrap_or_else(|| panic!("no `rejected by reason:` line in stderr:\n{stderr}"))
}

/// A CSV file as rows of strings (header included).
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_path(path).expect("open csv");
    r.records().map(|rec| rec.expect("csv record").iter().map(str::to_string).collect()).collect()
}

/// Gzip-compresses `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip write");
    enc.finish().expect("gzip finish")
}

/// A few hundred valid purchase rows.
fn many_rows() -> Vec<u8> {
    let mut text = String::from("customer,item,quantity\n");
    for i in 0..600 {
        text.push_str(&format!("c{},i{},{}\n", i % 37, (i * 7) % 23, i % 5 + 1));
    }
    text.into_bytes()
}

// 1. Empty input.

#[test]
fn empty_file_is_rejected() {
    let sc = Scratch::new();
    let f = data("empty.csv");
    let (code, _, stderr) = sc.fit(&f, &[]);
    assert_eq!(code, 2, "{stderr}");
    let err = error_line(&stderr);
    assert_eq!(err, format!("{}: the file is empty", s(&f)));
    sc.assert_nothing_written();
}

#[test]
fn header_only_file_is_rejected() {
    let sc = Scratch::new();
    let f = data("header_only.csv");
    let (code, _, stderr) = sc.fit(&f, &["--customer-col", "customer", "--item-col", "item"]);
    assert_eq!(code, 2, "{stderr}");
    let err = error_line(&stderr);
    assert_eq!(err, format!("{}: the file has a header but no rows", s(&f)));
    sc.assert_nothing_written();
}

// 2. Column selection.

#[test]
fn missing_column_name_lists_the_header() {
    let sc = Scratch::new();
    let f = data("basic.csv");
    let res = sc.fit(&f, &["--customer-col", "customer", "--item-col", "product"]);
    assert_row_error(
        &sc,
        &res,
        &f,
        1,
        "product",
        "not in the header; the header's columns are: customer, item, quantity, date, rating",
    );
}

#[test]
fn misspelt_column_name_lists_the_header() {
    let sc = Scratch::new();
    let f = data("basic.csv");
    let res = sc.fit(&f, &["--customer-col", "customer", "--item-col", "item", "--quantity-col", "quantiy"]);
    assert_row_error(&sc, &res, &f, 1, "quantiy", "the header's columns are: customer, item, quantity, date, rating");
}

#[test]
fn column_position_beyond_the_header() {
    let sc = Scratch::new();
    let f = data("basic.csv");
    let res = sc.fit(&f, &["--rating-col", "9"]);
    assert_row_error(&sc, &res, &f, 1, "9", "the header has only 5 columns");
}

#[test]
fn named_column_without_a_header() {
    let sc = Scratch::new();
    let f = data("basic.csv");
    let res = sc.fit(&f, &["--no-header", "--customer-col", "customer"]);
    assert_row_error(&sc, &res, &f, 1, "customer", "columns can be named only when the file has a header");
}

/// Without `--customer-col` and `--item-col`, the columns are found by their well-known
/// names wherever they are in the header (UCI Online Retail's order: the invoice first,
/// which a guess by position took as the customer), and the log says which were used, how
/// to choose others, and which columns were not read.
#[test]
fn customer_and_item_columns_are_found_by_name_and_logged() {
    let sc = Scratch::new();
    let f = sc.input(
        "retail.csv",
        b"InvoiceNo,StockCode,Quantity,Customer ID\n536365,85123A,6,17850\n536365,71053,6,17850\n536366,22633,6,17851\n",
    );
    let (code, _, stderr) = sc.fit(&f, &["--algorithm", "popularity"]);
    assert_eq!(code, 0, "{stderr}");
    let line = stderr.lines().find(|l| l.contains("columns found by name")).unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(
        line,
        "cobuy: columns found by name: customer = Customer ID (column 4), item = StockCode (column 2) \
         (--customer-col, --item-col to choose others); not read: InvoiceNo, Quantity"
    );
    let out = sc.out().join("recs.csv");
    let (code, _, stderr) = cobuy(&["recommend", "--model", s(&sc.model()), "--top", "3", "--out", s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    let rows = read_csv(&out);
    let customers: BTreeSet<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    let items: BTreeSet<&str> = rows[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(customers, BTreeSet::from(["17850", "17851"]));
    assert!(items.is_subset(&BTreeSet::from(["85123A", "71053", "22633"])), "{items:?}");

    // A flag given wins, and the other column is still found (and logged alone).
    let (code, _, stderr) = sc.fit(&f, &["--algorithm", "popularity", "--customer-col", "InvoiceNo"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("columns found by name: item = StockCode (column 2) (--item-col to choose others); not read: Quantity, Customer ID"), "{stderr}");
    // Both given: nothing found, nothing said.
    let (code, _, stderr) =
        sc.fit(&f, &["--algorithm", "popularity", "--customer-col", "4", "--item-col", "StockCode"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("found by name"), "{stderr}");
}

/// A header naming two candidates, none, or no header at all: a usage error that names the
/// candidates (or the header) and the flag, before any row is read. Never a guess.
#[test]
fn columns_that_cannot_be_found_by_name_are_a_usage_error() {
    for (header, flags, column, reason) in [
        (
            "customer_id,user_id,item\n",
            &[][..],
            "customer",
            "several header columns could hold the customer ids: customer_id (column 1), user_id (column 2); \
             choose one with --customer-col NAME",
        ),
        (
            "who,what\n",
            &["--customer-col", "who"][..],
            "item",
            "no header column has a name cobuy knows for the item ids (such as StockCode, product_id, item_id, sku); \
             give --item-col NAME or position; the header's columns are: who, what",
        ),
        (
            "",
            &["--no-header", "--item-col", "2"][..],
            "customer",
            "the file has no header to find the customer column by name; give its position (--customer-col N)",
        ),
    ] {
        let sc = Scratch::new();
        let f = sc.input("p.csv", format!("{header}a,b,c\nd,e,f\n").as_bytes());
        let res = sc.fit(&f, flags);
        assert_row_error(&sc, &res, &f, 1, column, reason);
    }
}

// 3. Unparsable fields.

#[test]
fn unparsable_quantity_names_line_and_column() {
    let sc = Scratch::new();
    let f = data("bad_quantity.csv");
    let res = sc.fit(&f, &["--quantity-col", "quantity"]);
    // The message says how to go on past such rows.
    assert_row_error(
        &sc,
        &res,
        &f,
        4,
        "quantity",
        "\"abc\" is not a number (--skip-invalid skips such rows, counted, into a rejects file)",
    );
}

#[test]
fn unparsable_date_names_line_and_column() {
    let sc = Scratch::new();
    let f = data("bad_date.csv");
    let res = sc.fit(&f, &["--quantity-col", "quantity", "--time-col", "date"]);
    assert_row_error(&sc, &res, &f, 3, "date", "\"12/09/2011\" is not a date or time");
}

#[test]
fn unparsable_rating_names_line_and_column() {
    let sc = Scratch::new();
    let f = data("bad_rating.csv");
    let res = sc.fit(&f, &["--rating-col", "rating", "--min-value", "4"]);
    assert_row_error(&sc, &res, &f, 5, "rating", "\"five\" is not a number");
}

#[test]
fn line_number_counts_newlines_inside_quoted_fields() {
    // The first row spans lines 2-4 (a quoted item id with two newlines); the bad row is on line 6.
    let sc = Scratch::new();
    let f = data("quoted_newline.csv");
    let res = sc.fit(&f, &["--quantity-col", "quantity"]);
    assert_row_error(&sc, &res, &f, 6, "quantity", "\"abc\" is not a number");
}

#[test]
fn line_number_is_right_with_crlf_line_ends() {
    let sc = Scratch::new();
    let f = sc.input("crlf.csv", b"customer,item,quantity\r\nc1,apple,1\r\nc2,bread,2\r\nc3,cheese,abc\r\n");
    let res = sc.fit(&f, &["--quantity-col", "quantity"]);
    // The message says how to go on past such rows.
    assert_row_error(
        &sc,
        &res,
        &f,
        4,
        "quantity",
        "\"abc\" is not a number (--skip-invalid skips such rows, counted, into a rejects file)",
    );
}

#[test]
fn line_number_is_right_after_a_blank_line() {
    let sc = Scratch::new();
    let f = sc.input("blank.csv", b"customer,item,quantity\nc1,apple,1\n\nc2,bread,abc\n");
    let res = sc.fit(&f, &["--quantity-col", "quantity"]);
    // The message says how to go on past such rows.
    assert_row_error(
        &sc,
        &res,
        &f,
        4,
        "quantity",
        "\"abc\" is not a number (--skip-invalid skips such rows, counted, into a rejects file)",
    );
}

// 4. Invalid UTF-8.

#[test]
fn invalid_utf8_in_customer_id() {
    let sc = Scratch::new();
    let f = sc.input("utf8_customer.csv", b"customer,item\nc1,apple\nc\xff2,bread\nc3,cheese\n");
    let res = sc.fit(&f, &["--customer-col", "customer", "--item-col", "item"]);
    assert_row_error(&sc, &res, &f, 3, "customer", "invalid UTF-8 at byte 1 of the field");
}

#[test]
fn invalid_utf8_in_item_id() {
    let sc = Scratch::new();
    let f = sc.input("utf8_item.csv", b"customer,item\nc1,apple\nc2,bread\nc3,ch\xe9ese\n");
    let res = sc.fit(&f, &["--customer-col", "customer", "--item-col", "item"]);
    assert_row_error(&sc, &res, &f, 4, "item", "invalid UTF-8 at byte 2 of the field");
}

// 5. Damaged gzip.

fn assert_gzip_error(sc: &Scratch, f: &Path) {
    let (code, _, stderr) = sc.fit(f, &["--quantity-col", "quantity"]);
    assert_eq!(code, 2, "exit code for {}; stderr:\n{stderr}", s(f));
    let err = error_line(&stderr);
    assert!(err.starts_with(&format!("{}:", s(f))), "the error should name the file: {err:?}");
    assert!(err.contains("gzip"), "the error should say gzip: {err:?}");
    sc.assert_nothing_written();
}

#[test]
fn gzip_input_is_read() {
    // The baseline for the damaged-gzip tests: the intact stream fits.
    let sc = Scratch::new();
    let f = sc.input("good.csv.gz", &gzip(&many_rows()));
    let (code, _, stderr) = sc.fit(&f, &["--quantity-col", "quantity"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows_summary(&stderr), (600, BTreeMap::from([("purchases".to_string(), 600)])));
    assert!(sc.model().exists());
}

#[test]
fn truncated_gzip_is_rejected() {
    let sc = Scratch::new();
    let gz = gzip(&many_rows());
    let half = sc.input("half.csv.gz", &gz[..gz.len() / 2]);
    assert_gzip_error(&sc, &half);
    // Cut inside the 8-byte trailer: all the data decodes, the checksum is missing.
    let tail = sc.input("tail.csv.gz", &gz[..gz.len() - 3]);
    assert_gzip_error(&sc, &tail);
}

#[test]
fn corrupted_gzip_is_rejected() {
    let sc = Scratch::new();
    let gz = gzip(&many_rows());
    // The first deflate block header (right after the 10-byte gzip header): block type 3 is reserved.
    let mut bad_block = gz.clone();
    bad_block[10] |= 0b110;
    let f = sc.input("bad_block.csv.gz", &bad_block);
    assert_gzip_error(&sc, &f);
    // A flipped CRC-32 in the trailer.
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    let f = sc.input("bad_crc.csv.gz", &bad_crc);
    assert_gzip_error(&sc, &f);
}

// 6-7. Structural row problems.

#[test]
fn row_with_too_few_fields() {
    let sc = Scratch::new();
    let f = data("short_row.csv");
    let res = sc.fit(&f, &["--quantity-col", "quantity"]);
    assert_row_error(&sc, &res, &f, 4, "quantity", "the row has 2 fields, this column is field 3");
}

#[test]
fn empty_item_id() {
    let sc = Scratch::new();
    let f = data("empty_item.csv");
    let res = sc.fit(&f, &["--quantity-col", "quantity"]);
    assert_row_error(&sc, &res, &f, 4, "item", "the item id is empty");
}

// 8. Returns.

#[test]
fn returns_reject_stops_at_a_negative_quantity() {
    let sc = Scratch::new();
    let f = data("returns.csv");
    let res = sc.fit(&f, &["--quantity-col", "quantity", "--returns", "reject"]);
    assert_row_error(&sc, &res, &f, 6, "quantity", "negative quantity -2");
}

#[test]
fn returns_ignore_counts_ignored_returns() {
    let sc = Scratch::new();
    let f = data("returns.csv");
    let (code, _, stderr) = sc.fit(&f, &["--quantity-col", "quantity", "--returns", "ignore"]);
    assert_eq!(code, 0, "{stderr}");
    let (n, buckets) = rows_summary(&stderr);
    assert_eq!(n, 9);
    assert_eq!(buckets, BTreeMap::from([("purchases".into(), 7), ("returns ignored".into(), 2)]));
    assert!(stderr.contains("0 netted to nothing by returns"), "{stderr}");
    assert!(sc.model().exists());
}

#[test]
fn returns_net_nets_them() {
    let sc = Scratch::new();
    let f = data("returns.csv");
    let (code, _, stderr) = sc.fit(&f, &["--quantity-col", "quantity", "--returns", "net"]);
    assert_eq!(code, 0, "{stderr}");
    let (n, buckets) = rows_summary(&stderr);
    assert_eq!(n, 9);
    assert_eq!(buckets, BTreeMap::from([("purchases".into(), 7), ("returns netted".into(), 2)]));
    // c1 bought 2 apples and returned 2; c3 returned bread it never bought here.
    assert!(stderr.contains("2 netted to nothing by returns"), "{stderr}");
    assert!(sc.model().exists());
    // net is the default.
    let sc2 = Scratch::new();
    let (code2, _, stderr2) = sc2.fit(&f, &["--quantity-col", "quantity"]);
    assert_eq!(code2, 0, "{stderr2}");
    assert_eq!(rows_summary(&stderr2), (n, buckets));
}

// 9. Skipping invalid rows.

/// Expected rejects of `invalid_rows.csv`: (line, column, reason fragment, record).
const INVALID_ROWS_REJECTS: [(&str, &str, &str, &str); 5] = [
    ("3", "quantity", "\"abc\" is not a number", "c2,bread,abc,2011-09-12"),
    ("4", "item", "the item id is empty", "c3,,1,2011-09-13"),
    ("6", "quantity", "the row has 2 fields", "c4,cheese"),
    ("7", "date", "\"12/09/2011\" is not a date or time", "c2,apple,1,12/09/2011"),
    ("9", "quantity", "empty, expected a number", "c2,cheese,,2011-09-15"),
];

fn check_rejects_file(path: &Path) {
    let rows = read_csv(path);
    assert_eq!(rows[0], ["line", "column", "reason", "record"], "rejects header");
    assert_eq!(rows.len() - 1, INVALID_ROWS_REJECTS.len(), "one row per rejected line: {rows:?}");
    for (row, (line, column, reason, record)) in rows[1..].iter().zip(INVALID_ROWS_REJECTS) {
        assert_eq!(row.len(), 4, "{row:?}");
        assert_eq!(row[0], line, "{row:?}");
        assert_eq!(row[1], column, "{row:?}");
        assert!(row[2].contains(reason), "expected {reason:?} in {row:?}");
        assert_eq!(row[3], record, "{row:?}");
    }
}

fn check_skip_invalid_log(stderr: &str) {
    let (n, buckets) = rows_summary(stderr);
    assert_eq!(n, 9);
    assert_eq!(buckets, BTreeMap::from([("purchases".into(), 4), ("rejected".into(), 5)]));
    assert_eq!(
        rejected_by_reason(stderr),
        "1 empty item id, 1 empty number, 1 invalid number, 1 invalid time, 1 missing field"
    );
}

#[test]
fn skip_invalid_writes_the_rejects_file() {
    let sc = Scratch::new();
    let f = data("invalid_rows.csv");
    let rejects = sc.out().join("R.csv");
    let (code, _, stderr) =
        sc.fit(&f, &["--quantity-col", "quantity", "--time-col", "date", "--skip-invalid", "--rejects", s(&rejects)]);
    assert_eq!(code, 0, "{stderr}");
    check_skip_invalid_log(&stderr);
    check_rejects_file(&rejects);
    assert!(stderr.contains(&format!("; written to {}", s(&rejects))), "{stderr}");
    assert!(sc.model().exists());
    // Commands writing an offer file put the rejects beside it by default, and say so.
    let out = sc.out().join("rules.csv");
    let (code, _, stderr) = cobuy(&[
        "rules",
        "--purchases",
        s(&f),
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--quantity-col",
        "quantity",
        "--time-col",
        "date",
        "--skip-invalid",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let beside = sc.out().join("rules.csv.rejects.csv");
    assert!(stderr.contains(&format!("; written to {}", s(&beside))), "{stderr}");
    check_rejects_file(&beside);
}

#[test]
fn skip_invalid_defaults_the_rejects_file_next_to_the_model() {
    let sc = Scratch::new();
    let f = data("invalid_rows.csv");
    let (code, _, stderr) = sc.fit(&f, &["--quantity-col", "quantity", "--time-col", "date", "--skip-invalid"]);
    assert_eq!(code, 0, "{stderr}");
    check_skip_invalid_log(&stderr);
    let rejects = sc.out().join("model.cobuy.rejects.csv");
    check_rejects_file(&rejects);
    assert!(sc.model().exists());
}

// 10. Guests.

#[test]
fn guest_rows_are_counted_and_left_out() {
    let sc = Scratch::new();
    let f = data("guests.csv");
    let (code, _, stderr) = sc.fit(&f, &["--quantity-col", "quantity"]);
    assert_eq!(code, 0, "{stderr}");
    let (n, buckets) = rows_summary(&stderr);
    assert_eq!(n, 7);
    assert_eq!(buckets, BTreeMap::from([("purchases".into(), 4), ("without a customer id".into(), 3)]));
    assert!(stderr.contains("2 customers (2 with purchases left), 3 items"), "{stderr}");
    let (code, stdout, stderr) = cobuy(&["inspect", "--json", s(&sc.model())]);
    assert_eq!(code, 0, "{stderr}");
    let info: serde_json::Value = serde_json::from_str(&stdout).expect("inspect --json prints JSON");
    assert_eq!(info["customers"], 2, "{stdout}");

    // No blank or whitespace-only customer made it into the model.
    let out = sc.out().join("recs.csv");
    let (code, _, stderr) = cobuy(&["recommend", "--model", s(&sc.model()), "--top", "3", "--out", s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    let customers: BTreeSet<String> = read_csv(&out)[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(customers, BTreeSet::from(["c1".to_string(), "c2".to_string()]));
}

// 11. MovieLens-style round trip.

#[test]
fn movielens_tsv_fit_and_recommend() {
    let sc = Scratch::new();
    let f = data("ml_small.tsv");
    let (code, _, stderr) = sc.fit(
        &f,
        &[
            "--no-header",
            "--delimiter",
            "\\t",
            "--customer-col",
            "1",
            "--item-col",
            "2",
            "--rating-col",
            "3",
            "--time-col",
            "4",
            "--min-value",
            "4",
        ],
    );
    assert_eq!(code, 0, "{stderr}");

    // What the fixture holds: every (user, item) rated, at any rating.
    let text = fs::read_to_string(&f).expect("fixture");
    let mut rated: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let (mut liked, mut disliked) = (0, 0);
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "fixture line {line:?}");
        rated.entry(fields[0].parse().expect("numeric user")).or_default().insert(fields[1].to_string());
        if fields[2].parse::<f64>().expect("rating") >= 4.0 {
            liked += 1;
        } else {
            disliked += 1;
        }
    }
    let (n, buckets) = rows_summary(&stderr);
    assert_eq!(n, liked + disliked);
    assert_eq!(buckets, BTreeMap::from([("purchases".into(), liked), ("below the minimum value".into(), disliked)]));

    let out = sc.out().join("recs.csv");
    let (code, _, stderr) = cobuy(&["recommend", "--model", s(&sc.model()), "--top", "5", "--out", s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    let rows = read_csv(&out);
    assert_eq!(rows[0], ["customer_id", "rank", "item_id", "score", "source"]);
    assert!(rows.len() > 1, "no recommendations");

    let mut order: Vec<u64> = Vec::new();
    let mut ranks: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut knn_rows = 0;
    for r in &rows[1..] {
        assert_eq!(r.len(), 5, "{r:?}");
        let user: u64 = r[0].parse().expect("numeric customer id");
        let rank: usize = r[1].parse().expect("numeric rank");
        let seen = rated.get(&user).unwrap_or_else(|| panic!("customer {user} is not in the input"));
        assert!(!seen.contains(&r[2]), "customer {user} was recommended item {} which they rated: {r:?}", r[2]);
        let score: f64 = r[3].parse().expect("numeric score");
        assert!(score.is_finite() && score >= 0.0, "{r:?}");
        assert!(r[4] == "item-knn" || r[4] == "popular", "{r:?}");
        knn_rows += usize::from(r[4] == "item-knn");
        if order.last() != Some(&user) {
            order.push(user);
        }
        ranks.entry(user).or_default().push(rank);
    }
    assert!(knn_rows > 0, "co-occurrence should give item-knn rows");
    // Each customer in one block, blocks in numeric id order (so 10 after 9, 100 last).
    let mut sorted = order.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(order, sorted, "customers out of natural order or split");
    assert_eq!(order, rated.keys().copied().collect::<Vec<_>>(), "every user gets recommendations");
    for (user, r) in &ranks {
        assert!(!r.is_empty() && r.len() <= 5, "customer {user}: {r:?}");
        assert_eq!(*r, (1..=r.len()).collect::<Vec<_>>(), "customer {user}: ranks {r:?}");
    }
}

// 12. Option checks.

fn assert_usage_error(sc: &Scratch, extra: &[&str], message: &str) {
    let (code, _, stderr) = sc.fit(&data("basic.csv"), extra);
    assert_eq!(code, 2, "{extra:?}: {stderr}");
    let err = error_line(&stderr);
    assert!(err.contains(message), "{extra:?}: expected {message:?} in {err:?}");
    sc.assert_nothing_written();
}

#[test]
fn min_value_needs_a_rating_column() {
    let sc = Scratch::new();
    assert_usage_error(&sc, &["--min-value", "4"], "needs a rating column (--rating-col)");
}

#[test]
fn unknown_delimiter_is_rejected() {
    let sc = Scratch::new();
    assert_usage_error(&sc, &["--delimiter", "x"], "--delimiter takes , \\t ; | or ::, got \"x\"");
}

#[test]
fn rejects_needs_skip_invalid() {
    let sc = Scratch::new();
    let rejects = sc.out().join("R.csv");
    assert_usage_error(&sc, &["--rejects", s(&rejects)], "(--skip-invalid)");
    assert!(!rejects.exists());
}

#[test]
fn unknown_weighting_is_rejected() {
    let sc = Scratch::new();
    assert_usage_error(&sc, &["--weighting", "cosine"], "--weighting takes");
}

#[test]
fn zero_neighbors_is_rejected() {
    let sc = Scratch::new();
    assert_usage_error(&sc, &["--neighbors", "0"], "neighbors must be between 1 and");
}

// 13. Missing input.

#[test]
fn nonexistent_purchases_file() {
    let sc = Scratch::new();
    let f = sc.dir.path().join("in").join("no_such_file.csv");
    let (code, _, stderr) = sc.fit(&f, &[]);
    assert_eq!(code, 2, "{stderr}");
    let err = error_line(&stderr);
    assert!(err.starts_with(&format!("{}: cannot open: ", s(&f))), "{err:?}");
    sc.assert_nothing_written();
}

#[test]
fn nonexistent_purchases_file_reason_is_printed_once() {
    let sc = Scratch::new();
    let f = sc.dir.path().join("in").join("no_such_file.csv");
    let (code, _, stderr) = sc.fit(&f, &[]);
    assert_eq!(code, 2, "{stderr}");
    let err = error_line(&stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err:?}");
}

// 14. Row accounting.

#[test]
fn summary_accounts_for_every_row() {
    let expected_net = BTreeMap::from([
        ("purchases".to_string(), 7),
        ("returns netted".to_string(), 2),
        ("below the minimum value".to_string(), 1),
        ("without a customer id".to_string(), 2),
        ("with quantity zero".to_string(), 1),
        ("rejected".to_string(), 1),
    ]);
    let mut expected_ignore = expected_net.clone();
    expected_ignore.remove("returns netted");
    expected_ignore.insert("returns ignored".to_string(), 2);
    let data_rows = fs::read_to_string(data("mix.csv")).expect("fixture").lines().count() as u64 - 1;

    for (returns, expected) in [("net", expected_net), ("ignore", expected_ignore)] {
        let sc = Scratch::new();
        let (code, _, stderr) = sc.fit(
            &data("mix.csv"),
            &[
                "--quantity-col",
                "quantity",
                "--rating-col",
                "rating",
                "--min-value",
                "3",
                "--returns",
                returns,
                "--skip-invalid",
            ],
        );
        assert_eq!(code, 0, "--returns {returns}: {stderr}");
        let (n, buckets) = rows_summary(&stderr);
        assert_eq!(n, data_rows, "--returns {returns}");
        assert_eq!(buckets.values().sum::<u64>(), n, "--returns {returns}: {buckets:?}");
        assert_eq!(buckets, expected, "--returns {returns}");
    }
}

// 15. Scoring a customer list.

#[test]
fn recommend_customer_list_with_an_unknown_id() {
    let sc = Scratch::new();
    let (code, _, stderr) = sc.fit(&data("basic.csv"), &["--quantity-col", "quantity"]);
    assert_eq!(code, 0, "{stderr}");
    let list = sc.input("customers.txt", b"c3\nnobody\nc1\n");
    let out = sc.out().join("recs.csv");
    let (code, _, stderr) =
        cobuy(&["recommend", "--model", s(&sc.model()), "--top", "2", "--out", s(&out), "--customers", s(&list)]);
    assert_eq!(code, 0, "{stderr}");
    let note = stderr
        .lines()
        .find(|l| l.contains("not in the model"))
        .unwrap_or_else(|| panic!("no note about the unknown id:\n{stderr}"));
    assert!(note.starts_with(&format!("cobuy: {}: 1 of its 3 customer ids is not in the model", s(&list))), "{note:?}");
    assert!(note.contains("\"nobody\" (line 2)"), "{note:?}");

    let rows = read_csv(&out);
    assert_eq!(rows[0], ["customer_id", "rank", "item_id", "score", "source"]);
    let mut order: Vec<&str> = Vec::new();
    for r in &rows[1..] {
        if order.last() != Some(&r[0].as_str()) {
            order.push(&r[0]);
        }
    }
    assert_eq!(order, ["c3", "c1"]);
}

#[test]
fn an_unclosed_quote_stops_the_run_even_when_skipping() {
    let sc = Scratch::new();
    let mut text = String::from("customer,item,quantity\n");
    for i in 0..1000 {
        if i == 9 {
            text.push_str("c9,\"i9,1\n"); // line 11: the quote never closes
        } else {
            text.push_str(&format!("c{i},i{},1\n", i % 7));
        }
    }
    let f = sc.input("unclosed.csv", text.as_bytes());
    let cols = ["--customer-col", "customer", "--item-col", "item", "--quantity-col", "quantity"];
    assert_row_error(&sc, &sc.fit(&f, &cols), &f, 11, "-", "closing quote");
    let mut skipping = cols.to_vec();
    skipping.push("--skip-invalid");
    let (code, _, stderr) = sc.fit(&f, &skipping);
    assert_eq!(code, 2, "{stderr}");
    assert!(error_line(&stderr).contains("closing quote"), "{stderr}");
}

#[test]
fn a_quote_still_open_at_the_end_is_named_by_its_line_in_every_reader() {
    // The quote opens on line 4 and never closes: the rest of the file would be one item id.
    let sc = Scratch::new();
    let text = "customer,item,qty\nc1,a,1\nc2,b,2\nc3,\"c,3\nc4,d,4\nc5,e,5\n";
    let f = sc.input("open.csv", text.as_bytes());
    let bare = ["--customer-col", "customer", "--item-col", "item"];
    let with_qty = ["--customer-col", "customer", "--item-col", "item", "--quantity-col", "qty"];
    for cols in [&bare[..], &with_qty[..]] {
        assert_row_error(&sc, &sc.fit(&f, cols), &f, 4, "-", "never closed");
    }
    // Without a final newline, and in a file of one data row.
    let g = sc.input("open-no-newline.csv", b"customer,item\nc1,a\nc2,\"b\nc3,c");
    assert_row_error(&sc, &sc.fit(&g, &bare), &g, 3, "-", "never closed");
    let h = sc.input("open-first.csv", b"customer,item\n\"c1,a\n");
    assert_row_error(&sc, &sc.fit(&h, &bare), &h, 2, "-", "never closed");
    // A closed quoted field with newlines at the very end is fine.
    let ok = sc.input("closed.csv", b"customer,item\nc1,a\nc2,\"b\nb\"");
    let (code, _, stderr) = sc.fit(&ok, &bare);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows_summary(&stderr).0, 2, "{stderr}");

    // Skipping: one rejected record, whose text (every swallowed line) goes to the rejects file.
    let mut skipping = bare.to_vec();
    skipping.push("--skip-invalid");
    let (code, _, stderr) = sc.fit(&f, &skipping);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows_summary(&stderr), (3, BTreeMap::from([("purchases".into(), 2), ("rejected".into(), 1)])));
    assert!(rejected_by_reason(&stderr).contains("1 unclosed quote"), "{stderr}");
    let rejects = fs::read_to_string(sc.out().join("model.cobuy.rejects.csv")).expect("rejects file");
    assert!(rejects.starts_with("line,column,reason,record\n4,-,"), "{rejects}");
    assert!(rejects.contains("c4,d,4\nc5,e,5"), "{rejects}");

    // The unmerged log (rules, eval) and the catalogue read through the same reader.
    let (code, _, stderr) = cobuy(&[
        "rules",
        "--purchases",
        s(&f),
        "--out",
        s(&sc.out().join("rules.csv")),
        "--customer-col",
        "customer",
        "--item-col",
        "item",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(error_line(&stderr).starts_with(&format!("{}:4: ", s(&f))), "{stderr}");
    let buys = sc.input("buys.csv", b"customer,item,time\nc1,a,2024-01-01\nc1,b,2024-02-01\n");
    let cat = sc.input("catalog.csv", b"item_id,category,price\na,x,1\nb,\"x,2\n");
    let (code, _, stderr) = cobuy(&[
        "up-sell",
        "--purchases",
        s(&buys),
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--time-col",
        "time",
        "--catalog",
        s(&cat),
        "--catalog-item-col",
        "item_id",
        "--catalog-category-cols",
        "category",
        "--catalog-price-col",
        "price",
        "--out",
        s(&sc.out().join("u.csv")),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(error_line(&stderr).starts_with(&format!("{}:3: column -: a quoted field", s(&cat))), "{stderr}");
}

#[test]
fn a_quantity_out_of_range_is_a_bad_row() {
    let sc = Scratch::new();
    let f = sc.input("huge.csv", b"customer,item,quantity\na,x,1\nb,x,1e300\nc,y,1e-50\n");
    let cols = ["--customer-col", "customer", "--item-col", "item", "--quantity-col", "quantity"];
    assert_row_error(&sc, &sc.fit(&f, &cols), &f, 3, "quantity", "out of range");
    let mut skipping = cols.to_vec();
    skipping.push("--skip-invalid");
    let (code, _, stderr) = sc.fit(&f, &skipping);
    assert_eq!(code, 0, "{stderr}");
    assert!(rejected_by_reason(&stderr).contains("2 quantity out of range"), "{stderr}");
    // The model that was written loads.
    let (code, _, stderr) = cobuy(&["inspect", s(&sc.model())]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_column_name_matching_several_columns_is_ambiguous() {
    let sc = Scratch::new();
    let f = sc.input("dup.csv", b"customer,item,Qty,QTY\na,x,1,2\n");
    let res = sc.fit(&f, &["--customer-col", "customer", "--item-col", "item", "--quantity-col", "qty"]);
    assert_eq!(res.0, 2, "{}", res.2);
    let err = error_line(&res.2);
    assert!(err.contains("column qty: ambiguous") && err.contains("Qty, QTY"), "{err}");
    sc.assert_nothing_written();
}

/// The three MovieLens layouts (100K `u.data`, 1M/10M `ratings.dat` with `::`, 20M/25M/latest
/// `ratings.csv`) holding the same ratings fit the same model: the same recommendations.
#[test]
fn movielens_layouts_read_alike() {
    let sc = Scratch::new();
    let mut outputs = Vec::new();
    for (file, flags) in [
        (
            "ml_small.tsv",
            &[
                "--no-header",
                "--delimiter",
                "\\t",
                "--customer-col",
                "1",
                "--item-col",
                "2",
                "--rating-col",
                "3",
                "--time-col",
                "4",
            ][..],
        ),
        // `::` is sniffed, and can be given.
        (
            "ml_small.dat",
            &["--no-header", "--customer-col", "1", "--item-col", "2", "--rating-col", "3", "--time-col", "4"][..],
        ),
        (
            "ml_small.dat",
            &[
                "--no-header",
                "--delimiter",
                "::",
                "--customer-col",
                "1",
                "--item-col",
                "2",
                "--rating-col",
                "3",
                "--time-col",
                "4",
            ][..],
        ),
        (
            "ml_small_ratings.csv",
            &["--customer-col", "userId", "--item-col", "movieId", "--rating-col", "rating", "--time-col", "timestamp"]
                [..],
        ),
    ] {
        let args: Vec<&str> = flags.iter().copied().chain(["--min-value", "4"]).collect();
        let (code, _, stderr) = sc.fit(&data(file), &args);
        assert_eq!(code, 0, "{file}: {stderr}");
        assert!(stderr.contains("59 read"), "{file}: every row read: {stderr}");
        let out = sc.out().join("ml.csv");
        let o = cobuy(&["recommend", "--model", s(&sc.model()), "--top", "5", "--out", s(&out)]);
        assert_eq!(o.0, 0, "{file}: {}", o.2);
        outputs.push((file, fs::read_to_string(&out).unwrap()));
    }
    for (file, text) in &outputs[1..] {
        assert_eq!(text, &outputs[0].1, "{file} recommends as u.data does");
    }
    assert!(outputs[0].1.lines().count() > 10);
}

/// `cobuy inspect` counts a model's pairs as the fit log's summary does: a buys x and y,
/// b buys x and returns it, c returns y without a purchase; the two pairs returns netted to
/// nothing are the pairs seen without a purchase (ingest: "2 netted to nothing by returns"),
/// not a third kind.
#[test]
fn inspect_counts_pairs_as_the_ingest_summary_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("p.csv"), "customer,item,quantity\na,x,1\na,y,2\nb,x,1\nb,x,-1\nc,y,-1\n").unwrap();
    let fit = ["fit", "--purchases", "p.csv", "--quantity-col", "quantity", "--algorithm", "popularity"];
    let o = crate::common::run_cobuy(d, &[&fit[..], &["--model", "m.cobuy"]].concat());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(err.contains(": 2 purchases, 2 netted to nothing by returns, 0 seen only"), "{err}");
    let o = crate::common::run_cobuy(d, &["inspect", "m.cobuy"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("customers   3 (1 with purchases)\n"), "{out}");
    assert!(
        out.contains(
            "purchases   2 customer-item pairs; 2 pairs seen without a purchase left (returns netted to nothing, or \
             rated below the minimum): never recommended\n"
        ),
        "{out}"
    );
}
