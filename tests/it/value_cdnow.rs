//! Customer value on CDNOW (`datasets/cdnow/`): the summaries against the published
//! per-customer summary, and the fitted models against the published figures (Fader, Hardie
//! & Lee 2005): parameters within 1e-3 relative, log-likelihoods within 0.01.

use std::path::Path;

use cobuy::ingest::{Columns, IngestOptions, read_log};
use cobuy::time;
use cobuy::value::{self, CustomerSummary, Distinct, Model, SummaryOptions, SummaryStats};

use super::value_oracle::{bg_log_lik, gg_log_lik, pareto_log_lik};

fn data(file: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/cdnow").join(file);
    std::fs::read_to_string(p).unwrap()
}

/// CDNOW_sample.txt as the CSV the README's awk line makes: customer (sample id), ISO date,
/// CDs, dollars.
pub fn cdnow_csv(dir: &Path) -> std::path::PathBuf {
    let mut out = String::from("customer,date,cds,dollars\n");
    for line in data("CDNOW_sample.txt").lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let d = f[2];
        out.push_str(&format!("{},{}-{}-{},{},{}\n", f[1], &d[..4], &d[4..6], &d[6..], f[3], f[4]));
    }
    let path = dir.join("cdnow.csv");
    std::fs::write(&path, out).unwrap();
    path
}

/// The calibration summaries (to 1997-09-30), in weeks.
pub fn calibration() -> (Vec<CustomerSummary>, SummaryStats, cobuy::ingest::PurchaseLog) {
    let dir = tempfile::tempdir().unwrap();
    let path = cdnow_csv(dir.path());
    let mut cols = Columns::new("customer", "date");
    cols.time = Some("date".into());
    cols.amount = Some("dollars".into());
    let (log, _) = read_log(&path, &IngestOptions::new(cols)).unwrap();
    let opts = SummaryOptions { until: time::parse("1997-09-30"), ..SummaryOptions::default() };
    let (s, stats) = value::summarize(&log, &opts).unwrap();
    (s, stats, log)
}

fn rel(got: f64, want: f64) -> f64 {
    ((got - want) / want).abs()
}

#[test]
fn the_summaries_are_the_published_ones() {
    let (s, stats, log) = calibration();
    assert_eq!(s.len(), 2357);
    assert_eq!(stats.repeat_customers, 946);
    assert_eq!(s.iter().map(|c| c.x).sum::<f64>(), 2457.0);
    let published: Vec<Vec<f64>> = data("cdnow_customers_summary_with_transactions.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.trim().parse().unwrap()).collect())
        .collect();
    assert_eq!(published.len(), 2357);
    for c in &s {
        let id: f64 = log.customers.id(c.customer.0).parse().unwrap();
        let p = published.iter().find(|p| p[0] == id).unwrap();
        // The published file rounds to two decimals.
        assert_eq!(c.x, p[1], "customer {id}");
        assert!((c.t_x - p[2]).abs() <= 0.005 + 1e-9, "customer {id}: t_x {} vs {}", c.t_x, p[2]);
        assert!((c.t - p[3]).abs() <= 0.005 + 1e-9, "customer {id}: T {} vs {}", c.t, p[3]);
        let zbar = if c.spend_n > 0 { c.spend_mean } else { 0.0 };
        assert!((zbar - p[4]).abs() <= 0.005 + 1e-9, "customer {id}: zbar {zbar} vs {}", p[4]);
    }
}

fn distinct(s: &[CustomerSummary]) -> Distinct {
    Distinct::new(s.iter().map(|c| [c.x, c.t_x, c.t]).collect())
}

#[test]
fn bg_nbd_fit_is_the_published_one() {
    let (s, _, _) = calibration();
    let d = distinct(&s);
    let f = value::fit_model(Model::BgNbd, &d).unwrap();
    let want = [0.2426, 4.4136, 0.7929, 2.4259];
    for (k, w) in want.iter().enumerate() {
        assert!(rel(f.params[k], *w) < 1e-3, "{}: {} vs {w}", Model::BgNbd.param_names()[k], f.params[k]);
    }
    assert!((f.log_likelihood - -9582.43).abs() < 0.01, "LL {}", f.log_likelihood);
    // The oracle, summed customer by customer from the published formula.
    let naive: f64 = s.iter().map(|c| bg_log_lik(&f.params, c.x, c.t_x, c.t, false)).sum();
    assert!((naive - f.log_likelihood).abs() < 1e-6, "{naive} vs {}", f.log_likelihood);
    assert!(f.boundary.iter().all(Option::is_none));
    assert!(f.std_errors.iter().all(|e| e.is_some_and(|e| e > 0.0 && e.is_finite())), "{:?}", f.std_errors);
}

#[test]
fn pareto_nbd_fit_is_the_published_one() {
    let (s, _, _) = calibration();
    let f = value::fit_model(Model::ParetoNbd, &distinct(&s)).unwrap();
    // Published to three decimals: within 1e-3 relative of those.
    let want = [0.553, 10.578, 0.606, 11.669];
    for (k, w) in want.iter().enumerate() {
        assert!(rel(f.params[k], *w) < 1e-3, "{}: {} vs {w}", Model::ParetoNbd.param_names()[k], f.params[k]);
    }
    assert!((f.log_likelihood - -9595.0).abs() < 0.05, "LL {}", f.log_likelihood);
    let naive: f64 = s.iter().map(|c| pareto_log_lik(&f.params, c.x, c.t_x, c.t)).sum();
    assert!((naive - f.log_likelihood).abs() < 1e-5, "{naive} vs {}", f.log_likelihood);
}

#[test]
fn gamma_gamma_fit_is_the_published_one() {
    let (s, _, _) = calibration();
    let pairs: Vec<(f64, f64)> =
        s.iter().filter(|c| c.spend_n > 0).map(|c| (f64::from(c.spend_n), c.spend_mean)).collect();
    assert_eq!(pairs.len(), 946);
    let f = value::fit_spend(&pairs).unwrap();
    // Published to two decimals: within half a unit of the last.
    let want = [6.25, 3.74, 15.44];
    for (k, w) in want.iter().enumerate() {
        assert!((f.params[k] - w).abs() <= 0.005, "param {k}: {} vs {w}", f.params[k]);
    }
    let naive: f64 = pairs.iter().map(|&(x, m)| gg_log_lik(&f.params, x, m)).sum();
    assert!((naive - f.log_likelihood).abs() < 1e-6, "{naive} vs {}", f.log_likelihood);
    eprintln!("gamma-gamma {:?} LL {}", f.params, f.log_likelihood);
}

#[test]
fn the_published_single_customer_figures() {
    let (s, _, _) = calibration();
    let f = value::fit_model(Model::BgNbd, &distinct(&s)).unwrap();
    let e = f.expected(26.0, 30.857, 31.0, 52.0);
    assert!(rel(e, 25.757) < 1e-3, "{e}");
    let a = f.p_alive(26.0, 30.857, 31.0);
    assert!(rel(a, 0.96885) < 1e-3, "{a}");
}
