//! Per-customer scores from the summaries and the fitted models: P(alive), expected
//! purchases and the probability of none in a horizon, the churn risk (one of them, as
//! [`super::churn`] chose), expected spend, lifetime
//! value over the horizon with a discount rate, a value tier and RFM scores with a named
//! segment. Customers are scored in parallel, each by one worker; ranks (tiers, RFM) are
//! taken over values and customer indices only, so the result is the same for any thread
//! count.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::time::DAY;

use super::ValueError;
use super::churn::ChurnScore;
use super::fit::{Purchases, SpendFit};
use super::summary::CustomerSummary;

/// Seconds in a year (365.25 days), the period of the discount rate.
const YEAR: f64 = 365.25 * DAY as f64;
/// Lifetime value sums the horizon in steps of about a month.
const STEP: f64 = 30.0 * DAY as f64;
/// Horizons are at most this many years (and more than 0).
pub const MAX_HORIZON_YEARS: f64 = 100.0;

/// What ranks customers into tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierBy {
    /// Lifetime value over the horizon (falling back to expected purchases, then past
    /// revenue, then purchases, when it cannot be computed).
    #[default]
    Value,
    /// Past revenue (falling back to purchases without amounts).
    Revenue,
}

/// How to score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreOptions {
    /// The horizon, in time units.
    pub horizon: f64,
    /// Seconds per time unit (as the summaries were made).
    pub unit_seconds: f64,
    /// Yearly discount rate of lifetime value, 0 to 1.
    pub discount: f64,
    /// What ranks the tiers.
    pub tier_by: TierBy,
    /// What the churn risk is ([`super::churn::choose`] picks it on the data).
    pub churn: ChurnScore,
}

impl ScoreOptions {
    /// Horizon above 0 and at most [`MAX_HORIZON_YEARS`]; discount rate from 0 to 1.
    pub fn check(&self) -> Result<(), ValueError> {
        let years = self.horizon * self.unit_seconds / YEAR;
        if !(self.horizon > 0.0 && years.is_finite() && years <= MAX_HORIZON_YEARS) {
            return Err(ValueError::Options(format!(
                "the horizon (--horizon) must be above 0 and at most {MAX_HORIZON_YEARS} years, got {} time units",
                self.horizon
            )));
        }
        if !(0.0..=1.0).contains(&self.discount) {
            return Err(ValueError::Options(format!(
                "the yearly discount rate (--discount) must be from 0 to 1 (0.1 is 10%), got {}",
                self.discount
            )));
        }
        Ok(())
    }
}

/// A value tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// The top 20%.
    Top,
    /// The middle 60%.
    Middle,
    /// The bottom 20%.
    Bottom,
}

impl Tier {
    /// `top`, `middle`, `bottom`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Top => "top",
            Tier::Middle => "middle",
            Tier::Bottom => "bottom",
        }
    }
}

/// One customer's scores; model values are `None` when there is no model (or, for spend,
/// no amounts or an infinite mean).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerScore {
    /// P(alive now).
    pub p_alive: Option<f64>,
    /// Expected purchases in the horizon.
    pub expected: Option<f64>,
    /// P(no purchase in the horizon).
    pub p_no_purchase: Option<f64>,
    /// The churn risk, 0 to 1, higher riskier: [`ScoreOptions::churn`]'s score.
    pub churn_risk: Option<f64>,
    /// The median time to the next purchase (in time units after the end of the
    /// observation), among the futures that have one.
    pub next_purchase: Option<f64>,
    /// Expected spend per purchase.
    pub expected_spend: Option<f64>,
    /// Discounted expected spend over the horizon.
    pub clv: Option<f64>,
    /// Value tier.
    pub tier: Tier,
    /// Recency, frequency, monetary scores, 1 (lowest fifth) to 5; monetary `None`
    /// without amounts.
    pub rfm: (u8, u8, Option<u8>),
    /// The RFM segment's name.
    pub segment: &'static str,
}

/// What ranked the tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierBasis {
    /// Lifetime value.
    LifetimeValue,
    /// Expected purchases (no spend model).
    ExpectedPurchases,
    /// Past revenue.
    Revenue,
    /// Purchases (no amounts, no model).
    Purchases,
}

impl TierBasis {
    /// In words, for logs and reports.
    pub fn describe(self) -> &'static str {
        match self {
            TierBasis::LifetimeValue => "lifetime value",
            TierBasis::ExpectedPurchases => "expected purchases (no spend)",
            TierBasis::Revenue => "past revenue",
            TierBasis::Purchases => "purchases (no model, no amounts)",
        }
    }
}

/// Scores every customer. `purchases` and `spend` are the fitted models, when there are.
pub fn score(
    summaries: &[CustomerSummary],
    purchases: Option<&Purchases>,
    spend: Option<&SpendFit>,
    has_amounts: bool,
    opts: &ScoreOptions,
) -> Result<(Vec<CustomerScore>, TierBasis), ValueError> {
    opts.check()?;
    let h = opts.horizon;
    let steps = ((h * opts.unit_seconds / STEP).ceil() as usize).clamp(1, 1_200);
    let years_per_unit = opts.unit_seconds / YEAR;
    // The model's values depend on (x, t_x, T) alone, which many customers share: each
    // distinct row is scored once (a customer's lifetime value is its row's discounted
    // purchases times the customer's own expected spend).
    let (row_of, rows) = distinct_rows(summaries);
    let finite = |v: f64| v.is_finite().then_some(v);
    let per_row: Vec<Option<RowScore>> = rows
        .par_iter()
        .with_min_len(256)
        .map(|&[x, tx, t]| {
            let m = purchases?;
            let p_alive = m.p_alive(x, tx, t);
            let expected = m.expected_if_alive(x, t, h) * p_alive;
            let (mut prev, mut discounted) = (0.0, 0.0);
            for k in 1..=steps {
                let tk = h * k as f64 / steps as f64;
                let cum = if k == steps { expected } else { m.expected_if_alive(x, t, tk) * p_alive };
                discounted += (cum - prev) * (1.0 + opts.discount).powf(-tk * years_per_unit);
                prev = cum;
            }
            let p_no_purchase = m.p_no_purchase(x, tx, t, h);
            Some(RowScore {
                p_alive: finite(p_alive),
                expected: finite(expected),
                p_no_purchase: finite(p_no_purchase),
                churn_risk: finite(opts.churn.risk(expected, p_no_purchase)),
                discounted,
            })
        })
        .collect();
    // The time to the next purchase depends on (x, T) alone: once per distinct pair.
    let next: FxHashMap<[u64; 2], Option<f64>> = match purchases {
        Some(m) => {
            let mut pairs: Vec<[f64; 2]> = rows.iter().map(|&[x, _, t]| [x, t]).collect();
            pairs.sort_unstable_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
            pairs.dedup_by(|a, b| a[0].to_bits() == b[0].to_bits() && a[1].to_bits() == b[1].to_bits());
            pairs
                .par_iter()
                .with_min_len(64)
                .map(|&[x, t]| ([x.to_bits(), t.to_bits()], finite(m.next_purchase(x, 0.0, t))))
                .collect()
        }
        None => FxHashMap::default(),
    };
    // The model's values first, the ranks after (placeholders until then): one vector of
    // scores, never a second per-customer copy of the values.
    let mut scores: Vec<CustomerScore> = summaries
        .par_iter()
        .zip(&row_of)
        .with_min_len(256)
        .map(|(s, &row)| {
            let mut c = CustomerScore {
                p_alive: None,
                expected: None,
                p_no_purchase: None,
                churn_risk: None,
                next_purchase: None,
                expected_spend: None,
                clv: None,
                tier: Tier::Middle,
                rfm: (0, 0, None),
                segment: "",
            };
            let Some(r) = &per_row[row as usize] else { return c };
            let espend = spend.and_then(|g| g.expected_spend(f64::from(s.spend_n), s.spend_mean));
            let clv = espend.map(|e| r.discounted * e);
            (c.p_alive, c.expected, c.p_no_purchase, c.churn_risk) =
                (r.p_alive, r.expected, r.p_no_purchase, r.churn_risk);
            (c.expected_spend, c.clv) = (espend.and_then(finite), clv.and_then(finite));
            c.next_purchase = next[&[s.x.to_bits(), s.t.to_bits()]];
            c
        })
        .collect();
    let (basis, value): (TierBasis, Vec<f64>) = match opts.tier_by {
        TierBy::Value if scores.iter().any(|c| c.clv.is_some()) => {
            (TierBasis::LifetimeValue, scores.iter().map(|c| c.clv.unwrap_or(0.0)).collect())
        }
        TierBy::Value if scores.iter().any(|c| c.expected.is_some()) && !has_amounts => {
            (TierBasis::ExpectedPurchases, scores.iter().map(|c| c.expected.unwrap_or(0.0)).collect())
        }
        _ if has_amounts => (TierBasis::Revenue, summaries.iter().map(|s| s.revenue).collect()),
        _ => (TierBasis::Purchases, summaries.iter().map(|s| s.x).collect()),
    };
    let tiers = tiers(&value);
    drop(value);
    let r = fifths(&summaries.iter().map(|s| s.last as f64).collect::<Vec<_>>());
    let f = fifths(&summaries.iter().map(|s| s.x).collect::<Vec<_>>());
    let m = has_amounts.then(|| fifths(&summaries.iter().map(|s| s.revenue).collect::<Vec<_>>()));
    for (i, c) in scores.iter_mut().enumerate() {
        c.tier = tiers[i];
        c.rfm = (r[i], f[i], m.as_ref().map(|m| m[i]));
        c.segment = segment(c.rfm);
    }
    Ok((scores, basis))
}

/// A distinct `(x, t_x, T)` row's model values.
struct RowScore {
    p_alive: Option<f64>,
    expected: Option<f64>,
    p_no_purchase: Option<f64>,
    churn_risk: Option<f64>,
    /// Expected purchases in the horizon, each discounted to now.
    discounted: f64,
}

/// Each customer's row among the distinct `(x, t_x, T)` rows (numbered in order of first
/// appearance, so the same for any thread count), and those rows.
fn distinct_rows(summaries: &[CustomerSummary]) -> (Vec<u32>, Vec<[f64; 3]>) {
    let mut index: FxHashMap<[u64; 3], u32> = FxHashMap::default();
    let mut rows = Vec::new();
    let row_of = summaries
        .iter()
        .map(|s| {
            let key = [s.x.to_bits(), s.t_x.to_bits(), s.t.to_bits()];
            *index.entry(key).or_insert_with(|| {
                rows.push([s.x, s.t_x, s.t]);
                (rows.len() - 1) as u32
            })
        })
        .collect();
    (row_of, rows)
}

/// Top 20% and bottom 20% (each rounded) by value, ties broken by index (the earlier
/// customer ranks higher).
fn tiers(value: &[f64]) -> Vec<Tier> {
    let n = value.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.par_sort_unstable_by(|&a, &b| value[b].total_cmp(&value[a]).then(a.cmp(&b)));
    let fifth = (n as f64 * 0.2).round() as usize;
    let mut out = vec![Tier::Middle; n];
    for (rank, &i) in order.iter().enumerate() {
        if rank < fifth {
            out[i] = Tier::Top;
        } else if rank >= n - fifth {
            out[i] = Tier::Bottom;
        }
    }
    out
}

/// 1 + the fifth of customers strictly below the value (ties share a score): 1 to 5,
/// higher values higher.
fn fifths(value: &[f64]) -> Vec<u8> {
    quantile_bands(value, 5)
}

/// 1 + the `k`-th part of the values strictly below each value (ties share a band): 1 to
/// `k`, higher values higher.
pub(super) fn quantile_bands(value: &[f64], k: u8) -> Vec<u8> {
    let mut sorted = value.to_vec();
    sorted.par_sort_unstable_by(f64::total_cmp);
    let n = value.len().max(1) as f64;
    value
        .iter()
        .map(|v| {
            let below = sorted.partition_point(|s| s.total_cmp(v).is_lt());
            1 + ((f64::from(k) * below as f64 / n).floor() as u8).min(k - 1)
        })
        .collect()
}

/// The RFM segment: recency first (who still buys), then frequency and spend.
pub fn segment((r, f, m): (u8, u8, Option<u8>)) -> &'static str {
    let m = m.unwrap_or(f);
    match (r, f) {
        (4.., 4..) if m >= 4 => "champions",
        (3.., 4..) => "loyal",
        (4.., 1) => "new",
        (4.., _) => "potential loyalists",
        (3, _) => "needs attention",
        (..=2, 4..) => "cannot lose",
        (..=2, 3) => "at risk",
        (1, _) => "lost",
        _ => "hibernating",
    }
}

/// The segment names, in [`segment`]'s order.
pub const SEGMENTS: [&str; 9] = [
    "champions",
    "loyal",
    "new",
    "potential loyalists",
    "needs attention",
    "cannot lose",
    "at risk",
    "lost",
    "hibernating",
];
