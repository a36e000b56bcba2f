//! The standing hostile-input suite: valid purchase and catalogue files damaged at random
//! (bytes inserted, deleted and flipped, lines cut short, the gzip stream itself damaged)
//! and fed to every command that reads them. Whatever the damage: no panic, exit 0 or 2
//! (never 1, 101 or a signal), the input untouched, and when the run succeeds every data
//! row is in exactly one bucket of its summary and every rejected row in the rejects file.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Output;

use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;

use crate::common::{rows_summary, run_cobuy};

/// A valid purchases file: ids, a quoted description that holds commas, quotes and a line
/// break, quantities with returns, prices, times and baskets.
fn purchases() -> String {
    let mut text = String::from("customer,item,description,qty,price,time,basket\n");
    for r in 0..60u32 {
        let (c, i) = (r % 9, (r * 7) % 13);
        let qty = if r % 11 == 5 { -1 } else { 1 + (r % 3) as i32 };
        let desc = match r % 4 {
            0 => format!("\"mug, blue {i}\""),
            1 => format!("\"the \"\"big\"\" one {i}\""),
            2 => format!("\"two\nlines {i}\""),
            _ => format!("plain {i}"),
        };
        let day = 1 + r % 28;
        writeln!(text, "c{c},i{i},{desc},{qty},{}.5,2024-03-{day:02} 10:00:00,b{}", 1 + i % 5, r / 3).unwrap();
    }
    text
}

/// A valid catalogue of the purchases' items.
fn catalogue() -> String {
    let mut text = String::from("item_id,category,price,name\n");
    for i in 0..13u32 {
        writeln!(text, "i{i},cat{},{}.25,\"item, {i}\"", i % 3, 1 + i).unwrap();
    }
    text
}

/// One kind of damage at a position (taken modulo the length).
#[derive(Debug, Clone)]
enum Damage {
    Insert(usize, u8),
    Delete(usize),
    Flip(usize, u8),
    /// Cut the line holding this position short at this position.
    CutLine(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    // Bytes that matter to a CSV reader come up often; any byte may.
    let byte = prop_oneof![
        Just(b','),
        Just(b'"'),
        Just(b'\n'),
        Just(b'\r'),
        Just(b'-'),
        Just(b'e'),
        Just(0u8),
        Just(0xff),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(p, b)| Damage::Insert(p, b)),
        any::<usize>().prop_map(Damage::Delete),
        (any::<usize>(), 1u8..=255).prop_map(|(p, x)| Damage::Flip(p, x)),
        any::<usize>().prop_map(Damage::CutLine),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    if bytes.is_empty() {
        if let Damage::Insert(_, b) = d {
            bytes.push(*b);
        }
        return;
    }
    match *d {
        Damage::Insert(p, b) => bytes.insert(p % (bytes.len() + 1), b),
        Damage::Delete(p) => {
            bytes.remove(p % bytes.len());
        }
        Damage::Flip(p, x) => {
            let p = p % bytes.len();
            bytes[p] ^= x;
        }
        Damage::CutLine(p) => {
            let p = p % bytes.len();
            let end = bytes[p..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |e| p + e);
            bytes.drain(p..end);
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Checks one run: exit 0 or 2, no panic; on success, the rows line adds up and the rejects
/// file holds one record per rejected row.
fn check(out: &Output, what: &str, rejects: Option<&Path>) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(matches!(code, Some(0) | Some(2)), "{what}: exit {code:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: panic\n{stderr}");
    if code == Some(2) {
        let errors = stderr.lines().filter(|l| l.starts_with("cobuy: error: ")).count();
        assert_eq!(errors, 1, "{what}: exit 2 says why in one error line\n{stderr}");
        return;
    }
    let (n, buckets) = rows_summary(&stderr);
    assert_eq!(buckets.values().sum::<u64>(), n, "{what}: the buckets add up to the rows read\n{stderr}");
    let rejected = buckets.get("rejected").copied().unwrap_or(0);
    if let Some(path) = rejects {
        let records = match fs::read(path) {
            Ok(bytes) => csv::ReaderBuilder::new().from_reader(&bytes[..]).byte_records().count() as u64,
            Err(_) => 0,
        };
        assert_eq!(records, rejected, "{what}: one rejects record per rejected row\n{stderr}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic_and_every_row_is_accounted_for(
        damages in prop::collection::vec(damage(), 1..6),
        in_catalogue in any::<bool>(),
        gzipped in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut buys, mut cat) = (purchases().into_bytes(), catalogue().into_bytes());
        let target = if in_catalogue { &mut cat } else { &mut buys };
        if gzipped {
            // Damage the compressed stream itself.
            *target = gzip(target);
        }
        for d in &damages {
            apply(target, d);
        }
        let name = if gzipped { "buys.csv.gz" } else { "buys.csv" };
        let (buys_file, cat_file) = (dir.path().join(name), dir.path().join("catalog.csv"));
        fs::write(&buys_file, &buys).unwrap();
        fs::write(&cat_file, &cat).unwrap();
        let cols = [
            "--customer-col", "customer", "--item-col", "item", "--quantity-col", "qty", "--price-col", "price",
            "--time-col", "time", "--basket-col", "basket",
        ];
        let catalog = [
            "--catalog", "catalog.csv", "--catalog-item-col", "item_id", "--catalog-category-cols", "category",
            "--catalog-price-col", "price", "--catalog-name-col", "name",
        ];
        let run = |args: &[&str]| run_cobuy(dir.path(), args);

        for skip in [false, true] {
            let mut fit = vec!["fit", "--purchases", name, "--model", "m.cobuy"];
            fit.extend_from_slice(&cols);
            let mut rules = vec!["rules", "--purchases", name, "--out", "rules.csv", "--min-support", "0.01"];
            rules.extend_from_slice(&cols);
            let mut upsell = vec!["up-sell", "--purchases", name, "--out", "up.csv"];
            upsell.extend_from_slice(&cols);
            upsell.extend_from_slice(&catalog);
            if skip {
                for a in [&mut fit, &mut rules, &mut upsell] {
                    a.push("--skip-invalid");
                }
            }
            check(&run(&fit), "fit", skip.then(|| dir.path().join("m.cobuy.rejects.csv")).as_deref());
            check(&run(&rules), "rules", skip.then(|| dir.path().join("rules.csv.rejects.csv")).as_deref());
            let out = run(&upsell);
            let stderr = String::from_utf8_lossy(&out.stderr);
            prop_assert!(matches!(out.status.code(), Some(0) | Some(2)), "up-sell: {:?}\n{}", out.status, stderr);
            prop_assert!(!stderr.contains("panicked"), "up-sell panicked\n{}", stderr);
        }
        // Inputs are never touched.
        prop_assert_eq!(fs::read(&buys_file).unwrap(), buys);
        prop_assert_eq!(fs::read(&cat_file).unwrap(), cat);
    }
}

#[test]
fn the_undamaged_files_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("buys.csv"), purchases()).unwrap();
    let out = run_cobuy(
        dir.path(),
        &["fit", "--purchases", "buys.csv", "--model", "m.cobuy", "--customer-col", "customer", "--item-col", "item"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(rows_summary(&stderr).0, 60, "{stderr}");
}
