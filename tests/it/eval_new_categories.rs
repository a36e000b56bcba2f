//! The new-categories target (what cross-sell is for) against a literal reading of its
//! definition on random logs: a held-out item counts when the customer did not buy it in
//! training, it has a category at the chosen level, and the customer bought nothing in that
//! category in training. And `cobuy eval` refuses the target without a catalogue.

use std::collections::{BTreeMap, BTreeSet};

use cobuy::eval::split::{Cutoff, SplitMethod};
use cobuy::eval::{Target, prepare};
use cobuy::ingest::{Columns, IngestOptions, read_log};
use proptest::prelude::*;

use crate::common::{run_cobuy, write_lines};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn positives_are_held_out_items_in_categories_new_to_the_customer(
        rows in proptest::collection::vec((0u32..8, 0u32..14, 0u32..60), 10..120),
        categories in proptest::collection::vec(proptest::option::of(0u32..4), 14),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = rows.iter().map(|(c, i, d)| format!("c{c},i{i:02},{}", 1_700_000_000 + i64::from(*d) * 86_400)).collect();
        write_lines(&dir.path().join("p.csv"), "customer,item,time", &lines);
        let mut cols = Columns::new("customer", "item");
        cols.time = Some("time".into());
        let (log, _) = read_log(dir.path().join("p.csv"), &IngestOptions::new(cols)).unwrap();
        let method = SplitMethod::Time { cutoff: Cutoff::At(1_700_000_000 + 40 * 86_400) };
        let Ok(mut prepared) = prepare(&log, &method, false) else { return Ok(()) };
        let category: Vec<Option<u32>> =
            (0..log.items.len() as u32).map(|j| categories[log.items.id(j)[1..].parse::<usize>().unwrap()]).collect();
        prepared.mark_new_categories(&category);

        // The definition, read literally from the raw rows.
        let cut = 40;
        let mut train: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        let mut test: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        for &(c, i, d) in &rows {
            if d < cut { train.entry(c).or_default().insert(i) } else { test.entry(c).or_default().insert(i) };
        }
        let mut positives: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        for (c, held) in &test {
            let Some(bought) = train.get(c) else { continue };
            let had: BTreeSet<u32> = bought.iter().filter_map(|&i| categories[i as usize]).collect();
            for &i in held {
                if !bought.contains(&i) && categories[i as usize].is_some_and(|g| !had.contains(&g)) {
                    positives.entry(*c).or_default().insert(i);
                }
            }
        }
        let pairs: usize = positives.values().map(BTreeSet::len).sum();
        prop_assert_eq!(prepared.summary.new_category_pairs, pairs as u64);
        prop_assert_eq!(prepared.summary.measured_new_categories, positives.len() as u64);
        if positives.is_empty() {
            return Ok(());
        }
        // Lists of exactly the positives score NDCG 1 on every customer measured; lists of
        // every other item of the customer's held-out part score 0.
        let id = |c: cobuy::ids::CustomerIdx| log.customers.id(c.0)[1..].parse::<u32>().unwrap();
        let item = |i: u32| log.items.index_of(&format!("i{i:02}")).unwrap();
        let perfect: Vec<Vec<u32>> = prepared
            .customers()
            .map(|c| positives.get(&id(c)).map(|p| p.iter().map(|&i| item(i)).collect()).unwrap_or_default())
            .collect();
        let others: Vec<Vec<u32>> = prepared
            .customers()
            .map(|c| {
                let p = positives.get(&id(c)).cloned().unwrap_or_default();
                test[&id(c)].iter().filter(|i| !p.contains(i)).map(|&i| item(i)).collect()
            })
            .collect();
        let ndcg = |lists: &[Vec<u32>]| {
            prepared.measure_in_order(Target::NewCategories, &[20], lists).unwrap().get(cobuy::eval::metrics::Metric::Ndcg, 20).unwrap()
        };
        prop_assert!((ndcg(&perfect) - 1.0).abs() < 1e-12);
        prop_assert_eq!(ndcg(&others), 0.0);
    }
}

#[test]
fn eval_refuses_the_target_without_a_catalogue_or_beyond_its_levels() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..40).map(|k| format!("c{},i{},{}", k % 7, k % 5, 1_700_000_000 + k * 86_400)).collect();
    write_lines(&dir.path().join("p.csv"), "customer,item,time", &lines);
    write_lines(
        &dir.path().join("cat.csv"),
        "item,group",
        &(0..5).map(|i| format!("i{i},g{}", i % 2)).collect::<Vec<_>>(),
    );
    let base = [
        "eval",
        "--purchases",
        "p.csv",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--time-col",
        "time",
        "--targets",
        "new-categories",
        "--algorithm",
        "item-knn",
        "--out-dir",
        "o",
    ];
    let out = run_cobuy(dir.path(), &base);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the new-categories target needs a catalogue"));
    let mut args = base.to_vec();
    args.extend(["--catalog", "cat.csv", "--catalog-item-col", "item", "--catalog-category-cols", "group"]);
    args.extend(["--new-category-level", "1"]);
    let out = run_cobuy(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the catalogue's deepest level is 0"), "{err}");
}
