//! A purchase matrix in, customer and item factors out: implicit-feedback matrix
//! factorisation by alternating least squares (ALS).
//!
//! The model (Hu, Koren & Volinsky 2008): every (customer, item) pair has a preference
//! `p` (1 if bought, 0 otherwise) and a confidence `c = 1 + alpha * x` for bought pairs
//! (`x` the weighted matrix value), 1 for the rest. ALS minimises
//!
//! ```text
//! sum over all pairs of c_ui (p_ui - u_u . v_i)^2  +  reg (|U|^2 + |V|^2)
//! ```
//!
//! by alternating halves: every customer's factors given the items', then every item's
//! given the customers'. For a customer the least-squares problem has the normal equations
//!
//! ```text
//! (Y^T Y + reg I + sum over bought i of (c_ui - 1) y_i y_i^T) u = sum over bought i of c_ui y_i
//! ```
//!
//! (and the same for items with the roles swapped). `Y^T Y` is shared by every customer, so
//! it is computed once per half-iteration; the rest depends only on the customer's own
//! items. Following Takacs et al. (2011), each row is solved with a few conjugate-gradient
//! steps warm-started from its current factors, multiplying by the matrix without forming
//! it (`Y^T Y p` plus one dot product and one update per bought item), as the Python
//! library implicit does (`AlternatingLeastSquares(use_cg=True)`, on the CPU). An exact
//! path factors each row's dense matrix (Cholesky); it serves fold-in and the tests.
//!
//! The penalty `reg` is by default relative: a multiple of the data's scale
//! ([`regularization_scale`]), resolved when the model is fitted.
//!
//! Rows with no entries get zero factors (their optimum). Values that are negative or not
//! finite count as 0 (a purchase with confidence 1).
//!
//! Architecture invariant: kernels do no I/O and cannot fail. The result depends only on
//! the input and the parameters, never on the number of threads: each row is solved by one
//! worker in a fixed order of operations, and `Y^T Y` is summed over chunks fixed by the
//! number of rows, in chunk order. Every sum runs in an order the code spells out (explicit
//! lanes, no fused multiply-add), so the AVX2 build of the hot loops, chosen at run time,
//! gives the same bits as the baseline one.

use std::borrow::Cow;
use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Query, Reason, top_three};
use crate::generate::Rng;
use crate::matrix::Csr;
use crate::matrix::transpose;

/// The most factors a model may have.
pub const MAX_FACTORS: usize = 1024;

/// The default regularization, relative to [`regularization_scale`]. Chosen on held-out
/// purchases of three data sets of different shapes (BENCHMARKS.md, "ALS's default penalty"):
/// arules Groceries needed at least 1.8 times the scale to stay at popularity, UCI Online
/// Retail lost accuracy above about 2, The Complete Journey was best between 2 and 3.
pub const RELATIVE_REGULARIZATION: f32 = 2.0;

/// The data's scale for the regularization: the square root of the mean, over bought
/// pairs, of the pair's item's confidence mass (`sum over its buyers of 1 + alpha * x`, a
/// negative or non-finite `alpha * x` counting 0), that is `sqrt(sum_i n_i M_i / nnz)`
/// with `n_i` the stored entries of column `i` and `M_i` its confidence mass. 0 for an
/// empty matrix.
///
/// Why this scale: the penalty acts roughly as a threshold on the singular values of the
/// confidence-weighted matrix, and a column (an item) of mass `M` contributes a singular
/// value of about `sqrt(M)` by itself. A penalty below the typical bought item's
/// `sqrt(M)` lets components that merely copy single items through, and on a small
/// catalogue 64 factors hold almost every item: the lists become noise. Weighting the mean
/// by pairs follows the items purchases fall on (a tiny catalogue's best sellers), and the
/// square root follows the confidence (`alpha` 10 moved the best penalty on UCI Online
/// Retail about 3 times, as `sqrt` of the 7 times larger mass does). Spark scales its
/// penalty by each row's purchases (ALS-WR, Zhou et al. 2008); one number for the whole
/// model keeps the solver and fold-in unchanged.
pub fn regularization_scale(x: &Csr, alpha: f32) -> f32 {
    let (mut buyers, mut mass) = (vec![0u64; x.cols()], vec![0f64; x.cols()]);
    let mut entries = 0u64;
    for (v, (_, i)) in x.iter() {
        let i = i as usize;
        buyers[i] += 1;
        mass[i] += 1.0 + f64::from(confidence_weight(alpha, *v));
        entries += 1;
    }
    if entries == 0 {
        return 0.0;
    }
    let sum: f64 = buyers.iter().zip(&mass).map(|(&n, &m)| n as f64 * m).sum();
    (sum / entries as f64).sqrt() as f32
}

/// `x` rounded to three significant digits.
fn three_digits(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 0.0;
    }
    let unit = 10f64.powi(x.log10().floor() as i32 - 2);
    (x / unit).round() * unit
}

/// Hyperparameters. Validate with [`AlsParams::check`].
///
/// implicit's defaults are `factors = 100, regularization = 0.01, alpha = 1.0,
/// iterations = 15` and 3 CG steps, with uniform `[0, 0.01)` initial factors. implicit uses
/// `alpha * x` itself as the confidence (so binary data with `alpha = 1` gives bought pairs
/// the same confidence as the rest); cobuy follows the paper, `c = 1 + alpha * x`. To
/// reproduce an implicit model, give implicit the values `1 + alpha * x` and its `alpha = 1`
/// (and a fixed regularization: `relative = false`).
///
/// cobuy's default regularization is relative ([`regularization_scale`]): a fixed 0.01
/// collapses on a small catalogue (arules Groceries, 169 items: NDCG@10 0.033 on new
/// items, popularity 0.231), and the penalty that works grows with the confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    /// Latent factors per customer and item, 1 to [`MAX_FACTORS`]. Default 64.
    pub factors: usize,
    /// L2 penalty `reg` on every factor, finite and not negative: the penalty itself, or,
    /// when `relative`, a multiple of the data's [`regularization_scale`]. Default
    /// [`RELATIVE_REGULARIZATION`], relative.
    pub regularization: f32,
    /// `regularization` multiplies [`regularization_scale`] of the fitted matrix; the fit
    /// resolves it ([`AlsParams::resolve`]), so a fitted model's parameters never are.
    /// Absent from model files written before it existed: those are absolute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relative: bool,
    /// Confidence slope: a bought pair has confidence `1 + alpha * x`. Default 1.
    pub alpha: f32,
    /// Alternations (customers then items), at least 1. Default 15.
    pub iterations: usize,
    /// Conjugate-gradient steps per row and half-iteration, at least 1. Default 3.
    pub cg_steps: usize,
    /// Seed of the initial factors: the same seed gives the same model. Default 42.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            regularization: RELATIVE_REGULARIZATION,
            relative: true,
            alpha: 1.0,
            iterations: 15,
            cg_steps: 3,
            seed: 42,
        }
    }
}

impl AlsParams {
    /// Checks ranges; the message names the parameter.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_FACTORS).contains(&self.factors) {
            return Err(format!("factors must be between 1 and {MAX_FACTORS}, got {}", self.factors));
        }
        if !(self.regularization.is_finite() && self.regularization >= 0.0) {
            return Err(format!("regularization must be a number >= 0, got {}", self.regularization));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(format!("alpha must be a number >= 0, got {}", self.alpha));
        }
        if self.iterations == 0 {
            return Err("iterations must be at least 1".into());
        }
        if self.cg_steps == 0 {
            return Err("cg steps must be at least 1".into());
        }
        Ok(())
    }

    /// The parameters with the penalty on `x` (customers x items, the matrix to fit): a
    /// relative regularization times [`regularization_scale`]`(x, alpha)`, rounded to three
    /// significant digits (a readable number in `cobuy inspect`; the precision is not
    /// meaningful), then absolute. Absolute parameters are returned as they are.
    pub fn resolve(&self, x: &Csr) -> AlsParams {
        if !self.relative {
            return *self;
        }
        let reg = f64::from(self.regularization) * f64::from(regularization_scale(x, self.alpha));
        AlsParams { regularization: three_digits(reg) as f32, relative: false, ..*self }
    }

    /// The nearest parameters that pass [`AlsParams::check`].
    fn clamped(&self) -> AlsParams {
        let clean = |x: f32| if x.is_finite() && x >= 0.0 { x } else { 0.0 };
        AlsParams {
            factors: self.factors.clamp(1, MAX_FACTORS),
            regularization: clean(self.regularization),
            relative: self.relative,
            alpha: clean(self.alpha),
            iterations: self.iterations.max(1),
            cg_steps: self.cg_steps.max(1),
            seed: self.seed,
        }
    }
}

/// How a half-iteration solves each row's least-squares problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// This many conjugate-gradient steps, warm-started from the current factors, never
    /// forming the row's matrix: `O(steps (f^2 + n f))` for a row with `n` entries.
    ConjugateGradient {
        /// Steps per row (0 leaves the factors as they are).
        steps: usize,
    },
    /// The exact solution, by Cholesky factorisation of the row's dense `f x f` matrix:
    /// `O(n f^2 + f^3)` per row.
    Cholesky,
}

/// A fitted factor model: customers x factors and items x factors, row-major `f32`.
#[derive(Debug, Clone)]
pub struct Als {
    params: AlsParams,
    users: usize,
    items: usize,
    user: Vec<f32>,
    item: Vec<f32>,
    /// `Y^T Y` of the item factors, for fold-in (computed on first use).
    item_gram: OnceLock<Vec<f64>>,
}

impl PartialEq for Als {
    fn eq(&self, other: &Self) -> bool {
        (self.params, self.users, self.items) == (other.params, other.users, other.items)
            && self.user == other.user
            && self.item == other.item
    }
}

/// A model's contents, for storage: [`Als::to_parts`] and [`Als::from_parts`].
#[derive(Debug, Clone, PartialEq)]
pub struct AlsParts {
    /// The parameters it was fitted with (fold-in uses the regularization and alpha).
    pub params: AlsParams,
    /// Number of customers.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// `users x params.factors`, row-major.
    pub user_factors: Vec<f32>,
    /// `items x params.factors`, row-major.
    pub item_factors: Vec<f32>,
}

impl Als {
    /// Factors a customer x item matrix. Expects `params` to pass [`AlsParams::check`];
    /// others are clamped into range (factors to 1..=1024, a negative or non-finite
    /// regularization or alpha to 0, zero iterations or steps to 1) so that this never
    /// fails or panics. A relative regularization is resolved on `x`
    /// ([`AlsParams::resolve`]): the model's [`Als::params`] hold the penalty used.
    pub fn fit(x: &Csr, params: &AlsParams) -> Als {
        Als::fit_with(x, params, |_, _| {})
    }

    /// [`Als::fit`], calling `on_iteration(i, &model)` after each alternation `i` (from 0),
    /// for progress reports.
    pub fn fit_with(x: &Csr, params: &AlsParams, mut on_iteration: impl FnMut(usize, &Als)) -> Als {
        let x = row_major(x);
        let params = params.clamped().resolve(&x);
        let xt = transpose(&x);
        let mut model = Als::init(x.rows(), x.cols(), &params);
        let solver = Solver::ConjugateGradient { steps: params.cg_steps };
        let f = params.factors;
        for it in 0..params.iterations {
            solve_side(&mut model.user, &model.item, f, &x, params, solver);
            solve_side(&mut model.item, &model.user, f, &xt, params, solver);
            model.item_gram = OnceLock::new();
            on_iteration(it, &model);
        }
        model
    }

    /// A model with seeded random factors (standard normal times 0.01), before any
    /// iteration: the same seed and shape give the same bits. `params` are clamped as in
    /// [`Als::fit`]; there is no matrix to resolve a relative regularization against, so
    /// the steps would take it as the penalty itself: resolve it first
    /// ([`AlsParams::resolve`]).
    pub fn init(users: usize, items: usize, params: &AlsParams) -> Als {
        let params = params.clamped();
        let f = params.factors;
        let fill = |n: usize, side: u64| {
            let mut m = vec![0f32; n.saturating_mul(f)];
            m.par_chunks_mut(f).enumerate().with_min_len(256).for_each(|(r, row)| {
                let mut rng = Rng::new(params.seed, (r as u64).wrapping_mul(2).wrapping_add(side));
                row.iter_mut().for_each(|v| *v = (0.01 * rng.normal()) as f32);
            });
            m
        };
        Als { params, users, items, user: fill(users, 0), item: fill(items, 1), item_gram: OnceLock::new() }
    }

    /// One half-iteration: every customer's factors given the items' (`x` is customers x
    /// items). An error when the shape does not match the model.
    pub fn user_step(&mut self, x: &Csr, solver: Solver) -> Result<(), String> {
        self.check_shape(x, (self.users, self.items))?;
        let x = row_major(x);
        solve_side(&mut self.user, &self.item, self.params.factors, &x, self.params, solver);
        Ok(())
    }

    /// One half-iteration: every item's factors given the customers' (`xt` is items x
    /// customers, the transpose of the fitted matrix). An error when the shape does not
    /// match the model.
    pub fn item_step(&mut self, xt: &Csr, solver: Solver) -> Result<(), String> {
        self.check_shape(xt, (self.items, self.users))?;
        let xt = row_major(xt);
        solve_side(&mut self.item, &self.user, self.params.factors, &xt, self.params, solver);
        self.item_gram = OnceLock::new();
        Ok(())
    }

    fn check_shape(&self, x: &Csr, want: (usize, usize)) -> Result<(), String> {
        if x.shape() != want {
            return Err(format!("the matrix is {:?}, the model {want:?}", x.shape()));
        }
        Ok(())
    }

    fn f(&self) -> usize {
        self.params.factors
    }

    /// Factors per customer and item.
    pub fn factors(&self) -> usize {
        self.params.factors
    }

    /// The parameters the model was fitted with (after clamping).
    pub fn params(&self) -> &AlsParams {
        &self.params
    }

    /// Number of customers.
    pub fn users(&self) -> usize {
        self.users
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Customer `u`'s factors (empty when `u` is out of range).
    pub fn user_factors(&self, u: usize) -> &[f32] {
        row(&self.user, u, self.f()).unwrap_or(&[])
    }

    /// Item `i`'s factors (empty when `i` is out of range).
    pub fn item_factors(&self, i: usize) -> &[f32] {
        row(&self.item, i, self.f()).unwrap_or(&[])
    }

    /// Every customer's factors, customers x factors, row-major.
    pub fn user_matrix(&self) -> &[f32] {
        &self.user
    }

    /// Every item's factors, items x factors, row-major.
    pub fn item_matrix(&self) -> &[f32] {
        &self.item
    }

    /// Factors for a customer not in the model from their purchases (item indices, with
    /// the weighted values), solving the same customer step exactly (Cholesky): a
    /// customer's own row folded in after a final exact [`Als::user_step`] gives their
    /// factors. Items out of range are skipped; entries pair up to the shorter slice. No
    /// purchases: zero factors.
    pub fn fold_in(&self, items: &[u32], weights: &[f32]) -> Vec<f32> {
        let f = self.f();
        let mut x = vec![0f32; f];
        if items.is_empty() || weights.is_empty() {
            return x;
        }
        let gram = self.item_gram.get_or_init(|| gram(&self.item, f));
        let mut s = ExactScratch::new(f);
        exact_row(gram, &self.item, items, weights, self.params, &mut x, &mut s);
        x
    }

    /// Scores of every item for a customer's factors: `out[i] = user . item_i`, for `i`
    /// below both `out.len()` and the number of items (`out` should hold one slot per
    /// item; further slots are left as they are). A `user` of the wrong length is cut or
    /// padded with zeros.
    pub fn score(&self, user: &[f32], out: &mut [f32]) {
        let f = self.f();
        let mut u = [0f32; MAX_FACTORS];
        let n = user.len().min(f);
        u[..n].copy_from_slice(&user[..n]);
        let u = &u[..f];
        for (o, y) in out.iter_mut().zip(self.item.chunks_exact(f)) {
            *o = dot(u, y);
        }
    }

    /// Everything the model holds, for storage.
    pub fn to_parts(&self) -> AlsParts {
        AlsParts {
            params: self.params,
            users: self.users,
            items: self.items,
            user_factors: self.user.clone(),
            item_factors: self.item.clone(),
        }
    }

    /// Reassembles a model, checking the parameters, that the arrays hold `users x factors`
    /// and `items x factors` values, and that every value is finite: a damaged model is an
    /// error, never a panic or a wrong answer.
    pub fn from_parts(p: AlsParts) -> Result<Als, String> {
        p.params.check()?;
        if p.params.relative {
            return Err("the regularization was never resolved against the data (relative)".into());
        }
        let f = p.params.factors;
        let len = |n: usize, v: &[f32], what: &str| match n.checked_mul(f) {
            Some(want) if want == v.len() => Ok(()),
            _ => Err(format!("{} {what} factors, expected {n} x {f}", v.len())),
        };
        len(p.users, &p.user_factors, "customer")?;
        len(p.items, &p.item_factors, "item")?;
        if p.user_factors.iter().chain(&p.item_factors).any(|v| !v.is_finite()) {
            return Err("a factor is not a finite number".into());
        }
        Ok(Als {
            params: p.params,
            users: p.users,
            items: p.items,
            user: p.user_factors,
            item: p.item_factors,
            item_gram: OnceLock::new(),
        })
    }

    /// The training objective of the module overview on `x` (customers x items) with
    /// `params`' regularization (resolved on `x` when relative) and alpha, summed in `f64`
    /// in a fixed order. `NaN` when the shape does not match the model.
    pub fn loss(&self, x: &Csr, params: &AlsParams) -> f64 {
        if x.shape() != (self.users, self.items) {
            return f64::NAN;
        }
        let x = row_major(x);
        let p = params.clamped().resolve(&x);
        let f = self.f();
        let g = gram(&self.item, f);
        // Per customer: every pair as if unbought (u^T Y^T Y u), corrected on bought pairs.
        let parts: Vec<f64> = self
            .user
            .par_chunks(LOSS_ROWS * f)
            .enumerate()
            .map(|(chunk, rows)| {
                let mut sum = 0f64;
                for (k, u) in rows.chunks_exact(f).enumerate() {
                    let r = x.indptr().outer_inds_sz(chunk * LOSS_ROWS + k);
                    let mut quad = 0f64;
                    for (a, &ua) in u.iter().enumerate() {
                        let ga = &g[a * f..(a + 1) * f];
                        quad += f64::from(ua) * ga.iter().zip(u).map(|(&gab, &ub)| gab * f64::from(ub)).sum::<f64>();
                    }
                    sum += quad;
                    for (&i, &v) in x.indices()[r.clone()].iter().zip(&x.data()[r]) {
                        let Some(y) = row(&self.item, i as usize, f) else { continue };
                        let s: f64 = u.iter().zip(y).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                        let c = 1.0 + f64::from(confidence_weight(p.alpha, v));
                        sum += c * (1.0 - s) * (1.0 - s) - s * s;
                    }
                }
                sum
            })
            .collect();
        let norms = |m: &[f32]| -> f64 {
            let parts: Vec<f64> = m
                .par_chunks(LOSS_ROWS * f)
                .map(|c| c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
                .collect();
            parts.iter().sum()
        };
        parts.iter().sum::<f64>() + f64::from(p.regularization) * (norms(&self.user) + norms(&self.item))
    }
}

/// The matrix in CSR storage (sprs matrices may also be column-major).
fn row_major(x: &Csr) -> Cow<'_, Csr> {
    if x.is_csr() { Cow::Borrowed(x) } else { Cow::Owned(x.to_csr()) }
}

/// Rows per chunk of the loss sums.
const LOSS_ROWS: usize = 1024;

/// Row `r` of a row-major matrix with `f` columns, if it exists.
#[inline(always)]
fn row(m: &[f32], r: usize, f: usize) -> Option<&[f32]> {
    let start = r.checked_mul(f)?;
    m.get(start..start.checked_add(f)?)
}

/// `c - 1 = alpha * x` for a stored value; 0 when `x` is negative or the product is not
/// finite.
#[inline(always)]
fn confidence_weight(alpha: f32, x: f32) -> f32 {
    let w = alpha * x;
    if w > 0.0 && w.is_finite() { w } else { 0.0 }
}

/// Solves every row of `target` (rows of `m`, `f` factors each) given `other` (the factors
/// of `m`'s columns).
fn solve_side(target: &mut [f32], other: &[f32], f: usize, m: &Csr, p: AlsParams, solver: Solver) {
    let g = gram(other, f);
    let (indptr, indices, data) = (m.indptr(), m.indices(), m.data());
    let rows = target.par_chunks_mut(f).enumerate().with_min_len(16);
    match solver {
        Solver::ConjugateGradient { steps } => {
            let a: Vec<f32> = regularized(&g, f, p.regularization).iter().map(|&v| v as f32).collect();
            let kernel = Kernel::detect();
            rows.for_each_init(
                || CgScratch::new(f),
                |s, (u, x)| {
                    let r = indptr.outer_inds_sz(u);
                    if r.is_empty() {
                        x.fill(0.0);
                    } else {
                        kernel.cg_row(&a, other, &indices[r.clone()], &data[r], p.alpha, steps, x, s);
                    }
                },
            );
        }
        Solver::Cholesky => rows.for_each_init(
            || ExactScratch::new(f),
            |s, (u, x)| {
                let r = indptr.outer_inds_sz(u);
                if r.is_empty() {
                    x.fill(0.0);
                } else {
                    exact_row(&g, other, &indices[r.clone()], &data[r], p, x, s);
                }
            },
        ),
    }
}

/// `g + reg I`.
fn regularized(g: &[f64], f: usize, reg: f32) -> Vec<f64> {
    let mut a = g.to_vec();
    for d in 0..f {
        a[d * f + d] += f64::from(reg);
    }
    a
}

/// At most this many rows per `f32` block of the Gram matrix before it is added to the
/// `f64` total: keeps `f32` rounding small whatever the number of rows.
const GRAM_BLOCK: usize = 256;
/// Rows per parallel chunk of the Gram matrix (at least).
const GRAM_CHUNK: usize = 4096;

/// `Y^T Y` (`f x f`, full, `f64`) of the rows of `y` (`f` columns). Rows are summed in
/// `f32` over blocks of [`GRAM_BLOCK`], blocks in `f64`; chunks are fixed by the number of
/// rows and `f` alone and added in order, so the bits do not depend on the thread count.
fn gram(y: &[f32], f: usize) -> Vec<f64> {
    let n = y.len() / f;
    // At most 64 MB of partial sums.
    let max_parts = ((1usize << 23) / (f * f)).clamp(1, 32);
    let parts = n.div_ceil(GRAM_CHUNK).clamp(1, max_parts);
    let per = n.div_ceil(parts).max(1);
    let kernel = Kernel::detect();
    let partials: Vec<Vec<f64>> = y[..n * f]
        .par_chunks(per * f)
        .map(|chunk| {
            let mut acc = vec![0f64; f * f];
            let mut block = vec![0f32; f * f];
            for rows in chunk.chunks(GRAM_BLOCK * f) {
                block.fill(0.0);
                kernel.gram_block(rows, f, &mut block);
                for (a, &b) in acc.iter_mut().zip(&block) {
                    *a += f64::from(b);
                }
            }
            acc
        })
        .collect();
    let mut g = vec![0f64; f * f];
    for part in &partials {
        for (a, &b) in g.iter_mut().zip(part) {
            *a += b;
        }
    }
    // Only the upper triangle was summed; mirror it.
    for a in 0..f {
        for b in 0..a {
            g[a * f + b] = g[b * f + a];
        }
    }
    g
}

/// Per-worker buffers of the conjugate-gradient solver.
struct CgScratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl CgScratch {
    fn new(f: usize) -> Self {
        CgScratch { r: vec![0.0; f], p: vec![0.0; f], ap: vec![0.0; f] }
    }
}

/// Per-worker buffers of the exact solver.
struct ExactScratch {
    a: Vec<f64>,
    b: Vec<f64>,
}

impl ExactScratch {
    fn new(f: usize) -> Self {
        ExactScratch { a: vec![0.0; f * f], b: vec![0.0; f] }
    }
}

/// Which build of the hot loops runs: the same code and the same bits, compiled for the
/// baseline CPU or with AVX2 (detected at run time).
#[derive(Debug, Clone, Copy)]
enum Kernel {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        Kernel::Baseline
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn cg_row(
        self,
        a: &[f32],
        y: &[f32],
        cols: &[u32],
        vals: &[f32],
        alpha: f32,
        steps: usize,
        x: &mut [f32],
        s: &mut CgScratch,
    ) {
        match self {
            Kernel::Baseline => cg_row(a, y, cols, vals, alpha, steps, x, s),
            // SAFETY: AVX2 is present (checked by `detect`).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { cg_row_avx2(a, y, cols, vals, alpha, steps, x, s) },
        }
    }

    #[inline]
    fn gram_block(self, rows: &[f32], f: usize, out: &mut [f32]) {
        match self {
            Kernel::Baseline => gram_block(rows, f, out),
            // SAFETY: AVX2 is present (checked by `detect`).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { gram_block_avx2(rows, f, out) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn cg_row_avx2(
    a: &[f32],
    y: &[f32],
    cols: &[u32],
    vals: &[f32],
    alpha: f32,
    steps: usize,
    x: &mut [f32],
    s: &mut CgScratch,
) {
    cg_row(a, y, cols, vals, alpha, steps, x, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gram_block_avx2(rows: &[f32], f: usize, out: &mut [f32]) {
    gram_block(rows, f, out)
}

/// Adds `y y^T` of every row of `rows` (`f` columns) to the upper triangle of `out`
/// (`f x f`), four rows at a time.
#[inline(always)]
fn gram_block(rows: &[f32], f: usize, out: &mut [f32]) {
    let mut quads = rows.chunks_exact(4 * f);
    for q in &mut quads {
        let (y0, rest) = q.split_at(f);
        let (y1, rest) = rest.split_at(f);
        let (y2, y3) = rest.split_at(f);
        for (a, o) in out.chunks_exact_mut(f).enumerate() {
            let (c0, c1, c2, c3) = (y0[a], y1[a], y2[a], y3[a]);
            let o = &mut o[a..];
            for ((((o, &b0), &b1), &b2), &b3) in o.iter_mut().zip(&y0[a..]).zip(&y1[a..]).zip(&y2[a..]).zip(&y3[a..]) {
                *o += (c0 * b0 + c1 * b1) + (c2 * b2 + c3 * b3);
            }
        }
    }
    for y in quads.remainder().chunks_exact(f) {
        for (a, o) in out.chunks_exact_mut(f).enumerate() {
            axpy(y[a], &y[a..], &mut o[a..]);
        }
    }
}

/// Conjugate gradient on one row (Takacs et al. 2011, as implicit's `least_squares_cg`):
/// `steps` steps on `(A + sum_i w_i y_i y_i^T) x = sum_i (1 + w_i) y_i` from the current `x`,
/// where `A = Y^T Y + reg I` (`a`, `f x f`) and `w_i = alpha * vals[i]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn cg_row(
    a: &[f32],
    y: &[f32],
    cols: &[u32],
    vals: &[f32],
    alpha: f32,
    steps: usize,
    x: &mut [f32],
    s: &mut CgScratch,
) {
    let f = x.len();
    let CgScratch { r, p, ap } = s;
    // r = b - A x
    symv(a, x, r);
    r.iter_mut().for_each(|v| *v = -*v);
    for (k, (&i, &v)) in cols.iter().zip(vals).enumerate() {
        prefetch_row(y, f, cols.get(k + PREFETCH_AHEAD));
        let Some(yi) = row(y, i as usize, f) else { continue };
        let w = confidence_weight(alpha, v);
        axpy((1.0 + w) - w * dot(yi, x), yi, r);
    }
    p.copy_from_slice(r);
    let mut rs = dot(r, r);
    if rs.is_nan() || rs < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // ap = A p, without forming A.
        symv(a, p, ap);
        for (k, (&i, &v)) in cols.iter().zip(vals).enumerate() {
            prefetch_row(y, f, cols.get(k + PREFETCH_AHEAD));
            let Some(yi) = row(y, i as usize, f) else { continue };
            let w = confidence_weight(alpha, v);
            axpy(w * dot(yi, p), yi, ap);
        }
        let pap = dot(p, ap);
        if pap.is_nan() || pap <= 0.0 {
            break;
        }
        let step = rs / pap;
        axpy(step, p, x);
        axpy(-step, ap, r);
        let rs_new = dot(r, r);
        if rs_new.is_nan() || rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs;
        for (pk, &rk) in p.iter_mut().zip(r.iter()) {
            *pk = rk + beta * *pk;
        }
        rs = rs_new;
    }
}

/// The exact solution of one row: forms `G + reg I + sum_i w_i y_i y_i^T` and
/// `sum_i (1 + w_i) y_i` in `f64` and solves by Cholesky. A matrix that is not numerically
/// positive definite (no regularization, fewer items than factors) is retried with a tiny
/// ridge; if that fails too the row gets zeros.
fn exact_row(g: &[f64], y: &[f32], cols: &[u32], vals: &[f32], p: AlsParams, x: &mut [f32], s: &mut ExactScratch) {
    let f = x.len();
    let ExactScratch { a, b } = s;
    let build = |a: &mut [f64], b: &mut [f64], ridge: f64| {
        a.copy_from_slice(g);
        b.fill(0.0);
        for d in 0..f {
            a[d * f + d] += f64::from(p.regularization) + ridge;
        }
        for (&i, &v) in cols.iter().zip(vals) {
            let Some(yi) = row(y, i as usize, f) else { continue };
            let w = f64::from(confidence_weight(p.alpha, v));
            // Lower triangle: Cholesky reads only that.
            for (k, ak) in a.chunks_exact_mut(f).enumerate() {
                let wk = w * f64::from(yi[k]);
                for (o, &yj) in ak[..=k].iter_mut().zip(yi) {
                    *o += wk * f64::from(yj);
                }
            }
            for (bk, &yk) in b.iter_mut().zip(yi) {
                *bk += (1.0 + w) * f64::from(yk);
            }
        }
    };
    build(a, b, 0.0);
    if !cholesky_solve(a, b, f) {
        let trace: f64 = (0..f).map(|d| g[d * f + d]).sum::<f64>() + f64::from(p.regularization) * f as f64;
        let ridge = 1e-9 * (trace / f as f64).max(f64::MIN_POSITIVE);
        build(a, b, ridge);
        if !cholesky_solve(a, b, f) {
            b.fill(0.0);
        }
    }
    for (xk, &bk) in x.iter_mut().zip(b.iter()) {
        *xk = bk as f32;
    }
}

/// Solves `a z = b` in place (`b` becomes `z`) for symmetric positive definite `a`
/// (`f x f`, row-major, only the lower triangle read and overwritten by its Cholesky
/// factor). False, leaving `b` undefined, when a pivot is not positive and finite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], f: usize) -> bool {
    for j in 0..f {
        let (above, rest) = a.split_at_mut(j * f);
        let lj = &mut rest[..f];
        // Row j of L: L[j][k] = (A[j][k] - L[j][..k] . L[k][..k]) / L[k][k].
        for k in 0..j {
            let lk = &above[k * f..k * f + k + 1];
            let s: f64 = lj[..k].iter().zip(&lk[..k]).map(|(p, q)| p * q).sum();
            lj[k] = (lj[k] - s) / lk[k];
        }
        let d = lj[j] - lj[..j].iter().map(|v| v * v).sum::<f64>();
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        lj[j] = d.sqrt();
    }
    // L z = b, then L^T x = z.
    for j in 0..f {
        let lj = &a[j * f..j * f + j + 1];
        let s: f64 = lj[..j].iter().zip(&b[..j]).map(|(p, q)| p * q).sum();
        b[j] = (b[j] - s) / lj[j];
    }
    for j in (0..f).rev() {
        b[j] /= a[j * f + j];
        let bj = b[j];
        for (k, bk) in b[..j].iter_mut().enumerate() {
            *bk -= a[j * f + k] * bj;
        }
    }
    b.iter().all(|v| v.is_finite())
}

/// How many entries ahead a row's factors are asked for.
const PREFETCH_AHEAD: usize = 6;

/// Asks the CPU to fetch row `r` of `m` (`f` columns) into cache: the factor rows of a
/// row's entries are random accesses into a matrix larger than the cache. A hint only.
#[inline(always)]
fn prefetch_row(m: &[f32], f: usize, r: Option<&u32>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(row) = r.and_then(|&r| row(m, r as usize, f)) {
        for line in row.chunks(16) {
            // SAFETY: a prefetch is a hint; it never faults and reads nothing into the program.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (m, f, r);
}

/// `a . b` over the shorter length, in eight lanes added pairwise: a fixed order of
/// operations that vectorises on any x86-64.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0f32; 8];
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += alpha x`.
#[inline(always)]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yk, &xk) in y.iter_mut().zip(x) {
        *yk += alpha * xk;
    }
}

/// `out = m v` for symmetric `m` (`f x f`, row-major): the sum of `v[k] m[k]` over rows,
/// four rows at a time.
#[inline(always)]
fn symv(m: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    out.fill(0.0);
    let mut quads = m.chunks_exact(4 * f).zip(v.chunks_exact(4));
    for (rows, c) in &mut quads {
        let (r0, rest) = rows.split_at(f);
        let (r1, rest) = rest.split_at(f);
        let (r2, r3) = rest.split_at(f);
        let (c0, c1, c2, c3) = (c[0], c[1], c[2], c[3]);
        for ((((o, &a0), &a1), &a2), &a3) in out.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
            *o += (c0 * a0 + c1 * a1) + (c2 * a2 + c3 * a3);
        }
    }
    let done = f / 4 * 4;
    for (k, &c) in v.iter().enumerate().skip(done) {
        axpy(c, &m[k * f..(k + 1) * f], out);
    }
}

/// Scoring and explaining one customer, for [`super::Recommender`].
impl Als {
    /// Writes every item's score for the customer of `q` into `acc`: the model's own
    /// customer from their fitted factors, anyone else folded in from their purchases.
    pub(crate) fn score_query(&self, q: &Query<'_>, factors: &mut Vec<f32>, acc: &mut [f32], touched: &mut Vec<u32>) {
        match q.own {
            Some(c) if q.from_model => {
                factors.clear();
                factors.extend_from_slice(self.user_factors(c.get()));
            }
            _ => *factors = self.fold_in(q.items, q.weights),
        }
        self.score(factors, acc);
        touched.extend(0..acc.len() as u32);
    }

    /// The bought items whose factors point most the same way as item `j`'s.
    pub(crate) fn explain(&self, q: &Query<'_>, j: u32) -> Reason {
        let target = self.item_factors(j as usize);
        let mut contrib: Vec<(u32, f32)> = Vec::new();
        for &i in q.items {
            let d: f32 = self.item_factors(i as usize).iter().zip(target).map(|(a, b)| a * b).sum();
            if d > 0.0 {
                contrib.push((i, d));
            }
        }
        Reason::Resembles(top_three(contrib))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed, 0);
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn check_names_bad_parameters() {
        assert!(AlsParams::default().check().is_ok());
        let bad = [
            AlsParams { factors: 0, ..Default::default() },
            AlsParams { factors: MAX_FACTORS + 1, ..Default::default() },
            AlsParams { regularization: -1.0, ..Default::default() },
            AlsParams { regularization: f32::NAN, ..Default::default() },
            AlsParams { alpha: f32::INFINITY, ..Default::default() },
            AlsParams { iterations: 0, ..Default::default() },
            AlsParams { cg_steps: 0, ..Default::default() },
        ];
        for p in bad {
            assert!(p.check().is_err(), "{p:?}");
            assert!(p.clamped().check().is_ok(), "{p:?}");
        }
    }

    #[test]
    fn gram_matches_a_naive_sum() {
        // Over a chunk boundary and a block boundary, with an odd factor count.
        for (n, f) in [(0, 3), (1, 1), (9_000, 7), (600, 16)] {
            let y = random(n * f, n as u64);
            let g = gram(&y, f);
            for a in 0..f {
                for b in 0..f {
                    let want: f64 = (0..n).map(|r| f64::from(y[r * f + a]) * f64::from(y[r * f + b])).sum();
                    assert!((g[a * f + b] - want).abs() <= 1e-5 * (1.0 + want.abs()), "{n} {f} {a} {b}");
                }
            }
        }
    }

    #[test]
    fn dense_helpers_follow_their_formulas() {
        let f = 11;
        let m0 = random(f * f, 1);
        // Symmetric m.
        let m: Vec<f32> = (0..f * f).map(|k| m0[k] + m0[(k % f) * f + k / f]).collect();
        let v = random(f, 2);
        let mut out = vec![0f32; f];
        symv(&m, &v, &mut out);
        for a in 0..f {
            let want: f32 = (0..f).map(|b| m[a * f + b] * v[b]).sum();
            assert!((out[a] - want).abs() < 1e-4);
        }
        let want: f32 = v.iter().map(|x| x * x).sum();
        assert!((dot(&v, &v) - want).abs() < 1e-4);
        assert_eq!(dot(&v, &v[..3]), v[..3].iter().map(|x| x * x).sum::<f32>());
    }

    #[test]
    fn cholesky_solves_and_refuses_indefinite() {
        // A = [[4, 2], [2, 3]], b = [2, 1] -> x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(cholesky_solve(&mut a, &mut b, 2));
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky_solve(&mut a, &mut [1.0, 1.0], 2));
        let mut a = vec![0.0];
        assert!(!cholesky_solve(&mut a, &mut [1.0], 1));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_baseline_kernels_give_the_same_bits() {
        let Kernel::Avx2 = Kernel::detect() else { return };
        for f in [1, 5, 8, 13, 64] {
            let y = random(40 * f, f as u64);
            let (mut g0, mut g1) = (vec![0f32; f * f], vec![0f32; f * f]);
            Kernel::Baseline.gram_block(&y, f, &mut g0);
            Kernel::Avx2.gram_block(&y, f, &mut g1);
            assert!(g0.iter().zip(&g1).all(|(a, b)| a.to_bits() == b.to_bits()), "gram, f = {f}");
            let g = gram(&y, f);
            let a: Vec<f32> = regularized(&g, f, 0.1).iter().map(|&v| v as f32).collect();
            let cols: Vec<u32> = (0..40).step_by(3).collect();
            let vals: Vec<f32> = cols.iter().map(|&c| 1.0 + c as f32 / 7.0).collect();
            let x0 = random(f, 99);
            let (mut x1, mut x2) = (x0.clone(), x0.clone());
            Kernel::Baseline.cg_row(&a, &y, &cols, &vals, 2.0, 5, &mut x1, &mut CgScratch::new(f));
            Kernel::Avx2.cg_row(&a, &y, &cols, &vals, 2.0, 5, &mut x2, &mut CgScratch::new(f));
            assert!(x1.iter().zip(&x2).all(|(a, b)| a.to_bits() == b.to_bits()), "cg, f = {f}");
            assert_ne!(x1, x0);
        }
    }
}
