//! End-to-end tests of `cobuy eval`, eval job files (`cobuy run`) and `cobuy tune` on the
//! shared generated purchases (3,000 rows with quantities, prices and times): the reports'
//! shape, metrics checked against computations done here from the split files the binary
//! writes (`--write-split`) and from hand-built lists (`--measure`), the three splits and
//! their validation splits, thread and row-order invariance, and every usage error.
//!
//! Expectations are computed here from the rows themselves, never from the library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::{self, COLUMNS, SEED, natural, purchase_lines, run_cobuy, write_lines};

// ---------------------------------------------------------------------------------------
// Facts about the generated rows
// ---------------------------------------------------------------------------------------

/// 2023-01-01 00:00:00 UTC in unix seconds.
const EPOCH_2023: i64 = 1_672_531_200;

/// `YYYY-MM-DD HH:MM:SS` of 2023 (the generator's only year) as unix seconds.
fn unix_2023(t: &str) -> i64 {
    const BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    assert!(t.len() == 19 && t.starts_with("2023-"), "unexpected time {t:?}");
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap_or_else(|_| panic!("bad time {t:?}"));
    let days = BEFORE[n(5..7) as usize - 1] + n(8..10) - 1;
    EPOCH_2023 + days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// One purchase row: customer, item, quantity, time (unix seconds), basket.
#[derive(Debug, Clone)]
struct Row {
    customer: String,
    item: String,
    quantity: f64,
    time: Option<i64>,
    basket: String,
}

impl Row {
    /// A sortable key for comparing multisets of rows.
    fn key(&self) -> (String, String, i64, Option<i64>, String) {
        (self.customer.clone(), self.item.clone(), self.quantity as i64, self.time, self.basket.clone())
    }
}

fn keys(rows: &[Row]) -> Vec<(String, String, i64, Option<i64>, String)> {
    let mut k: Vec<_> = rows.iter().map(Row::key).collect();
    k.sort();
    k
}

/// The generated rows, parsed.
fn generated_rows() -> Vec<Row> {
    let (_, lines) = purchase_lines(SEED);
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "unexpected generated line {l:?}");
            Row {
                customer: f[0].into(),
                item: f[1].into(),
                quantity: f[2].parse().expect("quantity"),
                time: Some(unix_2023(f[4])),
                basket: String::new(),
            }
        })
        .collect()
}

/// The `YYYY-MM-DD HH:MM:SS` form of unix seconds in 2023.
fn format_2023(t: i64) -> String {
    const LEN: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let s = t - EPOCH_2023;
    let (mut day, rest) = (s / 86_400, s % 86_400);
    let mut month = 0;
    while day >= LEN[month] {
        day -= LEN[month];
        month += 1;
    }
    format!("2023-{:02}-{:02} {:02}:{:02}:{:02}", month + 1, day + 1, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The cutoff of a time split holding out the last `share` of the purchase rows: the time
/// of the purchase at position floor((1 - share) * n) in time order.
fn share_cutoff(rows: &[Row], share: f64) -> i64 {
    let mut times: Vec<i64> = rows.iter().filter(|r| r.quantity > 0.0).filter_map(|r| r.time).collect();
    times.sort_unstable();
    let k = ((1.0 - share) * times.len() as f64).floor() as usize;
    times[k.min(times.len() - 1)]
}

/// How the report names a time split holding out the last `share` of the generated
/// purchases: the share and the time it starts at.
fn last_share_split(share: f64) -> String {
    format!(
        "time: the last {share} of purchases are test, from {}",
        format_2023(share_cutoff(&generated_rows(), share))
    )
}

// ---------------------------------------------------------------------------------------
// A split, as written by --write-split, and what it implies
// ---------------------------------------------------------------------------------------

/// The training and test rows of a split, and the facts the report should state.
struct SplitFiles {
    train: Vec<Row>,
    test: Vec<Row>,
    /// Per customer, items with a positive net quantity in training.
    bought: HashMap<String, BTreeSet<String>>,
    /// Per customer, items with training rows netting to zero or less (seen, not bought).
    seen: HashMap<String, BTreeSet<String>>,
    /// Per item, training customers who bought it (net).
    buyers: HashMap<String, usize>,
    /// Per customer with a test purchase row, the items of those rows.
    held: BTreeMap<String, BTreeSet<String>>,
}

fn read_split_file(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(header, ["customer_id", "item_id", "quantity", "amount", "time", "basket_id"], "{}", path.display());
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            Row {
                customer: rec[0].into(),
                item: rec[1].into(),
                quantity: rec[2].parse().unwrap_or_else(|_| panic!("quantity in {rec:?}")),
                time: (!rec[4].is_empty()).then(|| rec[4].parse().unwrap_or_else(|_| panic!("time in {rec:?}"))),
                basket: rec[5].into(),
            }
        })
        .collect()
}

impl SplitFiles {
    fn read(dir: &Path) -> Self {
        Self::of(read_split_file(&dir.join("train.csv")), read_split_file(&dir.join("test.csv")))
    }

    fn of(train: Vec<Row>, test: Vec<Row>) -> Self {
        let mut net: HashMap<(String, String), f64> = HashMap::new();
        for r in &train {
            *net.entry((r.customer.clone(), r.item.clone())).or_default() += r.quantity;
        }
        let (mut bought, mut seen, mut buyers) = (HashMap::new(), HashMap::new(), HashMap::new());
        for ((c, i), q) in net {
            if q > 0.0 {
                bought.entry(c).or_insert_with(BTreeSet::new).insert(i.clone());
                *buyers.entry(i).or_insert(0) += 1;
            } else {
                seen.entry(c).or_insert_with(BTreeSet::new).insert(i);
            }
        }
        let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in test.iter().filter(|r| r.quantity > 0.0) {
            held.entry(r.customer.clone()).or_default().insert(r.item.clone());
        }
        SplitFiles { train, test, bought, seen, buyers, held }
    }

    fn bought(&self, c: &str) -> BTreeSet<String> {
        self.bought.get(c).cloned().unwrap_or_default()
    }

    fn seen(&self, c: &str) -> BTreeSet<String> {
        self.seen.get(c).cloned().unwrap_or_default()
    }

    /// Measured customers (test purchases and training purchases) and their held-out items.
    fn measured(&self) -> Vec<(&String, &BTreeSet<String>)> {
        self.held.iter().filter(|(c, _)| !self.bought(c).is_empty()).collect()
    }

    /// Per measured customer with a held-out item not bought in training, those items.
    fn new_items(&self) -> Vec<(String, BTreeSet<String>)> {
        self.measured()
            .into_iter()
            .map(|(c, items)| (c.clone(), items.difference(&self.bought(c)).cloned().collect::<BTreeSet<_>>()))
            .filter(|(_, items)| !items.is_empty())
            .collect()
    }

    /// Checks the report's split settings against the files.
    fn check_setup(&self, report: &Report, what: &str) {
        let measured = self.measured();
        let pairs: usize = measured.iter().map(|(_, items)| items.len()).sum();
        let new: Vec<_> = self.new_items();
        let new_pairs: usize = new.iter().map(|(_, items)| items.len()).sum();
        let unknown =
            measured.iter().flat_map(|(_, items)| items.iter()).filter(|i| !self.buyers.contains_key(*i)).count();
        let want = [
            ("training rows", vec![self.train.len()]),
            ("test rows", vec![self.test.len()]),
            ("test customers", vec![self.held.len(), self.held.len() - measured.len()]),
            ("measured customers", vec![measured.len(), new.len()]),
            ("held-out pairs", vec![pairs, new_pairs, unknown]),
        ];
        for (key, numbers) in want {
            assert_eq!(report.setup_numbers(key), numbers, "{what}: setup {key:?} = {:?}", report.setup(key));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------

/// A parsed report.json.
struct Report(Value);

/// The metrics of report.json, in order.
const METRICS: [&str; 7] = ["precision", "recall", "ndcg", "map", "hit_rate", "mrr", "revenue_recall"];

impl Report {
    fn load(path: &Path) -> Self {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Report(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}\n{text}", path.display())))
    }

    fn runs(&self) -> &Vec<Value> {
        self.0["runs"].as_array().expect("runs is an array")
    }

    /// A setup value as text: counts are JSON numbers, the rest strings.
    fn setup(&self, key: &str) -> String {
        match &self.0["setup"][key] {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            v => panic!("no setup {key:?} in {} (got {v})", self.0["setup"]),
        }
    }

    /// The whole numbers in a setup value, in order.
    fn setup_numbers(&self, key: &str) -> Vec<usize> {
        numbers(&self.setup(key))
    }

    /// The algorithms measured on `target`, in report order.
    fn names(&self, target: &str) -> Vec<String> {
        self.runs()
            .iter()
            .filter(|r| r["target"] == target)
            .map(|r| r["algorithm"].as_str().expect("algorithm").to_string())
            .collect()
    }

    fn run(&self, algorithm: &str, target: &str) -> &Value {
        self.runs()
            .iter()
            .find(|r| r["algorithm"] == algorithm && r["target"] == target)
            .unwrap_or_else(|| panic!("no run of {algorithm} on {target}"))
    }

    fn value(&self, algorithm: &str, target: &str, metric: &str, k: usize) -> f64 {
        self.run(algorithm, target)["metrics"][metric][k.to_string()]
            .as_f64()
            .unwrap_or_else(|| panic!("no {metric}@{k} for {algorithm} on {target}"))
    }

    /// The standard error of [`Report::value`].
    fn std_error(&self, algorithm: &str, target: &str, metric: &str, k: usize) -> f64 {
        self.run(algorithm, target)["std_errors"][metric][k.to_string()]
            .as_f64()
            .unwrap_or_else(|| panic!("no standard error of {metric}@{k} for {algorithm} on {target}"))
    }

    fn customers(&self, algorithm: &str, target: &str) -> usize {
        self.run(algorithm, target)["customers"].as_u64().expect("customers") as usize
    }

    /// The runs without their timings: what must not depend on threads or row order.
    fn measurements(&self) -> Vec<Value> {
        self.runs()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                let o = r.as_object_mut().expect("run object");
                assert!(o.remove("fit_seconds").is_some_and(|v| v.as_f64().is_some_and(|s| s >= 0.0)));
                assert!(o.remove("score_seconds").is_some_and(|v| v.as_f64().is_some_and(|s| s >= 0.0)));
                r
            })
            .collect()
    }
}

/// The whole numbers in `s`, in order ("218 (4 cold, left out)" gives [218, 4]).
fn numbers(s: &str) -> Vec<usize> {
    s.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ---------------------------------------------------------------------------------------
// Running the binary in a scratch folder
// ---------------------------------------------------------------------------------------

struct Run {
    code: i32,
    stderr: String,
}

/// A scratch folder holding `purchases.csv`; the binary runs inside it.
struct Fx {
    dir: TempDir,
}

/// The input table of a job file in a folder below the scratch folder.
const INPUT: &str = r#"[input]
purchases = "../purchases.csv"
customer_col = "customer"
item_col = "item"
quantity_col = "quantity"
price_col = "price"
time_col = "time"
"#;

/// Every algorithm once, ALS kept tiny; names: popularity, item-knn, user-knn, buy-again,
/// als, rp3beta.
const ALGORITHMS: &str = r#"
[[algorithm]]
algorithm = "popularity"

[[algorithm]]
algorithm = "item-knn"
neighbors = 20

[[algorithm]]
algorithm = "user-knn"
neighbors = 20

[[algorithm]]
algorithm = "buy-again"

[[algorithm]]
algorithm = "als"
factors = 4
iterations = 3

[[algorithm]]
name = "rp3beta"
algorithm = "item-knn"
similarity = "rp3beta"
neighbors = 20
"#;

impl Fx {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (header, lines) = purchase_lines(SEED);
        write_lines(&dir.path().join("purchases.csv"), &header, &lines);
        fs::create_dir(dir.path().join("job")).expect("job folder");
        Fx { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).expect("write input file");
    }

    fn run(&self, args: &[&str]) -> Run {
        let o = run_cobuy(self.dir.path(), args);
        Run { code: o.status.code().unwrap_or(-1), stderr: String::from_utf8_lossy(&o.stderr).into_owned() }
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "cobuy {args:?} failed:\n{}", r.stderr);
        r
    }

    /// `cobuy eval --purchases purchases.csv COLUMNS --out-dir OUT EXTRA...`, exit code
    /// unchecked.
    fn eval(&self, out: &str, extra: &[&str]) -> Run {
        let mut args = vec!["eval", "--purchases", "purchases.csv"];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(&["--out-dir", out]);
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// As [`Fx::eval`], asserting success; returns the report and the log.
    fn eval_ok(&self, out: &str, extra: &[&str]) -> (Report, String) {
        let r = self.eval(out, extra);
        assert_eq!(r.code, 0, "cobuy eval {extra:?} failed:\n{}", r.stderr);
        (self.report(out), r.stderr)
    }

    fn report(&self, out: &str) -> Report {
        Report::load(&self.path(out).join("report.json"))
    }

    fn text(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// Asserts that nothing was written to `out` (it may exist, empty).
    fn assert_no_report(&self, out: &str, what: &str) {
        let dir = self.path(out);
        if dir.exists() {
            let left: Vec<_> = fs::read_dir(&dir).expect("read out dir").map(|e| e.unwrap().file_name()).collect();
            assert!(left.is_empty(), "{what}: wrote {left:?}");
        }
    }
}

/// Asserts exit code 2 and that the error message contains every one of `want`.
fn assert_usage(r: &Run, what: &str, want: &[&str]) {
    assert_eq!(r.code, 2, "{what}: exit code; stderr:\n{}", r.stderr);
    let error =
        r.stderr.lines().filter(|l| !l.starts_with("cobuy: ") || l.starts_with("cobuy: error")).collect::<Vec<_>>();
    let error = error.join("\n");
    assert!(error.starts_with("cobuy: error: "), "{what}: no error line:\n{}", r.stderr);
    for w in want {
        assert!(error.contains(w), "{what}: {w:?} not in the message:\n{error}");
    }
}

// ---------------------------------------------------------------------------------------
// 1. An eval job over every algorithm: report.json, report.md, charts
// ---------------------------------------------------------------------------------------

#[test]
fn eval_job_measures_every_algorithm() {
    let fx = Fx::new();
    // An outside list measured beside the algorithms: the same three items for every customer.
    let mut fixed = String::from("customer_id,item_id,rank\n");
    let rows = generated_rows();
    let customers: BTreeSet<&str> = rows.iter().map(|r| r.customer.as_str()).collect();
    for c in &customers {
        for (rank, item) in ["SKU-001", "SKU-002", "SKU-004"].iter().enumerate() {
            fixed.push_str(&format!("{c},{item},{}\n", rank + 1));
        }
    }
    fx.write("job/fixed.csv", &fixed);
    let job = format!(
        "threads = 2\n\n{INPUT}\n[split]\nmethod = \"time\"\ntest_share = 0.2\n\n[eval]\nk = [5, 10]\n\
         targets = [\"new-items\", \"all-items\"]\ncharts = [\"ndcg\", \"recall\"]\nout_dir = \"out\"\n\
         write_split = \"split\"\nmeasure = [\"fixed:all-items=fixed.csv\"]\n{ALGORITHMS}"
    );
    fx.write("job/eval.toml", &job);
    // From the scratch folder: the job's relative paths are relative to job/.
    let log = fx.ok(&["run", "job/eval.toml"]).stderr;
    assert!(log.contains("fixed: ") && log.contains("read from"), "{log}");
    let report = fx.report("job/out");
    let split = SplitFiles::read(&fx.path("job/split"));
    split.check_setup(&report, "time split");
    assert_eq!(split.train.len() + split.test.len(), 3000);
    assert_eq!(report.0["title"], "cobuy eval");
    // Keys in a fixed order: metrics as listed, cut-offs ascending.
    let json = fx.text("job/out/report.json");
    let run0 = &json[json.find("\"runs\"").unwrap()..json.find("\"coverage\"").unwrap()];
    let at: Vec<usize> = METRICS.iter().map(|m| run0.find(&format!("\"{m}\"")).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "metrics out of order: {run0}");
    assert!(run0.find("\"5\":").unwrap() < run0.find("\"10\":").unwrap(), "cut-offs out of order: {run0}");
    assert_eq!(report.setup("split"), last_share_split(0.2));
    for count in ["training rows", "test rows", "test-part rows left unused"] {
        assert!(report.0["setup"][count].is_u64(), "setup {count:?} is not a JSON number: {}", report.0["setup"]);
    }

    // Every algorithm on each target, in the job's order; buy-again only on all items (it
    // recommends bought items only); the outside list on its own target.
    let cf = ["popularity", "item-knn", "user-knn", "als", "rp3beta"];
    assert_eq!(report.names("new-items"), cf);
    let all = ["popularity", "item-knn", "user-knn", "buy-again", "als", "rp3beta", "fixed"];
    assert_eq!(report.names("all-items"), all);
    assert_eq!(report.runs().len(), cf.len() + all.len());

    let measured = report.setup_numbers("measured customers");
    for run in report.runs() {
        let what = format!("{} on {}", run["algorithm"], run["target"]);
        assert_eq!(run["ks"], serde_json::json!([5, 10]), "{what}");
        let want_customers = if run["target"] == "new-items" { measured[1] } else { measured[0] };
        assert_eq!(run["customers"].as_u64(), Some(want_customers as u64), "{what}: customers");
        let metrics = run["metrics"].as_object().expect("metrics");
        // Every metric, revenue recall too: the file has prices.
        let mut names: Vec<&str> = metrics.keys().map(String::as_str).collect();
        names.sort_unstable_by_key(|m| METRICS.iter().position(|x| x == m));
        assert_eq!(names, METRICS, "{what}: metrics");
        let mut values: Vec<(String, f64)> = Vec::new();
        for (m, by_k) in metrics {
            let by_k = by_k.as_object().expect("values by k");
            assert_eq!(by_k.keys().collect::<BTreeSet<_>>(), BTreeSet::from([&"5".to_string(), &"10".to_string()]));
            values.extend(by_k.iter().map(|(k, v)| (format!("{m}@{k}"), v.as_f64().expect("a number"))));
        }
        for key in ["coverage", "mean_popularity"] {
            values
                .extend(run[key].as_object().unwrap().iter().map(|(k, v)| (format!("{key}@{k}"), v.as_f64().unwrap())));
        }
        for (name, v) in &values {
            assert!((0.0..=1.0).contains(v), "{what}: {name} = {v} is outside [0, 1]");
        }
        // Values that can only grow with k.
        for m in ["recall", "hit_rate", "revenue_recall"] {
            assert!(run["metrics"][m]["5"].as_f64() <= run["metrics"][m]["10"].as_f64(), "{what}: {m} falls with k");
        }
        assert!(run["coverage"]["5"].as_f64() <= run["coverage"]["10"].as_f64(), "{what}: coverage falls with k");
    }
    // Each configuration's full parameters, as the job gave them (the rest at their defaults);
    // none for the outside list.
    for target in ["new-items", "all-items"] {
        let p = |a: &str| &report.run(a, target)["params"];
        assert_eq!(p("popularity")["algorithm"], "popularity");
        assert_eq!((&p("item-knn")["algorithm"], &p("item-knn")["neighbors"]), (&"item-knn".into(), &20.into()));
        assert_eq!(p("item-knn")["similarity"]["measure"], "cosine");
        assert_eq!(p("user-knn")["neighbors"], 20);
        assert_eq!((&p("als")["als"]["factors"], &p("als")["als"]["iterations"]), (&4.into(), &3.into()));
        assert_eq!(p("rp3beta")["similarity"]["measure"], "rp3beta", "{}", p("rp3beta"));
        assert!(report.run("item-knn", target)["selection"].is_null());
    }
    assert_eq!(report.run("buy-again", "all-items")["params"]["algorithm"], "buy-again");
    assert!(report.run("fixed", "all-items")["params"].is_null());

    // The fixed list recommends 3 items: coverage 3 of the 80 items at any k.
    let fixed = report.run("fixed", "all-items");
    for k in ["5", "10"] {
        assert!(close(fixed["coverage"][k].as_f64().unwrap(), 3.0 / 80.0), "{fixed}");
    }
    // Collaborative filtering beats the bestsellers on items new to the customer.
    for a in ["item-knn", "user-knn", "rp3beta"] {
        assert!(
            report.value(a, "new-items", "ndcg", 10) > report.value("popularity", "new-items", "ndcg", 10),
            "{a} does not beat popularity on new items"
        );
    }

    // report.md: the setup, then a table per target with a row per run, NDCG@10 as in JSON
    // with its standard error, then a parameters line per configuration.
    let md = fx.text("job/out/report.md");
    assert!(md.starts_with("# cobuy eval\n"), "{md}");
    assert!(md.contains(&format!("| split | {} |", last_share_split(0.2))), "{md}");
    let sections: Vec<&str> = md.split("\n## ").skip(1).collect();
    assert_eq!(sections.len(), 2, "{md}");
    for (section, target) in sections.iter().zip(["new-items", "all-items"]) {
        assert!(section.starts_with(&format!("{target}\n")), "{section}");
        // The first table; the second holds the paired differences against popularity.
        let table: Vec<&str> =
            section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
        assert!(section.contains("\nPaired differences against the best baseline (NDCG@5: popularity ("), "{section}");
        let header: Vec<&str> = table[0].split('|').map(str::trim).collect();
        assert_eq!(header[1], "algorithm");
        assert!(table[1].starts_with("|---|---:|"), "{section}");
        let rows = &table[2..];
        let names: Vec<&str> = rows.iter().map(|l| l.split('|').nth(1).unwrap().trim()).collect();
        assert_eq!(names, report.names(target), "{target}: table rows");
        let col = header.iter().position(|h| *h == "NDCG@10").expect("an NDCG@10 column");
        for line in rows {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            assert_eq!(cells.len(), header.len(), "{target}: {line}");
            let (a, ndcg) = (cells[1], "ndcg");
            let want =
                format!("{:.4} ±{:.4}", report.value(a, target, ndcg, 10), report.std_error(a, target, ndcg, 10));
            assert_eq!(cells[col].replace('*', ""), want, "{target}: NDCG@10 of {a}");
        }
        assert!(section.contains("\n± is the standard error of the mean over the customers measured"), "{section}");
        let params: Vec<&str> = section.lines().filter(|l| l.starts_with("- ")).collect();
        let fitted: Vec<String> = report.names(target).into_iter().filter(|a| a != "fixed").collect();
        assert_eq!(params.len(), fitted.len(), "{section}");
        for (line, a) in params.iter().zip(&fitted) {
            assert!(line.starts_with(&format!("- {a}: ")), "{line}");
        }
        let knn = params[1];
        assert_eq!(knn, "- item-knn: item-knn (bm25 k1 1.2 b 0.75, 20 neighbours, cosine similarity)");
    }

    // Charts: a panel per target with one line (two points) per run, a legend entry per name.
    for chart in ["ndcg", "recall"] {
        let svg = fx.text(&format!("job/out/{chart}.svg"));
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"), "{chart}.svg");
        let (panels, legend) = svg.split_once(r#"<g class="legend">"#).expect("a legend");
        let panels: Vec<&str> = panels.split(r#"<g class="panel">"#).skip(1).collect();
        assert_eq!(panels.len(), 2, "{chart}.svg: panels");
        for (panel, target) in panels.iter().zip(["new-items", "all-items"]) {
            let lines: Vec<&str> = panel.split("<polyline ").skip(1).collect();
            let titles: Vec<&str> =
                lines.iter().map(|l| l.split("<title>").nth(1).unwrap().split("</title>").next().unwrap()).collect();
            assert_eq!(titles, report.names(target), "{chart}.svg: lines of {target}");
            for l in &lines {
                let points = l.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
                assert_eq!(points.split(' ').count(), 2, "{chart}.svg: points of {l}");
            }
        }
        let entries: Vec<&str> =
            legend.split("<text ").skip(1).map(|t| t.split('>').nth(1).unwrap().split('<').next().unwrap()).collect();
        assert_eq!(entries, all, "{chart}.svg: legend");
    }
    assert!(!fx.path("job/out/map.svg").exists());
}

// ---------------------------------------------------------------------------------------
// 2. Determinism: threads and row order
// ---------------------------------------------------------------------------------------

#[test]
fn metrics_do_not_depend_on_threads_or_row_order() {
    let fx = Fx::new();
    // The same rows in another order.
    let (header, mut lines) = purchase_lines(SEED);
    let mut rng = common::Lcg(7);
    for k in (1..lines.len()).rev() {
        lines.swap(k, rng.below(k as u32 + 1) as usize);
    }
    write_lines(&fx.path("shuffled.csv"), &header, &lines);
    let job = |purchases: &str, out: &str| {
        format!(
            "{}\n[split]\ntest_share = 0.2\n\n[eval]\nk = [1, 5, 10]\nout_dir = \"{out}\"\n{ALGORITHMS}",
            INPUT.replace("../purchases.csv", purchases)
        )
    };
    fx.write("job/one.toml", &job("../purchases.csv", "one"));
    fx.write("job/four.toml", &job("../purchases.csv", "four"));
    fx.write("job/shuffled.toml", &job("../shuffled.csv", "shuffled"));
    fx.ok(&["--threads", "1", "run", "job/one.toml"]);
    fx.ok(&["--threads", "4", "run", "job/four.toml"]);
    fx.ok(&["--threads", "3", "run", "job/shuffled.toml"]);
    let one = fx.report("job/one");
    assert_eq!(one.runs().len(), 11);
    assert!(one.measurements() == fx.report("job/four").measurements(), "1 and 4 threads measure differently");
    assert!(one.measurements() == fx.report("job/shuffled").measurements(), "the row order changes the measurements");
}

// ---------------------------------------------------------------------------------------
// 3. Metrics against independent computations
// ---------------------------------------------------------------------------------------

/// Ranking metrics of one list against a customer's relevant items, at cut-off `k`:
/// precision, recall, NDCG, hit rate, MRR.
fn ranking_metrics(list: &[String], relevant: &BTreeSet<String>, k: usize) -> [f64; 5] {
    let top = &list[..list.len().min(k)];
    let ranks: Vec<usize> = top.iter().enumerate().filter(|(_, i)| relevant.contains(*i)).map(|(r, _)| r + 1).collect();
    let dcg: f64 = ranks.iter().map(|&r| 1.0 / ((r + 1) as f64).log2()).sum();
    let idcg: f64 = (1..=k.min(relevant.len())).map(|r| 1.0 / ((r + 1) as f64).log2()).sum();
    [
        ranks.len() as f64 / k as f64,
        ranks.len() as f64 / relevant.len() as f64,
        dcg / idcg,
        if ranks.is_empty() { 0.0 } else { 1.0 },
        ranks.first().map_or(0.0, |&r| 1.0 / r as f64),
    ]
}

const RANKING: [&str; 5] = ["precision", "recall", "ndcg", "hit_rate", "mrr"];

/// Popularity's top 10 for customer `c`: items by training buyers, most first, ties in
/// natural id order; a customer's bought and seen items are left out on new items, seen
/// items on all items.
fn popularity_list(split: &SplitFiles, c: &str, exclude_bought: bool) -> Vec<String> {
    let mut popular: Vec<&String> = split.buyers.keys().collect();
    popular.sort_by(|a, b| split.buyers[*b].cmp(&split.buyers[*a]).then_with(|| natural(a, b)));
    let (bought, seen) = (split.bought(c), split.seen(c));
    popular
        .iter()
        .filter(|i| !(seen.contains(**i) || (exclude_bought && bought.contains(**i))))
        .take(10)
        .map(|i| i.to_string())
        .collect()
}

#[test]
fn popularity_matches_a_computation_from_the_split_files() {
    let fx = Fx::new();
    let ks = [1, 5, 10];
    let (report, _) = fx.eval_ok(
        "out",
        &["--test-share", "0.2", "--k", "1,5,10", "--algorithm", "popularity", "--write-split", "split"],
    );
    let split = SplitFiles::read(&fx.path("split"));
    split.check_setup(&report, "time split");
    // Amounts are whole quantities times prices in cents: at most two decimals, printed
    // without the float noise of the product (15.3, not 15.299999999999999).
    for file in ["train.csv", "test.csv"] {
        let mut r = csv::Reader::from_path(fx.path("split").join(file)).unwrap();
        for rec in r.records().map(Result::unwrap) {
            let decimals = rec[3].split_once('.').map_or(0, |(_, d)| d.len());
            assert!(!rec[3].is_empty() && decimals <= 2, "{file}: amount {:?} in {rec:?}", &rec[3]);
        }
    }

    // The written split is the rule: test rows are those at or after the cutoff that leaves
    // 20% of the purchase rows in the test part.
    let rows = generated_rows();
    let cutoff = share_cutoff(&rows, 0.2);
    let (test, train): (Vec<Row>, Vec<Row>) = rows.into_iter().partition(|r| r.time.unwrap() >= cutoff);
    assert_eq!(keys(&split.test), keys(&test), "test.csv is not the rows at or after {}", format_2023(cutoff));
    assert_eq!(keys(&split.train), keys(&train), "train.csv is not the rows before {}", format_2023(cutoff));

    let list = |c: &str, exclude_bought: bool| popularity_list(&split, c, exclude_bought);
    let new = split.new_items();
    let all: Vec<(String, BTreeSet<String>)> =
        split.measured().into_iter().map(|(c, items)| (c.clone(), items.clone())).collect();
    for (target, customers, exclude_bought) in [("new-items", &new, true), ("all-items", &all, false)] {
        assert_eq!(report.customers("popularity", target), customers.len(), "{target}: customers");
        let n = customers.len() as f64;
        for k in ks {
            let per: Vec<[f64; 5]> =
                customers.iter().map(|(c, relevant)| ranking_metrics(&list(c, exclude_bought), relevant, k)).collect();
            for (m, name) in RANKING.iter().enumerate() {
                let want = per.iter().map(|v| v[m]).sum::<f64>() / n;
                let got = report.value("popularity", target, name, k);
                assert!(close(got, want), "popularity {name}@{k} on {target}: report {got}, computed {want}");
                // The standard error: sample standard deviation over customers / sqrt(n).
                let sd = (per.iter().map(|v| (v[m] - want).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                let (got, want) = (report.std_error("popularity", target, name, k), sd / n.sqrt());
                assert!(close(got, want), "popularity {name}@{k} on {target}: standard error {got}, computed {want}");
            }
        }
    }
    // Not a vacuous check: popularity finds something on both targets.
    assert!(report.value("popularity", "new-items", "precision", 5) > 0.0);
    assert!(
        report.value("popularity", "all-items", "precision", 5)
            > report.value("popularity", "new-items", "precision", 5)
    );
}

/// A description without ALS's penalty clause.
fn without_penalty(label: &str) -> String {
    match label.find(", regularisation ") {
        Some(a) => {
            let rest = &label[a + 2..];
            format!("{}{}", &label[..a], &rest[rest.find(',').unwrap_or(rest.len())..])
        }
        None => label.to_string(),
    }
}

/// `auto` (the default) records, per target, what it tried and why; the run's parameters
/// are those of the candidate with the best validation score.
#[test]
fn auto_runs_record_the_choice_and_the_chosen_parameters() {
    let fx = Fx::new();
    let (report, log) = fx.eval_ok("out", &["--test-share", "0.2", "--k", "5,10"]);
    let md = fx.text("out/report.md");
    for target in ["new-items", "all-items"] {
        let run = report.run("auto", target);
        let sel = &run["selection"];
        let tried = sel["tried"].as_array().expect("the candidates");
        // The best score, the first among equals, found here.
        let mut best: Option<(f64, usize)> = None;
        for (k, t) in tried.iter().enumerate() {
            if let Some(s) = t["score"].as_f64() {
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, k));
                }
            }
        }
        let (_, chosen) = best.expect("a measured candidate");
        assert_eq!(sel["chosen"], chosen, "{target}: {sel:#}");
        assert!(tried.iter().all(|t| t.get("params").is_none()), "only the chosen parameters are written");
        let params: cobuy::model::FitParams = serde_json::from_value(run["params"].clone()).expect("fit parameters");
        let label = tried[chosen]["label"].as_str().unwrap();
        // ALS's default penalty is a rule until the fit resolves it on the data: the label
        // says "auto", the run's parameters hold the number.
        assert!(!params.als.relative || params.algorithm != cobuy::algo::Algorithm::Als, "{target}: unresolved");
        assert_eq!(
            without_penalty(&cobuy::model::describe(&params)),
            without_penalty(label),
            "{target}: the run's parameters are not the chosen ones"
        );
        let (reason, split) = (sel["reason"].as_str().unwrap(), sel["split"].as_str().unwrap());
        assert!(reason.starts_with(label), "{reason}");
        assert!(log.contains(&format!("auto on {target}: {reason}; {split}")), "{log}");
        // The run's own description first when it differs from the label (a resolved penalty).
        let described = cobuy::model::describe(&params);
        let line = match described == label {
            true => format!("\n- auto, chosen by auto: {reason} ({split})\n"),
            false => format!("\n- auto: {described}; chosen by auto: {reason} ({split})\n"),
        };
        assert!(md.contains(&line), "{line}\n{md}");
    }
}

#[test]
fn outside_lists_are_measured_as_computed_by_hand() {
    let fx = Fx::new();
    fx.eval_ok("first", &["--test-share", "0.2", "--algorithm", "popularity", "--write-split", "split"]);
    let split = SplitFiles::read(&fx.path("split"));
    let new = split.new_items();
    assert!(new.len() > 100, "{} customers to measure on new items", new.len());

    // perfect: exactly the customer's new held-out items (written last rank first: the
    // ranks decide the order); late: an item the customer bought in training (never a new
    // item) first, then the same; wrong: only bought items, for every other customer
    // (customers without a list get an empty one: they count, with zeros).
    let mut perfect = String::from("customer_id,item_id,rank\n");
    let mut late = String::from("rank,item_id,customer_id,note\n");
    let mut wrong = String::from("customer_id,item_id,rank\n");
    for (n, (c, items)) in new.iter().enumerate() {
        for (r, i) in items.iter().enumerate().rev() {
            perfect.push_str(&format!("{c},{i},{}\n", r + 1));
        }
        let bought = split.bought(c);
        let first = bought.iter().next().expect("measured customers bought something");
        late.push_str(&format!("1,{first},{c},x\n"));
        for (r, i) in items.iter().enumerate() {
            late.push_str(&format!("{},{i},{c},\n", r + 2));
        }
        if n % 2 == 0 {
            for (r, i) in bought.iter().enumerate() {
                wrong.push_str(&format!("{c},{i},{}\n", r + 1));
            }
        }
    }
    // Ids the log does not have are counted and skipped.
    perfect.push_str("nobody,SKU-001,1\n");
    perfect.push_str(&format!("{},NO-SUCH-ITEM,99\n", new[0].0));
    fx.write("perfect.csv", &perfect);
    fx.write("late.csv", &late);
    fx.write("wrong.csv", &wrong);
    let (report, log) = fx.eval_ok(
        "out",
        &[
            "--test-share",
            "0.2",
            "--k",
            "1,3,10",
            "--targets",
            "new-items",
            "--algorithm",
            "popularity",
            "--measure",
            "perfect:new-items=perfect.csv",
            "--measure",
            "late:new-items=late.csv",
            "--measure",
            "wrong:new-items=wrong.csv",
        ],
    );
    assert!(
        log.contains(&format!("perfect: {} rows for {} customers", perfect.lines().count() - 1, new.len())),
        "{log}"
    );
    assert!(log.contains("2 rows name a customer or item the log does not have"), "{log}");
    assert_eq!(report.names("new-items"), ["popularity", "perfect", "late", "wrong"]);
    for name in ["perfect", "late", "wrong"] {
        assert_eq!(report.customers(name, "new-items"), new.len(), "{name}: customers");
    }
    let mean = |f: &dyn Fn(usize) -> f64| new.iter().map(|(_, items)| f(items.len())).sum::<f64>() / new.len() as f64;
    for k in [1, 3, 10] {
        let v = |name: &str, m: &str| report.value(name, "new-items", m, k);
        // perfect: every slot up to the customer's n items is a hit.
        let p = mean(&|n| n.min(k) as f64 / k as f64);
        let r = mean(&|n| n.min(k) as f64 / n as f64);
        assert!(close(v("perfect", "precision"), p), "perfect P@{k}: {} vs {p}", v("perfect", "precision"));
        assert!(close(v("perfect", "recall"), r), "perfect R@{k}: {} vs {r}", v("perfect", "recall"));
        for m in ["ndcg", "map", "hit_rate", "mrr"] {
            assert!(close(v("perfect", m), 1.0), "perfect {m}@{k} = {}", v("perfect", m));
        }
        // late: the same hits one rank lower.
        let p = mean(&|n| n.min(k - 1) as f64 / k as f64);
        let r = mean(&|n| n.min(k - 1) as f64 / n as f64);
        assert!(close(v("late", "precision"), p), "late P@{k}: {} vs {p}", v("late", "precision"));
        assert!(close(v("late", "recall"), r), "late R@{k}: {} vs {r}", v("late", "recall"));
        let (hit, mrr) = if k == 1 { (0.0, 0.0) } else { (1.0, 0.5) };
        assert!(close(v("late", "hit_rate"), hit) && close(v("late", "mrr"), mrr), "late HR/MRR@{k}");
        // wrong: nothing.
        for m in METRICS {
            assert_eq!(v("wrong", m), 0.0, "wrong {m}@{k}");
        }
    }
    // Every customer's new items fit in the first 10, so all are found: revenue recall 1.
    assert!(new.iter().all(|(_, items)| items.len() <= 10));
    assert!(close(report.value("perfect", "new-items", "revenue_recall", 10), 1.0));
}

/// Each run's paired difference in NDCG against the best baseline (here popularity, the
/// only one), recomputed from the lists: per customer of the target, the run's NDCG minus
/// popularity's, a customer without a list counting 0; the mean and mean ± 1.96 sample
/// standard deviations / √n.
#[test]
fn paired_differences_match_a_computation_from_the_lists() {
    let fx = Fx::new();
    fx.eval_ok("first", &["--test-share", "0.2", "--algorithm", "popularity", "--write-split", "split"]);
    let split = SplitFiles::read(&fx.path("split"));
    let new = split.new_items();
    // half: exactly the new held-out items for every other customer, nothing for the rest;
    // shifted: popularity's own list from its third item on, for every customer.
    let (mut half, mut shifted) = (BTreeMap::new(), BTreeMap::new());
    let (mut half_csv, mut shifted_csv) =
        (String::from("customer_id,item_id,rank\n"), String::from("customer_id,item_id,rank\n"));
    for (n, (c, items)) in new.iter().enumerate() {
        if n % 2 == 0 {
            let list: Vec<String> = items.iter().cloned().collect();
            for (r, i) in list.iter().enumerate() {
                half_csv.push_str(&format!("{c},{i},{}\n", r + 1));
            }
            half.insert(c.clone(), list);
        }
        let list: Vec<String> = popularity_list(&split, c, true).into_iter().skip(2).collect();
        for (r, i) in list.iter().enumerate() {
            shifted_csv.push_str(&format!("{c},{i},{}\n", r + 1));
        }
        shifted.insert(c.clone(), list);
    }
    fx.write("half.csv", &half_csv);
    fx.write("shifted.csv", &shifted_csv);
    let args = [
        "--test-share",
        "0.2",
        "--k",
        "1,3,10",
        "--targets",
        "new-items",
        "--algorithm",
        "popularity",
        "--measure",
        "half:new-items=half.csv",
        "--measure",
        "shifted:new-items=shifted.csv",
    ];
    let (report, _) = fx.eval_ok("out", &args);
    assert!(report.run("popularity", "new-items")["paired_ndcg"].is_null(), "the best baseline has no difference");
    assert_eq!(report.run("popularity", "new-items")["baseline"], Value::Bool(true));
    let n = new.len() as f64;
    let ndcg = |list: &[String], relevant: &BTreeSet<String>, k: usize| ranking_metrics(list, relevant, k)[2];
    for k in [1, 3, 10] {
        let pop: Vec<f64> = new.iter().map(|(c, rel)| ndcg(&popularity_list(&split, c, true), rel, k)).collect();
        for (name, lists) in [("half", &half), ("shifted", &shifted)] {
            let diffs: Vec<f64> =
                new.iter().zip(&pop).map(|((c, rel), p)| lists.get(c).map_or(0.0, |l| ndcg(l, rel, k)) - p).collect();
            let mean = diffs.iter().sum::<f64>() / n;
            let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let got = &report.run(name, "new-items")["paired_ndcg"][k.to_string()];
            assert_eq!(got["baseline"], "popularity", "{name}@{k}: {got}");
            assert_eq!(got["customers"].as_u64(), Some(new.len() as u64), "{name}@{k}");
            let num = |key: &str| got[key].as_f64().unwrap_or_else(|| panic!("{name}@{k}: no {key} in {got}"));
            assert!(close(num("baseline_ndcg"), pop.iter().sum::<f64>() / n), "{name}@{k}: {got}");
            assert!(close(num("difference"), mean), "{name}@{k}: difference {} vs {mean}", num("difference"));
            let half_width = 1.96 * sd / n.sqrt();
            assert!(close(num("low"), mean - half_width), "{name}@{k}: low {} vs {}", num("low"), mean - half_width);
            assert!(close(num("high"), mean + half_width), "{name}@{k}: high {} vs {}", num("high"), mean + half_width);
        }
    }
    // Not vacuous: half is ahead of popularity for sure, shifted behind it.
    let at = |name: &str, key: &str| report.run(name, "new-items")["paired_ndcg"]["10"][key].as_f64().unwrap();
    assert!(at("half", "low") > 0.0 && at("shifted", "difference") != 0.0);
    let md = fx.text("out/report.md");
    assert!(md.contains("Paired differences against the best baseline (NDCG@1: popularity"), "{md}");
    assert!(md.lines().any(|l| l.starts_with("| half | +")), "{md}");
}

// ---------------------------------------------------------------------------------------
// 4. Splits
// ---------------------------------------------------------------------------------------

#[test]
fn last_basket_split_holds_out_each_customers_latest_purchase() {
    let fx = Fx::new();
    // Without a basket column, a basket is the rows at one time.
    let (report, _) =
        fx.eval_ok("out", &["--split", "last-basket", "--k", "5", "--algorithm", "item-knn", "--write-split", "split"]);
    assert_eq!(report.setup("split"), "last basket of each customer");
    let split = SplitFiles::read(&fx.path("split"));
    split.check_setup(&report, "last-basket by time");
    let rows = generated_rows();
    let mut times: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    for r in rows.iter().filter(|r| r.quantity > 0.0) {
        times.entry(&r.customer).or_default().insert(r.time.unwrap());
    }
    let last: HashMap<&str, i64> =
        times.iter().filter(|(_, t)| t.len() > 1).map(|(c, t)| (*c, *t.iter().next_back().unwrap())).collect();
    let want: Vec<Row> = rows.iter().filter(|r| last.get(r.customer.as_str()) == r.time.as_ref()).cloned().collect();
    assert_eq!(keys(&split.test), keys(&want), "test.csv is not each customer's latest purchase time");
    assert_eq!(report.setup_numbers("test customers")[0], last.len());
    assert!(last.len() > 250, "most customers have two purchases or more");

    // With a basket column: here a basket is a customer's month.
    let (header, lines) = purchase_lines(SEED);
    let with_baskets: Vec<String> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{l},{}/{}", f[0], &f[4][..7])
        })
        .collect();
    write_lines(&fx.path("baskets.csv"), &format!("{header},basket"), &with_baskets);
    let r = fx.ok(&[
        "eval",
        "--purchases",
        "baskets.csv",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--quantity-col",
        "quantity",
        "--time-col",
        "time",
        "--basket-col",
        "basket",
        "--split",
        "last-basket",
        "--k",
        "5",
        "--out-dir",
        "bout",
        "--algorithm",
        "user-knn",
        "--write-split",
        "bsplit",
    ]);
    assert!(r.stderr.contains("baskets"), "{}", r.stderr);
    let report = fx.report("bout");
    let split = SplitFiles::read(&fx.path("bsplit"));
    split.check_setup(&report, "last-basket by basket");
    // Each customer with purchases in two months or more: every row of the last such month.
    let mut months: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for r in rows.iter().filter(|r| r.quantity > 0.0) {
        months.entry(&r.customer).or_default().insert(format_2023(r.time.unwrap())[..7].to_string());
    }
    let last: HashMap<&str, &String> =
        months.iter().filter(|(_, m)| m.len() > 1).map(|(c, m)| (*c, m.iter().next_back().unwrap())).collect();
    let want: Vec<(String, String, i64, Option<i64>)> = {
        let mut v: Vec<_> = rows
            .iter()
            .filter(|r| last.get(r.customer.as_str()).is_some_and(|m| format_2023(r.time.unwrap()).starts_with(*m)))
            .map(|r| (r.customer.clone(), r.item.clone(), r.quantity as i64, r.time))
            .collect();
        v.sort();
        v
    };
    let mut got: Vec<_> =
        split.test.iter().map(|r| (r.customer.clone(), r.item.clone(), r.quantity as i64, r.time)).collect();
    got.sort();
    assert_eq!(got, want, "test.csv is not each customer's last month");
    for r in &split.test {
        assert_eq!(r.basket, format!("{}/{}", r.customer, &format_2023(r.time.unwrap())[..7]), "basket of {r:?}");
    }
    assert_eq!(report.setup_numbers("test customers")[0], last.len());
}

#[test]
fn random_split_is_seeded_and_holds_out_whole_pairs() {
    let fx = Fx::new();
    let args = |seed: &'static str, split: &'static str| {
        ["--split", "random", "--fraction", "0.25", "--seed", seed, "--k", "5,10", "--write-split", split]
    };
    let (a, _) = fx.eval_ok("a", &args("7", "sa"));
    let (b, _) = fx.eval_ok("b", &args("7", "sb"));
    let (c, _) = fx.eval_ok("c", &args("8", "sc"));
    assert_eq!(a.setup("split"), "random: 0.25 of each customer's items, seed 7");
    assert!(a.measurements() == b.measurements(), "the same seed gives another report");
    assert_eq!(fx.text("sa/test.csv"), fx.text("sb/test.csv"));
    assert!(a.measurements() != c.measurements(), "another seed gives the same report");
    assert_ne!(fx.text("sa/test.csv"), fx.text("sc/test.csv"));

    for (report, dir) in [(&a, "sa"), (&c, "sc")] {
        let split = SplitFiles::read(&fx.path(dir));
        split.check_setup(report, dir);
        // Every row of a held-out pair is held out: no pair is on both sides, so every
        // held-out pair is new to its customer.
        let pairs = |rows: &[Row]| rows.iter().map(|r| (r.customer.clone(), r.item.clone())).collect::<BTreeSet<_>>();
        let (train, test) = (pairs(&split.train), pairs(&split.test));
        assert!(train.is_disjoint(&test), "{dir}: a pair on both sides");
        let share = test.len() as f64 / (train.len() + test.len()) as f64;
        assert!((0.18..0.32).contains(&share), "{dir}: {share} of the pairs held out, asked 0.25");
        let held = report.setup_numbers("held-out pairs");
        assert_eq!(held[0], held[1], "{dir}: every held-out pair is new");
        let measured = report.setup_numbers("measured customers");
        assert_eq!(measured[0], measured[1]);
        assert!(measured[0] > 150, "{dir}: {measured:?}");
        // So both targets measure the same thing.
        assert!(report.measurements().iter().all(|r| r["customers"].as_u64() == Some(measured[0] as u64)));
    }

    // A random split needs no time column.
    let r = fx.run(&[
        "eval",
        "--purchases",
        "purchases.csv",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--quantity-col",
        "quantity",
        "--split",
        "random",
        "--out-dir",
        "untimed",
        "--algorithm",
        "item-knn",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(fx.report("untimed").runs().len() == 2);
}

#[test]
fn validation_split_leaves_the_test_part_unused() {
    let fx = Fx::new();
    let common_args = ["--test-share", "0.2", "--k", "5", "--algorithm", "item-knn"];
    let (test, _) = fx.eval_ok("test", &common_args);
    let (val, log) = fx.eval_ok("val", &[&common_args[..], &["--validation", "--write-split", "vsplit"]].concat());
    let test_rows = test.setup_numbers("test rows")[0];
    assert!(log.contains(&format!("{test_rows} test-part rows unused")), "{log}");
    assert_eq!(
        val.setup("split"),
        format!("{}; validation split (carved from the training part)", last_share_split(0.2))
    );
    let split = SplitFiles::read(&fx.path("vsplit"));
    split.check_setup(&val, "validation split");
    assert_eq!(split.train.len() + split.test.len() + test_rows, 3000);
    assert_eq!(test.setup_numbers("training rows")[0], split.train.len() + split.test.len());

    // The validation window ends where the test part starts and is as long as it.
    let rows = generated_rows();
    let cutoff = share_cutoff(&rows, 0.2);
    let last = rows.iter().filter_map(|r| r.time).max().unwrap();
    let start = cutoff - (last - cutoff).max(1);
    let want_val: Vec<Row> = rows.iter().filter(|r| (start..cutoff).contains(&r.time.unwrap())).cloned().collect();
    let want_train: Vec<Row> = rows.iter().filter(|r| r.time.unwrap() < start).cloned().collect();
    assert_eq!(
        keys(&split.test),
        keys(&want_val),
        "validation rows: {} to {}",
        format_2023(start),
        format_2023(cutoff)
    );
    assert_eq!(keys(&split.train), keys(&want_train));
    // Measured on other rows: other numbers.
    assert!(val.value("item-knn", "new-items", "ndcg", 5) != test.value("item-knn", "new-items", "ndcg", 5));

    // Last basket and random: the validation split holds out from the training part only.
    for method in [&["--split", "last-basket"][..], &["--split", "random", "--seed", "3"]] {
        let (t, _) = fx.eval_ok("t2", &[method, &["--algorithm", "popularity"]].concat());
        let (v, log) = fx.eval_ok("v2", &[method, &["--algorithm", "popularity", "--validation"]].concat());
        let unused = t.setup_numbers("test rows")[0];
        assert!(log.contains(&format!("{unused} test-part rows unused")), "{method:?}: {log}");
        let (vt, vv) = (v.setup_numbers("training rows")[0], v.setup_numbers("test rows")[0]);
        assert_eq!(vt + vv, t.setup_numbers("training rows")[0], "{method:?}");
        assert!(vv > 0 && vt > vv, "{method:?}: {vt} training rows, {vv} validation rows");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Bad input: exit code 2, a message naming the problem, nothing written
// ---------------------------------------------------------------------------------------

#[test]
fn bad_flags_are_usage_errors_and_write_nothing() {
    let fx = Fx::new();
    fx.write("lists.csv", "customer_id,item_id,rank\n12111,SKU-001,1\n");
    let rows = generated_rows();
    let purchases = rows.iter().filter(|r| r.quantity > 0.0).filter_map(|r| r.time);
    let (first, last) = (format_2023(purchases.clone().min().unwrap()), format_2023(purchases.max().unwrap()));
    let cases: &[(&[&str], &[&str])] = &[
        (&["--k", "0"], &["cut-offs k must be between 1 and 1000", "[0]"]),
        (&["--k", "1001"], &["between 1 and 1000", "1001"]),
        (&["--k", "5,0,10"], &["between 1 and 1000"]),
        (&["--split", "nope"], &["--split", "\"nope\"", "time, last-basket, random"]),
        (&["--cutoff", "2022-12-31"], &["cutoff 2022-12-31 00:00:00", "before the purchases", &first, &last]),
        (&["--cutoff", "2024-01-01"], &["cutoff 2024-01-01 00:00:00", "after the purchases", &first, &last]),
        (&["--cutoff", "notadate"], &["--cutoff", "\"notadate\"", "not a date"]),
        (&["--cutoff", "2023-06-01", "--test-share", "0.2"], &["--cutoff or --test-share, not both"]),
        (&["--test-share", "1.5"], &["test share", "between 0 and 1", "1.5"]),
        (&["--test-share", "0"], &["test share", "between 0 and 1"]),
        (&["--split", "random", "--fraction", "0"], &["fraction", "between 0 and 1", "got 0"]),
        (&["--split", "random", "--fraction", "1"], &["fraction", "between 0 and 1", "got 1"]),
        (&["--targets", "nope"], &["unknown target", "\"nope\"", "new-items, all-items"]),
        (&["--charts", "nope"], &["--charts", "\"nope\"", "precision, recall, ndcg"]),
        (&["--measure", "mylist"], &["NAME:TARGET=FILE", "\"mylist\""]),
        (&["--measure", "mylist=lists.csv"], &["NAME:TARGET=FILE", "\"mylist=lists.csv\""]),
        (&["--measure", "mylist:bogus=lists.csv"], &["--measure", "unknown target \"bogus\"", "new-items, all-items"]),
        (&["--measure", ":new-items=lists.csv"], &["NAME:TARGET=FILE"]),
        (&["--measure", "mylist:new-items="], &["NAME:TARGET=FILE"]),
        (&["--measure", "mylist:newish=lists.csv"], &["unknown target", "\"newish\""]),
        (&["--measure", "mylist:new-items=missing.csv"], &["missing.csv", "cannot read"]),
        (&["--algorithm", "nope"], &["--algorithm", "\"nope\""]),
        (&["--algorithm", "als", "--factors", "0"], &["als", "factors", "got 0"]),
        (&["--algorithm", "als", "--iterations", "0"], &["als", "iterations"]),
        (&["--similarity", "rp3beta", "--rp3-beta", "5"], &["RP3beta beta", "between 0 and 2", "5"]),
        (&["--similarity", "rp3beta", "--rp3-alpha", "0"], &["RP3beta alpha"]),
        (&["--algorithm", "user-knn", "--similarity", "rp3beta"], &["rp3beta", "item-knn", "not user-knn"]),
        (&["--neighbors", "0"], &["neighbors", "between 1 and 100000"]),
        (&["--name", "mine", "--measure", "mine:new-items=lists.csv"], &["two configurations", "\"mine\""]),
    ];
    for (extra, want) in cases {
        let r = fx.eval("out", extra);
        assert_usage(&r, &format!("eval {extra:?}"), want);
        fx.assert_no_report("out", &format!("eval {extra:?}"));
    }

    // No --out-dir: a required flag (clap's usage error, exit code 2).
    let mut args = vec!["eval", "--purchases", "purchases.csv"];
    args.extend_from_slice(&COLUMNS);
    let r = fx.run(&args);
    assert_eq!(r.code, 2, "eval without --out-dir: {}", r.stderr);
    assert!(r.stderr.contains("required") && r.stderr.contains("--out-dir"), "{}", r.stderr);

    // A time split without a time column; last basket with neither times nor baskets.
    let untimed = ["eval", "--purchases", "purchases.csv", "--customer-col", "customer", "--item-col", "item"];
    let r = fx.run(&[&untimed[..], &["--out-dir", "out", "--split", "time"]].concat());
    assert_usage(&r, "time split without times", &["time split needs purchase times", "--time-col"]);
    fx.assert_no_report("out", "time split without times");
    let r = fx.run(&[&untimed[..], &["--out-dir", "out", "--split", "last-basket"]].concat());
    assert_usage(
        &r,
        "last basket without times",
        &["last-basket split needs a basket or a time column", "--basket-col"],
    );
    fx.assert_no_report("out", "last basket without times");
}

#[test]
fn bad_measure_files_name_the_file_and_line() {
    let fx = Fx::new();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "norank.csv",
            "customer_id,item_id\n12111,SKU-001\n",
            &["norank.csv", "no column \"rank\"", "customer_id,item_id"],
        ),
        ("noitem.csv", "customer_id,item,rank\n12111,SKU-001,1\n", &["noitem.csv", "no column \"item_id\""]),
        (
            "badrank.csv",
            "customer_id,item_id,rank\n12111,SKU-001,1\n12111,SKU-002,two\n",
            &["badrank.csv:3", "column rank", "not a whole number"],
        ),
        ("negrank.csv", "customer_id,item_id,rank\n12111,SKU-001,-1\n", &["negrank.csv:2", "column rank"]),
        ("fracrank.csv", "customer_id,item_id,rank\n12111,SKU-001,1.5\n", &["fracrank.csv:2", "column rank"]),
        ("short.csv", "customer_id,item_id,rank\n12111,SKU-001,1\n12111,SKU-002\n", &["short.csv", "line: 3"]),
    ];
    for (name, text, want) in cases {
        fx.write(name, text);
        let spec = format!("mylist:new-items={name}");
        let r = fx.eval("out", &["--algorithm", "popularity", "--measure", &spec]);
        assert_usage(&r, name, want);
        fx.assert_no_report("out", name);
    }
}

#[test]
fn bad_eval_jobs_are_usage_errors_and_write_nothing() {
    let fx = Fx::new();
    let head = format!("{INPUT}\n[split]\ntest_share = 0.2\n\n[eval]\nk = [5]\nout_dir = \"out\"\n");
    let cases: &[(&str, &[&str])] = &[
        // Two configurations with the default name, then with the same given name.
        (
            "[[algorithm]]\nalgorithm = \"item-knn\"\n\n[[algorithm]]\nalgorithm = \"item-knn\"\nneighbors = 5\n",
            &["two configurations are named \"item-knn\"", "give each its own name"],
        ),
        (
            "[[algorithm]]\nname = \"a\"\nalgorithm = \"item-knn\"\n\n[[algorithm]]\nname = \"a\"\nalgorithm = \"user-knn\"\n",
            &["two configurations are named \"a\""],
        ),
        (
            "[[algorithm]]\nalgorithm = \"item-knn\"\nnieghbors = 5\n",
            &["eval.toml", "unknown field", "nieghbors", "did you mean `neighbors`?"],
        ),
        // An unknown key beside a similarity key (the two are flattened into one table).
        (
            "[[algorithm]]\nalgorithm = \"item-knn\"\nsimilarity = \"jaccard\"\nshrink = 2.0\n",
            &["unknown field", "shrink"],
        ),
        ("", &["eval.toml", "no [[algorithm]] table and nothing to --measure"]),
        ("[[algorithm]]\nalgorithm = \"als\"\nfactors = 0\n", &["als", "factors", "got 0"]),
        (
            "[[algorithm]]\nalgorithm = \"item-knn\"\nsimilarity = \"rp3beta\"\nrp3_beta = 5.0\n",
            &["RP3beta beta", "between 0 and 2"],
        ),
        ("[[algorithm]]\nalgorithm = \"user-knn\"\nsimilarity = \"rp3beta\"\n", &["rp3beta", "not user-knn"]),
        (
            "[[algorithm]]\nalgorithm = \"popularity\"\nneighbors = \"many\"\n",
            &["eval.toml", "invalid type: string \"many\""],
        ),
    ];
    for (algorithms, want) in cases {
        fx.write("job/eval.toml", &format!("{head}\n{algorithms}"));
        let r = fx.run(&["run", "job/eval.toml"]);
        assert_usage(&r, algorithms, want);
        fx.assert_no_report("job/out", algorithms);
    }
    // Unknown keys in the other tables.
    let good = "[[algorithm]]\nalgorithm = \"popularity\"\n";
    for (from, to, key) in [("test_share", "test_shares", "test_shares"), ("out_dir", "outdir", "outdir")] {
        fx.write("job/eval.toml", &format!("{}\n{good}", head.replace(from, to)));
        let suggestion = format!("did you mean `{from}`?");
        assert_usage(&fx.run(&["run", "job/eval.toml"]), key, &["unknown field", key, &suggestion]);
    }
    // The nightly job's [fit] (fit and similarity keys flattened: serde lists none).
    let night =
        "[input]\npurchases = \"p.csv\"\n[fit]\nmodel = \"m.cobuy\"\nneighbours = 5\n[recommend]\nout = \"r.csv\"\n";
    fx.write("job/night.toml", night);
    assert_usage(
        &fx.run(&["run", "job/night.toml"]),
        "neighbours",
        &["unknown field `neighbours`", "did you mean `neighbors`?"],
    );
    // A key far from every known one gets no suggestion.
    fx.write("job/eval.toml", &format!("{}\n{good}", head.replace("out_dir", "zzzzzz")));
    let r = fx.run(&["run", "job/eval.toml"]);
    assert_usage(&r, "zzzzzz", &["unknown field", "zzzzzz"]);
    assert!(!r.stderr.contains("did you mean"), "{}", r.stderr);
    // The good job runs.
    fx.write("job/eval.toml", &format!("{head}\n{good}"));
    fx.ok(&["run", "job/eval.toml"]);
    assert_eq!(fx.report("job/out").names("new-items"), ["popularity"]);
}

#[test]
fn splits_without_test_customers_are_errors() {
    let fx = Fx::new();
    // c and d buy only after the cutoff: every test customer is cold.
    fx.write(
        "cold.csv",
        "customer,item,time\na,x,2023-01-05\na,y,2023-02-05\nb,x,2023-01-07\nb,z,2023-03-01\nc,y,2023-12-02\nd,z,2023-12-03\n",
    );
    let r = fx.run(&[
        "eval",
        "--purchases",
        "cold.csv",
        "--time-col",
        "time",
        "--cutoff",
        "2023-12-01",
        "--out-dir",
        "out",
    ]);
    assert_usage(
        &r,
        "all test customers cold",
        &["no test customer", "2 test customers of whom 2 have no training purchases"],
    );
    fx.assert_no_report("out", "all test customers cold");
    // Everyone bought one basket only: nothing to hold out.
    fx.write(
        "one.csv",
        "customer,item,time,basket\na,x,2023-01-05,1\na,y,2023-01-05,1\nb,x,2023-01-07,2\nb,z,2023-03-01,2\n",
    );
    let r = fx.run(&[
        "eval",
        "--purchases",
        "one.csv",
        "--time-col",
        "time",
        "--basket-col",
        "basket",
        "--split",
        "last-basket",
        "--out-dir",
        "out",
    ]);
    assert_usage(&r, "one basket each", &["no test customer", "0 test rows"]);
    fx.assert_no_report("out", "one basket each");
    // An earlier cutoff leaves one test customer with training purchases (b): enough.
    let r = fx.run(&[
        "eval",
        "--purchases",
        "cold.csv",
        "--time-col",
        "time",
        "--cutoff",
        "2023-03-01",
        "--out-dir",
        "out",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fx.report("out").setup_numbers("test customers"), [3, 2]);
    assert_eq!(fx.report("out").setup_numbers("measured customers"), [1, 1]);
}

// ---------------------------------------------------------------------------------------
// 6. cobuy tune
// ---------------------------------------------------------------------------------------

const TUNE: &str = r#"
[split]
test_share = 0.2
validation = true

[eval]
k = [5, 10]
out_dir = "best-out"

[tune]
metric = "ndcg"
k = 10
target = "new-items"
"#;

const SPACES: &str = r#"
[[space]]
algorithm = "item-knn"
neighbors = [5, 20]

[[space]]
algorithm = ["user-knn"]
neighbors = [10, 30]
"#;

/// NDCG@10 of the configuration `label` (a tune label, `key=value` pairs) fitted by `cobuy
/// fit` on `val-train.csv` (read with `columns`), its lists of 10 written by `cobuy
/// recommend` (with `recommend` flags), the metric from its definition over `relevant`
/// (per measured customer, the held-out items that count).
fn oracle_score(
    fx: &Fx,
    columns: &[&str],
    recommend: &[&str],
    label: &str,
    relevant: &[(String, BTreeSet<String>)],
) -> f64 {
    let mut args = vec!["fit", "--purchases", "val-train.csv", "--model", "val.cobuy"];
    args.extend_from_slice(columns);
    let flags = label_flags(label);
    args.extend(flags.iter().map(String::as_str));
    fx.ok(&args);
    let mut args = vec!["recommend", "--model", "val.cobuy", "--top", "10", "--out", "val-recs.csv"];
    args.extend_from_slice(recommend);
    fx.ok(&args);
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    let mut recs = csv::Reader::from_path(fx.path("val-recs.csv")).expect("recommendations");
    for rec in recs.records() {
        let rec = rec.expect("a record");
        lists.entry(rec[0].to_string()).or_default().push(rec[2].to_string());
    }
    let sum: f64 = relevant.iter().map(|(c, items)| ranking_metrics(&lists[c], items, 10)[2]).sum();
    sum / relevant.len() as f64
}

/// A tune label (`algorithm=ease ease_lambda=100`) as `cobuy fit` flags.
fn label_flags(label: &str) -> Vec<String> {
    label
        .split(' ')
        .flat_map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            [format!("--{k}"), v.to_string()]
        })
        .collect()
}

/// The `#   SCORE  LABEL` lines of a best file's header.
fn header_scores(text: &str) -> Vec<(String, String)> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| {
            let (score, label) = l.split_once("  ").expect("score and label");
            (score.to_string(), label.to_string())
        })
        .collect()
}

#[test]
fn tune_writes_the_best_configurations_as_a_job_that_runs() {
    let fx = Fx::new();
    fx.write("job/tune.toml", &format!("{INPUT}{TUNE}{SPACES}"));
    let log = fx.ok(&["tune", "job/tune.toml"]).stderr;
    assert!(log.contains("trying 4 configurations"), "{log}");
    let text = fx.text("job/tune.toml.best.toml");
    assert!(
        text.starts_with("# Written by cobuy tune from job/tune.toml: the best 3 of 4 configurations by ndcg@10 on new-items, on the validation split\n"),
        "{text}"
    );
    let scores = header_scores(&text);
    let mut labels: Vec<&str> = scores.iter().map(|s| s.1.as_str()).collect();
    labels.sort_unstable();
    assert_eq!(
        labels,
        [
            "algorithm=item-knn neighbors=20",
            "algorithm=item-knn neighbors=5",
            "algorithm=user-knn neighbors=10",
            "algorithm=user-knn neighbors=30"
        ]
    );
    let values: Vec<f64> = scores.iter().map(|s| s.0.parse().expect("a score")).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
    // The best as `cobuy fit` flags, in the header and the log: its label's keys and values.
    let flags = scores[0].1.split(' ').map(|kv| format!("--{}", kv.replace('=', " "))).collect::<Vec<_>>().join(" ");
    assert!(text.contains(&format!("# To fit the best on all the purchases: cobuy fit {flags}\n")), "{text}");
    assert!(log.contains(&format!("to fit it: cobuy fit ... {flags}")), "{log}");
    // Enough validation customers (100 or more): no warning that differences are noise.
    assert!(!log.contains("warning: only "), "{log}");

    // Each score is NDCG@10 on new items over the validation split, computed here: the
    // split from the rows (the validation window ends where the test part starts and is as
    // long as it), a model of each configuration fitted on the training rows alone, its
    // lists of 10, and the metric from its definition.
    let (header, lines) = purchase_lines(SEED);
    let rows = generated_rows();
    let cutoff = share_cutoff(&rows, 0.2);
    let start = cutoff - (rows.iter().filter_map(|r| r.time).max().unwrap() - cutoff).max(1);
    let in_part = |r: &Row, part: std::ops::Range<i64>| part.contains(&r.time.unwrap());
    let train: Vec<String> =
        lines.iter().zip(&rows).filter(|(_, r)| in_part(r, i64::MIN..start)).map(|(l, _)| l.clone()).collect();
    write_lines(&fx.path("val-train.csv"), &header, &train);
    let split = SplitFiles::of(
        rows.iter().filter(|r| in_part(r, i64::MIN..start)).cloned().collect(),
        rows.iter().filter(|r| in_part(r, start..cutoff)).cloned().collect(),
    );
    let new = split.new_items();
    assert!(new.len() > 50, "{} customers to measure", new.len());
    for (score, label) in &scores {
        let want = oracle_score(&fx, &COLUMNS, &[], label, &new);
        let got: f64 = score.parse().unwrap();
        assert!((got - want).abs() <= 0.5e-4 + 1e-12, "{label}: tune says {score}, computed {want:.6}");
    }

    // The best file: the input, split (on the test part now) and eval tables as given, the
    // best three configurations by name.
    let best: toml::Table = text.parse().expect("the best file is TOML");
    let algorithms = best["algorithm"].as_array().expect("[[algorithm]] tables");
    let names: Vec<&str> = algorithms.iter().map(|a| a["name"].as_str().unwrap()).collect();
    let top: Vec<&str> = scores.iter().take(3).map(|s| s.1.as_str()).collect();
    assert_eq!(names, top);
    for a in algorithms {
        let label = a["name"].as_str().unwrap();
        assert!(label.contains(&format!("algorithm={}", a["algorithm"].as_str().unwrap())), "{a}");
        assert!(label.contains(&format!("neighbors={}", a["neighbors"].as_integer().unwrap())), "{a}");
    }
    assert!(best["split"].get("validation").is_none(), "the best job still measures on the validation split");
    assert_eq!(best["eval"]["out_dir"].as_str(), Some("best-out"));

    fx.ok(&["run", "job/tune.toml.best.toml"]);
    let report = fx.report("job/best-out");
    assert_eq!(report.names("new-items"), top);
    assert_eq!(report.names("all-items"), top);
    assert_eq!(report.setup("split"), last_share_split(0.2));
    let (plain, _) = fx.eval_ok("plain", &["--test-share", "0.2", "--algorithm", "popularity"]);
    assert_eq!(report.setup("training rows"), plain.setup("training rows"));

    // A random draw of two of the four: seeded.
    let out = fx.path("draw.toml");
    let draw =
        TUNE.replace("k = 10\n", &format!("k = 10\ntrials = 2\nseed = 5\nout = {:?}\n", out.display().to_string()));
    fx.write("job/draw.toml", &format!("{INPUT}{draw}{SPACES}"));
    fx.ok(&["tune", "job/draw.toml"]);
    let first = fx.text("draw.toml");
    assert!(first.contains("the best 2 of 2 configurations"), "{first}");
    assert!(fx.run(&["tune", "job/draw.toml"]).code == 0 && fx.text("draw.toml") == first, "the draw is not seeded");
    let drawn = header_scores(&first);
    assert_eq!(drawn.len(), 2);
    assert!(drawn.iter().all(|d| scores.contains(d)), "{drawn:?} not among {scores:?}");
}

#[test]
fn bad_tune_jobs_are_usage_errors_and_write_nothing() {
    let fx = Fx::new();
    let cases: Vec<(String, &[&str])> = vec![
        (TUNE.replace("k = 10\n", "k = 10\ntrials = 0\n"), &["trials must be at least 1"]),
        (TUNE.replace("k = 10\n", "k = 0\n"), &["cut-offs k", "[0]"]),
        (TUNE.replace("\"ndcg\"", "\"nope\""), &["metric", "\"nope\""]),
        (TUNE.replace("\"new-items\"", "\"newish\""), &["unknown target", "\"newish\""]),
        (TUNE.replace("test_share = 0.2", "test_share = 2.0"), &["test share", "between 0 and 1"]),
        (TUNE.replace("metric", "metrik"), &["tune.toml", "unknown field", "metrik", "did you mean `metric`?"]),
    ];
    for (tune, want) in &cases {
        fx.write("job/tune.toml", &format!("{INPUT}{tune}{SPACES}"));
        assert_usage(&fx.run(&["tune", "job/tune.toml"]), tune, want);
        assert!(!fx.path("job/tune.toml.best.toml").exists(), "{tune}: wrote a best file");
    }
    let spaces: &[(&str, &[&str])] = &[
        // An unknown key, named with the combination.
        (
            "[[space]]\nalgorithm = \"item-knn\"\nneighbours = [5, 20]\n",
            &["[[space]] algorithm=item-knn neighbours=5", "unknown field", "neighbours"],
        ),
        (
            "[[space]]\nalgorithm = \"item-knn\"\nneighbors = [5, 0]\n",
            &["[[space]] algorithm=item-knn neighbors=0", "neighbors"],
        ),
        ("[[space]]\nalgorithm = [\"item-knn\", \"nope\"]\n", &["[[space]] algorithm=nope", "\"nope\""]),
        ("[[space]]\nalgorithm = \"user-knn\"\nsimilarity = [\"cosine\", \"rp3beta\"]\n", &["rp3beta", "not user-knn"]),
        // No [[space]] table at all.
        ("", &["tune.toml", "give at least one [[space]] table"]),
        ("[[space]]\n", &["tune.toml", "a [[space]] table is empty"]),
    ];
    for (space, want) in spaces {
        fx.write("job/tune.toml", &format!("{INPUT}{TUNE}{space}"));
        assert_usage(&fx.run(&["tune", "job/tune.toml"]), space, want);
        assert!(!fx.path("job/tune.toml.best.toml").exists(), "{space}: wrote a best file");
    }
}

/// Every path of a job file is relative to the job file, and so is `[tune] out`; a best
/// file written in another folder gets the job's paths made absolute, so that it reads the
/// same purchases and writes where the job would.
#[test]
fn tune_out_is_relative_to_the_job_file() {
    let fx = Fx::new();
    let tune = TUNE.replace("k = 10\n", "k = 10\nout = \"best/best.toml\"\n");
    fs::create_dir(fx.path("job/best")).unwrap();
    fx.write("job/tune.toml", &format!("{INPUT}{tune}{SPACES}"));
    fx.ok(&["tune", "job/tune.toml"]);
    assert!(!fx.path("best/best.toml").exists(), "written relative to the current folder");
    let text = fx.text("job/best/best.toml");
    assert_eq!(header_scores(&text).len(), 4, "{text}");
    let best: toml::Table = text.parse().expect("the best file is TOML");
    let path =
        |table: &str, key: &str| PathBuf::from(best[table][key].as_str().unwrap_or_else(|| panic!("{table}.{key}")));
    let purchases = path("input", "purchases");
    assert!(purchases.is_absolute(), "{}", purchases.display());
    assert_eq!(fs::canonicalize(&purchases).unwrap(), fs::canonicalize(fx.path("purchases.csv")).unwrap());
    let out_dir = path("eval", "out_dir");
    assert!(out_dir.is_absolute() && out_dir.ends_with("job/best-out"), "{}", out_dir.display());

    fx.ok(&["run", "job/best/best.toml"]);
    assert!(!fx.path("job/best/best-out").exists(), "the best job wrote beside itself, not where the job would");
    let report = fx.report("job/best-out");
    assert_eq!(report.names("new-items").len(), 3);
    let (plain, _) = fx.eval_ok("plain", &["--test-share", "0.2", "--algorithm", "popularity"]);
    assert_eq!(report.setup("training rows"), plain.setup("training rows"), "the best job read other purchases");
}

// ---------------------------------------------------------------------------------------
// 7. cobuy tune for production: no [split], validation carved from all the purchases
// ---------------------------------------------------------------------------------------

/// A production tune: no `[split]`, the model to refit.
const PRODUCTION: &str = r#"
[tune]
metric = "ndcg"
k = 10
target = "new-items"
model = "models/tuned.cobuy"
"#;

/// The `validation split: T training rows, V validation rows...` log line's T and V.
fn validation_rows(log: &str) -> (usize, usize) {
    let line = log.lines().find(|l| l.starts_with("cobuy: validation split: ")).unwrap_or_else(|| panic!("{log}"));
    let n = numbers(line);
    (n[0], n[1])
}

/// Checks production mode's outputs: the model is the one `cobuy fit` writes with the
/// best flags on every row, and the fit job written is accepted by `cobuy run`, which
/// writes the same model bytes and `[recommend]`'s recommendations. `columns`: the input
/// flags; `best`: the best label; returns the fit job.
fn check_refit(fx: &Fx, purchases: &str, columns: &[&str], best: &str) -> toml::Table {
    let tuned = fs::read(fx.path("job/models/tuned.cobuy")).expect("the tuned model");
    let mut args = vec!["fit", "--purchases", purchases, "--model", "fit.cobuy"];
    args.extend_from_slice(columns);
    let flags = label_flags(best);
    args.extend(flags.iter().map(String::as_str));
    fx.ok(&args);
    assert!(tuned == fs::read(fx.path("fit.cobuy")).unwrap(), "the tuned model is not cobuy fit {flags:?} on all rows");

    let text = fx.text("job/tune.toml.best.toml");
    let job: toml::Table = text.parse().expect("the fit job is TOML");
    let fit = job["fit"].as_table().expect("[fit]");
    assert_eq!(fit["model"].as_str(), Some("models/tuned.cobuy"));
    for (k, v) in best.split(' ').map(|kv| kv.split_once('=').unwrap()) {
        assert_eq!(fit[k].to_string().trim_matches('"'), v, "[fit] {k} in\n{text}");
    }
    assert_eq!(fit.len(), best.split(' ').count() + 1, "[fit] holds more than the best keys:\n{text}");
    assert_eq!(job["recommend"]["out"].as_str(), Some("models/recommendations.csv"));
    assert!(!text.contains("[split]") && !text.contains("[eval]") && !text.contains("[[algorithm]]"), "{text}");

    fs::remove_file(fx.path("job/models/tuned.cobuy")).unwrap();
    fx.ok(&["run", "job/tune.toml.best.toml"]);
    assert!(tuned == fs::read(fx.path("job/models/tuned.cobuy")).unwrap(), "cobuy run fitted another model");
    let recs = fx.text("job/models/recommendations.csv");
    assert!(recs.lines().count() > 1000, "{} lines of recommendations", recs.lines().count());
    job
}

/// Without `[split]`, tune validates on the most recent tenth of all the purchases (the
/// window holds more than 100 measurable customers), holds nothing back as test, refits
/// the best on every row and writes it with a fit job that `cobuy run` takes.
#[test]
fn tune_for_production_validates_on_the_most_recent_window_and_refits_on_everything() {
    let fx = Fx::new();
    fx.write("job/tune.toml", &format!("{INPUT}{PRODUCTION}{SPACES}"));
    let log = fx.ok(&["tune", "job/tune.toml"]).stderr;

    // The window: rows at or after the time that leaves a tenth of the purchases at or
    // after it; training on every row before. Nothing else is held back.
    let (header, lines) = purchase_lines(SEED);
    let rows = generated_rows();
    let cutoff = share_cutoff(&rows, 0.1);
    let recent = |r: &Row| r.time.unwrap() >= cutoff;
    let window = rows.iter().filter(|r| recent(r)).count();
    assert!(
        log.contains(&format!(
            "cobuy: validation on the most recent tenth of the purchases, from {}",
            format_2023(cutoff)
        )),
        "{log}"
    );
    assert!(log.contains("nothing is held back as test"), "{log}");
    assert_eq!(validation_rows(&log), (rows.len() - window, window), "{log}");
    assert!(!log.contains("warning: only "), "{log}");

    // Each score, computed here on that window.
    let train: Vec<String> = lines.iter().zip(&rows).filter(|(_, r)| !recent(r)).map(|(l, _)| l.clone()).collect();
    write_lines(&fx.path("val-train.csv"), &header, &train);
    let split = SplitFiles::of(
        rows.iter().filter(|r| !recent(r)).cloned().collect(),
        rows.iter().filter(|r| recent(r)).cloned().collect(),
    );
    let new = split.new_items();
    assert!(new.len() >= 100, "{} customers to measure", new.len());
    // Both lines count the customers measured on the target tuned on.
    let all = split.measured().len();
    assert!(all > new.len(), "every measured customer has a new item");
    assert!(
        log.contains(&format!(
            "tenth of the purchases, from {} ({} customers measured)",
            format_2023(cutoff),
            new.len()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "validation rows; {} customers measured on new-items ({all} on all items: {} held out only items they had \
             bought before)",
            new.len(),
            all - new.len()
        )),
        "{log}"
    );
    let text = fx.text("job/tune.toml.best.toml");
    let scores = header_scores(&text);
    assert_eq!(scores.len(), 4, "{text}");
    let mut oracle: Vec<(f64, &str)> = Vec::new();
    for (score, label) in &scores {
        let want = oracle_score(&fx, &COLUMNS, &[], label, &new);
        let got: f64 = score.parse().unwrap();
        assert!((got - want).abs() <= 0.5e-4 + 1e-12, "{label}: tune says {score}, computed {want:.6}");
        oracle.push((want, label));
    }
    let top = oracle.iter().map(|o| o.0).fold(f64::MIN, f64::max);
    assert!(oracle[0].0 >= top - 1e-4, "the best is not the oracle's best: {oracle:?}");

    let job = check_refit(&fx, "job/../purchases.csv", &COLUMNS, &scores[0].1);
    assert_eq!(job["recommend"]["top"].as_integer(), Some(10));
    assert!(job["recommend"].get("include_bought").is_none(), "tuned on new items, yet bought items allowed");
}

/// Purchases without times: production tune validates on a seeded random fifth of each
/// customer's items (whole pairs; `algorithm = auto`'s holdout, seed 827598086256), says
/// why, and tunes. On all items, the fit job's recommendations include bought items, as
/// they were measured.
#[test]
fn tune_for_production_without_times_validates_on_a_random_holdout() {
    let fx = Fx::new();
    let (_, lines) = purchase_lines(SEED);
    let untimed: Vec<String> = lines.iter().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect();
    write_lines(&fx.path("untimed.csv"), "customer,item,quantity,price", &untimed);
    let input = INPUT.replace("time_col = \"time\"\n", "").replace("../purchases.csv", "../untimed.csv");
    let tune = PRODUCTION.replace("new-items", "all-items");
    fx.write("job/tune.toml", &format!("{input}{tune}{SPACES}"));
    let log = fx.ok(&["tune", "job/tune.toml"]).stderr;
    let line = log.lines().find(|l| l.starts_with("cobuy: validation on ")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.starts_with("cobuy: validation on a random fifth of each customer's items ("), "{line}");
    assert!(line.ends_with("because the purchases have no times; nothing is held back as test"), "{line}");

    // The holdout, written by eval with the same seed, partitions every row into whole pairs,
    // about a fifth of them held out.
    let columns = &COLUMNS[..8];
    let mut args = vec!["eval", "--purchases", "untimed.csv", "--split", "random", "--fraction", "0.2"];
    args.extend_from_slice(&["--seed", "827598086256", "--algorithm", "popularity", "--out-dir", "e", "--write-split"]);
    args.push("split");
    args.extend_from_slice(columns);
    fx.ok(&args);
    let split = SplitFiles::read(&fx.path("split"));
    assert_eq!(validation_rows(&log), (split.train.len(), split.test.len()), "{log}");
    assert_eq!(split.train.len() + split.test.len(), untimed.len());
    let pair = |r: &Row| (r.customer.clone(), r.item.clone());
    let held: BTreeSet<_> = split.test.iter().map(pair).collect();
    assert!(split.train.iter().all(|r| !held.contains(&pair(r))), "a pair in both parts");
    let pairs = held.len() + split.train.iter().map(pair).collect::<BTreeSet<_>>().len();
    assert!((0.15..0.25).contains(&(held.len() as f64 / pairs as f64)), "{} of {pairs} pairs held out", held.len());

    // Each score on all items, computed here on that holdout.
    let train: Vec<String> =
        split.train.iter().map(|r| format!("{},{},{},1.00", r.customer, r.item, r.quantity)).collect();
    write_lines(&fx.path("val-train.csv"), "customer,item,quantity,price", &train);
    let all: Vec<(String, BTreeSet<String>)> =
        split.measured().into_iter().map(|(c, i)| (c.clone(), i.clone())).collect();
    assert!(all.len() >= 100, "{} customers to measure", all.len());
    assert!(log.contains(&format!("validation rows; {} customers measured on all-items\n", all.len())), "{log}");
    let text = fx.text("job/tune.toml.best.toml");
    let scores = header_scores(&text);
    for (score, label) in &scores {
        let want = oracle_score(&fx, columns, &["--include-bought"], label, &all);
        let got: f64 = score.parse().unwrap();
        assert!((got - want).abs() <= 0.5e-4 + 1e-12, "{label}: tune says {score}, computed {want:.6}");
    }

    let job = check_refit(&fx, "job/../untimed.csv", columns, &scores[0].1);
    assert_eq!(job["recommend"]["include_bought"].as_bool(), Some(true), "tuned on all items");
    assert!(job["input"].get("time_col").is_none());
}

/// A production tune job's `[recommend]` table goes into the fit job as written (a deny
/// list, reasons), with the defaults of `[tune]` (`out`, `top`) where it is silent: the
/// nightly job keeps non-products out, as the bundled data's does. Its lists are checked
/// before the log is read, and benchmark mode, which writes no fit job, refuses it.
#[test]
fn tune_for_production_carries_its_recommend_table_into_the_fit_job() {
    let fx = Fx::new();
    let (_, lines) = purchase_lines(SEED);
    // The two items with the most buyers: popularity's first offers, unless denied.
    let mut buyers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for l in &lines {
        let f: Vec<&str> = l.split(',').collect();
        buyers.entry(f[1]).or_default().insert(f[0]);
    }
    let mut by_buyers: Vec<(usize, &str)> = buyers.iter().map(|(i, c)| (c.len(), *i)).collect();
    by_buyers.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let denied = [by_buyers[0].1, by_buyers[1].1];
    fx.write("job/deny.txt", &format!("{}\n{}\n", denied[0], denied[1]));
    let space = "\n[[space]]\nalgorithm = \"popularity\"\n";
    let recommend = "\n[recommend]\ndeny = \"deny.txt\"\nexplain = true\n";
    fx.write("job/tune.toml", &format!("{INPUT}{PRODUCTION}{recommend}{space}"));
    fx.ok(&["tune", "job/tune.toml"]);
    let job: toml::Table = fx.text("job/tune.toml.best.toml").parse().unwrap();
    let r = job["recommend"].as_table().unwrap();
    assert_eq!(r["deny"].as_str(), Some("deny.txt"));
    assert_eq!(r["explain"].as_bool(), Some(true));
    assert_eq!((r["top"].as_integer(), r["out"].as_str()), (Some(10), Some("models/recommendations.csv")));
    fx.ok(&["run", "job/tune.toml.best.toml"]);
    let recs = fx.text("job/models/recommendations.csv");
    let mut rows = recs.lines();
    assert_eq!(rows.next(), Some("customer_id,rank,item_id,score,source,reason"));
    let items: BTreeSet<&str> = rows.map(|l| l.split(',').nth(2).unwrap()).collect();
    assert!(items.len() > 2, "{items:?}");
    assert!(denied.iter().all(|d| !items.contains(d)), "denied {denied:?} recommended");

    // A missing list is found before the search; a [recommend] beside [split] is refused.
    fs::remove_file(fx.path("job/deny.txt")).unwrap();
    let r = fx.run(&["tune", "job/tune.toml"]);
    assert_usage(&r, "missing deny list", &["deny.txt"]);
    assert!(!r.stderr.contains("[1/1]"), "searched before checking: {}", r.stderr);
    fx.write("job/bench.toml", &format!("{INPUT}\n[split]\ntest_share = 0.2\n\n[tune]\nk = 10\n{recommend}{space}"));
    assert_usage(&fx.run(&["tune", "job/bench.toml"]), "[recommend] in benchmark mode", &["[recommend]", "production"]);
}

/// Benchmark mode on purchases without times: a random split validates on another random
/// holdout inside its training part (the test rows untouched); a time split cannot be
/// made, and the error says what can.
#[test]
fn tune_benchmark_without_times_holds_out_at_random_inside_the_training_part() {
    let fx = Fx::new();
    let (_, lines) = purchase_lines(SEED);
    let untimed: Vec<String> = lines.iter().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect();
    write_lines(&fx.path("untimed.csv"), "customer,item,quantity,price", &untimed);
    let input = INPUT.replace("time_col = \"time\"\n", "").replace("../purchases.csv", "../untimed.csv");
    let split = "\n[split]\nmethod = \"random\"\nfraction = 0.2\nseed = 3\n";
    let tune = "\n[tune]\nk = 10\n";
    fx.write("job/tune.toml", &format!("{input}{split}{tune}{SPACES}"));
    let log = fx.ok(&["tune", "job/tune.toml"]).stderr;
    assert!(log.contains("cobuy: validation on a random 0.2 of each customer's items in the training part"), "{log}");
    // The test part is that of eval's split with the same settings, and unused.
    let mut args = vec!["eval", "--purchases", "untimed.csv", "--split", "random", "--fraction", "0.2", "--seed", "3"];
    args.extend_from_slice(&["--algorithm", "popularity", "--out-dir", "e", "--write-split", "split"]);
    args.extend_from_slice(&COLUMNS[..8]);
    fx.ok(&args);
    let test = SplitFiles::read(&fx.path("split")).test.len();
    let (train, validation) = validation_rows(&log);
    assert_eq!(train + validation, untimed.len() - test, "{log}");
    assert!(validation > 0 && log.contains(&format!("(the {test} test rows are not used)")), "{log}");
    assert!(fx.text("job/tune.toml.best.toml").contains("[[algorithm]]"));

    fx.write("job/time.toml", &format!("{input}\n[split]\ntest_share = 0.2\n{tune}{SPACES}"));
    let r = fx.run(&["tune", "job/time.toml"]);
    assert_usage(
        &r,
        "time split without times",
        &["the purchases have no times", "method = \"random\"", "remove [split]"],
    );
    assert!(!fx.path("job/time.toml.best.toml").exists());
}
