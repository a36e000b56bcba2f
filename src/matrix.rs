//! Purchase rows in, the customer x item matrix out.
//!
//! [`InteractionsBuilder`] takes validated rows one at a time and merges repeated
//! (customer, item) pairs; [`Interactions`] is the result: the raw net purchase counts as
//! an sprs CSR matrix (customers x items, `f32`), the latest purchase time and the money
//! spent per pair, and the pairs a customer has *seen* without a purchase that counts
//! (ratings below `--min-value`, purchases fully returned). [`Weighting`] turns the raw
//! counts into the weighted matrix the recommenders use.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sprs::CsMatI;

use crate::ids::{CustomerIdx, IdTable, Interner, ItemIdx};
use crate::time::DAY;

/// The customer x item matrix type: CSR, `f32` values, `u32` column indices.
pub type Csr = CsMatI<f32, u32, usize>;

/// A set of items per customer, CSR-shaped without values (sorted, distinct per row).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowSets {
    pub(crate) indptr: Vec<usize>,
    pub(crate) indices: Vec<u32>,
}

impl RowSets {
    /// The items of one row.
    pub fn row(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r]..self.indptr[r + 1]]
    }

    /// Total number of (row, item) pairs.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
}

/// Merged purchase history: who bought what, how much, when.
#[derive(Debug, Clone)]
pub struct Interactions {
    pub(crate) customers: IdTable,
    pub(crate) items: IdTable,
    /// Net purchase count per pair (quantity, or rows when there is no quantity), all > 0.
    pub(crate) counts: Csr,
    /// Latest purchase time (unix seconds) per stored pair, aligned with `counts.data()`.
    pub(crate) last_time: Option<Vec<i64>>,
    /// Money spent per stored pair (returns netted), aligned with `counts.data()`.
    pub(crate) amount: Option<Vec<f32>>,
    /// Pairs seen but not bought (low ratings, full returns); never recommended.
    pub(crate) seen_only: RowSets,
}

impl Interactions {
    /// The customer id table.
    pub fn customers(&self) -> &IdTable {
        &self.customers
    }

    /// The item id table.
    pub fn items(&self) -> &IdTable {
        &self.items
    }

    /// Net purchase counts, customers x items.
    pub fn counts(&self) -> &Csr {
        &self.counts
    }

    /// Latest purchase time per stored pair, if the input had times.
    pub fn last_time(&self) -> Option<&[i64]> {
        self.last_time.as_deref()
    }

    /// Money spent per stored pair, if the input had prices or amounts.
    pub fn amount(&self) -> Option<&[f32]> {
        self.amount.as_deref()
    }

    /// Items the customer saw without buying (excluded from recommendations too).
    pub fn seen_only(&self, c: CustomerIdx) -> &[u32] {
        self.seen_only.row(c.get())
    }

    /// Number of (customer, item) pairs seen without a purchase.
    pub fn seen_only_pairs(&self) -> usize {
        self.seen_only.nnz()
    }

    /// Items the customer bought, with their net counts.
    pub fn purchases(&self, c: CustomerIdx) -> (&[u32], &[f32]) {
        let r = self.counts.indptr().outer_inds_sz(c.get());
        (&self.counts.indices()[r.clone()], &self.counts.data()[r])
    }

    /// The latest purchase time of each item in [`Interactions::purchases`], if the input had
    /// times.
    pub fn purchase_times(&self, c: CustomerIdx) -> Option<&[i64]> {
        let r = self.counts.indptr().outer_inds_sz(c.get());
        self.last_time.as_deref().map(|t| &t[r])
    }

    /// The newest purchase time in the data, if there are times.
    pub fn newest_time(&self) -> Option<i64> {
        self.last_time.as_ref()?.iter().copied().max()
    }

    /// The time a decaying weighting counts ages back from: the newest purchase that is not
    /// an outlier of the log's bulk of purchase times ([`crate::time::Bulk`], over each
    /// pair's latest purchase). On a clean log this is exactly [`Interactions::newest_time`];
    /// a few purchases dated far in the future (9999-12-31) stay in the data, at full
    /// weight, but cannot make every other purchase look centuries old. (A pair whose
    /// latest row is such an outlier drops out of the choice whole: its earlier rows are
    /// merged away by then.)
    pub fn decay_reference(&self) -> Option<i64> {
        let times = self.last_time.as_deref()?.iter().copied().filter(|&t| t != i64::MIN);
        match crate::time::Bulk::of_times(times.clone()) {
            Some(bulk) => times.filter(|&t| t <= bulk.to).max(),
            None => times.max(),
        }
    }

    /// Number of customers with at least one purchase left after netting.
    pub fn customers_with_purchases(&self) -> usize {
        self.counts.proper_indptr().windows(2).filter(|w| w[1] > w[0]).count()
    }

    /// The customer's index, by external id.
    pub fn customer(&self, id: &str) -> Option<CustomerIdx> {
        self.customers.index_of(id).map(CustomerIdx)
    }

    /// The item's index, by external id.
    pub fn item(&self, id: &str) -> Option<ItemIdx> {
        self.items.index_of(id).map(ItemIdx)
    }

    /// Reassembles interactions from stored parts, checking every structural invariant
    /// so that a damaged model file is an error instead of a panic or a wrong answer.
    pub(crate) fn from_parts(
        customers: IdTable,
        items: IdTable,
        (indptr, indices, counts): (Vec<usize>, Vec<u32>, Vec<f32>),
        last_time: Option<Vec<i64>>,
        amount: Option<Vec<f32>>,
        seen_only: RowSets,
    ) -> Result<Self, String> {
        let shape = (customers.len(), items.len());
        let nnz = counts.len();
        if last_time.as_ref().is_some_and(|t| t.len() != nnz) || amount.as_ref().is_some_and(|a| a.len() != nnz) {
            return Err("per-purchase arrays differ in length".into());
        }
        if counts.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
            return Err("a purchase count is not a positive number".into());
        }
        check_rows(&seen_only.indptr, &seen_only.indices, shape)?;
        check_rows(&indptr, &indices, shape)?;
        let counts = Csr::try_new(shape, indptr, indices, counts).map_err(|e| e.3.to_string())?;
        Ok(Interactions { customers, items, counts, last_time, amount, seen_only })
    }
}

/// Checks CSR structure: `indptr` has one entry per row plus one, starts at 0, never
/// decreases, ends at `indices.len()`, and every row holds strictly increasing in-range
/// columns.
pub(crate) fn check_rows(indptr: &[usize], indices: &[u32], (rows, cols): (usize, usize)) -> Result<(), String> {
    if indptr.len() != rows + 1 || indptr[0] != 0 || indptr[rows] != indices.len() {
        return Err("row pointers do not match the matrix shape".into());
    }
    for w in indptr.windows(2) {
        if w[1] < w[0] || w[1] > indices.len() {
            return Err("row pointers decrease or run past the entries".into());
        }
        let row = &indices[w[0]..w[1]];
        if row.windows(2).any(|p| p[1] <= p[0]) || row.last().is_some_and(|&c| c as usize >= cols) {
            return Err("column indices are unsorted or out of range".into());
        }
    }
    Ok(())
}

/// Quantities ingest accepts (in absolute value): large enough for any real order, small
/// enough that sums stay finite in `f32`, and no smaller than a millionth of a unit.
pub const QUANTITY_RANGE: std::ops::RangeInclusive<f64> = 1e-6..=1e12;

/// One row of a customer while [`InteractionsBuilder::finish`] merges their pairs.
#[derive(Debug, Clone, Copy)]
struct Entry {
    item: u32,
    quantity: f64,
    amount: f64,
    /// Purchase time; `i64::MIN` for returns and rows without a time.
    time: i64,
}

/// What happened to the rows and pairs when the builder was finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeStats {
    /// Distinct (customer, item) pairs among the rows.
    pub pairs: u64,
    /// Pairs kept as purchases (net count above zero).
    pub purchase_pairs: u64,
    /// Pairs whose returns cancelled every purchase (kept as "seen").
    pub netted_out_pairs: u64,
    /// Pairs with only below-threshold ratings (kept as "seen").
    pub seen_only_pairs: u64,
    /// Purchase and return rows that repeated a pair and were merged into it.
    #[serde(default)]
    pub merged_rows: u64,
}

/// Merges purchase rows into [`Interactions`]; the library's entry point for rows that
/// come from somewhere other than a file.
///
/// Rows are collected as they come, a column per field (a field no row has takes no room),
/// and merged at [`InteractionsBuilder::finish`]: a counting sort of row numbers by
/// customer, then each customer's rows sorted and summed on the worker threads. That
/// touches memory in order where a hash map of pairs would miss the cache on every row,
/// and holds the rows once (16 bytes each without amounts and times) beside 4 bytes per
/// row of order, never a sorted copy. The rows of a pair are summed in an order fixed by
/// their values, so neither the number of threads nor the order of the input changes a bit.
///
/// ```
/// use cobuy::matrix::InteractionsBuilder;
/// let mut b = InteractionsBuilder::new();
/// b.purchase("alice", "tea", 2.0, None, None).unwrap();
/// b.purchase("alice", "tea", 1.0, None, None).unwrap(); // merges: count 3
/// b.purchase("bob", "tea", 1.0, None, None).unwrap();
/// let (data, stats) = b.finish();
/// assert_eq!((stats.purchase_pairs, stats.merged_rows), (2, 1));
/// assert_eq!(data.counts().nnz(), 2);
/// ```
#[derive(Debug, Default)]
pub struct InteractionsBuilder {
    customers: Interner,
    items: Interner,
    /// Per purchase or return row: `customer << 32 | item` (arrival indices).
    keys: Vec<u64>,
    quantity: Vec<f64>,
    /// Empty until a row has an amount; then one per row, 0 for rows without.
    amount: Vec<f64>,
    /// Empty until a row has a time; then one per row, `i64::MIN` for returns and rows
    /// without.
    time: Vec<i64>,
    seen: Vec<u64>,
}

/// The builder's only failure: more distinct ids than `u32` can index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than 4,294,967,294 distinct {0} ids")]
pub struct TooManyIds(pub &'static str);

impl InteractionsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder whose id tables start as these (natural order, as [`IdTable`]s are), so
    /// the finished [`Interactions`] index customers and items exactly as the tables do,
    /// whichever rows are added.
    pub fn with_ids(customers: &IdTable, items: &IdTable) -> Self {
        let mut b = Self::new();
        for id in customers.iter() {
            b.customers.intern(id);
        }
        for id in items.iter() {
            b.items.intern(id);
        }
        b
    }

    /// [`InteractionsBuilder::purchase`] by index into the tables given to
    /// [`InteractionsBuilder::with_ids`].
    pub(crate) fn purchase_at(
        &mut self,
        c: CustomerIdx,
        i: ItemIdx,
        quantity: f64,
        amount: Option<f64>,
        time: Option<i64>,
    ) {
        let (rows, room) = (self.keys.len(), self.keys.capacity());
        push_optional(&mut self.amount, amount, 0.0, rows, room);
        let time = time.map(|t| if quantity > 0.0 { t } else { i64::MIN });
        push_optional(&mut self.time, time, i64::MIN, rows, room);
        self.keys.push((c.0 as u64) << 32 | u64::from(i.0));
        self.quantity.push(quantity);
    }

    /// Makes room for about `rows` purchase and return rows in all, so that the rows of a
    /// large file are not copied into a buffer twice their size near the end of the read
    /// (room never written to is never resident).
    pub(crate) fn reserve_rows(&mut self, rows: usize) {
        let more = rows.saturating_sub(self.keys.len());
        self.keys.reserve_exact(more);
        self.quantity.reserve_exact(more);
        for v in [&mut self.amount as &mut dyn Reserve, &mut self.time] {
            v.reserve_if_started(more);
        }
    }

    /// [`InteractionsBuilder::seen`] by index, as [`InteractionsBuilder::purchase_at`].
    pub(crate) fn seen_at(&mut self, c: CustomerIdx, i: ItemIdx) {
        self.seen.push((c.0 as u64) << 32 | u64::from(i.0));
    }

    fn key(&mut self, customer: &str, item: &str) -> Result<u64, TooManyIds> {
        let (c, i) = self.intern(customer, item)?;
        Ok(u64::from(c.0) << 32 | u64::from(i.0))
    }

    /// The arrival indices of a customer and an item (added if new), for
    /// [`InteractionsBuilder::purchase_at`]; [`InteractionsBuilder::finish_with_maps`] says
    /// where they end up.
    pub(crate) fn intern(&mut self, customer: &str, item: &str) -> Result<(CustomerIdx, ItemIdx), TooManyIds> {
        let c = self.customers.intern(customer).ok_or(TooManyIds("customer"))?;
        let i = self.items.intern(item).ok_or(TooManyIds("item"))?;
        Ok((CustomerIdx(c), ItemIdx(i)))
    }

    /// The arrival indices of every customer and item id of a reader's chunk, in their
    /// arrival order (new ones added so), as [`InteractionsBuilder::intern`] gives them.
    pub(crate) fn intern_all(
        &mut self,
        customers: &Interner,
        items: &Interner,
    ) -> Result<(Vec<u32>, Vec<u32>), TooManyIds> {
        let c = self.customers.intern_all(customers).ok_or(TooManyIds("customer"))?;
        let i = self.items.intern_all(items).ok_or(TooManyIds("item"))?;
        Ok((c, i))
    }

    /// The customer and item ids so far, by arrival index.
    pub(crate) fn interners(&self) -> (&Interner, &Interner) {
        (&self.customers, &self.items)
    }

    /// Adds a purchase (`quantity > 0`) or a return (`quantity < 0`), netted per pair.
    pub fn purchase(
        &mut self,
        customer: &str,
        item: &str,
        quantity: f64,
        amount: Option<f64>,
        time: Option<i64>,
    ) -> Result<(), TooManyIds> {
        let key = self.key(customer, item)?;
        self.purchase_at(CustomerIdx((key >> 32) as u32), ItemIdx(key as u32), quantity, amount, time);
        Ok(())
    }

    /// Marks an item as seen by a customer without a purchase (for example a rating below
    /// the threshold): it is never recommended to them.
    pub fn seen(&mut self, customer: &str, item: &str) -> Result<(), TooManyIds> {
        let key = self.key(customer, item)?;
        self.seen.push(key);
        Ok(())
    }

    /// Sorts ids naturally, merges the rows of each pair, builds the CSR matrices, and
    /// reports what was merged.
    pub fn finish(self) -> (Interactions, MergeStats) {
        let (data, stats, _, _) = self.finish_with_maps();
        (data, stats)
    }

    /// [`InteractionsBuilder::finish`], with the final index of every arrival index of
    /// [`InteractionsBuilder::intern`] (customers, then items).
    pub(crate) fn finish_with_maps(self) -> (Interactions, MergeStats, Vec<u32>, Vec<u32>) {
        let InteractionsBuilder { customers, items, keys, quantity, amount, time, seen } = self;
        let (customers, cmap) = customers.finish();
        let (items, imap) = items.finish();
        let remap = |key: u64| u64::from(cmap[(key >> 32) as usize]) << 32 | u64::from(imap[key as u32 as usize]);
        let mut seen: Vec<u64> = seen.into_iter().map(remap).collect();
        seen.par_sort_unstable();
        seen.dedup();
        let rows = Rows { keys, quantity, amount, time };
        let merged = if rows.keys.len() < u32::MAX as usize {
            rows.merge::<u32>(customers.len(), &cmap, &imap, &seen)
        } else {
            rows.merge::<usize>(customers.len(), &cmap, &imap, &seen)
        };
        let Merged { pairs_of, indices, counts, last_time, amount, seen_only, stats } = merged;
        let indptr = std::iter::once(0)
            .chain(pairs_of.iter().scan(0usize, |end, &n| {
                *end += n as usize;
                Some(*end)
            }))
            .collect();
        let counts = Csr::new((customers.len(), items.len()), indptr, indices, counts);
        let seen_only = RowSets {
            indptr: row_pointers(customers.len(), seen_only.iter().map(|&k| (k >> 32) as u32)),
            indices: seen_only.iter().map(|&k| k as u32).collect(),
        };
        (Interactions { customers, items, counts, last_time, amount, seen_only }, stats, cmap, imap)
    }
}

/// Appends `value` to a column that stays empty until some row has one (`rows` rows before
/// this one, `room` the rows reserved), filling the rows before with `none`.
fn push_optional<T: Copy>(column: &mut Vec<T>, value: Option<T>, none: T, rows: usize, room: usize) {
    match value {
        Some(v) => {
            if column.is_empty() {
                column.reserve_exact(room.max(rows + 1));
                column.resize(rows, none);
            }
            column.push(v);
        }
        None if !column.is_empty() => column.push(none),
        None => {}
    }
}

/// Reserving room in a column that exists only once a row has its field.
trait Reserve {
    fn reserve_if_started(&mut self, more: usize);
}

impl<T> Reserve for Vec<T> {
    fn reserve_if_started(&mut self, more: usize) {
        if !self.is_empty() {
            self.reserve_exact(more);
        }
    }
}

/// A row number in the counting sort: `u32` (4 bytes a row) unless there are more rows.
trait RowNumber: Copy + Default + Send + Sync {
    fn of(row: usize) -> Self;
    fn get(self) -> usize;
}

impl RowNumber for u32 {
    fn of(row: usize) -> Self {
        row as u32
    }
    fn get(self) -> usize {
        self as usize
    }
}

impl RowNumber for usize {
    fn of(row: usize) -> Self {
        row
    }
    fn get(self) -> usize {
        self
    }
}

/// `order`'s slots, written by the blocks of [`Rows::merge`]'s counting sort at once: each
/// slot by exactly one block (its customer's range, past the earlier blocks' rows).
struct Scatter<R>(*mut R, usize);

// SAFETY: the blocks write disjoint slots of a buffer that outlives them, and nothing reads
// it until every block is done.
unsafe impl<R: Send> Sync for Scatter<R> {}

impl<R: Copy> Scatter<R> {
    fn put(&self, at: usize, value: R) {
        assert!(at < self.1, "a counting sort slot past the end");
        // SAFETY: in bounds (checked), and no other block writes slot `at` (see the type).
        unsafe { self.0.add(at).write(value) }
    }
}

/// The builder's rows, by arrival indices.
struct Rows {
    keys: Vec<u64>,
    quantity: Vec<f64>,
    amount: Vec<f64>,
    time: Vec<i64>,
}

/// The merged pairs in customer and item order: the number of purchase pairs of each
/// customer, their items and per-pair values, and the seen-only pairs (keys, sorted).
#[derive(Default)]
struct Merged {
    pairs_of: Vec<u32>,
    indices: Vec<u32>,
    counts: Vec<f32>,
    last_time: Option<Vec<i64>>,
    amount: Option<Vec<f32>>,
    seen_only: Vec<u64>,
    stats: MergeStats,
}

impl Rows {
    /// Groups the rows by final customer with a counting sort of their row numbers, then
    /// merges each customer's rows on the worker threads: sorted by final item and then by
    /// value (so sums never depend on arrival order), summed per pair. `seen` holds the
    /// final keys of the seen marks, sorted and distinct. The rows are dropped before the
    /// parts are joined.
    fn merge<R: RowNumber>(self, customers: usize, cmap: &[u32], imap: &[u32], seen: &[u64]) -> Merged {
        let customer_of = |k: u64| cmap[(k >> 32) as usize] as usize;
        // The counting sort in blocks of rows, one per thread: each block counts its rows of
        // every customer, and places them after the earlier blocks' rows of that customer,
        // so `order` is the one a single pass over the rows gives, on any number of threads.
        let block = self.keys.len().div_ceil(rayon::current_num_threads()).max(1 << 16);
        let mut next: Vec<Vec<R>> = self
            .keys
            .par_chunks(block)
            .map(|rows| {
                let mut n = vec![R::default(); customers];
                for &k in rows {
                    let c = customer_of(k);
                    n[c] = R::of(n[c].get() + 1);
                }
                n
            })
            .collect();
        let mut start = vec![0usize; customers + 1];
        for c in 0..customers {
            let mut at = start[c];
            for n in &mut next {
                let rows = n[c].get();
                n[c] = R::of(at);
                at += rows;
            }
            start[c + 1] = at;
        }
        let mut order = vec![R::default(); self.keys.len()];
        let slots = Scatter(order.as_mut_ptr(), order.len());
        self.keys.par_chunks(block).zip(next.par_iter_mut()).enumerate().for_each(|(b, (rows, n))| {
            for (row, &k) in (b * block..).zip(rows) {
                let c = customer_of(k);
                slots.put(n[c].get(), R::of(row));
                n[c] = R::of(n[c].get() + 1);
            }
        });
        drop(next);
        // Ranges of customers with about equal numbers of rows, a few per thread.
        let per = self.keys.len() / (rayon::current_num_threads() * 8) + 1;
        let mut ranges = Vec::new();
        let mut from = 0;
        for c in 0..customers {
            if start[c + 1] - start[from] >= per || c + 1 == customers {
                ranges.push(from..c + 1);
                from = c + 1;
            }
        }
        let parts: Vec<Merged> = ranges
            .into_par_iter()
            .map(|range| {
                let lo = seen.partition_point(|&s| s >> 32 < range.start as u64);
                let hi = seen.partition_point(|&s| s >> 32 < range.end as u64);
                let rows = range.clone().map(|c| &order[start[c]..start[c + 1]]);
                self.merge_customers(range.start, rows, imap, &seen[lo..hi])
            })
            .collect();
        drop((self, order, start));
        let mut all = Merged::default();
        let has = |f: fn(&Merged) -> bool| parts.first().is_some_and(f);
        let (with_time, with_amount) = (has(|p| p.last_time.is_some()), has(|p| p.amount.is_some()));
        let total = |f: fn(&Merged) -> usize| parts.iter().map(f).sum::<usize>();
        all.pairs_of.reserve_exact(customers);
        all.indices.reserve_exact(total(|p| p.indices.len()));
        all.counts.reserve_exact(total(|p| p.counts.len()));
        all.seen_only.reserve_exact(total(|p| p.seen_only.len()));
        let (mut last_time, mut amount) = (Vec::new(), Vec::new());
        if with_time {
            last_time.reserve_exact(all.indices.capacity());
        }
        if with_amount {
            amount.reserve_exact(all.indices.capacity());
        }
        for p in parts {
            all.pairs_of.extend(p.pairs_of);
            all.indices.extend(p.indices);
            all.counts.extend(p.counts);
            last_time.extend(p.last_time.unwrap_or_default());
            amount.extend(p.amount.unwrap_or_default());
            all.seen_only.extend(p.seen_only);
            let (s, t) = (&mut all.stats, p.stats);
            s.pairs += t.pairs;
            s.purchase_pairs += t.purchase_pairs;
            s.netted_out_pairs += t.netted_out_pairs;
            s.seen_only_pairs += t.seen_only_pairs;
            s.merged_rows += t.merged_rows;
        }
        all.last_time = with_time.then_some(last_time);
        all.amount = with_amount.then_some(amount);
        all
    }

    /// Merges the rows of the customers from `first` on (the row numbers of each, in
    /// turn), with `seen` the seen marks of these customers.
    fn merge_customers<'a, R: RowNumber + 'a>(
        &self,
        first: usize,
        customers: impl Iterator<Item = &'a [R]>,
        imap: &[u32],
        seen: &[u64],
    ) -> Merged {
        let (has_time, has_amount) = (!self.time.is_empty(), !self.amount.is_empty());
        let mut out =
            Merged { last_time: has_time.then(Vec::new), amount: has_amount.then(Vec::new), ..Merged::default() };
        let stats = &mut out.stats;
        let mut pending_seen = seen.iter().copied().peekable();
        let mut entries: Vec<Entry> = Vec::new();
        for (c, rows) in (first as u64..).zip(customers) {
            entries.clear();
            entries.extend(rows.iter().map(|r| {
                let r = r.get();
                Entry {
                    item: imap[self.keys[r] as u32 as usize],
                    quantity: self.quantity[r],
                    amount: if has_amount { self.amount[r] } else { 0.0 },
                    time: if has_time { self.time[r] } else { i64::MIN },
                }
            }));
            // By item, then by value: within a pair, sums never depend on arrival order.
            entries.sort_unstable_by(|a, b| {
                (a.item.cmp(&b.item))
                    .then(a.quantity.total_cmp(&b.quantity))
                    .then(a.amount.total_cmp(&b.amount))
                    .then(a.time.cmp(&b.time))
            });
            let mut pairs = 0u32;
            for group in entries.chunk_by(|a, b| a.item == b.item) {
                let key = c << 32 | u64::from(group[0].item);
                // Seen marks of pairs with no purchase or return row at all.
                while let Some(s) = pending_seen.next_if(|&s| s < key) {
                    stats.seen_only_pairs += 1;
                    out.seen_only.push(s);
                }
                // A seen mark on a pair with rows changes nothing: bought stays bought, and a
                // netted pair is kept as seen anyway.
                pending_seen.next_if_eq(&key);
                stats.pairs += 1;
                stats.merged_rows += group.len() as u64 - 1;
                let quantity: f64 = group.iter().map(|l| l.quantity).sum();
                let purchased = group.iter().any(|l| l.quantity > 0.0);
                let q = quantity as f32;
                if purchased && q > 0.0 && q.is_finite() {
                    pairs += 1;
                    out.indices.push(group[0].item);
                    out.counts.push(q);
                    if let Some(t) = out.last_time.as_mut() {
                        t.push(group.iter().map(|l| l.time).max().unwrap_or(i64::MIN));
                    }
                    if let Some(a) = out.amount.as_mut() {
                        a.push(group.iter().map(|l| l.amount).sum::<f64>() as f32);
                    }
                } else {
                    // Returns cancelled every purchase (or there was none): seen, not bought.
                    stats.netted_out_pairs += 1;
                    out.seen_only.push(key);
                }
            }
            out.pairs_of.push(pairs);
        }
        for s in pending_seen {
            stats.seen_only_pairs += 1;
            out.seen_only.push(s);
        }
        stats.pairs += stats.seen_only_pairs;
        stats.purchase_pairs = out.indices.len() as u64;
        out
    }
}

/// CSR row pointers from the (sorted) row index of every entry.
fn row_pointers(rows: usize, entries: impl Iterator<Item = u32>) -> Vec<usize> {
    let mut indptr = vec![0usize; rows + 1];
    for r in entries {
        indptr[r as usize + 1] += 1;
    }
    for r in 0..rows {
        indptr[r + 1] += indptr[r];
    }
    indptr
}

/// How raw counts become the weights the recommenders see.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case")]
pub enum Scheme {
    /// 1 for every purchase pair.
    Binary,
    /// The net count itself.
    Count,
    /// `ln(1 + count)`.
    Log,
    /// Okapi BM25 with customers as documents and items as terms:
    /// `idf(item) * count * (k1 + 1) / (count + k1 * (1 - b + b * len / avg_len))`, where `len` is
    /// the customer's total count, `idf = ln(1 + (N - df + 0.5) / (df + 0.5))`, `N` the customers
    /// with purchases and `df` the item's buyers.
    Bm25 {
        /// Count saturation (typically 1.2).
        k1: f32,
        /// Length normalisation, 0 to 1 (typically 0.75).
        b: f32,
    },
    /// `sqrt(count) * idf(item)`, `idf = 1 + ln(N / df)` (N customers with purchases, df buyers of
    /// the item).
    TfIdf,
}

/// A weighting scheme with optional exponential time decay.
///
/// Decay weighs the evidence a neighbour brings, never the row it is compared with nor a
/// length. With `x` the undecayed weights and `x'` the decayed ones, item-kNN's
/// similarity of item `i` to a candidate `j` is `sum_u x_ui x'_uj / (|x_i| |x_j|)` and
/// user-kNN's of customer `c` to a candidate `v` is `sum_i x_ci x'_vi / (|x_c| |x_v|)`
/// (RP3beta: the walk's second step is `x'_uj` over `u`'s undecayed total). So an item
/// whose buyers all bought long ago, or a customer who has not bought for long, is a weak
/// neighbour; normalising the decayed vectors instead gave a tiny old column its full
/// length back, and measured worse on both public logs (ARCHITECTURE.md). Scores then
/// weigh with `x'`: the customer's own items (item-kNN) and the neighbours' purchases
/// (user-kNN); EASE, ALS and buy-again see `x'` only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weighting {
    /// The base scheme.
    pub scheme: Scheme,
    /// Half-life in days: a purchase this old counts half (see [`Weighting`] for where).
    /// `None`: no decay.
    pub half_life_days: Option<f64>,
    /// Ages are counted back from this time (unix seconds); `None`: the newest purchase.
    pub reference_time: Option<i64>,
}

impl Default for Weighting {
    fn default() -> Self {
        Weighting { scheme: Scheme::Bm25 { k1: 1.2, b: 0.75 }, half_life_days: None, reference_time: None }
    }
}

impl Weighting {
    /// Checks the parameters; the message says which one is wrong.
    pub fn check(&self) -> Result<(), String> {
        if let Scheme::Bm25 { k1, b } = self.scheme {
            if !(k1.is_finite() && k1 > 0.0) {
                return Err(format!("BM25 k1 must be a positive number, got {k1}"));
            }
            if !(0.0..=1.0).contains(&b) {
                return Err(format!("BM25 b must be between 0 and 1, got {b}"));
            }
        }
        if let Some(h) = self.half_life_days {
            if !(h.is_finite() && HALF_LIFE_DAYS.contains(&h)) {
                return Err(format!(
                    "half_life_days (--half-life-days) must be from 1/24 (an hour) to {} days, got {h:?}",
                    HALF_LIFE_DAYS.end()
                ));
            }
        }
        if let Some(t) = self.reference_time.filter(|t| !(crate::time::MIN..=crate::time::MAX).contains(t)) {
            return Err(format!("the decay reference time ({t}) is outside the years 0000 to 9999"));
        }
        Ok(())
    }

    /// Fixes the reference time of a decaying weighting (so that a saved model re-weights
    /// identically) to [`Interactions::decay_reference`], the newest purchase that is not
    /// an outlier. Fails when decay is asked for but the data has no times, and when the
    /// decay would leave more than [`MAX_UNDERFLOW`] of the timed purchase pairs with a
    /// weight below `f32::MIN_POSITIVE` times their undecayed weight (older than 126
    /// half-lives): such a model recommends from noise and popularity, so it is a usage
    /// error naming the half-life rather than a model that looks fine.
    pub fn resolve(mut self, data: &Interactions) -> Result<Self, String> {
        let Some(h) = self.half_life_days else { return Ok(self) };
        let given = self.reference_time.is_some();
        if !given {
            match data.decay_reference() {
                Some(t) => self.reference_time = Some(t),
                None => return Err("time decay needs purchase times: give a time column".into()),
            }
        }
        if let (Some(t0), Some(times)) = (self.reference_time, data.last_time()) {
            let timed = times.iter().filter(|&&t| t != i64::MIN);
            let total = timed.clone().count();
            let floor = f64::from(f32::MIN_POSITIVE);
            let zero = timed.filter(|&&t| decay_factor(t0, t, h) < floor).count();
            if total > 0 && zero as f64 > MAX_UNDERFLOW * total as f64 {
                let days = h * (-floor.log2());
                return Err(format!(
                    "time decay would weigh {zero} of {total} purchase pairs ({:.1}%) at zero: with half_life_days \
                     (--half-life-days) {h}, purchases more than {days:.1} days before {} count nothing; give a \
                     longer half-life{}",
                    100.0 * zero as f64 / total as f64,
                    crate::time::format(t0),
                    if given { " or an earlier reference date" } else { "" },
                ));
            }
        }
        Ok(self)
    }

    /// The corpus statistics the schemes need, from the data a model is fitted on.
    pub fn stats(&self, data: &Interactions) -> WeightStats {
        self.stats_blocked(data, None)
    }

    /// [`Weighting::stats`] with the customers' lengths summed in blocks of `sum_block`
    /// customers, each block in customer order, then the blocks' sums in block order: how
    /// a fit split over blocks of customers sums them ([`crate::algo::partial`]), so that
    /// its bytes do not depend on how the blocks are spread over machines. `None`, or a
    /// block at least as large as the customers, is the single sum.
    pub fn stats_blocked(&self, data: &Interactions, sum_block: Option<usize>) -> WeightStats {
        let counts = &data.counts;
        let mut df = vec![0u32; counts.cols()];
        counts.indices().iter().for_each(|&i| df[i as usize] += 1);
        let ptr = counts.proper_indptr();
        let len = |r: usize| counts.data()[ptr[r]..ptr[r + 1]].iter().map(|&c| f64::from(c)).sum::<f64>();
        let sum = |rows: std::ops::Range<usize>| {
            rows.map(len).fold((0.0, 0usize), |(t, a), l| (t + l, a + usize::from(l > 0.0)))
        };
        let rows = counts.rows();
        let (total, active) = match sum_block {
            Some(b) if b < rows => (0..rows)
                .step_by(b)
                .map(|r| sum(r..(r + b).min(rows)))
                .fold((0.0, 0usize), |(t, a), (bt, ba)| (t + bt, a + ba)),
            _ => sum(0..rows),
        };
        // Customers with nothing left after returns are not documents of the corpus.
        WeightStats { customers: active as f64, df, avg_len: total / active.max(1) as f64 }
    }

    /// Weighs one customer's row: `items` (sorted), their raw `counts` and, for decay,
    /// their last purchase `times`. Items beyond the statistics' catalogue count as unseen.
    pub fn weigh_row(
        &self,
        st: &WeightStats,
        items: &[u32],
        counts: &[f32],
        times: Option<&[i64]>,
        out: &mut Vec<f32>,
    ) {
        self.weigh_row_with(st, &[], items, counts, times, out);
    }

    /// An item's factor in its weights (BM25's or TF-IDF's idf) given the number of
    /// customers `n` and the item's buyers `df` (1 for the schemes without one).
    fn item_factor(&self, n: f64, df: f64) -> f64 {
        match self.scheme {
            Scheme::TfIdf => 1.0 + (n / df.max(1.0)).ln(),
            Scheme::Bm25 { .. } => (1.0 + (n - df + 0.5) / (df + 0.5)).ln(),
            Scheme::Binary | Scheme::Count | Scheme::Log => 1.0,
        }
    }

    /// [`Weighting::weigh_row`] with the item factors of the statistics' catalogue computed
    /// once (`factors`, by [`Weighting::item_factor`]; empty: computed here): the same
    /// numbers, without a logarithm per purchase.
    fn weigh_row_with(
        &self,
        st: &WeightStats,
        factors: &[f64],
        items: &[u32],
        counts: &[f32],
        times: Option<&[i64]>,
        out: &mut Vec<f32>,
    ) {
        out.clear();
        let n = st.customers;
        let df = |i: u32| f64::from(st.df.get(i as usize).copied().unwrap_or(0));
        let factor = |i: u32| match factors.get(i as usize) {
            Some(&f) => f,
            None => self.item_factor(n, df(i)),
        };
        match self.scheme {
            Scheme::Binary => out.extend(counts.iter().map(|_| 1.0)),
            Scheme::Count => out.extend_from_slice(counts),
            Scheme::Log => out.extend(counts.iter().map(|&c| f64::from(c).ln_1p() as f32)),
            Scheme::TfIdf => {
                out.extend(items.iter().zip(counts).map(|(&i, &c)| (f64::from(c).sqrt() * factor(i)) as f32))
            }
            Scheme::Bm25 { k1, b } => {
                let (k1, b) = (f64::from(k1), f64::from(b));
                let len: f64 = counts.iter().map(|&c| f64::from(c)).sum();
                let norm = k1 * (1.0 - b + b * len / st.avg_len.max(f64::MIN_POSITIVE));
                out.extend(items.iter().zip(counts).map(|(&i, &c)| {
                    let c = f64::from(c);
                    (factor(i) * c * (k1 + 1.0) / (c + norm)) as f32
                }));
            }
        }
        if let (Some(h), Some(t0), Some(times)) = (self.half_life_days, self.reference_time, times) {
            for (v, &t) in out.iter_mut().zip(times) {
                *v = (f64::from(*v) * decay_factor(t0, t, h)) as f32;
            }
        }
    }

    /// The weighted customer x item matrix (same structure as the counts), weighed in
    /// parallel blocks of customers (each row alone, so the numbers do not depend on the
    /// blocks).
    ///
    /// Decay needs a resolved reference time and per-pair times; without them it is skipped.
    pub fn apply(&self, data: &Interactions, st: &WeightStats) -> Csr {
        let counts = &data.counts;
        let ptr = counts.proper_indptr();
        let factors: Vec<f64> = match self.scheme {
            Scheme::TfIdf | Scheme::Bm25 { .. } => {
                st.df.iter().map(|&d| self.item_factor(st.customers, f64::from(d))).collect()
            }
            Scheme::Binary | Scheme::Count | Scheme::Log => Vec::new(),
        };
        let mut w = vec![0f32; counts.nnz()];
        let rows = counts.rows();
        let per = rows / (rayon::current_num_threads() * 8) + 1;
        let mut blocks = Vec::with_capacity(rows / per + 1);
        let mut rest = &mut w[..];
        for r0 in (0..rows).step_by(per) {
            let r1 = (r0 + per).min(rows);
            let (block, tail) = rest.split_at_mut(ptr[r1] - ptr[r0]);
            blocks.push((r0..r1, block));
            rest = tail;
        }
        blocks.into_par_iter().for_each_init(Vec::new, |row, (range, block)| {
            let base = ptr[range.start];
            for r in range {
                let (a, b) = (ptr[r], ptr[r + 1]);
                let times = data.last_time.as_ref().map(|t| &t[a..b]);
                self.weigh_row_with(st, &factors, &counts.indices()[a..b], &counts.data()[a..b], times, row);
                block[a - base..b - base].copy_from_slice(row);
            }
        });
        Csr::new(counts.shape(), ptr.into_owned(), counts.indices().to_vec(), w)
    }

    /// The same weighting without its time decay, when it has one: what similarities
    /// measure lengths with (see [`Weighting::half_life_days`]).
    pub fn undecayed(&self) -> Option<Weighting> {
        self.half_life_days.map(|_| Weighting { half_life_days: None, reference_time: None, ..*self })
    }

    /// Each customer's sum of squared weights (in f64, in item order), without the time
    /// decay: the lengths customer similarities divide by.
    pub fn undecayed_norm2(&self, data: &Interactions, st: &WeightStats) -> Vec<f64> {
        let plain = self.undecayed().unwrap_or(*self);
        let mut norm2 = Vec::with_capacity(data.counts.rows());
        plain.each_row(data, st, |row| norm2.push(row.iter().map(|&v| f64::from(v) * f64::from(v)).sum()));
        norm2
    }

    /// Weighs every customer's row, in order, handing each to `f`.
    fn each_row(&self, data: &Interactions, st: &WeightStats, mut f: impl FnMut(&[f32])) {
        let counts = &data.counts;
        let mut row = Vec::new();
        for r in counts.proper_indptr().windows(2) {
            let range = r[0]..r[1];
            let times = data.last_time.as_ref().map(|t| &t[range.clone()]);
            self.weigh_row(st, &counts.indices()[range.clone()], &counts.data()[range], times, &mut row);
            f(&row);
        }
    }
}

/// The half-lives [`Weighting::check`] accepts, in days: from an hour (a shorter one zeroes
/// every purchase older than about five days) to a million days (beyond it nothing decays).
pub const HALF_LIFE_DAYS: std::ops::RangeInclusive<f64> = 1.0 / 24.0..=1e6;

/// The largest share of timed purchase pairs a decay may weigh at (relative) zero; see
/// [`Weighting::resolve`].
pub const MAX_UNDERFLOW: f64 = 0.99;

/// `0.5^(age / half-life)` for a purchase at `t`, counted back from `t0`. Pairs without a
/// time (`i64::MIN`) or after the reference do not decay.
pub(crate) fn decay_factor(t0: i64, t: i64, half_life_days: f64) -> f64 {
    // Saturating: times given through the library are not range-checked.
    let age_days = if t == i64::MIN { 0.0 } else { t0.saturating_sub(t).max(0) as f64 / DAY as f64 };
    0.5f64.powf(age_days / half_life_days)
}

/// Corpus statistics behind the weighting schemes, kept so that customers scored later
/// (fold-in) are weighted exactly as the model's own customers.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightStats {
    customers: f64,
    /// Buyers per item.
    df: Vec<u32>,
    /// Mean total count of customers with purchases.
    avg_len: f64,
}

/// The most rows [`transpose`] takes: row numbers become the transpose's `u32` column
/// indices, and a row of the transpose holds at most this many entries, so both fit a
/// `u32`. Interned ids stay below it ([`TooManyIds`]); other row counts (baskets) are
/// checked with [`check_rows_fit`].
pub const MAX_ROWS: usize = u32::MAX as usize;

/// More rows than `u32` indices can number (see [`MAX_ROWS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{rows} {what}: more than the {max} that 32-bit indices can number")]
pub struct TooManyRows {
    /// What the rows are ("baskets").
    pub what: &'static str,
    /// How many there are.
    pub rows: u64,
    /// The limit.
    pub max: u64,
}

/// Checks that `rows` rows of `what` are at most `max` ([`MAX_ROWS`], or less in tests).
pub(crate) fn check_rows_fit(what: &'static str, rows: usize, max: usize) -> Result<(), TooManyRows> {
    if rows <= max { Ok(()) } else { Err(TooManyRows { what, rows: rows as u64, max: max as u64 }) }
}

/// Transposes a CSR matrix (counting sort; rows of the result are sorted). The matrix has
/// at most [`MAX_ROWS`] rows.
pub fn transpose(m: &Csr) -> Csr {
    let (rows, cols) = m.shape();
    let (tptr, tind, tval) = transpose_parts(&m.proper_indptr(), m.indices(), m.data(), cols, None);
    Csr::new((cols, rows), tptr, tind, tval)
}

/// The transpose of `m` with its columns renamed `to[c]` first (a permutation): column `c`
/// becomes row `to[c]`, without a renamed copy of `m`.
pub fn transpose_renamed(m: &Csr, to: &[u32]) -> Csr {
    let (rows, cols) = m.shape();
    let (tptr, tind, tval) = transpose_parts(&m.proper_indptr(), m.indices(), m.data(), cols, Some(to));
    Csr::new((cols, rows), tptr, tind, tval)
}

/// The transpose of the CSR parts of a matrix with `cols` columns, as CSR parts (counting
/// sort: rows of the result are sorted), column `c` becoming row `to[c]` when `to` is
/// given (a permutation). Shared by [`transpose`] and EASE's own sparse rows.
///
/// Panics beyond [`MAX_ROWS`] rows (a caller's bug: ids are interned below it and baskets
/// checked against it), rather than wrap row numbers silently.
pub(crate) fn transpose_parts(
    indptr: &[usize],
    indices: &[u32],
    data: &[f32],
    cols: usize,
    to: Option<&[u32]>,
) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    let to = |c: u32| to.map_or(c, |to| to[c as usize]) as usize;
    let rows = indptr.len().saturating_sub(1);
    assert!(
        check_rows_fit("rows", rows, MAX_ROWS).is_ok(),
        "transposing {rows} rows: more than u32 indices can number"
    );
    let mut tptr = vec![0usize; cols + 1];
    for &c in indices {
        tptr[to(c) + 1] += 1;
    }
    for c in 0..cols {
        tptr[c + 1] += tptr[c];
    }
    let mut next = tptr.clone();
    let mut tind = vec![0u32; indices.len()];
    let mut tval = vec![0f32; indices.len()];
    for (r, w) in indptr.windows(2).enumerate() {
        for k in w[0]..w[1] {
            let at = &mut next[to(indices[k])];
            tind[*at] = r as u32;
            tval[*at] = data[k];
            *at += 1;
        }
    }
    (tptr, tind, tval)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row limit is the largest at which the last row's index and a full column's
    /// count both fit a `u32`.
    #[test]
    fn row_limit_is_the_last_that_u32_numbers() {
        assert!(u32::try_from(MAX_ROWS - 1).is_ok() && u32::try_from(MAX_ROWS).is_ok());
        assert!(u32::try_from(MAX_ROWS + 1).is_err());
        assert_eq!(check_rows_fit("baskets", MAX_ROWS, MAX_ROWS), Ok(()));
        let err = check_rows_fit("baskets", MAX_ROWS + 1, MAX_ROWS).unwrap_err();
        assert_eq!((err.rows, err.max), (1 << 32, u64::from(u32::MAX)));
    }

    #[test]
    fn check_rows_rejects_pointers_past_the_entries_without_slicing_them() {
        // The last pointer matches the entries, but a middle one runs past them.
        assert!(check_rows(&[0, 100, 5], &[0, 1, 2, 3, 4], (2, 10)).is_err());
        assert!(check_rows(&[0, 3, 5], &[0, 1, 2, 3, 4], (2, 10)).is_ok());
        assert!(check_rows(&[0, 3, 2], &[0, 1], (2, 10)).is_err());
    }

    fn sample() -> Interactions {
        let mut b = InteractionsBuilder::new();
        b.purchase("2", "b", 2.0, Some(4.0), Some(10)).unwrap();
        b.purchase("2", "b", 1.0, Some(2.0), Some(5)).unwrap();
        b.purchase("1", "a", 1.0, Some(1.0), Some(DAY * 10)).unwrap();
        b.purchase("1", "b", 1.0, Some(2.0), Some(0)).unwrap();
        b.purchase("1", "b", -1.0, Some(-2.0), Some(99)).unwrap(); // netted out
        b.purchase("3", "c", -4.0, None, None).unwrap(); // return without purchase
        b.seen("2", "a").unwrap();
        b.seen("1", "a").unwrap(); // already bought: stays a purchase
        let (data, stats) = b.finish();
        assert_eq!(
            stats,
            MergeStats { pairs: 5, purchase_pairs: 2, netted_out_pairs: 2, seen_only_pairs: 1, merged_rows: 2 }
        );
        data
    }

    #[test]
    fn builder_merges_nets_and_sorts() {
        let d = sample();
        assert_eq!(d.customers().iter().collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(d.purchases(CustomerIdx(0)), (&[0u32][..], &[1.0f32][..]));
        assert_eq!(d.purchases(CustomerIdx(1)), (&[1u32][..], &[3.0f32][..]));
        assert_eq!(d.last_time().unwrap(), [DAY * 10, 10]);
        assert_eq!(d.amount().unwrap(), [1.0, 6.0]);
        assert_eq!(d.seen_only(CustomerIdx(0)), [1]);
        assert_eq!(d.seen_only(CustomerIdx(1)), [0]);
        assert_eq!(d.seen_only(CustomerIdx(2)), [2]);
        assert_eq!(d.customers_with_purchases(), 2);
    }

    #[test]
    fn merge_in_blocks_sums_every_pair() {
        // More rows than a block of the counting sort, in random customer order, on one
        // thread and on three (three blocks, each holding rows of most customers).
        let mut x = 1u64;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        let rows: Vec<(String, String, f64)> = (0..300_000)
            .map(|_| (format!("c{}", next() % 2000), format!("i{}", next() % 100), (next() % 5 + 1) as f64))
            .collect();
        let mut want: std::collections::BTreeMap<(&str, &str), f64> = Default::default();
        for (c, i, q) in &rows {
            *want.entry((c.as_str(), i.as_str())).or_default() += q;
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let data = pool.install(|| {
                let mut b = InteractionsBuilder::new();
                for (c, i, q) in &rows {
                    b.purchase(c, i, *q, None, None).unwrap();
                }
                b.finish().0
            });
            let mut got = std::collections::BTreeMap::new();
            for (c, id) in data.customers().iter().enumerate() {
                let (items, counts) = data.purchases(CustomerIdx(c as u32));
                for (&i, &n) in items.iter().zip(counts) {
                    got.insert((id, data.items().id(i)), f64::from(n));
                }
            }
            assert_eq!(got, want, "{threads} threads");
        }
    }

    #[test]
    fn sums_do_not_depend_on_row_order() {
        // Float addition is not associative: these amounts sum to 0 or 1 depending on order.
        let rows = [(1.0, 1e16), (1.0, 1.0), (1.0, -1e16)];
        let amounts: Vec<Vec<f32>> = [[0, 1, 2], [0, 2, 1], [1, 0, 2]]
            .iter()
            .map(|order| {
                let mut b = InteractionsBuilder::new();
                for &k in order {
                    b.purchase("c", "i", rows[k].0, Some(rows[k].1), None).unwrap();
                }
                b.finish().0.amount().unwrap().to_vec()
            })
            .collect();
        assert!(amounts.windows(2).all(|w| w[0] == w[1]), "{amounts:?}");
    }

    #[test]
    fn weightings_follow_their_formulas() {
        let d = sample();
        let w = |scheme| {
            let w = Weighting { scheme, half_life_days: None, reference_time: None };
            w.apply(&d, &w.stats(&d)).data().to_vec()
        };
        assert_eq!(w(Scheme::Binary), [1.0, 1.0]);
        assert_eq!(w(Scheme::Count), [1.0, 3.0]);
        assert_eq!(w(Scheme::Log), [2f32.ln(), 4f32.ln()]);
        // Two customers have purchases left (the third only returned), so N = 2.
        let idf = 1.0 + (2f64).ln();
        assert_eq!(w(Scheme::TfIdf), [idf as f32, (3f64.sqrt() * idf) as f32]);
        // BM25 with b = 0: no length normalisation.
        let idf = (1.0f64 + (2.0 - 1.0 + 0.5) / 1.5).ln();
        let bm = w(Scheme::Bm25 { k1: 1.0, b: 0.0 });
        assert!((f64::from(bm[1]) - idf * 3.0 * 2.0 / 4.0).abs() < 1e-6);
        let decay = Weighting { scheme: Scheme::Binary, half_life_days: Some(5.0), reference_time: None };
        let decay = decay.resolve(&d).unwrap();
        let decayed = decay.apply(&d, &decay.stats(&d));
        assert_eq!(decayed.data()[0], 1.0);
        assert!((decayed.data()[1] - 0.25).abs() < 1e-4);
    }

    #[test]
    fn from_parts_rejects_broken_structure() {
        let d = sample();
        let parts = |indptr: Vec<usize>, indices: Vec<u32>| {
            Interactions::from_parts(
                d.customers.clone(),
                d.items.clone(),
                (indptr, indices, vec![1.0, 1.0]),
                None,
                None,
                d.seen_only.clone(),
            )
        };
        assert!(parts(vec![0, 1, 2, 2], vec![0, 1]).is_ok());
        assert!(parts(vec![0, 1, 2], vec![0, 1]).is_err());
        assert!(parts(vec![0, 2, 1, 2], vec![0, 1]).is_err());
        assert!(parts(vec![0, 1, 2, 2], vec![0, 7]).is_err());
        assert!(parts(vec![0, 2, 2, 2], vec![1, 0]).is_err());
    }
}
