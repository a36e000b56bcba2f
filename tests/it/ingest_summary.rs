//! The ingest summary's customer counts, for the unmerged log (`read_log`, behind eval,
//! rules, cross-sell and up-sell) as for the merged purchases (`read_purchases`, behind
//! fit): "with purchases left" counts customers after returns are netted.

use std::collections::BTreeMap;
use std::fs;

use cobuy::ingest::{Columns, IngestError, IngestOptions, read_log, read_purchases};

use crate::common::{COLUMNS, SEED, purchase_lines, run_cobuy, write_lines};

fn options() -> IngestOptions {
    let mut cols = Columns::new("customer", "item");
    cols.quantity = Some("quantity".into());
    IngestOptions::new(cols)
}

/// Customers with a pair whose quantities sum above zero, from the CSV text itself.
fn with_purchases_left(lines: &[String]) -> u64 {
    let mut net: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        *net.entry((f[0], f[1])).or_default() += f[2].parse::<f64>().unwrap();
    }
    let customers: std::collections::BTreeSet<&str> = net.iter().filter(|&(_, &q)| q > 0.0).map(|(k, _)| k.0).collect();
    customers.len() as u64
}

#[test]
fn a_customer_whose_returns_cancel_every_purchase_has_none_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    // ann's only purchase is returned in two parts; bob keeps one of two items; cy returns
    // something never bought; dee buys twice.
    let lines: Vec<String> =
        ["ann,tea,2", "bob,tea,1", "bob,cup,1", "ann,tea,-1", "bob,cup,-1", "cy,pot,-1", "ann,tea,-1", "dee,pot,3"]
            .map(String::from)
            .to_vec();
    write_lines(&path, "customer,item,quantity", &lines);
    assert_eq!(with_purchases_left(&lines), 2, "bob and dee");
    let (log, summary) = read_log(&path, &options()).unwrap();
    assert_eq!(summary.customers, 4);
    assert_eq!(summary.customers_with_purchases, 2, "ann's purchase is netted away");
    assert_eq!(log.rows.len(), 8, "the log itself keeps every row");
    let merged = read_purchases(&path, &options()).unwrap().summary;
    assert_eq!((merged.customers, merged.customers_with_purchases), (4, 2));
}

#[test]
fn a_log_whose_returns_cancel_every_purchase_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    write_lines(&path, "customer,item,quantity", &["ann,tea,2".into(), "ann,tea,-2".into()]);
    assert!(matches!(read_log(&path, &options()), Err(IngestError::NothingKept { .. })));
    assert!(matches!(read_purchases(&path, &options()), Err(IngestError::NothingKept { .. })));
}

/// On the generated log (about 6% returns, some of a whole pair), the log's count, the
/// merged count and the count from the CSV text agree, and so do the `(N with purchases
/// left)` lines of `rules` and `fit`.
#[test]
fn log_and_merged_counts_agree_on_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.path().join("purchases.csv"), &header, &lines);
    let path = dir.path().join("purchases.csv");
    let want = with_purchases_left(
        &lines.iter().map(|l| l.split(',').take(3).collect::<Vec<_>>().join(",")).collect::<Vec<_>>(),
    );
    let (_, log) = read_log(&path, &options()).unwrap();
    let merged = read_purchases(&path, &options()).unwrap().summary;
    assert_eq!(log.customers_with_purchases, want);
    assert_eq!(merged.customers_with_purchases, want);
    assert!(log.customers > want, "some customer returned everything: the test can tell the counts apart");

    let line = |args: &[&str]| {
        let o = run_cobuy(dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8(o.stderr).unwrap();
        err.lines().find(|l| l.contains("with purchases left")).unwrap_or_else(|| panic!("{err}")).to_string()
    };
    let mut rules = vec!["rules", "--purchases", "purchases.csv", "--out", "rules.csv"];
    rules.extend_from_slice(&COLUMNS);
    let mut fit = vec!["fit", "--purchases", "purchases.csv", "--model", "m.cobuy"];
    fit.extend_from_slice(&COLUMNS);
    let (r, f) = (line(&rules), line(&fit));
    assert!(r.contains(&format!("({want} with purchases left)")), "{r}");
    assert_eq!(r, f);
    assert!(fs::metadata(dir.path().join("rules.csv")).is_ok());
}
