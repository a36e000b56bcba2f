//! Per-customer purchase summaries from a [`PurchaseLog`]: how often (`x`, repeat purchase
//! occasions), how recently (`t_x`, the last occasion's age from the first) and for how long
//! (`T`, from the first occasion to the end of the observation), in a chosen time unit, with
//! spend. An occasion is a distinct purchase day (UTC) by default, or a basket.
//!
//! Customers are summarised in parallel; each from its rows sorted by value, so the result
//! is a function of the rows, not of their order or the thread count. Memory is the purchase
//! rows, 24 bytes each, sorted in place, and the summaries.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::CustomerIdx;
use crate::ingest::{CustomerLog, Purchase, PurchaseLog};
use crate::time::DAY;

use super::ValueError;

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
    check(opts, log.baskets.is_some())?;
    let mut stats = SummaryStats { has_amounts: log.rows.iter().any(|r| r.amount.is_some()), ..Default::default() };
    let (mut rows, mut untimed) = (Vec::new(), 0);
    for r in &log.rows {
        match (r.quantity, r.time) {
            (q, _) if q < 0.0 => stats.return_rows += 1,
            (0.0, _) => stats.seen_rows += 1,
            (_, None) => untimed += 1,
            (_, Some(time)) => rows.push(Purchase {
                customer: r.customer,
                basket: r.basket.unwrap_or(u32::MAX),
                time,
                amount: r.amount.unwrap_or(f64::NAN),
            }),
        }
    }
    summarize_rows(log.customers.len(), rows, untimed, stats, opts)
}

/// The timed purchase rows of `log` (quantity above 0) as [`Purchase`]s: what the
/// summaries, the holdout's actuals and the churn choice count.
pub fn purchases(log: &PurchaseLog) -> Vec<Purchase> {
    log.rows
        .iter()
        .filter(|r| r.quantity > 0.0)
        .filter_map(|r| {
            Some(Purchase {
                customer: r.customer,
                basket: r.basket.unwrap_or(u32::MAX),
                time: r.time?,
                amount: r.amount.unwrap_or(f64::NAN),
            })
        })
        .collect()
}

/// [`summarize`] of timed purchase rows (`rows` of `customers` customers; taken, sorted and
/// freed), with `has_baskets` saying whether the rows carry baskets.
pub fn summarize_purchases(
    customers: usize,
    rows: Vec<Purchase>,
    has_baskets: bool,
    opts: &SummaryOptions,
) -> Result<(Vec<CustomerSummary>, SummaryStats), ValueError> {
    check(opts, has_baskets)?;
    let stats = SummaryStats { has_amounts: rows.iter().any(|r| !r.amount.is_nan()), ..Default::default() };
    summarize_rows(customers, rows, 0, stats, opts)
}

/// [`summarize`] of a [`CustomerLog`], the purchase rows alone (taken from `log`, and freed
/// when done): what `cobuy customers` reads when it needs no other column.
pub fn summarize_log(
    log: &mut CustomerLog,
    opts: &SummaryOptions,
) -> Result<(Vec<CustomerSummary>, SummaryStats), ValueError> {
    check(opts, log.has_baskets)?;
    let stats = SummaryStats {
        has_amounts: log.has_amounts,
        return_rows: log.returns,
        seen_rows: log.seen,
        ..Default::default()
    };
    summarize_rows(log.customers.len(), std::mem::take(&mut log.purchases), log.untimed, stats, opts)
}

fn check(opts: &SummaryOptions, has_baskets: bool) -> Result<(), ValueError> {
    if !(opts.unit_seconds.is_finite() && opts.unit_seconds > 0.0) {
        return Err(ValueError::Options(format!("the time unit must be positive, got {} seconds", opts.unit_seconds)));
    }
    if opts.occasion == Occasion::Basket && !has_baskets {
        return Err(ValueError::Options("purchases counted by basket need a basket column".into()));
    }
    Ok(())
}

/// Summarises `customers` customers from their timed purchase rows `rows` (`amount` NaN
/// without one; `untimed` rows had no time). The rows are sorted in place by customer, then
/// occasion, time and amount, so each customer's sums are taken in an order fixed by the
/// values, and customers are summarised in parallel.
fn summarize_rows(
    customers: usize,
    mut rows: Vec<Purchase>,
    untimed: u64,
    mut stats: SummaryStats,
    opts: &SummaryOptions,
) -> Result<(Vec<CustomerSummary>, SummaryStats), ValueError> {
    if rows.is_empty() && untimed == 0 {
        return Err(ValueError::NoPurchases);
    }
    if untimed > 0 {
        return Err(ValueError::NoTimes);
    }
    let by_day = opts.occasion == Occasion::Day;
    let key_time = |t: i64| key_time(opts.occasion, t);
    let kept = kept(opts);
    let mut end_time = i64::MIN;
    rows.retain_mut(|r| {
        if !kept(r.time) {
            stats.after_until_rows += 1;
            return false;
        }
        r.time = key_time(r.time);
        end_time = end_time.max(r.time);
        if r.amount <= 0.0 {
            stats.nonpositive_amount_rows += 1;
        }
        true
    });
    stats.purchase_rows = rows.len() as u64;
    if rows.is_empty() {
        return Err(ValueError::NoPurchases);
    }
    let end = opts.until.map(key_time).unwrap_or(end_time);
    // An occasion: the day (whose start `time` now is), or the basket.
    let key = |r: &Purchase| if by_day { r.time } else { i64::from(r.basket) };
    rows.par_sort_unstable_by(|a, b| {
        (a.customer.0.cmp(&b.customer.0))
            .then(key(a).cmp(&key(b)))
            .then(a.time.cmp(&b.time))
            .then(a.amount.total_cmp(&b.amount))
    });
    let mut starts: Vec<usize> =
        (0..rows.len()).filter(|&i| i == 0 || rows[i].customer != rows[i - 1].customer).collect();
    starts.push(rows.len());
    let unit = opts.unit_seconds;
    let out: Vec<CustomerSummary> = starts
        .par_windows(2)
        .with_min_len(1_024)
        .map_init(Vec::new, |occasions: &mut Vec<(i64, f64)>, w| {
            let mine = &rows[w[0]..w[1]];
            occasions.clear();
            let mut revenue = 0.0;
            for (i, r) in mine.iter().enumerate() {
                let value = if r.amount > 0.0 { r.amount } else { 0.0 };
                revenue += value;
                if i > 0 && key(&mine[i - 1]) == key(r) {
                    occasions.last_mut().expect("an occasion").1 += value;
                } else {
                    occasions.push((r.time, value));
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
            CustomerSummary {
                customer: mine[0].customer,
                x: (occasions.len() - 1) as f64,
                t_x: (last - first) as f64 / unit,
                t: (end.max(last) - first) as f64 / unit,
                first,
                last,
                revenue,
                spend_n,
                spend_mean: if spend_n > 0 { spend_sum / f64::from(spend_n) } else { 0.0 },
            }
        })
        .collect();
    stats.customers = out.len() as u64;
    stats.customers_without_purchases = customers as u64 - stats.customers;
    stats.repeat_customers = out.iter().filter(|s| s.x > 0.0).count() as u64;
    Ok((out, stats))
}
