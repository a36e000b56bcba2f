//! `cobuy customers`: the per-customer file on CDNOW checked against the closed forms of
//! `value_oracle` with the parameters the log prints, the tiers, and the bad-input rules
//! (no times, no amounts, amounts of 0, nobody buying twice, horizons and discount rates
//! out of range), each with its exit code and message; the same bytes for any thread count;
//! a log of several read chunks summarised as a naive count of its lines does; a bad line
//! named by file, line and column.

use std::fs;
use std::path::Path;

use super::common::{Lcg, civil, run_cobuy};
use super::value_cdnow::cdnow_csv;
use super::value_oracle as oracle;

const CDNOW_FLAGS: [&str; 8] =
    ["--customer-col", "customer", "--time-col", "date", "--amount-col", "dollars", "--until", "1997-09-30"];

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The CSV as header and rows of fields.
fn table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    (header, lines.map(|l| l.split(',').map(String::from).collect()).collect())
}

fn col(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// `name = VALUE` from the model's log line.
fn logged(stderr: &str, model: &str, name: &str) -> f64 {
    let line = stderr.lines().find(|l| l.starts_with(&format!("cobuy: {model}: "))).unwrap();
    let at = line.find(&format!(" {name} = ")).unwrap() + name.len() + 4;
    line[at..].split([' ', ',', ';']).next().unwrap().parse().unwrap()
}

#[test]
fn cdnow_scores_are_the_models_closed_forms() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    let mut args = vec!["customers", "--purchases", input.to_str().unwrap(), "--model", "bg-nbd"];
    args.extend(CDNOW_FLAGS);
    args.extend(["--horizon", "26", "--out", "out.csv"]);
    let o = run_cobuy(dir.path(), &args);
    let log = stderr(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("a purchase is a distinct day"), "{log}");
    let p = ["r", "alpha", "a", "b"].map(|n| logged(&log, "bg-nbd", n));
    assert!((p[0] - 0.2426).abs() < 1e-4 && (p[3] - 2.4259).abs() < 1e-3, "{p:?}");
    assert!(log.contains("8 purchase rows with an amount of 0 or less"), "{log}");
    let (h, rows) = table(&dir.path().join("out.csv"));
    assert_eq!(rows.len(), 2357);
    let (x, tx, t) = (col(&h, "repeat_days"), col(&h, "recency_weeks"), col(&h, "age_weeks"));
    let (alive, none, expected) = (col(&h, "p_alive"), col(&h, "p_no_purchase"), col(&h, "expected_purchases"));
    let num = |r: &Vec<String>, c: usize| r[c].parse::<f64>().unwrap();
    for r in &rows {
        // The file's times are rounded to 4 decimals; the printed parameters to 6.
        let (x, tx, t) = (num(r, x), num(r, tx), num(r, t));
        let a = oracle::bg_p_alive(&p, x, tx, t, false);
        assert!((num(r, alive) - a).abs() < 2e-5, "{r:?}: P(alive) {a}");
        let no = 1.0 - a + a * ((p[1] + t) / (p[1] + t + 26.0)).powf(p[0] + x);
        assert!((num(r, none) - no).abs() < 2e-5, "{r:?}: P(none) {no}");
        assert!(num(r, expected) >= 0.0);
    }
    // Spot check of the expectation against its integral.
    let r = &rows[0];
    let e = oracle::bg_expected(&p, num(r, x), num(r, tx), num(r, t), 26.0, false);
    assert!((num(r, expected) - e).abs() < 1e-4, "{r:?}: {e}");
    // Tiers: 471 top and 471 bottom of 2,357, split by lifetime value.
    let (tier, clv) = (col(&h, "tier"), col(&h, "lifetime_value"));
    let of = |name: &str| rows.iter().filter(|r| r[tier] == name).map(|r| num(r, clv)).collect::<Vec<f64>>();
    let (top, middle, bottom) = (of("top"), of("middle"), of("bottom"));
    assert_eq!((top.len(), bottom.len()), (471, 471));
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert!(min(&top) >= max(&middle) && min(&middle) >= max(&bottom));
    // Revenue: the customer's positive dollars up to the end, summed from the input.
    let text = fs::read_to_string(&input).unwrap();
    let want: f64 = text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("0001,") && &l[5..15] <= "1997-09-30")
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let first = rows.iter().find(|r| r[0] == "0001").unwrap();
    assert!((num(first, col(&h, "revenue")) - want).abs() < 0.006, "{first:?} vs {want}");
}

#[test]
fn the_same_bytes_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    for threads in ["1", "3"] {
        let out = format!("out{threads}.csv");
        let mut args = vec!["customers", "--purchases", input.to_str().unwrap(), "--threads", threads];
        args.extend(CDNOW_FLAGS);
        args.extend(["--model", "pareto-nbd", "--out", &out]);
        let o = run_cobuy(dir.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(fs::read(dir.path().join("out1.csv")).unwrap(), fs::read(dir.path().join("out3.csv")).unwrap());
}

fn run_on(text: &str, extra: &[&str]) -> (std::process::Output, String) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.csv"), text).unwrap();
    let mut args = vec!["customers", "--purchases", "p.csv", "--customer-col", "c", "--out", "out.csv"];
    args.extend(extra);
    let o = run_cobuy(dir.path(), &args);
    let out = fs::read_to_string(dir.path().join("out.csv")).unwrap_or_default();
    (o, out)
}

const LOG: &str = "c,t,amt\na,2020-01-01,5\na,2020-01-03,0\na,2020-01-05,2\nb,2020-01-02,4\nb,2020-01-02,6\nb,2020-02-02,2.5\nd,2020-01-20,3\n";

#[test]
fn no_times_is_refused() {
    let (o, out) = run_on(LOG, &["--amount-col", "amt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs purchase times") && stderr(&o).contains("--time-col"), "{}", stderr(&o));
    assert!(out.is_empty(), "no file written");
}

#[test]
fn without_amounts_spend_is_left_out_and_said() {
    let (o, out) = run_on(LOG, &["--time-col", "t"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no amount or price column"), "{}", stderr(&o));
    let header = out.lines().next().unwrap();
    for c in ["revenue", "expected_spend", "lifetime_value", ",m,"] {
        assert!(!header.contains(c), "{header}");
    }
    assert!(header.contains("expected_purchases"));
}

#[test]
fn amounts_of_zero_are_purchases_without_spend() {
    let (o, out) = run_on(LOG, &["--time-col", "t", "--amount-col", "amt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 purchase rows with an amount of 0 or less"), "{}", stderr(&o));
    let h: Vec<&str> = out.lines().next().unwrap().split(',').collect();
    let a: Vec<&str> = out.lines().find(|l| l.starts_with("a,")).unwrap().split(',').collect();
    let at = |n: &str| h.iter().position(|c| *c == n).unwrap();
    // a: three purchase days (the free one counts), revenue 5 + 2, mean repeat spend 2
    // (the free day has no spend); b: two rows on one day are one purchase.
    assert_eq!((a[at("purchases")], a[at("revenue")], a[at("mean_repeat_spend")]), ("3", "7.00", "2.00"));
    let b: Vec<&str> = out.lines().find(|l| l.starts_with("b,")).unwrap().split(',').collect();
    assert_eq!((b[at("purchases")], b[at("revenue")], b[at("mean_repeat_spend")]), ("2", "12.50", "2.50"));
    assert!(!out.contains("NaN") && !out.contains("inf"));
}

#[test]
fn nobody_buying_twice_falls_back_to_summaries() {
    let text = "c,t,amt\na,2020-01-01,5\nb,2020-01-01,7\nc,2020-01-01,1\nd,2020-01-01,3\ne,2020-01-01,9\n";
    let (o, out) = run_on(text, &["--time-col", "t", "--amount-col", "amt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no customer bought twice"), "{}", stderr(&o));
    assert!(stderr(&o).contains("tiers by past revenue"), "{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6);
    // One of five customers in each outer tier, by revenue; model columns empty.
    assert!(lines.iter().any(|l| l.starts_with("e,") && l.contains(",top,")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("c,") && l.contains(",bottom,")), "{out}");
    assert!(lines[1].contains(",,,,,"), "{out}");
    assert!(!out.contains("NaN"));
}

#[test]
fn horizons_and_discount_rates_out_of_range_are_refused() {
    for (flags, what) in [
        (["--horizon", "0"], "horizon"),
        (["--horizon", "-3"], "horizon"),
        (["--horizon", "100000"], "horizon"),
        (["--discount", "-0.1"], "discount"),
        (["--discount", "1.5"], "discount"),
        (["--unit", "fortnight"], "--unit"),
        (["--model", "bgnbd"], "--model"),
        (["--until", "someday"], "--until"),
    ] {
        let mut extra = vec!["--time-col", "t"];
        extra.extend(flags);
        let (o, out) = run_on(LOG, &extra);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(what), "{flags:?}: {}", stderr(&o));
        assert!(out.is_empty());
    }
}

#[test]
fn baskets_count_purchases_when_given() {
    let text =
        "c,t,o\na,2020-01-01 10:00,o1\na,2020-01-01 18:00,o2\na,2020-01-09,o3\nb,2020-01-02,o4\nb,2020-01-05,o5\n";
    let (o, out) = run_on(text, &["--time-col", "t", "--basket-col", "o"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("a purchase is a distinct basket"), "{}", stderr(&o));
    assert!(out.starts_with("customer,purchases,repeat_baskets,"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("a,3,2,")), "{out}");
}

/// A log of 45,000 customers over three read chunks (4 MiB each), rows in day order
/// (so every chunk holds customers met before and new ones), some customers buying several
/// times a day: the per-customer file is the same for 1, 2 and 4 threads, and its counts and
/// revenue are those of a naive pass over the lines.
#[test]
fn a_log_of_many_chunks_gives_the_same_bytes_for_1_2_and_4_threads_and_the_naive_counts() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(13);
    // (day, customer, cents), sorted by day.
    let mut rows: Vec<(i64, u32, u64)> = Vec::new();
    for c in 0..45_000u32 {
        let first = i64::from(rng.below(300));
        for _ in 0..1 + rng.skewed(30) {
            rows.push((first + i64::from(rng.skewed(200)), c, u64::from(rng.below(20_000))));
        }
    }
    rows.sort_unstable();
    let mut text = String::from("c,t,amt\n");
    let mut naive: BTreeMap<String, (BTreeSet<i64>, u64)> = BTreeMap::new();
    for &(day, c, cents) in &rows {
        let id = format!("customer-{}", c.wrapping_mul(2_654_435_761) % 1_000_003);
        text.push_str(&format!("{id},{},{}.{:02}\n", civil(18_000 + day), cents / 100, cents % 100));
        let e = naive.entry(id).or_default();
        e.0.insert(day);
        e.1 += cents;
    }
    assert!(text.len() > 2 * (4 << 20), "{} bytes: too few chunks", text.len());
    fs::write(dir.path().join("p.csv"), &text).unwrap();
    let mut outs = Vec::new();
    for threads in ["1", "2", "4"] {
        let out = format!("out{threads}.csv");
        let args = [
            "customers",
            "--purchases",
            "p.csv",
            "--customer-col",
            "c",
            "--time-col",
            "t",
            "--amount-col",
            "amt",
            "--model",
            "bg-nbd",
            "--threads",
            threads,
            "--out",
            &out,
        ];
        let o = run_cobuy(dir.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
        outs.push(fs::read(dir.path().join(&out)).unwrap());
    }
    assert!(outs[0] == outs[1] && outs[0] == outs[2], "the files differ between thread counts");
    let (h, body) = table(&dir.path().join("out1.csv"));
    let (cc, pc, rc) = (col(&h, "customer"), col(&h, "purchases"), col(&h, "revenue"));
    assert_eq!(body.len(), naive.len());
    for r in &body {
        let (days, cents) = &naive[&r[cc]];
        assert_eq!(r[pc].parse::<usize>().unwrap(), days.len(), "{r:?}");
        assert_eq!(r[rc], format!("{}.{:02}", cents / 100, cents % 100), "{r:?}");
    }
}

/// A bad time in the log stops the read: exit code 2, the file, line and column named, no
/// customers file.
#[test]
fn a_bad_line_names_file_line_and_column() {
    let text = "c,t,amt\na,2020-01-01,5\nb,2020-01-02,4\nb,2020-13-45,6\nd,2020-01-20,3\n";
    let (o, out) = run_on(text, &["--time-col", "t", "--amount-col", "amt"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("p.csv:4: column t"), "{}", stderr(&o));
    assert!(out.is_empty(), "no file written");
}
