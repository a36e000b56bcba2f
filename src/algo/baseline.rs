//! The baselines every model must beat, and that fill what a model cannot score:
//! popularity (items by number of buyers) and buy-again (the customer's own items by
//! weight, times how often each item is bought again).

use super::{Query, Reason};
use crate::matrix::{Csr, Interactions};

/// Per item, how much a past purchase predicts another: the square root of the share of
/// its buyers who bought it more than once (a count of at least 2), smoothed toward 1/2 by
/// one pseudo-buyer each way so that items with a single buyer are neither certain repeats
/// nor never. The root damps the item's part against the customer's own count and
/// recency: on two validation windows of The Complete Journey before its test weeks
/// (4 weeks each), NDCG@10 on all items rose from 0.4116 / 0.4880 (the share itself) to
/// 0.4154 / 0.4910, and shrinking the share toward the overall repeat share instead did
/// not help (0.4121 / 0.4883).
///
/// With purchase times, each rate is multiplied by the item's [season](SEASON_DAYS).
pub(crate) fn repeat_rates(data: &Interactions, buyers: &[u32], reference: Option<i64>) -> Vec<f32> {
    let counts = data.counts();
    let mut repeaters = vec![0u32; counts.cols()];
    for (&j, &c) in counts.indices().iter().zip(counts.data()) {
        if c >= 2.0 {
            repeaters[j as usize] += 1;
        }
    }
    let season = season(data, reference);
    repeaters
        .iter()
        .zip(buyers)
        .enumerate()
        .map(|(j, (&r, &b))| {
            let rate = ((f64::from(r) + 1.0) / (f64::from(b) + 2.0)).sqrt();
            (rate * season.as_ref().map_or(1.0, |s| s[j])) as f32
        })
        .collect()
}

/// The window of an item's season, in days before the reference time.
///
/// An item's season is how much more of its buyers bought it in the last `SEASON_DAYS`
/// than of all items' buyers: ((recent + 1) / (buyers x overall recent share + 1))^(1/4),
/// one pseudo-buyer each way. Groceries sell by season (turkey in November); a household's
/// own count and recency cannot see that the whole shop has started buying an item again.
/// On two validation windows of The Complete Journey before its test weeks, buy-again's
/// NDCG@10 rose from 0.4334 / 0.5017 to 0.4364 / 0.5030, and its blend with EASE from
/// 0.4355 / 0.5064 to 0.4376 / 0.5072 (windows of 7 and 21 days gained alike; a power of
/// 1/2 did not help more).
pub(crate) const SEASON_DAYS: i64 = 14;

/// Per item, its season factor (see [`SEASON_DAYS`]), or `None` without purchase times.
fn season(data: &Interactions, reference: Option<i64>) -> Option<Vec<f64>> {
    let (times, t0) = (data.last_time()?, reference?);
    let counts = data.counts();
    let since = t0.saturating_sub(SEASON_DAYS * crate::time::DAY);
    let (mut recent, mut buyers) = (vec![0u32; counts.cols()], vec![0u32; counts.cols()]);
    for ((&j, &c), &t) in counts.indices().iter().zip(counts.data()).zip(times) {
        if c > 0.0 {
            buyers[j as usize] += 1;
            recent[j as usize] += u32::from(t != i64::MIN && t >= since);
        }
    }
    let share =
        recent.iter().map(|&r| f64::from(r)).sum::<f64>() / buyers.iter().map(|&b| f64::from(b)).sum::<f64>().max(1.0);
    Some(
        recent
            .iter()
            .zip(&buyers)
            .map(|(&r, &b)| ((f64::from(r) + 1.0) / (f64::from(b) * share + 1.0)).powf(0.25))
            .collect(),
    )
}

/// Buyers per item, from the weighted matrix's structure.
pub(crate) fn buyers(weighted: &Csr) -> Vec<u32> {
    let mut buyers = vec![0u32; weighted.cols()];
    for &j in weighted.indices() {
        buyers[j as usize] += 1;
    }
    buyers
}

/// The items anyone bought, by number of buyers descending, then by index.
pub(crate) fn popularity_order(buyers: &[u32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..buyers.len() as u32).filter(|&j| buyers[j as usize] > 0).collect();
    order.sort_by_key(|&j| (std::cmp::Reverse(buyers[j as usize]), j));
    order
}

/// Scores the customer's own items: weight times the item's repeat rate.
pub(crate) fn buy_again(repeat: &[f32], q: &Query<'_>, acc: &mut [f32], touched: &mut Vec<u32>) {
    for (&j, &w) in q.items.iter().zip(q.weights) {
        acc[j as usize] = w * repeat[j as usize];
        touched.push(j);
    }
}

/// The customer's count and last purchase of item `j`.
pub(crate) fn explain_buy_again(q: &Query<'_>, j: u32) -> Reason {
    let k = q.items.binary_search(&j).unwrap_or(0);
    Reason::BoughtBefore {
        count: q.counts.get(k).copied().unwrap_or(0.0),
        last: q.last_time.and_then(|t| t.get(k).copied()).filter(|&t| t != i64::MIN),
    }
}
