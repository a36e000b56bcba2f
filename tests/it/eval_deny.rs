//! The deny list of `cobuy eval` and `cobuy tune` (issue 15): the rows of the items it names
//! are taken out before the split, so a denied item is never trained on, recommended or
//! counted as found, and every number equals the one measured on the log with those rows
//! removed by hand (the oracle here: a second file written without them).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use cobuy::algo::Algorithm;
use cobuy::eval::split::{Cutoff, SplitMethod};
use cobuy::eval::{Removed, prepare, without_items};
use cobuy::ingest::{Columns, IngestOptions, read_log};
use cobuy::model::{FitInfo, FitParams, Model};
use serde_json::Value;

use crate::common::{COLUMNS, SEED, purchase_lines, run_cobuy, write_lines};

/// Writes `purchases.csv` (the shared generated rows, plus a customer who bought only a
/// denied item), `hand.csv` (the same without the denied items' rows) and `deny.txt`
/// (the two most bought items and an id the data does not have); returns the denied ids.
fn files(dir: &Path) -> [String; 2] {
    let (header, mut lines) = purchase_lines(SEED);
    let item = |l: &String| l.split(',').nth(1).unwrap().to_string();
    let mut counts: Vec<(usize, String)> = Vec::new();
    let mut items: Vec<String> = lines.iter().map(item).collect();
    items.sort();
    for chunk in items.chunk_by(|a, b| a == b) {
        counts.push((chunk.len(), chunk[0].clone()));
    }
    counts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let denied = [counts[0].1.clone(), counts[1].1.clone()];
    lines.push(format!("only-post,{},1,3.50,2023-03-01 10:00:00", denied[0]));
    lines.push(format!("only-post,{},2,3.50,2023-12-30 10:00:00", denied[0]));
    write_lines(&dir.join("purchases.csv"), &header, &lines);
    let kept: Vec<String> = lines.iter().filter(|l| !denied.contains(&item(l))).cloned().collect();
    write_lines(&dir.join("hand.csv"), &header, &kept);
    fs::write(dir.join("deny.txt"), format!("{}\nNOT-AN-ITEM\n{}\n", denied[0], denied[1])).unwrap();
    denied
}

fn options() -> IngestOptions {
    let mut cols = Columns::new("customer", "item");
    cols.quantity = Some("quantity".into());
    cols.price = Some("price".into());
    cols.time = Some("time".into());
    IngestOptions::new(cols)
}

/// The library's filter gives the log read from the file without those rows, id tables
/// and all, and says what went; a model fitted on its split never lists a denied item.
#[test]
fn the_filtered_log_is_the_log_read_without_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let denied = files(dir.path());
    let (full, _) = read_log(dir.path().join("purchases.csv"), &options()).unwrap();
    let (hand, _) = read_log(dir.path().join("hand.csv"), &options()).unwrap();
    let mask: Vec<bool> = full.items.iter().map(|id| denied.iter().any(|d| d == id)).collect();
    let (filtered, removed) = without_items(&full, &mask);
    assert_eq!(filtered.items, hand.items, "item ids");
    assert_eq!(filtered.customers, hand.customers, "customer ids");
    assert_eq!(filtered.baskets, hand.baskets, "basket ids");
    assert!(filtered.rows == hand.rows, "the rows differ from those read without the denied items");
    let of_denied = full.rows.iter().filter(|r| denied.iter().any(|d| d == full.items.id(r.item.0))).count();
    assert_eq!(removed, Removed { items: 2, rows: of_denied as u64, customers: 1 });
    assert!(of_denied > 100, "{of_denied} rows of the two most bought items");

    // No list of the split's model, on either target's filter, holds a denied item, and
    // no held-out item is one.
    let method = SplitMethod::Time { cutoff: Cutoff::LastShare(0.2) };
    let prepared = prepare(&filtered, &method, false).unwrap();
    for algorithm in [Algorithm::ItemKnn, Algorithm::Popularity, Algorithm::BuyAgain] {
        let params = FitParams { algorithm, ..FitParams::default() };
        let model = Model::fit(prepared.train().clone(), &params, FitInfo::default()).unwrap();
        for c in prepared.customers() {
            for r in model.recommend(c, 20) {
                assert!(!denied.iter().any(|d| d == model.item_id(r.item)), "{r:?} is denied");
            }
        }
    }
}

/// `cobuy ARGS` in `dir`, which must succeed; returns the log.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run_cobuy(dir, args);
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "cobuy {args:?} failed:\n{log}");
    log
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// A report's runs without their timings.
fn measurements(report: &Value) -> Vec<Value> {
    let mut runs = report["runs"].as_array().expect("runs").clone();
    for r in &mut runs {
        let o = r.as_object_mut().unwrap();
        o.remove("fit_seconds");
        o.remove("score_seconds");
    }
    runs
}

/// An eval job on `purchases` (relative to the job's folder), its `[eval]` keys `eval`.
fn eval_job(purchases: &str, eval: &str) -> String {
    format!(
        r#"[input]
purchases = "{purchases}"
customer_col = "customer"
item_col = "item"
quantity_col = "quantity"
price_col = "price"
time_col = "time"

[split]
test_share = 0.2

[eval]
k = [5, 10]
targets = ["new-items", "all-items"]
{eval}

[[algorithm]]
name = "auto"

[[algorithm]]
algorithm = "popularity"

[[algorithm]]
algorithm = "item-knn"
neighbors = 20

[[algorithm]]
algorithm = "ease"
ease_lambda = 20

[[algorithm]]
algorithm = "buy-again"
"#
    )
}

/// Every measurement of an eval job with the deny list (every algorithm, `auto` too, which
/// chooses on the training part) equals that of the same job on the file without the
/// denied rows; so do the split's counts and the split written out, which holds no denied
/// item; the report and the log say what went. The flag does the same as the job key.
#[test]
fn eval_with_a_deny_list_measures_as_on_the_rows_removed_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let denied = files(dir);
    fs::create_dir(dir.join("job")).unwrap();
    fs::write(
        dir.join("job/deny.toml"),
        eval_job("../purchases.csv", "out_dir = \"deny\"\nwrite_split = \"deny-split\"\ndeny = \"../deny.txt\""),
    )
    .unwrap();
    fs::write(dir.join("job/hand.toml"), eval_job("../hand.csv", "out_dir = \"hand\"\nwrite_split = \"hand-split\""))
        .unwrap();
    let log = ok(dir, &["run", "job/deny.toml"]);
    ok(dir, &["run", "job/hand.toml"]);

    let (full, _) = read_log(dir.join("purchases.csv"), &options()).unwrap();
    let rows = full.rows.iter().filter(|r| denied.iter().any(|d| d == full.items.id(r.item.0))).count();
    let said = format!("{rows} rows of 2 denied items removed before the split (1 customers bought nothing else)");
    assert!(log.contains(&format!("cobuy: job/../deny.txt: {said}")), "{log}");
    assert!(log.contains("1 of its 3 item ids is not in the purchases and skipped: \"NOT-AN-ITEM\" (line 2)"), "{log}");

    let (deny, hand) = (json(&dir.join("job/deny/report.json")), json(&dir.join("job/hand/report.json")));
    assert_eq!(deny["setup"]["deny list"].as_str(), Some(format!("job/../deny.txt: {said}").as_str()));
    let runs = measurements(&deny);
    assert_eq!(runs.len(), 9, "{runs:?}");
    assert!(runs == measurements(&hand), "the deny list measures otherwise than the rows removed by hand");
    for key in ["split", "training rows", "test rows", "test customers", "measured customers", "held-out pairs"] {
        assert_eq!(deny["setup"][key], hand["setup"][key], "setup {key}");
    }
    for part in ["train.csv", "test.csv"] {
        let text = fs::read_to_string(dir.join("job/deny-split").join(part)).unwrap();
        assert_eq!(text, fs::read_to_string(dir.join("job/hand-split").join(part)).unwrap(), "{part}");
        let items: BTreeSet<&str> = text.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
        assert!(items.len() > 50 && denied.iter().all(|d| !items.contains(d.as_str())), "{part}: {items:?}");
    }

    // The flag.
    let flags = |purchases: &str, out: &str| -> Vec<String> {
        let mut a: Vec<String> = ["eval", "--purchases", purchases, "--out-dir", out, "--algorithm", "item-knn"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(COLUMNS.iter().map(|s| s.to_string()));
        a
    };
    let mut with = flags("purchases.csv", "flag-deny");
    with.extend(["--deny".to_string(), "deny.txt".to_string()]);
    ok(dir, &with.iter().map(String::as_str).collect::<Vec<_>>());
    ok(dir, &flags("hand.csv", "flag-hand").iter().map(String::as_str).collect::<Vec<_>>());
    let (a, b) = (json(&dir.join("flag-deny/report.json")), json(&dir.join("flag-hand/report.json")));
    assert!(measurements(&a) == measurements(&b), "--deny measures otherwise than the rows removed by hand");
}

/// The `#   SCORE  LABEL` lines of a tune best file's header.
fn header_scores(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    text.lines().take_while(|l| l.starts_with('#')).filter(|l| l.starts_with("#   ")).map(String::from).collect()
}

const SPACES: &str = r#"
[[space]]
algorithm = "item-knn"
neighbors = [5, 20]

[[space]]
algorithm = "ease"
ease_lambda = [10, 100]
"#;

/// `cobuy tune` takes the deny list of `[recommend]` (production) or of `[eval]`
/// (benchmark, where the best eval job keeps it): every candidate scores as on the file
/// without the denied rows, and the production refit still fits every row.
#[test]
fn tune_with_a_deny_list_scores_as_on_the_rows_removed_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    files(dir);
    fs::create_dir(dir.join("job")).unwrap();
    let input = |purchases: &str| {
        format!(
            "[input]\npurchases = \"{purchases}\"\ncustomer_col = \"customer\"\nitem_col = \"item\"\n\
             quantity_col = \"quantity\"\nprice_col = \"price\"\ntime_col = \"time\"\n"
        )
    };
    let production = |purchases: &str, name: &str, recommend: &str| {
        format!(
            "{}\n[tune]\nk = 10\nmodel = \"{name}.cobuy\"\nout = \"{name}.best.toml\"\n\n[recommend]\n{recommend}\n{SPACES}",
            input(purchases)
        )
    };
    fs::write(dir.join("job/p-deny.toml"), production("../purchases.csv", "p-deny", "deny = \"../deny.txt\"")).unwrap();
    fs::write(dir.join("job/p-hand.toml"), production("../hand.csv", "p-hand", "explain = true")).unwrap();
    let log = ok(dir, &["tune", "job/p-deny.toml"]);
    assert!(log.contains("rows of 2 denied items removed before the split (1 customers bought nothing else)"), "{log}");
    ok(dir, &["tune", "job/p-hand.toml"]);
    let scores = header_scores(&dir.join("job/p-deny.best.toml"));
    assert_eq!(scores.len(), 4, "{scores:?}");
    assert_eq!(scores, header_scores(&dir.join("job/p-hand.best.toml")), "production scores");
    // The refit is `cobuy fit` on every row, denied ones too (the path as the job gives it:
    // the model records its source).
    let best: toml::Table = fs::read_to_string(dir.join("job/p-deny.best.toml")).unwrap().parse().unwrap();
    let mut args: Vec<String> =
        vec!["fit".into(), "--purchases".into(), "job/../purchases.csv".into(), "--model".into(), "f.cobuy".into()];
    args.extend(COLUMNS.iter().map(|s| s.to_string()));
    for (k, v) in best["fit"].as_table().unwrap().iter().filter(|(k, _)| *k != "model") {
        args.extend([format!("--{}", k.replace('_', "-")), v.to_string().trim_matches('"').to_string()]);
    }
    ok(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(fs::read(dir.join("f.cobuy")).unwrap() == fs::read(dir.join("job/p-deny.cobuy")).unwrap(), "refit");

    let benchmark = |purchases: &str, name: &str, eval: &str| {
        format!(
            "{}\n[split]\ntest_share = 0.2\nvalidation = true\n\n[eval]\nk = [10]\nout_dir = \"{name}-eval\"\n{eval}\n\n\
             [tune]\nk = 10\nout = \"{name}.best.toml\"\n{SPACES}",
            input(purchases)
        )
    };
    fs::write(dir.join("job/b-deny.toml"), benchmark("../purchases.csv", "b-deny", "deny = \"../deny.txt\"")).unwrap();
    fs::write(dir.join("job/b-hand.toml"), benchmark("../hand.csv", "b-hand", "")).unwrap();
    ok(dir, &["tune", "job/b-deny.toml"]);
    ok(dir, &["tune", "job/b-hand.toml"]);
    let scores = header_scores(&dir.join("job/b-deny.best.toml"));
    assert_eq!(scores, header_scores(&dir.join("job/b-hand.best.toml")), "benchmark scores");
    // The best eval job keeps the deny list and measures on the test part without it.
    ok(dir, &["run", "job/b-deny.best.toml"]);
    ok(dir, &["run", "job/b-hand.best.toml"]);
    let (a, b) = (json(&dir.join("job/b-deny-eval/report.json")), json(&dir.join("job/b-hand-eval/report.json")));
    assert!(a["setup"]["deny list"].is_string(), "{a}");
    assert!(measurements(&a) == measurements(&b), "the best eval job measures otherwise than by hand");
}
