//! Time decay against bad dates (issue 11, item 4): a purchase dated 9999-12-31 or
//! 1900-01-01 is reported and kept, but cannot move the decay reference; a decay that
//! zeroes (almost) every weight is refused; half-lives out of range are usage errors; an
//! up-sell date computed past year 9999 is never printed cut. And where decay enters
//! similarities (issue 12): an item, or a customer, whose purchases are all old is a weak
//! neighbour, by the documented formula (`cobuy::matrix::Weighting`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Output;

use cobuy::algo::Algorithm;
use cobuy::algo::similarity::SimilarityParams;
use cobuy::matrix::{InteractionsBuilder, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};

use crate::common::{COLUMNS, SEED, decay, near, purchase_lines, run_cobuy, write_lines};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let o = run_cobuy(dir, args);
    assert!(o.status.success(), "cobuy {args:?} failed: {}", stderr(&o));
    o
}

/// Each customer's recommended items, in rank order.
fn lists(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = fs::read_to_string(path).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        out.entry(f[0].to_string()).or_default().push(f[2].to_string());
    }
    out
}

/// Rows of a recommendations file whose source is `popular` (filled, score 0).
fn popular_rows(path: &Path) -> usize {
    fs::read_to_string(path).unwrap().lines().filter(|l| l.ends_with(",popular")).count()
}

/// The generated log with the time of one purchase row (not the newest) replaced by
/// `date`; the row's index and customer id.
fn with_bad_date(date: &str) -> (String, Vec<String>, usize, String) {
    let (header, mut lines) = purchase_lines(SEED);
    let newest = lines.iter().map(|l| l.rsplit(',').next().unwrap().to_string()).max().unwrap();
    let at = (100..)
        .find(|&k| {
            let f: Vec<&str> = lines[k].split(',').collect();
            !f[2].starts_with('-') && f[4] != newest
        })
        .unwrap();
    let mut f: Vec<String> = lines[at].split(',').map(str::to_string).collect();
    let customer = f[0].clone();
    f[4] = date.to_string();
    lines[at] = f.join(",");
    (header, lines, at, customer)
}

/// Fits `algorithm` (with `extra` flags) on `rows` and recommends the top 10 to every
/// customer; returns the recommendations file and the fit's log.
fn fit_and_recommend(
    dir: &Path,
    name: &str,
    header: &str,
    rows: &[String],
    extra: &[&str],
) -> (std::path::PathBuf, String) {
    let csv = format!("{name}.csv");
    write_lines(&dir.join(&csv), header, rows);
    let model = format!("{name}.cobuy");
    let mut args = vec!["fit", "--purchases", &csv];
    args.extend_from_slice(&COLUMNS);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--model", &model]);
    let log = stderr(&ok(dir, &args));
    let out = format!("{name}.recs.csv");
    ok(dir, &["--quiet", "recommend", "--model", &model, "--top", "10", "--out", &out]);
    (dir.join(out), log)
}

/// A fitted model's decay reference (unix seconds), from `inspect --json`.
fn reference(dir: &Path, model: &str) -> i64 {
    let o = ok(dir, &["inspect", model, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["params"]["weighting"]["reference_time"].as_i64().unwrap()
}

// ---------------------------------------------------------------------------------------
// Up-sell dates
// ---------------------------------------------------------------------------------------

/// Twelve customers buy a basic TV, then a pro TV 30 days later; `late` buys the basic TV
/// on 9999-12-31, so its offer falls in year 10000: it must not print as `10000-01-3`.
#[test]
fn an_offer_date_past_year_9999_is_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = String::from("customer,item,time\n");
    for c in 0..12 {
        p.push_str(&format!("u{c},tv-basic,2024-01-{:02}\nu{c},tv-pro,2024-02-{:02}\n", c + 1, c + 1));
    }
    p.push_str("late,tv-basic,9999-12-31\n");
    fs::write(dir.path().join("p.csv"), p).unwrap();
    fs::write(dir.path().join("c.csv"), "item,category,price\ntv-basic,tv,100\ntv-pro,tv,250\n").unwrap();
    let args = [
        "up-sell",
        "--purchases",
        "p.csv",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--time-col",
        "time",
        "--catalog",
        "c.csv",
        "--catalog-item-col",
        "item",
        "--catalog-category-cols",
        "category",
        "--catalog-price-col",
        "price",
        "--out",
        "offers.csv",
    ];
    ok(dir.path(), &args);
    let text = fs::read_to_string(dir.path().join("offers.csv")).unwrap();
    let late: Vec<&str> =
        text.lines().find(|l| l.starts_with("late,")).expect("late gets an offer").split(',').collect();
    assert_eq!((late[2], late[4]), ("tv-pro", "tv-basic"), "{text}");
    // Clamped to the last day cobuy reads: a date, and one cobuy reads back.
    assert_eq!(late[5], "9999-12-31", "{text}");
}

// ---------------------------------------------------------------------------------------
// Half-lives
// ---------------------------------------------------------------------------------------

/// Half-lives that are not a number of days a decay can use are usage errors naming the
/// flag, before anything is read; in a job file, the key.
#[test]
fn nonsensical_half_lives_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (header, rows) = purchase_lines(SEED);
    write_lines(&dir.join("p.csv"), &header, &rows);
    for h in ["1e-300", "0", "-1", "NaN", "inf", "0.01", "2e6"] {
        let mut args = vec!["fit", "--purchases", "p.csv"];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(&["--half-life-days", h, "--model", "m.cobuy"]);
        let o = run_cobuy(dir, &args);
        assert_eq!(o.status.code(), Some(2), "{h}: {}", stderr(&o));
        assert!(stderr(&o).contains("--half-life-days"), "{h}: {}", stderr(&o));
        // Short: 1e-300 is not printed as 301 digits.
        assert!(stderr(&o).len() < 300, "{h}: {}", stderr(&o));
        assert!(!dir.join("m.cobuy").exists());
    }
    let job = "[input]\npurchases = \"p.csv\"\ncustomer_col = \"customer\"\nitem_col = \"item\"\ntime_col = \"time\"\n\n\
               [fit]\nmodel = \"m.cobuy\"\nhalf_life_days = 1e-300\n\n[recommend]\nout = \"r.csv\"\n";
    fs::write(dir.join("job.toml"), job).unwrap();
    let o = run_cobuy(dir, &["run", "job.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("half_life_days"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------
// The decay reference
// ---------------------------------------------------------------------------------------

/// Customers whose lists differ between two recommendation files.
fn changed(a: &BTreeMap<String, Vec<String>>, b: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    assert_eq!(a.len(), b.len());
    a.iter().filter(|(c, l)| b.get(*c) != Some(l)).map(|(c, _)| c.clone()).collect()
}

/// One row dated 9999-12-31 (or 1900-01-01) leaves the decay reference where the clean
/// log has it, and the recommendations of everyone else as they were. The bar: under
/// buy-again (60-day half-life) only the customer whose row changed may get another list;
/// under item-kNN with a 30-day half-life, whose similarities that row feeds, the 9999 log
/// gives exactly the lists of the clean log with that row dated at the reference (a pair
/// dated after the reference, like one without a time, does not decay), and the 1900 log
/// changes at most 1% of the lists; no list falls back to popularity more than on the
/// clean log. Before the fix, the 9999 row became the reference: every other purchase was
/// 7,976 years old, weighed 0, and every item-kNN list came from popularity.
#[test]
fn one_bad_date_does_not_move_the_decay_reference() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (header, clean) = purchase_lines(SEED);
    for (algorithm, extra) in
        [("buy-again", &["--algorithm", "buy-again"][..]), ("item-knn", &["--half-life-days", "30"][..])]
    {
        let (clean_recs, clean_log) = fit_and_recommend(dir, &format!("{algorithm}-clean"), &header, &clean, extra);
        assert!(!clean_log.contains("warning"), "{clean_log}");
        let t0 = reference(dir, &format!("{algorithm}-clean.cobuy"));
        let want = lists(&clean_recs);
        for date in ["9999-12-31", "1900-01-01"] {
            let (_, rows, at, customer) = with_bad_date(date);
            let name = format!("{algorithm}-{date}");
            let (recs, log) = fit_and_recommend(dir, &name, &header, &rows, extra);
            assert_eq!(reference(dir, &format!("{name}.cobuy")), t0, "{name}");
            let got = lists(&recs);
            let diff = changed(&want, &got);
            if algorithm == "buy-again" {
                assert!(diff.iter().all(|c| *c == customer), "{name}: {diff:?} changed");
            } else if date.starts_with('1') {
                assert!(diff.len() * 100 <= want.len(), "{name}: {} of {} changed", diff.len(), want.len());
            } else {
                let (_, redated, _, _) = with_bad_date(&t0.to_string());
                let (control, _) = fit_and_recommend(dir, &format!("{name}-control"), &header, &redated, extra);
                assert_eq!(fs::read(&recs).unwrap(), fs::read(&control).unwrap(), "{name}");
            }
            assert!(popular_rows(&recs) <= popular_rows(&clean_recs), "{name}: more popularity fill");
            // Reported with the first line (the header is line 1), and kept.
            let line = at + 2;
            let what = if date.starts_with('9') { "(1 after " } else { ", 1 before " };
            assert!(
                log.contains("warning: 1 purchase row dated far outside the bulk of the log")
                    && log.contains(what)
                    && log.contains(&format!("the first at line {line} ({date} 00:00:00)")),
                "{log}"
            );
            assert!(log.contains("rows: 3000 read"), "{log}");
        }
    }
}

/// The outliers are in the model's ingest summary too (`inspect --json`), and many
/// outliers are counted with the first of them; the reference stays the clean one.
#[test]
fn outliers_are_counted_in_the_summary_with_the_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (header, mut rows) = purchase_lines(SEED);
    // The clean log: without the rows that get bad dates.
    let kept: Vec<String> =
        rows.iter().enumerate().filter(|(k, _)| ![40, 500, 2000].contains(k)).map(|(_, l)| l.clone()).collect();
    write_lines(&dir.join("clean.csv"), &header, &kept);
    for (k, date) in [(500, "9999-12-31"), (40, "2999-01-01 10:00:00"), (2000, "1970-01-01")] {
        let mut f: Vec<String> = rows[k].split(',').map(str::to_string).collect();
        f[4] = date.to_string();
        rows[k] = f.join(",");
    }
    write_lines(&dir.join("p.csv"), &header, &rows);
    for (csv, model) in [("p.csv", "m.cobuy"), ("clean.csv", "clean.cobuy")] {
        let mut args = vec!["fit", "--purchases", csv];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(&["--algorithm", "buy-again", "--model", model]);
        ok(dir, &args);
    }
    let o = ok(dir, &["inspect", "m.cobuy", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &v["info"]["ingest"]["time_outliers"];
    assert_eq!(
        (t["after"].as_u64(), t["before"].as_u64(), t["first_line"].as_u64()),
        (Some(2), Some(1), Some(42)),
        "{v}"
    );
    // The reference works on each pair's latest purchase, so a pair whose latest row is an
    // outlier drops out whole: the reference may be the next newest pair, never far off.
    let (got, clean) = (reference(dir, "m.cobuy"), reference(dir, "clean.cobuy"));
    assert!(got <= clean && clean - got < 86_400, "{got} vs {clean}");
}

/// A decay that weighs (almost) every purchase at zero is refused, naming the flag: a
/// reference date far after the purchases, for the half-life given (126 half-lives and
/// more are below `f32::MIN_POSITIVE`).
#[test]
fn a_decay_that_zeroes_every_weight_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (header, rows) = purchase_lines(SEED);
    write_lines(&dir.join("p.csv"), &header, &rows);
    for extra in [
        &["--half-life-days", "1", "--reference-date", "2024-12-31"][..],
        &["--half-life-days", "30", "--reference-date", "9999-12-31"],
    ] {
        let mut args = vec!["fit", "--purchases", "p.csv"];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--model", "m.cobuy"]);
        let o = run_cobuy(dir, &args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("--half-life-days") && e.contains("at zero"), "{extra:?}: {e}");
        assert!(e.contains("give a longer half-life or an earlier reference date"), "{extra:?}: {e}");
        assert!(!dir.join("m.cobuy").exists());
    }
    // A fast decay that leaves a fair share of the weights is still a model.
    let mut args = vec!["fit", "--purchases", "p.csv"];
    args.extend_from_slice(&COLUMNS);
    args.extend_from_slice(&["--half-life-days", "0.5", "--model", "m.cobuy"]);
    ok(dir, &args);
}

// ---------------------------------------------------------------------------------------
// Decay in similarities
// ---------------------------------------------------------------------------------------

const DAY: i64 = 86_400;
/// The day the purchases below count their ages from (the newest purchase).
const NOW: i64 = 400;

/// Fits `algorithm` with binary weights and a 30-day half-life on (customer, item, day)
/// rows.
fn fit_decayed(algorithm: Algorithm, rows: &[(&str, &str, i64)]) -> Model {
    let mut b = InteractionsBuilder::new();
    for &(c, i, day) in rows {
        b.purchase(c, i, 1.0, None, Some(day * DAY)).unwrap();
    }
    let weighting = Weighting { scheme: Scheme::Binary, half_life_days: Some(30.0), reference_time: None };
    let params = FitParams { algorithm, weighting, ..FitParams::default() };
    let model = Model::fit(b.finish().0, &params, FitInfo::default()).unwrap();
    assert_eq!(model.params().weighting.reference_time, Some(NOW * DAY));
    model
}

/// A purchase 300 days old, decayed with a 30-day half-life: 2^-10 (exact in f32).
fn old() -> f64 {
    decay(300.0, 30.0)
}

/// Six customers buy `anchor` today; three of them buy `fresh` today, the other three
/// bought `dead` 300 days ago. With `x` the undecayed weights (here all 1) and `x'` the
/// decayed ones, anchor's similarity to a candidate j is `sum_u x_u,anchor x'_uj /
/// (|x_anchor| |x_j|)`: 3 / sqrt(6 * 3) for fresh, and 2^-10 times that for dead. The
/// cosine of the decayed columns gave dead exactly fresh's similarity (its column is as
/// long as fresh's once normalised), so for a customer who buys anchor the dead item tied
/// with the fresh one and, its id coming first, was recommended first.
#[test]
fn an_item_bought_long_ago_is_a_weak_neighbour() {
    let mut rows = Vec::new();
    for c in ["c1", "c2", "c3", "c4", "c5", "c6"] {
        rows.push((c, "anchor", NOW));
    }
    for c in ["c1", "c2", "c3"] {
        rows.push((c, "fresh", NOW));
    }
    for c in ["c4", "c5", "c6"] {
        rows.push((c, "dead", NOW - 300));
    }
    let model = fit_decayed(Algorithm::ItemKnn, &rows);
    let sim = |i: &str, j: &str| {
        let (i, j) = (model.item(i).unwrap().get(), model.item(j).unwrap().0);
        let row = model.neighbors().outer_view(i).unwrap();
        row.get(j as usize).map(|&v| f64::from(v))
    };
    let full = 3.0 / (6.0f64 * 3.0).sqrt();
    let fresh = sim("anchor", "fresh").unwrap();
    let dead = sim("anchor", "dead").unwrap();
    assert!(near(fresh, full, 1e-6) && near(dead, full * old(), 1e-6), "fresh {fresh}, dead {dead}");
    // The dead item's own column is undecayed: a customer who bought it is still told
    // what its buyers bought with it.
    assert!(near(sim("dead", "anchor").unwrap(), 3.0 / (3.0f64 * 6.0).sqrt(), 1e-6));
    let recs = model.recommend_for_items(&["anchor"], 2);
    let ids: Vec<&str> = recs.iter().map(|r| model.item_id(r.item)).collect();
    assert_eq!(ids, ["fresh", "dead"], "{recs:?}");
}

/// Customer `q` buys a and b today; `lapsed` bought a, b and x 300 days ago; `active`
/// buys a and y today. `q`'s similarity to a customer v is `sum_i x_qi x'_vi / (|x_q|
/// |x_v|)`: 1 / (sqrt(2) sqrt(2)) for active, 2 * 2^-10 / (sqrt(2) sqrt(3)) for lapsed.
/// The cosine of the decayed rows gave lapsed 2 / sqrt(6), above active: a customer who
/// stopped buying long ago was everyone's best neighbour.
#[test]
fn a_customer_who_bought_long_ago_is_a_weak_neighbour() {
    let rows = [
        ("q", "a", NOW),
        ("q", "b", NOW),
        ("lapsed", "a", NOW - 300),
        ("lapsed", "b", NOW - 300),
        ("lapsed", "x", NOW - 300),
        ("active", "a", NOW),
        ("active", "y", NOW),
    ];
    let model = fit_decayed(Algorithm::UserKnn, &rows);
    let q = model.customer("q").unwrap();
    let got = model.similar_customers(q, 5, SimilarityParams::default());
    let ids: Vec<&str> = got.iter().map(|n| model.customer_id(cobuy::ids::CustomerIdx(n.index))).collect();
    assert_eq!(ids, ["active", "lapsed"], "{got:?}");
    assert!(near(f64::from(got[0].sim), 0.5, 1e-6), "{got:?}");
    assert!(near(f64::from(got[1].sim), 2.0 * old() / 6.0f64.sqrt(), 1e-6), "{got:?}");
    // The same neighbours, with the same weights, score q's list: y well above x.
    let recs = model.recommend(q, 2);
    let ids: Vec<&str> = recs.iter().map(|r| model.item_id(r.item)).collect();
    assert_eq!(ids, ["y", "x"], "{recs:?}");
    assert!(near(f64::from(recs[1].score), 2.0 * old() / 6.0f64.sqrt() * old(), 1e-6), "{recs:?}");
}
