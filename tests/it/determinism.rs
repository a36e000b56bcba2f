//! Same input, same bytes: whatever the number of threads and whatever the row order.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::{COLUMNS, Lcg, SEED, purchase_lines, run_cobuy, write_lines};
use crate::model_values::sections;

// ---------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------

fn cobuy(dir: &Path, args: &[&str]) -> Output {
    let o = run_cobuy(dir, args);
    assert!(o.status.success(), "cobuy {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// `cobuy --threads N fit` on `purchases.csv` in `dir` (a relative path, so the model
/// records the same source whatever the folder).
fn fit(dir: &Path, threads: usize, model: &str) -> Vec<u8> {
    let t = threads.to_string();
    let mut args = vec!["--quiet", "--threads", &t, "fit", "--purchases", "purchases.csv"];
    args.extend_from_slice(&COLUMNS);
    args.extend_from_slice(&["--neighbors", "20", "--half-life-days", "120", "--model", model]);
    cobuy(dir, &args);
    fs::read(dir.join(model)).unwrap()
}

fn recommend(dir: &Path, threads: usize, model: &str, out: &str) -> Vec<u8> {
    let t = threads.to_string();
    cobuy(dir, &["--quiet", "--threads", &t, "recommend", "--model", model, "--top", "10", "--out", out]);
    fs::read(dir.join(out)).unwrap()
}

/// Checks that a recommendations file is a real one: every customer, ten rows each,
/// mostly from neighbours.
fn check_recommendations(csv: &[u8], customers: usize) {
    let text = std::str::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("customer_id,rank,item_id,score,source"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), customers * 10, "ten rows for each of {customers} customers");
    let knn = rows.iter().filter(|r| r[4] == "item-knn").count();
    assert!(knn > rows.len() / 2, "{knn} of {} rows from neighbours", rows.len());
}

fn customers_in(dir: &Path, model: &str) -> usize {
    let o = cobuy(dir, &["inspect", model, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["customers"].as_u64().unwrap() as usize
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn assert_same(a: &[u8], b: &[u8], what: &str) {
    if let Some(at) = first_difference(a, b) {
        panic!("{what}: {} and {} bytes, first difference at byte {at}", a.len(), b.len());
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn thread_count_does_not_change_any_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.join("purchases.csv"), &header, &lines);

    let m1 = fit(dir, 1, "t1/model.cobuy");
    let m2 = fit(dir, 2, "t2/model.cobuy");
    let m4 = fit(dir, 4, "t4/model.cobuy");
    assert_same(&m1, &m2, "model, 1 vs 2 threads");
    assert_same(&m1, &m4, "model, 1 vs 4 threads");

    let r1 = recommend(dir, 1, "t1/model.cobuy", "t1/recs.csv");
    let r2 = recommend(dir, 2, "t1/model.cobuy", "t2/recs.csv");
    let r4 = recommend(dir, 4, "t1/model.cobuy", "t4/recs.csv");
    check_recommendations(&r1, customers_in(dir, "t1/model.cobuy"));
    assert_same(&r1, &r2, "recommendations, 1 vs 2 threads");
    assert_same(&r1, &r4, "recommendations, 1 vs 4 threads");
    // Each thread count scoring its own model: the same again.
    assert_same(&r1, &recommend(dir, 4, "t4/model.cobuy", "t4/recs-own.csv"), "recommendations of the 4-thread model");

    // The job file: fit and recommend in one run, with the same parameters.
    for (threads, sub) in [(1, "job1"), (4, "job4")] {
        let job = format!(
            r#"summary = "{sub}/summary.json"

[input]
purchases = "purchases.csv"
customer_col = "customer"
item_col = "item"
quantity_col = "quantity"
price_col = "price"
time_col = "time"

[fit]
model = "{sub}/model.cobuy"
neighbors = 20
half_life_days = 120.0

[recommend]
top = 10
out = "{sub}/recs.csv"
"#
        );
        let path = dir.join(format!("{sub}.toml"));
        fs::write(&path, job).unwrap();
        cobuy(dir, &["--quiet", "--threads", &threads.to_string(), "run", path.to_str().unwrap()]);
        let summary: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join(sub).join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["batch"]["rows"].as_u64(), Some(r1.iter().filter(|&&b| b == b'\n').count() as u64 - 1));
    }
    let j1 = fs::read(dir.join("job1/recs.csv")).unwrap();
    let j4 = fs::read(dir.join("job4/recs.csv")).unwrap();
    assert_same(&j1, &j4, "job recommendations, 1 vs 4 threads");
    assert_same(&j1, &r1, "job recommendations vs fit + recommend");
    assert_same(
        &fs::read(dir.join("job1/model.cobuy")).unwrap(),
        &fs::read(dir.join("job4/model.cobuy")).unwrap(),
        "job model, 1 vs 4 threads",
    );
}

#[test]
fn row_order_does_not_change_any_output() {
    let (header, lines) = purchase_lines(SEED);
    let mut shuffled = lines.clone();
    // Fisher-Yates with its own generator.
    let mut rng = Lcg(0xdec0_ded5);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u32 + 1) as usize);
    }
    assert_ne!(shuffled, lines);
    let mut reversed = lines.clone();
    reversed.reverse();

    let runs: Vec<(Vec<u8>, Vec<u8>)> = [&lines, &shuffled, &reversed]
        .into_iter()
        .map(|rows| {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            write_lines(&dir.join("purchases.csv"), &header, rows);
            let model = fit(dir, 2, "model.cobuy");
            let recs = recommend(dir, 2, "model.cobuy", "recs.csv");
            (model, recs)
        })
        .collect();
    let (model, recs) = &runs[0];
    for ((m, r), what) in runs[1..].iter().zip(["shuffled", "reversed"]) {
        assert_same(model, m, &format!("model, rows in file order vs {what}"));
        assert_same(recs, r, &format!("recommendations, rows in file order vs {what}"));
    }
}

/// The commands beyond fit and recommend give the same bytes with 1, 2 and 3 threads, on
/// a log large enough for the work to split (thousands of customers, hundreds of items):
/// fold-in, rules, basket-complete, and EASE (fit, and recommend with reasons) on both of
/// its sides (items when customers outnumber them, customers otherwise).
#[test]
fn thread_count_does_not_change_fold_in_rules_basket_complete_or_ease() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let generate = |customers: &str, items: &str, purchases: &str, out: &str| {
        let args = ["--quiet", "generate", "--customers", customers, "--items", items, "--rows", purchases];
        cobuy(dir, &[&args[..], &["--seed", "9", "--out", out]].concat());
    };
    generate("3000", "300", "60000", "many-customers.csv");
    generate("150", "600", "6000", "many-items.csv");
    let mut baskets = String::from("basket_id,item_id\n");
    for b in 0..200 {
        baskets.push_str(&format!("b{b},i{}\nb{b},i{}\n", b % 40, (b * 7) % 90 + 1));
    }
    fs::write(dir.join("baskets.csv"), baskets).unwrap();
    const INPUT: [&str; 8] =
        ["--basket-col", "basket_id", "--quantity-col", "quantity", "--price-col", "price", "--time-col", "timestamp"];

    // Every output of one thread count, in a fixed order.
    let outputs = |threads: usize| -> Vec<(String, Vec<u8>)> {
        let t = threads.to_string();
        let sub = format!("t{threads}");
        let path = |name: &str| format!("{sub}/{name}");
        let run = |command: &[&str], input: Option<&str>, out: &str| {
            let mut args = vec!["--quiet", "--threads", &t];
            args.extend_from_slice(command);
            if let Some(file) = input {
                args.extend_from_slice(&["--purchases", file]);
                args.extend_from_slice(&INPUT);
            }
            cobuy(dir, &args);
            (out.to_string(), fs::read(dir.join(out)).unwrap())
        };
        let mut got = Vec::new();
        for log in ["many-customers", "many-items"] {
            let (model, recs, fold) =
                (path(&format!("{log}.cobuy")), path(&format!("{log}.recs.csv")), path(&format!("{log}.fold.csv")));
            let csv = format!("{log}.csv");
            got.push(run(
                &["fit", "--algorithm", "ease", "--ease-lambda", "50", "--model", &model],
                Some(&csv),
                &model,
            ));
            got.push(run(&["recommend", "--model", &model, "--top", "10", "--explain", "--out", &recs], None, &recs));
            got.push(run(
                &["fold-in", "--model", &model, "--top", "10", "--explain", "--out", &fold],
                Some(&csv),
                &fold,
            ));
        }
        let (rules, complete) = (path("rules.csv"), path("complete.csv"));
        got.push(run(&["rules", "--min-support", "0.0005", "--out", &rules], Some("many-customers.csv"), &rules));
        let args = ["basket-complete", "--baskets", "baskets.csv", "--min-count", "2", "--out", &complete];
        got.push(run(&args, Some("many-customers.csv"), &complete));
        got
    };
    let one = outputs(1);
    let solved = |model: &[u8]| sections(model).iter().any(|s| &s.0 == b"EMUP");
    assert!(!solved(&one[0].1) && solved(&one[3].1), "EASE solved over items, then over customers");
    for (name, bytes) in &one {
        assert!(bytes.len() > 1000, "{name}: {} bytes", bytes.len());
    }
    for threads in [2, 3] {
        for ((name, a), (_, b)) in one.iter().zip(&outputs(threads)) {
            assert_same(a, b, &format!("{name}, 1 vs {threads} threads"));
        }
    }
}
