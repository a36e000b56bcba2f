//! Customer value on a calibration/holdout split: the measures (`value::holdout`) against
//! naive reimplementations from their definitions (AUC by counting pairs, lift, Pearson,
//! Spearman, revenue shares), the median time to the next purchase against a direct
//! numerical evaluation of its definition on the oracle likelihoods, and `cobuy customers
//! --holdout-until` on CDNOW against an independent count of the holdout from the raw file
//! and lifetimes' published figures.

use std::collections::BTreeSet;
use std::path::Path;

use cobuy::value::holdout::{self, churn_ranking, pearson, purchase_fit, roc, spearman, top_share};
use cobuy::value::{Model, Purchases};

use super::common::{Lcg, run_cobuy};
use super::value_cdnow::{calibration, cdnow_csv};
use super::value_oracle as oracle;

/// Random scores with many ties, and random labels.
fn scored(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
    let mut rng = Lcg(seed);
    let score = (0..n).map(|_| f64::from(rng.below(20))).collect();
    let label = (0..n).map(|_| rng.unit() < 0.3).collect();
    (score, label)
}

#[test]
fn auc_and_lift_are_their_definitions() {
    for seed in 1..6 {
        let (score, label) = scored(400 + 37 * seed as usize, seed);
        // AUC: the share of (positive, negative) pairs ordered right, ties one half.
        let (mut right, mut pairs) = (0.0, 0.0);
        for (i, &li) in label.iter().enumerate() {
            for (j, &lj) in label.iter().enumerate() {
                if li && !lj {
                    pairs += 1.0;
                    right += if score[i] > score[j] {
                        1.0
                    } else if score[i] == score[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        let got = churn_ranking(&score, &label);
        assert!((got.auc - right / pairs).abs() < 1e-12, "{} vs {}", got.auc, right / pairs);
        // Lift: the positive rate among the first round(n/10) by score (ties: earlier first).
        let mut order: Vec<usize> = (0..score.len()).collect();
        order.sort_by(|&a, &b| score[b].partial_cmp(&score[a]).unwrap().then(a.cmp(&b)));
        let k = (score.len() as f64 / 10.0).round() as usize;
        let top = order[..k].iter().filter(|&&i| label[i]).count() as f64 / k as f64;
        let base = label.iter().filter(|&&l| l).count() as f64 / label.len() as f64;
        assert!((got.top_decile_lift - top / base).abs() < 1e-12);
    }
}

#[test]
fn correlations_errors_and_shares_are_their_definitions() {
    let mut rng = Lcg(9);
    let a: Vec<f64> = (0..300).map(|_| rng.unit() * 10.0).collect();
    let b: Vec<f64> = a.iter().map(|x| x * x + 20.0 * rng.unit()).collect();
    let n = a.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let cov = |u: &[f64], v: &[f64]| {
        let (mu, mv) = (mean(u), mean(v));
        u.iter().zip(v).map(|(x, y)| (x - mu) * (y - mv)).sum::<f64>()
    };
    let r = cov(&a, &b) / (cov(&a, &a) * cov(&b, &b)).sqrt();
    assert!((pearson(&a, &b).unwrap() - r).abs() < 1e-12);
    // Spearman without ties: 1 - 6 Σ d² / (n (n² - 1)).
    let rank = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| v.iter().filter(|y| *y < x).count() as f64 + 1.0).collect() };
    let (ra, rb) = (rank(&a), rank(&b));
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y) * (x - y)).sum();
    assert!((spearman(&a, &b).unwrap() - (1.0 - 6.0 * d2 / (n * (n * n - 1.0)))).abs() < 1e-12);
    assert_eq!(pearson(&a, &vec![1.0; a.len()]), None);
    let f = purchase_fit(&a, &b);
    let mae = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f64>() / n;
    let rmse = (a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / n).sqrt();
    assert!((f.mae - mae).abs() < 1e-12 && (f.rmse - rmse).abs() < 1e-12);
    let (sa, sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    assert!((f.total_error - (sa - sb) / sb).abs() < 1e-12);
    // The top 20% by a (60 customers) and their share of b.
    let mut order: Vec<usize> = (0..a.len()).collect();
    order.sort_by(|&i, &j| a[j].partial_cmp(&a[i]).unwrap());
    let share = order[..60].iter().map(|&i| b[i]).sum::<f64>() / sb;
    assert!((top_share(&a, &b, 0.2).unwrap() - share).abs() < 1e-12);
}

/// The median of the next purchase's time given that there is one, from the definition:
/// `Q(h) = L(x, t_x, T+h) / L(x, t_x, T)` is the chance of no purchase in `(T, T+h]`, so
/// `(1 - Q(h)) / (1 - Q(∞))` is the next purchase's distribution given that it comes;
/// `Q(∞)` is taken at `h = 1e9` (for x >= 3 the tail is far below the tolerance there) and the
/// median found by bisection, all on the oracle's likelihoods.
fn median_by_definition(ll: impl Fn(f64) -> f64, t: f64) -> f64 {
    let q = |h: f64| (ll(t + h) - ll(t)).exp();
    let q_inf = q(1e9);
    let (mut lo, mut hi) = (1e-9f64, 1e6f64);
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if (1.0 - q(mid)) / (1.0 - q_inf) < 0.5 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo * hi).sqrt()
}

fn fitted(model: Model, params: [f64; 4]) -> Purchases {
    Purchases {
        model,
        params,
        log_likelihood: 0.0,
        std_errors: [None; 4],
        boundary: [None; 4],
        customers: 1.0,
        iterations: 0,
    }
}

#[test]
fn next_purchase_is_the_median_of_its_definition() {
    let rows = [[3.0, 20.0, 38.0], [5.0, 37.0, 38.0], [12.0, 30.0, 39.0], [4.0, 2.0, 35.0]];
    for params in [[0.2426, 4.4136, 0.7929, 2.4259], [1.3, 0.8, 2.5, 6.0]] {
        for model in [Model::BgNbd, Model::MbgNbd] {
            let f = fitted(model, params);
            for [x, tx, t] in rows {
                let want = median_by_definition(|tt| oracle::bg_log_lik(&params, x, tx, tt, model == Model::MbgNbd), t);
                let got = f.next_purchase(x, tx, t);
                assert!((got - want).abs() < 1e-6 * want, "{model} {params:?} {x} {tx} {t}: {got} vs {want}");
            }
        }
    }
    for params in [[0.553, 10.578, 0.606, 11.669], [2.0, 5.0, 0.4, 5.0], [0.3, 1.0, 2.5, 20.0]] {
        let f = fitted(Model::ParetoNbd, params);
        for [x, tx, t] in rows {
            let want = median_by_definition(|tt| oracle::pareto_log_lik(&params, x, tx, tt), t);
            let got = f.next_purchase(x, tx, t);
            assert!((got - want).abs() < 1e-3 * want, "pareto {params:?} {x} {tx} {t}: {got} vs {want}");
        }
    }
}

/// Distinct (customer, day) purchases after 1997-09-30 up to 1998-06-30, from the raw file.
fn cdnow_holdout_purchases() -> usize {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cdnow/CDNOW_sample.txt")).unwrap();
    let days: BTreeSet<(String, String)> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[2] > "19970930" && f[2] <= "19980630")
        .map(|f| (f[1].to_string(), f[2].to_string()))
        .collect();
    days.len()
}

#[test]
fn cdnow_holdout_report() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    let args = [
        "customers",
        "--purchases",
        input.to_str().unwrap(),
        "--customer-col",
        "customer",
        "--time-col",
        "date",
        "--amount-col",
        "dollars",
        "--until",
        "1997-09-30",
        "--holdout-until",
        "1998-06-30",
        "--holdout-report",
        "holdout.json",
        "--out",
        "out.csv",
    ];
    let o = run_cobuy(dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("holdout.json")).unwrap()).unwrap();
    assert_eq!(j["customers"], 2357);
    assert_eq!(j["horizon"].as_f64().unwrap(), 39.0);
    let actual = cdnow_holdout_purchases() as f64;
    assert_eq!(actual, 1882.0);
    let models = j["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    let by = |name: &str| models.iter().find(|m| m["model"] == name).unwrap();
    for m in models {
        assert_eq!(m["purchases"]["actual_total"].as_f64().unwrap(), actual);
        // The chart ends at the totals.
        let cum = m["cumulative"].as_array().unwrap();
        let last = cum.last().unwrap().as_f64().unwrap();
        assert!((last - m["purchases"]["predicted_total"].as_f64().unwrap()).abs() < 1e-6);
    }
    assert_eq!(j["actual_cumulative"].as_array().unwrap().last().unwrap().as_f64().unwrap(), actual);
    // lifetimes 0.11.3 on the same split: BG/NBD 1,653 purchases, Pareto/NBD 1,666, churn AUC of
    // BG/NBD's expected purchases 0.773 and of the hiatus 0.771.
    let total = |m: &serde_json::Value| m["purchases"]["predicted_total"].as_f64().unwrap();
    assert!((total(by("bg-nbd")) - 1653.0).abs() < 1.0, "{}", total(by("bg-nbd")));
    assert!((total(by("pareto-nbd")) - 1666.0).abs() < 1.0, "{}", total(by("pareto-nbd")));
    let auc = by("bg-nbd")["churn_expected"]["auc"].as_f64().unwrap();
    assert!((auc - 0.773).abs() < 5e-4, "{auc}");
    let hiatus = j["churn_hiatus"]["auc"].as_f64().unwrap();
    assert!((hiatus - 0.771).abs() < 5e-4, "{hiatus}");
    // One rule: the model chosen is the best calibration likelihood among those fitted
    // (MBG/NBD on CDNOW), the one the customers file's log names.
    let best = models
        .iter()
        .max_by(|a, b| a["log_likelihood"].as_f64().unwrap().total_cmp(&b["log_likelihood"].as_f64().unwrap()))
        .unwrap();
    assert_eq!(models.iter().filter(|m| m["chosen"] == true).count(), 1);
    assert_eq!(best["chosen"], true);
    assert_eq!(best["model"], "mbg-nbd");
    assert!(String::from_utf8_lossy(&o.stderr).contains("model: mbg-nbd (the best log-likelihood)"));
    assert_eq!(j["chosen_rule"], "auto: the best log-likelihood of the three");
}

#[test]
fn a_holdout_before_the_calibration_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    let args = [
        "customers",
        "--purchases",
        input.to_str().unwrap(),
        "--customer-col",
        "customer",
        "--time-col",
        "date",
        "--until",
        "1997-09-30",
        "--holdout-until",
        "1997-09-30",
        "--holdout-report",
        "h.md",
        "--out",
        "out.csv",
    ];
    let o = run_cobuy(dir.path(), &args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--holdout-until must be a later day"));
}

/// Days after 1997-01-01 of a `yyyymmdd` in 1997 or 1998 (neither a leap year).
fn day_of(d: &str) -> i64 {
    const MONTH: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (y, m, day): (i64, usize, i64) = (d[..4].parse().unwrap(), d[4..6].parse().unwrap(), d[6..].parse().unwrap());
    365 * (y - 1997) + MONTH[..m - 1].iter().sum::<i64>() + day - 1
}

/// Each (customer, day) of CDNOW's raw file up to 1998-06-30 but each customer's first, as
/// days after 1997-01-01; and each customer's first day.
fn cdnow_repeat_days() -> (Vec<i64>, Vec<i64>) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cdnow/CDNOW_sample.txt")).unwrap();
    let days: BTreeSet<(u32, i64)> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[2] <= "19980630")
        .map(|f| (f[1].parse().unwrap(), day_of(f[2])))
        .collect();
    let origin = days.iter().map(|d| d.1).min().unwrap();
    let (mut repeat, mut first) = (Vec::new(), Vec::new());
    let mut last = None;
    for (c, d) in days {
        if last == Some(c) {
            repeat.push(d - origin);
        } else {
            first.push(d - origin);
        }
        last = Some(c);
    }
    (repeat, first)
}

/// 2F1(a, b; c; z) by its series, for |z| < 1.
fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 0..200_000 {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-16 * sum.abs() {
            break;
        }
    }
    sum
}

/// The tracking chart on CDNOW against the published closed forms of a new customer's
/// expected repeat purchases, E[X(t)] (Fader, Hardie & Lee 2005, eq. 7, and Schmittlein et
/// al. 1987 for Pareto/NBD), summed over the customers' first purchase days, and the actual
/// repeat purchases counted from the raw file.
#[test]
fn the_tracking_chart_is_the_closed_form_sum_and_the_raw_count() {
    let (cal, _, log) = calibration();
    let cal_end = cobuy::time::parse("1997-09-30").unwrap();
    let hold_end = cobuy::time::parse("1998-06-30").unwrap();
    let week = 7.0 * 86_400.0;
    let (actuals, horizon) = holdout::actuals(
        log.customers.len(),
        &cobuy::value::summary::purchases(&log),
        &cal,
        cobuy::value::Occasion::Day,
        cal_end,
        hold_end,
        week,
    );
    assert_eq!(horizon, 39.0);
    let bg = [0.2426, 4.4136, 0.7929, 2.4259];
    let pareto = [0.553, 10.578, 0.606, 11.669];
    let models = [fitted(Model::BgNbd, bg), fitted(Model::ParetoNbd, pareto)];
    let r = holdout::evaluate(&cal, &actuals, &models, Some((0, "test")), None, None, horizon, "week");
    let (repeat, first) = cdnow_repeat_days();
    assert_eq!(r.tracking_calibration_end, 272.0 / 7.0);
    assert_eq!(r.tracking_actual.len(), 78);
    let bg_new = |t: f64| {
        let [r, alpha, a, b] = bg;
        (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * hyp2f1(r, b, a + b - 1.0, t / (alpha + t)))
    };
    let pareto_new = |t: f64| {
        let [r, alpha, s, beta] = pareto;
        r * beta / (alpha * (s - 1.0)) * (1.0 - (beta / (beta + t)).powf(s - 1.0))
    };
    // Week ends after the origin (1997-01-01), the last one the holdout's end (273 + 272 days).
    for k in 1..=78 {
        let w = (k as f64).min(545.0 / 7.0);
        let actual = repeat.iter().filter(|&&d| d as f64 / 7.0 <= w).count() as f64;
        assert_eq!(r.tracking_actual[k - 1], actual, "week {k}");
        for (m, new) in [(&r.models[0], &bg_new as &dyn Fn(f64) -> f64), (&r.models[1], &pareto_new)] {
            let want: f64 = first.iter().map(|&d| d as f64 / 7.0).filter(|&f| f < w).map(|f| new(w - f)).sum();
            assert!(
                (m.tracking[k - 1] - want).abs() < 1e-6 * want.max(1.0),
                "{} week {k}: {} vs {want}",
                m.model,
                m.tracking[k - 1]
            );
        }
    }
    // The holdout part of the raw count is the holdout's actual total.
    assert_eq!(r.tracking_actual[77], repeat.len() as f64);
    assert_eq!(repeat.iter().filter(|&&d| d > 272).count(), 1882);
}

/// ROC points are the (false positive rate, true positive rate) pairs of "score at least
/// this" for the distinct scores, counted pair by pair here; both ends are kept, every kept
/// point is one of them, and the curve stays small.
#[test]
fn roc_points_are_their_definition() {
    for seed in 1..5 {
        let (score, label) = scored(3_000 + 101 * seed as usize, seed);
        let pos = label.iter().filter(|&&l| l).count() as f64;
        let neg = label.len() as f64 - pos;
        let mut thresholds: Vec<f64> = score.clone();
        thresholds.sort_by(|a, b| b.partial_cmp(a).unwrap());
        thresholds.dedup();
        let mut naive = vec![[0.0, 0.0]];
        for t in thresholds {
            let tp = score.iter().zip(&label).filter(|(s, l)| **s >= t && **l).count() as f64;
            let fp = score.iter().zip(&label).filter(|(s, l)| **s >= t && !**l).count() as f64;
            naive.push([fp / neg, tp / pos]);
        }
        let got = roc(&score, &label);
        assert_eq!(got[0], [0.0, 0.0]);
        assert_eq!(*got.last().unwrap(), [1.0, 1.0]);
        for p in &got {
            assert!(naive.iter().any(|q| (q[0] - p[0]).abs() < 1e-12 && (q[1] - p[1]).abs() < 1e-12), "{p:?}");
        }
        assert!(got.len() <= 2 * 200 + 2, "{}", got.len());
    }
}

/// `--report` with a holdout: the section (Markdown, JSON, three charts) beside the report's
/// own, the same bytes for one and two threads, and the holdout figures those of
/// `--holdout-report`.
#[test]
fn the_report_carries_the_holdout_section() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    let run = |threads: &str, report: &str| {
        let args = [
            "customers",
            "--purchases",
            input.to_str().unwrap(),
            "--customer-col",
            "customer",
            "--time-col",
            "date",
            "--amount-col",
            "dollars",
            "--until",
            "1997-09-30",
            "--holdout-until",
            "1998-06-30",
            "--report",
            report,
            "--holdout-report",
            "holdout.json",
            "--threads",
            threads,
            "--out",
            "out.csv",
        ];
        let o = run_cobuy(dir.path(), &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run("1", "one");
    run("2", "two");
    let read = |d: &str, f: &str| std::fs::read_to_string(dir.path().join(d).join(f)).unwrap();
    for f in ["report.md", "report.json", "holdout-tracking.svg", "holdout-roc.svg", "holdout-lift.svg"] {
        assert_eq!(read("one", f), read("two", f), "{f}");
    }
    let md = read("one", "report.md");
    assert!(md.contains("\n## Customer value on the holdout\n"), "{md}");
    assert!(md.contains("The model `cobuy customers` uses: mbg-nbd"), "{md}");
    assert!(md.contains("![Churn ROC](holdout-roc.svg)"));
    let j: serde_json::Value = serde_json::from_str(&read("one", "report.json")).unwrap();
    let alone: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("holdout.json")).unwrap()).unwrap();
    assert_eq!(j["sections"]["holdout"], alone);
    for f in ["holdout-tracking.svg", "holdout-roc.svg", "holdout-lift.svg"] {
        let svg = read("one", f);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n") && !svg.contains("NaN"), "{f}");
    }
    // The lift chart shows the hiatus heuristic's lift and the most possible (1 / churn rate).
    let lift = read("one", "holdout-lift.svg");
    let rate = alone["churn_rate"].as_f64().unwrap();
    assert!(lift.contains(&format!("most possible {:.2}", 1.0 / rate)), "{lift}");
    assert!(lift.contains(&format!(">{:.2}<", alone["churn_hiatus"]["top_decile_lift"].as_f64().unwrap())));
}

/// Per CDNOW customer (by sample id): holdout purchase days and revenue after 1997-09-30 up
/// to 1998-06-30, from the raw file.
fn cdnow_holdout_by_customer() -> std::collections::BTreeMap<String, (f64, f64)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cdnow/CDNOW_sample.txt")).unwrap();
    let mut days: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out: std::collections::BTreeMap<String, (f64, f64)> = std::collections::BTreeMap::new();
    for f in text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()) {
        let e = out.entry(f[1].to_string()).or_default();
        if f[2] > "19970930" && f[2] <= "19980630" {
            e.1 += f[4].parse::<f64>().unwrap();
            if days.insert((f[1].to_string(), f[2].to_string())) {
                e.0 += 1.0;
            }
        }
    }
    out
}

/// `cobuy eval --targets customer-value` on CDNOW's time split: the holdout section is the
/// one `cobuy customers --until --holdout-until` writes (one code path), and its figures
/// for the chosen model are their definitions computed here from the customers file's
/// predictions for the 39 weeks and the holdout counted from the raw file: MAE, RMSE,
/// correlation, total error, churn AUC by counting pairs, top-decile lift, the value rank
/// correlation and the predicted top 20%'s share of the holdout revenue.
#[test]
fn eval_measures_customer_value_by_the_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    let input = input.to_str().unwrap();
    let cols = ["--customer-col", "customer", "--time-col", "date", "--amount-col", "dollars"];
    let mut args = vec!["eval", "--purchases", input, "--targets", "customer-value", "--cutoff", "1997-10-01"];
    args.extend(cols);
    args.extend(["--out-dir", "ev"]);
    let o = run_cobuy(dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["report.md", "holdout-tracking.svg", "holdout-roc.svg", "holdout-lift.svg"] {
        assert!(dir.path().join("ev").join(f).exists(), "{f}");
    }
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ev/report.json")).unwrap()).unwrap();
    assert_eq!(j["runs"].as_array().unwrap().len(), 0);
    let h = &j["sections"]["holdout"];
    let mut args = vec!["customers", "--purchases", input, "--until", "1997-09-30", "--holdout-until", "1998-06-30"];
    args.extend(cols);
    args.extend(["--holdout-report", "h.json", "--horizon", "39", "--out", "c.csv"]);
    let o = run_cobuy(dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let alone: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("h.json")).unwrap()).unwrap();
    assert_eq!(h, &alone);

    // The definitions, on the customers file (file order: natural id order, the ties' order).
    let text = std::fs::read_to_string(dir.path().join("c.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (cc, ec, qc, sc) = (col("customer"), col("expected_purchases"), col("p_no_purchase"), col("expected_spend"));
    let held = cdnow_holdout_by_customer();
    let (mut pred, mut p_none, mut value, mut actual, mut revenue) = (vec![], vec![], vec![], vec![], vec![]);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let (a, r) = held[f[cc]];
        let e: f64 = f[ec].parse().unwrap();
        pred.push(e);
        p_none.push(f[qc].parse::<f64>().unwrap());
        value.push(e * f[sc].parse::<f64>().unwrap());
        actual.push(a);
        revenue.push(r);
    }
    let n = pred.len() as f64;
    assert_eq!(n, 2357.0);
    let chosen = h["models"].as_array().unwrap().iter().find(|m| m["chosen"] == true).unwrap();
    let close = |key: &serde_json::Value, want: f64, tol: f64| {
        let got = key.as_f64().unwrap();
        assert!((got - want).abs() < tol, "{got} vs {want}");
    };
    let p = &chosen["purchases"];
    let mae = pred.iter().zip(&actual).map(|(p, a)| (p - a).abs()).sum::<f64>() / n;
    let rmse = (pred.iter().zip(&actual).map(|(p, a)| (p - a) * (p - a)).sum::<f64>() / n).sqrt();
    let (tp, ta) = (pred.iter().sum::<f64>(), actual.iter().sum::<f64>());
    assert_eq!(ta, 1882.0);
    close(&p["mae"], mae, 1e-5);
    close(&p["rmse"], rmse, 1e-5);
    close(&p["total_error"], (tp - ta) / ta, 1e-5);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let pearson_naive = |a: &[f64], b: &[f64]| {
        let (ma, mb) = (mean(a), mean(b));
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma) * (x - ma)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb) * (y - mb)).sum();
        cov / (va * vb).sqrt()
    };
    close(&p["correlation"], pearson_naive(&pred, &actual), 1e-5);
    // Churn: no holdout purchase; AUC over every (churned, stayed) pair.
    let churned: Vec<bool> = actual.iter().map(|&a| a == 0.0).collect();
    let (mut right, mut pairs) = (0.0, 0.0);
    for i in (0..pred.len()).filter(|&i| churned[i]) {
        for j in (0..pred.len()).filter(|&j| !churned[j]) {
            pairs += 1.0;
            right += if p_none[i] > p_none[j] {
                1.0
            } else if p_none[i] == p_none[j] {
                0.5
            } else {
                0.0
            };
        }
    }
    close(&chosen["churn_p_no_purchase"]["auc"], right / pairs, 1e-4);
    let mut order: Vec<usize> = (0..pred.len()).collect();
    order.sort_by(|&a, &b| p_none[b].partial_cmp(&p_none[a]).unwrap().then(a.cmp(&b)));
    let k = (n / 10.0).round() as usize;
    let rate = churned.iter().filter(|&&c| c).count() as f64 / n;
    let lift = order[..k].iter().filter(|&&i| churned[i]).count() as f64 / k as f64 / rate;
    close(&chosen["churn_p_no_purchase"]["top_decile_lift"], lift, 0.02);
    close(&h["churn_rate"], rate, 1e-12);
    // Value: Spearman (Pearson on mid-ranks) and the predicted top 20%'s revenue share.
    let ranks = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|x| {
                let below = v.iter().filter(|y| *y < x).count() as f64;
                let equal = v.iter().filter(|y| *y == x).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect()
    };
    close(&chosen["value_rank_correlation"], pearson_naive(&ranks(&value), &ranks(&revenue)), 2e-3);
    let mut by_value: Vec<usize> = (0..pred.len()).collect();
    by_value.sort_by(|&a, &b| value[b].partial_cmp(&value[a]).unwrap().then(a.cmp(&b)));
    let top: f64 = by_value[..(n * 0.2).round() as usize].iter().map(|&i| revenue[i]).sum();
    close(&chosen["top20_revenue_share"], top / revenue.iter().sum::<f64>(), 5e-3);
}

/// The customer-value target on a split it cannot use, or without times: exit code 2 and a
/// message naming what to change.
#[test]
fn eval_customer_value_refuses_what_it_cannot_measure() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    let input = input.to_str().unwrap();
    for (extra, says) in [
        (vec!["--time-col", "date", "--split", "random"], "needs a time split"),
        (vec!["--time-col", "date", "--validation"], "remove --validation"),
        (vec!["--item-col", "cds"], "needs purchase times"),
        (vec!["--time-col", "date", "--cutoff", "1998-07-01"], "the customer-value target"),
    ] {
        let mut args = vec!["eval", "--purchases", input, "--customer-col", "customer", "--targets", "customer-value"];
        args.extend(extra.iter().copied());
        args.extend(["--out-dir", "ev"]);
        let o = run_cobuy(dir.path(), &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}
