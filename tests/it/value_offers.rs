//! Customer value beyond the per-customer file: the report (the Pareto curve and the
//! segment and tier tables recomputed from the input by sorting), share of wallet (the gaps
//! recomputed by brute force from the definition on a small log, in `cobuy customers
//! --wallet` and cross-sell's `wallet_gap` column), and value joined to the offers (the
//! columns, `--order`, `--only-tier`, the job's `[customers]` step) with their bad inputs.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::common::{Lcg, run_cobuy};
use super::value_cdnow::cdnow_csv;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A CSV without quoted fields as (header, rows).
fn table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    (header, lines.map(|l| l.split(',').map(String::from).collect()).collect())
}

fn col(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

const CDNOW_FLAGS: [&str; 8] =
    ["--customer-col", "customer", "--time-col", "date", "--amount-col", "dollars", "--until", "1997-09-30"];

#[test]
fn the_report_is_the_sorted_revenue_and_the_same_bytes_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    for threads in ["1", "3"] {
        let mut args = vec!["customers", "--purchases", input.to_str().unwrap(), "--threads", threads];
        args.extend(CDNOW_FLAGS);
        let (out, rep) = (format!("c{threads}.csv"), format!("rep{threads}"));
        args.extend(["--out", &out, "--report", &rep]);
        let o = run_cobuy(dir.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for f in ["report.md", "report.json", "pareto.svg", "segments.svg", "tiers.svg"] {
        let a = fs::read(dir.path().join("rep1").join(f)).unwrap();
        assert_eq!(a, fs::read(dir.path().join("rep3").join(f)).unwrap(), "{f}");
        if f.ends_with(".svg") {
            let s = String::from_utf8(a).unwrap();
            assert!(s.starts_with("<svg ") && s.ends_with("</svg>\n") && !s.contains("NaN"), "{f}");
        }
    }
    // The oracle: each customer's positive dollars up to the end, from the input.
    let text = fs::read_to_string(&input).unwrap();
    let mut revenue: BTreeMap<String, f64> = BTreeMap::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[1] <= "1997-09-30" {
            let d: f64 = f[3].parse().unwrap();
            *revenue.entry(f[0].to_string()).or_default() += d.max(0.0);
        }
    }
    let mut sorted: Vec<f64> = revenue.values().copied().collect();
    sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
    let total: f64 = sorted.iter().sum();
    let n = sorted.len();
    let top = |k: usize| sorted[..k].iter().sum::<f64>() / total;
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("rep1/report.json")).unwrap()).unwrap();
    assert_eq!(json["customers"], n as u64);
    let curve = json["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 101);
    for (p, v) in curve.iter().enumerate() {
        let want = top(((p as f64 / 100.0) * n as f64).round() as usize);
        assert!((v.as_f64().unwrap() - want).abs() < 1e-9, "{p}%: {v} against {want}");
    }
    let k80 = (1..=n).find(|&k| top(k) >= 0.8).unwrap();
    assert_eq!(json["customers_for_80"], k80 as u64);
    assert!((json["top_20_share"].as_f64().unwrap() - top((0.2 * n as f64).round() as usize)).abs() < 1e-9);
    // Segment and tier tables: the customers file's own labels, counted.
    let (h, rows) = table(&fs::read_to_string(dir.path().join("c1.csv")).unwrap());
    for (key, column) in [("segments", "segment"), ("tiers", "tier")] {
        let mut count: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for r in &rows {
            let e = count.entry(r[col(&h, column)].as_str()).or_default();
            e.0 += 1;
            e.1 += revenue[&r[col(&h, "customer")]];
        }
        for g in json[key].as_array().unwrap() {
            let (customers, sum) = count.get(g["name"].as_str().unwrap()).copied().unwrap_or_default();
            assert_eq!(g["customers"], customers, "{g}");
            assert!((g["share"].as_f64().unwrap() - sum / total).abs() < 1e-9, "{g}");
        }
        assert_eq!(
            json[key].as_array().unwrap().iter().map(|g| g["customers"].as_u64().unwrap()).sum::<u64>(),
            n as u64
        );
    }
    let md = fs::read_to_string(dir.path().join("rep1/report.md")).unwrap();
    assert!(md.contains(&format!("({k80}) hold 80% of it")), "{md}");
    assert!(md.contains("- bg-nbd: r = "), "{md}");
}

/// A small log with amounts (some 0) and a catalogue of four categories:
/// (purchases CSV, catalogue CSV).
fn small_log(seed: u64) -> (String, String) {
    let mut rng = Lcg(seed);
    let mut p = String::from("c,item,t,amt\n");
    for c in 0..120u32 {
        let rows = 1 + rng.below(12);
        for _ in 0..rows {
            let item = rng.skewed(16);
            let day = 1 + rng.below(27);
            // Customers buy in categories by taste: the lower the id, the fewer categories.
            let item = if c % 3 == 0 { item % 8 } else { item };
            let amount = match rng.below(20) {
                0 => "0".to_string(),
                1 => "0.00".to_string(),
                _ => format!("{}.{:02}", 1 + rng.below(40), rng.below(100)),
            };
            p.push_str(&format!("c{c:03},i{item:02},2021-03-{day:02},{amount}\n"));
        }
    }
    // A customer whose only purchase has no positive amount.
    p.push_str("zero,i01,2021-03-05,0\n");
    let mut cat = String::from("item_id,category\n");
    for i in 0..16 {
        // i15 has no category.
        if i != 15 {
            cat.push_str(&format!("i{i:02},CAT{}\n", i % 4));
        }
    }
    (p, cat)
}

/// The gaps from the definition: bands are tenths of revenue (1 + the tenth of customers
/// strictly below); a band's category counts with at least 5 buyers and half the band
/// buying; a gap is spend under half the buyers' median. (customer, category) -> gap.
fn brute_force_gaps(purchases: &str, catalogue: &str) -> BTreeMap<(String, String), f64> {
    let category: BTreeMap<&str, &str> = catalogue.lines().skip(1).map(|l| l.split_once(',').unwrap()).collect();
    let mut revenue: BTreeMap<String, f64> = BTreeMap::new();
    let mut spend: BTreeMap<(String, String), f64> = BTreeMap::new();
    for l in purchases.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let a: f64 = f[3].parse().unwrap();
        let r = revenue.entry(f[0].to_string()).or_default();
        if a > 0.0 {
            *r += a;
            if let Some(g) = category.get(f[1]) {
                *spend.entry((f[0].to_string(), g.to_string())).or_default() += a;
            }
        }
    }
    let n = revenue.len() as f64;
    let band: BTreeMap<&String, usize> = revenue
        .iter()
        .map(|(c, r)| (c, ((10.0 * revenue.values().filter(|v| *v < r).count() as f64 / n).floor() as usize).min(9)))
        .collect();
    let categories: Vec<&str> = {
        let mut v: Vec<&str> = category.values().copied().collect();
        v.sort();
        v.dedup();
        v
    };
    let mut gaps = BTreeMap::new();
    for (c, &b) in &band {
        let members: Vec<&String> = band.iter().filter(|(_, x)| **x == b).map(|(m, _)| *m).collect();
        for g in &categories {
            let mut buyers: Vec<f64> =
                members.iter().filter_map(|m| spend.get(&((*m).clone(), g.to_string()))).copied().collect();
            if buyers.len() < 5 || (buyers.len() as f64) < 0.5 * members.len() as f64 {
                continue;
            }
            buyers.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let m = buyers.len();
            let median = if m % 2 == 1 { buyers[m / 2] } else { (buyers[m / 2 - 1] + buyers[m / 2]) / 2.0 };
            let own = spend.get(&((*c).clone(), g.to_string())).copied().unwrap_or(0.0);
            if own < 0.5 * median {
                gaps.insert(((*c).clone(), g.to_string()), median - own);
            }
        }
    }
    gaps
}

const SMALL: [&str; 10] =
    ["--customer-col", "c", "--item-col", "item", "--time-col", "t", "--amount-col", "amt", "--catalog", "cat.csv"];

fn write_small(dir: &Path, seed: u64) -> (String, String) {
    let (p, cat) = small_log(seed);
    fs::write(dir.join("p.csv"), &p).unwrap();
    fs::write(dir.join("cat.csv"), &cat).unwrap();
    (p, cat)
}

#[test]
fn wallet_gaps_are_the_brute_force_ones() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [3, 11] {
        let (p, cat) = write_small(dir.path(), seed);
        let want = brute_force_gaps(&p, &cat);
        assert!(want.len() > 20, "a test with gaps: {}", want.len());
        let mut got = BTreeMap::new();
        for threads in ["1", "2"] {
            let mut args = vec!["customers", "--purchases", "p.csv", "--threads", threads];
            args.extend(SMALL);
            args.extend(["--catalog-category-cols", "category", "--wallet", "w.csv", "--out", "c.csv"]);
            let o = run_cobuy(dir.path(), &args);
            assert!(o.status.success(), "{}", stderr(&o));
            let text = fs::read_to_string(dir.path().join("w.csv")).unwrap();
            assert!(!text.contains("NaN") && !text.contains("inf"));
            let mut rdr = csv::Reader::from_reader(text.as_bytes());
            let mut all = BTreeMap::new();
            let mut last: Option<(String, f64)> = None;
            for r in rdr.records() {
                let r = r.unwrap();
                let gap: f64 = r[6].parse().unwrap();
                assert!(r[7].contains("probably bought elsewhere") && r[7].contains(&r[1]), "{r:?}");
                // Each customer's gaps, the largest first.
                if let Some((c, g)) = &last {
                    assert!(c != &r[0] || *g >= gap, "{r:?}");
                }
                last = Some((r[0].to_string(), gap));
                all.insert((r[0].to_string(), r[1].to_string()), gap);
            }
            if threads == "2" {
                assert_eq!(all, got, "the same for any thread count");
            }
            got = all;
        }
        assert_eq!(got.len(), want.len(), "{got:?}\n{want:?}");
        for (k, g) in &want {
            assert!((got[k] - g).abs() < 0.006, "{k:?}: {} against {g}", got[k]);
        }
        assert!(!got.keys().any(|(c, _)| c == "zero") || want.keys().any(|(c, _)| c == "zero"));
    }
}

#[test]
fn wallet_needs_amounts_an_item_column_and_a_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    write_small(dir.path(), 5);
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--customer-col",
                "c",
                "--item-col",
                "item",
                "--time-col",
                "t",
                "--catalog",
                "cat.csv",
                "--catalog-category-cols",
                "category",
            ],
            "amounts",
        ),
        (
            &[
                "--customer-col",
                "c",
                "--time-col",
                "t",
                "--amount-col",
                "amt",
                "--catalog",
                "cat.csv",
                "--catalog-category-cols",
                "category",
            ],
            "--item-col",
        ),
        (&["--customer-col", "c", "--item-col", "item", "--time-col", "t", "--amount-col", "amt"], "catalogue"),
    ];
    for (flags, word) in cases {
        let mut args = vec!["customers", "--purchases", "p.csv", "--wallet", "w.csv", "--out", "c.csv"];
        args.extend(flags);
        let o = run_cobuy(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(word), "{flags:?}: {}", stderr(&o));
        assert!(!dir.path().join("w.csv").exists());
    }
}

/// Writes the small log, its customers file `c.csv` and an item-kNN model `m.cobuy`.
fn customers_and_model(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    write_small(dir, 7);
    let mut args = vec!["customers", "--purchases", "p.csv", "--out", "c.csv"];
    args.extend(&SMALL[..8]);
    let o = run_cobuy(dir, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_cobuy(
        dir,
        &[
            "fit",
            "--purchases",
            "p.csv",
            "--customer-col",
            "c",
            "--item-col",
            "item",
            "--algorithm",
            "item-knn",
            "--model",
            "m.cobuy",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    table(&fs::read_to_string(dir.join("c.csv")).unwrap())
}

#[test]
fn offers_carry_the_customers_value_retention_first() {
    let dir = tempfile::tempdir().unwrap();
    let (h, rows) = customers_and_model(dir.path());
    let value: BTreeMap<&str, (&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            let f = |n: &str| r[col(&h, n)].as_str();
            (f("customer"), (f("tier"), f("churn_risk"), f("lifetime_value")))
        })
        .collect();
    let o = run_cobuy(
        dir.path(),
        &[
            "recommend",
            "--model",
            "m.cobuy",
            "--top",
            "2",
            "--customer-value",
            "c.csv",
            "--order",
            "churn-risk",
            "--only-tier",
            "top,middle",
            "--out",
            "r.csv",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (rh, recs) = table(&fs::read_to_string(dir.path().join("r.csv")).unwrap());
    assert_eq!(rh.join(","), "customer_id,rank,item_id,score,source,tier,churn_risk,lifetime_value");
    let mut order: Vec<&str> = Vec::new();
    for r in &recs {
        let (t, p, v) = value[r[0].as_str()];
        assert_eq!((r[5].as_str(), r[6].as_str(), r[7].as_str()), (t, p, v), "{r:?}");
        assert_ne!(t, "bottom");
        if order.last() != Some(&r[0].as_str()) {
            order.push(&r[0]);
        }
    }
    // Every top and middle customer, once, by churn risk (highest first), ties in id order.
    let mut want: Vec<&str> = value.iter().filter(|(_, v)| v.0 != "bottom").map(|(c, _)| *c).collect();
    want.sort_by(|a, b| value[b].1.parse::<f64>().unwrap().partial_cmp(&value[a].1.parse::<f64>().unwrap()).unwrap());
    assert_eq!(order, want);
    // Up-sell and cross-sell carry the same columns; scores and offers are unchanged.
    for (cmd, always, extra) in
        [("up-sell", vec!["--catalog-price-col", "price"], vec![]), ("cross-sell", vec![], vec!["--wallet"])]
    {
        let cat = "item_id,category,price\n".to_string()
            + &(0..15).map(|i| format!("i{i:02},CAT{},{}.00\n", i % 4, 1 + i)).collect::<String>();
        fs::write(dir.path().join("cat.csv"), cat).unwrap();
        let run = |value: bool, out: &str| {
            let mut args = vec![cmd, "--purchases", "p.csv", "--model", "m.cobuy"];
            args.extend(SMALL);
            args.extend(["--catalog-category-cols", "category", "--top", "3", "--out", out]);
            args.extend(&always);
            if value {
                args.extend(["--customer-value", "c.csv"]);
                args.extend(&extra);
            }
            let o = run_cobuy(dir.path(), &args);
            assert!(o.status.success(), "{cmd}: {}", stderr(&o));
            fs::read_to_string(dir.path().join(out)).unwrap()
        };
        let (plain, with) = (run(false, "plain.csv"), run(true, "with.csv"));
        assert_eq!(plain.lines().count(), with.lines().count());
        assert!(with.lines().count() > 10, "{cmd}: {with}");
        let extra_cols = if cmd == "cross-sell" { 4 } else { 3 };
        for (a, b) in plain.lines().zip(with.lines()).skip(1) {
            let id = a.split(',').next().unwrap();
            let (t, p, v) = value[id];
            let tail: Vec<&str> = b.rsplitn(extra_cols + 1, ',').collect();
            assert_eq!(tail[extra_cols], a, "{cmd}: the plain row first");
            assert_eq!((tail[2], tail[1], tail[0]), (t, p, v), "{cmd}: {b}");
        }
        if cmd == "cross-sell" {
            check_wallet_column(dir.path(), &with);
        }
    }
}

/// Each cross-sell row's wallet_gap is the brute-force gap of its customer and category.
fn check_wallet_column(dir: &Path, offers: &str) {
    let p = fs::read_to_string(dir.join("p.csv")).unwrap();
    let cat = fs::read_to_string(dir.join("cat.csv")).unwrap();
    let cat: String = cat.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect();
    let gaps = brute_force_gaps(&p, &cat);
    let mut rdr = csv::Reader::from_reader(offers.as_bytes());
    let (mut with_gap, mut rows) = (0, 0);
    for r in rdr.records() {
        let r = r.unwrap();
        rows += 1;
        match gaps.get(&(r[0].to_string(), r[4].to_string())) {
            Some(g) => {
                with_gap += 1;
                assert!((r[6].parse::<f64>().unwrap() - g).abs() < 0.006, "{r:?}: {g}");
            }
            None => assert_eq!(&r[6], "", "{r:?}"),
        }
    }
    assert!(with_gap > 0 && with_gap < rows, "{with_gap} of {rows}");
}

#[test]
fn a_customers_file_that_does_not_match_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    customers_and_model(dir.path());
    let good = fs::read_to_string(dir.path().join("c.csv")).unwrap();
    let other: String =
        good.lines().enumerate().map(|(i, l)| if i == 0 { format!("{l}\n") } else { format!("x{l}\n") }).collect();
    let no_tier = good.replace(",tier,", ",level,");
    let nan = {
        let mut lines: Vec<String> = good.lines().map(String::from).collect();
        let h: Vec<&str> = lines[0].split(',').collect();
        let k = h.iter().position(|c| *c == "churn_risk").unwrap();
        let mut f: Vec<String> = lines[1].split(',').map(String::from).collect();
        f[k] = "NaN".into();
        lines[1] = f.join(",");
        lines.join("\n") + "\n"
    };
    let twice = good.clone() + good.lines().nth(1).unwrap() + "\n";
    for (text, word) in [
        (other, "none of its"),
        (no_tier, "no tier column"),
        (nan, "\"NaN\" is not a number from 0 to 1"),
        (twice, "listed twice"),
    ] {
        fs::write(dir.path().join("v.csv"), &text).unwrap();
        let o =
            run_cobuy(dir.path(), &["recommend", "--model", "m.cobuy", "--customer-value", "v.csv", "--out", "r.csv"]);
        assert_eq!(o.status.code(), Some(2), "{word}: {}", stderr(&o));
        assert!(stderr(&o).contains(word), "{word}: {}", stderr(&o));
        assert!(!dir.path().join("r.csv").exists());
    }
    for (flags, word) in [
        (vec!["--order", "churn-risk"], "need the customers file"),
        (vec!["--customer-value", "c.csv", "--order", "loyalty"], "--order takes"),
        (vec!["--customer-value", "c.csv", "--only-tier", "gold"], "--only-tier takes"),
    ] {
        let mut args = vec!["recommend", "--model", "m.cobuy", "--out", "r.csv"];
        args.extend(flags);
        let o = run_cobuy(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{word}: {}", stderr(&o));
        assert!(stderr(&o).contains(word), "{word}: {}", stderr(&o));
    }
}

#[test]
fn the_jobs_customers_step_feeds_the_offers() {
    let dir = tempfile::tempdir().unwrap();
    write_small(dir.path(), 9);
    let job = r#"summary = "out/summary.json"
[input]
purchases = "p.csv"
customer_col = "c"
item_col = "item"
time_col = "t"
amount_col = "amt"
[fit]
model = "out/m.cobuy"
algorithm = "item-knn"
[customers]
out = "out/customers.csv"
report = "out/value"
[customers.settings]
tier_by = "revenue"
[recommend]
out = "out/recs.csv"
top = 2
order = "churn-risk"
only_tier = ["top"]
"#;
    fs::write(dir.path().join("job.toml"), job).unwrap();
    let o = run_cobuy(dir.path(), &["run", "job.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = table(&fs::read_to_string(dir.path().join("out/customers.csv")).unwrap());
    let top: Vec<&str> = rows.iter().filter(|r| r[col(&h, "tier")] == "top").map(|r| r[0].as_str()).collect();
    let recs = fs::read_to_string(dir.path().join("out/recs.csv")).unwrap();
    assert!(recs.starts_with("customer_id,rank,item_id,score,source,tier,churn_risk,lifetime_value\n"));
    let mut scored: Vec<&str> = recs.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    scored.dedup();
    assert_eq!(scored.len(), top.len());
    assert!(dir.path().join("out/value/report.md").exists());
    let summary = fs::read_to_string(dir.path().join("out/summary.json")).unwrap();
    assert!(summary.contains("\"customers\": {") && summary.contains("customers.csv"), "{summary}");
    // A bad step setting stops the job before anything is read.
    fs::write(dir.path().join("bad.toml"), job.replace("tier_by = \"revenue\"", "tier_by = \"size\"")).unwrap();
    let o = run_cobuy(dir.path(), &["run", "bad.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tier-by"), "{}", stderr(&o));
}

#[test]
fn without_amounts_or_repeat_buyers_the_report_ranks_by_purchases_never_nan() {
    let dir = tempfile::tempdir().unwrap();
    for (text, flags) in [
        ("c,t\na,2020-01-01\na,2020-01-05\na,2020-01-09\nb,2020-01-02\nd,2020-01-02\nd,2020-01-04\n", vec![]),
        // Everyone on one day, every amount 0: nobody buys twice, no revenue.
        ("c,t,amt\na,2020-01-01,0\nb,2020-01-01,0\nd,2020-01-01,0\n", vec!["--amount-col", "amt"]),
    ] {
        fs::write(dir.path().join("p.csv"), text).unwrap();
        let mut args = vec!["customers", "--purchases", "p.csv", "--customer-col", "c", "--time-col", "t"];
        args.extend(&flags);
        args.extend(["--out", "c.csv", "--report", "rep"]);
        let o = run_cobuy(dir.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.path().join("rep/report.json")).unwrap()).unwrap();
        assert_eq!(json["measure"], "purchases", "{json}");
        // Purchases 3, 2, 1 (or 1, 1, 1): the top third (one customer) holds 3/6 (or 1/3).
        let want = if flags.is_empty() { 0.5 } else { 1.0 / 3.0 };
        assert!((json["curve"][33].as_f64().unwrap() - want).abs() < 1e-12, "{json}");
        assert_eq!(json["curve"][100], 1.0);
        for f in ["report.md", "report.json", "pareto.svg", "segments.svg", "tiers.svg"] {
            let s = fs::read_to_string(dir.path().join("rep").join(f)).unwrap();
            // "infinity (at the boundary)" names a parameter; no number is NaN or inf.
            assert!(!s.contains("NaN") && !s.replace("infinity", "").contains("inf"), "{f}: {s}");
        }
        assert!(fs::read_to_string(dir.path().join("rep/report.md")).unwrap().contains("ranked by purchases"));
    }
}
