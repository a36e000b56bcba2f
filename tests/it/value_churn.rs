//! The customers file's churn risk (`value::churn`): on CDNOW, the score chosen by the
//! inner split against the rule recomputed here from its definition (the split from the raw
//! file's days, churn counted from the raw file, AUC by counting pairs, the column from the
//! chosen score); on generated purchases, customers whose churn order is known by
//! construction ranked in that order under every model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::common::{Lcg, civil, run_cobuy};
use super::value_cdnow::cdnow_csv;

/// A CSV file's header and rows, by customer id.
fn table(path: &Path) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| {
            let f: Vec<String> = l.split(',').map(String::from).collect();
            (f[0].clone(), f)
        })
        .collect();
    (header, rows)
}

fn col(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} in {header:?}"))
}

/// The share of (positive, negative) pairs the score orders right, ties one half.
fn auc_by_pairs(score: &[f64], positive: &[bool]) -> f64 {
    let (mut right, mut pairs) = (0.0, 0.0);
    for i in (0..score.len()).filter(|&i| positive[i]) {
        for j in (0..score.len()).filter(|&j| !positive[j]) {
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
    right / pairs
}

/// Days since 1970-01-01 of `yyyymmdd`.
fn epoch_day(d: &str) -> i64 {
    let (y, m, day): (i64, i64, i64) = (d[..4].parse().unwrap(), d[4..6].parse().unwrap(), d[6..].parse().unwrap());
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

#[test]
fn cdnow_churn_risk_is_the_inner_splits_better_score() {
    let dir = tempfile::tempdir().unwrap();
    let input = cdnow_csv(dir.path());
    let input = input.to_str().unwrap();
    let cols = ["--customer-col", "customer", "--time-col", "date", "--amount-col", "dollars"];
    let run = |until: &str, horizon: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["customers", "--purchases", input, "--until", until, "--horizon", horizon, "--out", out];
        args.extend(cols);
        args.extend(extra);
        let o = run_cobuy(dir.path(), &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let log = run("1997-09-30", "39", "c.csv", &["--holdout-until", "1998-06-30", "--holdout-report", "h.json"]);

    // The rule from its definition: the last third of the observation (first purchase to
    // 1997-09-30) in whole days held out; the inner calibration's model (the same `auto`)
    // scores each inner customer over the held-out days; churn: no purchase in them.
    let raw =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cdnow/CDNOW_sample.txt")).unwrap();
    let days: BTreeSet<(String, i64)> = raw
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[2] <= "19970930")
        .map(|f| (f[1].trim_start_matches('0').to_string(), epoch_day(f[2])))
        .collect();
    let first = days.iter().map(|d| d.1).min().unwrap();
    let end = epoch_day("19970930");
    let held = (end - first) / 3;
    let inner_last = end - held;
    let horizon = held as f64 / 7.0;
    run(&civil(inner_last), &format!("{horizon}"), "inner.csv", &[]);
    let (h, inner) = table(&dir.path().join("inner.csv"));
    let (ec, qc) = (col(&h, "expected_purchases"), col(&h, "p_no_purchase"));
    let bought_later: BTreeSet<&str> =
        days.iter().filter(|d| d.1 > inner_last).map(|d| d.0.as_str()).collect::<BTreeSet<_>>();
    let (mut q, mut e, mut churned) = (vec![], vec![], vec![]);
    for (id, f) in &inner {
        q.push(f[qc].parse::<f64>().unwrap());
        e.push(-f[ec].parse::<f64>().unwrap());
        churned.push(!bought_later.contains(id.trim_start_matches('0')));
    }
    assert_eq!(churned.len(), 2357);
    assert!(churned.iter().any(|&c| c) && churned.iter().any(|&c| !c));
    let (auc_q, auc_e) = (auc_by_pairs(&q, &churned), auc_by_pairs(&e, &churned));
    let fewest = auc_e > auc_q;
    let line = log.lines().find(|l| l.starts_with("cobuy: churn risk: ")).unwrap();
    let want = format!(
        "cobuy: churn risk: {} (inner split, {} to 1997-09-30 held out, ",
        if fewest { "fewest expected purchases" } else { "P(no purchase)" },
        civil(inner_last + 1)
    );
    assert!(line.starts_with(&want), "{line}\nwanted {want}");
    // The AUCs in the log: the file's scores carry 6 decimals.
    assert!(line.contains(&format!("churn AUC {auc_q:.3} by P(no purchase), {auc_e:.3} by fewest expected")), "{line}");
    // On CDNOW fewest expected purchases wins the inner split, as it wins the holdout.
    assert!(fewest, "{auc_e} vs {auc_q}");

    // The column: the chosen score of the customers file's own model.
    let (h, file) = table(&dir.path().join("c.csv"));
    let (ec, qc, rc) = (col(&h, "expected_purchases"), col(&h, "p_no_purchase"), col(&h, "churn_risk"));
    for f in file.values() {
        let (e, q, r): (f64, f64, f64) = (f[ec].parse().unwrap(), f[qc].parse().unwrap(), f[rc].parse().unwrap());
        let want = if fewest { (-e).exp() } else { q };
        assert!((r - want).abs() < 2e-6, "{f:?}: {r} vs {want}");
        assert!((0.0..=1.0).contains(&r));
    }
    // The holdout report ranks churn by that column: its default is the chosen model's
    // ranking by the chosen score.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("h.json")).unwrap()).unwrap();
    let chosen = j["models"].as_array().unwrap().iter().find(|m| m["chosen"] == true).unwrap();
    let key = if fewest { "churn_expected" } else { "churn_p_no_purchase" };
    assert_eq!(j["churn_default"], chosen[key]);
    assert_eq!(j["churn_choice"]["score"], if fewest { "fewest-expected" } else { "no-purchase" });
    let risk: Vec<f64> = file.values().map(|f| f[rc].parse().unwrap()).collect();
    let held_out: BTreeSet<String> = raw
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[2] > "19970930" && f[2] <= "19980630")
        .map(|f| f[1].to_string())
        .collect();
    let lost: Vec<bool> = file.keys().map(|id| !held_out.contains(id)).collect();
    let auc = j["churn_default"]["auc"].as_f64().unwrap();
    assert!((auc - auc_by_pairs(&risk, &lost)).abs() < 1e-4, "{auc}");
}

/// Generated purchases: a background of customers with random rates and lifetimes (so that
/// every model has something to fit), and probes whose churn order is known: one-time buyers
/// of different ages, customers alike but for the time since their last purchase, and
/// customers who bought yesterday alike but for how often.
fn generated(path: &Path) -> Vec<Vec<String>> {
    let start = epoch_day("20200101");
    let mut rng = Lcg(7);
    let mut lines = vec!["customer,date".to_string()];
    let mut buy = |c: &str, day: i64| lines.push(format!("{c},{}", civil(start + day)));
    for c in 0..1_500 {
        let id = format!("b{c}");
        let first = i64::from(rng.below(120));
        let gap = 3.0 + 60.0 * rng.unit();
        let life = 400.0 * rng.unit();
        buy(&id, first);
        let mut t = first as f64;
        loop {
            t += -gap * (1.0 - rng.unit()).ln();
            if t > first as f64 + life || t >= 365.0 {
                break;
            }
            buy(&id, t as i64);
        }
    }
    // Groups, each in its known order from the least to the most at risk.
    let mut groups = Vec::new();
    // One-time buyers, younger to older.
    groups.push((0..6).map(|k| format!("once{k}")).collect::<Vec<_>>());
    for k in 0..6 {
        buy(&format!("once{k}"), 300 - 50 * k);
    }
    // Five purchases from day 0, the last ever longer ago.
    groups.push((0..6).map(|k| format!("pause{k}")).collect());
    for k in 0..6 {
        let last = 364 - 40 * k;
        for j in 0..5 {
            buy(&format!("pause{k}"), last * j / 4);
        }
    }
    // Bought on the last day, first on day 0, more often to less often.
    groups.push((0..6).map(|k| format!("often{k}")).collect());
    for k in 0..6 {
        let n = 12 - 2 * k;
        for j in 0..n {
            buy(&format!("often{k}"), 364 * j / (n - 1));
        }
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    groups
}

#[test]
fn churn_risk_orders_customers_whose_order_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let groups = generated(&dir.path().join("p.csv"));
    for model in ["auto", "bg-nbd", "mbg-nbd", "pareto-nbd"] {
        let args = [
            "customers",
            "--purchases",
            "p.csv",
            "--customer-col",
            "customer",
            "--time-col",
            "date",
            "--model",
            model,
            "--out",
            "c.csv",
        ];
        let o = run_cobuy(dir.path(), &args);
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{log}");
        let (h, rows) = table(&dir.path().join("c.csv"));
        let rc = col(&h, "churn_risk");
        for g in &groups {
            let risk: Vec<f64> = g.iter().map(|c| rows[c][rc].parse().unwrap()).collect();
            assert!(risk.windows(2).all(|w| w[0] < w[1]), "{model}: {g:?} {risk:?}\n{log}");
            assert!(risk.iter().all(|r| (0.0..=1.0).contains(r)));
        }
    }
}
