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

use super::special::{digamma, hyp2f1_one, ln_gamma};

/// `ln J(t)` and its gradient in `[r, alpha, s, beta]`; NaN where the series does not
/// converge (`z` within about 1e-4 of 1: one of α, β some ten thousand times the other plus
/// `t`), which the fit treats as outside the search and the scores leave empty.
fn ln_j(p: &[f64; 4], x: f64, t: f64) -> (f64, [f64; 4]) {
    let [r, alpha, s, beta] = *p;
    let q = r + s + x + 1.0;
    let (la, lb) = ((alpha + t).ln(), (beta + t).ln());
    if alpha >= beta {
        // J = (α+t)^-(r+x) (β+t)^-s 2F1(1, r+x; q; z), z = (α-β)/(α+t).
        let z = (alpha - beta) / (alpha + t);
        let Some(hy) = hyp2f1_one(r + x, q, z) else { return (f64::NAN, [f64::NAN; 4]) };
        let (dz_da, dz_db) = ((beta + t) / ((alpha + t) * (alpha + t)), -1.0 / (alpha + t));
        let v = -(r + x) * la - s * lb + hy.h.ln();
        let g = [
            -la + (hy.dp + hy.dq) / hy.h,
            -(r + x) / (alpha + t) + hy.dz * dz_da / hy.h,
            -lb + hy.dq / hy.h,
            -s / (beta + t) + hy.dz * dz_db / hy.h,
        ];
        (v, g)
    } else {
        // J = (α+t)^(1-r-x) (β+t)^-(s+1) 2F1(1, s+1; q; z), z = (β-α)/(β+t).
        let z = (beta - alpha) / (beta + t);
        let Some(hy) = hyp2f1_one(s + 1.0, q, z) else { return (f64::NAN, [f64::NAN; 4]) };
        let (dz_db, dz_da) = ((alpha + t) / ((beta + t) * (beta + t)), -1.0 / (beta + t));
        let v = (1.0 - r - x) * la - (s + 1.0) * lb + hy.h.ln();
        let g = [
            -la + hy.dq / hy.h,
            (1.0 - r - x) / (alpha + t) + hy.dz * dz_da / hy.h,
            -lb + (hy.dp + hy.dq) / hy.h,
            -(s + 1.0) / (beta + t) + hy.dz * dz_db / hy.h,
        ];
        (v, g)
    }
}

/// The parts of the likelihood after `A1 = ln Γ(r+x) - ln Γ(r) + r ln α + s ln β`:
/// `F` (the alive-throughout term), `ln J(t_x)`, `ln J(T)` with gradients, and `c = s/(r+s+x)`.
struct Parts {
    f: (f64, [f64; 4]),
    j1: (f64, [f64; 4]),
    j2: (f64, [f64; 4]),
    c: f64,
}

fn parts(p: &[f64; 4], x: f64, tx: f64, t: f64) -> Parts {
    let [r, alpha, s, beta] = *p;
    let f = (
        -(r + x) * (alpha + t).ln() - s * (beta + t).ln(),
        [-(alpha + t).ln(), -(r + x) / (alpha + t), -(beta + t).ln(), -s / (beta + t)],
    );
    Parts { f, j1: ln_j(p, x, tx), j2: ln_j(p, x, t), c: s / (r + s + x) }
}

/// `ln L(x, t_x, T)` and its gradient in `[r, alpha, s, beta]`.
pub fn log_lik(p: &[f64; 4], x: f64, tx: f64, t: f64) -> (f64, [f64; 4]) {
    let [r, alpha, s, beta] = *p;
    let Parts { f, j1, j2, c } = parts(p, x, tx, t);
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    let m = f.0.max(j1.0);
    let (ef, e1) = ((f.0 - m).exp(), c * (j1.0 - m).exp());
    // J(t_x) >= J(T); rounding may make the difference a hair negative when t_x = T.
    let e2 = if tx < t { c * (j2.0 - m).exp() } else { e1 };
    let d = ef + e1 - e2;
    let ll = a1 + m + d.ln();
    let dlnc = [-1.0 / (r + s + x), 0.0, 1.0 / s - 1.0 / (r + s + x), 0.0];
    let mut g = [digamma(r + x) - digamma(r) + alpha.ln(), r / alpha, beta.ln(), s / beta];
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
    let [r, alpha, s, beta] = *p;
    let u = ((beta + t + h) / (beta + t)).ln();
    let sm1 = s - 1.0;
    let ratio = if sm1 * u == 0.0 { u } else { -(-sm1 * u).exp_m1() / sm1 };
    (r + x) * (beta + t) / (alpha + t) * ratio * p_alive(p, x, tx, t)
}
