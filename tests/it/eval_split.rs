//! Splits of a purchase log: which rows are held out, that the rule depends only on the
//! rows (not their order), and that impossible splits are errors.

use cobuy::eval::prepare;
use cobuy::eval::split::{Cutoff, SplitError, SplitMethod};
use cobuy::ingest::{Columns, IngestOptions, PurchaseLog, read_log};
use proptest::prelude::*;

fn log_of(csv: &str, basket: bool) -> PurchaseLog {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(&path, csv).unwrap();
    let mut cols = Columns::new("customer", "item");
    cols.time = Some("time".into());
    if basket {
        cols.basket = Some("basket".into());
    }
    read_log(&path, &IngestOptions::new(cols)).unwrap().0
}

/// (customer, item) of the rows marked.
fn marked(log: &PurchaseLog, rows: &[bool]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = log
        .rows
        .iter()
        .zip(rows)
        .filter(|(_, m)| **m)
        .map(|(r, _)| (log.customers.id(r.customer.0).to_string(), log.items.id(r.item.0).to_string()))
        .collect();
    v.sort();
    v
}

const LOG: &str = "customer,item,time,basket
a,tea,2024-01-01,b1
a,cups,2024-01-01,b1
a,milk,2024-02-01,b2
a,sugar,2024-02-01,b2
b,tea,2024-01-15,b3
b,milk,2024-03-01,b4
c,tea,2024-01-20,b5
c,cups,2024-01-20,b5
";

#[test]
fn time_split_holds_out_rows_at_or_after_the_cutoff() {
    let log = log_of(LOG, true);
    let at = cobuy::time::parse("2024-02-01").unwrap();
    let test = SplitMethod::Time { cutoff: Cutoff::At(at) }.test_rows(&log, None).unwrap();
    assert_eq!(
        marked(&log, &test),
        [("a".into(), "milk".into()), ("a".into(), "sugar".into()), ("b".into(), "milk".into())]
    );
    // The last quarter of the 8 rows: the 2 newest (tied times hold out together).
    let share = SplitMethod::Time { cutoff: Cutoff::LastShare(0.25) }.test_rows(&log, None).unwrap();
    assert_eq!(
        marked(&log, &share),
        [("a".into(), "milk".into()), ("a".into(), "sugar".into()), ("b".into(), "milk".into())]
    );
    // Validation: the window of the same length (2024-02-01 .. 2024-03-01) before the cutoff.
    let val = SplitMethod::Time { cutoff: Cutoff::At(at) }.validation_rows(&log, &test).unwrap();
    assert!(val.iter().zip(&test).all(|(v, t)| !(v & t)), "validation and test rows never overlap");
    assert_eq!(
        marked(&log, &val),
        [("b".into(), "tea".into()), ("c".into(), "cups".into()), ("c".into(), "tea".into())]
    );
}

#[test]
fn cutoffs_outside_the_data_are_errors() {
    let log = log_of(LOG, true);
    for (date, side) in [("2023-06-01", "before"), ("2024-01-01", "before"), ("2025-01-01", "after")] {
        let m = SplitMethod::Time { cutoff: Cutoff::At(cobuy::time::parse(date).unwrap()) };
        match m.test_rows(&log, None) {
            Err(SplitError::CutoffOutside { side: s, .. }) => assert_eq!(s, side, "{date}"),
            other => panic!("{date}: {other:?}"),
        }
    }
    assert!(matches!(
        SplitMethod::Time { cutoff: Cutoff::LastShare(1.0) }.test_rows(&log, None),
        Err(SplitError::Param(_))
    ));
    assert!(matches!(SplitMethod::Random { fraction: 0.0, seed: 1 }.check(), Err(SplitError::Param(_))));
}

#[test]
fn last_basket_holds_out_each_customers_latest_basket() {
    let log = log_of(LOG, true);
    let test = SplitMethod::LastBasket.test_rows(&log, None).unwrap();
    // c has one basket: nothing held out.
    assert_eq!(
        marked(&log, &test),
        [("a".into(), "milk".into()), ("a".into(), "sugar".into()), ("b".into(), "milk".into())]
    );
    // Without a basket column, the rows at the latest time make the basket.
    let no_basket = log_of(LOG, false);
    let test = SplitMethod::LastBasket.test_rows(&no_basket, None).unwrap();
    assert_eq!(marked(&no_basket, &test), marked(&log, &SplitMethod::LastBasket.test_rows(&log, None).unwrap()));
}

#[test]
fn prepare_measures_warm_customers_and_counts_the_cold() {
    let csv = format!("{LOG}d,tea,2024-03-05,b6\n");
    let log = log_of(&csv, true);
    let at = cobuy::time::parse("2024-02-01").unwrap();
    let p = prepare(&log, &SplitMethod::Time { cutoff: Cutoff::At(at) }, false).unwrap();
    let s = &p.summary;
    assert_eq!((s.test_customers, s.cold_customers, s.measured_all), (3, 1, 2));
    // a's milk and sugar, b's milk: all new (not bought before the cutoff).
    assert_eq!((s.test_pairs, s.new_test_pairs, s.measured_new), (3, 3, 2));
    // Nobody bought milk or sugar before the cutoff.
    assert_eq!(s.unknown_item_pairs, 3);
    // A cutoff that leaves only cold customers in the test part: no one to measure.
    let only_cold = format!("{LOG}d,tea,2024-04-05,b6\n");
    let log = log_of(&only_cold, true);
    let at = cobuy::time::parse("2024-03-02").unwrap();
    let err = prepare(&log, &SplitMethod::Time { cutoff: Cutoff::At(at) }, false).unwrap_err();
    assert!(err.to_string().contains("no test customer"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The random split holds out whole pairs, about the asked share of them, and the same
    /// ones whatever the order of the rows.
    #[test]
    fn random_split_depends_on_ids_not_order(
        rows in prop::collection::vec((0u8..30, 0u8..40, 1u8..28), 20..200),
        seed in 0u64..1000,
        rotate in 0usize..200,
    ) {
        let csv: String = std::iter::once("customer,item,time\n".to_string())
            .chain(rows.iter().map(|(c, i, d)| format!("c{c},i{i},2024-01-{d:02}\n")))
            .collect();
        let mut shuffled = rows.clone();
        let r = rotate % shuffled.len();
        shuffled.rotate_left(r);
        shuffled.reverse();
        let csv2: String = std::iter::once("customer,item,time\n".to_string())
            .chain(shuffled.iter().map(|(c, i, d)| format!("c{c},i{i},2024-01-{d:02}\n")))
            .collect();
        let m = SplitMethod::Random { fraction: 0.3, seed };
        let (a, b) = (log_of(&csv, false), log_of(&csv2, false));
        let (ta, tb) = (m.test_rows(&a, None).unwrap(), m.test_rows(&b, None).unwrap());
        let (ma, mb) = (marked(&a, &ta), marked(&b, &tb));
        prop_assert_eq!(&ma, &mb);
        // Whole pairs: a held-out pair has no training row.
        let train = marked(&a, &ta.iter().map(|t| !t).collect::<Vec<_>>());
        prop_assert!(ma.iter().all(|p| !train.contains(p)));
    }
}

#[test]
fn random_split_holds_out_about_the_share_asked() {
    let csv: String = std::iter::once("customer,item,time\n".to_string())
        .chain((0..4000).map(|k| format!("c{},i{},2024-01-01\n", k % 97, k)))
        .collect();
    let log = log_of(&csv, false);
    for (fraction, seed) in [(0.2, 1), (0.5, 7)] {
        let test = SplitMethod::Random { fraction, seed }.test_rows(&log, None).unwrap();
        let share = test.iter().filter(|&&t| t).count() as f64 / test.len() as f64;
        assert!((share - fraction).abs() < 0.03, "asked {fraction}, got {share}");
    }
    let a = SplitMethod::Random { fraction: 0.2, seed: 1 }.test_rows(&log, None).unwrap();
    let b = SplitMethod::Random { fraction: 0.2, seed: 2 }.test_rows(&log, None).unwrap();
    assert_ne!(a, b, "another seed, other pairs");
}
