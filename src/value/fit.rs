//! The models fitted by maximum likelihood over the distinct `(x, t_x, T)` rows with their
//! weights: the log-likelihood and its analytic gradient summed in parallel in fixed chunks
//! (the same bytes for any thread count), L-BFGS in log space, standard errors from the
//! Hessian, boundary solutions named.

use std::fmt;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::optim::{self, OptimError, Optimum};
use super::{ValueError, bgnbd, gamma, pareto};

/// Rows per parallel chunk; sums are taken per chunk in order, then over chunks in order.
const CHUNK: usize = 2_048;
/// Gamma-Gamma's per-x terms are kept for x below this.
const SPEND_X_CACHE: usize = 4_096;
/// Convergence: the largest log-space gradient component of the mean log-likelihood.
const GTOL: f64 = 1e-10;

/// The distinct `(x, t_x, T)` rows of a set of customers, each with how many customers
/// share it, in a fixed order (by value): what every repeat-purchase model's likelihood
/// sums over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distinct {
    /// `(x, t_x, T)` rows, sorted, no two equal.
    pub rows: Vec<[f64; 3]>,
    /// Customers per row.
    pub weights: Vec<f64>,
}

impl Distinct {
    /// Groups rows (any order) into distinct ones with weights.
    pub fn new(mut rows: Vec<[f64; 3]>) -> Self {
        rows.par_sort_unstable_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])).then(a[2].total_cmp(&b[2])));
        let mut out = Distinct::default();
        for r in rows {
            if out.rows.last().is_some_and(|l| l.iter().zip(&r).all(|(a, b)| a.to_bits() == b.to_bits())) {
                *out.weights.last_mut().expect("a weight per row") += 1.0;
            } else {
                out.rows.push(r);
                out.weights.push(1.0);
            }
        }
        out
    }

    /// Customers in all.
    pub fn total(&self) -> f64 {
        self.weights.iter().sum()
    }
}

/// A repeat-purchase ("buy till you die") model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// BG/NBD: drop out only after a purchase (one-time buyers are alive by definition).
    BgNbd,
    /// MBG/NBD: may drop out after the first purchase too.
    MbgNbd,
    /// Pareto/NBD: drop out at any time.
    ParetoNbd,
}

impl Model {
    /// Every model, in the order tried (and preferred on a tie).
    pub const ALL: [Model; 3] = [Model::BgNbd, Model::MbgNbd, Model::ParetoNbd];

    /// Parameter names, in the order of [`Fitted::params`].
    pub fn param_names(self) -> [&'static str; 4] {
        match self {
            Model::BgNbd | Model::MbgNbd => ["r", "alpha", "a", "b"],
            Model::ParetoNbd => ["r", "alpha", "s", "beta"],
        }
    }

    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Model::BgNbd => "bg-nbd",
            Model::MbgNbd => "mbg-nbd",
            Model::ParetoNbd => "pareto-nbd",
        }
    }

    /// One customer's log-likelihood and its gradient in the parameters (NaN where
    /// Pareto/NBD's series does not converge, see `pareto`).
    pub fn log_lik(self, p: &[f64; 4], x: f64, tx: f64, t: f64) -> (f64, [f64; 4]) {
        match self.bg_k() {
            Some(k) => bgnbd::log_lik(k, p, x, tx, t),
            None => pareto::log_lik(p, x, tx, t),
        }
    }

    /// The BG family's `k` (0 for BG/NBD, 1 for MBG/NBD: whether a customer may drop out
    /// before the first repeat purchase); `None` for Pareto/NBD.
    fn bg_k(self) -> Option<f64> {
        match self {
            Model::BgNbd => Some(0.0),
            Model::MbgNbd => Some(1.0),
            Model::ParetoNbd => None,
        }
    }

    /// P(alive at T).
    pub fn p_alive(self, p: &[f64; 4], x: f64, tx: f64, t: f64) -> f64 {
        match self {
            Model::BgNbd => bgnbd::p_alive(0.0, p, x, tx, t),
            Model::MbgNbd => bgnbd::p_alive(1.0, p, x, tx, t),
            Model::ParetoNbd => pareto::p_alive(p, x, tx, t),
        }
    }

    /// Expected purchases in `(T, T + h]`.
    pub fn expected(self, p: &[f64; 4], x: f64, tx: f64, t: f64, h: f64) -> f64 {
        match self.bg_k() {
            Some(k) => bgnbd::expected(k, p, x, tx, t, h),
            None => pareto::expected(p, x, tx, t, h),
        }
    }

    /// Expected purchases in `(T, T + h]` if alive at T: [`Model::expected`] is this times
    /// P(alive), bit for bit.
    pub fn expected_if_alive(self, p: &[f64; 4], x: f64, t: f64, h: f64) -> f64 {
        match self.bg_k() {
            Some(k) => bgnbd::expected_if_alive(k, p, x, t, h),
            None => pareto::expected_if_alive(p, x, t, h),
        }
    }

    /// The median time from T to the next purchase among the futures that have one (see
    /// `bgnbd::next_purchase` and `pareto::next_purchase`): when the customer, if still
    /// buying, is as likely to have bought again as not.
    pub fn next_purchase(self, p: &[f64; 4], x: f64, _tx: f64, t: f64) -> f64 {
        match self {
            Model::BgNbd | Model::MbgNbd => bgnbd::next_purchase(p, x, t),
            Model::ParetoNbd => pareto::next_purchase(p, x, t),
        }
    }

    /// P(no purchase in `(T, T + h]`) = `L(x, t_x, T + h) / L(x, t_x, T)`: the likelihood of
    /// the same history observed for `h` longer without a purchase, over that of the history.
    /// Every model's one-time buyers get a value below 1 that grows with their age.
    pub fn p_no_purchase(self, p: &[f64; 4], x: f64, tx: f64, t: f64, h: f64) -> f64 {
        let (now, _) = self.log_lik(p, x, tx, t);
        let (later, _) = self.log_lik(p, x, tx, t + h);
        (later - now).exp().clamp(0.0, 1.0)
    }

    /// Starting values from the data's scale: a purchase rate prior with the mean rate of
    /// the data, dropout shapes at 1.
    fn start(self, d: &Distinct) -> [f64; 4] {
        let w = d.total();
        let mean = |i: usize| d.rows.iter().zip(&d.weights).map(|(r, w)| r[i] * w).sum::<f64>() / w;
        let (x, t) = (mean(0), mean(2).max(1e-6));
        let alpha = (t / x.max(1e-3)).clamp(1e-6, 1e6);
        match self {
            Model::BgNbd | Model::MbgNbd => [1.0, alpha, 1.0, 1.0],
            Model::ParetoNbd => [1.0, alpha, 1.0, t.clamp(1e-6, 1e6)],
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("the model is one of bg-nbd, mbg-nbd, pareto-nbd, got {s:?}"))
    }
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted<const N: usize, M> {
    /// Which model.
    pub model: M,
    /// Its parameters (a boundary parameter holds its value on the search box's face,
    /// about 1e-13 or 1e13; read it as 0 or infinity).
    pub params: [f64; N],
    /// The log-likelihood of every customer fitted on.
    pub log_likelihood: f64,
    /// Standard errors (none for a boundary parameter, or when the Hessian is not
    /// positive definite).
    pub std_errors: [Option<f64>; N],
    /// Per parameter: at the lower boundary (0, `Some(-1)`), the upper (infinity,
    /// `Some(1)`), or interior (`None`).
    pub boundary: [Option<i8>; N],
    /// Customers fitted on.
    pub customers: f64,
    /// Optimiser iterations.
    pub iterations: usize,
}

/// A fitted repeat-purchase model.
pub type Purchases = Fitted<4, Model>;

/// The spend model (there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spend {
    /// Gamma-Gamma.
    GammaGamma,
}

/// A fitted Gamma-Gamma spend model: `params` are `[p, q, gamma]`.
pub type SpendFit = Fitted<3, Spend>;

impl Purchases {
    /// P(alive at T).
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        self.model.p_alive(&self.params, x, tx, t)
    }
    /// Expected purchases in the next `h` time units.
    pub fn expected(&self, x: f64, tx: f64, t: f64, h: f64) -> f64 {
        self.model.expected(&self.params, x, tx, t, h)
    }
    /// Expected purchases in the next `h` time units if alive now.
    pub fn expected_if_alive(&self, x: f64, t: f64, h: f64) -> f64 {
        self.model.expected_if_alive(&self.params, x, t, h)
    }
    /// P(no purchase in the next `h` time units).
    pub fn p_no_purchase(&self, x: f64, tx: f64, t: f64, h: f64) -> f64 {
        self.model.p_no_purchase(&self.params, x, tx, t, h)
    }
    /// The median time to the next purchase, given that there is one.
    pub fn next_purchase(&self, x: f64, tx: f64, t: f64) -> f64 {
        self.model.next_purchase(&self.params, x, tx, t)
    }
}

impl SpendFit {
    /// Expected spend per purchase of a customer with `x` repeat purchases of mean `m`
    /// (`x = 0`: the population mean); `None` where the model's mean is infinite.
    pub fn expected_spend(&self, x: f64, m: f64) -> Option<f64> {
        gamma::expected_spend(&self.params, x, m)
    }
}

/// Sums `w ln L` and its gradient over rows, in fixed chunks (the same bytes for any
/// thread count); `None` when any term is not finite. Each chunk's rows share a state `S`,
/// starting from its default (BG/NBD's terms of the last `x`).
fn weighted_sum<const N: usize, S: Default>(
    n: usize,
    weight: impl Fn(usize) -> f64 + Sync,
    row: impl Fn(usize, &mut S) -> (f64, [f64; N]) + Sync,
) -> Option<(f64, [f64; N])> {
    let starts: Vec<usize> = (0..n).step_by(CHUNK).collect();
    let parts: Vec<Option<(f64, [f64; N])>> = starts
        .par_iter()
        .map(|&s| {
            let mut v = 0.0;
            let mut g = [0.0; N];
            let mut state = S::default();
            for i in s..(s + CHUNK).min(n) {
                let (l, gr) = row(i, &mut state);
                let w = weight(i);
                v += w * l;
                for k in 0..N {
                    g[k] += w * gr[k];
                }
            }
            (v.is_finite() && g.iter().all(|x| x.is_finite())).then_some((v, g))
        })
        .collect();
    let mut v = 0.0;
    let mut g = [0.0; N];
    for p in parts {
        let (pv, pg) = p?;
        v += pv;
        for k in 0..N {
            g[k] += pg[k];
        }
    }
    Some((v, g))
}

/// Maximises `Σ w ln L`, given by `sum` at the parameters (a [`weighted_sum`]), over
/// log-parameters from `start`; `total` is the weight of all rows.
fn maximise<const N: usize, M: Copy + fmt::Display>(
    model: M,
    start: [f64; N],
    total: f64,
    sum: impl Fn(&[f64; N]) -> Option<(f64, [f64; N])> + Sync,
) -> Result<Fitted<N, M>, ValueError> {
    let objective = |theta: &[f64]| -> Option<(f64, Vec<f64>)> {
        let mut p = [0.0; N];
        for k in 0..N {
            p[k] = theta[k].exp();
        }
        let (v, g) = sum(&p)?;
        Some((-v / total, (0..N).map(|k| -g[k] * p[k] / total).collect()))
    };
    let theta0: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let opt: Optimum = optim::minimize(&objective, &theta0, GTOL).map_err(|e| match e {
        OptimError::BadStart => ValueError::BadStart { model: model.to_string() },
        OptimError::NotConverged { iterations, gradient } => {
            ValueError::NotConverged { model: model.to_string(), iterations, gradient }
        }
    })?;
    let se = optim::standard_errors(&objective, &opt, total);
    let mut params = [0.0; N];
    let mut std_errors = [None; N];
    let mut boundary = [None; N];
    for k in 0..N {
        params[k] = opt.theta[k].exp();
        std_errors[k] = se[k];
        boundary[k] = opt.boundary[k];
    }
    Ok(Fitted {
        model,
        params,
        log_likelihood: -opt.value * total,
        std_errors,
        boundary,
        customers: total,
        iterations: opt.iterations,
    })
}

/// Fits a repeat-purchase model. Needs at least one customer with a repeat purchase (else
/// every model's likelihood rises without bound as its rate goes to 0).
pub fn fit(model: Model, d: &Distinct) -> Result<Purchases, ValueError> {
    if !d.rows.iter().any(|r| r[0] > 0.0) {
        return Err(ValueError::NoRepeatPurchases);
    }
    let (start, n, total, weight) = (model.start(d), d.rows.len(), d.total(), |i: usize| d.weights[i]);
    match model.bg_k() {
        // The rows are sorted by x: each chunk computes BG/NBD's terms of an x once.
        Some(k) => maximise(model, start, total, |p| {
            weighted_sum(n, weight, |i, last: &mut Option<bgnbd::XTerms>| {
                let [x, tx, t] = d.rows[i];
                let terms = match last {
                    Some(c) if c.x() == x => c,
                    _ => last.insert(bgnbd::XTerms::new(k, p, x)),
                };
                terms.log_lik(p, tx, t)
            })
        }),
        // Pareto/NBD's costly part, the series of J(t), depends on (x, t) alone, for t = t_x
        // and t = T: far fewer distinct pairs than rows, each evaluated once.
        None => {
            let (points, at) = j_points(d);
            maximise(model, start, total, |p| {
                let j: Vec<pareto::LnJ> =
                    points.par_iter().with_min_len(64).map(|&[x, t]| pareto::ln_j(p, x, t)).collect();
                weighted_sum(n, weight, |i, _: &mut ()| {
                    let [x, tx, t] = d.rows[i];
                    let [a, b] = at[i];
                    pareto::log_lik_with(p, x, tx, t, j[a as usize], j[b as usize])
                })
            })
        }
    }
}

/// The distinct `(x, t)` pairs among the rows' `(x, t_x)` and `(x, T)`, in order of first
/// appearance, and each row's two indices among them.
fn j_points(d: &Distinct) -> (Vec<[f64; 2]>, Vec<[u32; 2]>) {
    let mut index: FxHashMap<[u64; 2], u32> = FxHashMap::default();
    let mut points = Vec::new();
    let mut point = |x: f64, t: f64| {
        *index.entry([x.to_bits(), t.to_bits()]).or_insert_with(|| {
            points.push([x, t]);
            (points.len() - 1) as u32
        })
    };
    let at = d.rows.iter().map(|&[x, tx, t]| [point(x, tx), point(x, t)]).collect();
    (points, at)
}

/// Fits Gamma-Gamma on `(x, m)` pairs: repeat purchases and their mean value, `x >= 1`,
/// `m > 0` (others are left out by the caller).
pub fn fit_spend(pairs: &[(f64, f64)]) -> Result<SpendFit, ValueError> {
    if pairs.len() < 2 {
        return Err(ValueError::NoRepeatSpend);
    }
    let n = pairs.len() as f64;
    let mean = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    maximise(Spend::GammaGamma, [1.0, 1.0, mean.max(1e-9)], n, |p| {
        // The customers are in log order, with few distinct x: each chunk keeps the terms of
        // every x it meets (small x, the common ones, by index).
        weighted_sum(
            pairs.len(),
            |_| 1.0,
            |i, seen: &mut Vec<Option<gamma::XTerms>>| {
                let (x, m) = pairs[i];
                let k = x as usize;
                if k >= SPEND_X_CACHE {
                    return gamma::log_lik(p, x, m);
                }
                if seen.len() <= k {
                    seen.resize(k + 1, None);
                }
                seen[k].get_or_insert_with(|| gamma::XTerms::new(p, x)).log_lik(p, m)
            },
        )
    })
}

impl fmt::Display for Spend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gamma-gamma")
    }
}
