//! Customer value measured on a calibration/holdout time split: the models are fitted on the
//! purchases up to the end of calibration, and their per-customer predictions for the
//! holdout are set against what the customers then did. Holdout purchases per customer (MAE,
//! RMSE, correlation, total error), churn (no purchase in the holdout) ranked by the model's
//! P(no purchase) and by the hiatus heuristic (time since the last purchase): AUC and
//! top-decile lift; lifetime value's rank correlation with the holdout revenue and the share
//! of that revenue bought by the predicted top 20%; and the cumulative repeat purchases
//! predicted against actual, week by week, for a chart.
//!
//! Only calibration customers (a purchase up to its end) are measured; the holdout counts
//! occasions as the summaries do (distinct days, or baskets).

use rayon::prelude::*;
use serde::Serialize;

use crate::ingest::PurchaseLog;
use crate::time::DAY;

use super::fit::{Distinct, Model, Purchases, SpendFit, fit};
use super::summary::{CustomerSummary, Occasion, SummaryOptions, summarize};

/// What each calibration customer did in the holdout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actuals {
    /// Holdout purchase occasions per customer index of the log (0 for customers outside
    /// calibration too).
    pub purchases: Vec<f64>,
    /// Holdout revenue (positive amounts) per customer index.
    pub revenue: Vec<f64>,
    /// Each holdout occasion's time after the end of calibration, in units, sorted.
    pub times: Vec<f64>,
}

impl Actuals {
    /// Counts the occasions and revenue after `cal_end` up to `hold_end` (by day with
    /// [`Occasion::Day`], as the summaries' `until`), for customers with a purchase up to
    /// `cal_end` (`in_calibration`, by customer index).
    pub fn from_log(
        log: &PurchaseLog,
        occasion: Occasion,
        in_calibration: &[bool],
        cal_end: i64,
        hold_end: i64,
        unit_seconds: f64,
    ) -> Actuals {
        let by_day = occasion == Occasion::Day;
        let key_time = |t: i64| if by_day { t.div_euclid(DAY) * DAY } else { t };
        let (cal_end, hold_end) = (key_time(cal_end), key_time(hold_end));
        let n = log.customers.len();
        let mut revenue = vec![0.0; n];
        // (customer, occasion key, time): one per purchase row in the holdout.
        let mut occ: Vec<(u32, i64, i64)> = Vec::new();
        for r in &log.rows {
            let (Some(t), true) = (r.time, r.quantity > 0.0) else { continue };
            let c = r.customer.get();
            let k = key_time(t);
            if !(k > cal_end && k <= hold_end && in_calibration.get(c).copied().unwrap_or(false)) {
                continue;
            }
            revenue[c] += r.amount.filter(|a| *a > 0.0).unwrap_or(0.0);
            let key = if by_day { k } else { i64::from(r.basket.unwrap_or(u32::MAX)) };
            occ.push((c as u32, key, k));
        }
        occ.par_sort_unstable();
        let mut purchases = vec![0.0; n];
        let mut times = Vec::new();
        for (i, &(c, key, t)) in occ.iter().enumerate() {
            if i > 0 && occ[i - 1].0 == c && occ[i - 1].1 == key {
                continue;
            }
            purchases[c as usize] += 1.0;
            times.push((t - cal_end) as f64 / unit_seconds);
        }
        times.sort_unstable_by(f64::total_cmp);
        Actuals { purchases, revenue, times }
    }
}

/// Predicted against actual holdout purchases per customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PurchaseFit {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Pearson correlation (None when either side is constant).
    pub correlation: Option<f64>,
    /// Predicted total.
    pub predicted_total: f64,
    /// Actual total.
    pub actual_total: f64,
    /// (predicted - actual) / actual.
    pub total_error: f64,
}

/// A churn score's ranking of the customers who bought nothing in the holdout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChurnRanking {
    /// Area under the ROC curve (ties count one half).
    pub auc: f64,
    /// Churn rate among the top 10% by score (ties by customer order) over the overall rate.
    pub top_decile_lift: f64,
}

/// One model's holdout measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelHoldout {
    /// The model.
    pub model: String,
    /// Its calibration log-likelihood.
    pub log_likelihood: f64,
    /// Whether it is the one chosen on calibration data (best likelihood, or named).
    pub chosen: bool,
    /// Holdout purchases.
    pub purchases: PurchaseFit,
    /// Churn ranked by P(no purchase in the holdout).
    pub churn_p_no_purchase: ChurnRanking,
    /// Churn ranked by fewest expected purchases (what lifetimes' users rank by).
    pub churn_expected: ChurnRanking,
    /// Spearman correlation of predicted value (expected purchases times expected spend)
    /// with holdout revenue; None without a spend model.
    pub value_rank_correlation: Option<f64>,
    /// Share of the holdout revenue bought by the top 20% by predicted value.
    pub top20_revenue_share: Option<f64>,
    /// Predicted cumulative repeat purchases at each of [`HoldoutReport::weeks`].
    pub cumulative: Vec<f64>,
}

/// The holdout report: every fitted model's measures beside the heuristics'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutReport {
    /// Calibration customers measured.
    pub customers: usize,
    /// The holdout's length, in units.
    pub horizon: f64,
    /// The unit's name (week, day, month).
    pub unit: String,
    /// Share of the customers with no holdout purchase.
    pub churn_rate: f64,
    /// Churn ranked by the hiatus heuristic (time since the last purchase).
    pub churn_hiatus: ChurnRanking,
    /// Share of the holdout revenue bought by the top 20% by past revenue (the heuristic).
    pub top20_revenue_share_past: Option<f64>,
    /// Share bought by the actual top 20% (the most any ranking can reach).
    pub top20_revenue_share_best: Option<f64>,
    /// Spearman correlation of past revenue with holdout revenue (the heuristic).
    pub value_rank_correlation_past: Option<f64>,
    /// Each model's measures.
    pub models: Vec<ModelHoldout>,
    /// The chart's points, in units after the end of calibration.
    pub weeks: Vec<f64>,
    /// Actual cumulative repeat purchases at each point.
    pub actual_cumulative: Vec<f64>,
    /// What the calibration data chose (set by the caller from [`choose`]).
    pub choice: Option<Choice>,
}

/// Measures every fitted model on the holdout. `cal` are the calibration summaries, `chosen`
/// the index in `models` of the model chosen on calibration data.
pub fn evaluate(
    cal: &[CustomerSummary],
    actuals: &Actuals,
    models: &[Purchases],
    chosen: Option<usize>,
    spend: Option<&SpendFit>,
    horizon: f64,
    unit: &str,
) -> HoldoutReport {
    let actual: Vec<f64> = cal.iter().map(|s| actuals.purchases[s.customer.get()]).collect();
    let revenue: Vec<f64> = cal.iter().map(|s| actuals.revenue[s.customer.get()]).collect();
    let churned: Vec<bool> = actual.iter().map(|&a| a == 0.0).collect();
    let has_amounts = spend.is_some() || revenue.iter().any(|&r| r > 0.0);
    let steps = horizon.ceil().max(1.0) as usize;
    let weeks: Vec<f64> = (1..=steps).map(|k| (k as f64).min(horizon)).collect();
    let actual_cumulative: Vec<f64> =
        weeks.iter().map(|&w| actuals.times.partition_point(|&t| t <= w) as f64).collect();
    let hiatus: Vec<f64> = cal.iter().map(|s| s.t - s.t_x).collect();
    let past: Vec<f64> = cal.iter().map(|s| s.revenue).collect();
    let models = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let per: Vec<(f64, f64, f64)> = cal
                .par_iter()
                .with_min_len(256)
                .map(|s| {
                    let e = m.expected(s.x, s.t_x, s.t, horizon);
                    let q = m.p_no_purchase(s.x, s.t_x, s.t, horizon);
                    let v = spend
                        .and_then(|g| g.expected_spend(f64::from(s.spend_n), s.spend_mean))
                        .map_or(f64::NAN, |sp| sp * e);
                    (e, q, v)
                })
                .collect();
            let expected: Vec<f64> = per.iter().map(|p| p.0).collect();
            let p_none: Vec<f64> = per.iter().map(|p| p.1).collect();
            let fewest: Vec<f64> = expected.iter().map(|e| -e).collect();
            let value: Vec<f64> = per.iter().map(|p| p.2).collect();
            let with_value = spend.is_some() && value.iter().all(|v| v.is_finite());
            // Per chunk of customers in parallel, then the chunks in order: the same sums for
            // any thread count.
            let parts: Vec<Vec<f64>> = cal
                .par_chunks(1_024)
                .map(|chunk| {
                    weeks.iter().map(|&w| chunk.iter().map(|s| m.expected(s.x, s.t_x, s.t, w)).sum()).collect()
                })
                .collect();
            let cumulative = (0..weeks.len()).map(|k| parts.iter().map(|p: &Vec<f64>| p[k]).sum::<f64>()).collect();
            ModelHoldout {
                model: m.model.to_string(),
                log_likelihood: m.log_likelihood,
                chosen: chosen == Some(i),
                purchases: purchase_fit(&expected, &actual),
                churn_p_no_purchase: churn_ranking(&p_none, &churned),
                churn_expected: churn_ranking(&fewest, &churned),
                value_rank_correlation: with_value.then(|| spearman(&value, &revenue)).flatten(),
                top20_revenue_share: with_value.then(|| top_share(&value, &revenue, 0.2)).flatten(),
                cumulative,
            }
        })
        .collect();
    HoldoutReport {
        customers: cal.len(),
        horizon,
        unit: unit.to_string(),
        churn_rate: churned.iter().filter(|&&c| c).count() as f64 / cal.len().max(1) as f64,
        churn_hiatus: churn_ranking(&hiatus, &churned),
        top20_revenue_share_past: has_amounts.then(|| top_share(&past, &revenue, 0.2)).flatten(),
        top20_revenue_share_best: has_amounts.then(|| top_share(&revenue, &revenue, 0.2)).flatten(),
        value_rank_correlation_past: has_amounts.then(|| spearman(&past, &revenue)).flatten(),
        models,
        weeks,
        actual_cumulative,
        choice: None,
    }
}

/// MAE, RMSE, Pearson correlation and totals of predictions against actual values.
pub fn purchase_fit(predicted: &[f64], actual: &[f64]) -> PurchaseFit {
    let n = predicted.len().max(1) as f64;
    let (mut abs, mut sq) = (0.0, 0.0);
    for (p, a) in predicted.iter().zip(actual) {
        abs += (p - a).abs();
        sq += (p - a) * (p - a);
    }
    let (pt, at) = (predicted.iter().sum::<f64>(), actual.iter().sum::<f64>());
    PurchaseFit {
        mae: abs / n,
        rmse: (sq / n).sqrt(),
        correlation: pearson(predicted, actual),
        predicted_total: pt,
        actual_total: at,
        total_error: (pt - at) / at,
    }
}

/// Pearson correlation; None when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// Ranks from 1, ties sharing their mean rank.
pub fn mid_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_unstable_by(|&a, &b| v[a].total_cmp(&v[b]).then(a.cmp(&b)));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]].total_cmp(&v[order[i]]).is_eq() {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = mid;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation (Pearson's on mid-ranks).
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    pearson(&mid_ranks(a), &mid_ranks(b))
}

/// AUC of `score` (higher: more likely positive) by the rank-sum (Mann-Whitney) statistic,
/// and the top-decile lift.
pub fn churn_ranking(score: &[f64], positive: &[bool]) -> ChurnRanking {
    let ranks = mid_ranks(score);
    let pos = positive.iter().filter(|&&p| p).count() as f64;
    let neg = positive.len() as f64 - pos;
    let rank_sum: f64 = ranks.iter().zip(positive).filter(|(_, p)| **p).map(|(r, _)| r).sum();
    let auc = (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg);
    ChurnRanking { auc, top_decile_lift: top_rate(score, positive, 0.1) / (pos / positive.len() as f64) }
}

/// The positives' rate among the top `share` by score (ties by index: the earlier first).
fn top_rate(score: &[f64], positive: &[bool], share: f64) -> f64 {
    let top = top_indices(score, share);
    top.iter().filter(|&&i| positive[i]).count() as f64 / top.len().max(1) as f64
}

/// The top `share` (rounded, at least one) by score, ties by index.
fn top_indices(score: &[f64], share: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_unstable_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let k = ((score.len() as f64 * share).round() as usize).clamp(1, score.len().max(1));
    order.truncate(k);
    order
}

/// The share of `revenue` bought by the top `share` by `score`; None without revenue.
pub fn top_share(score: &[f64], revenue: &[f64], share: f64) -> Option<f64> {
    let total: f64 = revenue.iter().sum();
    (total > 0.0).then(|| top_indices(score, share).iter().map(|&i| revenue[i]).sum::<f64>() / total)
}

/// What the calibration data alone choose: the models refitted on the calibration's first
/// part and measured on its last (the inner holdout), before anything after the calibration
/// is looked at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The inner split's end of fitting, in units before the end of calibration.
    pub inner_holdout: f64,
    /// The model whose total of inner-holdout purchases was nearest the actual.
    pub purchases_model: String,
    /// Its inner total error.
    pub purchases_inner_error: f64,
    /// The model and churn score with the best inner AUC: `p-no-purchase` or `expected`.
    pub churn_model: String,
    /// See `churn_model`.
    pub churn_score: String,
    /// Its inner AUC.
    pub churn_inner_auc: f64,
}

/// Chooses the model for purchases and the model and score for churn on calibration data
/// only: the last third of the calibration span (at most `horizon`) is held out, the models
/// are fitted on the rest and measured there. None when the inner split leaves no repeat
/// purchases to fit or nothing to measure.
pub fn choose(
    log: &PurchaseLog,
    occasion: Occasion,
    cal_end: i64,
    first: i64,
    horizon: f64,
    unit_seconds: f64,
    models: &[Model],
) -> Option<Choice> {
    let span_days = (cal_end.div_euclid(DAY) - first.div_euclid(DAY)) as f64;
    let inner_days = (span_days / 3.0).min(horizon * unit_seconds / DAY as f64).floor();
    if inner_days < 1.0 {
        return None;
    }
    let inner_end = cal_end - inner_days as i64 * DAY;
    let opts = SummaryOptions { occasion, unit_seconds, until: Some(inner_end) };
    let (inner, _) = summarize(log, &opts).ok()?;
    let mut in_inner = vec![false; log.customers.len()];
    for s in &inner {
        in_inner[s.customer.get()] = true;
    }
    let actuals = Actuals::from_log(log, occasion, &in_inner, inner_end, cal_end, unit_seconds);
    let d = Distinct::new(inner.iter().map(|s| [s.x, s.t_x, s.t]).collect());
    let fits: Vec<Purchases> = models.iter().filter_map(|&m| fit(m, &d).ok()).collect();
    let h = inner_days * DAY as f64 / unit_seconds;
    let report = evaluate(&inner, &actuals, &fits, None, None, h, "unit");
    if report.churn_rate <= 0.0 || report.churn_rate >= 1.0 {
        return None;
    }
    let purchases =
        report.models.iter().min_by(|a, b| a.purchases.total_error.abs().total_cmp(&b.purchases.total_error.abs()))?;
    let mut churn: Option<(&ModelHoldout, &str, f64)> = None;
    for m in &report.models {
        for (score, auc) in [("p-no-purchase", m.churn_p_no_purchase.auc), ("expected", m.churn_expected.auc)] {
            if churn.is_none_or(|c| auc > c.2) {
                churn = Some((m, score, auc));
            }
        }
    }
    let (cm, score, auc) = churn?;
    Some(Choice {
        inner_holdout: h,
        purchases_model: purchases.model.clone(),
        purchases_inner_error: purchases.purchases.total_error,
        churn_model: cm.model.clone(),
        churn_score: score.to_string(),
        churn_inner_auc: auc,
    })
}

impl HoldoutReport {
    /// A model's churn ranking by the named score.
    pub fn churn_of(&self, m: &ModelHoldout, score: &str) -> ChurnRanking {
        if score == "expected" { m.churn_expected } else { m.churn_p_no_purchase }
    }

    /// JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain numbers and strings")
    }

    /// Markdown: the measures table, the heuristics, and the cumulative chart's data.
    pub fn to_markdown(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut s = format!(
            "# Customer value on the holdout\n\n{} calibration customers, a holdout of {} {}s; {:.1}% bought nothing in it.\n\n",
            self.customers,
            self.horizon,
            self.unit,
            100.0 * self.churn_rate
        );
        s.push_str("| model | calibration LL | chosen | predicted purchases | actual | total error | MAE | RMSE | correlation | churn AUC (P(none)) | lift | churn AUC (expected) | lift | value rank corr. | top 20% revenue share |\n");
        s.push_str("|---|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for m in &self.models {
            let p = &m.purchases;
            s.push_str(&format!(
                "| {} | {:.2} | {} | {:.1} | {:.0} | {:+.1}% | {:.3} | {:.3} | {} | {:.3} | {:.2} | {:.3} | {:.2} | {} | {} |\n",
                m.model,
                m.log_likelihood,
                if m.chosen { "yes" } else { "" },
                p.predicted_total,
                p.actual_total,
                100.0 * p.total_error,
                p.mae,
                p.rmse,
                opt(p.correlation),
                m.churn_p_no_purchase.auc,
                m.churn_p_no_purchase.top_decile_lift,
                m.churn_expected.auc,
                m.churn_expected.top_decile_lift,
                opt(m.value_rank_correlation),
                opt(m.top20_revenue_share),
            ));
        }
        s.push_str(&format!(
            "\nHeuristics: churn by the hiatus (time since the last purchase) AUC {:.3}, top-decile lift {:.2}; past revenue's rank correlation with holdout revenue {}, its top 20% buy {} of the holdout revenue (the actual top 20%: {}).\n",
            self.churn_hiatus.auc,
            self.churn_hiatus.top_decile_lift,
            opt(self.value_rank_correlation_past),
            opt(self.top20_revenue_share_past),
            opt(self.top20_revenue_share_best),
        ));
        if let Some(c) = &self.choice {
            let m = |name: &str| self.models.iter().find(|m| m.model == name);
            let (pm, cm) = (m(&c.purchases_model), m(&c.churn_model));
            s.push_str(&format!(
                "\nChosen on calibration data only (fitted without its last {:.1} {}s, measured on them): purchases by {} (inner total error {:+.1}%; on the holdout {}), churn by {}'s {} (inner AUC {:.3}; on the holdout AUC {}, top-decile lift {}).\n",
                c.inner_holdout,
                self.unit,
                c.purchases_model,
                100.0 * c.purchases_inner_error,
                pm.map_or("-".into(), |m| format!("{:+.1}%", 100.0 * m.purchases.total_error)),
                c.churn_model,
                c.churn_score,
                c.churn_inner_auc,
                cm.map_or("-".into(), |m| format!("{:.3}", self.churn_of(m, &c.churn_score).auc)),
                cm.map_or("-".into(), |m| format!("{:.2}", self.churn_of(m, &c.churn_score).top_decile_lift)),
            ));
        }
        s.push_str(&format!("\n## Cumulative repeat purchases in the holdout\n\n| {} |", self.unit));
        for m in &self.models {
            s.push_str(&format!(" {} |", m.model));
        }
        s.push_str(" actual |\n|---:|");
        for _ in &self.models {
            s.push_str("---:|");
        }
        s.push_str("---:|\n");
        for (k, w) in self.weeks.iter().enumerate() {
            s.push_str(&format!("| {w} |"));
            for m in &self.models {
                s.push_str(&format!(" {:.1} |", m.cumulative[k]));
            }
            s.push_str(&format!(" {:.0} |\n", self.actual_cumulative[k]));
        }
        s
    }
}
