//! Reading a purchases file in chunks on several threads gives what one reader gives: random
//! CSVs (quoted ids with commas, doubled quotes and line breaks, CRLF, blank lines, bad rows,
//! a quote left open at the end) read with 1 and 4 threads and chunks down to one byte give
//! the same log, summary, rejects file and first error, and those match what the generator
//! knows about each record: which rows are kept, and the line each bad row starts on.

use std::path::Path;

use cobuy::ingest::{
    Columns, CustomerSample, DEFAULT_CHUNK_BYTES, IngestOptions, read_log, read_log_sample_with_progress,
    read_purchases,
};
use proptest::prelude::*;

/// Reads `path` in chunks of each size on 1 and 4 threads; every outcome must equal the first.
fn same_for_any_chunking(path: &Path, dir: &Path) -> Result<Outcome, TestCaseError> {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let reference = one.install(|| outcome(path, dir, DEFAULT_CHUNK_BYTES, "ref"));
    for chunk in [1, 3, 16, 61, DEFAULT_CHUNK_BYTES] {
        for (pool, threads) in [(&one, 1), (&four, 4)] {
            let got = pool.install(|| outcome(path, dir, chunk, &format!("{chunk}-{threads}")));
            prop_assert_eq!(&got, &reference, "chunks of {} bytes on {} threads", chunk, threads);
        }
    }
    Ok(reference)
}

/// One generated record (or blank line).
#[derive(Debug, Clone)]
enum Rec {
    /// A purchase (quantity 0: counted, left out; below 0: a return), its ids plain or quoted.
    Good {
        c: u8,
        i: u8,
        q: i8,
        day: u8,
        quoting: u8,
    },
    /// No customer id.
    Guest {
        i: u8,
    },
    BadQuantity {
        c: u8,
    },
    ExtraField {
        c: u8,
    },
    /// Text after a closing quote: `"i1"x`.
    Stray {
        c: u8,
    },
    Blank,
}

fn rec() -> impl Strategy<Value = Rec> {
    prop_oneof![
        8 => (0u8..12, 0u8..9, -2i8..4, 0u8..40, 0u8..5).prop_map(|(c, i, q, day, quoting)| Rec::Good { c, i, q, day, quoting }),
        1 => (0u8..9).prop_map(|i| Rec::Guest { i }),
        1 => (0u8..12).prop_map(|c| Rec::BadQuantity { c }),
        1 => (0u8..12).prop_map(|c| Rec::ExtraField { c }),
        1 => (0u8..12).prop_map(|c| Rec::Stray { c }),
        1 => Just(Rec::Blank),
    ]
}

/// What the file should read as: kept rows (customer, item, quantity) in order, the lines
/// of the rejected rows, and the number of records.
#[derive(Debug, Default)]
struct Expected {
    kept: Vec<(String, String, f64)>,
    rejected: Vec<u64>,
    records: u64,
}

/// A field as a CSV writer would write it: quoted with inner quotes doubled when `quote`.
fn field(text: &str, quote: bool) -> String {
    if quote { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// The file's bytes and what it should read as.
fn render(recs: &[Rec], crlf: bool, unclosed_tail: bool) -> (Vec<u8>, Expected) {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut text = format!("customer,item,quantity,time,basket{eol}");
    let mut line = 2u64;
    let mut want = Expected::default();
    for r in recs {
        let start = line;
        let row = match r {
            Rec::Blank => {
                text.push_str(eol);
                line += 1;
                continue;
            }
            &Rec::Good { c, i, q, day, quoting } => {
                // Ids that need quotes: a comma, a doubled quote, a line break (LF or CRLF).
                let (cid, iid) = match quoting {
                    0 | 1 => (format!("c{c}"), format!("i{i}")),
                    2 => (format!("c{c},x"), format!("i{i}")),
                    3 => (format!("c{c}"), format!("i{i}\"q")),
                    _ => (format!("c{c}{eol}y"), format!("i{i}\nz")),
                };
                let time = if day == 39 { "2999-01-01".to_string() } else { format!("2023-01-{:02}", 1 + day % 28) };
                if q != 0 {
                    want.kept.push((cid.clone(), iid.clone(), f64::from(q)));
                }
                let quote = quoting >= 1;
                format!("{},{},{q},{time},b{c}-{}", field(&cid, quote), field(&iid, quote), day / 7)
            }
            Rec::Guest { i } => format!(",i{i},1,2023-02-01,g"),
            Rec::BadQuantity { c } => {
                want.rejected.push(start);
                format!("c{c},i1,lots,2023-02-01,b")
            }
            Rec::ExtraField { c } => {
                want.rejected.push(start);
                format!("c{c},i2,1,2023-02-01,b,extra")
            }
            Rec::Stray { c } => {
                want.rejected.push(start);
                format!("c{c},\"i3\"x,1,2023-02-01,b")
            }
        };
        want.records += 1;
        line += row.matches('\n').count() as u64 + 1;
        text.push_str(&row);
        text.push_str(eol);
    }
    if unclosed_tail {
        want.records += 1;
        want.rejected.push(line);
        text.push_str(&format!("c1,\"never closed{eol}i1,1,2023-01-01,b{eol}"));
    }
    (text.into_bytes(), want)
}

fn options(chunk_bytes: usize) -> IngestOptions {
    let mut cols = Columns::new("customer", "item");
    cols.quantity = Some("quantity".into());
    cols.time = Some("time".into());
    cols.basket = Some("basket".into());
    let mut o = IngestOptions::new(cols);
    o.chunk_bytes = chunk_bytes;
    o
}

/// A log as read: customer, item and basket ids, the rows and the summary (printed).
type LogRead = (Vec<String>, Vec<String>, Option<Vec<String>>, String, String);

/// Everything a read gives that could differ: the log (ids, rows), the summary and the
/// rejects file; the merged purchases (ids, counts) or their first error; a sampled log.
#[derive(Debug, PartialEq)]
struct Outcome {
    log: Result<LogRead, String>,
    rejects: String,
    merged: Result<(String, String), String>,
    sampled: Result<(Vec<String>, String, Option<u64>), String>,
}

fn rank(id: &str) -> u64 {
    id.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

fn outcome(path: &Path, dir: &Path, chunk_bytes: usize, tag: &str) -> Outcome {
    let rejects_path = dir.join(format!("rejects-{tag}.csv"));
    let mut skip = options(chunk_bytes);
    skip.skip_invalid = true;
    skip.rejects = Some(rejects_path.clone());
    let log = read_log(path, &skip).map_err(|e| e.to_string()).map(|(log, sum)| {
        let ids = |t: &cobuy::ids::IdTable| t.iter().map(String::from).collect::<Vec<_>>();
        (
            ids(&log.customers),
            ids(&log.items),
            log.baskets.as_ref().map(ids),
            format!("{:?}", log.rows),
            format!("{sum:?}"),
        )
    });
    let rejects = std::fs::read_to_string(&rejects_path).unwrap_or_default();
    let merged = read_purchases(path, &options(chunk_bytes))
        .map(|r| {
            (format!("{:?} {:?}", r.interactions.customers(), r.interactions.counts()), format!("{:?}", r.summary))
        })
        .map_err(|e| e.to_string());
    let sample = CustomerSample { max: 3, rank };
    let sampled = read_log_sample_with_progress(path, &skip, sample, &mut |_| {})
        .map(|r| {
            let rows = r.log.rows.iter().map(|x| format!("{} {:?}", r.log.customers.id(x.customer.0), x)).collect();
            (rows, format!("{:?}", r.summary), r.sampled_from)
        })
        .map_err(|e| e.to_string());
    Outcome { log, rejects, merged, sampled }
}

/// The error of a file left with no purchases: every purchase cancelled by returns, or no
/// record at all (blank lines only).
fn no_purchases(e: &str, want: &Expected) -> bool {
    e.contains("no purchases left") || (want.records == 0 && e.contains("the file has a header but no rows"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_chunking_on_any_threads_reads_what_the_generator_wrote(
        recs in proptest::collection::vec(rec(), 1..40),
        crlf in any::<bool>(),
        unclosed_tail in any::<bool>(),
    ) {
        let (bytes, want) = render(&recs, crlf, unclosed_tail);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, &bytes).unwrap();
        let reference = same_for_any_chunking(&path, dir.path())?;

        // The reference against the generator.
        match &reference.log {
            Ok((customers, items, _, _, sum)) => {
                let log = read_log(&path, &{ let mut o = options(DEFAULT_CHUNK_BYTES); o.skip_invalid = true; o }).unwrap().0;
                let rows: Vec<(String, String, f64)> = log.rows.iter()
                    .map(|r| (customers[r.customer.0 as usize].clone(), items[r.item.0 as usize].clone(), r.quantity))
                    .collect();
                prop_assert_eq!(&rows, &want.kept);
                prop_assert!(sum.contains(&format!("rows_read: {},", want.records)), "{}", sum);
            }
            // Returns may cancel every purchase; blank lines alone are no rows at all.
            Err(e) => prop_assert!(no_purchases(e, &want), "{}", e),
        }
        let mut r = csv::Reader::from_reader(reference.rejects.as_bytes());
        let lines: Vec<u64> = r.records().map(|x| x.unwrap()[0].parse().unwrap()).collect();
        if reference.log.is_ok() {
            prop_assert_eq!(&lines, &want.rejected);
        }
        match (want.rejected.first(), &reference.merged) {
            (Some(first), Err(e)) => prop_assert!(e.starts_with(&format!("{}:{first}:", path.display())), "{}", e),
            (Some(_), Ok(_)) => prop_assert!(false, "a bad row was not refused"),
            (None, Err(e)) => prop_assert!(no_purchases(e, &want), "{}", e),
            (None, Ok(_)) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A gzip stream cut short: the rows before the damage, then the error at the same line,
    /// whatever the chunking (the record the damage cuts is dropped, in chunks with quotes
    /// and without).
    #[test]
    fn a_damaged_gzip_stream_fails_at_the_same_line_for_any_chunking(
        recs in proptest::collection::vec(rec(), 1..40),
        crlf in any::<bool>(),
        cut in 0.3f64..0.95,
    ) {
        use std::io::Write;
        let (bytes, _) = render(&recs, crlf, false);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        let gz = enc.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv.gz");
        std::fs::write(&path, &gz[..(gz.len() as f64 * cut) as usize]).unwrap();
        let reference = same_for_any_chunking(&path, dir.path())?;
        prop_assert!(reference.merged.is_err());
    }
}
