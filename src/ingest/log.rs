//! The accepted rows of a purchases file, unmerged: what a split by time, basket or
//! chance needs, and what each part's [`Interactions`] are built from.

use crate::ids::{CustomerIdx, IdTable, Interner, ItemIdx};
use crate::matrix::{Interactions, InteractionsBuilder, MergeStats, TooManyIds};

use super::{Bought, RowSink};

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

/// Collects rows with ids in arrival order; [`LogBuilder::finish`] renumbers them.
#[derive(Debug, Default)]
pub(super) struct LogBuilder {
    customers: Interner,
    items: Interner,
    baskets: Interner,
    has_basket: bool,
    rows: Vec<LogRow>,
}

impl LogBuilder {
    fn push(&mut self, customer: &str, item: &str, quantity: f64, rest: Option<Bought<'_>>) -> Result<(), TooManyIds> {
        let c = self.customers.intern(customer).ok_or(TooManyIds("customer"))?;
        let i = self.items.intern(item).ok_or(TooManyIds("item"))?;
        let (amount, time, basket) = match rest {
            Some(r) => {
                let basket = match r.basket {
                    Some(b) => Some(self.baskets.intern(b).ok_or(TooManyIds("basket"))?),
                    None => None,
                };
                (r.amount, r.time, basket)
            }
            None => (None, None, None),
        };
        self.rows.push(LogRow { customer: CustomerIdx(c), item: ItemIdx(i), quantity, amount, time, basket });
        Ok(())
    }

    pub(super) fn finish(self) -> PurchaseLog {
        let LogBuilder { customers, items, baskets, has_basket, mut rows } = self;
        let (customers, cmap) = customers.finish();
        let (items, imap) = items.finish();
        let (baskets, bmap) = baskets.finish();
        for r in &mut rows {
            r.customer = CustomerIdx(cmap[r.customer.get()]);
            r.item = ItemIdx(imap[r.item.get()]);
            r.basket = r.basket.map(|b| bmap[b as usize]);
        }
        PurchaseLog { customers, items, baskets: has_basket.then_some(baskets), rows }
    }
}

impl RowSink for LogBuilder {
    fn bought(&mut self, r: Bought<'_>) -> Result<(), TooManyIds> {
        self.has_basket |= r.basket.is_some();
        let (customer, item, quantity) = (r.customer, r.item, r.quantity);
        self.push(customer, item, quantity, Some(r))
    }

    fn seen(&mut self, customer: &str, item: &str) -> Result<(), TooManyIds> {
        self.push(customer, item, 0.0, None)
    }

    fn baskets(&self) -> Option<u64> {
        Some(self.baskets.len() as u64)
    }
}
