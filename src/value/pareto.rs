//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987), in the form of Fader, Hardie & Lee
//! (2005, "A note on deriving the Pareto/NBD model"): one customer's log-likelihood with its
//! gradient, P(alive) and the expected purchases in a horizon.
//!
//! Parameters `[r, alpha, s, beta]`: purchase rates Gamma(r, alpha), dropout rates
//! Gamma(s, beta). The likelihood is
//! `Γ(r+x) α^r β^s / Γ(r) [ (α+T)^-(r+x) (β+T)^-s + s/(r+s+x) (J(t_x) - J(T)) ]`
//! with `J(t) = 2F1(r+s+x, s+1; r+s+x+1; (α-β)/(α+t)) / (α+t)^(r+s+x)` when `α >= β` (the
//! roles swapped otherwise). After Euler's transformation `J` is a product of powers and
//! `2F1(1, p; q; z)`, whose terms are positive and shrink at least as fast as `z^n`
//! ([`hyp2f1_one`]), and its derivatives come from the same series.

use super::special::{digamma, hyp2f1_one, ln_gamma_ratio};

/// `ln Ĵ(t)` and its gradient.
pub type LnJ = (f64, [f64; 4]);

/// `ln Ĵ(t)`, `Ĵ(t) = J(t) α^(r+x) β^s`, and its gradient in `[r, alpha, s, beta]`. The
/// factor `α^(r+x) β^s` is taken out of every term of the likelihood so that no term is a
/// difference of two large logarithms (`s ln β - s ln(β+t)` when s and β are large, or the
/// same in r and α): each power appears as `ln(1 + t/α)`. NaN where a series does not
/// converge (see [`hyp2f1_one`]), which the fit treats as outside the search and the scores
/// leave empty.
pub fn ln_j(p: &[f64; 4], x: f64, t: f64) -> LnJ {
    let [r, alpha, s, beta] = *p;
    let (la, lb) = ((t / alpha).ln_1p(), (t / beta).ln_1p());
    // d ln(1 + t/α) / dα = -t / (α (α+t)).
    let (dla, dlb) = (-t / (alpha * (alpha + t)), -t / (beta * (beta + t)));
    if alpha >= beta {
        // Ĵ = (1+t/α)^-(r+x) (1+t/β)^-s 2F1(1, r+x; r+s+x+1; z), z = (α-β)/(α+t), m = s.
        let (z, w) = ((alpha - beta) / (alpha + t), (beta + t) / (alpha + t));
        let Some(hy) = hyp2f1_one(r + x, s, z, w) else { return (f64::NAN, [f64::NAN; 4]) };
        let (dz_da, dz_db) = ((beta + t) / ((alpha + t) * (alpha + t)), -1.0 / (alpha + t));
        let v = -(r + x) * la - s * lb + hy.h.ln();
        let g = [
            -la + hy.dp / hy.h,
            -(r + x) * dla + hy.dz * dz_da / hy.h,
            -lb + hy.dm / hy.h,
            -s * dlb + hy.dz * dz_db / hy.h,
        ];
        (v, g)
    } else {
        // Ĵ = (1+t/α)^(1-r-x) (1+t/β)^-(s+1) α/β 2F1(1, s+1; r+s+x+1; z), z = (β-α)/(β+t),
        // m = r+x-1.
        let (z, w) = ((beta - alpha) / (beta + t), (alpha + t) / (beta + t));
        let Some(hy) = hyp2f1_one(s + 1.0, r + x - 1.0, z, w) else { return (f64::NAN, [f64::NAN; 4]) };
        let (dz_db, dz_da) = ((alpha + t) / ((beta + t) * (beta + t)), -1.0 / (beta + t));
        let v = (1.0 - r - x) * la - (s + 1.0) * lb + (alpha / beta).ln() + hy.h.ln();
        let g = [
            -la + hy.dm / hy.h,
            (1.0 - r - x) * dla + 1.0 / alpha + hy.dz * dz_da / hy.h,
            -lb + hy.dp / hy.h,
            -(s + 1.0) * dlb - 1.0 / beta + hy.dz * dz_db / hy.h,
        ];
        (v, g)
    }
}

/// The parts of the likelihood after `A1 = ln Γ(r+x) - ln Γ(r) - x ln α`: `F̂` (the
/// alive-throughout term times `α^(r+x) β^s`), `ln Ĵ(t_x)`, `ln Ĵ(T)` with gradients, and
/// `c = s/(r+s+x)`.
struct Parts {
    f: (f64, [f64; 4]),
    j1: (f64, [f64; 4]),
    j2: (f64, [f64; 4]),
    c: f64,
}

fn parts(p: &[f64; 4], x: f64, tx: f64, t: f64) -> Parts {
    parts_with(p, x, t, ln_j(p, x, tx), ln_j(p, x, t))
}

/// [`parts`] given `ln Ĵ(t_x)` and `ln Ĵ(T)`.
fn parts_with(p: &[f64; 4], x: f64, t: f64, j1: LnJ, j2: LnJ) -> Parts {
    let [r, alpha, s, beta] = *p;
    let (la, lb) = ((t / alpha).ln_1p(), (t / beta).ln_1p());
    let f = (-(r + x) * la - s * lb, [-la, (r + x) * t / (alpha * (alpha + t)), -lb, s * t / (beta * (beta + t))]);
    Parts { f, j1, j2, c: s / (r + s + x) }
}

/// `ln L(x, t_x, T)` and its gradient in `[r, alpha, s, beta]`.
pub fn log_lik(p: &[f64; 4], x: f64, tx: f64, t: f64) -> (f64, [f64; 4]) {
    log_lik_with(p, x, tx, t, ln_j(p, x, tx), ln_j(p, x, t))
}

/// [`log_lik`] given `ln Ĵ(t_x)` and `ln Ĵ(T)` ([`ln_j`]; a fit evaluates each distinct
/// `(x, t)` once).
pub fn log_lik_with(p: &[f64; 4], x: f64, tx: f64, t: f64, j1: LnJ, j2: LnJ) -> (f64, [f64; 4]) {
    let [r, alpha, s, _] = *p;
    let Parts { f, j1, j2, c } = parts_with(p, x, t, j1, j2);
    let a1 = ln_gamma_ratio(r, x) - x * alpha.ln();
    let m = f.0.max(j1.0);
    let (ef, e1) = ((f.0 - m).exp(), c * (j1.0 - m).exp());
    // J(t_x) >= J(T); rounding may make the difference a hair negative when t_x = T.
    let e2 = if tx < t { c * (j2.0 - m).exp() } else { e1 };
    let d = ef + e1 - e2;
    let ll = a1 + m + d.ln();
    let dlnc = [-1.0 / (r + s + x), 0.0, 1.0 / s - 1.0 / (r + s + x), 0.0];
    let mut g = [digamma(r + x) - digamma(r), -x / alpha, 0.0, 0.0];
    for i in 0..4 {
        g[i] += (ef * f.1[i] + e1 * (dlnc[i] + j1.1[i]) - e2 * (dlnc[i] + j2.1[i])) / d;
    }
    (ll, g)
}

/// P(alive at T) = `1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s (J(t_x) - J(T)))`.
pub fn p_alive(p: &[f64; 4], x: f64, tx: f64, t: f64) -> f64 {
    let Parts { f, j1, j2, c } = parts(p, x, tx, t);
    let diff = if tx < t { -(j2.0 - j1.0).exp_m1() } else { 0.0 };
    1.0 / (1.0 + c * (j1.0 - f.0).exp() * diff)
}

/// Expected purchases in `(T, T + h]`:
/// `(r+x)(β+T) / ((α+T)(s-1)) [1 - ((β+T)/(β+T+h))^(s-1)] P(alive)`, continuous at `s = 1`.
pub fn expected(p: &[f64; 4], x: f64, tx: f64, t: f64, h: f64) -> f64 {
    expected_if_alive(p, x, t, h) * p_alive(p, x, tx, t)
}

/// [`expected`] without its factor P(alive), which does not depend on `h`.
pub fn expected_if_alive(p: &[f64; 4], x: f64, t: f64, h: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    let u = ((beta + t + h) / (beta + t)).ln();
    let sm1 = s - 1.0;
    let ratio = if sm1 * u == 0.0 { u } else { -(-sm1 * u).exp_m1() / sm1 };
    (r + x) * (beta + t) / (alpha + t) * ratio
}

/// Simpson intervals of [`next_purchase`]'s integral.
const NEXT_STEPS: usize = 128;

/// The median time to the next purchase among the futures that have one. Alive at T with
/// rates λ ~ Gamma(r+x, α+T) and μ ~ Gamma(s, β+T), the next purchase comes at `u` before
/// dropout with density `λ e^-(λ+μ)u`; integrated over the rates that is proportional to
/// `g(u) = (α+T+u)^-(r+x+1) (β+T+u)^-s`. The median solves `∫_0^h g = ∫_0^∞ g / 2`, found
/// in `v = (1 + u/(α+T))^-(r+x)` (BG/NBD's survival, under which the integrand is
/// `(1 + u(v)/(β+T))^-s`, between 0 and 1), taken as `v = y²` so that it is smooth at
/// `v = 0`, by Simpson's rule and linear interpolation of the cumulative integral.
pub fn next_purchase(p: &[f64; 4], x: f64, t: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    let (a, b, k) = (alpha + t, beta + t, r + x);
    let u_of = |y: f64| a * ((-2.0 / k) * y.ln()).exp_m1();
    // The integrand in y: (1 + u/b)^-s 2y, 0 at y = 0.
    let f = |y: f64| if y <= 0.0 { 0.0 } else { (-s * (u_of(y) / b).ln_1p()).exp() * 2.0 * y };
    // Cumulative from y = 1 (u = 0) downwards, panel by panel (each of two Simpson halves).
    let n = NEXT_STEPS;
    let hstep = 1.0 / n as f64;
    let mut cum = vec![0.0; n + 1]; // cum[i]: integral over [1 - i hstep, 1]
    let mut prev = f(1.0);
    for i in 1..=n {
        let (hi, lo) = (1.0 - (i - 1) as f64 * hstep, 1.0 - i as f64 * hstep);
        let mid = f(0.5 * (hi + lo));
        let low = f(lo);
        cum[i] = cum[i - 1] + hstep / 6.0 * (prev + 4.0 * mid + low);
        prev = low;
    }
    let half = cum[n] / 2.0;
    let i = cum.partition_point(|&c| c < half).clamp(1, n);
    let frac = (half - cum[i - 1]) / (cum[i] - cum[i - 1]);
    let y = 1.0 - (i as f64 - 1.0 + frac) * hstep;
    u_of(y)
}
