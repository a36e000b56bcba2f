//! Which churn score the customers file's `churn_risk` column carries, chosen on the
//! purchases themselves: an inner time split of the observation (its last third held out),
//! never on anything after it.
//!
//! The two candidates are the fitted model's own answers for the horizon: P(no purchase)
//! and fewest expected purchases. Under a correct model the probability is the right churn
//! ranking; but the models' death process is sharp, so a customer with a long pause after
//! several purchases gets a P(no purchase) near 1 though such customers often come back (on
//! CDNOW a third of those with 2 to 5 repeat purchases and a pause of 26 weeks or more
//! bought in the holdout, where Pareto/NBD said 2 to 13%), and ranking by expected
//! purchases, which weighs the purchase rate more, then ranks churn better. Which one wins
//! depends on the data (fewest expected purchases on CDNOW, P(no purchase) on UCI Online
//! Retail and The Complete Journey, on their inner splits and holdouts alike), so the inner
//! split decides, as `auto` does for recommenders.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ingest::Purchase;
use crate::time::{self, DAY};

use super::fit::{Distinct, Model, Purchases, fit};
use super::holdout::{ChurnRanking, actuals, churn_ranking};
use super::summary::{SummaryOptions, summarize_purchases};
use super::{ValueError, fit_best};

/// The inner split holds out this share of the observation (from the first purchase to its
/// end), in whole days.
pub const INNER_SHARE: f64 = 1.0 / 3.0;
/// The inner split's models are fitted on at most about this many customers (every k-th by
/// index), so that the choice costs a fraction of the fit at a million customers.
pub const INNER_CUSTOMERS: usize = 100_000;

/// A churn score: what ranks customers by risk of buying nothing in the horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChurnScore {
    /// The model's P(no purchase in the horizon).
    #[default]
    NoPurchase,
    /// Fewest expected purchases in the horizon; the column carries `exp(-expected)`, the
    /// chance of none if the expected purchases came as a Poisson count (same order, 0 to 1).
    FewestExpected,
}

impl ChurnScore {
    /// In words, for logs and reports.
    pub fn describe(self) -> &'static str {
        match self {
            ChurnScore::NoPurchase => "P(no purchase in the horizon)",
            ChurnScore::FewestExpected => "fewest expected purchases in the horizon (exp(-expected))",
        }
    }

    /// The churn risk from a customer's expected purchases and P(no purchase).
    pub fn risk(self, expected: f64, p_no_purchase: f64) -> f64 {
        match self {
            ChurnScore::NoPurchase => p_no_purchase,
            ChurnScore::FewestExpected => (-expected).exp(),
        }
    }
}

/// The inner split's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InnerSplit {
    /// The inner calibration's last day and the observation's (the inner holdout's) last.
    pub calibration_end: String,
    /// See `calibration_end`.
    pub holdout_end: String,
    /// The inner holdout's length in units.
    pub horizon: f64,
    /// Customers measured (of the inner calibration, every k-th when more than
    /// [`INNER_CUSTOMERS`]).
    pub customers: usize,
    /// Their share with no purchase in the inner holdout.
    pub churn_rate: f64,
    /// The model fitted on the inner calibration.
    pub model: String,
    /// Churn ranked by P(no purchase).
    pub no_purchase: ChurnRanking,
    /// Churn ranked by fewest expected purchases.
    pub fewest_expected: ChurnRanking,
}

/// The churn score chosen and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChurnChoice {
    /// The score the customers file's `churn_risk` carries.
    pub score: ChurnScore,
    /// The rule's outcome in words.
    pub rule: String,
    /// The inner split, when it could be measured.
    pub inner: Option<InnerSplit>,
}

impl ChurnChoice {
    /// No inner split: the model's own probability, and why.
    fn fallback(why: &str) -> ChurnChoice {
        ChurnChoice {
            score: ChurnScore::NoPurchase,
            rule: format!("P(no purchase): no inner split ({why})"),
            inner: None,
        }
    }
}

/// Chooses the churn score on the purchases up to `opts.until` (or the last purchase): the
/// last third of the observation in whole days is held out, the model (`named`, or the
/// best likelihood of the three as [`fit_best`]) fitted on the rest, and the score ranking
/// the inner holdout's churn (no purchase in it) with the higher AUC is chosen, P(no
/// purchase) on a tie. When no inner split can be measured (too short, no repeat buyer, no
/// churner or no stayer, no model), P(no purchase), with the reason.
pub fn choose(
    customers: usize,
    rows: &[Purchase],
    has_baskets: bool,
    opts: &SummaryOptions,
    named: Option<Model>,
) -> ChurnChoice {
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for t in rows.iter().map(|r| r.time) {
        if opts.until.is_none_or(|u| t.div_euclid(DAY) <= u.div_euclid(DAY)) {
            first = first.min(t);
            last = last.max(t);
        }
    }
    if first > last {
        return ChurnChoice::fallback("no purchases");
    }
    let end = opts.until.map_or(last, |u| u.min(last).max(first));
    let (first_day, end_day) = (first.div_euclid(DAY), end.div_euclid(DAY));
    let held = ((end_day - first_day) as f64 * INNER_SHARE).floor() as i64;
    if held < 1 {
        return ChurnChoice::fallback("the observation is shorter than 3 days");
    }
    // The inner calibration ends with the day before the inner holdout's first.
    let inner_end = (end_day - held + 1) * DAY - 1;
    let inner_opts = SummaryOptions { until: Some(inner_end), ..*opts };
    let cal = match summarize_purchases(customers, rows.to_vec(), has_baskets, &inner_opts) {
        Ok((cal, _)) => cal,
        Err(e) => return ChurnChoice::fallback(&e.to_string()),
    };
    let step = cal.len().div_ceil(INNER_CUSTOMERS).max(1);
    let cal: Vec<_> = cal.into_iter().step_by(step).collect();
    let d = Distinct::new(cal.iter().map(|s| [s.x, s.t_x, s.t]).collect());
    let model: Result<Purchases, ValueError> = match named {
        Some(m) => fit(m, &d),
        None => fit_best(&d).map(|(best, _)| best),
    };
    let model = match model {
        Ok(m) => m,
        Err(e) => return ChurnChoice::fallback(&format!("on the inner calibration: {e}")),
    };
    let (act, horizon) = actuals(customers, rows, &cal, opts.occasion, inner_end, end, opts.unit_seconds);
    let churned: Vec<bool> = cal.iter().map(|s| act.purchases[s.customer.get()] == 0.0).collect();
    let lost = churned.iter().filter(|&&c| c).count();
    if lost == 0 || lost == churned.len() {
        return ChurnChoice::fallback(if lost == 0 {
            "every customer bought in the inner holdout"
        } else {
            "nobody bought in the inner holdout"
        });
    }
    let (q, e): (Vec<f64>, Vec<f64>) = cal
        .par_iter()
        .with_min_len(256)
        .map(|s| (model.p_no_purchase(s.x, s.t_x, s.t, horizon), -model.expected(s.x, s.t_x, s.t, horizon)))
        .unzip();
    // A score the model cannot give every customer (a boundary solution's NaN) is not a
    // candidate.
    let finite = |v: &[f64]| v.iter().all(|v| v.is_finite());
    if !finite(&q) && !finite(&e) {
        return ChurnChoice::fallback("the inner model gives neither score for every customer");
    }
    let (no_purchase, fewest_expected) = (churn_ranking(&q, &churned), churn_ranking(&e, &churned));
    let score = if !finite(&q) || (finite(&e) && fewest_expected.auc > no_purchase.auc) {
        ChurnScore::FewestExpected
    } else {
        ChurnScore::NoPurchase
    };
    let inner = InnerSplit {
        calibration_end: time::date(inner_end),
        holdout_end: time::date(end),
        horizon,
        customers: cal.len(),
        churn_rate: lost as f64 / cal.len() as f64,
        model: model.model.to_string(),
        no_purchase,
        fewest_expected,
    };
    let rule = format!(
        "{} (inner split, {} to {} held out, {}: churn AUC {:.3} by P(no purchase), {:.3} by fewest expected purchases)",
        match score {
            ChurnScore::NoPurchase => "P(no purchase)",
            ChurnScore::FewestExpected => "fewest expected purchases",
        },
        time::date(inner_end + 1),
        inner.holdout_end,
        inner.model,
        no_purchase.auc,
        fewest_expected.auc,
    );
    ChurnChoice { score, rule, inner: Some(inner) }
}
