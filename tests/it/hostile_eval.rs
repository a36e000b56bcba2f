//! Hostile inputs to `cobuy eval`, eval job files and `cobuy tune` (issue 11, rough edges):
//! settings the chosen split does not use, the upgrades target without a catalogue, output
//! locations checked before the log is read; and fold-in from a customer's own history
//! against the model's own list, for every algorithm.
//!
//! "Before the log is read" is shown by giving a purchases file that does not exist: the
//! error must be the one under test, not the missing file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

use crate::common::run_cobuy;

/// A purchases path that does not exist.
const MISSING: &str = "no-such-purchases.csv";

struct Fx {
    dir: TempDir,
}

impl Fx {
    fn new() -> Fx {
        Fx { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        run_cobuy(self.dir.path(), args)
    }

    /// A generated purchase log, `gen.csv`.
    fn generated(&self, customers: &str, items: &str, purchases: &str) {
        let out = self.run(&[
            "generate",
            "--customers",
            customers,
            "--items",
            items,
            "--rows",
            purchases,
            "--seed",
            "5",
            "--out",
            "gen.csv",
            "--quiet",
        ]);
        ok(&out, "generate");
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: exit {:?}\n{}", o.status.code(), stderr(o));
}

/// Exit code `code`, and stderr holds every one of `want`, and not the missing purchases
/// file (the check came first).
fn refused(o: &Output, code: i32, what: &str, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    for w in want {
        assert!(err.contains(w), "{what}: {w:?} not in {err:?}");
    }
    assert!(!err.contains(MISSING), "{what}: the log was opened first: {err}");
}

const COLUMNS: &str = "customer_col = \"customer_id\"\nitem_col = \"item_id\"\nquantity_col = \"quantity\"\n\
                       time_col = \"timestamp\"\nbasket_col = \"basket_id\"\n";

/// A tune job over `purchases` with `[split]` body `split` and `[tune]` body `tune`.
fn tune_job(purchases: &str, split: &str, tune: &str) -> String {
    format!(
        "[input]\npurchases = \"{purchases}\"\n{COLUMNS}\n[split]\n{split}\n[tune]\n{tune}\n\
         [[space]]\nalgorithm = \"item-knn\"\nneighbors = [5, 20]\n"
    )
}

// ---------------------------------------------------------------------------------------
// The upgrades target without a catalogue
// ---------------------------------------------------------------------------------------

/// `eval` refuses the upgrades target without a priced catalogue; `tune` used to measure
/// every candidate at 0 and write an arbitrary best. It refuses the same way, first.
#[test]
fn tune_refuses_the_upgrades_target_without_a_catalogue_as_eval_does() {
    let fx = Fx::new();
    let eval = fx.run(&["eval", "--purchases", MISSING, "--targets", "upgrades", "--out-dir", "out"]);
    let want = "the upgrades target needs a catalogue with a category and a price per item";
    refused(&eval, 2, "eval", &[want]);
    fx.write("tune.toml", &tune_job(MISSING, "test_share = 0.2\nvalidation = true", "target = \"upgrades\""));
    let tune = fx.run(&["tune", "tune.toml"]);
    refused(&tune, 2, "tune", &[want, "tune on new-items or all-items"]);
    assert!(!fx.path("tune.toml.best.toml").exists(), "tune wrote a best file");
}

// ---------------------------------------------------------------------------------------
// Settings the chosen split does not use
// ---------------------------------------------------------------------------------------

/// Every split-specific flag given to a split that does not use it is a usage error
/// naming it, before the log is read: in flags, in eval job files and in tune jobs.
#[test]
fn split_settings_the_split_does_not_use_are_usage_errors() {
    let fx = Fx::new();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--split", "random", "--cutoff", "2023-06-01"], "--cutoff", "time split"),
        (&["--split", "random", "--test-share", "0.2"], "--test-share", "time split"),
        (&["--fraction", "0.3"], "--fraction", "random split"),
        (&["--split", "time", "--seed", "3"], "--seed", "random split"),
        (&["--split", "time", "--cutoff", "2023-06-01", "--seed", "1"], "--seed", "random split"),
        (&["--split", "last-basket", "--cutoff", "2023-06-01"], "--cutoff", "time split"),
        (&["--split", "last-basket", "--test-share", "0.1"], "--test-share", "time split"),
        (&["--split", "last-basket", "--fraction", "0.2"], "--fraction", "random split"),
        (&["--split", "last-basket", "--seed", "1"], "--seed", "random split"),
    ];
    for (split, flag, wants) in cases {
        let mut args = vec!["eval", "--purchases", MISSING, "--out-dir", "out", "--algorithm", "popularity"];
        args.extend_from_slice(split);
        refused(&fx.run(&args), 2, &format!("{split:?}"), &[flag, wants, "[split]"]);
    }
    let tables = [
        ("method = \"random\"\ncutoff = \"2023-06-01\"", "cutoff in [split]"),
        ("method = \"random\"\ntest_share = 0.2", "test_share in [split]"),
        ("method = \"time\"\nseed = 4", "seed in [split]"),
        ("method = \"last-basket\"\nfraction = 0.3", "fraction in [split]"),
    ];
    for (split, key) in tables {
        fx.write(
            "job.toml",
            &format!(
                "[input]\npurchases = \"{MISSING}\"\n\n[split]\n{split}\n\n[eval]\nout_dir = \"out\"\n\n\
                 [[algorithm]]\nalgorithm = \"popularity\"\n"
            ),
        );
        refused(&fx.run(&["run", "job.toml"]), 2, split, &[key]);
        fx.write("tune.toml", &tune_job(MISSING, &format!("{split}\nvalidation = true"), ""));
        refused(&fx.run(&["tune", "tune.toml"]), 2, split, &[key]);
    }
    assert!(!fx.path("out").exists() && !fx.path("tune.toml.best.toml").exists());
}

/// The settings each split does use still work (and the random split's defaults are the
/// documented 0.2 and seed 1).
#[test]
fn split_settings_of_the_chosen_split_still_work() {
    let fx = Fx::new();
    fx.generated("300", "60", "3000");
    let base = ["eval", "--purchases", "gen.csv", "--quantity-col", "quantity", "--time-col", "timestamp"];
    let run = |extra: &[&str], out: &str| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--algorithm", "popularity", "--k", "5", "--out-dir", out, "--quiet"]);
        let o = fx.run(&args);
        ok(&o, out);
        fs::read_to_string(fx.path(out).join("report.md")).unwrap()
    };
    run(&["--split", "time", "--cutoff", "2023-11-01"], "cutoff");
    run(&["--test-share", "0.2"], "share");
    for (extra, out) in [(&["--split", "random"][..], "random"), (&["--split", "random", "--seed", "1"], "seed")] {
        let report = run(extra, out);
        assert!(report.contains("random: 0.2 of each customer's items, seed 1"), "{report}");
    }
    let report = run(&["--split", "random", "--fraction", "0.3", "--seed", "4"], "both");
    assert!(report.contains("random: 0.3 of each customer's items, seed 4"), "{report}");
    run(&["--split", "random", "--validation"], "validation");
}

// ---------------------------------------------------------------------------------------
// Output locations, checked before the log is read
// ---------------------------------------------------------------------------------------

/// `tune`'s best file in a missing folder: the folder is created (as `fit` creates its
/// model's), not found missing after all the work.
#[test]
fn tune_creates_a_missing_output_folder() {
    let fx = Fx::new();
    fx.generated("300", "60", "3000");
    fx.write("job/tune.toml", &tune_job("../gen.csv", "test_share = 0.2", "out = \"best/dir/best.toml\""));
    let o = fx.run(&["tune", "job/tune.toml", "--quiet"]);
    ok(&o, "tune");
    let best = fs::read_to_string(fx.path("job/best/dir/best.toml")).unwrap();
    assert!(best.contains("[[algorithm]]"), "{best}");
}

/// A validation split with few measured customers still tunes, and the log says the
/// differences are mostly noise.
#[test]
fn tune_warns_when_few_customers_are_measured() {
    let fx = Fx::new();
    fx.generated("40", "30", "800");
    fx.write("job/tune.toml", &tune_job("../gen.csv", "test_share = 0.2", ""));
    let o = fx.run(&["tune", "job/tune.toml"]);
    ok(&o, "tune");
    let log = String::from_utf8_lossy(&o.stderr);
    let line = log.lines().find(|l| l.starts_with("cobuy: warning: only ")).unwrap_or_else(|| panic!("{log}"));
    let n: u64 = line["cobuy: warning: only ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(n < 100 && line.contains("customers are measured on new-items"), "{line}");
}

/// An output location that cannot be written fails first, naming the path: a folder
/// under a regular file, or a folder where the output file goes.
#[test]
fn unwritable_outputs_of_eval_and_tune_fail_before_the_log_is_read() {
    let fx = Fx::new();
    fx.write("afile", "not a folder\n");
    fx.write("taken/report.md/keep", "a folder where a report goes\n");
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--purchases", MISSING, "--algorithm", "popularity"];
        args.extend_from_slice(extra);
        fx.run(&args)
    };
    refused(&eval(&["--out-dir", "afile/out"]), 2, "out-dir under a file", &["afile/out"]);
    refused(&eval(&["--out-dir", "taken"]), 2, "report.md a folder", &["taken/report.md", "directory"]);
    fx.write("ok/ndcg.svg/keep", "a folder where a chart goes\n");
    refused(&eval(&["--out-dir", "ok"]), 2, "chart a folder", &["ok/ndcg.svg"]);
    refused(
        &eval(&["--out-dir", "out2", "--write-split", "afile/split"]),
        2,
        "write-split under a file",
        &["afile/split"],
    );
    fx.write("tune.toml", &tune_job(MISSING, "test_share = 0.2", "out = \"afile/best.toml\""));
    refused(&fx.run(&["tune", "tune.toml"]), 2, "tune out under a file", &["afile"]);
    fx.write("tune2.toml", &tune_job(MISSING, "test_share = 0.2", "out = \"taken\""));
    refused(&fx.run(&["tune", "tune2.toml"]), 2, "tune out a folder", &["taken", "directory"]);
    // Nothing left behind but what the test made.
    let mut left: Vec<String> = fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    left.sort();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    assert!(fs::read_dir(fx.path("ok")).unwrap().count() == 1, "files left in ok/");
}

// ---------------------------------------------------------------------------------------
// Production tune (no [split]): bad input
// ---------------------------------------------------------------------------------------

/// A production tune job over `purchases` (no `[split]`) with `[tune]` body `tune`.
fn production_job(purchases: &str, tune: &str) -> String {
    tune_job(purchases, "", tune).replace("[split]\n\n", "")
}

/// What production mode cannot do is refused before the log is read, naming the key or
/// path: no model to save to, a model where it cannot be written, production keys with a
/// `[split]`, an `[eval]` table without one.
#[test]
fn production_tune_settings_and_model_paths_are_checked_before_the_log_is_read() {
    let fx = Fx::new();
    fx.write("afile", "not a folder\n");
    fs::create_dir(fx.path("taken")).unwrap();
    let cases: &[(String, &[&str])] = &[
        (production_job(MISSING, ""), &["tune.toml", "give [tune] model", "without [split]"]),
        (production_job(MISSING, "model = \"afile/m.cobuy\""), &["afile/m.cobuy", "cannot write the model"]),
        (production_job(MISSING, "model = \"taken\""), &["taken", "directory"]),
        (production_job(MISSING, "model = \"b.toml\"\nout = \"b.toml\""), &["b.toml", "the same file"]),
        (
            production_job(MISSING, "model = \"m.cobuy\"\nrecommendations = \"m.cobuy\""),
            &["m.cobuy", "recommendations", "the same file"],
        ),
        (tune_job(MISSING, "test_share = 0.2", "model = \"m.cobuy\""), &["[tune] model", "remove the [split]"]),
        (
            tune_job(MISSING, "test_share = 0.2", "recommendations = \"r.csv\""),
            &["[tune] recommendations", "production mode"],
        ),
        (
            production_job(MISSING, "model = \"m.cobuy\"").replace("[tune]", "[eval]\nk = [10]\n\n[tune]"),
            &["[eval]", "add a [split] table"],
        ),
    ];
    for (job, want) in cases {
        assert!(!job.contains("[split]\n\n["), "{job}");
        fx.write("tune.toml", job);
        refused(&fx.run(&["tune", "tune.toml"]), 2, job, want);
        assert!(!fx.path("tune.toml.best.toml").exists() && !fx.path("m.cobuy").exists(), "{job}: wrote a file");
    }
    let mut left: Vec<String> = fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    left.sort();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// Purchases that leave nothing to tune on, or a model that would overwrite them, exit 2
/// with a message saying so, and write neither the model nor the best file.
#[test]
fn production_tune_without_customers_to_measure_is_refused() {
    let fx = Fx::new();
    fx.generated("300", "60", "3000");
    let header = "customer_id,item_id,quantity,timestamp,basket_id\n";
    fx.write("empty.csv", header);
    fx.write("returns.csv", &format!("{header}a,x,-1,2023-01-01,b1\nb,y,-2,2023-01-02,b2\n"));
    let few: String =
        (0..3).map(|c| format!("c{c},i{c},1,2023-01-0{},b{c}\nc{c},i9,1,2023-02-01,b{c}x\n", c + 1)).collect();
    fx.write("few.csv", &format!("{header}{few}"));
    let cases: &[(&str, &str, &[&str])] = &[
        ("empty.csv", "m.cobuy", &["empty.csv", "header but no rows"]),
        ("returns.csv", "m.cobuy", &["returns.csv", "no purchases left", "2 returns"]),
        ("few.csv", "m.cobuy", &["nothing to tune on", "measurable customers"]),
        ("gen.csv", "gen.csv", &["gen.csv", "would overwrite the purchases"]),
    ];
    let before = fs::read(fx.path("gen.csv")).unwrap();
    for (purchases, model, want) in cases {
        fx.write("tune.toml", &production_job(purchases, &format!("model = \"{model}\"")));
        let o = fx.run(&["tune", "tune.toml"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{purchases}: {err}");
        let error = err.lines().find(|l| l.starts_with("cobuy: error: ")).unwrap_or_else(|| panic!("{err}"));
        for w in *want {
            assert!(error.contains(w), "{purchases}: {w:?} not in {error:?}");
        }
        assert!(!fx.path("m.cobuy").exists() && !fx.path("tune.toml.best.toml").exists(), "{purchases}: wrote");
    }
    assert!(fs::read(fx.path("gen.csv")).unwrap() == before, "the purchases were overwritten");
}

// ---------------------------------------------------------------------------------------
// Fold-in of a customer's own history
// ---------------------------------------------------------------------------------------

const INPUT: [&str; 8] =
    ["--quantity-col", "quantity", "--time-col", "timestamp", "--basket-col", "basket_id", "--price-col", "price"];

/// Fits `fit` on gen.csv, then writes `recommend`'s lists and `fold-in`'s lists from the
/// same rows; returns both files' text.
fn model_and_fold_in(fx: &Fx, name: &str, fit: &[&str]) -> (String, String) {
    let model = format!("{name}.cobuy");
    let mut args = vec!["fit", "--purchases", "gen.csv", "--model", &model, "--quiet"];
    args.extend_from_slice(&INPUT);
    args.extend_from_slice(fit);
    ok(&fx.run(&args), name);
    let (rec, fold) = (format!("{name}.rec.csv"), format!("{name}.fold.csv"));
    ok(&fx.run(&["recommend", "--model", &model, "--top", "10", "--out", &rec, "--quiet"]), name);
    let mut args =
        vec!["fold-in", "--model", &model, "--purchases", "gen.csv", "--top", "10", "--out", &fold, "--quiet"];
    args.extend_from_slice(&INPUT);
    ok(&fx.run(&args), name);
    (fs::read_to_string(fx.path(&rec)).unwrap(), fs::read_to_string(fx.path(&fold)).unwrap())
}

/// A customer folded in from their own rows gets exactly the model's list (items, scores,
/// sources, order), for every algorithm and weighting but ALS. ALS fold-in solves the
/// customer's step exactly (Cholesky) against the item factors, while the fitted
/// customer factors come from warm-started conjugate-gradient steps: the lists agree
/// closely, not exactly, and ARCHITECTURE.md says so.
#[test]
fn fold_in_of_own_history_gives_the_models_list() {
    let fx = Fx::new();
    fx.generated("1500", "250", "25000");
    let exact: &[(&str, &[&str])] = &[
        ("item-knn", &["--algorithm", "item-knn"]),
        ("item-knn-decay", &["--algorithm", "item-knn", "--half-life-days", "30"]),
        ("item-knn-blend", &["--algorithm", "item-knn", "--buy-again-weight", "0.5", "--weighting", "tfidf"]),
        ("user-knn", &["--algorithm", "user-knn"]),
        ("user-knn-decay", &["--algorithm", "user-knn", "--weighting", "decay", "--half-life-days", "20"]),
        ("popularity", &["--algorithm", "popularity"]),
        ("buy-again", &["--algorithm", "buy-again", "--half-life-days", "10"]),
        ("ease", &["--algorithm", "ease"]),
        ("ease-decay", &["--algorithm", "ease", "--half-life-days", "45"]),
    ];
    for (name, fit) in exact {
        let (rec, fold) = model_and_fold_in(&fx, name, fit);
        assert!(rec.lines().count() > 10_000, "{name}: {} rows", rec.lines().count());
        assert!(rec == fold, "{name}: fold-in differs from recommend");
    }

    // ALS: the same customers and list lengths, mostly the same items at the same ranks,
    // but not the same bits.
    let (rec, fold) = model_and_fold_in(&fx, "als", &["--algorithm", "als"]);
    let key = |l: &str| l.split(',').take(3).collect::<Vec<_>>().join(",");
    let (r, f): (Vec<String>, Vec<String>) = (rec.lines().map(key).collect(), fold.lines().map(key).collect());
    assert_eq!(r.len(), f.len());
    let customers = |v: &[String]| v.iter().map(|k| k.split(',').next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(customers(&r), customers(&f));
    let same = r.iter().zip(&f).filter(|(a, b)| a == b).count();
    assert!(same * 10 >= r.len() * 7, "als: only {same} of {} rows agree", r.len());
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    // The invariant's bullet: its first line and the indented lines that continue it.
    let start = doc.find("- Fold-in customers are weighted").expect("the fold-in invariant");
    let bullet = &doc[start..];
    let line = &bullet[..bullet.find("\n- ").unwrap_or(bullet.len())];
    if rec == fold {
        panic!("ALS fold-in now gives exactly the model's list: drop the exception from ARCHITECTURE.md and README");
    }
    assert!(line.contains("but ALS"), "ARCHITECTURE.md's fold-in invariant does not state the ALS exception: {line}");
}
