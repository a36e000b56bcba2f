//! `algorithm = auto`, the default of `fit`: the validation split it carves (recent window,
//! random holdout, nothing), the record it stores, what the user fixed, and the same
//! choice for any thread count.

use std::path::Path;

use serde_json::Value;

use cobuy::eval::Target;
use cobuy::eval::select::{AutoParams, Budget, Pins, choose, choose_sampled, reading_sample};
use cobuy::ingest::{Columns, IngestOptions, read_log, read_log_sample_with_progress, read_log_with_progress};
use cobuy::model::FitParams;

use super::common::{COLUMNS, SEED, purchase_lines, run_cobuy, write_lines};

/// Fits `purchases.csv` in `dir` with `args` on top of the file's columns; returns stderr.
fn fit(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["--threads", "2", "fit", "--purchases", "purchases.csv", "--model", "m.cobuy"];
    all.extend_from_slice(args);
    let out = run_cobuy(dir, &all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "fit failed:\n{stderr}");
    stderr
}

/// The model's parameters and its selection record, from `cobuy inspect --json`.
fn record(dir: &Path) -> (Value, Value) {
    let out = run_cobuy(dir, &["inspect", "--json", "m.cobuy"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["params"].clone(), v["info"]["selection"].clone())
}

/// Writes the shared test purchases (300 customers, times spread over 2023).
fn purchases(dir: &Path) {
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.join("purchases.csv"), &header, &lines);
}

/// The index of the best score, the first among equals: computed here, not by cobuy.
fn best(tried: &[Value]) -> usize {
    let mut best: Option<(f64, usize)> = None;
    for (k, t) in tried.iter().enumerate() {
        if let Some(s) = t["score"].as_f64() {
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, k));
            }
        }
    }
    best.expect("a measured candidate").1
}

#[test]
fn timed_purchases_validate_on_the_most_recent_window_and_the_best_candidate_is_fitted() {
    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    let stderr = fit(dir.path(), &COLUMNS);
    let (params, sel) = record(dir.path());
    let split = sel["split"].as_str().unwrap();
    assert!(split.starts_with("validation on the most recent tenth of the purchases, from 2023-"), "{split}");
    let tried = sel["tried"].as_array().unwrap();
    let chosen = sel["chosen"].as_u64().unwrap() as usize;
    assert_eq!(chosen, best(tried), "{sel:#}");
    // The model stores the decay reference it resolved; the candidate left it to the data.
    let mut fitted = params.clone();
    fitted["weighting"]["reference_time"] = Value::Null;
    assert_eq!(fitted, tried[chosen]["params"], "the fitted model is the chosen candidate");
    // Every family was measured at its defaults.
    let families: Vec<&str> = tried.iter().map(|t| t["params"]["algorithm"].as_str().unwrap()).collect();
    for f in ["item-knn", "user-knn", "ease", "als", "popularity"] {
        assert!(families.contains(&f), "{f} not tried: {families:?}");
    }
    assert!(tried.iter().any(|t| t["params"]["similarity"]["measure"] == "rp3beta"), "rp3beta not tried");
    // Time decay was tried (the file has times), and candidates are never repeated.
    assert!(tried.iter().any(|t| t["params"]["weighting"]["half_life_days"].is_number()));
    for (a, ta) in tried.iter().enumerate() {
        for tb in &tried[a + 1..] {
            assert_ne!(ta["params"], tb["params"], "tried twice");
        }
    }
    let line: Vec<&str> = stderr.lines().filter(|l| l.starts_with("cobuy: auto: ")).collect();
    assert_eq!(line.len(), 1, "one line says what auto chose:\n{stderr}");
    assert!(line[0].contains(tried[chosen]["label"].as_str().unwrap()), "{}", line[0]);
    // inspect names the choice and lists the candidates.
    let text = run_cobuy(dir.path(), &["inspect", "m.cobuy"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("chosen by   auto: "), "{text}");
    // The algorithm line names what was fitted; only item-kNN has an item neighbours line.
    let algorithm = params["algorithm"].as_str().unwrap();
    assert!(text.lines().any(|l| l.starts_with(&format!("algorithm   {algorithm} ("))), "{text}");
    assert_eq!(text.contains("\nneighbours  "), algorithm == "item-knn", "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("          * ")).count(), 1, "{text}");
}

#[test]
fn purchases_without_times_hold_out_a_random_share_and_try_no_decay() {
    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    fit(dir.path(), &COLUMNS[..8]);
    let (_, sel) = record(dir.path());
    let split = sel["split"].as_str().unwrap();
    assert!(split.starts_with("validation on a random fifth of each customer's items"), "{split}");
    assert!(split.ends_with("because the purchases have no times"), "{split}");
    let tried = sel["tried"].as_array().unwrap();
    assert!(tried.iter().all(|t| t["params"]["weighting"]["half_life_days"].is_null()), "{sel:#}");
    assert_eq!(sel["chosen"].as_u64().unwrap() as usize, best(tried));
}

#[test]
fn a_recent_window_with_few_customers_falls_back_to_a_random_holdout() {
    // 60 customers: the most recent tenth cannot hold 100 of them.
    let dir = tempfile::tempdir().unwrap();
    let (header, lines) = purchase_lines(SEED);
    let few: Vec<String> = lines.into_iter().filter(|l| l.starts_with("cust-") || l.starts_with("120")).collect();
    write_lines(&dir.path().join("purchases.csv"), &header, &few);
    fit(dir.path(), &COLUMNS);
    let (_, sel) = record(dir.path());
    let split = sel["split"].as_str().unwrap();
    assert!(split.starts_with("validation on a random fifth"), "{split}");
    assert!(split.contains("measurable customers, fewer than 100"), "{split}");
}

#[test]
fn too_few_customers_take_item_knn_unmeasured_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> =
        (0..8).flat_map(|c| (0..3).map(move |i| format!("c{c},i{},1,1.00,2023-01-0{}", (c + i) % 5, 1 + i))).collect();
    write_lines(&dir.path().join("purchases.csv"), "customer,item,quantity,price,time", &lines);
    let stderr = fit(dir.path(), &COLUMNS);
    let (params, sel) = record(dir.path());
    assert_eq!(params["algorithm"], "item-knn");
    assert!(sel["chosen"].is_null() && sel["tried"].as_array().unwrap().is_empty(), "{sel:#}");
    assert!(sel["reason"].as_str().unwrap().contains("nothing to measure on"), "{sel:#}");
    assert!(stderr.contains("cobuy: auto: "), "{stderr}");
    let text = run_cobuy(dir.path(), &["inspect", "m.cobuy"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("\nneighbours  ") && text.contains(" item pairs\n"), "{text}");
}

#[test]
fn what_the_user_fixed_is_never_varied() {
    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    let mut args = COLUMNS.to_vec();
    args.extend(["--neighbors", "30", "--half-life-days", "90", "--weighting", "binary"]);
    fit(dir.path(), &args);
    let (params, sel) = record(dir.path());
    for t in sel["tried"].as_array().unwrap().iter().chain([&sel["tried"][0]]) {
        let p = &t["params"];
        assert_eq!(p["neighbors"], 30, "{p}");
        assert_eq!(p["weighting"]["half_life_days"], 90.0, "{p}");
        assert_eq!(p["weighting"]["scheme"]["scheme"], "binary", "{p}");
    }
    assert_eq!(params["neighbors"], 30);
}

#[test]
fn the_choice_and_the_model_bytes_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    let mut models = Vec::new();
    for threads in ["1", "3"] {
        let mut args = vec!["--threads", threads, "fit", "--purchases", "purchases.csv", "--model", "m.cobuy"];
        args.extend_from_slice(&COLUMNS);
        let out = run_cobuy(dir.path(), &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        models.push(std::fs::read(dir.path().join("m.cobuy")).unwrap());
    }
    assert!(models[0] == models[1], "the model bytes differ between 1 and 3 threads");
}

/// `auto`'s parameters at the defaults but for its limits.
fn auto_params(max_customers: usize, budget: Budget) -> AutoParams {
    AutoParams { base: FitParams::default(), pins: Pins::default(), target: Target::NewItems, max_customers, budget }
}

/// How to read the shared test purchases through the library.
fn options() -> IngestOptions {
    let mut cols = Columns::new("customer", "item");
    cols.time = Some("time".into());
    cols.quantity = Some("quantity".into());
    IngestOptions::new(cols)
}

#[test]
fn above_the_customer_limit_a_hashed_sample_of_customers_is_searched_with_all_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    let (log, _) = read_log(dir.path().join("purchases.csv"), &options()).unwrap();
    let auto = |max_customers| auto_params(max_customers, Budget::default());
    let (_, whole) = choose(&log, None, &auto(1000), &mut |_| {}).unwrap();
    assert!(!whole.split.contains("sample"), "{}", whole.split);
    // 150 of the customers with purchases: the same 150 whatever the row order, so the
    // record is the same when the log is read back to front.
    let (_, sampled) = choose(&log, None, &auto(150), &mut |_| {}).unwrap();
    let with_purchases = {
        let mut c: Vec<_> = log.rows.iter().filter(|r| r.quantity > 0.0).map(|r| r.customer).collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    assert!(
        sampled.split.ends_with(&format!(
            "on a sample of 150 of the {with_purchases} customers with purchases (all their rows)"
        )),
        "{}",
        sampled.split
    );
    assert!(sampled.customers <= 150 && sampled.customers > 0, "{}", sampled.customers);
    let mut reversed = log.clone();
    reversed.rows.reverse();
    let (_, again) = choose(&reversed, None, &auto(150), &mut |_| {}).unwrap();
    assert_eq!(again, sampled);
}

#[test]
fn reading_only_the_sampled_customers_rows_keeps_their_rows_and_the_choice_of_sampling_after() {
    let dir = tempfile::tempdir().unwrap();
    let (header, mut lines) = purchase_lines(SEED);
    write_lines(&dir.path().join("purchases.csv"), &header, &lines);
    lines.reverse();
    write_lines(&dir.path().join("reversed.csv"), &header, &lines);
    let whole = read_log_with_progress(dir.path().join("purchases.csv"), &options(), &mut |_| {}).unwrap();
    let log = &whole.log;
    // The customers with a purchase row, and those without (returns only).
    let mut buyers: Vec<u32> = log.rows.iter().filter(|r| r.quantity > 0.0).map(|r| r.customer.0).collect();
    buyers.sort_unstable();
    buyers.dedup();
    assert!(buyers.len() > 200, "{}", buyers.len());
    for max in [150, 100_000] {
        let auto = auto_params(max, Budget::default());
        let sample = reading_sample(&auto);
        // The oracle: the `max` buyers of lowest rank (ties by natural id order), sampled
        // after reading every row.
        let mut ranked = buyers.clone();
        ranked.sort_by_key(|&c| ((sample.rank)(log.customers.id(c)), c));
        ranked.truncate(max);
        let chosen = choose(log, None, &auto, &mut |_| {}).unwrap();
        for file in ["purchases.csv", "reversed.csv"] {
            let read = read_log_sample_with_progress(dir.path().join(file), &options(), sample, &mut |_| {}).unwrap();
            let part = &read.log;
            assert_eq!((&part.customers, &part.items), (&log.customers, &log.items), "{file}: the whole file's ids");
            assert_eq!(read.sampled_from, Some(buyers.len() as u64));
            // The merge and the summary still cover every row.
            assert_eq!(read.summary, whole.summary);
            assert_eq!(read.interactions.counts(), whole.interactions.counts());
            // Every row of the sampled customers, in file order; any other row kept is of a
            // customer without a purchase row.
            let of = |rows: &[cobuy::ingest::LogRow], keep: &dyn Fn(u32) -> bool| {
                rows.iter().filter(|r| keep(r.customer.0)).copied().collect::<Vec<_>>()
            };
            let mut want = of(&log.rows, &|c| ranked.contains(&c));
            if file == "reversed.csv" {
                want.reverse();
            }
            assert_eq!(of(&part.rows, &|c| ranked.contains(&c)), want, "{file}");
            assert!(
                of(&part.rows, &|c| !ranked.contains(&c)).iter().all(|r| buyers.binary_search(&r.customer.0).is_err())
            );
            if max < buyers.len() {
                assert!(
                    part.rows.len() < log.rows.len() * 2 / 3,
                    "{file}: {} of {} rows",
                    part.rows.len(),
                    log.rows.len()
                );
            } else {
                assert_eq!(part.rows.len(), log.rows.len());
            }
            // The same choice, and the same record, as sampling after.
            let again = choose_sampled(part, buyers.len() as u64, &auto, &mut |_| {}).unwrap();
            assert_eq!(again, chosen, "{file}, at most {max} customers");
        }
    }
}

#[test]
fn als_above_its_scoring_budget_is_skipped_and_the_record_says_why() {
    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    let (log, _) = read_log(dir.path().join("purchases.csv"), &options()).unwrap();
    let (_, open) = choose(&log, None, &auto_params(100_000, Budget::default()), &mut |_| {}).unwrap();
    let als = |t: &&cobuy::model::Tried| t.params.algorithm == cobuy::algo::Algorithm::Als;
    assert!(open.tried.iter().filter(als).all(|t| t.score.is_some()), "{open:#?}");
    // Scoring costs measured customers x items x factors multiply-adds; a budget one below
    // the default ALS's skips it, and every other family is still measured.
    let work = open.customers * log.items.len() as u64 * 64;
    let budget = Budget { als_scoring: work - 1, ..Budget::default() };
    let (params, tight) = choose(&log, None, &auto_params(100_000, budget), &mut |_| {}).unwrap();
    assert_ne!(params.algorithm, cobuy::algo::Algorithm::Als);
    let skipped: Vec<_> = tight.tried.iter().filter(als).collect();
    assert!(!skipped.is_empty(), "{tight:#?}");
    for t in skipped {
        assert_eq!(t.score, None);
        let note = t.note.as_deref().unwrap();
        let factors = t.params.als.factors as u64;
        let want = format!(
            "not tried: scoring {} customers x {} items x {factors} factors takes {} multiply-adds, above the {} ALS is \
             tried at",
            open.customers,
            log.items.len(),
            open.customers * log.items.len() as u64 * factors,
            work - 1
        );
        assert_eq!(note, want);
    }
    assert!(tight.tried.iter().filter(|t| !als(t)).all(|t| t.score.is_some()), "{tight:#?}");
}

#[test]
fn ease_solves_beyond_the_budget_are_skipped_and_the_record_says_why() {
    use cobuy::algo::Algorithm;
    use cobuy::eval::split::{Cutoff, SplitMethod};

    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    let (log, _) = read_log(dir.path().join("purchases.csv"), &options()).unwrap();
    // The side of EASE's dense system: the fewer of the items bought and the customers who
    // bought in the training part of the split auto carves here (the most recent tenth).
    let method = SplitMethod::Time { cutoff: Cutoff::LastShare(0.1) };
    let prepared = cobuy::eval::prepare_within(&log, &vec![true; log.rows.len()], &method).unwrap();
    let counts = prepared.train().counts();
    let customers = (0..counts.rows()).filter(|&c| counts.outer_view(c).is_some_and(|r| r.nnz() > 0)).count();
    let mut bought = vec![false; counts.cols()];
    for (_, (_, j)) in counts.iter() {
        bought[j as usize] = true;
    }
    let side = customers.min(bought.iter().filter(|&&b| b).count()) as u64;
    let cube = side.pow(3);
    let ease = |t: &&cobuy::model::Tried| t.params.algorithm == Algorithm::Ease;
    // A budget below one solve skips every EASE candidate; one of exactly one solve
    // measures the first and skips any other.
    for (budget, measured) in [(cube - 1, 0), (cube, 1)] {
        let auto = auto_params(100_000, Budget { ease_solves: budget, ..Budget::default() });
        let (_, sel) = choose(&log, None, &auto, &mut |_| {}).unwrap();
        assert!(sel.split.starts_with("validation on the most recent tenth"), "{}", sel.split);
        let tried: Vec<_> = sel.tried.iter().filter(ease).collect();
        assert!(tried.len() > measured, "{sel:#?}");
        for (n, t) in tried.iter().enumerate() {
            if n < measured {
                assert!(t.score.is_some(), "{t:?}");
                continue;
            }
            let want = format!(
                "not tried: with this {side} x {side} solve EASE's solves would take {} multiply-adds, above the \
                 {budget} the search spends on them",
                (measured as u64 + 1) * cube
            );
            assert_eq!((t.score, t.note.as_deref()), (None, Some(want.as_str())));
        }
        assert!(sel.tried.iter().filter(|t| !ease(t)).all(|t| t.score.is_some()), "{sel:#?}");
    }
}

#[test]
fn buy_again_without_times_ranks_by_counts_and_says_so_but_an_asked_decay_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lines = ["c1,a,3", "c1,b,1", "c1,c,2", "c2,a,1"].map(String::from);
    write_lines(&dir.path().join("purchases.csv"), "customer,item,quantity", &lines);
    let cols = ["--customer-col", "customer", "--item-col", "item", "--quantity-col", "quantity"];
    let mut args = cols.to_vec();
    args.extend(["--algorithm", "buy-again"]);
    let stderr = fit(dir.path(), &args);
    assert!(stderr.contains("the purchases have no times: buy-again ranks by counts"), "{stderr}");
    let (params, _) = record(dir.path());
    assert!(params["weighting"]["half_life_days"].is_null(), "{params}");
    let out = run_cobuy(dir.path(), &["recommend", "--model", "m.cobuy", "--top", "3", "--out", "r.csv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = std::fs::read_to_string(dir.path().join("r.csv")).unwrap();
    let c1: Vec<&str> = r.lines().filter(|l| l.starts_with("c1,")).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert_eq!(c1, ["a", "c", "b"], "by count times repeat rate:\n{r}");
    // A half-life the user gives is a usage error without times.
    args.extend(["--half-life-days", "30"]);
    let mut all = vec!["fit", "--purchases", "purchases.csv", "--model", "m2.cobuy"];
    all.extend_from_slice(&args);
    let out = run_cobuy(dir.path(), &all);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("time decay needs purchase times"));
}

/// Each algorithm chosen by hand gets the weighting README's table documents: BM25 gave
/// user-kNN scores below popularity and doubled RP3beta's popularity penalty.
#[test]
fn each_algorithm_by_hand_gets_its_documented_weighting() {
    let dir = tempfile::tempdir().unwrap();
    purchases(dir.path());
    let cases: [(&[&str], &str, Option<f64>); 6] = [
        (&["--algorithm", "item-knn"], "bm25", None),
        (&["--algorithm", "item-knn", "--similarity", "rp3beta"], "binary", None),
        (&["--algorithm", "user-knn"], "binary", None),
        (&["--algorithm", "ease"], "log", None),
        (&["--algorithm", "als"], "log", None),
        (&["--algorithm", "buy-again"], "count", Some(60.0)),
    ];
    for (flags, scheme, half_life) in cases {
        let mut args = COLUMNS.to_vec();
        args.extend_from_slice(flags);
        fit(dir.path(), &args);
        let (params, selection) = record(dir.path());
        let w = &params["weighting"];
        let got = w["scheme"].as_str().or_else(|| w["scheme"]["scheme"].as_str());
        assert_eq!(got, Some(scheme), "{flags:?}: {params}");
        assert_eq!(w["half_life_days"].as_f64(), half_life, "{flags:?}: {params}");
        assert!(selection.is_null(), "{flags:?}: a given algorithm is not chosen by auto");
        if flags.contains(&"rp3beta") {
            let m = &params["similarity"];
            assert_eq!((m["alpha"].as_f64(), m["beta"].as_f64()), (Some(0.5), Some(0.5)), "{m}");
        }
    }
}
