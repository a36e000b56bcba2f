//! A weighted purchase matrix in, the EASE recommender out: every customer's scores as a
//! closed-form linear function of what they bought.
//!
//! EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data") fits the item x
//! item matrix `B = argmin ||X - XB||² + λ||B||²` with `diag(B) = 0`, whose closed form is
//! `B = I - P diag(1 / diag(P))` with `P = (XᵀX + λI)⁻¹`; a customer whose weighted
//! purchases are the row `x` scores `s = x B`. The same `P` comes from either of two dense
//! systems, and [`Ease::fit`] solves the smaller one ([`EaseSide::Auto`]):
//!
//! - item side (no more items than customers): the items x items Gram matrix `XᵀX + λI`,
//!   its Cholesky factor and inverse; `B` itself is kept (items² `f32`) and a row is scored
//!   as a sum of `B`'s rows.
//! - customer side (fewer customers than items), by the Woodbury identity:
//!   `P = (I - Xᵀ M X) / λ` with `M = (λI + XXᵀ)⁻¹`, customers x customers. `M` (its upper
//!   triangle, `f64`), `diag(P)` and `X` are kept, and a row is scored as
//!   `xP = (x - ((xXᵀ) M) X) / λ`, `s = x - xP ./ diag(P)`: any row, also the purchases of
//!   a customer the model never saw (fold-in).
//!
//! Items nobody bought and customers who bought nothing are left out of the solve: the full
//! solution gives those items a score of 0 and the customers add nothing to `XᵀX`, so the
//! answer is the same. [`EaseParams::max_items`] keeps only the most bought items (by number
//! of buyers, ties by lower index) for catalogues too large for either system; the other
//! items score 0.
//!
//! Memory: at its peak either solve holds two dense `f64` matrices of its size (the Cholesky
//! factor and its inverse). [`Ease::fit`] works out the size from the matrix's shape and
//! sparsity alone and refuses with [`EaseError::TooLarge`] before allocating anything dense
//! when that exceeds the caller's budget; [`Ease::estimate`] tells the same in advance.
//!
//! Determinism: the Gram matrices, `diag(P)` and every score are computed entry by entry,
//! each by one worker summing in a fixed order. The dense Cholesky factorisation, triangular
//! inverse and product run in faer, whose parallel kernels share out blocks of the *output*
//! with block sizes and a reduction depth (512) that do not depend on the thread count, so
//! threads change who computes a block, never the order of a sum; the tests check that pools
//! of 1 and 4 threads give the same bits.

use std::fmt;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{LltRegularization, cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Query, Reason, top_three};
use crate::matrix::{Csr, check_rows, transpose_parts};

/// How much memory EASE's dense solve may take: three quarters of what the operating
/// system reports available (Linux `MemAvailable`), or 8 GiB where that is unknown.
pub fn memory_budget() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    available.map_or(8 << 30, |b| b / 4 * 3)
}

/// Which dense system EASE solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EaseSide {
    /// The smaller one: items when there are no more bought items than customers with
    /// purchases, customers otherwise.
    #[default]
    Auto,
    /// Items x items: `B` is stored; scoring costs one row of `B` per purchase.
    Items,
    /// Customers x customers (Woodbury): `M`, `diag(P)` and `X` are stored; scoring costs
    /// about `customers² + nnz(X)` per customer.
    Customers,
}

impl EaseSide {
    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            EaseSide::Auto => "auto",
            EaseSide::Items => "items",
            EaseSide::Customers => "customers",
        }
    }
}

/// EASE's parameters. Validate with [`EaseParams::check`].
///
/// The default `lambda` is 500: Steck's tuned values were 200 (Million Song Dataset), 500
/// (MovieLens 20M) and 1,000 (Netflix) on binary data, and the ranking changes little within
/// a factor of two. `lambda` is compared with the squared weights a customer row carries
/// (it is added to `XᵀX`), so with weights well above 1 (counts, BM25) it should grow with
/// the square of their typical size; tune it on held-out data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EaseParams {
    /// The L2 penalty `λ` (> 0): larger shrinks `B` towards 0 and favours popular items less.
    pub lambda: f32,
    /// Keep only the this many most bought items (by number of buyers, ties by lower index);
    /// the others score 0. 0: all items.
    #[serde(default)]
    pub max_items: usize,
    /// Which dense system to solve; both give the same scores.
    #[serde(default)]
    pub side: EaseSide,
}

impl Default for EaseParams {
    fn default() -> Self {
        EaseParams { lambda: 500.0, max_items: 0, side: EaseSide::Auto }
    }
}

impl EaseParams {
    /// Checks ranges; the message names the parameter.
    pub fn check(&self) -> Result<(), String> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(format!("the EASE lambda must be a number > 0, got {}", self.lambda));
        }
        Ok(())
    }
}

/// Why EASE could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum EaseError {
    /// A parameter is out of range.
    #[error("{0}")]
    Params(String),
    /// The matrix holds NaN or an infinity.
    #[error("the weighted matrix holds a value that is not a finite number (customer {customer}, item {item})")]
    NotFinite {
        /// Row of the first such value.
        customer: usize,
        /// Column of the first such value.
        item: usize,
    },
    /// The dense matrices of the solve would exceed the memory budget (nothing was allocated).
    #[error("{}", too_large(*.side, *.dim, *.bytes, *.budget, *.max_items))]
    TooLarge {
        /// The system that was chosen ([`EaseSide::Items`] or [`EaseSide::Customers`]).
        side: EaseSide,
        /// Its size (items or customers).
        dim: usize,
        /// Bytes it needs at its peak.
        bytes: u64,
        /// The caller's budget in bytes.
        budget: u64,
        /// The largest `max_items` whose solve fits the budget (0: none does).
        max_items: usize,
    },
    /// The allocator refused a dense matrix that fit the budget.
    #[error("could not allocate {} for EASE's {dim} x {dim} dense matrix", human(*.bytes))]
    OutOfMemory {
        /// Size of the matrix.
        dim: usize,
        /// Bytes asked for.
        bytes: u64,
    },
    /// The system is numerically singular (lambda too small next to the weights).
    #[error("EASE's {dim} x {dim} system is numerically singular: raise lambda (now {lambda}) or use smaller weights")]
    Singular {
        /// Size of the system.
        dim: usize,
        /// The lambda used.
        lambda: f32,
    },
}

fn too_large(side: EaseSide, dim: usize, bytes: u64, budget: u64, max_items: usize) -> String {
    let side = if side == EaseSide::Customers { "customer-side" } else { "item-side" };
    let fix = if max_items > 0 {
        format!("restrict with max_items = {} or use item-knn", thousands(max_items as u64))
    } else {
        "use item-knn".to_string()
    };
    format!(
        "EASE's {side} solve needs two {d} x {d} dense matrices ({}); the memory budget allows {}: {fix}",
        human(bytes),
        human(budget),
        d = thousands(dim as u64),
    )
}

/// `1234567` as `"1,234,567"`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in decimal units with one decimal ("80.0 GB").
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

/// Peak bytes of a solve of size `dim`: two dense `f64` matrices (saturating).
pub fn dense_bytes(dim: usize) -> u64 {
    let b = (dim as u128).saturating_mul(dim as u128).saturating_mul(16);
    u64::try_from(b).unwrap_or(u64::MAX)
}

/// The largest `max_items` whose item-side solve fits `budget`, rounded down to two
/// significant digits (0 when none fits).
fn max_items_within(budget: u64) -> usize {
    let mut n = ((budget / 16) as f64).sqrt() as u64;
    while 16u128 * u128::from(n) * u128::from(n) > u128::from(budget) {
        n -= 1;
    }
    let mut unit = 1u64;
    while n / unit >= 100 {
        unit *= 10;
    }
    usize::try_from(n / unit * unit).unwrap_or(usize::MAX)
}

/// What a fit would solve, from the matrix's shape and sparsity alone (see [`Ease::estimate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EaseSize {
    /// [`EaseSide::Items`] or [`EaseSide::Customers`].
    pub side: EaseSide,
    /// Items kept (bought, within `max_items`).
    pub items: usize,
    /// Customers with a purchase of a kept item.
    pub customers: usize,
    /// Size of the dense system (`items` or `customers`).
    pub dim: usize,
    /// Peak bytes of its dense matrices.
    pub bytes: u64,
}

/// A fitted EASE model. Build with [`Ease::fit`], score with [`Ease::score`].
#[derive(Clone)]
pub struct Ease {
    params: EaseParams,
    /// Number of items (columns of the fitted matrix; the length of a score vector).
    items: usize,
    /// Items in the solve, ascending (original indices).
    kept: Vec<u32>,
    /// `kept` is `0..items`.
    identity: bool,
    solution: Solution,
}

#[derive(Clone)]
enum Solution {
    /// `B`, kept x kept, row-major.
    Items { b: Vec<f32> },
    Customers {
        /// `M`'s upper triangle, row by row (`M[r, r..]`).
        m: Vec<f64>,
        /// `diag(P)` per kept item.
        diag_p: Vec<f64>,
        /// `1 / (λ diag(P))` per kept item (derived).
        inv_scale: Vec<f64>,
        /// `X`: customers in the solve x kept items.
        x: Sparse,
        /// `Xᵀ` (derived).
        xt: Sparse,
    },
}

impl fmt::Debug for Ease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ease")
            .field("params", &self.params)
            .field("items", &self.items)
            .field("kept", &self.kept.len())
            .field("side", &self.side())
            .field("customers", &self.customers())
            .finish()
    }
}

/// A fitted model as plain arrays (for the model file); back with [`Ease::from_parts`].
#[derive(Debug, Clone, PartialEq)]
pub struct EaseParts {
    /// The parameters it was fitted with.
    pub params: EaseParams,
    /// Number of items (the length of a score vector).
    pub items: usize,
    /// Items in the solve, strictly ascending, each `< items`.
    pub kept: Vec<u32>,
    /// The solution of the side that was solved.
    pub solution: EaseSolution,
}

/// The stored solution of one side, over the kept items (`k = kept.len()`).
#[derive(Debug, Clone, PartialEq)]
pub enum EaseSolution {
    /// Item side.
    Items {
        /// `B`, `k x k` row-major, zero diagonal.
        b: Vec<f32>,
    },
    /// Customer side, with `c` customers in the solve.
    Customers {
        /// `M = (λI + XXᵀ)⁻¹`, its upper triangle row by row: `M[0, 0..c]`, `M[1, 1..c]`, …
        /// (`c (c + 1) / 2` values).
        m_upper: Vec<f64>,
        /// `diag(P)`, `k` values, all > 0.
        diag_p: Vec<f64>,
        /// `X` as CSR (`c` rows, columns are kept-item positions): row pointers.
        indptr: Vec<usize>,
        /// Column indices, sorted within a row.
        indices: Vec<u32>,
        /// Weights.
        data: Vec<f32>,
    },
}

/// Per-worker buffers for [`Ease::score`]; get one from [`Ease::scratch`].
#[derive(Debug, Clone, Default)]
pub struct EaseScratch {
    pairs: Vec<(u32, f64)>,
    x: Vec<f64>,
    z: Vec<f64>,
    t: Vec<f64>,
    v: Vec<f64>,
}

impl EaseScratch {
    fn prepare(&mut self, k: usize, c: usize) {
        self.pairs.clear();
        for (buf, len) in [(&mut self.x, k), (&mut self.z, k), (&mut self.t, c), (&mut self.v, c)] {
            buf.clear();
            buf.resize(len, 0.0);
        }
    }
}

/// The first row of `x` equal to the sorted `pairs` (same items, same weights), found among
/// the buyers of the pair with the fewest: a customer's own purchases, usually.
fn own_row(pairs: &[(u32, f64)], x: &Sparse, xt: &Sparse) -> Option<usize> {
    let rarest = pairs.iter().map(|p| xt.row(p.0 as usize).0).min_by_key(|b| b.len())?;
    rarest.iter().map(|&r| r as usize).find(|&r| {
        let (items, weights) = x.row(r);
        items.len() == pairs.len()
            && items.iter().zip(weights).zip(pairs).all(|((&j, &w), p)| j == p.0 && f64::from(w) == p.1)
    })
}

/// Where row `r` of a `c x c` upper triangle packed by rows starts.
fn packed_offset(r: usize, c: usize) -> usize {
    r * c - r * r.saturating_sub(1) / 2
}

/// A CSR matrix as plain arrays (`indptr` never empty).
#[derive(Debug, Clone)]
struct Sparse {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl Sparse {
    fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    #[inline]
    fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[range.clone()], &self.data[range])
    }

    /// The transpose, with `cols` columns here.
    fn transpose(&self, cols: usize) -> Sparse {
        let (indptr, indices, data) = transpose_parts(&self.indptr, &self.indices, &self.data, cols, None);
        Sparse { indptr, indices, data }
    }
}

/// What to solve: the kept items, the customers in the solve, the side.
struct Plan {
    kept: Vec<u32>,
    rows: Vec<usize>,
    side: EaseSide,
}

impl Plan {
    fn new(x: &Csr, p: &EaseParams) -> Result<Plan, EaseError> {
        let (customers, items) = x.shape();
        let ptr = x.proper_indptr();
        let (idx, data) = (x.indices(), x.data());
        let mut buyers = vec![0u32; items];
        for r in 0..customers {
            for k in ptr[r]..ptr[r + 1] {
                let (j, v) = (idx[k] as usize, data[k]);
                if !v.is_finite() {
                    return Err(EaseError::NotFinite { customer: r, item: j });
                }
                if v != 0.0 {
                    buyers[j] = buyers[j].saturating_add(1);
                }
            }
        }
        let mut kept: Vec<u32> = (0..items).filter(|&j| buyers[j] > 0).map(|j| j as u32).collect();
        if p.max_items > 0 && kept.len() > p.max_items {
            kept.sort_unstable_by(|&a, &b| buyers[b as usize].cmp(&buyers[a as usize]).then(a.cmp(&b)));
            kept.truncate(p.max_items);
            kept.sort_unstable();
        }
        let mut is_kept = vec![false; items];
        kept.iter().for_each(|&j| is_kept[j as usize] = true);
        let rows: Vec<usize> = (0..customers)
            .filter(|&r| (ptr[r]..ptr[r + 1]).any(|k| data[k] != 0.0 && is_kept[idx[k] as usize]))
            .collect();
        let side = match p.side {
            EaseSide::Auto if kept.len() <= rows.len() => EaseSide::Items,
            EaseSide::Auto => EaseSide::Customers,
            s => s,
        };
        Ok(Plan { kept, rows, side })
    }

    fn size(&self) -> EaseSize {
        let dim = if self.side == EaseSide::Items { self.kept.len() } else { self.rows.len() };
        EaseSize { side: self.side, items: self.kept.len(), customers: self.rows.len(), dim, bytes: dense_bytes(dim) }
    }

    /// `x` restricted to the customers and items in the solve (columns renumbered), explicit
    /// zeros dropped.
    fn restrict(&self, x: &Csr) -> Sparse {
        let mut col = vec![u32::MAX; x.cols()];
        self.kept.iter().enumerate().for_each(|(k, &j)| col[j as usize] = k as u32);
        let ptr = x.proper_indptr();
        let mut out = Sparse { indptr: Vec::with_capacity(self.rows.len() + 1), indices: Vec::new(), data: Vec::new() };
        out.indptr.push(0);
        for &r in &self.rows {
            for k in ptr[r]..ptr[r + 1] {
                let (j, v) = (col[x.indices()[k] as usize], x.data()[k]);
                if j != u32::MAX && v != 0.0 {
                    out.indices.push(j);
                    out.data.push(v);
                }
            }
            out.indptr.push(out.indices.len());
        }
        out
    }
}

/// A zeroed vector of `len` values, or [`EaseError::OutOfMemory`] instead of an abort.
fn zeroed<T: Copy + Default>(len: usize, dim: usize) -> Result<Vec<T>, EaseError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| EaseError::OutOfMemory { dim, bytes: (len as u64).saturating_mul(size_of::<T>() as u64) })?;
    v.resize(len, T::default());
    Ok(v)
}

/// The inverse of the symmetric positive definite `a` (`n x n`, column-major, lower
/// triangle read), lower triangle written (column-major); `a` is consumed. Peak: two
/// `n x n` matrices.
fn spd_inverse_lower(mut a: Vec<f64>, n: usize, lambda: f32) -> Result<Vec<f64>, EaseError> {
    let par = Par::rayon(0);
    let singular = EaseError::Singular { dim: n, lambda };
    {
        let req = cholesky_in_place_scratch::<f64>(n, par, Default::default());
        let mut mem = MemBuffer::try_new(req).map_err(|_| EaseError::OutOfMemory { dim: n, bytes: 8 * n as u64 })?;
        let view = MatMut::from_column_major_slice_mut(&mut a, n, n);
        cholesky_in_place(view, LltRegularization::default(), par, MemStack::new(&mut mem), Default::default())
            .map_err(|_| EaseError::Singular { dim: n, lambda })?;
    }
    // A pivot that underflowed to 0 or overflowed shows up as a non-finite factor.
    if (0..n).any(|j| !(a[j * n + j].is_finite() && a[j * n + j] > 0.0)) {
        return Err(singular);
    }
    let mut linv = zeroed::<f64>(n * n, n)?;
    invert_lower_triangular(
        MatMut::from_column_major_slice_mut(&mut linv, n, n),
        MatRef::from_column_major_slice(&a, n, n),
        par,
    );
    drop(a);
    let mut p = zeroed::<f64>(n * n, n)?;
    let l = MatRef::from_column_major_slice(&linv, n, n);
    matmul(
        MatMut::from_column_major_slice_mut(&mut p, n, n),
        BlockStructure::TriangularLower,
        Accum::Replace,
        l.transpose(),
        BlockStructure::TriangularUpper,
        l,
        BlockStructure::TriangularLower,
        1.0,
        par,
    );
    Ok(p)
}

/// Item side: `B` (`k x k` row-major `f32`) from `X` (`xr`) and `Xᵀ` (`xc`).
fn solve_items(xr: &Sparse, xc: &Sparse, k: usize, lambda: f32) -> Result<Vec<f32>, EaseError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    let mut g = zeroed::<f64>(k * k, k)?;
    // Column j of XᵀX: the rows of every buyer of j, buyers in order.
    g.par_chunks_mut(k).enumerate().for_each(|(j, col)| {
        let (cs, ws) = xc.row(j);
        for (&c, &wj) in cs.iter().zip(ws) {
            let wj = f64::from(wj);
            let (is, vs) = xr.row(c as usize);
            for (&i, &v) in is.iter().zip(vs) {
                col[i as usize] += wj * f64::from(v);
            }
        }
        col[j] += f64::from(lambda);
    });
    let p = spd_inverse_lower(g, k, lambda)?;
    let diag: Vec<f64> = (0..k).map(|j| p[j * k + j]).collect();
    if diag.iter().any(|&d| !(d.is_finite() && d > 0.0)) {
        return Err(EaseError::Singular { dim: k, lambda });
    }
    // B[i, j] = -P[i, j] / P[j, j], only P's lower triangle being there: rows in blocks of 8
    // so that P[i.., j] for i > j is read a cache line at a time.
    const ROWS: usize = 8;
    let mut b = zeroed::<f32>(k * k, k)?;
    b.par_chunks_mut(ROWS * k).enumerate().for_each(|(blk, rows)| {
        let i0 = blk * ROWS;
        let nb = rows.len() / k;
        for (j, &dj) in diag.iter().enumerate() {
            for r in 0..nb {
                let i = i0 + r;
                let pij = if i >= j { p[j * k + i] } else { p[i * k + j] };
                rows[r * k + j] = if i == j { 0.0 } else { (-pij / dj) as f32 };
            }
        }
    });
    if b.par_iter().any(|v| !v.is_finite()) {
        return Err(EaseError::Singular { dim: k, lambda });
    }
    Ok(b)
}

/// Copies the lower triangle of the column-major `n x n` matrix `m` onto its upper one.
fn symmetrize(m: &mut [f64], n: usize) {
    const T: usize = 64;
    for jb in (0..n).step_by(T) {
        for ib in (jb..n).step_by(T) {
            for j in jb..(jb + T).min(n) {
                for i in ib.max(j + 1)..(ib + T).min(n) {
                    m[i * n + j] = m[j * n + i];
                }
            }
        }
    }
}

/// Customer side: `M`'s upper triangle (packed by rows) and `diag(P)`.
fn solve_customers(xr: &Sparse, xc: &Sparse, k: usize, lambda: f32) -> Result<(Vec<f64>, Vec<f64>), EaseError> {
    let c = xr.rows();
    let lam = f64::from(lambda);
    if c == 0 {
        return Ok((Vec::new(), vec![1.0 / lam; k]));
    }
    let mut g = zeroed::<f64>(c * c, c)?;
    // Row r of XXᵀ: for each of r's items, every buyer of it.
    g.par_chunks_mut(c).enumerate().for_each(|(r, row)| {
        let (js, ws) = xr.row(r);
        for (&j, &wr) in js.iter().zip(ws) {
            let wr = f64::from(wr);
            let (ds, vs) = xc.row(j as usize);
            for (&d, &v) in ds.iter().zip(vs) {
                row[d as usize] += wr * f64::from(v);
            }
        }
        row[r] += lam;
    });
    let mut m = spd_inverse_lower(g, c, lambda)?;
    symmetrize(&mut m, c);
    // diag(P)_j = (1 - x_jᵀ M x_j) / λ over item j's column x_j.
    let diag_p: Vec<f64> = (0..k)
        .into_par_iter()
        .map(|j| {
            let (cs, ws) = xc.row(j);
            let mut q = 0.0;
            for (&a, &wa) in cs.iter().zip(ws) {
                let col = &m[a as usize * c..(a as usize + 1) * c];
                let inner: f64 = cs.iter().zip(ws).map(|(&b, &wb)| f64::from(wb) * col[b as usize]).sum();
                q += f64::from(wa) * inner;
            }
            (1.0 - q) / lam
        })
        .collect();
    let mut packed = Vec::new();
    packed
        .try_reserve_exact(c * (c + 1) / 2)
        .map_err(|_| EaseError::OutOfMemory { dim: c, bytes: 4 * (c * (c + 1)) as u64 })?;
    for r in 0..c {
        // Column r's lower part is row r's upper part.
        packed.extend_from_slice(&m[r * c + r..(r + 1) * c]);
    }
    if packed.iter().any(|v| !v.is_finite()) || diag_p.iter().any(|&d| !(d.is_finite() && d > 0.0)) {
        return Err(EaseError::Singular { dim: c, lambda });
    }
    Ok((packed, diag_p))
}

/// `y += a * m` and returns `m · t`, over the common length, in a fixed order (eight lanes,
/// then the tail).
#[inline]
fn axpy_dot(y: &mut [f64], a: f64, m: &[f64], t: &[f64]) -> f64 {
    let n = y.len().min(m.len()).min(t.len());
    let (y, m, t) = (&mut y[..n], &m[..n], &t[..n]);
    let mut acc = [0f64; 8];
    let mut yc = y.chunks_exact_mut(8);
    let mut mc = m.chunks_exact(8);
    let mut tc = t.chunks_exact(8);
    for ((y8, m8), t8) in (&mut yc).zip(&mut mc).zip(&mut tc) {
        for l in 0..8 {
            y8[l] += a * m8[l];
            acc[l] += m8[l] * t8[l];
        }
    }
    let mut tail = 0.0;
    for ((yv, &mv), &tv) in yc.into_remainder().iter_mut().zip(mc.remainder()).zip(tc.remainder()) {
        *yv += a * mv;
        tail += mv * tv;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

impl Ease {
    /// What [`Ease::fit`] would solve and the bytes it would need, without allocating
    /// anything dense.
    pub fn estimate(x: &Csr, params: &EaseParams) -> Result<EaseSize, EaseError> {
        params.check().map_err(EaseError::Params)?;
        Ok(Plan::new(x, params)?.size())
    }

    /// Fits EASE on the weighted customer x item matrix `x`.
    ///
    /// Refuses with [`EaseError::TooLarge`], before allocating anything dense, when the
    /// solve's dense matrices ([`EaseSize::bytes`]) exceed `memory_budget_bytes` (pass
    /// `u64::MAX` for no limit). The sparse copies of `x` (a few times its size) are not
    /// counted.
    pub fn fit(x: &Csr, params: &EaseParams, memory_budget_bytes: u64) -> Result<Ease, EaseError> {
        params.check().map_err(EaseError::Params)?;
        let plan = Plan::new(x, params)?;
        let size = plan.size();
        if size.bytes > memory_budget_bytes || size.dim.checked_mul(size.dim).is_none() {
            return Err(EaseError::TooLarge {
                side: size.side,
                dim: size.dim,
                bytes: size.bytes,
                budget: memory_budget_bytes,
                max_items: max_items_within(memory_budget_bytes),
            });
        }
        let k = plan.kept.len();
        let xr = plan.restrict(x);
        let xc = xr.transpose(k);
        let solution = match plan.side {
            EaseSide::Customers => {
                let (m, diag_p) = solve_customers(&xr, &xc, k, params.lambda)?;
                let inv_scale = inverse_scale(&diag_p, params.lambda);
                Solution::Customers { m, diag_p, inv_scale, x: xr, xt: xc }
            }
            _ => Solution::Items { b: solve_items(&xr, &xc, k, params.lambda)? },
        };
        let identity = k == x.cols();
        Ok(Ease { params: *params, items: x.cols(), kept: plan.kept, identity, solution })
    }

    /// Number of items: the length of a score vector.
    pub fn items(&self) -> usize {
        self.items
    }

    /// The items in the solve (bought, within `max_items`), ascending; the others score 0.
    pub fn kept_items(&self) -> &[u32] {
        &self.kept
    }

    /// The parameters the model was fitted with.
    pub fn params(&self) -> &EaseParams {
        &self.params
    }

    /// The side that was solved: [`EaseSide::Items`] or [`EaseSide::Customers`].
    pub fn side(&self) -> EaseSide {
        match self.solution {
            Solution::Items { .. } => EaseSide::Items,
            Solution::Customers { .. } => EaseSide::Customers,
        }
    }

    /// Customers in the solve (customer side), 0 on the item side.
    fn customers(&self) -> usize {
        match &self.solution {
            Solution::Items { .. } => 0,
            Solution::Customers { x, .. } => x.rows(),
        }
    }

    /// Buffers for [`Ease::score`], sized for this model.
    pub fn scratch(&self) -> EaseScratch {
        let mut s = EaseScratch::default();
        s.prepare(self.kept.len(), self.customers());
        s
    }

    #[inline]
    fn position(&self, item: u32) -> Option<u32> {
        if self.identity {
            ((item as usize) < self.items).then_some(item)
        } else {
            self.kept.binary_search(&item).ok().map(|k| k as u32)
        }
    }

    /// Scores of every item (`out[i]` for item `i`) for a customer given their purchases:
    /// item indices and weights (weighted as the fitted matrix was). Items in the input get
    /// their EASE score too (the caller filters). `out` is overwritten; it should hold
    /// [`Ease::items`] values (a shorter one gets the first ones, a longer one zeros after).
    ///
    /// Never fails: indices past the catalogue and items outside the solve are ignored,
    /// repeated items add up, `items` and `weights` are paired up to the shorter; the result
    /// does not depend on the order of the pairs.
    pub fn score(&self, items: &[u32], weights: &[f32], out: &mut [f32], scratch: &mut EaseScratch) {
        let k = self.kept.len();
        let s = scratch;
        s.prepare(k, self.customers());
        for (&i, &w) in items.iter().zip(weights) {
            if let Some(j) = self.position(i) {
                s.pairs.push((j, f64::from(w)));
            }
        }
        // Sums run in item order (then weight order for a repeated item), whatever the input order.
        s.pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        match &self.solution {
            Solution::Items { b } => {
                for &(j, w) in &s.pairs {
                    let row = &b[j as usize * k..(j as usize + 1) * k];
                    for (z, &bv) in s.z.iter_mut().zip(row) {
                        *z += w * f64::from(bv);
                    }
                }
            }
            Solution::Customers { m, inv_scale, x, xt, .. } => {
                let c = x.rows();
                for &(j, w) in &s.pairs {
                    s.x[j as usize] += w;
                }
                if let Some(r) = own_row(&s.pairs, x, xt) {
                    // x is row r of X, so t = x Xᵀ is row r of X Xᵀ and, as X Xᵀ M =
                    // (λI + X Xᵀ) M - λM = I - λM, v = t M = e_r - λ M[r, ·]: c steps
                    // instead of c² (a customer in the model scored on their purchases).
                    let lambda = f64::from(self.params.lambda);
                    let (mut off, off_r) = (0, packed_offset(r, c));
                    for i in 0..c {
                        let m_ir = if i <= r { m[off + (r - i)] } else { m[off_r + (i - r)] };
                        s.v[i] = -lambda * m_ir;
                        off += c - i;
                    }
                    s.v[r] += 1.0;
                } else {
                    // t = x Xᵀ
                    for &(j, w) in &s.pairs {
                        let (cs, vs) = xt.row(j as usize);
                        for (&r, &v) in cs.iter().zip(vs) {
                            s.t[r as usize] += w * f64::from(v);
                        }
                    }
                    // v = t M, M symmetric and packed by rows of its upper triangle.
                    let mut off = 0;
                    for r in 0..c {
                        let row = &m[off..off + (c - r)];
                        off += c - r;
                        let tr = s.t[r];
                        s.v[r] += tr * row[0];
                        let dot = axpy_dot(&mut s.v[r + 1..], tr, &row[1..], &s.t[r + 1..]);
                        s.v[r] += dot;
                    }
                }
                // z = v X, item by item (v is small and stays in cache; z is written in order).
                for (j, z) in s.z.iter_mut().enumerate() {
                    let (rs, ws) = xt.row(j);
                    *z = rs.iter().zip(ws).map(|(&r, &w)| s.v[r as usize] * f64::from(w)).sum();
                }
                // s = x - xP ./ diag(P), xP = (x - z) / λ
                for ((z, &xj), &sc) in s.z.iter_mut().zip(&s.x).zip(inv_scale) {
                    *z = xj - (xj - *z) * sc;
                }
            }
        }
        out.fill(0.0);
        if self.identity {
            out.iter_mut().zip(&s.z).for_each(|(o, &z)| *o = z as f32);
        } else {
            for (&i, &z) in self.kept.iter().zip(&s.z) {
                if let Some(o) = out.get_mut(i as usize) {
                    *o = z as f32;
                }
            }
        }
    }

    /// The model as plain arrays.
    pub fn to_parts(&self) -> EaseParts {
        let solution = match &self.solution {
            Solution::Items { b } => EaseSolution::Items { b: b.clone() },
            Solution::Customers { m, diag_p, x, .. } => EaseSolution::Customers {
                m_upper: m.clone(),
                diag_p: diag_p.clone(),
                indptr: x.indptr.clone(),
                indices: x.indices.clone(),
                data: x.data.clone(),
            },
        };
        EaseParts { params: self.params, items: self.items, kept: self.kept.clone(), solution }
    }

    /// Reassembles a model from [`Ease::to_parts`], checking every length, order and value
    /// (finite, diagonal of `B` zero, `diag(P)` and `M`'s diagonal positive), so damaged
    /// parts are an error, never a panic or a wrong answer.
    pub fn from_parts(p: EaseParts) -> Result<Ease, String> {
        p.params.check()?;
        let EaseParts { params, items, kept, solution } = p;
        if items > u32::MAX as usize + 1 {
            return Err(format!("EASE: {items} items do not fit 32-bit indices"));
        }
        if kept.windows(2).any(|w| w[1] <= w[0]) || kept.last().is_some_and(|&j| j as usize >= items) {
            return Err("EASE: the kept items are unsorted or out of range".into());
        }
        let k = kept.len();
        if params.max_items > 0 && k > params.max_items {
            return Err(format!("EASE: {k} kept items, more than max_items = {}", params.max_items));
        }
        let solution = match solution {
            EaseSolution::Items { b } => {
                if k.checked_mul(k) != Some(b.len()) {
                    return Err(format!("EASE: B holds {} values, not {k} x {k}", b.len()));
                }
                if b.iter().any(|v| !v.is_finite()) || (0..k).any(|j| b[j * k + j] != 0.0) {
                    return Err("EASE: B holds a non-finite value or a nonzero diagonal".into());
                }
                Solution::Items { b }
            }
            EaseSolution::Customers { m_upper, diag_p, indptr, indices, data } => {
                let c = indptr.len().checked_sub(1).ok_or("EASE: the customer rows have no row pointers")?;
                check_csr(&indptr, &indices, data.len(), (c, k))?;
                if data.iter().any(|v| !v.is_finite()) {
                    return Err("EASE: a customer weight is not a finite number".into());
                }
                let triangle = c.checked_mul(c + 1).map(|n| n / 2);
                if triangle != Some(m_upper.len()) {
                    return Err(format!("EASE: M holds {} values, not the upper triangle of {c} x {c}", m_upper.len()));
                }
                if m_upper.iter().any(|v| !v.is_finite()) {
                    return Err("EASE: M holds a non-finite value".into());
                }
                let mut off = 0;
                for r in 0..c {
                    if m_upper[off] <= 0.0 {
                        return Err("EASE: M has a diagonal value that is not positive".into());
                    }
                    off += c - r;
                }
                if diag_p.len() != k || diag_p.iter().any(|&d| !(d.is_finite() && d > 0.0)) {
                    return Err("EASE: diag(P) has the wrong length or a value that is not a positive number".into());
                }
                let x = Sparse { indptr, indices, data };
                let xt = x.transpose(k);
                let inv_scale = inverse_scale(&diag_p, params.lambda);
                if inv_scale.iter().any(|v| !v.is_finite()) {
                    return Err("EASE: diag(P) is too small for lambda".into());
                }
                Solution::Customers { m: m_upper, diag_p, inv_scale, x, xt }
            }
        };
        let identity = k == items;
        Ok(Ease { params, items, kept, identity, solution })
    }
}

fn inverse_scale(diag_p: &[f64], lambda: f32) -> Vec<f64> {
    diag_p.iter().map(|&d| 1.0 / (f64::from(lambda) * d)).collect()
}

/// Checks CSR structure ([`check_rows`]) and that every entry has a value.
fn check_csr(indptr: &[usize], indices: &[u32], data_len: usize, shape: (usize, usize)) -> Result<(), String> {
    match check_rows(indptr, indices, shape) {
        Ok(()) if data_len == indices.len() => Ok(()),
        _ => Err("EASE: the customer rows are not a valid sparse matrix".to_string()),
    }
}

/// Explaining one customer's item, for [`super::Recommender`].
impl Ease {
    /// Each bought item's own term of item `j`'s score (its weight times its EASE
    /// coefficient towards `j`), the largest three. Reads one coefficient per bought item
    /// ([`Ease::column`]) rather than scoring each bought item alone: a row of the output
    /// costs about the customer's items, not their number times a whole score.
    ///
    /// With no positive term (a score of 0 or less, listed because the filter left nothing
    /// better), no bought item argues for `j`: the reason is then the whole pattern
    /// ([`Reason::Resembles`] with no items), never "bought with" an empty list.
    pub(crate) fn explain(&self, q: &Query<'_>, j: u32) -> Reason {
        let contrib: Vec<(u32, f32)> = match self.position(j) {
            None => Vec::new(),
            Some(to) => {
                let coefficient = self.column(to);
                q.items
                    .iter()
                    .zip(q.weights)
                    .filter_map(|(&i, &w)| {
                        let term = (f64::from(w) * coefficient(self.position(i)?)) as f32;
                        (term > 0.0).then_some((i, term))
                    })
                    .collect()
            }
        };
        if contrib.is_empty() { Reason::Resembles(Vec::new()) } else { Reason::BoughtWith(top_three(contrib)) }
    }

    /// `B[from, to]` for every `from`, as a function of positions in the solve (0 on the
    /// diagonal). The item side reads the stored value. The customer side does not store
    /// `B`: its off-diagonal entry is `(Xᵀ M X)[from, to] / (λ diag(P)[to])` (the Woodbury
    /// form [`Ease::score`] uses); `u = M X[·, to]` is formed once (customers long, the
    /// smaller side), so each entry then costs its item's buyers.
    fn column(&self, to: u32) -> impl Fn(u32) -> f64 + '_ {
        let k = self.kept.len();
        let u: Vec<f64> = match &self.solution {
            Solution::Items { .. } => Vec::new(),
            Solution::Customers { m, xt, x, .. } => {
                let c = x.rows();
                // M is symmetric, packed by rows of its upper triangle: row r starts at
                // r (2c - r + 1) / 2 and holds M[r, r..c].
                let at = |r: usize, s: usize| {
                    let (r, s) = if r <= s { (r, s) } else { (s, r) };
                    m[r * (2 * c - r + 1) / 2 + (s - r)]
                };
                let (ss, ws) = xt.row(to as usize);
                (0..c).map(|r| ss.iter().zip(ws).map(|(&s, &w)| at(r, s as usize) * f64::from(w)).sum()).collect()
            }
        };
        move |from: u32| match &self.solution {
            _ if from == to => 0.0,
            Solution::Items { b } => f64::from(b[from as usize * k + to as usize]),
            Solution::Customers { xt, inv_scale, .. } => {
                let (rs, vs) = xt.row(from as usize);
                let dot: f64 = rs.iter().zip(vs).map(|(&r, &v)| f64::from(v) * u[r as usize]).sum();
                dot * inv_scale[to as usize]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(rows: usize, cols: usize, entries: &[(usize, usize, f32)]) -> Csr {
        let mut tri = sprs::TriMatI::<f32, u32>::new((rows, cols));
        for &(r, c, v) in entries {
            tri.add_triplet(r, c, v);
        }
        tri.to_csr()
    }

    #[test]
    fn names_and_sizes_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(human(80_000_000_000), "80.0 GB");
        assert_eq!(human(12_500_000), "12.5 MB");
        assert_eq!(human(12), "12 bytes");
        assert_eq!(max_items_within(12_000_000_000), 27_000);
        assert_eq!(max_items_within(15), 0);
        assert_eq!(max_items_within(16 * 99 * 99), 99);
        assert!(dense_bytes(27_000) <= 12_000_000_000);
        assert_eq!(dense_bytes(usize::MAX), u64::MAX);
    }

    #[test]
    fn too_large_message_is_actionable() {
        let e = EaseError::TooLarge {
            side: EaseSide::Items,
            dim: 100_000,
            bytes: dense_bytes(100_000),
            budget: 12_000_000_000,
            max_items: max_items_within(12_000_000_000),
        };
        assert_eq!(
            e.to_string(),
            "EASE's item-side solve needs two 100,000 x 100,000 dense matrices (160.0 GB); the memory budget \
             allows 12.0 GB: restrict with max_items = 27,000 or use item-knn"
        );
    }

    #[test]
    fn check_rejects_bad_lambda() {
        for lambda in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(EaseParams { lambda, ..Default::default() }.check().is_err());
        }
        assert!(EaseParams::default().check().is_ok());
    }

    #[test]
    fn unbought_items_and_empty_customers_score_zero() {
        // Customer 1 bought nothing; item 2 nobody bought.
        let x = csr(3, 4, &[(0, 0, 1.0), (0, 1, 1.0), (2, 1, 1.0), (2, 3, 2.0)]);
        for side in [EaseSide::Items, EaseSide::Customers] {
            let e = Ease::fit(&x, &EaseParams { lambda: 1.0, max_items: 0, side }, u64::MAX).unwrap();
            assert_eq!(e.kept_items(), &[0, 1, 3]);
            let mut out = vec![9.0; 4];
            e.score(&[0], &[1.0], &mut out, &mut e.scratch());
            assert_eq!(out[2], 0.0);
            assert!(out[1] > 0.0, "tea-with-cups: {out:?}");
            assert_eq!(out[0], 0.0, "B's diagonal is 0: {out:?}");
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let empty = csr(0, 0, &[]);
        let e = Ease::fit(&empty, &EaseParams::default(), 0).unwrap();
        let mut out = [];
        e.score(&[0, 5], &[1.0], &mut out, &mut e.scratch());
        let x = csr(2, 3, &[(0, 0, 1.0), (1, 2, 3.0)]);
        for side in [EaseSide::Auto, EaseSide::Items, EaseSide::Customers] {
            let e = Ease::fit(&x, &EaseParams { side, ..Default::default() }, u64::MAX).unwrap();
            let mut s = EaseScratch::default(); // wrong size: resized
            let mut short = [1.0f32; 1];
            e.score(&[2, 0, 7, 0], &[1.0, f32::NAN], &mut short, &mut s);
            let mut long = [1.0f32; 6];
            e.score(&[2, 2], &[1.0, 1.0, 1.0], &mut long, &mut s);
            assert_eq!(&long[3..], &[0.0; 3]);
        }
        let nan = csr(1, 1, &[(0, 0, f32::NAN)]);
        assert!(matches!(Ease::fit(&nan, &EaseParams::default(), u64::MAX), Err(EaseError::NotFinite { .. })));
        let bad = EaseParams { lambda: -1.0, ..Default::default() };
        assert!(matches!(Ease::fit(&x, &bad, u64::MAX), Err(EaseError::Params(_))));
    }

    #[test]
    fn check_csr_never_indexes_out_of_range() {
        assert!(check_csr(&[0, 100, 5], &[0; 5], 5, (2, 3)).is_err());
        assert!(check_csr(&[0, 2, 3], &[0, 1, 2], 3, (2, 3)).is_ok());
        assert!(check_csr(&[0, 2, 3], &[1, 0, 2], 3, (2, 3)).is_err());
        assert!(check_csr(&[0, 2, 3], &[0, 1, 3], 3, (2, 3)).is_err());
        assert!(check_csr(&[0, 2, 3], &[0, 1, 2], 2, (2, 3)).is_err());
    }
}
