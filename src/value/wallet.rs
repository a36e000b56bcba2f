//! Share of wallet: where a customer probably buys elsewhere. Customers are put in value
//! bands (tenths of past revenue, ties together); in each band and category, the share of
//! the band's customers who buy there and the median spend of those who do say what a
//! customer of that size spends in the category. A customer whose band mostly buys in a
//! category (at least `min_share` of it) but who spent less than `max_own` of the band's
//! median there has a gap: the median less their spend.
//!
//! Bands rather than similar customers: a band is a counting pass over the rows and a sort
//! per band and category, linear in the rows at a million customers, and it is evidence
//! the collaborative scores of cross-sell do not already hold (they come from similar
//! customers). The band is by revenue here, which a customer buying elsewhere lowers, so a
//! gap is a lower bound.
//!
//! The result is a function of the rows, not of their order or the thread count: spends
//! are summed after sorting by value.

use rayon::prelude::*;

use crate::ids::CustomerIdx;
use crate::ingest::PurchaseLog;

use super::ValueError;
use super::score::quantile_bands;

/// How to find gaps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WalletParams {
    /// Value bands (tenths by default), 1 to 100.
    pub bands: u8,
    /// A category counts for a band when at least this share of the band buys there.
    pub min_share: f64,
    /// A customer has a gap when they spent less than this share of the band's median.
    pub max_own: f64,
    /// A band's category needs at least this many buyers for a median.
    pub min_buyers: u32,
}

impl Default for WalletParams {
    fn default() -> Self {
        WalletParams { bands: 10, min_share: 0.5, max_own: 0.5, min_buyers: 5 }
    }
}

impl WalletParams {
    /// Bands 1 to 100, shares from 0 to 1 (`min_share` above 0).
    pub fn check(&self) -> Result<(), ValueError> {
        if !(1..=100).contains(&self.bands) {
            return Err(ValueError::Options(format!("wallet bands must be 1 to 100, got {}", self.bands)));
        }
        if !(self.min_share > 0.0 && self.min_share <= 1.0 && (0.0..=1.0).contains(&self.max_own)) {
            return Err(ValueError::Options(format!(
                "wallet shares must be from 0 to 1 (the band's share above 0), got {} and {}",
                self.min_share, self.max_own
            )));
        }
        Ok(())
    }
}

/// A band's evidence for one category.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peers {
    /// The band's customers who bought in the category.
    pub buyers: u32,
    /// Their median spend there (the mean of the two middle ones for an even count).
    pub median: f64,
}

/// One value band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Customers in it.
    pub customers: u32,
    /// Their lowest and highest revenue.
    pub low: f64,
    /// See `low`.
    pub high: f64,
}

/// A customer's gap in a category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// The category.
    pub category: u32,
    /// The customer's band (0: the lowest revenue).
    pub band: u8,
    /// What the customer spent there.
    pub spend: f64,
    /// The band's share buying there, 0 to 1.
    pub peer_share: f64,
    /// The band's buyers' median spend there.
    pub peer_median: f64,
    /// `peer_median - spend`.
    pub gap: f64,
}

/// What the rows gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalletStats {
    /// Purchase rows with a positive amount, in the observation.
    pub rows: u64,
    /// ...of which of items without a category (in revenue, not in any category).
    pub rows_without_category: u64,
    /// Purchase rows with an amount of 0 or less, or none: left out.
    pub rows_without_amount: u64,
    /// Purchase rows after the end of the observation.
    pub rows_after_end: u64,
}

/// Spend per customer and category, and each band's peers.
#[derive(Debug, Clone)]
pub struct Wallet {
    params: WalletParams,
    categories: usize,
    /// Per customer index: its band, `None` without a purchase.
    band: Vec<Option<u8>>,
    bands: Vec<Band>,
    /// Customer `c`'s (category, spend), sorted by category, at `start[c]..start[c + 1]`.
    start: Vec<usize>,
    spend: Vec<(u32, f64)>,
    /// `bands x categories`.
    peers: Vec<Peers>,
    /// Per band, the categories that count for it (ascending).
    common: Vec<Vec<u32>>,
    /// What the rows gave.
    pub stats: WalletStats,
}

impl Wallet {
    /// Spend per customer and category from the purchase rows (quantity above 0) with a
    /// positive amount that `kept` keeps (by time), `category` giving each log item's
    /// category (one of `categories`). Errors: no amounts, none positive, bad parameters.
    pub fn new(
        log: &PurchaseLog,
        category: &[Option<u32>],
        categories: usize,
        kept: &(dyn Fn(i64) -> bool + Sync),
        params: WalletParams,
    ) -> Result<Wallet, ValueError> {
        params.check()?;
        if !log.rows.iter().any(|r| r.amount.is_some()) {
            return Err(ValueError::Options(
                "share of wallet needs amounts: give the amount or price column (--amount-col, --price-col)".into(),
            ));
        }
        let n = log.customers.len();
        let mut stats = WalletStats::default();
        let mut bought = vec![false; n];
        // (customer, category or u32::MAX, amount) per purchase row with a positive amount.
        let mut rows: Vec<(u32, u32, f64)> = Vec::new();
        for r in log.rows.iter().filter(|r| r.quantity > 0.0) {
            if r.time.is_some_and(|t| !kept(t)) {
                stats.rows_after_end += 1;
                continue;
            }
            bought[r.customer.get()] = true;
            match r.amount {
                Some(a) if a > 0.0 => {
                    stats.rows += 1;
                    let g = category.get(r.item.get()).copied().flatten();
                    stats.rows_without_category += u64::from(g.is_none());
                    rows.push((r.customer.0, g.unwrap_or(u32::MAX), a));
                }
                _ => stats.rows_without_amount += 1,
            }
        }
        if stats.rows == 0 {
            return Err(ValueError::Options("share of wallet needs purchases with an amount above 0".into()));
        }
        rows.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2)));
        // Revenue per customer, and spend per (customer, category), summed in sorted order.
        let mut revenue = vec![0.0f64; n];
        let mut start = vec![0usize; n + 1];
        let mut spend: Vec<(u32, f64)> = Vec::new();
        let mut prev: Option<(u32, u32)> = None;
        for &(c, g, a) in &rows {
            revenue[c as usize] += a;
            if g == u32::MAX {
                continue;
            }
            if prev == Some((c, g)) {
                spend.last_mut().expect("a pair").1 += a;
            } else {
                spend.push((g, a));
                start[c as usize + 1] += 1;
                prev = Some((c, g));
            }
        }
        drop(rows);
        for c in 0..n {
            start[c + 1] += start[c];
        }
        // Bands over the customers with a purchase.
        let with: Vec<usize> = (0..n).filter(|&c| bought[c]).collect();
        let ranks = quantile_bands(&with.iter().map(|&c| revenue[c]).collect::<Vec<_>>(), params.bands);
        let mut band = vec![None; n];
        let k = usize::from(params.bands);
        let mut bands = vec![Band { customers: 0, low: f64::INFINITY, high: f64::NEG_INFINITY }; k];
        for (&c, &r) in with.iter().zip(&ranks) {
            let b = r - 1;
            band[c] = Some(b);
            let x = &mut bands[usize::from(b)];
            x.customers += 1;
            x.low = x.low.min(revenue[c]);
            x.high = x.high.max(revenue[c]);
        }
        // Each band's buyers per category: spends grouped by (band, category), sorted.
        let mut by_group: Vec<(usize, f64)> = Vec::with_capacity(spend.len());
        for &c in &with {
            let b = band[c].expect("banded") as usize;
            for &(g, s) in &spend[start[c]..start[c + 1]] {
                by_group.push((b * categories + g as usize, s));
            }
        }
        by_group.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut peers = vec![Peers::default(); k * categories];
        for group in by_group.chunk_by(|a, b| a.0 == b.0) {
            let m = group.len();
            let median = if m % 2 == 1 { group[m / 2].1 } else { (group[m / 2 - 1].1 + group[m / 2].1) / 2.0 };
            peers[group[0].0] = Peers { buyers: m as u32, median };
        }
        let common = (0..k)
            .map(|b| {
                (0..categories as u32)
                    .filter(|&g| {
                        let p = peers[b * categories + g as usize];
                        p.buyers >= params.min_buyers.max(1)
                            && f64::from(p.buyers) >= params.min_share * f64::from(bands[b].customers)
                    })
                    .collect()
            })
            .collect();
        Ok(Wallet { params, categories, band, bands, start, spend, peers, common, stats })
    }

    /// The bands, lowest revenue first.
    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    /// A customer's band, `None` without a purchase.
    pub fn band(&self, c: CustomerIdx) -> Option<u8> {
        self.band.get(c.get()).copied().flatten()
    }

    /// What the customer spent in a category.
    pub fn spend(&self, c: CustomerIdx, category: u32) -> f64 {
        let mine = &self.spend[self.start[c.get()]..self.start[c.get() + 1]];
        mine.binary_search_by_key(&category, |p| p.0).map_or(0.0, |k| mine[k].1)
    }

    /// A band's evidence for a category.
    pub fn peers(&self, band: u8, category: u32) -> Peers {
        self.peers[usize::from(band) * self.categories + category as usize]
    }

    /// The customer's gap in a category, if they have one.
    pub fn gap(&self, c: CustomerIdx, category: u32) -> Option<Gap> {
        let b = self.band(c)?;
        self.common[usize::from(b)].binary_search(&category).ok()?;
        self.gap_in(c, b, category)
    }

    fn gap_in(&self, c: CustomerIdx, band: u8, category: u32) -> Option<Gap> {
        let p = self.peers(band, category);
        let spend = self.spend(c, category);
        (spend < self.params.max_own * p.median).then(|| Gap {
            category,
            band,
            spend,
            peer_share: f64::from(p.buyers) / f64::from(self.bands[usize::from(band)].customers),
            peer_median: p.median,
            gap: p.median - spend,
        })
    }

    /// Every gap of a customer, the largest first (then by category), into `out`.
    pub fn gaps(&self, c: CustomerIdx, out: &mut Vec<Gap>) {
        out.clear();
        let Some(b) = self.band(c) else { return };
        out.extend(self.common[usize::from(b)].iter().filter_map(|&g| self.gap_in(c, b, g)));
        out.sort_unstable_by(|x, y| y.gap.total_cmp(&x.gap).then(x.category.cmp(&y.category)));
    }
}
