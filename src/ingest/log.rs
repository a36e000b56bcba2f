//! The accepted rows of a purchases file, unmerged: what a split by time, basket or
//! chance needs, and what each part's [`Interactions`] are built from.

use std::collections::BinaryHeap;
use std::path::Path;

use crate::ids::{CustomerIdx, IdTable, Interner, ItemIdx};
use crate::matrix::{Interactions, InteractionsBuilder, MergeStats, TooManyIds};

use super::delimited::display_name;
use super::{Bought, IngestError, IngestOptions, IngestSummary, RowSink};

/// One accepted row of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRow {
    /// The customer.
    pub customer: CustomerIdx,
    /// The item.
    pub item: ItemIdx,
    /// Above 0 a purchase, below 0 a return, 0 a "seen" mark (a rating below the
    /// threshold).
    pub quantity: f64,
    /// Amount paid, when the file has amounts or prices.
    pub amount: Option<f64>,
    /// Purchase time, when the file has times (returns keep theirs too).
    pub time: Option<i64>,
    /// Index into [`PurchaseLog::baskets`], when the file has a basket column.
    pub basket: Option<u32>,
}

/// Every accepted row, in file order, over id tables in natural order (as
/// [`Interactions`] uses them).
#[derive(Debug, Clone)]
pub struct PurchaseLog {
    /// Customer ids.
    pub customers: IdTable,
    /// Item ids.
    pub items: IdTable,
    /// Basket ids, when the file has a basket column.
    pub baskets: Option<IdTable>,
    /// The rows.
    pub rows: Vec<LogRow>,
}

impl PurchaseLog {
    /// The merged interactions of the rows marked in `keep` (one flag per row), over the
    /// whole log's customer and item tables, so that indices agree between the parts of a
    /// split.
    pub fn interactions(&self, keep: &[bool]) -> (Interactions, MergeStats) {
        let mut b = InteractionsBuilder::with_ids(&self.customers, &self.items);
        for (r, _) in self.rows.iter().zip(keep).filter(|(_, k)| **k) {
            if r.quantity == 0.0 {
                b.seen_at(r.customer, r.item);
            } else {
                b.purchase_at(r.customer, r.item, r.quantity, r.amount, r.time);
            }
        }
        b.finish()
    }

    /// The time range of the rows that have one.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let mut times = self.rows.iter().filter_map(|r| r.time);
        let first = times.next()?;
        Some(times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t))))
    }
}

/// Which customers' rows a sampled read keeps: those of the `max` customers with a
/// purchase row whose `rank` (of the id) is lowest, and possibly a few more (ties, and
/// whoever is not yet known to rank too high), so that the caller can trim to the exact
/// sample, the lowest `max` by rank then natural id order, as it would on the whole log.
#[derive(Debug, Clone, Copy)]
pub struct CustomerSample {
    /// Customers with a purchase row kept at least.
    pub max: usize,
    /// The customer's rank, from the id alone (a seeded hash).
    pub rank: fn(&str) -> u64,
}

/// Merges every row, and keeps every row unmerged too, or with a [`CustomerSample`] only
/// the rows of its candidates: a row is kept while its customer's rank is at most the
/// `max`-th lowest rank among the customers with a purchase row so far. That bound only
/// falls, so every row of the final sample is kept, and memory holds the merged pairs and
/// about the sample's rows, not every row of the file.
pub(super) struct LogBuilder {
    merged: InteractionsBuilder,
    sample: Option<CustomerSample>,
    /// Per customer arrival index: its rank, and whether it has a purchase row yet.
    ranks: Vec<(u64, bool)>,
    /// The `max` lowest ranks of the customers with a purchase row so far.
    lowest: BinaryHeap<u64>,
    with_purchases: u64,
    /// Per basket arrival index (of the reader's basket ids), whether a row kept it when
    /// it came: the log's basket table holds those.
    kept_baskets: Vec<bool>,
    has_basket: bool,
    /// Kept rows, by arrival indices.
    rows: Vec<LogRow>,
    /// Rows whose customers rank too high are dropped when `rows` reaches this...
    compact_at: usize,
    /// ...which is then twice the rows left, and at least this.
    compact_floor: usize,
}

impl LogBuilder {
    pub(super) fn new(sample: Option<CustomerSample>) -> Self {
        LogBuilder {
            merged: InteractionsBuilder::new(),
            sample,
            ranks: Vec::new(),
            lowest: BinaryHeap::new(),
            with_purchases: 0,
            kept_baskets: Vec::new(),
            has_basket: false,
            rows: Vec::new(),
            compact_at: 1 << 20,
            compact_floor: 1 << 20,
        }
    }

    /// The highest rank still kept (every rank while fewer than `max` customers bought).
    fn bound(&self) -> u64 {
        match (self.sample, self.lowest.peek()) {
            (Some(s), Some(&top)) if self.lowest.len() >= s.max => top,
            _ => u64::MAX,
        }
    }

    /// Drops the kept rows of customers that now rank too high.
    fn compact(&mut self) {
        let bound = self.bound();
        if bound < u64::MAX {
            let ranks = &self.ranks;
            self.rows.retain(|r| ranks[r.customer.get()].0 <= bound);
        }
    }

    fn push(&mut self, c: CustomerIdx, i: ItemIdx, quantity: f64, rest: Option<Bought>) {
        let (amount, time) = rest.as_ref().map_or((None, None), |r| (r.amount, r.time));
        match rest {
            Some(_) => self.merged.purchase_at(c, i, quantity, amount, time),
            None => self.merged.seen_at(c, i),
        }
        if let Some(sample) = self.sample {
            let (rank, bought) = &mut self.ranks[c.get()];
            let rank = *rank;
            if quantity > 0.0 && !*bought {
                *bought = true;
                self.with_purchases += 1;
                if self.lowest.len() < sample.max {
                    self.lowest.push(rank);
                } else if self.lowest.peek().is_some_and(|&top| rank < top) {
                    self.lowest.pop();
                    self.lowest.push(rank);
                }
            }
            if rank > self.bound() {
                return;
            }
        }
        let basket = rest.and_then(|r| r.basket);
        if let Some(b) = basket {
            let b = b as usize;
            if b >= self.kept_baskets.len() {
                self.kept_baskets.resize(b + 1, false);
            }
            self.kept_baskets[b] = true;
        }
        self.rows.push(LogRow { customer: c, item: i, quantity, amount, time, basket });
        if self.sample.is_some() && self.rows.len() >= self.compact_at {
            self.compact();
            self.compact_at = (2 * self.rows.len()).max(self.compact_floor);
        }
    }

    /// The merge of every row, the kept rows (in file order) over the merge's id tables,
    /// and, with a sample, the number of customers with a purchase row. `baskets` are the
    /// reader's basket ids, by the arrival indices the rows carry.
    pub(super) fn finish(mut self, baskets: Interner) -> (PurchaseLog, Interactions, MergeStats, Option<u64>) {
        self.compact();
        let sampled_from = self.sample.map(|_| self.with_purchases);
        let LogBuilder { merged, has_basket, kept_baskets, mut rows, .. } = self;
        let (merged, stats, cmap, imap) = merged.finish_with_maps();
        // The baskets rows kept when they came (every one, without a sample).
        let mut kept = Interner::default();
        let mut bmap = vec![u32::MAX; kept_baskets.len()];
        for (b, _) in kept_baskets.iter().enumerate().filter(|k| *k.1) {
            bmap[b] = kept.intern(baskets.id(b as u32)).expect("fewer kept baskets than baskets");
        }
        let (baskets, final_index) = kept.finish();
        for r in &mut rows {
            r.customer = CustomerIdx(cmap[r.customer.get()]);
            r.item = ItemIdx(imap[r.item.get()]);
            r.basket = r.basket.map(|b| final_index[bmap[b as usize] as usize]);
        }
        let log = PurchaseLog {
            customers: merged.customers().clone(),
            items: merged.items().clone(),
            baskets: has_basket.then_some(baskets),
            rows,
        };
        (log, merged, stats, sampled_from)
    }
}

impl RowSink for LogBuilder {
    /// New customers get their rank from their id.
    fn intern(&mut self, customers: &Interner, items: &Interner) -> Result<(Vec<u32>, Vec<u32>), TooManyIds> {
        let (cmap, imap) = self.merged.intern_all(customers, items)?;
        if let Some(sample) = self.sample {
            for (k, &c) in cmap.iter().enumerate() {
                if c as usize == self.ranks.len() {
                    self.ranks.push(((sample.rank)(customers.id(k as u32)), false));
                }
            }
        }
        Ok((cmap, imap))
    }

    fn ids(&self) -> (&Interner, &Interner) {
        self.merged.interners()
    }

    fn bought(&mut self, r: Bought) {
        self.has_basket |= r.basket.is_some();
        let (customer, item, quantity) = (r.customer, r.item, r.quantity);
        self.push(customer, item, quantity, Some(r))
    }

    fn seen(&mut self, customer: CustomerIdx, item: ItemIdx) {
        self.push(customer, item, 0.0, None)
    }

    /// Every row is merged; the kept rows are every row without a sample.
    fn reserve(&mut self, rows: usize) {
        self.merged.reserve_rows(rows);
        if self.sample.is_none() {
            self.rows.reserve_exact(rows.saturating_sub(self.rows.len()));
        }
    }
}

/// One purchase row (quantity above 0) as customer value reads it: 24 bytes, no item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    /// The customer (an index into [`CustomerLog::customers`]).
    pub customer: CustomerIdx,
    /// The basket, an index into the natural order of the file's basket ids
    /// ([`PurchaseLog::baskets`]' numbering); `u32::MAX` without one.
    pub basket: u32,
    /// Purchase time (unix seconds).
    pub time: i64,
    /// Amount paid; NaN without one.
    pub amount: f64,
}

/// The purchase rows of a file and no more: what per-customer summaries need, read without
/// the item ids, the merge or the unmerged rows' other fields that [`PurchaseLog`] keeps,
/// so that memory is the customer ids and 24 bytes a purchase row.
#[derive(Debug, Clone, Default)]
pub struct CustomerLog {
    /// Customer ids (of every accepted row, as [`PurchaseLog::customers`]).
    pub customers: IdTable,
    /// Whether the file has a basket column.
    pub has_baskets: bool,
    /// The purchase rows with a time, in file order.
    pub purchases: Vec<Purchase>,
    /// Purchase rows without a time (not in `purchases`).
    pub untimed: u64,
    /// Rows with a negative quantity (returns).
    pub returns: u64,
    /// Rows with a zero quantity ("seen" marks).
    pub seen: u64,
    /// Whether any purchase or return row has an amount.
    pub has_amounts: bool,
}

/// Builds a [`CustomerLog`]: the rows' customers by arrival index until `finish`.
#[derive(Default)]
pub(super) struct CustomerLogBuilder {
    customers: Interner,
    /// Items are interned only because the reader resolves them; never kept in the result.
    items: Interner,
    log: CustomerLog,
}

impl CustomerLogBuilder {
    /// The log with customers (and baskets) renumbered in natural id order; `baskets` are the
    /// reader's basket ids, by the arrival indices the rows carry.
    pub(super) fn finish(self, baskets: Interner) -> CustomerLog {
        use rayon::prelude::*;
        let CustomerLogBuilder { customers, mut log, .. } = self;
        let (customers, cmap) = customers.finish();
        let (_, bmap) = baskets.finish();
        log.purchases.par_iter_mut().with_min_len(1 << 16).for_each(|p| {
            p.customer = CustomerIdx(cmap[p.customer.get()]);
            if p.basket != u32::MAX {
                p.basket = bmap[p.basket as usize];
            }
        });
        log.customers = customers;
        log
    }
}

/// Reads a purchases file's purchase rows for customer value, with the validation, row
/// buckets, rejects and errors of [`super::read_log`]. The summary has no merge figures, and
/// counts as customers with purchases those with a purchase row (returns are not netted).
pub fn read_customer_log(
    path: impl AsRef<Path>,
    opts: &IngestOptions,
) -> Result<(CustomerLog, IngestSummary), IngestError> {
    let path = path.as_ref();
    let mut sink = CustomerLogBuilder::default();
    let (mut sum, baskets) = super::read_rows(path, opts, &mut |_| {}, &mut sink)?;
    sum.items = sink.items.len() as u64;
    let log = sink.finish(baskets);
    sum.customers = log.customers.len() as u64;
    let mut with_purchase = vec![false; log.customers.len()];
    for p in &log.purchases {
        with_purchase[p.customer.get()] = true;
    }
    sum.customers_with_purchases = with_purchase.iter().filter(|b| **b).count() as u64;
    if sum.customers_with_purchases == 0 && log.untimed == 0 {
        return Err(IngestError::NothingKept {
            path: display_name(path),
            rows: sum.rows_read,
            detail: super::summary_breakdown(&sum),
        });
    }
    Ok((log, sum))
}

impl RowSink for CustomerLogBuilder {
    fn intern(&mut self, customers: &Interner, items: &Interner) -> Result<(Vec<u32>, Vec<u32>), TooManyIds> {
        let c = self.customers.intern_all(customers).ok_or(TooManyIds("customer"))?;
        let i = self.items.intern_all(items).ok_or(TooManyIds("item"))?;
        Ok((c, i))
    }

    fn ids(&self) -> (&Interner, &Interner) {
        (&self.customers, &self.items)
    }

    fn bought(&mut self, r: Bought) {
        let log = &mut self.log;
        log.has_baskets |= r.basket.is_some();
        log.has_amounts |= r.amount.is_some();
        if r.quantity < 0.0 {
            log.returns += 1;
            return;
        }
        let Some(time) = r.time else {
            log.untimed += 1;
            return;
        };
        let basket = r.basket.unwrap_or(u32::MAX);
        log.purchases.push(Purchase { customer: r.customer, basket, time, amount: r.amount.unwrap_or(f64::NAN) });
    }

    fn seen(&mut self, _: CustomerIdx, _: ItemIdx) {
        self.log.seen += 1;
    }

    fn reserve(&mut self, rows: usize) {
        let p = &mut self.log.purchases;
        p.reserve_exact(rows.saturating_sub(p.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct ranks for `c0` to `c39`; anyone else ranks last.
    fn rank(id: &str) -> u64 {
        id.strip_prefix('c').and_then(|n| n.parse::<u64>().ok()).map_or(u64::MAX, |n| n * 7919 % 1009)
    }

    /// Feeds one row as the reader does: its ids interned first.
    fn bought(b: &mut LogBuilder, customer: &str, item: &str, quantity: f64) {
        let (mut c, mut i) = (Interner::default(), Interner::default());
        c.intern(customer);
        i.intern(item);
        let (cmap, imap) = b.intern(&c, &i).unwrap();
        let (customer, item) = (CustomerIdx(cmap[0]), ItemIdx(imap[0]));
        b.bought(Bought { customer, item, quantity, amount: None, time: Some(1), basket: None });
    }

    #[test]
    fn dropping_rows_while_reading_keeps_every_row_of_the_final_sample() {
        let ids: Vec<String> = (0..40).map(|c| format!("c{c}")).collect();
        let mut b = LogBuilder::new(Some(CustomerSample { max: 5, rank }));
        (b.compact_at, b.compact_floor) = (8, 8);
        // Customers in turn, three rows each, and a customer with a return only: the bound
        // falls as customers arrive, and rows are dropped many times on the way.
        let mut fed = Vec::new();
        for round in 0..3 {
            for (c, id) in ids.iter().enumerate() {
                let item = format!("i{}", (c + round) % 7);
                bought(&mut b, id, &item, 1.0);
                fed.push((id.clone(), item));
            }
        }
        bought(&mut b, "returner", "i1", -1.0);
        assert!(b.rows.len() < fed.len(), "{} rows held", b.rows.len());
        let (log, merged, _, sampled_from) = b.finish(Interner::default());
        assert_eq!(sampled_from, Some(40));
        // The merge holds every purchase of the file, and the return as seen.
        assert_eq!(merged.counts().data().iter().sum::<f32>(), 120.0);
        assert_eq!(merged.seen_only_pairs(), 1);
        // The oracle: the five lowest ranks, all their rows in the order fed.
        let mut by_rank: Vec<&String> = ids.iter().collect();
        by_rank.sort_by_key(|id| rank(id));
        let sample = &by_rank[..5];
        let want: Vec<(String, String)> = fed.iter().filter(|(c, _)| sample.contains(&c)).cloned().collect();
        let got: Vec<(String, String)> = log
            .rows
            .iter()
            .map(|r| (log.customers.id(r.customer.0).to_string(), log.items.id(r.item.0).to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(log.customers.len(), 41, "the id tables are the whole file's");
    }
}
