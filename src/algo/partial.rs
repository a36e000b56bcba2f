//! Item-kNN's fit as a map stage and a reduce stage, for engines that spread work over
//! machines (Spark): the model is the same bytes however the work is spread.
//!
//! The single-machine kernel ([`super::item_knn`]) sums each item pair's products in
//! customer order; summing per-machine partials instead would round differently, so the
//! bytes would depend on the number of machines. Here the grouping is fixed by a fit
//! parameter instead, `sum_block` customers per block: every order-dependent sum (a pair's
//! dot product, an item's sum of squares, and the weighting's total length,
//! [`crate::matrix::Weighting::stats_blocked`]) is made within blocks of customers
//! `[0, B)`, `[B, 2B)`, ... in customer order, and the blocks' sums are then added in block
//! order. Which machine maps which block, and how the item blocks are cut, changes nothing.
//!
//! - map ([`CustomerBlock::pairs`], [`CustomerBlock::stats`]): one block of customers'
//!   weighted rows in; for each item block, every pair `(i, j)` of items bought together in
//!   the block with `i` in the item block, with its partial dot product (and number of
//!   customers, when the measure needs it); and each item's partial sum of squares and
//!   buyers.
//! - combine ([`ItemStats::combine`]): the item statistics of every block, in block order.
//! - reduce ([`reduce`]): one item block's partials, in customer-block order, and the
//!   combined statistics in; each item's top-k neighbours out.
//! - assemble ([`assemble`]): the item blocks' lists, in order, into the neighbour matrix
//!   that `Model::from_neighbors` writes into the file `cobuy fit` writes.
//!
//! [`fit`] runs these in-process (`cobuy fit --sum-block B`). With one block the sums are
//! the single-machine kernel's, bit for bit; with several, similarities differ from it
//! only by f32 rounding.
//!
//! # Bytes
//!
//! Each stage's values cross machines as bytes (`to_bytes` / `from_bytes`), little-endian,
//! each starting with four magic bytes and a version (`u32`, 1). Decoding checks every
//! length, index and order, so damaged bytes are an error ([`PartialError`]), never a
//! panic or a wrong answer.
//!
//! | magic | what | fields after magic and version |
//! |---|---|---|
//! | `CBR1` | a customer block's weighted rows | block `u32`, items `u32`, rows `u32`, nnz `u64`, row lengths `u32[rows]`, items `u32[nnz]` (ascending per row), weights `f32[nnz]` |
//! | `CBS1` | a customer block's item statistics | block `u32`, items `u32`, customers with purchases `u64`, n `u32`, items `u32[n]` (ascending), sums of squares `f64[n]`, entries `u32[n]` |
//! | `CBP1` | a customer block's pairs of one item block | block `u32`, items `u32`, first item `u32`, item count n `u32`, flags `u32` (1: customer counts present), nnz `u64`, list lengths `u32[n]`, other items `u32[nnz]` (ascending per list), dot products `f32[nnz]`, customer counts `u32[nnz]` if flagged |
//! | `CBI1` | combined item statistics | items `u32`, customers with purchases `u64`, sums of squares `f64[items]`, entries `u32[items]` |
//! | `CBN1` | an item block's neighbours | items `u32`, first item `u32`, item count n `u32`, nnz `u64`, list lengths `u32[n]`, neighbours `u32[nnz]` (ascending per list), similarities `f32[nnz]` |
//!
//! Architecture invariant: the functions on typed values are kernels (no I/O, cannot fail);
//! only `from_bytes` can fail.

use std::ops::Range;

use rayon::prelude::*;

use super::similarity::{
    Measure, Neighbor, Pruned, QueryStats, RowStats, SimilarityParams, Ties, finish, inverse_sqrt, keep_top,
};
use crate::matrix::{Csr, check_rows, transpose};

/// Damaged or mismatched stage bytes, or a measure this path does not compute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PartialError(pub String);

fn bad<T>(what: impl Into<String>) -> Result<T, PartialError> {
    Err(PartialError(what.into()))
}

/// Refuses what the blocked fit does not compute: RP3beta (its walk divides by sums over
/// all customers before any pair is formed) and [`Ties::VisitOrder`] (it reproduces one
/// kernel's visiting order, which blocks do not have).
pub fn check(params: &SimilarityParams) -> Result<(), String> {
    if matches!(params.measure, Measure::Rp3Beta { .. }) {
        return Err("sum_block (--sum-block): the blocked fit computes cosine, asymmetric cosine, jaccard and \
                    lift; rp3beta is not supported"
            .into());
    }
    if params.ties == Ties::VisitOrder {
        return Err("sum_block (--sum-block): ties visit-order reproduces one kernel's visiting order; use \
                    lowest-index"
            .into());
    }
    Ok(())
}

/// Whether the measure needs the number of customers a pair shares.
pub fn needs_shared(params: &SimilarityParams) -> bool {
    params.shrinkage > 0.0 || params.min_shared > 1 || matches!(params.measure, Measure::Jaccard | Measure::Lift)
}

/// Item block `b` of `items / size` blocks: `[b size, (b + 1) size)`, cut at `items`.
pub fn item_range(b: usize, size: usize, items: usize) -> Range<usize> {
    (b * size).min(items)..((b + 1) * size).min(items)
}

/// One block of customers' weighted rows (customers x the whole catalogue), the map
/// stage's input.
#[derive(Debug, Clone)]
pub struct CustomerBlock {
    index: u32,
    rows: Csr,
    by_item: Csr,
}

/// One customer block's item statistics ([`CustomerBlock::stats`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockStats {
    block: u32,
    items: u32,
    nonempty: u64,
    item: Vec<u32>,
    norm2: Vec<f64>,
    count: Vec<u32>,
}

/// One customer block's pairs of one item block ([`CustomerBlock::pairs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    block: u32,
    items: u32,
    first: u32,
    lens: Vec<u32>,
    other: Vec<u32>,
    dot: Vec<f32>,
    /// Empty when the measure does not need it.
    shared: Vec<u32>,
}

impl Pairs {
    /// The customer block the pairs come from (a reduce takes them in this order).
    pub fn block(&self) -> u32 {
        self.block
    }

    /// Stored pairs.
    pub fn len(&self) -> usize {
        self.other.len()
    }

    /// No pairs.
    pub fn is_empty(&self) -> bool {
        self.other.is_empty()
    }
}

impl CustomerBlock {
    /// Block `index` of the weighted rows `rows` (customers x items).
    pub fn new(index: u32, rows: Csr) -> Self {
        let by_item = transpose(&rows);
        CustomerBlock { index, rows, by_item }
    }

    /// Customers `range` of the weighted matrix `m`, as block `index`.
    pub fn of(m: &Csr, index: u32, range: Range<usize>) -> Self {
        let ptr = m.proper_indptr();
        let (a, b) = (ptr[range.start], ptr[range.end]);
        let indptr = ptr[range.start..=range.end].iter().map(|&p| p - a).collect();
        let rows = Csr::new((range.len(), m.cols()), indptr, m.indices()[a..b].to_vec(), m.data()[a..b].to_vec());
        CustomerBlock::new(index, rows)
    }

    /// The block's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Each item's sum of squared weights (f64, in customer order) and entries in this
    /// block, for the items bought in it, and the customers with purchases.
    pub fn stats(&self) -> BlockStats {
        let t = &self.by_item;
        let ptr = t.proper_indptr();
        let mut s = BlockStats {
            block: self.index,
            items: t.rows() as u32,
            nonempty: self.rows.proper_indptr().windows(2).filter(|w| w[1] > w[0]).count() as u64,
            item: Vec::new(),
            norm2: Vec::new(),
            count: Vec::new(),
        };
        for (i, w) in ptr.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]) {
            s.item.push(i as u32);
            s.norm2.push(t.data()[w[0]..w[1]].iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>());
            s.count.push((w[1] - w[0]) as u32);
        }
        s
    }

    /// For each item `i` of `items`, every other item `j` a customer of this block bought
    /// with it, with the sum of `w(u, i) w(u, j)` over those customers `u` in customer
    /// order (f32, from 0, as the single-machine kernel adds them) and, when `shared`, how
    /// many they are.
    pub fn pairs(&self, items: Range<usize>, shared: bool) -> Pairs {
        let (t, x) = (&self.by_item, &self.rows);
        let n = x.cols();
        let (mut acc, mut cnt, mut touched) = (vec![0f32; n], vec![0u32; n], Vec::new());
        let mut p = Pairs {
            block: self.index,
            items: n as u32,
            first: items.start as u32,
            lens: Vec::with_capacity(items.len()),
            other: Vec::new(),
            dot: Vec::new(),
            shared: Vec::new(),
        };
        let (tptr, xptr) = (t.proper_indptr(), x.proper_indptr());
        for i in items {
            for (&u, &w) in t.indices()[tptr[i]..tptr[i + 1]].iter().zip(&t.data()[tptr[i]..tptr[i + 1]]) {
                let r = xptr[u as usize]..xptr[u as usize + 1];
                for (&j, &v) in x.indices()[r.clone()].iter().zip(&x.data()[r]) {
                    let j = j as usize;
                    if j == i {
                        continue;
                    }
                    if cnt[j] == 0 {
                        touched.push(j as u32);
                    }
                    cnt[j] += 1;
                    acc[j] += w * v;
                }
            }
            touched.sort_unstable();
            p.lens.push(touched.len() as u32);
            for &j in &touched {
                let j = j as usize;
                p.other.push(j as u32);
                p.dot.push(std::mem::take(&mut acc[j]));
                let c = std::mem::take(&mut cnt[j]);
                if shared {
                    p.shared.push(c);
                }
            }
            touched.clear();
        }
        p
    }

    /// The map stage: the block's statistics, and its pairs for every item block of
    /// `item_block` items that has any (in item-block order, with their indices).
    pub fn map(&self, item_block: usize, shared: bool) -> (BlockStats, Vec<(u32, Pairs)>) {
        let items = self.rows.cols();
        let blocks = items.div_ceil(item_block.max(1));
        let pairs = (0..blocks)
            .into_par_iter()
            .map(|b| (b as u32, self.pairs(item_range(b, item_block.max(1), items), shared)))
            .filter(|(_, p)| !p.is_empty())
            .collect();
        (self.stats(), pairs)
    }
}

/// Every item's sum of squares, entries and the customers with purchases, combined from
/// the customer blocks' [`BlockStats`] in block order.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemStats {
    norm2: Vec<f64>,
    count: Vec<u32>,
    nonempty: u64,
}

impl ItemStats {
    /// Adds the blocks' statistics in the order given (the blocks' order: checked when
    /// they come as bytes, [`ItemStats::combine_bytes`]).
    pub fn combine(items: usize, parts: &[BlockStats]) -> Self {
        let (mut norm2, mut count, mut nonempty) = (vec![0f64; items], vec![0u32; items], 0u64);
        for s in parts {
            nonempty = nonempty.saturating_add(s.nonempty);
            for ((&i, &n2), &c) in s.item.iter().zip(&s.norm2).zip(&s.count) {
                norm2[i as usize] += n2;
                count[i as usize] = count[i as usize].saturating_add(c);
            }
        }
        ItemStats { norm2, count, nonempty }
    }

    /// [`ItemStats::combine`] of blocks given as bytes, which must be in strictly
    /// increasing block order and of a catalogue of `items`.
    pub fn combine_bytes(items: usize, parts: &[&[u8]]) -> Result<Self, PartialError> {
        let parts = parts.iter().map(|b| BlockStats::from_bytes(b)).collect::<Result<Vec<_>, _>>()?;
        if parts.windows(2).any(|w| w[0].block >= w[1].block) {
            return bad("item statistics: the blocks are not in increasing block order");
        }
        if let Some(s) = parts.iter().find(|s| s.items as usize != items) {
            return bad(format!("item statistics: block {} has {} items, not {items}", s.block, s.items));
        }
        Ok(ItemStats::combine(items, &parts))
    }

    /// The number of items.
    pub fn items(&self) -> usize {
        self.norm2.len()
    }
}

/// One item block's neighbour lists (the reduce stage's output).
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborBlock {
    items: u32,
    first: u32,
    lens: Vec<u32>,
    index: Vec<u32>,
    sim: Vec<f32>,
}

/// The reduce stage: item block `b` (of `item_block` items) from its pairs' partials in
/// customer-block order and the combined statistics: for each item, the partials' dot
/// products (and counts) added in that order, finished into the measure's similarity and
/// the top `k` kept, as the single-machine kernel selects them (score, then lowest index).
/// The caller passes partials of this item block only (checked when they come as bytes,
/// [`reduce_bytes`]).
pub fn reduce(
    b: usize,
    item_block: usize,
    parts: &[Pairs],
    stats: &ItemStats,
    k: usize,
    params: &SimilarityParams,
) -> NeighborBlock {
    let items = stats.items();
    let range = item_range(b, item_block.max(1), items);
    let rowstats = RowStats::of_sums(stats.norm2.clone(), stats.count.clone());
    let features = stats.nonempty as f32;
    let (mut acc, mut cnt, mut seen) = (vec![0f32; items], vec![0u32; items], vec![false; items]);
    let (mut touched, mut cands) = (Vec::new(), Vec::new());
    let mut at = vec![0usize; parts.len()];
    let mut out = NeighborBlock {
        items: items as u32,
        first: range.start as u32,
        lens: Vec::new(),
        index: Vec::new(),
        sim: Vec::new(),
    };
    for (x, i) in range.enumerate() {
        for (p, at) in parts.iter().zip(&mut at) {
            let len = p.lens[x] as usize;
            for e in *at..*at + len {
                let j = p.other[e] as usize;
                if !seen[j] {
                    seen[j] = true;
                    touched.push(j);
                }
                acc[j] += p.dot[e];
                if let Some(&c) = p.shared.get(e) {
                    cnt[j] = cnt[j].saturating_add(c);
                }
            }
            *at += len;
        }
        let q = QueryStats { norm2: stats.norm2[i], inv_norm: inverse_sqrt(stats.norm2[i]), count: stats.count[i] };
        let mut top = Pruned::new(k);
        cands.clear();
        for &j in &touched {
            let (dot, n) = (std::mem::take(&mut acc[j]), std::mem::take(&mut cnt[j]));
            seen[j] = false;
            if let Some(sim) = finish(params, &rowstats, features, q, j, dot, n) {
                if top.admits(sim) {
                    top.push(&mut cands, Neighbor { index: j as u32, sim, shared: n });
                }
            }
        }
        touched.clear();
        keep_top(&mut cands, k);
        cands.sort_unstable_by_key(|c| c.index);
        out.lens.push(cands.len() as u32);
        out.index.extend(cands.iter().map(|c| c.index));
        out.sim.extend(cands.iter().map(|c| c.sim));
    }
    out
}

/// [`reduce`] of partials given as bytes: each must be of item block `b` and of the
/// statistics' catalogue, in strictly increasing customer-block order.
pub fn reduce_bytes(
    b: usize,
    item_block: usize,
    parts: &[&[u8]],
    stats: &ItemStats,
    k: usize,
    params: &SimilarityParams,
) -> Result<NeighborBlock, PartialError> {
    check(params).map_err(PartialError)?;
    let range = item_range(b, item_block.max(1), stats.items());
    let parts = parts.iter().map(|p| Pairs::from_bytes(p)).collect::<Result<Vec<_>, _>>()?;
    for p in &parts {
        if p.items as usize != stats.items() || p.first as usize != range.start || p.lens.len() != range.len() {
            return bad(format!("pairs of customer block {}: not of item block {b} of this catalogue", p.block));
        }
        if p.shared.is_empty() && needs_shared(params) && !p.is_empty() {
            return bad(format!("pairs of customer block {}: the measure needs customer counts", p.block));
        }
    }
    if parts.windows(2).any(|w| w[0].block >= w[1].block) {
        return bad("pairs: not in increasing customer-block order");
    }
    Ok(reduce(b, item_block, &parts, stats, k, params))
}

/// The item blocks' lists, in item order, as the items x items neighbour matrix; every
/// item must be covered once, in order.
pub fn assemble(blocks: &[NeighborBlock]) -> Result<Csr, PartialError> {
    let items = blocks.first().map_or(0, |b| b.items as usize);
    let mut next = 0usize;
    let (mut indptr, mut index, mut sim) = (vec![0usize], Vec::new(), Vec::new());
    for b in blocks {
        if b.items as usize != items || b.first as usize != next {
            return bad(format!("neighbour blocks: expected the block starting at item {next} of {items}"));
        }
        next += b.lens.len();
        for &l in &b.lens {
            indptr.push(indptr.last().copied().unwrap_or(0) + l as usize);
        }
        index.extend_from_slice(&b.index);
        sim.extend_from_slice(&b.sim);
    }
    if next != items {
        return bad(format!("neighbour blocks: they cover {next} of {items} items"));
    }
    Ok(Csr::new((items, items), indptr, index, sim))
}

/// The whole fit in-process: blocks of `sum_block` customers of the weighted matrix
/// mapped, their statistics combined, and item blocks reduced, all in parallel; the
/// neighbours are those any spread of the same blocks over machines gives.
pub fn fit(weighted: &Csr, k: usize, params: &SimilarityParams, sum_block: usize) -> Csr {
    let (customers, items) = weighted.shape();
    let b = sum_block.max(1);
    let blocks: Vec<CustomerBlock> = (0..customers.div_ceil(b))
        .into_par_iter()
        .map(|c| CustomerBlock::of(weighted, c as u32, c * b..((c + 1) * b).min(customers)))
        .collect();
    let stats: Vec<BlockStats> = blocks.par_iter().map(CustomerBlock::stats).collect();
    let stats = ItemStats::combine(items, &stats);
    // Item blocks small enough to keep every core busy; their size changes no number.
    let item_block = items.div_ceil(rayon::current_num_threads() * 16).max(1);
    let shared = needs_shared(params);
    let lists: Vec<NeighborBlock> = (0..items.div_ceil(item_block))
        .into_par_iter()
        .map(|ib| {
            let range = item_range(ib, item_block, items);
            let parts: Vec<Pairs> = blocks.iter().map(|c| c.pairs(range.clone(), shared)).collect();
            reduce(ib, item_block, &parts, &stats, k, params)
        })
        .collect();
    assemble(&lists).expect("the item blocks cover every item in order")
}

// ---- bytes ------------------------------------------------------------------------------

const VERSION: u32 = 1;

struct Out(Vec<u8>);

impl Out {
    fn new(magic: &[u8; 4]) -> Self {
        let mut v = magic.to_vec();
        v.extend_from_slice(&VERSION.to_le_bytes());
        Out(v)
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn u64(&mut self, x: u64) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn u32s(&mut self, xs: &[u32]) -> &mut Self {
        xs.iter().for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
        self
    }
    fn f32s(&mut self, xs: &[f32]) -> &mut Self {
        xs.iter().for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
        self
    }
    fn f64s(&mut self, xs: &[f64]) -> &mut Self {
        xs.iter().for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
        self
    }
}

struct In<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> In<'a> {
    fn new(what: &'static str, magic: &[u8; 4], bytes: &'a [u8]) -> Result<Self, PartialError> {
        let mut r = In { what, rest: bytes };
        if r.take(4)? != magic {
            return bad(format!("{what}: wrong magic bytes (expected {})", String::from_utf8_lossy(magic)));
        }
        match r.u32()? {
            VERSION => Ok(r),
            v => bad(format!("{what}: version {v}, this cobuy reads {VERSION}")),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], PartialError> {
        if self.rest.len() < n {
            return bad(format!("{}: truncated", self.what));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, PartialError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, PartialError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn len(&mut self, n: u64, size: usize) -> Result<&'a [u8], PartialError> {
        let n = usize::try_from(n).ok().and_then(|n| n.checked_mul(size));
        match n {
            Some(n) => self.take(n),
            None => bad(format!("{}: truncated", self.what)),
        }
    }
    fn u32s(&mut self, n: u64) -> Result<Vec<u32>, PartialError> {
        Ok(self.len(n, 4)?.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
    fn f32s(&mut self, n: u64) -> Result<Vec<f32>, PartialError> {
        Ok(self.len(n, 4)?.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
    fn f64s(&mut self, n: u64) -> Result<Vec<f64>, PartialError> {
        Ok(self.len(n, 8)?.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }
    fn end(&self) -> Result<(), PartialError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            bad(format!("{}: {} bytes after the end", self.what, self.rest.len()))
        }
    }
}

/// Row pointers from row lengths, checked against the entries and the columns (sorted,
/// distinct, below `cols`).
fn rows_from(what: &str, lens: &[u32], index: &[u32], cols: usize) -> Result<Vec<usize>, PartialError> {
    let mut ptr = Vec::with_capacity(lens.len() + 1);
    ptr.push(0usize);
    for &l in lens {
        ptr.push(ptr[ptr.len() - 1] + l as usize);
    }
    check_rows(&ptr, index, (lens.len(), cols)).map_err(|e| PartialError(format!("{what}: {e}")))?;
    Ok(ptr)
}

impl CustomerBlock {
    /// The `CBR1` bytes of customers `range` of the weighted matrix `m`, as block `index`.
    pub fn encode(m: &Csr, index: u32, range: Range<usize>) -> Vec<u8> {
        let ptr = m.proper_indptr();
        let (a, b) = (ptr[range.start], ptr[range.end]);
        let lens: Vec<u32> = ptr[range.start..=range.end].windows(2).map(|w| (w[1] - w[0]) as u32).collect();
        let mut o = Out::new(b"CBR1");
        o.u32(index).u32(m.cols() as u32).u32(range.len() as u32).u64((b - a) as u64);
        o.u32s(&lens).u32s(&m.indices()[a..b]).f32s(&m.data()[a..b]);
        o.0
    }

    /// A block from its `CBR1` bytes, of a catalogue of `items` (checked before anything
    /// of that size is allocated).
    pub fn from_bytes(items: usize, bytes: &[u8]) -> Result<Self, PartialError> {
        let mut r = In::new("customer rows", b"CBR1", bytes)?;
        let (index, found, rows, nnz) = (r.u32()?, r.u32()?, r.u32()?, r.u64()?);
        if found as usize != items {
            return bad(format!("customer rows: {found} items, not {items}"));
        }
        let (lens, cols, vals) = (r.u32s(u64::from(rows))?, r.u32s(nnz)?, r.f32s(nnz)?);
        r.end()?;
        let ptr = rows_from("customer rows", &lens, &cols, items)?;
        Ok(CustomerBlock::new(index, Csr::new((rows as usize, items), ptr, cols, vals)))
    }
}

impl BlockStats {
    /// The `CBS1` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Out::new(b"CBS1");
        o.u32(self.block).u32(self.items).u64(self.nonempty).u32(self.item.len() as u32);
        o.u32s(&self.item).f64s(&self.norm2).u32s(&self.count);
        o.0
    }

    /// From `CBS1` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PartialError> {
        let mut r = In::new("block statistics", b"CBS1", bytes)?;
        let (block, items, nonempty, n) = (r.u32()?, r.u32()?, r.u64()?, r.u32()?);
        let n = u64::from(n);
        let s = BlockStats { block, items, nonempty, item: r.u32s(n)?, norm2: r.f64s(n)?, count: r.u32s(n)? };
        r.end()?;
        rows_from("block statistics", &[n as u32], &s.item, items as usize)?;
        Ok(s)
    }
}

impl Pairs {
    /// The `CBP1` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Out::new(b"CBP1");
        o.u32(self.block).u32(self.items).u32(self.first).u32(self.lens.len() as u32);
        o.u32(u32::from(!self.shared.is_empty())).u64(self.other.len() as u64);
        o.u32s(&self.lens).u32s(&self.other).f32s(&self.dot).u32s(&self.shared);
        o.0
    }

    /// From `CBP1` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PartialError> {
        let mut r = In::new("pairs", b"CBP1", bytes)?;
        let (block, items, first, n, flags, nnz) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u64()?);
        let (lens, other, dot) = (r.u32s(u64::from(n))?, r.u32s(nnz)?, r.f32s(nnz)?);
        let shared = if flags & 1 == 1 { r.u32s(nnz)? } else { Vec::new() };
        r.end()?;
        if u64::from(first) + u64::from(n) > u64::from(items) {
            return bad("pairs: the item range is outside the catalogue");
        }
        let ptr = rows_from("pairs", &lens, &other, items as usize)?;
        if (0..n as usize).any(|x| other[ptr[x]..ptr[x + 1]].binary_search(&(first + x as u32)).is_ok()) {
            return bad("pairs: an item paired with itself");
        }
        Ok(Pairs { block, items, first, lens, other, dot, shared })
    }
}

impl ItemStats {
    /// The `CBI1` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Out::new(b"CBI1");
        o.u32(self.norm2.len() as u32).u64(self.nonempty).f64s(&self.norm2).u32s(&self.count);
        o.0
    }

    /// From `CBI1` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PartialError> {
        let mut r = In::new("item statistics", b"CBI1", bytes)?;
        let (items, nonempty) = (u64::from(r.u32()?), r.u64()?);
        let s = ItemStats { norm2: r.f64s(items)?, count: r.u32s(items)?, nonempty };
        r.end()?;
        Ok(s)
    }
}

impl NeighborBlock {
    /// The `CBN1` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Out::new(b"CBN1");
        o.u32(self.items).u32(self.first).u32(self.lens.len() as u32).u64(self.index.len() as u64);
        o.u32s(&self.lens).u32s(&self.index).f32s(&self.sim);
        o.0
    }

    /// From `CBN1` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PartialError> {
        let mut r = In::new("neighbours", b"CBN1", bytes)?;
        let (items, first, n, nnz) = (r.u32()?, r.u32()?, r.u32()?, r.u64()?);
        let b = NeighborBlock { items, first, lens: r.u32s(u64::from(n))?, index: r.u32s(nnz)?, sim: r.f32s(nnz)? };
        r.end()?;
        if u64::from(first) + u64::from(n) > u64::from(items) {
            return bad("neighbours: the item range is outside the catalogue");
        }
        let ptr = rows_from("neighbours", &b.lens, &b.index, items as usize)?;
        if (0..n as usize).any(|x| b.index[ptr[x]..ptr[x + 1]].binary_search(&(first + x as u32)).is_ok()) {
            return bad("neighbours: an item is its own neighbour");
        }
        if b.sim.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return bad("neighbours: a similarity is not a positive number");
        }
        Ok(b)
    }
}
