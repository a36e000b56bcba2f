//! `cobuy cross-sell`: offers never repeat a purchase, respect category restrictions, carry
//! a reason, do not depend on the thread count; bad input is a usage error.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::common;

const CATALOG: &str = "item,department,aisle\n\
milk,dairy,milk\ncheese,dairy,cheese\nyogurt,dairy,yogurt\n\
bread,bakery,bread\nrolls,bakery,bread\n\
apple,produce,fruit\nbanana,produce,fruit\n\
water,drinks,water\njuice,drinks,juice\n";

/// 60 customers, 4 baskets each, from a few fixed shopping patterns.
fn purchases() -> String {
    let patterns: [&[&str]; 5] = [
        &["milk", "bread", "cheese"],
        &["milk", "bread", "apple"],
        &["yogurt", "banana", "juice"],
        &["bread", "rolls", "water"],
        &["cheese", "apple", "juice"],
    ];
    let mut out = String::from("customer,item,basket\n");
    for c in 0..60u32 {
        for b in 0..4u32 {
            let p = patterns[((c * 7 + b * 3) % 5) as usize];
            for (k, item) in p.iter().enumerate() {
                // Leave an item out now and then so baskets differ.
                if (c + b + k as u32) % 7 != 0 {
                    out.push_str(&format!("c{c},{item},c{c}b{b}\n"));
                }
            }
        }
    }
    out
}

struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("p.csv"), purchases()).unwrap();
        fs::write(dir.path().join("catalog.csv"), CATALOG).unwrap();
        Fx { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
    fn run(&self, extra: &[&str]) -> std::process::Output {
        let (p, c) = (self.path("p.csv"), self.path("catalog.csv"));
        let mut args = vec![
            "cross-sell",
            "--purchases",
            &p,
            "--customer-col",
            "customer",
            "--item-col",
            "item",
            "--basket-col",
            "basket",
            "--catalog",
            &c,
            "--catalog-item-col",
            "item",
            "--catalog-category-cols",
            "department,aisle",
            "--min-support",
            "0.01",
            "--min-count",
            "2",
        ];
        args.extend_from_slice(extra);
        common::run_cobuy(self.dir.path(), &args)
    }
}

fn rows(path: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["customer_id", "rank", "item_id", "score", "category", "reason"]
    );
    r.records().map(|x| x.unwrap().iter().map(String::from).collect()).collect()
}

fn bought(csv: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        m.entry(f[0].to_string()).or_default().insert(f[1].to_string());
    }
    m
}

#[test]
fn offers_are_new_to_the_customer_with_reasons_and_categories() {
    let fx = Fx::new();
    let out = fx.path("offers.csv");
    let o = fx.run(&["--level", "0", "--out", &out, "--threads", "1", "--top", "4"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = rows(&out);
    assert!(!got.is_empty());
    let have = bought(&purchases());
    let dept: BTreeMap<&str, &str> = CATALOG
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[1])
        })
        .collect();
    let mut per_customer: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in &got {
        assert!(!have[&r[0]].contains(&r[2]), "{} already bought {}", r[0], r[2]);
        assert_eq!(dept[r[2].as_str()], r[4], "category of {}", r[2]);
        assert!(r[5].contains("bought together with") || r[5].contains("customers like you"), "{r:?}");
        let new_cat = !have[&r[0]].iter().any(|i| dept[i.as_str()] == r[4]);
        assert_eq!(r[5].contains("new category for you"), new_cat, "{r:?}");
        assert!(new_cat, "the default scoring offers only new categories: {r:?}");
        per_customer.entry(&r[0]).or_default().push(r[3].parse().unwrap());
    }
    for (c, scores) in per_customer {
        assert!(scores.len() <= 4 && scores.windows(2).all(|w| w[0] >= w[1]), "{c}: {scores:?}");
    }

    // The same bytes on 4 threads.
    let out4 = fx.path("offers4.csv");
    assert!(fx.run(&["--level", "0", "--out", &out4, "--threads", "4", "--top", "4"]).status.success());
    assert_eq!(fs::read(&out).unwrap(), fs::read(&out4).unwrap());

    // Restricting and excluding categories (in the mixed scoring, which offers any
    // category: this small catalogue leaves few new ones).
    fs::write(fx.dir.path().join("only.txt"), "produce\n").unwrap();
    let only = fx.path("only.csv");
    let mix = |args: &[&str]| fx.run(&[args, &["--scoring", "mix"][..]].concat()).status.success();
    assert!(mix(&["--level", "0", "--out", &only, "--categories", &fx.path("only.txt")]));
    assert!(rows(&only).iter().all(|r| r[4] == "produce"));
    fs::write(fx.dir.path().join("not.txt"), "dairy\nfruit\n").unwrap();
    let not = fx.path("not.csv");
    assert!(mix(&["--level", "0", "--out", &not, "--exclude-categories", &fx.path("not.txt")]));
    let not_rows = rows(&not);
    assert!(
        !not_rows.is_empty()
            && not_rows
                .iter()
                .all(|r| r[4] != "dairy" && dept[r[2].as_str()] != "produce" || r[4] == "bakery" || r[4] == "drinks")
    );
    assert!(not_rows.iter().all(|r| !["apple", "banana", "milk", "cheese", "yogurt"].contains(&r[2].as_str())));

    // Without the novelty preference, the scores are the plain mix of evidence: no lower.
    let (flat, mixed) = (fx.path("flat.csv"), fx.path("mixed.csv"));
    assert!(mix(&["--level", "0", "--out", &flat, "--novelty", "0", "--top", "4"]));
    assert!(mix(&["--level", "0", "--out", &mixed, "--top", "4"]));
    let top =
        |rows: &[Vec<String>]| rows.iter().filter(|r| r[1] == "1").map(|r| r[3].parse::<f64>().unwrap()).sum::<f64>();
    assert!(top(&rows(&flat)) >= top(&rows(&mixed)) - 1e-9);
}

#[test]
fn bad_cross_sell_input_is_a_usage_error() {
    let fx = Fx::new();
    let out = fx.path("offers.csv");
    let (p, c) = (fx.path("p.csv"), fx.path("catalog.csv"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["cross-sell", "--purchases", &p, "--customer-col", "customer", "--item-col", "item", "--out", &out],
            "needs a catalogue",
        ),
        (
            vec![
                "cross-sell",
                "--purchases",
                &p,
                "--customer-col",
                "customer",
                "--item-col",
                "item",
                "--catalog",
                &c,
                "--catalog-item-col",
                "item",
                "--out",
                &out,
            ],
            "--catalog-category-cols",
        ),
    ];
    for (args, want) in cases {
        let o = common::run_cobuy(fx.dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(want), "{want}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!Path::new(&out).exists());
    }
    for (extra, want) in [
        (&["--top", "0"][..], "--top must be at least 1"),
        (&["--cf-weight", "2"][..], "collaborative weight must be between 0 and 1"),
        (&["--level", "3"][..], "no bought item has a category at level 3"),
        (&["--novelty", "-1"][..], "novelty exponent must be a number >= 0"),
    ] {
        let args: Vec<&str> = extra.iter().copied().chain(["--out", &out]).collect();
        let o = fx.run(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains(want), "{want}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!Path::new(&out).exists());
    }
    // A catalogue with a duplicate item names both lines.
    fs::write(fx.dir.path().join("catalog.csv"), format!("{CATALOG}milk,dairy,milk\n")).unwrap();
    let o = fx.run(&["--level", "0", "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("catalog.csv:11") && err.contains("already given on line 2"), "{err}");
}

#[test]
fn category_rules_count_baskets_holding_both_categories() {
    let fx = Fx::new();
    let (p, c, out) = (fx.path("p.csv"), fx.path("catalog.csv"), fx.path("rules.csv"));
    let base = [
        "rules",
        "--purchases",
        &p,
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--basket-col",
        "basket",
        "--min-support",
        "0.01",
        "--out",
        &out,
    ];
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain([
            "--catalog",
            &c,
            "--catalog-item-col",
            "item",
            "--catalog-category-cols",
            "department,aisle",
            "--level",
            "0",
        ])
        .collect();
    let o = common::run_cobuy(fx.dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Brute force: each basket's set of departments.
    let dept: BTreeMap<&str, &str> = CATALOG
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[1])
        })
        .collect();
    let text = purchases();
    let mut baskets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        baskets.entry(f[2]).or_default().insert(dept[f[1]]);
    }
    let mut r = csv::Reader::from_path(&out).unwrap();
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        let both = baskets.values().filter(|s| s.contains(&rec[0]) && s.contains(&rec[1])).count();
        assert_eq!(rec[7].parse::<usize>().unwrap(), both, "{rec:?}");
        n += 1;
    }
    assert_eq!(n, 12, "every ordered pair of the 4 departments that meet");
    // --level without a catalogue, and a catalogue without --level, are usage errors.
    for extra in [
        &["--level", "0"][..],
        &["--catalog", &c, "--catalog-item-col", "item", "--catalog-category-cols", "department"][..],
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let o = common::run_cobuy(fx.dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("need both --catalog"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn recommend_restricts_and_excludes_categories() {
    let fx = Fx::new();
    let (p, c, m) = (fx.path("p.csv"), fx.path("catalog.csv"), fx.path("m.cobuy"));
    let fit = ["fit", "--purchases", &p, "--customer-col", "customer", "--item-col", "item", "--model", &m];
    assert!(common::run_cobuy(fx.dir.path(), &fit).status.success());
    fs::write(fx.dir.path().join("only.txt"), "produce\ndrinks\n").unwrap();
    fs::write(fx.dir.path().join("not.txt"), "fruit\n").unwrap();
    let out = fx.path("recs.csv");
    let cat = ["--catalog", &c, "--catalog-item-col", "item", "--catalog-category-cols", "department,aisle"];
    let (only, not) = (fx.path("only.txt"), fx.path("not.txt"));
    let rec = ["recommend", "--model", &m, "--top", "5", "--out", &out];
    let args: Vec<&str> =
        rec.iter().chain(cat.iter()).copied().chain(["--categories", &only, "--exclude-categories", &not]).collect();
    let o = common::run_cobuy(fx.dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = fs::read_to_string(&out).unwrap();
    let items: BTreeSet<&str> = text.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| ["water", "juice"].contains(i)), "only drinks once fruit is excluded: {items:?}");
    // Category filters without a catalogue, or naming no category of the items: usage errors.
    let no_cat: Vec<&str> = rec.iter().copied().chain(["--categories", &only]).collect();
    let o = common::run_cobuy(fx.dir.path(), &no_cat);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("need --catalog"), "{}", String::from_utf8_lossy(&o.stderr));
    fs::write(fx.dir.path().join("none.txt"), "hardware\n").unwrap();
    let none = fx.path("none.txt");
    let args: Vec<&str> = rec.iter().chain(cat.iter()).copied().chain(["--categories", &none]).collect();
    let o = common::run_cobuy(fx.dir.path(), &args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("none of the categories holds an item"));
}

#[test]
fn bad_catalogue_rows_stop_the_run_or_go_to_the_rejects_file() {
    let fx = Fx::new();
    let priced: String = CATALOG
        .lines()
        .enumerate()
        .map(|(k, l)| match k {
            0 => format!("{l},price\n"),
            3 => format!("{l},-2.50\n"),
            _ => format!("{l},1.99\n"),
        })
        .collect();
    fs::write(fx.dir.path().join("catalog.csv"), priced).unwrap();
    let out = fx.path("offers.csv");
    let o = fx.run(&["--level", "0", "--catalog-price-col", "price", "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("catalog.csv:4") && err.contains("price"), "{err}");
    assert!(!Path::new(&out).exists());
    let o = fx.run(&["--level", "0", "--catalog-price-col", "price", "--skip-invalid", "--out", &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 catalogue rows rejected"), "{err}");
    let rejects = fs::read_to_string(format!("{out}.catalog-rejects.csv")).unwrap();
    assert!(rejects.lines().nth(1).unwrap().starts_with("4,price,"), "{rejects}");
}

/// Runs cross-sell on `fx`'s purchases (with customer, item and basket columns) and the
/// catalogue `catalog` read with the category columns `levels`, plus `extra`.
fn cross_sell(fx: &Fx, catalog: &str, levels: &str, extra: &[&str]) -> std::process::Output {
    let (p, c) = (fx.path("p.csv"), fx.path(catalog));
    let base = ["cross-sell", "--purchases", &p, "--customer-col", "customer", "--item-col", "item"];
    let cat =
        ["--basket-col", "basket", "--catalog", &c, "--catalog-item-col", "item", "--catalog-category-cols", levels];
    let args: Vec<&str> = base.iter().chain(&cat).chain(["--min-count", "2"].iter()).chain(extra).copied().collect();
    common::run_cobuy(fx.dir.path(), &args)
}

fn ok(o: std::process::Output) -> String {
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{log}");
    log
}

/// Without `--level`, offers are grouped at level 1, or at the only level of a one-level
/// catalogue (the bundled UCI Online Retail one), and the log says which.
#[test]
fn the_default_level_exists_in_the_catalogue_and_is_logged() {
    let fx = Fx::new();
    let level = |col: usize| -> BTreeMap<String, String> {
        CATALOG
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .map(|f| (f[0].into(), f[col].into()))
            .collect()
    };
    let out = fx.path("offers.csv");
    let log = ok(cross_sell(&fx, "catalog.csv", "department,aisle", &["--out", &out]));
    assert!(log.contains("categories at level 1 of the catalogue's 2"), "{log}");
    let aisle = level(2);
    let got = rows(&out);
    assert!(!got.is_empty());
    assert!(got.iter().all(|r| aisle[&r[2]] == r[4]), "{got:?}");

    let one_level: String = CATALOG.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect();
    fs::write(fx.dir.path().join("flat.csv"), one_level).unwrap();
    let log = ok(cross_sell(&fx, "flat.csv", "department", &["--out", &out]));
    assert!(log.contains("categories at level 0 of the catalogue's 1"), "{log}");
    let dept = level(1);
    let got = rows(&out);
    assert!(!got.is_empty());
    assert!(got.iter().all(|r| dept[&r[2]] == r[4]), "{got:?}");
}

/// Cross-sell takes recommend's filter flags: a deny list keeps out an item that is not in
/// the catalogue (offered on evidence alone by the mixed scoring, as postage is in the bundled data),
/// an allow list restricts the offers to its items.
#[test]
fn cross_sell_takes_the_deny_and_allow_lists() {
    let fx = Fx::new();
    // Postage on every basket of the even customers: bought together with everything.
    let mut text = purchases();
    let with_postage: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(2).map(String::from))
        .filter(|b| b[1..b.find('b').unwrap()].parse::<u32>().unwrap() % 2 == 0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|b| format!("{},postage,{b}\n", &b[..b.find('b').unwrap()]))
        .collect();
    text.extend(with_postage);
    fs::write(fx.dir.path().join("p.csv"), text).unwrap();
    let out = fx.path("offers.csv");
    let all = |out: &str| rows(out).into_iter().map(|r| (r[0].clone(), r[2].clone())).collect::<Vec<_>>();
    // The default scoring never offers an item without a category; the mixed one does,
    // unless it is denied.
    ok(cross_sell(&fx, "catalog.csv", "department,aisle", &["--top", "10", "--out", &out]));
    assert!(!all(&out).is_empty() && all(&out).iter().all(|(_, i)| i != "postage"));
    ok(cross_sell(&fx, "catalog.csv", "department,aisle", &["--top", "10", "--out", &out, "--scoring", "mix"]));
    assert!(all(&out).iter().any(|(_, i)| i == "postage"), "postage is offered without a deny list");

    fs::write(fx.dir.path().join("deny.txt"), "postage\nghost\n").unwrap();
    let deny = ["--deny", &fx.path("deny.txt"), "--out", &out, "--scoring", "mix"];
    let log = ok(cross_sell(&fx, "catalog.csv", "department,aisle", &deny));
    assert!(log.contains("deny.txt: 1 of its 2 item ids is not in the model"), "{log}");
    let denied = all(&out);
    assert!(!denied.is_empty() && denied.iter().all(|(_, i)| i != "postage"), "{denied:?}");

    fs::write(fx.dir.path().join("allow.txt"), "water\njuice\nbread\n").unwrap();
    let allow = ["--allow", &fx.path("allow.txt"), "--out", &out, "--scoring", "mix"];
    ok(cross_sell(&fx, "catalog.csv", "department,aisle", &allow));
    let allowed = all(&out);
    assert!(!allowed.is_empty(), "some customers have not bought all three");
    assert!(allowed.iter().all(|(_, i)| ["water", "juice", "bread"].contains(&i.as_str())), "{allowed:?}");
}

/// `--model` scores with a model saved by `cobuy fit` from the same purchases: the offers
/// of fitting the same algorithm in the command; fit options beside it, or a model of other
/// purchases, are usage errors.
#[test]
fn cross_sell_scores_with_a_saved_model() {
    let fx = Fx::new();
    let (p, m) = (fx.path("p.csv"), fx.path("m.cobuy"));
    let fit = ["fit", "--purchases", &p, "--customer-col", "customer", "--item-col", "item", "--basket-col", "basket"];
    let args: Vec<&str> = fit.iter().copied().chain(["--algorithm", "item-knn", "--model", &m]).collect();
    assert!(common::run_cobuy(fx.dir.path(), &args).status.success());
    let (fitted, saved) = (fx.path("fitted.csv"), fx.path("saved.csv"));
    ok(cross_sell(&fx, "catalog.csv", "department,aisle", &["--algorithm", "item-knn", "--out", &fitted]));
    let log = ok(cross_sell(&fx, "catalog.csv", "department,aisle", &["--model", &m, "--out", &saved]));
    assert!(log.contains(&format!("affinity: {m}, item-knn")), "{log}");
    assert_eq!(fs::read_to_string(&fitted).unwrap(), fs::read_to_string(&saved).unwrap());

    let out = fx.path("bad.csv");
    let o = cross_sell(&fx, "catalog.csv", "department,aisle", &["--model", &m, "--neighbors", "5", "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already fitted"), "{}", String::from_utf8_lossy(&o.stderr));
    // A model of the first half of the rows knows fewer customers.
    let half: String = purchases().lines().take(200).map(|l| format!("{l}\n")).collect();
    fs::write(fx.dir.path().join("half.csv"), half).unwrap();
    let h = fx.path("half.csv");
    let args: Vec<&str> =
        ["fit", "--purchases", &h, "--customer-col", "customer", "--item-col", "item", "--model", &m].to_vec();
    assert!(common::run_cobuy(fx.dir.path(), &args).status.success());
    let o = cross_sell(&fx, "catalog.csv", "department,aisle", &["--model", &m, "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fitted from other purchases"), "{err}");
    assert!(!Path::new(&out).exists());
}
