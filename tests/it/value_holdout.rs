//! Customer value on a calibration/holdout split: the measures (`value::holdout`) against
//! naive reimplementations from their definitions (AUC by counting pairs, lift, Pearson,
//! Spearman, revenue shares), the median time to the next purchase against a direct
//! numerical evaluation of its definition on the oracle likelihoods, and `cobuy customers
//! --holdout-until` on CDNOW against an independent count of the holdout from the raw file
//! and lifetimes' published figures.

use std::collections::BTreeSet;
use std::path::Path;

use cobuy::value::holdout::{churn_ranking, pearson, purchase_fit, spearman, top_share};
use cobuy::value::{Model, Purchases};

use super::common::{Lcg, run_cobuy};
use super::value_cdnow::cdnow_csv;
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
    // The chosen model is the best calibration likelihood (MBG/NBD on CDNOW).
    assert_eq!(models.iter().filter(|m| m["chosen"] == true).count(), 1);
    assert_eq!(by("mbg-nbd")["chosen"], true);
    // The choice on calibration data never sees the holdout: another holdout end, the same choice.
    let choice = &j["choice"];
    assert!(choice["churn_model"].is_string() && choice["purchases_model"].is_string(), "{choice}");
    let mut other = args;
    other[12] = "1997-12-31";
    let o = run_cobuy(dir.path(), &other);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let k: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("holdout.json")).unwrap()).unwrap();
    assert!((k["horizon"].as_f64().unwrap() - 92.0 / 7.0).abs() < 1e-12);
    assert_eq!(&k["choice"], choice);
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
