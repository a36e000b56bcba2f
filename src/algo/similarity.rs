//! A matrix in, each row's top-k most similar rows out.
//!
//! One kernel serves item-item and customer-customer similarity. Given `a` (entities x
//! features, e.g. items x customers) and its transpose `at` (or a matrix of the same
//! pattern with the values candidates bring: see `TopK::new`), the similarity of row `i` to
//! every other row is computed row by row (Gustavson): walk `i`'s features and, for each,
//! every row holding it, accumulating dot products (and shared-feature counts when the
//! measure needs them) into a dense per-worker accumulator; turn each into the final
//! similarity (measure, shrinkage, minimum overlap); keep the top `k`. The full product is
//! never materialised, and rows are scheduled in contiguous ranges of equal estimated cost
//! (a bestseller's row costs as much as thousands of rare items' rows).
//!
//! Architecture invariant: kernels do no I/O and cannot fail; the result depends only on
//! the input, never on the number of threads (each row is computed by one worker, in a
//! fixed order).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::matrix::Csr;

/// How two rows' overlap becomes a similarity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "measure", rename_all = "kebab-case")]
pub enum Measure {
    /// `dot(i, j) / (|i| |j|)` over the weighted values.
    #[default]
    Cosine,
    /// `shared / (n_i + n_j - shared)` over presence (weights ignored).
    Jaccard,
    /// `dot(i, j) / (|i|^(2 alpha) |j|^(2 (1 - alpha)))`: alpha = 0.5 is cosine; larger alpha
    /// penalises popular `i` less than popular `j`, favouring rarer neighbours.
    AsymmetricCosine {
        /// Exponent split between the two norms, 0 to 1.
        alpha: f32,
    },
    /// `shared * N / (n_i n_j)` over presence, with `N` the number of features anyone holds
    /// (for items: customers with purchases): how much more often two rows meet than by
    /// chance.
    Lift,
    /// RP3beta (Paudel et al. 2016): the probability of a three-step random walk item ->
    /// customer -> item, each step's transition probabilities raised to `alpha`, divided
    /// by the destination's number of buyers raised to `beta`, so that bestsellers do not
    /// top every list. Item-item only.
    #[serde(rename = "rp3beta")]
    Rp3Beta {
        /// Exponent on the transition probabilities (1: the plain walk).
        alpha: f32,
        /// Popularity penalty exponent (0: none).
        beta: f32,
    },
}

impl Measure {
    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Measure::Cosine => "cosine",
            Measure::Jaccard => "jaccard",
            Measure::AsymmetricCosine { .. } => "asymmetric-cosine",
            Measure::Lift => "lift",
            Measure::Rp3Beta { .. } => "rp3beta",
        }
    }
}

/// A measure with its damping. Validate with [`SimilarityParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct SimilarityParams {
    /// The measure.
    #[serde(flatten)]
    pub measure: Measure,
    /// Shrinkage `lambda`: similarities are multiplied by `shared / (shared + lambda)`, so
    /// pairs supported by few shared features count less. 0: off.
    #[serde(default)]
    pub shrinkage: f32,
    /// Pairs sharing fewer features than this are not neighbours. 0 and 1: any overlap.
    #[serde(default)]
    pub min_shared: u32,
    /// How ties at the k-th place are settled.
    #[serde(default)]
    pub ties: Ties,
}

/// Which of several rows tied at the k-th place become neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Ties {
    /// The lowest indices (ids in natural order): the selection is a function of the
    /// similarities alone, whatever order the candidates were gathered in.
    #[default]
    LowestIndex,
    /// The rules of a row-by-row product that feeds a size-`k + 1` min-heap, the row itself
    /// counted as one of its own neighbours (implicit's `all_pairs_knn`): candidates are
    /// offered newest-first-touched first, one enters a full heap only when strictly better
    /// than its weakest entry, and the weakest entry with the lowest index leaves. Use it to
    /// reproduce such a model exactly; it turns pruning and relabelling off, so it is slower.
    VisitOrder,
}

impl Ties {
    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Ties::LowestIndex => "lowest-index",
            Ties::VisitOrder => "visit-order",
        }
    }
}

impl SimilarityParams {
    /// Checks ranges; the message names the parameter.
    pub fn check(&self) -> Result<(), String> {
        if let Measure::AsymmetricCosine { alpha } = self.measure {
            if !(0.0..=1.0).contains(&alpha) {
                return Err(format!("the asymmetric cosine alpha must be between 0 and 1, got {alpha}"));
            }
        }
        if let Measure::Rp3Beta { alpha, beta } = self.measure {
            if self.ties == Ties::VisitOrder {
                return Err("ties visit-order reproduces plain product kernels; rp3beta has none to reproduce".into());
            }
            if !(alpha.is_finite() && alpha > 0.0 && alpha <= 4.0) {
                return Err(format!("the RP3beta alpha must be above 0 and at most 4, got {alpha}"));
            }
            if !(beta.is_finite() && (0.0..=2.0).contains(&beta)) {
                return Err(format!("the RP3beta beta must be between 0 and 2, got {beta}"));
            }
        }
        if !(self.shrinkage.is_finite() && self.shrinkage >= 0.0) {
            return Err(format!("shrinkage must be a number >= 0, got {}", self.shrinkage));
        }
        Ok(())
    }

    fn needs_shared(&self) -> bool {
        self.shrinkage > 0.0 || self.min_shared > 1 || matches!(self.measure, Measure::Jaccard | Measure::Lift)
    }
}

/// Per-row statistics the measures need: sum of squared weights and number of entries.
#[derive(Debug, Clone)]
pub(crate) struct RowStats {
    /// Sums of squared weights, in f64: decayed weights can be so small that their squares
    /// lose all precision in f32.
    norm2: Vec<f64>,
    /// `1 / sqrt(norm2)` (0 for empty rows): cosine without a division per candidate.
    inv_norm: Vec<f64>,
    count: Vec<u32>,
    /// `inv_norm` rounded to f32 for a quick first test ([`TopK::cosine_top`]),
    /// `+inf` where it falls outside `[2^-60, 2^60]`, so that such rows always get the
    /// exact test; padded with zeros to a whole number of blocks.
    inv_norm32: Vec<f32>,
    /// Per feature (column), the largest normalised value any row holds there: bounds how
    /// much the feature can add to any row's cosine (f64: an f32 could round it down, or to 0).
    colmax: Vec<f64>,
    /// What MaxScore's error bound needs ([`Slack`]): whether every value is finite and not
    /// negative, the largest sum of squares, the largest inverse norm, the longest row.
    prunable: bool,
    max_norm2: f64,
    max_inv_norm: f64,
    longest: u32,
}

impl RowStats {
    /// Statistics of every row of `a`.
    pub fn of(a: &Csr) -> Self {
        let ptr = a.proper_indptr();
        let norm2 = (0..a.rows())
            .map(|r| a.data()[ptr[r]..ptr[r + 1]].iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
            .collect();
        RowStats::with_norms(a, norm2)
    }

    /// The statistics [`finish`] reads (sums of squares and entries per row), from sums
    /// made elsewhere: a fit split over blocks of customers ([`crate::algo::partial`]).
    /// Nothing that pruning needs is filled in: use it with [`finish`] only.
    pub fn of_sums(norm2: Vec<f64>, count: Vec<u32>) -> Self {
        let inv_norm = norm2.iter().map(|&n| inverse_sqrt(n)).collect();
        let (colmax, inv_norm32) = (Vec::new(), Vec::new());
        let (prunable, max_norm2, max_inv_norm, longest) = (false, 0.0, 0.0, 0);
        RowStats { norm2, inv_norm, count, inv_norm32, colmax, prunable, max_norm2, max_inv_norm, longest }
    }

    /// Statistics of every row of `a`, whose measures divide by the sums of squares
    /// `norm2` rather than the rows' own: the undecayed lengths of time-decayed rows (see
    /// [`crate::matrix::Weighting`]). Each must be at least its row's own, so that a
    /// normalised row is no longer than 1, as [`TopK::cosine_pruned`]'s bounds assume.
    pub fn with_norms(a: &Csr, norm2: Vec<f64>) -> Self {
        let ptr = a.proper_indptr();
        debug_assert_eq!(norm2.len(), a.rows());
        let inv_norm: Vec<f64> = norm2.iter().map(|&n| inverse_sqrt(n)).collect();
        let count: Vec<u32> = ptr.windows(2).map(|w| (w[1] - w[0]) as u32).collect();
        let mut colmax = vec![0f64; a.cols()];
        for r in 0..a.rows() {
            for k in ptr[r]..ptr[r + 1] {
                let f = a.indices()[k] as usize;
                colmax[f] = colmax[f].max(f64::from(a.data()[k]) * inv_norm[r]);
            }
        }
        let mut inv_norm32: Vec<f32> = inv_norm.iter().map(|&v| to_f32_in_range(v)).collect();
        inv_norm32.resize(padded(a.rows()), 0.0);
        let prunable = a.data().iter().all(|&v| v.is_finite() && v >= 0.0);
        let max_norm2 = norm2.iter().copied().fold(0.0, f64::max);
        let max_inv_norm = inv_norm.iter().copied().fold(0.0, f64::max);
        let longest = count.iter().copied().max().unwrap_or(0);
        RowStats { norm2, inv_norm, count, inv_norm32, colmax, prunable, max_norm2, max_inv_norm, longest }
    }
}

/// Values from `2^-60` to `2^60` rounded to f32, others `+inf` (see [`QUICK_MIN`]).
fn to_f32_in_range(v: f64) -> f32 {
    if (f64::from(QUICK_MIN)..=1.0 / f64::from(QUICK_MIN)).contains(&v) { v as f32 } else { f32::INFINITY }
}

/// Entries of the accumulator per block: one cache line of f32.
const BLOCK: usize = 16;

/// `n` rounded up to whole blocks.
fn padded(n: usize) -> usize {
    n.div_ceil(BLOCK) * BLOCK
}

/// `2^-60`. The quick f32 cosine (`dot * q32 * inv32`, inverse norms within
/// `[2^-60, 2^60]`) is within `3.1e-7` of the exact one, relatively, whenever it is at
/// least this large: then every intermediate is a normal f32. Below it, nothing is
/// concluded.
const QUICK_MIN: f32 = 1.0 / 1_152_921_504_606_846_976.0;

pub(crate) fn inverse_sqrt(n2: f64) -> f64 {
    if n2 > 0.0 { 1.0 / n2.sqrt() } else { 0.0 }
}

/// `dot * a * b` in f64: inverse norms of heavily decayed rows overflow `f32`.
#[inline]
fn cosine(dot: f32, a: f64, b: f64) -> f32 {
    (f64::from(dot) * a * b) as f32
}

/// The f32 unit roundoff, `2^-24`.
const UNIT: f64 = 1.0 / 16_777_216.0;

/// Half the smallest positive f32, `2^-150`: the most a result below the normal range
/// loses to rounding.
const TINY: f64 = f32::from_bits(1) as f64 / 2.0;

/// How far MaxScore's bounds must be widened for rounding ([`TopK::cosine_pruned`]): its
/// partial sums add a row's terms in another order, and over fewer terms, than the exact
/// score, so a bound is `x (1 + rel) + abs` above, `x (1 - rel) - abs` below.
///
/// Why these suffice, for a query of `m` distinct features with weights `w >= 0` and
/// rows of values `v >= 0` (u = `UNIT`, η = `TINY`): both paths multiply the same f32
/// products `p = fl(w v)`, within `(1 ± u) w v ± η`. A sum of nonnegative f32 in any order
/// is within factors `(1 ± u)^(n-1)` of the exact sum of its `n` terms (addition is exact
/// below the normal range), so the exact score's dot product is within `(1 ± u)^m` of
/// `Σ w v`, plus `2mη`, and so is a partial sum of a subset. The cosine is that dot times
/// two f64 inverse norms rounded to f32 (`1 ± u` and `η`), and shrinkage takes three more
/// f32 operations whose factor `n / (n + s)` is below 1 and grows with the overlap `n`.
/// Chaining these, the exact score lies within factors `1 ± γ(2m + 5)` (γ(n) =
/// `nu / (1 - nu)`, Higham's gamma) of the bound built from any partial sum, give or take
/// `5mη scale + 4η` (`scale` = `q.inv_norm * inv_norm[j]`); the terms not summed (and
/// products that rounded to 0) are at most `bounds[t]` (plus `mη scale`). `rel` takes
/// `γ(2m + 8)` and adds `(longest row + 2m + 32) 2^-52` for the f64 roundings of the norms,
/// `colmax` and the bounds themselves; `abs` is `8(m scale + 1)η` with the largest `scale`
/// of any row. `None` (no pruning) when the matrix holds negative or
/// non-finite values, when sums could overflow f32 (`finish` rejects infinities), or when
/// the query is so long that `γ` is no longer small; the caller checks the query's
/// features (sorted, distinct) and weights (`>= 0`).
#[derive(Debug, Clone, Copy)]
struct Slack {
    rel: f64,
    abs: f64,
}

impl Slack {
    fn new(terms: usize, st: &RowStats, q: QueryStats) -> Option<Slack> {
        let n = 2.0 * terms as f64 + 8.0;
        let fits = 4.0 * (q.norm2 * st.max_norm2).sqrt() < f64::from(f32::MAX);
        if !st.prunable || !fits || n * UNIT > 0.25 {
            return None;
        }
        let rel = n * UNIT / (1.0 - n * UNIT) + (f64::from(st.longest) + n + 24.0) * f64::EPSILON;
        let abs = 8.0 * TINY * (terms as f64 * q.inv_norm * st.max_inv_norm + 1.0);
        Some(Slack { rel, abs })
    }

    #[inline]
    fn upper(&self, x: f64) -> f64 {
        x * (1.0 + self.rel) + self.abs
    }

    #[inline]
    fn lower(&self, x: f64) -> f64 {
        x * (1.0 - self.rel) - self.abs
    }
}

/// The dot product of a query, scattered by feature into `dense` (`-1` where it lacks the
/// feature), and one row, and the number of features they share. The row's features are
/// sorted, and so are the query's ([`TopK::cosine_pruned`]): the products are added up
/// from 0 in the query's order, as [`accumulate`] adds them into that row's sum; features
/// the query lacks add `+0`, which leaves a sum of nonnegative terms as it is.
fn dense_dot(dense: &[f32], ind: &[u32], val: &[f32]) -> (f32, u32) {
    let (mut dot, mut n) = (0f32, 0u32);
    for (&f, &v) in ind.iter().zip(val) {
        let w = dense[f as usize];
        dot += w.max(0.0) * v;
        n += u32::from(w >= 0.0);
    }
    (dot, n)
}

/// A query row's own statistics (sum of squared weights, its inverse root, entries).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueryStats {
    pub(crate) norm2: f64,
    pub(crate) inv_norm: f64,
    pub(crate) count: u32,
}

/// The final similarity of the query and row `j` from their dot product and shared
/// count; `None` when the pair is not a neighbour.
#[inline(always)]
pub(crate) fn finish(
    p: &SimilarityParams,
    st: &RowStats,
    features: f32,
    q: QueryStats,
    j: usize,
    dot: f32,
    shared: u32,
) -> Option<f32> {
    if p.min_shared > 1 && shared < p.min_shared {
        return None;
    }
    let sim = match p.measure {
        Measure::Cosine => cosine(dot, q.inv_norm, st.inv_norm[j]),
        Measure::AsymmetricCosine { alpha } => {
            let alpha = f64::from(alpha);
            (f64::from(dot) / (q.norm2.powf(alpha) * st.norm2[j].powf(1.0 - alpha))) as f32
        }
        // In u64: partials decoded from damaged bytes may claim more shared buyers than
        // the items have (an infinite result, dropped below), and no sum may wrap.
        Measure::Jaccard => {
            shared as f32 / (u64::from(q.count) + u64::from(st.count[j])).saturating_sub(u64::from(shared)) as f32
        }
        Measure::Lift => shared as f32 * features / (q.count as f32 * st.count[j] as f32),
        // The walk's probabilities were put into the two matrices by `item_top_k`.
        Measure::Rp3Beta { beta, .. } => (f64::from(dot) / f64::from(st.count[j]).powf(f64::from(beta))) as f32,
    };
    let sim = if p.shrinkage > 0.0 { sim * shared as f32 / (shared as f32 + p.shrinkage) } else { sim };
    (sim.is_finite() && sim > 0.0).then_some(sim)
}

/// Something ranked: an index and a score.
pub(crate) trait Ranked {
    fn key(&self) -> (u32, f32);
}

impl Ranked for (u32, f32) {
    #[inline]
    fn key(&self) -> (u32, f32) {
        *self
    }
}

/// A neighbouring row: its index, similarity, and the number of features shared (0 when
/// the measure did not need to count them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The neighbour's row index.
    pub index: u32,
    /// Its similarity to the query.
    pub sim: f32,
    /// Features (items, or customers) both rows hold.
    pub shared: u32,
}

impl Ranked for Neighbor {
    #[inline]
    fn key(&self) -> (u32, f32) {
        (self.index, self.sim)
    }
}

/// Orders by score descending, then index ascending: a total order, so the selected set
/// and its order never depend on how the candidates were gathered.
#[inline]
pub(crate) fn by_score_then_index<T: Ranked>(a: &T, b: &T) -> std::cmp::Ordering {
    let (a, b) = (a.key(), b.key());
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Keeps the best `k` candidates under [`by_score_then_index`], unsorted.
pub(crate) fn keep_top<T: Ranked>(cands: &mut Vec<T>, k: usize) {
    if cands.len() > k {
        if k > 0 {
            cands.select_nth_unstable_by(k - 1, by_score_then_index);
        }
        cands.truncate(k);
    }
}

/// Collects the top `k` of a stream of candidates without keeping them all: candidates
/// below the k-th best so far cannot make the cut, so the list is trimmed to `k` whenever
/// it doubles and weaker candidates are dropped on arrival. Ties at the threshold are
/// kept, so the final selection by (score, index) is exact.
pub(crate) struct Pruned {
    k: usize,
    threshold: f32,
}

impl Pruned {
    pub(crate) fn new(k: usize) -> Self {
        Pruned { k, threshold: f32::NEG_INFINITY }
    }

    /// Whether a candidate with this score can still make the cut.
    #[inline]
    pub(crate) fn admits(&self, score: f32) -> bool {
        score >= self.threshold
    }

    #[inline]
    pub(crate) fn push<T: Ranked>(&mut self, cands: &mut Vec<T>, c: T) {
        cands.push(c);
        if self.k > 0 && cands.len() >= self.k.max(16).saturating_mul(2) {
            keep_top(cands, self.k);
            self.threshold = cands.iter().map(|c| c.key().1).fold(f32::INFINITY, f32::min);
        }
    }
}

/// Per-worker buffers for [`TopK`], sized to the number of rows once.
#[derive(Debug, Clone)]
pub(crate) struct KernelScratch {
    acc: Vec<f32>,
    shared: Vec<u32>,
    touched: Vec<u32>,
    cands: Vec<Neighbor>,
    /// Query terms in processing order (pruned queries).
    order: Vec<(u32, f32)>,
    bounds: Vec<f64>,
    sums: Vec<f64>,
    near: Vec<(f64, u32)>,
    /// The query's weights by feature, `-1` elsewhere (pruned queries; sized on first use).
    dense: Vec<f32>,
    /// Queries whose MaxScore walk stopped before the last column (tests check that the
    /// pruned path really prunes).
    #[cfg(test)]
    stopped: usize,
}

/// The top-k kernel over one matrix and its transpose.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopK<'a> {
    a: &'a Csr,
    at: Candidates<'a>,
    stats: &'a RowStats,
    params: SimilarityParams,
    features: f32,
    count_shared: bool,
    /// When the rows were relabelled for locality: `label[row]` is the row's caller-facing
    /// index (reported, and used to break ties) and `row_of[label]` its inverse.
    relabel: Option<(&'a [u32], &'a [u32])>,
    /// Use MaxScore pruning for cosine (see [`TopK::without_pruning`]).
    prune: bool,
}

/// Where [`TopK`] reads a candidate's row: `at` as given, or packed ([`TopK::packed`]).
#[derive(Debug, Clone, Copy)]
enum Candidates<'a> {
    Csr(&'a Csr),
    Packed(&'a Packed),
}

impl<'a> TopK<'a> {
    /// A kernel comparing the rows of `a` (with `at` its transpose and `stats` its row
    /// statistics). `at` may instead hold other values on the transpose's pattern, the
    /// values each row brings as a candidate, while `a`'s rows are what it is queried
    /// with: RP3beta's two steps; item-kNN under time decay, which queries with undecayed
    /// columns and compares with decayed ones. Only the pruned cosine path recomputes a
    /// candidate's dot product from its row of `a`, so it needs the true transpose: customer
    /// similarity keeps it, and queries with undecayed rows from outside
    /// ([`crate::algo::user_knn::CustomerKernel`]).
    pub fn new(a: &'a Csr, at: &'a Csr, stats: &'a RowStats, params: SimilarityParams) -> Self {
        // Lift's N: the features anyone holds (customers with purchases, for items).
        let features = at.proper_indptr().windows(2).filter(|w| w[1] > w[0]).count() as f32;
        TopK::with(a, Candidates::Csr(at), features, stats, params)
    }

    /// A kernel whose candidates' rows are `at`'s, packed ([`Packed`]): `a`'s entries
    /// name features by their rows' first slots. Without pruning, which needs `at`.
    pub fn packed(a: &'a Csr, at: &'a Packed, stats: &'a RowStats, params: SimilarityParams) -> Self {
        TopK::with(a, Candidates::Packed(at), at.nonempty as f32, stats, params).without_pruning()
    }

    fn with(a: &'a Csr, at: Candidates<'a>, features: f32, stats: &'a RowStats, params: SimilarityParams) -> Self {
        TopK { a, at, stats, params, features, count_shared: params.needs_shared(), relabel: None, prune: true }
    }

    /// Reports row `r` as `label[r]` (and asks for row `row_of[l]` when `all` builds
    /// label `l`'s row): for matrices whose rows were permuted for cache locality.
    pub fn relabelled(mut self, label: &'a [u32], row_of: &'a [u32]) -> Self {
        self.relabel = Some((label, row_of));
        self
    }

    /// Walks every column in full. Pruning pays when a few very long columns dominate a
    /// query (bestsellers among a customer's items); item-item rows walk customers'
    /// baskets instead, where it only adds bookkeeping (1M x 100K generated set: 5.8 s
    /// with pruning, 4.4 s without).
    pub fn without_pruning(mut self) -> Self {
        self.prune = false;
        self
    }

    /// Also counts shared features when the measure does not need them (to report them).
    pub fn counting_shared(mut self) -> Self {
        self.count_shared = true;
        self
    }

    /// Buffers for one worker.
    pub fn scratch(&self) -> KernelScratch {
        KernelScratch {
            acc: vec![0.0; padded(self.a.rows())],
            shared: if self.count_shared { vec![0; self.a.rows()] } else { Vec::new() },
            touched: Vec::new(),
            cands: Vec::new(),
            order: Vec::new(),
            bounds: Vec::new(),
            sums: Vec::new(),
            near: Vec::new(),
            dense: Vec::new(),
            #[cfg(test)]
            stopped: 0,
        }
    }

    /// Estimated cost of row `i`: the number of accumulator updates it makes.
    pub fn cost(&self, i: usize) -> u64 {
        let features = self.a.indices()[self.a.indptr().outer_inds_sz(i)].iter();
        match self.at {
            Candidates::Csr(at) => features.map(|&f| at.indptr().nnz_in_outer_sz(f as usize) as u64).sum(),
            Candidates::Packed(p) => features.map(|&f| u64::from(p.slots[f as usize][0])).sum(),
        }
    }

    /// Row `i`'s top-`k` neighbours (not itself), best first, into `out` (cleared first).
    /// Tests only: customers are queried through [`crate::algo::user_knn::CustomerKernel`].
    #[cfg(test)]
    pub fn row(&self, i: usize, k: usize, s: &mut KernelScratch, out: &mut Vec<Neighbor>) {
        let r = self.a.indptr().outer_inds_sz(i);
        self.query(&self.a.indices()[r.clone()], &self.a.data()[r], Some(i), k, s, out);
    }

    /// The top-`k` rows most similar to a row given by its features and weights (for
    /// example a customer scored from new purchases), best first, into `out`; `own` (the
    /// query's own row in the matrix, if any) is never its own neighbour.
    pub fn query(
        &self,
        features: &[u32],
        weights: &[f32],
        own: Option<usize>,
        k: usize,
        s: &mut KernelScratch,
        out: &mut Vec<Neighbor>,
    ) {
        self.query_unsorted(features, weights, own, k, s);
        out.clear();
        out.extend_from_slice(&s.cands);
        out.sort_unstable_by(by_score_then_index);
    }

    /// Leaves the query's top-`k` in `s.cands`, unsorted; `own` is the query's own row,
    /// never its own neighbour.
    fn query_unsorted(&self, features: &[u32], weights: &[f32], own: Option<usize>, k: usize, s: &mut KernelScratch) {
        let norm2 = weights.iter().map(|&w| f64::from(w) * f64::from(w)).sum::<f64>();
        let q = QueryStats { norm2, inv_norm: inverse_sqrt(norm2), count: features.len() as u32 };
        let visit_order = self.params.ties == Ties::VisitOrder;
        if self.prune
            && !visit_order
            && self.params.measure == Measure::Cosine
            && k > 0
            && self.cosine_pruned(features, weights, own, k, q, s)
        {
            return;
        }
        let KernelScratch { acc, shared, touched, cands, .. } = s;
        match self.at {
            Candidates::Csr(at) => accumulate(at, features, weights, acc, shared, touched),
            Candidates::Packed(p) => p.accumulate(features, weights, acc, shared, touched),
        }
        cands.clear();
        if visit_order {
            return self.visit_order_top(own, k, q, s);
        }
        if self.plain_cosine() {
            return self.cosine_top(own, k, q, s);
        }
        let mut top = Pruned::new(k);
        let count_shared = !shared.is_empty();
        for &j in touched.iter() {
            let j = j as usize;
            let dot = std::mem::take(&mut acc[j]);
            let n = if count_shared { std::mem::take(&mut shared[j]) } else { 0 };
            if Some(j) == own {
                continue;
            }
            if let Some(sim) = finish(&self.params, self.stats, self.features, q, j, dot, n) {
                if top.admits(sim) {
                    let index = self.relabel.map_or(j as u32, |(label, _)| label[j]);
                    top.push(cands, Neighbor { index, sim, shared: n });
                }
            }
        }
        touched.clear();
        keep_top(cands, k);
    }

    /// Cosine with nothing that needs the shared counts: the similarity is a function of
    /// the dot product and the two norms alone.
    fn plain_cosine(&self) -> bool {
        self.params.measure == Measure::Cosine
            && self.params.shrinkage == 0.0
            && self.params.min_shared <= 1
            && !self.count_shared
            && self.params.ties == Ties::LowestIndex
    }

    /// Selects the top `k` by cosine into `s.cands` and clears the accumulator. A quick
    /// f32 cosine (see [`QUICK_MIN`]) rules out most rows without the exact f64 one or a
    /// branch the CPU cannot predict; the rows it keeps get the exact similarity, as
    /// [`finish`] computes it. When a large share of the rows was touched, the whole
    /// accumulator is scanned in index order, a block of [`BLOCK`] sums (one cache line)
    /// at a time, rather than followed through the `touched` list, one random access per
    /// row. The selection does not depend on the order of candidates either way.
    fn cosine_top(&self, own: Option<usize>, k: usize, q: QueryStats, s: &mut KernelScratch) {
        let KernelScratch { acc, touched, cands, .. } = s;
        let (inv, inv32) = (&self.stats.inv_norm, &self.stats.inv_norm32);
        let q32 = to_f32_in_range(q.inv_norm);
        let mut top = Pruned::new(k);
        // Below `low` the exact similarity is below the threshold.
        let mut low = f32::NEG_INFINITY;
        let mut offer = |top: &mut Pruned, low: &mut f32, j: usize, dot: f32| {
            let sim = cosine(dot, q.inv_norm, inv[j]);
            if sim.is_finite() && sim > 0.0 && top.admits(sim) && Some(j) != own {
                let index = self.relabel.map_or(j as u32, |(label, _)| label[j]);
                top.push(cands, Neighbor { index, sim, shared: 0 });
                *low = top.threshold * (1.0 - 1e-6);
            }
        };
        if touched.len() * DENSE_SCAN < acc.len() {
            for &j in touched.iter() {
                let j = j as usize;
                let dot = std::mem::take(&mut acc[j]);
                let quick = dot * q32 * inv32[j];
                if (quick >= QUICK_MIN) & (quick < low) {
                    continue;
                }
                offer(&mut top, &mut low, j, dot);
            }
        } else {
            for (b, (sums, norms)) in acc.chunks_exact_mut(BLOCK).zip(inv32.chunks_exact(BLOCK)).enumerate() {
                let mut pass = 0u32;
                for t in 0..BLOCK {
                    let quick = sums[t] * q32 * norms[t];
                    pass |= u32::from((sums[t] != 0.0) & !((quick >= QUICK_MIN) & (quick < low))) << t;
                }
                while pass != 0 {
                    let t = pass.trailing_zeros() as usize;
                    pass &= pass - 1;
                    offer(&mut top, &mut low, b * BLOCK + t, sums[t]);
                }
                sums.fill(0.0);
            }
        }
        touched.clear();
        keep_top(cands, k);
    }

    /// Selects from the accumulated candidates by [`Ties::VisitOrder`], into `s.cands`.
    fn visit_order_top(&self, own: Option<usize>, k: usize, q: QueryStats, s: &mut KernelScratch) {
        use std::cmp::Reverse;
        let KernelScratch { acc, shared, touched, cands, .. } = s;
        // Min-heap on (similarity bits, index): similarities are finite and positive, so
        // their bits order as the numbers do. It never holds more than the rows touched
        // (a `k` of a trillion must not reserve a trillion slots).
        let mut heap = std::collections::BinaryHeap::with_capacity(k.min(touched.len()) + 2);
        let count_shared = !shared.is_empty();
        for &j in touched.iter().rev() {
            let j = j as usize;
            let dot = std::mem::take(&mut acc[j]);
            let n = if count_shared { std::mem::take(&mut shared[j]) } else { 0 };
            let Some(sim) = finish(&self.params, self.stats, self.features, q, j, dot, n) else { continue };
            let entry = Reverse((sim.to_bits(), j as u32, n));
            if heap.len() <= k {
                heap.push(entry);
            } else if heap.peek().is_some_and(|Reverse(weakest)| sim.to_bits() > weakest.0) {
                heap.pop();
                heap.push(entry);
            }
        }
        touched.clear();
        // The row itself crowded out by ties: its slot goes the way of any evicted entry.
        if heap.len() > k && !heap.iter().any(|Reverse(e)| Some(e.1 as usize) == own) {
            heap.pop();
        }
        cands.extend(
            heap.into_iter()
                .map(|Reverse((bits, j, n))| Neighbor { index: j, sim: f32::from_bits(bits), shared: n })
                .filter(|c| Some(c.index as usize) != own),
        );
    }

    /// Exact top-`k` by cosine that skips most of the work bestsellers cause (MaxScore,
    /// as in search engines), or `false` (nothing done) when [`Slack`] cannot bound the
    /// rounding errors of this query. Query terms are processed cheapest column first;
    /// every partial sum gives a lower bound on a row's final similarity (all contributions
    /// are positive), and `colmax` bounds what the remaining terms can add to a row not
    /// seen yet. Once that bound falls below the k-th best lower bound, no unseen row can
    /// make the cut: the remaining (long) columns are not walked, and the rows seen whose
    /// upper bound still reaches the k-th best lower bound get their exact score.
    ///
    /// The answer is the exhaustive path's, bit for bit: a row is dropped only when an
    /// upper bound of its score is strictly below the lower bounds of `k` other rows that
    /// are neighbours, and every surviving row's dot product is recomputed from its own row
    /// with the additions in the query's order, the order [`accumulate`] makes them, and
    /// finished by [`finish`], so it is the same f32 as the exhaustive sum.
    fn cosine_pruned(
        &self,
        features: &[u32],
        weights: &[f32],
        own: Option<usize>,
        k: usize,
        q: QueryStats,
        s: &mut KernelScratch,
    ) -> bool {
        let st = self.stats;
        // Sorted distinct features (Cauchy-Schwarz below needs distinct ones, and the exact
        // dot products add in feature order) and weights not negative (nor NaN).
        if !features.windows(2).all(|w| w[0] < w[1]) || !weights.iter().all(|&w| w >= 0.0) {
            return false;
        }
        let Some(slack) = Slack::new(features.len(), st, q) else { return false };
        let Candidates::Csr(at) = self.at else { return false };
        let KernelScratch { acc, shared, touched, cands, order, bounds, sums, near, dense, .. } = s;
        let tptr = at.indptr();
        let len = |f: u32| tptr.nnz_in_outer_sz(f as usize);
        order.clear();
        order.extend(features.iter().copied().zip(weights.iter().copied()));
        order.sort_unstable_by_key(|&(f, _)| (len(f), f));
        // bounds[t]: the most terms t.. can add to the cosine of any row (before rounding).
        // Two bounds, the tighter wins: each term at most its weight times the column's
        // largest normalised value; and, by Cauchy-Schwarz (a row's normalised vector has
        // length 1), at most the norm of the remaining query weights.
        bounds.clear();
        bounds.resize(order.len() + 1, 0.0);
        let (mut by_column, mut rest2) = (0f64, 0f64);
        for t in (0..order.len()).rev() {
            let (f, w) = order[t];
            by_column += f64::from(w) * q.inv_norm * st.colmax[f as usize];
            rest2 += f64::from(w) * f64::from(w);
            bounds[t] = by_column.min(rest2.sqrt() * q.inv_norm);
        }
        let count_shared = !shared.is_empty();
        let mut stop = order.len();
        let mut walked = 0usize;
        let mut theta = f64::NEG_INFINITY;
        for t in 0..order.len() {
            let (f, w) = order[t];
            // Checking costs one pass over the rows seen: do it when the next column is
            // at least as long as a fraction of the work done so far.
            if touched.len() >= k && len(f) * 4 >= walked.max(64) {
                theta = slack.lower(self.kth_partial(acc, shared, touched, own, k, q, sums));
                if slack.upper(bounds[t]) < theta {
                    stop = t;
                    break;
                }
            }
            accumulate(at, &[f], &[w], acc, shared, touched);
            walked += len(f);
        }
        #[cfg(test)]
        {
            s.stopped += usize::from(stop < order.len());
        }
        // Rows whose partial cosine plus all that the remaining terms could add stays
        // below the k-th best lower bound are out, without looking at their rows.
        touched.retain(|&j| {
            let j = j as usize;
            let scale = q.inv_norm * st.inv_norm[j];
            let keep = Some(j) != own && slack.upper(f64::from(acc[j]) * scale + bounds[stop]) >= theta;
            if !keep {
                acc[j] = 0.0;
                if count_shared {
                    shared[j] = 0;
                }
            }
            keep
        });
        // Complete the survivors with the remaining terms: a long column is walked once,
        // touching only survivors (a survivor's sum is positive, or its count is), when
        // that is cheaper than looking the term up in every survivor's own row.
        let (aptr, aind, aval) = (self.a.indptr(), self.a.indices(), self.a.data());
        for &(f, w) in &order[stop..] {
            let r = tptr.outer_inds_sz(f as usize);
            if r.len() < 32 * touched.len() {
                let (col, vals) = (&at.indices()[r.clone()], &at.data()[r]);
                for (&v, &x) in col.iter().zip(vals) {
                    let v = v as usize;
                    if count_shared && shared[v] != 0 {
                        shared[v] += 1;
                        acc[v] += w * x;
                    } else if !count_shared && acc[v] != 0.0 {
                        acc[v] += w * x;
                    }
                }
            } else {
                for &j in touched.iter() {
                    let r = aptr.outer_inds_sz(j as usize);
                    if let Ok(p) = aind[r.clone()].binary_search(&f) {
                        acc[j as usize] += w * aval[r][p];
                        if count_shared {
                            shared[j as usize] += 1;
                        }
                    }
                }
            }
        }
        // Now every survivor's sum holds all its terms (in another order than the exact
        // score's) and its overlap is final: bounds this close leave only the rows near the
        // cut, which get their exact score. One pass: the bounds grow with the sum, so the
        // rows kept are those whose upper bound reaches the k-th largest sum's lower bound,
        // trimmed whenever they double (as in [`Pruned`]).
        near.clear();
        let by_sum = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0);
        let (mut cap, mut floor) = (k.max(16).saturating_mul(2), f64::NEG_INFINITY);
        for &j in touched.iter() {
            let j = j as usize;
            let dot = std::mem::take(&mut acc[j]);
            let n = if count_shared { std::mem::take(&mut shared[j]) } else { 0 };
            if self.params.min_shared > 1 && n < self.params.min_shared {
                continue;
            }
            let sum = self.shrunk(dot, n, q.inv_norm * st.inv_norm[j]);
            if slack.upper(sum) >= floor {
                near.push((sum, j as u32));
                if near.len() >= cap {
                    floor = slack.lower(near.select_nth_unstable_by(k - 1, by_sum).1.0);
                    near.retain(|&(x, _)| slack.upper(x) >= floor);
                    cap = cap.max(near.len().saturating_mul(2));
                }
            }
        }
        touched.clear();
        if near.len() >= k {
            floor = slack.lower(near.select_nth_unstable_by(k - 1, by_sum).1.0);
        }
        cands.clear();
        let mut top = Pruned::new(k);
        dense.resize(self.a.cols(), -1.0);
        for (&f, &w) in features.iter().zip(weights) {
            dense[f as usize] = w;
        }
        for &(sum, j) in near.iter() {
            if slack.upper(sum) < floor {
                continue;
            }
            let j = j as usize;
            let r = aptr.outer_inds_sz(j);
            let (dot, n) = dense_dot(dense, &aind[r.clone()], &aval[r]);
            let n = if count_shared { n } else { 0 };
            if let Some(sim) = finish(&self.params, st, self.features, q, j, dot, n) {
                if top.admits(sim) {
                    let index = self.relabel.map_or(j as u32, |(label, _)| label[j]);
                    top.push(cands, Neighbor { index, sim, shared: n });
                }
            }
        }
        for &f in features {
            dense[f as usize] = -1.0;
        }
        keep_top(cands, k);
        true
    }

    /// The k-th largest sum so far, as a cosine shrunk by the overlap so far, among the rows
    /// sure to be neighbours; `-inf` when fewer than k qualify. Its [`Slack::lower`] bounds
    /// the k-th best final score from below (the overlap only grows, and `n / (n + s)` with
    /// it). Uses `sums` as scratch, trimmed to the best `k` whenever it doubles.
    #[allow(clippy::too_many_arguments)]
    fn kth_partial(
        &self,
        acc: &[f32],
        shared: &[u32],
        touched: &[u32],
        own: Option<usize>,
        k: usize,
        q: QueryStats,
        sums: &mut Vec<f64>,
    ) -> f64 {
        sums.clear();
        let by_sum = |a: &f64, b: &f64| b.total_cmp(a);
        let (cap, mut kth) = (k.max(16).saturating_mul(2), f64::NEG_INFINITY);
        for &j in touched {
            let j = j as usize;
            let n = shared.get(j).copied().unwrap_or(0);
            if Some(j) == own || (self.params.min_shared > 1 && n < self.params.min_shared) {
                continue;
            }
            let sum = self.shrunk(acc[j], n, q.inv_norm * self.stats.inv_norm[j]);
            if sum > kth {
                sums.push(sum);
                if sums.len() >= cap {
                    kth = *sums.select_nth_unstable_by(k - 1, by_sum).1;
                    sums.truncate(k);
                }
            }
        }
        if sums.len() < k {
            return f64::NEG_INFINITY;
        }
        *sums.select_nth_unstable_by(k - 1, by_sum).1
    }

    /// `dot * scale`, times the shrinkage factor of an overlap of `n`, in f64.
    #[inline]
    fn shrunk(&self, dot: f32, n: u32, scale: f64) -> f64 {
        let cosine = f64::from(dot) * scale;
        let s = f64::from(self.params.shrinkage);
        if s > 0.0 { cosine * (f64::from(n) / (f64::from(n) + s)) } else { cosine }
    }

    /// Every row's top-`k` neighbours as a rows x rows CSR matrix (columns sorted), in
    /// parallel on the current rayon pool.
    pub fn all(&self, k: usize) -> Csr {
        let n = self.a.rows();
        let row_of = |l: usize| self.relabel.map_or(l, |(_, row_of)| row_of[l] as usize);
        let ranges = balanced_ranges(n, |l| self.cost(row_of(l)) + 1, 1024);
        let blocks: Vec<Block> = ranges
            .into_par_iter()
            .map_init(
                || self.scratch(),
                |s, range| {
                    let mut lens = Vec::with_capacity(range.len());
                    let mut entries = Vec::new();
                    for l in range {
                        let i = row_of(l);
                        let r = self.a.indptr().outer_inds_sz(i);
                        self.query_unsorted(&self.a.indices()[r.clone()], &self.a.data()[r], Some(i), k, s);
                        s.cands.sort_unstable_by_key(|c| c.index);
                        lens.push(s.cands.len());
                        entries.extend(s.cands.iter().map(|c| (c.index, c.sim)));
                    }
                    (lens, entries)
                },
            )
            .collect();
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0);
        let total = blocks.iter().map(|b| b.1.len()).sum();
        let (mut indices, mut data) = (Vec::with_capacity(total), Vec::with_capacity(total));
        for (lens, entries) in blocks {
            for len in lens {
                indptr.push(indptr.last().copied().unwrap_or(0) + len);
            }
            for (j, v) in entries {
                indices.push(j);
                data.push(v);
            }
        }
        Csr::new((n, n), indptr, indices, data)
    }
}

/// One range's row lengths and (neighbour, similarity) entries.
type Block = (Vec<usize>, Vec<(u32, f32)>);

/// Adds `w * at[f]` for every feature `f` of the query, with weight `w`, into the dense
/// accumulator (and counts shared features when `shared` is not empty), recording each
/// row touched for the first time. The hot loop of every neighbourhood computation.
///
/// Without a branch on "touched for the first time" (on item-item rows about half the
/// updates touch a row for the first time, a branch the CPU cannot predict): every row
/// is written to the end of `touched` and the length advances only when the row is new,
/// so `touched` ends up in first-touch order as with the branch. The rows of upcoming
/// features are prefetched whole.
#[inline]
pub(crate) fn accumulate(
    at: &Csr,
    features: &[u32],
    weights: &[f32],
    acc: &mut [f32],
    shared: &mut [u32],
    touched: &mut Vec<u32>,
) {
    let (tptr, tind, tval) = (at.indptr(), at.indices(), at.data());
    let ptr = tptr.raw_storage();
    let offset = ptr.first().copied().unwrap_or(0);
    // Room for every row once (`touched` holds distinct rows), plus the one speculative
    // write past the last new row.
    touched.reserve((acc.len() + 1).saturating_sub(touched.len()));
    let start = touched.len();
    let spare = touched.spare_capacity_mut();
    let mut n = 0usize;
    for (x, (&f, &w)) in features.iter().zip(weights).enumerate() {
        if let Some(&far) = features.get(x + PF_FAR) {
            prefetch(ptr, far as usize);
        }
        if let Some(&next) = features.get(x + PF_NEAR) {
            let r = ptr[next as usize] - offset..ptr[next as usize + 1] - offset;
            prefetch_lines(&tind[r.clone()]);
            prefetch_lines(&tval[r]);
        }
        let r = tptr.outer_inds_sz(f as usize);
        let (ind, val) = (&tind[r.clone()], &tval[r]);
        if shared.is_empty() {
            for (&j, &v) in ind.iter().zip(val) {
                // A zero contribution leaves the sum as it is and marks nothing, so "sum is
                // zero" stays equivalent to "not touched yet".
                let p = w * v;
                let a = &mut acc[j as usize];
                spare[n].write(j);
                n += usize::from((*a == 0.0) & (p != 0.0));
                *a += p;
            }
        } else {
            for (&j, &v) in ind.iter().zip(val) {
                let c = &mut shared[j as usize];
                spare[n].write(j);
                n += usize::from(*c == 0);
                *c += 1;
                acc[j as usize] += w * v;
            }
        }
    }
    // SAFETY: the first `n` spare slots were written above (each new row's slot is written
    // before the length moves past it), and `start + n` is within the reserved capacity.
    unsafe { touched.set_len(start + n) };
}

/// Candidate rows laid out for [`TopK::all`]'s row-by-row product, where reading them is
/// most of the time: each feature of a query brings one short row from a random place (a
/// customer's basket, for items), which a CSR spreads over three (its start in the row
/// pointers, its columns, its values), each a cache miss. Here row `r` is one run of
/// slots from slot `ptr[r] + r`: a header holding its length, then its (column, value
/// bits) pairs; the queries name rows by that first slot, so a row comes in as one stretch
/// of lines with nothing to look up first (in huge pages, so that the TLB covers them).
/// The sums are added in [`accumulate`]'s order, so the result is the same bits.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    slots: Vec<[u32; 2]>,
    /// Rows with at least one entry (Lift's `N`).
    nonempty: usize,
}

impl Packed {
    /// Slots for `rows` rows of `nnz` entries in all, every one written by `fill`, which
    /// gets the slots of `ranges`' rows (ranges in order, covering every row), in
    /// parallel; `None` when the slots cannot be numbered in `u32`.
    pub fn build(
        ptr: &[usize],
        ranges: Vec<std::ops::Range<usize>>,
        fill: impl Fn(std::ops::Range<usize>, &mut [[u32; 2]]) + Sync,
    ) -> Option<Packed> {
        let rows = ptr.len() - 1;
        let len = ptr[rows].checked_add(rows)?;
        u32::try_from(len).ok()?;
        // Zeroed by the allocator (fresh pages, not written here): the first touch of each
        // page is `fill`'s, on every thread. A serial memset here faulted the whole buffer
        // in on one thread, which on a virtual machine can cost a second.
        let mut slots: Vec<[u32; 2]> = vec![[0, 0]; len];
        huge_pages(&mut slots);
        let mut pieces = Vec::with_capacity(ranges.len());
        let mut rest = slots.as_mut_slice();
        for r in ranges {
            let piece;
            (piece, rest) = std::mem::take(&mut rest).split_at_mut(ptr[r.end] + r.end - ptr[r.start] - r.start);
            pieces.push((r, piece));
        }
        pieces.into_par_iter().for_each(|(r, piece)| fill(r, piece));
        let nonempty = (0..rows).filter(|&r| ptr[r + 1] > ptr[r]).count();
        Some(Packed { slots, nonempty })
    }

    /// The first slot of row `r` of a matrix with row pointers `ptr`.
    pub fn slot(ptr: &[usize], r: usize) -> u32 {
        (ptr[r] + r) as u32
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// [`accumulate`] over packed rows: `slots` and `weights` are one query's.
    #[inline]
    fn accumulate(&self, slots: &[u32], weights: &[f32], acc: &mut [f32], shared: &mut [u32], touched: &mut Vec<u32>) {
        let rows = self.slots.as_slice();
        touched.reserve((acc.len() + 1).saturating_sub(touched.len()));
        let start = touched.len();
        let spare = touched.spare_capacity_mut();
        let mut n = 0usize;
        for (x, (&o, &w)) in slots.iter().zip(weights).enumerate() {
            if let Some(&far) = slots.get(x + PF_FAR) {
                prefetch(rows, far as usize);
            }
            if let Some(&next) = slots.get(x + PF_NEAR) {
                let b = next as usize;
                prefetch_lines(&rows[b..b + 1 + rows[b][0] as usize]);
            }
            let o = o as usize;
            let row = &rows[o + 1..o + 1 + rows[o][0] as usize];
            if shared.is_empty() {
                for &[j, v] in row {
                    // As in `accumulate`: a zero contribution marks nothing.
                    let p = w * f32::from_bits(v);
                    let a = &mut acc[j as usize];
                    spare[n].write(j);
                    n += usize::from((*a == 0.0) & (p != 0.0));
                    *a += p;
                }
            } else {
                for &[j, v] in row {
                    let c = &mut shared[j as usize];
                    spare[n].write(j);
                    n += usize::from(*c == 0);
                    *c += 1;
                    acc[j as usize] += w * f32::from_bits(v);
                }
            }
        }
        // SAFETY: as in `accumulate`: the first `n` spare slots were written, within the
        // reserved capacity.
        unsafe { touched.set_len(start + n) };
    }
}

/// Asks the kernel to back `buf` (not yet touched) with huge pages where it can: rows read
/// at random over hundreds of megabytes otherwise miss the TLB on almost every read.
pub(crate) fn huge_pages<T>(buf: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (buf.as_mut_ptr() as usize).next_multiple_of(PAGE);
        let end = buf.as_mut_ptr() as usize + std::mem::size_of_val(buf);
        if end > start {
            // SAFETY: advice only, on whole pages inside memory this buffer owns; failure
            // (no transparent huge pages) changes nothing.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// Asks the CPU to fetch `slice[at]` into cache (a hint; out-of-range does nothing).
#[inline(always)]
fn prefetch<T>(slice: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = slice.get(at) {
        // SAFETY: a prefetch is a hint; it never faults and reads nothing into the program.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((p as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, at);
}

/// [`TopK::cosine_top`] scans the whole accumulator when at least one row in this many
/// was touched.
const DENSE_SCAN: usize = 4;

/// How many features ahead [`accumulate`] asks for the start of a feature's
/// row (`PF_FAR`), and then for the whole row (`PF_NEAR`): the row's start must have
/// arrived before its lines can be asked for.
const PF_FAR: usize = 16;
const PF_NEAR: usize = 6;

/// Asks the CPU to fetch every cache line of `slice` (a hint).
#[inline(always)]
fn prefetch_lines<T>(slice: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = slice.as_ptr() as usize;
        let end = start + std::mem::size_of_val(slice);
        let mut line = start & !63;
        while line < end {
            // SAFETY: a prefetch is a hint; it never faults and reads nothing into the program.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line as *const i8) };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slice;
}

/// Splits `0..n` into at most `parts` contiguous ranges of about equal total `cost`.
pub(crate) fn balanced_ranges(
    n: usize,
    cost: impl Fn(usize) -> u64 + Sync + Send,
    parts: usize,
) -> Vec<std::ops::Range<usize>> {
    let costs: Vec<u64> = (0..n).into_par_iter().map(&cost).collect();
    let total: u64 = costs.iter().sum();
    let target = total.div_ceil(parts.max(1) as u64).max(1);
    let mut ranges = Vec::new();
    let (mut start, mut acc) = (0, 0u64);
    for (i, &c) in costs.iter().enumerate() {
        acc += c;
        if acc >= target {
            ranges.push(start..i + 1);
            (start, acc) = (i + 1, 0);
        }
    }
    if start < n {
        ranges.push(start..n);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::transpose;

    #[test]
    fn transpose_round_trips() {
        let m = Csr::new((2, 3), vec![0, 2, 3], vec![0, 2, 1], vec![1.0, 2.0, 3.0]);
        let t = transpose(&m);
        assert_eq!(t.shape(), (3, 2));
        assert_eq!(t.indices(), [0, 1, 0]);
        assert_eq!(t.data(), [1.0, 3.0, 2.0]);
        assert_eq!(transpose(&t), m);
    }

    #[test]
    fn keep_top_breaks_ties_by_index() {
        let mut c = vec![(5, 1.0), (2, 1.0), (9, 3.0), (1, 0.5)];
        keep_top(&mut c, 2);
        c.sort_by(by_score_then_index);
        assert_eq!(c, [(9, 3.0), (2, 1.0)]);
    }

    #[test]
    fn balanced_ranges_cover_everything_once() {
        let r = balanced_ranges(10, |i| if i == 3 { 100 } else { 1 }, 4);
        assert_eq!(r.first().map(|r| r.start), Some(0));
        assert_eq!(r.last().map(|r| r.end), Some(10));
        assert!(r.windows(2).all(|w| w[0].end == w[1].start));
        assert!(r.contains(&(0..4)), "the heavy row closes its range: {r:?}");
    }

    /// A seeded xorshift generator.
    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Customers in taste clusters: each row holds a few items of its cluster and a few of
    /// the bestsellers every cluster buys (with a low weight, as BM25 gives them): the
    /// bestsellers' long columns are what MaxScore skips. Even rows weigh 1 or 2 (exact
    /// ties abound), odd rows take weights whose sums round differently in another order.
    /// With `extreme`, every seventh row is scaled far from 1 (tiny products round to zero
    /// or below the normal range, huge ones come near overflow).
    fn clustered_matrix(seed: u64, rows: usize, extreme: bool) -> Csr {
        let (clusters, per_cluster, popular) = (12u64, 20u64, 8u64);
        let mut next = xorshift(seed);
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        for r in 0..rows {
            let cluster = next() % clusters;
            let weight = |low: f32, x: u64| {
                if r % 2 == 0 { low * (1 + x % 2) as f32 } else { low * (x % 1000 + 500) as f32 / 997.0 }
            };
            let mut row = std::collections::BTreeMap::new();
            for _ in 0..2 + next() % 6 {
                row.insert(popular + cluster * per_cluster + next() % per_cluster, weight(1.0, next()));
            }
            for _ in 0..1 + next() % 4 {
                row.insert(next() % popular, weight(0.25, next()));
            }
            let scale = if extreme && r % 7 == 0 { [1e-25, 1e-19, 1e17, 3e18][(next() % 4) as usize] } else { 1.0 };
            indices.extend(row.keys().map(|&c| c as u32));
            data.extend(row.values().map(|&v| v * scale));
            indptr.push(indices.len());
        }
        Csr::new((rows, (popular + clusters * per_cluster) as usize), indptr, indices, data)
    }

    /// MaxScore against the exhaustive walk of every column: the same neighbours, scores
    /// and overlaps, bit for bit, whatever the shrinkage, minimum overlap and k, on data
    /// where the walk does stop early.
    #[test]
    fn pruned_cosine_gives_the_exhaustive_answer_bit_for_bit() {
        let bits = |v: &[Neighbor]| v.iter().map(|n| (n.index, n.sim.to_bits(), n.shared)).collect::<Vec<_>>();
        let configs = [(0.0, 0, false), (0.0, 0, true), (4.0, 0, false), (0.0, 3, false), (1e-3, 2, true)];
        for seed in 1..7 {
            let a = clustered_matrix(seed, 1_000, seed % 2 == 0);
            let (at, st) = (transpose(&a), RowStats::of(&a));
            for (shrinkage, min_shared, counting) in configs {
                let p = SimilarityParams { shrinkage, min_shared, ..SimilarityParams::default() };
                let pruned =
                    if counting { TopK::new(&a, &at, &st, p).counting_shared() } else { TopK::new(&a, &at, &st, p) };
                let exhaustive = pruned.without_pruning();
                let (mut sp, mut se, mut got, mut want) = (pruned.scratch(), exhaustive.scratch(), vec![], vec![]);
                for k in [1, 10, 40] {
                    for i in 0..a.rows() {
                        pruned.row(i, k, &mut sp, &mut got);
                        exhaustive.row(i, k, &mut se, &mut want);
                        assert_eq!(bits(&got), bits(&want), "seed {seed}, {p:?}, counting {counting}, k {k}, row {i}");
                    }
                }
                // A query from outside the matrix (fold-in): the row itself may be its neighbour.
                for i in (0..a.rows()).step_by(5) {
                    let r = a.indptr().outer_inds_sz(i);
                    let (f, w) = (&a.indices()[r.clone()], &a.data()[r]);
                    pruned.query(f, w, None, 10, &mut sp, &mut got);
                    exhaustive.query(f, w, None, 10, &mut se, &mut want);
                    assert_eq!(bits(&got), bits(&want), "seed {seed}, {p:?}, counting {counting}, query {i}");
                }
                // The walk must really stop early, or this compares the exhaustive path with itself.
                assert!(sp.stopped > a.rows(), "seed {seed}, {p:?}: {} of {} queries pruned", sp.stopped, 3 * a.rows());
            }
        }
    }

    /// A random `rows x cols` matrix whose first rows are dense (so that their queries
    /// touch most rows) and whose weights span many magnitudes, ties included.
    fn random_matrix(seed: u64, rows: usize, cols: usize) -> Csr {
        let mut next = xorshift(seed);
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        for r in 0..rows {
            let density = if r < 4 { 2 } else { 12 + (next() % 40) as usize };
            for c in 0..cols {
                if next() % density as u64 == 0 {
                    indices.push(c as u32);
                    data.push(match next() % 8 {
                        0 => 1e-30,
                        1 => 3e18,
                        2 => 0.5,
                        3 => 2.0,
                        _ => 1.0,
                    });
                }
            }
            indptr.push(indices.len());
        }
        Csr::new((rows, cols), indptr, indices, data)
    }

    #[test]
    fn plain_cosine_selection_matches_the_general_one_bit_for_bit() {
        for seed in 1..6 {
            let a = random_matrix(seed, 300, 120);
            let at = transpose(&a);
            let st = RowStats::of(&a);
            let kernel = TopK::new(&a, &at, &st, SimilarityParams::default()).without_pruning();
            // Counting shared features sends every row through `finish`.
            let general = kernel.counting_shared();
            assert!(kernel.plain_cosine() && !general.plain_cosine());
            for k in [1, 5, 50] {
                let (fast, slow) = (kernel.all(k), general.all(k));
                assert_eq!(fast.indptr(), slow.indptr(), "seed {seed}, k {k}");
                assert_eq!(fast.indices(), slow.indices(), "seed {seed}, k {k}");
                let bits = |m: &Csr| m.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&slow), "seed {seed}, k {k}");
            }
        }
    }

    /// Candidate rows packed (the slots filled in several pieces) give the CSR rows' answer
    /// bit for bit, with and without shared counts; the fit's oracle tests
    /// (`tests/it/knn_oracle.rs`) check the packed path against brute force.
    #[test]
    fn packed_rows_give_the_csr_rows_answer_bit_for_bit() {
        for seed in 1..4 {
            let a = random_matrix(seed, 300, 120);
            let (at, st) = (transpose(&a), RowStats::of(&a));
            let ptr = at.proper_indptr();
            let ranges = (0..at.rows()).step_by(7).map(|r| r..(r + 7).min(at.rows())).collect();
            let packed = Packed::build(&ptr, ranges, |rows, piece| {
                let mut s = 0;
                for r in rows {
                    piece[s] = [(ptr[r + 1] - ptr[r]) as u32, 0];
                    for (k, slot) in (ptr[r]..ptr[r + 1]).zip(&mut piece[s + 1..]) {
                        *slot = [at.indices()[k], at.data()[k].to_bits()];
                    }
                    s += 1 + ptr[r + 1] - ptr[r];
                }
            })
            .unwrap();
            let slots = a.indices().iter().map(|&f| Packed::slot(&ptr, f as usize)).collect();
            let by_slot = Csr::new((a.rows(), packed.len()), a.proper_indptr().into_owned(), slots, a.data().to_vec());
            let bits = |m: &Csr| m.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for measure in [Measure::Cosine, Measure::Jaccard, Measure::Lift] {
                for shrinkage in [0.0, 2.0] {
                    let p = SimilarityParams { measure, shrinkage, ..SimilarityParams::default() };
                    for k in [1, 7, 50] {
                        let want = TopK::new(&a, &at, &st, p).without_pruning().all(k);
                        let got = TopK::packed(&by_slot, &packed, &st, p).all(k);
                        assert_eq!(got.indptr(), want.indptr(), "seed {seed}, {p:?}, k {k}");
                        assert_eq!(got.indices(), want.indices(), "seed {seed}, {p:?}, k {k}");
                        assert_eq!(bits(&got), bits(&want), "seed {seed}, {p:?}, k {k}");
                    }
                }
            }
        }
    }

    /// Rows: a = {0, 1}, b = {0, 1, 2}, c = {2}; binary weights.
    fn tiny() -> (Csr, Csr, RowStats) {
        let a = Csr::new((3, 3), vec![0, 2, 5, 6], vec![0, 1, 0, 1, 2, 2], vec![1.0; 6]);
        let at = transpose(&a);
        let st = RowStats::of(&a);
        (a, at, st)
    }

    #[test]
    fn measures_follow_their_formulas() {
        let (a, at, st) = tiny();
        let sim = |measure, shrinkage, min_shared| {
            let p = SimilarityParams { measure, shrinkage, min_shared, ties: Ties::LowestIndex };
            let k = TopK::new(&a, &at, &st, p);
            let (mut s, mut out) = (k.scratch(), Vec::new());
            k.row(0, 5, &mut s, &mut out);
            out.iter().map(|n| (n.index, n.sim)).collect::<Vec<_>>()
        };
        let close = |got: Vec<(u32, f32)>, want: f32| got.len() == 1 && got[0].0 == 1 && (got[0].1 - want).abs() < 1e-6;
        let c = 2.0 / (2f32 * 3.0).sqrt();
        assert!(close(sim(Measure::Cosine, 0.0, 0), c));
        assert_eq!(sim(Measure::Jaccard, 0.0, 0), [(1, 2.0 / 3.0)]);
        assert_eq!(sim(Measure::Lift, 0.0, 0), [(1, 2.0 * 3.0 / 6.0)]);
        let asym = 2.0 / (2f32.powf(0.8) * 3f32.powf(0.2));
        assert!(close(sim(Measure::AsymmetricCosine { alpha: 0.8 }, 0.0, 0), asym));
        assert!(close(sim(Measure::Cosine, 2.0, 0), c * 0.5));
        assert!(sim(Measure::Cosine, 0.0, 3).is_empty());
    }
}
