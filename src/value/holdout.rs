//! Customer value measured on a calibration/holdout time split: the models are fitted on the
//! purchases up to the end of calibration, and their per-customer predictions for the
//! holdout are set against what the customers then did. Holdout purchases per customer (MAE,
//! RMSE, correlation, total error), churn (no purchase in the holdout) ranked by the model's
//! P(no purchase), by fewest expected purchases, by the customers file's churn risk (one of
//! the two, chosen on the calibration alone: [`super::churn`]) and by the hiatus heuristic
//! (time since the last purchase): AUC and top-decile lift; lifetime value's rank correlation with the holdout revenue and the share
//! of that revenue bought by the predicted top 20%; and the cumulative repeat purchases
//! predicted against actual, week by week, for a chart.
//!
//! Only calibration customers (a purchase up to its end) are measured; the holdout counts
//! occasions as the summaries do (distinct days, or baskets).

use rayon::prelude::*;
use serde::Serialize;

use crate::ingest::{Purchase, PurchaseLog};
use crate::time::DAY;

use super::churn::{self, ChurnChoice, ChurnScore};
use super::fit::{Distinct, Model, Purchases, SpendFit, fit, fit_spend};
use super::report::{LineChart, Section, Series, lift_chart, line_chart};
use super::summary::{CustomerSummary, Occasion, SummaryOptions, purchases, summarize};
use super::{ValueError, choice_rule, fit_best, spend_pairs};

/// What each calibration customer did in the holdout, and every repeat purchase from the
/// start of calibration for the tracking chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actuals {
    /// Holdout purchase occasions per customer index of the log (0 for customers outside
    /// calibration too).
    pub purchases: Vec<f64>,
    /// Holdout revenue (positive amounts) per customer index.
    pub revenue: Vec<f64>,
    /// Each holdout occasion's time after the end of calibration, in units, sorted.
    pub times: Vec<f64>,
    /// Each calibration customer's first occasion, in units after the origin (the earliest
    /// of them), per customer index (0 outside calibration).
    pub first: Vec<f64>,
    /// Every repeat occasion (each calibration customer's occasions but their first) up to
    /// the end of the holdout, in units after the origin, sorted.
    pub repeat_times: Vec<f64>,
    /// The end of calibration in units after the origin.
    pub calibration_end: f64,
    /// The end of the holdout in units after the origin.
    pub holdout_end: f64,
    /// Seconds in a unit.
    pub unit_seconds: f64,
}

impl Actuals {
    /// Counts the occasions and revenue after `cal_end` up to `hold_end` (by day with
    /// [`Occasion::Day`], as the summaries' `until`), for customers with a purchase up to
    /// `cal_end` (`in_calibration`, by customer index); and their repeat occasions from
    /// their first on, for the tracking chart.
    pub fn from_purchases(
        customers: usize,
        rows: &[Purchase],
        occasion: Occasion,
        in_calibration: &[bool],
        cal_end: i64,
        hold_end: i64,
        unit_seconds: f64,
    ) -> Actuals {
        let by_day = occasion == Occasion::Day;
        let key_time = |t: i64| if by_day { t.div_euclid(DAY) * DAY } else { t };
        let (cal_end, hold_end) = (key_time(cal_end), key_time(hold_end));
        let n = customers;
        let mut revenue = vec![0.0; n];
        // (customer, occasion key, time): one per purchase row up to the holdout's end.
        let mut occ: Vec<(u32, i64, i64)> = Vec::new();
        for r in rows {
            let c = r.customer.get();
            let k = key_time(r.time);
            if !(k <= hold_end && in_calibration.get(c).copied().unwrap_or(false)) {
                continue;
            }
            if k > cal_end && r.amount > 0.0 {
                revenue[c] += r.amount;
            }
            let key = if by_day { k } else { i64::from(r.basket) };
            occ.push((c as u32, key, k));
        }
        // An occasion at its earliest row; then by customer and time, so that a customer's
        // first occasion is their first purchase.
        occ.par_sort_unstable();
        let mut distinct: Vec<(u32, i64)> = occ
            .iter()
            .enumerate()
            .filter(|&(i, o)| i == 0 || (occ[i - 1].0, occ[i - 1].1) != (o.0, o.1))
            .map(|(_, o)| (o.0, o.2))
            .collect();
        drop(occ);
        distinct.par_sort_unstable();
        let origin = distinct.iter().map(|o| o.1).min().unwrap_or(cal_end);
        let units = |t: i64| (t - origin) as f64 / unit_seconds;
        let mut purchases = vec![0.0; n];
        let mut first = vec![0.0; n];
        let (mut times, mut repeat_times) = (Vec::new(), Vec::new());
        for (i, &(c, t)) in distinct.iter().enumerate() {
            if i == 0 || distinct[i - 1].0 != c {
                first[c as usize] = units(t);
                continue;
            }
            repeat_times.push(units(t));
            if t > cal_end {
                purchases[c as usize] += 1.0;
                times.push((t - cal_end) as f64 / unit_seconds);
            }
        }
        times.sort_unstable_by(f64::total_cmp);
        repeat_times.sort_unstable_by(f64::total_cmp);
        Actuals {
            purchases,
            revenue,
            times,
            first,
            repeat_times,
            calibration_end: units(cal_end),
            holdout_end: units(hold_end),
            unit_seconds,
        }
    }
}

/// The holdout's actuals for the calibration customers `cal` (summarised up to `cal_end`),
/// and its length in units: whole days from `cal_end`'s day to `hold_end`'s.
pub fn actuals(
    customers: usize,
    rows: &[Purchase],
    cal: &[CustomerSummary],
    occasion: Occasion,
    cal_end: i64,
    hold_end: i64,
    unit_seconds: f64,
) -> (Actuals, f64) {
    let mut in_cal = vec![false; customers];
    for s in cal {
        in_cal[s.customer.get()] = true;
    }
    let horizon = (hold_end.div_euclid(DAY) - cal_end.div_euclid(DAY)) as f64 * DAY as f64 / unit_seconds;
    (Actuals::from_purchases(customers, rows, occasion, &in_cal, cal_end, hold_end, unit_seconds), horizon)
}

/// The whole check from a log, as `cobuy customers --until --holdout-until` makes it:
/// calibration summaries up to `opts.until`, the models fitted on them (`named`, or all
/// three with the one rule, [`choice_rule`]), Gamma-Gamma when there are amounts, the churn
/// score chosen on the calibration alone ([`churn::choose`]), and the holdout up to
/// `hold_end` measured.
pub fn measure(
    log: &PurchaseLog,
    opts: &SummaryOptions,
    hold_end: i64,
    named: Option<Model>,
    unit: &str,
) -> Result<HoldoutReport, ValueError> {
    let cal_end = opts.until.ok_or_else(|| ValueError::Options("a holdout needs the end of calibration".into()))?;
    let (cal, st) = summarize(log, opts)?;
    let d = Distinct::new(cal.iter().map(|s| [s.x, s.t_x, s.t]).collect());
    let (models, chosen) = match named {
        Some(m) => (vec![fit(m, &d)?], 0),
        None => {
            let (best, all) = fit_best(&d)?;
            let models: Vec<Purchases> = all.into_iter().filter_map(|(_, r)| r.ok()).collect();
            let chosen = models.iter().position(|m| m.model == best.model).unwrap_or(0);
            (models, chosen)
        }
    };
    let spend = if st.has_amounts { fit_spend(&spend_pairs(&cal)).ok() } else { None };
    let rows = purchases(log);
    let churn = churn::choose(log.customers.len(), &rows, log.baskets.is_some(), opts, named);
    let (actuals, horizon) =
        actuals(log.customers.len(), &rows, &cal, opts.occasion, cal_end, hold_end, opts.unit_seconds);
    let chosen = Some((chosen, choice_rule(named)));
    Ok(evaluate(&cal, &actuals, &models, chosen, Some(&churn), spend.as_ref(), horizon, unit))
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
    /// Whether it is the model chosen: the best calibration log-likelihood, or the one named
    /// (the customers file's rule, [`crate::value::fit_best`]).
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
    /// Predicted cumulative repeat purchases at the end of each unit after the tracking
    /// chart's origin: each customer's unconditional expectation from their first purchase
    /// (their first purchase day), as in Fader and Hardie's tracking plots.
    pub tracking: Vec<f64>,
    /// ROC curve of churn ranked by P(no purchase in the holdout).
    pub roc_p_no_purchase: Vec<[f64; 2]>,
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
    /// Where calibration ends on the tracking chart, in units after its origin (the
    /// calibration customers' first purchase day).
    pub tracking_calibration_end: f64,
    /// Actual cumulative repeat purchases at the end of each unit after the origin, across
    /// calibration and holdout (Fader and Hardie's tracking plot).
    pub tracking_actual: Vec<f64>,
    /// ROC curve of the hiatus heuristic: (false positive rate, true positive rate) points.
    pub roc_hiatus: Vec<[f64; 2]>,
    /// The customers file's churn score and how it was chosen (on the calibration alone).
    pub churn_choice: Option<ChurnChoice>,
    /// Churn ranked by that score under the chosen model: what a user gets by default.
    pub churn_default: Option<ChurnRanking>,
    /// The model chosen, by the rule the customers file follows: the best calibration
    /// log-likelihood (`value::fit_best`), or the model named.
    pub chosen_rule: String,
}

/// Measures every fitted model on the holdout. `cal` are the calibration summaries, `chosen`
/// the index in `models` of the model the customers file uses and the rule that chose it,
/// `churn` the file's churn score.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    cal: &[CustomerSummary],
    actuals: &Actuals,
    models: &[Purchases],
    chosen: Option<(usize, &str)>,
    churn: Option<&ChurnChoice>,
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
    let tracking_points: Vec<f64> =
        (1..=actuals.holdout_end.ceil().max(1.0) as usize).map(|k| (k as f64).min(actuals.holdout_end)).collect();
    let tracking_actual: Vec<f64> =
        tracking_points.iter().map(|&w| actuals.repeat_times.partition_point(|&t| t <= w) as f64).collect();
    // Customers by first purchase day (days after the origin), so that the chart costs the
    // number of days, not of customers.
    let day = DAY as f64 / actuals.unit_seconds;
    let mut cohorts: Vec<(u32, f64)> = Vec::new();
    let mut days: Vec<u32> = cal.iter().map(|s| (actuals.first[s.customer.get()] / day).floor() as u32).collect();
    days.sort_unstable();
    for d in days {
        match cohorts.last_mut() {
            Some(c) if c.0 == d => c.1 += 1.0,
            _ => cohorts.push((d, 1.0)),
        }
    }
    let models: Vec<ModelHoldout> = models
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
            // A new customer's expectation: given no repeat purchase in no time.
            let tracking = tracking_points
                .par_iter()
                .map(|&w| {
                    cohorts
                        .iter()
                        .map(|&(d, n)| (f64::from(d) * day, n))
                        .filter(|&(start, _)| start < w)
                        .map(|(start, n)| n * m.expected(0.0, 0.0, 0.0, w - start))
                        .sum()
                })
                .collect();
            ModelHoldout {
                model: m.model.to_string(),
                log_likelihood: m.log_likelihood,
                chosen: chosen.is_some_and(|c| c.0 == i),
                purchases: purchase_fit(&expected, &actual),
                churn_p_no_purchase: churn_ranking(&p_none, &churned),
                churn_expected: churn_ranking(&fewest, &churned),
                value_rank_correlation: with_value.then(|| spearman(&value, &revenue)).flatten(),
                top20_revenue_share: with_value.then(|| top_share(&value, &revenue, 0.2)).flatten(),
                cumulative,
                tracking,
                roc_p_no_purchase: roc(&p_none, &churned),
            }
        })
        .collect();
    let churn_default = churn.zip(models.iter().find(|m| m.chosen)).map(|(c, m)| match c.score {
        ChurnScore::NoPurchase => m.churn_p_no_purchase,
        ChurnScore::FewestExpected => m.churn_expected,
    });
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
        tracking_calibration_end: actuals.calibration_end,
        tracking_actual,
        roc_hiatus: roc(&hiatus, &churned),
        churn_choice: churn.cloned(),
        churn_default,
        chosen_rule: chosen.map_or(String::new(), |c| c.1.to_string()),
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

/// Points of a ROC curve kept: about one per this share of either axis.
const ROC_STEP: f64 = 0.005;

/// The ROC curve of `score` (higher: more likely positive): (false positive rate, true
/// positive rate) after each distinct score from the highest, from (0, 0) to (1, 1); a point
/// is kept when it moved at least [`ROC_STEP`] on either axis since the last kept, so the
/// chart stays small for any number of customers.
pub fn roc(score: &[f64], positive: &[bool]) -> Vec<[f64; 2]> {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_unstable_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let pos = positive.iter().filter(|&&p| p).count();
    let neg = (positive.len() - pos).max(1) as f64;
    let pos = pos.max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = vec![[0.0, 0.0]];
    for (k, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| score[j].total_cmp(&score[i]).is_ne());
        let p = [fp / neg, tp / pos];
        let prev = out[out.len() - 1];
        if last_of_tie && (k + 1 == order.len() || (p[0] - prev[0]).max(p[1] - prev[1]) >= ROC_STEP) {
            out.push(p);
        }
    }
    out
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

impl HoldoutReport {
    /// JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain numbers and strings")
    }

    /// Markdown: the measures table, the heuristics, and the cumulative chart's data.
    pub fn to_markdown(&self) -> String {
        self.markdown(1, false)
    }

    /// The report's section (`cobuy customers --report` with a holdout, `cobuy eval`'s
    /// customer-value target): the Markdown one level down with the charts shown, the JSON,
    /// and three charts: the tracking plot, the churn ROC curves and the top-decile lifts.
    pub fn section(&self) -> Section {
        Section {
            key: "holdout".into(),
            markdown: self.markdown(2, true),
            json: serde_json::to_value(self).expect("plain numbers and strings"),
            charts: vec![
                ("holdout-tracking.svg".into(), self.tracking_svg()),
                ("holdout-roc.svg".into(), self.roc_svg()),
                ("holdout-lift.svg".into(), self.lift_svg()),
            ],
        }
    }

    /// The chart files [`HoldoutReport::section`] writes.
    pub const CHARTS: [&'static str; 3] = ["holdout-tracking.svg", "holdout-roc.svg", "holdout-lift.svg"];

    /// The model the customers file uses, when one was fitted.
    pub fn chosen(&self) -> Option<&ModelHoldout> {
        self.models.iter().find(|m| m.chosen)
    }

    /// The Markdown with its title at heading `level`, linking the charts when `charts`.
    fn markdown(&self, level: usize, charts: bool) -> String {
        let (h, h2) = ("#".repeat(level), "#".repeat(level + 1));
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut s = format!(
            "{h} Customer value on the holdout\n\n{} calibration customers, a holdout of {} {}s; {:.1}% bought nothing in it.\n\n",
            self.customers,
            self.horizon,
            self.unit,
            100.0 * self.churn_rate
        );
        if let Some(m) = self.chosen() {
            s.push_str(&format!(
                "The model `cobuy customers` uses: {} ({}). On the holdout it predicts {:.1} repeat purchases against {:.0} ({:+.1}%).",
                m.model,
                self.chosen_rule,
                m.purchases.predicted_total,
                m.purchases.actual_total,
                100.0 * m.purchases.total_error,
            ));
            if let (Some(c), Some(d)) = (&self.churn_choice, &self.churn_default) {
                s.push_str(&format!(
                    " Its churn risk, {}, ranks churn with AUC {:.3} and top-decile lift {:.2}; the alternatives: P(no purchase) {:.3} and {:.2}, fewest expected purchases {:.3} and {:.2}, the hiatus heuristic {:.3} and {:.2} (the most any ranking can reach: {:.2}).",
                    c.rule,
                    d.auc,
                    d.top_decile_lift,
                    m.churn_p_no_purchase.auc,
                    m.churn_p_no_purchase.top_decile_lift,
                    m.churn_expected.auc,
                    m.churn_expected.top_decile_lift,
                    self.churn_hiatus.auc,
                    self.churn_hiatus.top_decile_lift,
                    self.max_lift(),
                ));
            }
            s.push_str("\n\n");
        }
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
        if charts {
            s.push_str(
                "\n![Cumulative repeat purchases](holdout-tracking.svg)\n\n![Churn ROC](holdout-roc.svg) ![Top-decile lift](holdout-lift.svg)\n\nThe tracking chart sums each calibration customer's expected repeat purchases from their first purchase, knowing nothing else of them, across calibration and holdout (Fader and Hardie's tracking plot); the table counts the holdout's, given each customer's calibration history.\n",
            );
        }
        s.push_str(&format!("\n{h2} Cumulative repeat purchases in the holdout\n\n| {} |", self.unit));
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

    /// The largest top-decile lift any ranking can reach: every customer in the top decile
    /// churned.
    pub fn max_lift(&self) -> f64 {
        let n = self.customers as f64;
        let k = (n * 0.1).round().clamp(1.0, n.max(1.0));
        let churned = self.churn_rate * n;
        (churned.min(k) / k) / self.churn_rate.max(f64::MIN_POSITIVE)
    }

    fn tracking_svg(&self) -> String {
        // From (0, 0): nobody has bought again before anyone bought.
        let end = self.tracking_calibration_end + self.horizon;
        let x: Vec<f64> = (0..=self.tracking_actual.len()).map(|k| (k as f64).min(end)).collect();
        let from_zero = |v: &[f64]| std::iter::once(0.0).chain(v.iter().copied()).collect::<Vec<f64>>();
        let mut series: Vec<Series> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| Series {
                name: m.model.clone(),
                points: x.iter().copied().zip(from_zero(&m.tracking)).collect(),
                color: i + 1,
                dashed: true,
            })
            .collect();
        series.push(Series {
            name: "actual".into(),
            points: x.iter().copied().zip(from_zero(&self.tracking_actual)).collect(),
            color: 0,
            dashed: false,
        });
        line_chart(&LineChart {
            title: "Cumulative repeat purchases, predicted and actual".into(),
            x_label: format!("{}s after the first purchase day", self.unit),
            y_label: "repeat purchases".into(),
            series,
            diagonal: false,
            marker: Some((self.tracking_calibration_end, "end of calibration".into())),
        })
    }

    fn roc_svg(&self) -> String {
        let mut series: Vec<Series> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| Series {
                name: format!("{} P(no purchase) AUC {:.3}", m.model, m.churn_p_no_purchase.auc),
                points: m.roc_p_no_purchase.iter().map(|p| (p[0], p[1])).collect(),
                color: i + 1,
                dashed: false,
            })
            .collect();
        series.push(Series {
            name: format!("hiatus AUC {:.3}", self.churn_hiatus.auc),
            points: self.roc_hiatus.iter().map(|p| (p[0], p[1])).collect(),
            color: 0,
            dashed: true,
        });
        line_chart(&LineChart {
            title: "Churn ROC: no purchase in the holdout".into(),
            x_label: "false positive rate".into(),
            y_label: "true positive rate".into(),
            series,
            diagonal: true,
            marker: None,
        })
    }

    fn lift_svg(&self) -> String {
        let mut bars = vec![("hiatus".to_string(), self.churn_hiatus.top_decile_lift)];
        for m in &self.models {
            bars.push((format!("{} P(no purchase)", m.model), m.churn_p_no_purchase.top_decile_lift));
            bars.push((format!("{} expected", m.model), m.churn_expected.top_decile_lift));
        }
        lift_chart("Churn: top-decile lift", &bars, self.max_lift())
    }
}
