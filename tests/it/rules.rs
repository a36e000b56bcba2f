//! Pairwise association rules and basket completion against brute-force counts, and the
//! `rules` / `basket-complete` commands' handling of bad input.

use std::collections::{BTreeMap, BTreeSet};

use cobuy::ids::ItemIdx;
use cobuy::ingest::{Columns, IngestOptions, PurchaseLog, read_log};
use cobuy::offers::rules::{Baskets, RuleParams};
use proptest::prelude::*;

use crate::common;

fn log_of(csv: &str) -> PurchaseLog {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(&path, csv).unwrap();
    let mut cols = Columns::new("customer", "item");
    cols.basket = Some("basket".into());
    cols.quantity = Some("qty".into());
    read_log(&path, &IngestOptions::new(cols)).unwrap().0
}

fn csv_of(lines: &[(u8, u8, u8, i8)]) -> String {
    std::iter::once("customer,item,basket,qty\n".to_string())
        .chain(lines.iter().map(|(c, i, b, q)| format!("c{c},i{i},b{b},{q}\n")))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every rule, and only the rules, that brute-force counting over the baskets gives.
    #[test]
    fn rules_match_brute_force(
        lines in prop::collection::vec((0u8..6, 0u8..9, 0u8..25, -1i8..3), 1..120),
        support in 0u8..4,
        confidence in 0u8..3,
        lift in 0u8..3,
    ) {
        let lines: Vec<_> = lines.into_iter().map(|(c, i, b, q)| (c, i, b, if q == 0 { 1 } else { q })).collect();
        // The reader refuses a log whose returns cancel every purchase (NothingKept).
        let mut net: BTreeMap<(u8, u8), i32> = BTreeMap::new();
        lines.iter().for_each(|&(c, i, _, q)| *net.entry((c, i)).or_default() += i32::from(q));
        prop_assume!(net.values().any(|&q| q > 0));
        let log = log_of(&csv_of(&lines));
        let (baskets, _) = Baskets::from_log(&log).unwrap();
        let p = RuleParams {
            min_support: f64::from(support) * 0.05,
            min_confidence: f64::from(confidence) * 0.3,
            min_lift: f64::from(lift) * 0.8,
            min_count: 1,
        };
        // Brute force: each basket's set of items bought (quantity above 0).
        let mut sets: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
        for &(_, i, b, q) in &lines {
            if q > 0 {
                sets.entry(b).or_default().insert(format!("i{i}"));
            }
        }
        let n = sets.len() as f64;
        let count = |items: &[&str]| sets.values().filter(|s| items.iter().all(|i| s.contains(*i))).count() as f64;
        let names: BTreeSet<String> = sets.values().flatten().cloned().collect();
        let mut want = Vec::new();
        for a in &names {
            for b in &names {
                if a == b {
                    continue;
                }
                let (na, nb, nab) = (count(&[a]), count(&[b]), count(&[a, b]));
                if nab == 0.0 || nab / n < p.min_support - 1e-12 {
                    continue;
                }
                // From supports, as mlxtend computes them (and cobuy, to match it).
                let conf = (nab / n) / (na / n);
                let lift = conf / (nb / n);
                if conf < p.min_confidence || lift < p.min_lift {
                    continue;
                }
                want.push((a.clone(), b.clone(), nab / n, conf, lift, nab / n - (na / n) * (nb / n),
                           if conf >= 1.0 { f64::INFINITY } else { (1.0 - nb / n) / (1.0 - conf) }));
            }
        }
        let got = baskets.rules(&p);
        let ids = baskets.items();
        let mut got: Vec<_> = got.iter().map(|r| (ids.id(r.antecedent.0).to_string(), ids.id(r.consequent.0).to_string(),
            r.support, r.confidence, r.lift, r.leverage, r.conviction)).collect();
        got.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        want.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        prop_assert_eq!(got.len(), want.len(), "rules: {:?} vs {:?}", got, want);
        for (g, w) in got.iter().zip(&want) {
            prop_assert_eq!((&g.0, &g.1), (&w.0, &w.1));
            for (x, y) in [(g.2, w.2), (g.3, w.3), (g.4, w.4), (g.5, w.5), (g.6, w.6)] {
                prop_assert!(x == y || (x - y).abs() <= 1e-12 * y.abs().max(1.0), "{:?} vs {:?}", g, w);
            }
        }
    }

    /// Completions rank by the confidence of (all basket items) -> item, counted by brute force.
    #[test]
    fn completions_match_brute_force(
        lines in prop::collection::vec((0u8..4, 0u8..7, 0u8..30, 1i8..2), 1..150),
        basket in prop::collection::btree_set(0u8..7, 1..3),
    ) {
        let log = log_of(&csv_of(&lines));
        let (baskets, _) = Baskets::from_log(&log).unwrap();
        let ids = baskets.items();
        let wanted: Vec<ItemIdx> = basket.iter().filter_map(|i| ids.index_of(&format!("i{i}")).map(ItemIdx)).collect();
        prop_assume!(wanted.len() == basket.len());
        let c = baskets.complete(&wanted, 10, 1);
        let mut sets: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::new();
        for &(_, i, b, _) in &lines {
            sets.entry(b).or_default().insert(i);
        }
        let antecedent: BTreeSet<u8> = c.antecedent.iter().map(|i| ids.id(i.0)[1..].parse().unwrap()).collect();
        prop_assert!(antecedent.is_subset(&basket) && !antecedent.is_empty());
        let holding: Vec<&BTreeSet<u8>> = sets.values().filter(|s| antecedent.is_subset(s)).collect();
        prop_assert_eq!(c.baskets, holding.len() as u64);
        if antecedent.len() < basket.len() {
            prop_assert!(sets.values().all(|s| !basket.is_subset(s)), "dropped items although a basket held all");
        }
        for w in c.items.windows(2) {
            prop_assert!(w[0].confidence >= w[1].confidence);
        }
        for item in &c.items {
            let j: u8 = ids.id(item.item.0)[1..].parse().unwrap();
            prop_assert!(!basket.contains(&j));
            let both = holding.iter().filter(|s| s.contains(&j)).count();
            prop_assert_eq!(item.count as usize, both);
            prop_assert!((item.confidence - both as f64 / holding.len() as f64).abs() < 1e-12);
        }
        // Nothing left out beats the weakest kept completion.
        if c.items.len() < 10 {
            let kept: BTreeSet<u8> = c.items.iter().map(|i| ids.id(i.item.0)[1..].parse().unwrap()).collect();
            for j in 0u8..7 {
                if !basket.contains(&j) && !kept.contains(&j) {
                    prop_assert!(holding.iter().all(|s| !s.contains(&j)), "item {} left out", j);
                }
            }
        }
    }
}

#[test]
fn customers_stand_in_for_baskets_without_a_basket_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(&path, "customer,item\na,tea\na,cups\nb,tea\nb,cups\nc,tea\n").unwrap();
    let log = read_log(&path, &IngestOptions::new(Columns::new("customer", "item"))).unwrap().0;
    let (baskets, stats) = Baskets::from_log(&log).unwrap();
    assert!(!baskets.from_basket_ids());
    assert_eq!((stats.baskets, stats.lines), (3, 5));
    let rules = baskets.rules(&RuleParams { min_support: 0.5, ..RuleParams::default() });
    let ids = baskets.items();
    let got: Vec<(&str, &str, u32)> =
        rules.iter().map(|r| (ids.id(r.antecedent.0), ids.id(r.consequent.0), r.count)).collect();
    assert_eq!(got, [("cups", "tea", 2), ("tea", "cups", 2)]);
    assert_eq!(rules[0].confidence, 1.0);
    assert!(rules[0].conviction.is_infinite());
}

#[test]
fn thresholds_round_support_to_whole_baskets() {
    let p = RuleParams { min_support: 0.001, ..RuleParams::default() };
    assert_eq!(p.min_pair_count(9835), 10);
    assert_eq!(p.min_pair_count(10_000), 10);
    assert_eq!(p.min_pair_count(10_001), 11);
    assert_eq!(RuleParams { min_support: 0.0, min_count: 3, ..p }.min_pair_count(100), 3);
    for bad in [
        RuleParams { min_support: 1.5, ..p },
        RuleParams { min_support: -0.1, ..p },
        RuleParams { min_confidence: 2.0, ..p },
        RuleParams { min_lift: -1.0, ..p },
        RuleParams { min_lift: f64::NAN, ..p },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}

#[test]
fn bad_rule_commands_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let purchases = dir.path().join("p.csv");
    std::fs::write(&purchases, "customer,item,basket\na,tea,1\na,cups,1\nb,tea,2\n").unwrap();
    let p = purchases.to_str().unwrap();
    let out = dir.path().join("rules.csv");
    let o = out.to_str().unwrap();
    let base = ["rules", "--purchases", p, "--customer-col", "customer", "--item-col", "item", "--out", o];
    for (extra, want) in [
        (&["--basket-col", "basket", "--min-support", "1.5"][..], "minimum support must be between 0 and 1"),
        (&["--basket-col", "basket", "--min-confidence", "-0.5"][..], "minimum confidence must be between 0 and 1"),
        (&["--basket-col", "basket", "--min-lift", "-1"][..], "minimum lift must be a number >= 0"),
        (&["--basket-col", "basket", "--min-count", "0"][..], "--min-count must be at least 1"),
        (&["--basket-col", "order"][..], "order"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let r = common::run_cobuy(dir.path(), &args);
        assert_eq!(r.status.code(), Some(2), "{extra:?}: {}", String::from_utf8_lossy(&r.stderr));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(want), "{extra:?}: {want:?} not in {err}");
        assert!(!out.exists(), "{extra:?}: wrote the rules");
    }
    let args: Vec<&str> = base.iter().copied().chain(["--basket-col", "basket"]).collect();
    let r = common::run_cobuy(dir.path(), &args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "antecedent,consequent,support,confidence,lift,leverage,conviction,count,antecedent_count,consequent_count"
    );
    assert_eq!(text.lines().count(), 3, "{text}");

    let complete = dir.path().join("complete.csv");
    let c = complete.to_str().unwrap();
    let base = [
        "basket-complete",
        "--purchases",
        p,
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--basket-col",
        "basket",
        "--out",
        c,
    ];
    for (extra, want) in [
        (&["--items", "nope"][..], "none of the items to complete is in the purchases"),
        (&["--items", ","][..], "give at least one item id"),
        (&["--items", "tea", "--top", "0"][..], "--top must be at least 1"),
        (&[][..], "--items A,B or --baskets FILE"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let r = common::run_cobuy(dir.path(), &args);
        assert_eq!(r.status.code(), Some(2), "{extra:?}: {}", String::from_utf8_lossy(&r.stderr));
        assert!(String::from_utf8_lossy(&r.stderr).contains(want), "{extra:?}: {}", String::from_utf8_lossy(&r.stderr));
        assert!(!complete.exists());
    }
    let args: Vec<&str> = base.iter().copied().chain(["--items", "tea", "--min-count", "1"]).collect();
    let r = common::run_cobuy(dir.path(), &args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&complete).unwrap();
    assert_eq!(text.lines().nth(1).unwrap(), "basket,1,cups,0.5,1,1,2,tea,in 50% of the 2 baskets holding tea");
}

/// Measures print as the decimals their counts make: over 5 baskets, a in 4, b in 3 of
/// them, a -> b has support 3/5, confidence 3/4, lift 5/4, leverage 3/5 - 12/25 and
/// conviction (2/5) / (1/4), not the noise of dividing rounded supports (0.7499999999999999).
#[test]
fn rules_and_completions_print_short_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let lines = "customer,item,basket\nx,a,1\nx,b,1\nx,a,2\nx,b,2\nx,a,3\nx,b,3\nx,a,4\nx,c,5\n";
    std::fs::write(dir.path().join("p.csv"), lines).unwrap();
    let cols = ["--purchases", "p.csv", "--customer-col", "customer", "--item-col", "item", "--basket-col", "basket"];
    let args: Vec<&str> = ["rules"].iter().chain(&cols).chain(&["--out", "r.csv"]).copied().collect();
    let o = common::run_cobuy(dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(dir.path().join("r.csv")).unwrap();
    assert!(text.lines().any(|l| l == "a,b,0.6,0.75,1.25,0.12,1.6,3,4,3"), "{text}");
    let args: Vec<&str> = ["basket-complete"]
        .iter()
        .chain(&cols)
        .chain(&["--items", "a", "--min-count", "1", "--out", "c.csv"])
        .copied()
        .collect();
    let o = common::run_cobuy(dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(dir.path().join("c.csv")).unwrap();
    // b completes a in 3 of the 4 baskets holding a, and is in 3 of the 5: lift 5/4.
    assert!(text.lines().nth(1).unwrap().starts_with("basket,1,b,0.75,1.25,3,4,"), "{text}");
}

/// With a catalogue, basket-complete's reasons name the basket's items as cross-sell and
/// up-sell do, `NAME (ID)` (an item the catalogue does not name, by its id); the id
/// columns stay ids. The log says it wrote one completion for one basket.
#[test]
fn completions_name_the_basket_items_from_the_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = "customer,item,basket\nx,a,1\nx,b,1\nx,c,1\nx,a,2\nx,c,2\nx,a,3\n";
    std::fs::write(d.join("p.csv"), lines).unwrap();
    std::fs::write(d.join("cat.csv"), "item_id,name,group\na,Green tea,drinks\nb,,drinks\nc,Cups,kitchen\n").unwrap();
    let mut args = vec!["basket-complete", "--purchases", "p.csv", "--customer-col", "customer", "--item-col", "item"];
    args.extend_from_slice(&["--basket-col", "basket", "--items", "a,b", "--min-count", "1", "--top", "1"]);
    args.extend_from_slice(&["--catalog", "cat.csv", "--catalog-item-col", "item_id", "--catalog-name-col", "name"]);
    args.extend_from_slice(&["--catalog-category-cols", "group", "--out", "c.csv"]);
    let o = common::run_cobuy(d, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("wrote 1 completion for 1 basket to c.csv"), "{err}");
    let text = std::fs::read_to_string(d.join("c.csv")).unwrap();
    // The one basket holding a and b also holds c.
    assert_eq!(
        text.lines().nth(1),
        Some("basket,1,c,1,1.5,1,1,a b,in 100% of the 1 basket holding Green tea (a) and b"),
        "{text}"
    );
}

/// Without a basket column, each customer with a purchase row is a basket, and the log
/// says why that count differs from the customers the summary line just printed: here a
/// buys, b buys x and returns it (a basket, but nothing left after returns), c only
/// returns: 3 customers, 1 with purchases left, 2 baskets.
#[test]
fn customer_baskets_say_why_their_count_differs_from_the_customers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.csv"), "customer,item,quantity\na,x,1\na,y,2\nb,x,1\nb,x,-1\nc,y,-1\n").unwrap();
    let args = [
        "rules",
        "--purchases",
        "p.csv",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--quantity-col",
        "quantity",
    ];
    let o = common::run_cobuy(dir.path(), &[&args[..], &["--out", "r.csv"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("cobuy: 3 customers (1 with purchases left)")).expect(&err);
    assert_eq!(
        lines[at + 1],
        "cobuy: 2 customers as baskets (no basket column: each customer with a purchase row is one; the other 1 of the \
         3 have only returns or left-out rows; 1 of the 2 have no purchase left after returns (baskets do not net \
         returns), hence 1 with purchases left), 3 basket-item lines",
        "{err}"
    );
}
