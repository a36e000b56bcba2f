//! Per-customer purchase summaries from a [`PurchaseLog`]: how often (`x`, repeat purchase
//! occasions), how recently (`t_x`, the last occasion's age from the first) and for how long
//! (`T`, from the first occasion to the end of the observation), in a chosen time unit, with
//! spend. An occasion is a distinct purchase day (UTC) by default, or a basket.
//!
//! Customers are summarised in parallel; each from its rows sorted by value, so the result
//! is a function of the rows, not of their order or the thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::CustomerIdx;
use crate::ingest::PurchaseLog;
use crate::time::DAY;

use super::ValueError;

/// A worker's buffers: one customer's rows `(occasion key, time, amount)`, and its
/// occasions `(time, value)`.
type Scratch = (Vec<(i64, i64, f64)>, Vec<(i64, f64)>);

/// What counts as one purchase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Occasion {
    /// A distinct purchase day (UTC): several rows on one day are one purchase, at the day's
    /// start. What the CDNOW literature counts.
    #[default]
    Day,
    /// A distinct basket (order) id, at its earliest row's time.
    Basket,
}

impl Occasion {
    /// `days` or `baskets`, for column names and logs.
    pub fn plural(self) -> &'static str {
        match self {
            Occasion::Day => "days",
            Occasion::Basket => "baskets",
        }
    }
}

/// How to summarise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryOptions {
    /// What one purchase is.
    pub occasion: Occasion,
    /// Seconds per time unit of `t_x` and `T` (a week, 604,800, by default: CDNOW's days
    /// divided by 7).
    pub unit_seconds: f64,
    /// Only purchases up to this time (by day, with [`Occasion::Day`]), which also ends
    /// every customer's observation; `None`: the log's last purchase.
    pub until: Option<i64>,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions { occasion: Occasion::Day, unit_seconds: 7.0 * DAY as f64, until: None }
    }
}

/// One customer's summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerSummary {
    /// The customer.
    pub customer: CustomerIdx,
    /// Repeat purchase occasions (all of them but the first).
    pub x: f64,
    /// The last occasion's time after the first, in units (0 for one purchase).
    pub t_x: f64,
    /// The end of the observation after the first occasion, in units.
    pub t: f64,
    /// The first and last occasions (unix seconds).
    pub first: i64,
    /// See `first`.
    pub last: i64,
    /// Every purchase row's positive amount, summed.
    pub revenue: f64,
    /// Repeat occasions with a positive value (the sum of their rows' positive amounts)...
    pub spend_n: u32,
    /// ...and their mean value (0 when `spend_n` is 0).
    pub spend_mean: f64,
}

/// What the summaries left out, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryStats {
    /// Customers summarised (with a purchase up to the end).
    pub customers: u64,
    /// Customers of the log with no purchase row up to the end (returns or later purchases only).
    pub customers_without_purchases: u64,
    /// Purchase rows used.
    pub purchase_rows: u64,
    /// Rows with a negative quantity (returns), not purchases.
    pub return_rows: u64,
    /// Rows with a zero quantity ("seen" marks).
    pub seen_rows: u64,
    /// Purchase rows after `until`.
    pub after_until_rows: u64,
    /// Purchase rows with an amount of 0 or less: purchases, left out of spend and revenue.
    pub nonpositive_amount_rows: u64,
    /// Whether the log has amounts at all.
    pub has_amounts: bool,
    /// Customers with a repeat purchase.
    pub repeat_customers: u64,
}

/// An occasion's time: the day's start for [`Occasion::Day`], else the row's own.
fn key_time(occasion: Occasion, t: i64) -> i64 {
    if occasion == Occasion::Day { t.div_euclid(DAY) * DAY } else { t }
}

/// Whether a purchase at `t` is inside the observation (up to `until`, by day for
/// [`Occasion::Day`]): the one rule for summaries and share of wallet.
pub fn kept(opts: &SummaryOptions) -> impl Fn(i64) -> bool + Sync + use<> {
    let (occasion, limit) = (opts.occasion, opts.until.map(|u| key_time(opts.occasion, u)));
    move |t| limit.is_none_or(|u| key_time(occasion, t) <= u)
}

/// Summarises every customer of `log` with a purchase up to the end. Errors: no times, a
/// basket occasion without baskets, no purchase up to the end.
pub fn summarize(log: &PurchaseLog, opts: &SummaryOptions) -> Result<(Vec<CustomerSummary>, SummaryStats), ValueError> {
    if !(opts.unit_seconds.is_finite() && opts.unit_seconds > 0.0) {
        return Err(ValueError::Options(format!("the time unit must be positive, got {} seconds", opts.unit_seconds)));
    }
    if opts.occasion == Occasion::Basket && log.baskets.is_none() {
        return Err(ValueError::Options("purchases counted by basket need a basket column".into()));
    }
    let purchases = || log.rows.iter().filter(|r| r.quantity > 0.0);
    if purchases().next().is_none() {
        return Err(ValueError::NoPurchases);
    }
    if purchases().any(|r| r.time.is_none()) {
        return Err(ValueError::NoTimes);
    }
    let by_day = opts.occasion == Occasion::Day;
    let key_time = |t: i64| key_time(opts.occasion, t);
    let limit = opts.until.map(key_time);
    let kept = kept(opts);
    let mut stats = SummaryStats { has_amounts: log.rows.iter().any(|r| r.amount.is_some()), ..Default::default() };
    // Rows grouped by customer (a counting sort), purchases up to the end only.
    let n = log.customers.len();
    let mut start = vec![0usize; n + 1];
    let mut end_time = i64::MIN;
    for r in &log.rows {
        match r.quantity {
            q if q < 0.0 => stats.return_rows += 1,
            0.0 => stats.seen_rows += 1,
            _ => {
                let t = r.time.expect("checked above");
                if kept(t) {
                    stats.purchase_rows += 1;
                    start[r.customer.get() + 1] += 1;
                    end_time = end_time.max(key_time(t));
                    if r.amount.is_some_and(|a| a <= 0.0) {
                        stats.nonpositive_amount_rows += 1;
                    }
                } else {
                    stats.after_until_rows += 1;
                }
            }
        }
    }
    if stats.purchase_rows == 0 {
        return Err(ValueError::NoPurchases);
    }
    let end = limit.unwrap_or(end_time);
    for c in 0..n {
        start[c + 1] += start[c];
    }
    let mut fill = start.clone();
    // (occasion key, time, amount) per purchase row, grouped by customer.
    let mut rows = vec![(0i64, 0i64, 0.0f64); stats.purchase_rows as usize];
    for r in &log.rows {
        if let (true, Some(t)) = (r.quantity > 0.0, r.time) {
            if kept(t) {
                let key = if by_day { key_time(t) } else { i64::from(r.basket.unwrap_or(u32::MAX)) };
                let at = &mut fill[r.customer.get()];
                rows[*at] = (key, key_time(t), r.amount.unwrap_or(0.0));
                *at += 1;
            }
        }
    }
    let unit = opts.unit_seconds;
    let summaries: Vec<Option<CustomerSummary>> = (0..n)
        .into_par_iter()
        .with_min_len(1_024)
        .map_init(
            || (Vec::new(), Vec::new()),
            |(mine, occasions): &mut Scratch, c| {
                if start[c] == start[c + 1] {
                    return None;
                }
                mine.clear();
                mine.extend_from_slice(&rows[start[c]..start[c + 1]]);
                mine.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2)));
                occasions.clear();
                let mut revenue = 0.0;
                for (i, &(key, t, amount)) in mine.iter().enumerate() {
                    let value = if amount > 0.0 { amount } else { 0.0 };
                    revenue += value;
                    if i > 0 && mine[i - 1].0 == key {
                        occasions.last_mut().expect("an occasion").1 += value;
                    } else {
                        occasions.push((t, value));
                    }
                }
                occasions.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                let (first, last) = (occasions[0].0, occasions[occasions.len() - 1].0);
                let (mut spend_n, mut spend_sum) = (0u32, 0.0);
                for &(_, v) in &occasions[1..] {
                    if v > 0.0 {
                        spend_n += 1;
                        spend_sum += v;
                    }
                }
                Some(CustomerSummary {
                    customer: CustomerIdx(c as u32),
                    x: (occasions.len() - 1) as f64,
                    t_x: (last - first) as f64 / unit,
                    t: (end.max(last) - first) as f64 / unit,
                    first,
                    last,
                    revenue,
                    spend_n,
                    spend_mean: if spend_n > 0 { spend_sum / f64::from(spend_n) } else { 0.0 },
                })
            },
        )
        .collect();
    let out: Vec<CustomerSummary> = summaries.into_iter().flatten().collect();
    stats.customers = out.len() as u64;
    stats.customers_without_purchases = n as u64 - stats.customers;
    stats.repeat_customers = out.iter().filter(|s| s.x > 0.0).count() as u64;
    Ok((out, stats))
}
