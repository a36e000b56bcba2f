//! BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007):
//! one customer's log-likelihood with its gradient, P(alive) and the expected purchases in
//! a horizon. The two differ only in whether a customer may drop out before the first
//! repeat purchase (`k = 1`, MBG/NBD) or not (`k = 0`, BG/NBD, whose one-time buyers are
//! then always alive); every formula below is written once with `k`.
//!
//! Parameters `[r, alpha, a, b]`: purchase rates are Gamma(r, alpha) across customers,
//! dropout probabilities Beta(a, b).

use super::special::{bg_expectation_core, digamma, ln_gamma};

/// `ln L(x, t_x, T)` and its gradient in `[r, alpha, a, b]`:
/// `L = B(a, b+x+k)/B(a, b) Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
///    + [x+k > 0] B(a+1, b+x+k-1)/B(a, b) Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))`,
/// summed in logs (`ln(e^A3 + e^A4)` around the larger).
pub fn log_lik(k: f64, p: &[f64; 4], x: f64, tx: f64, t: f64) -> (f64, [f64; 4]) {
    XTerms::new(k, p, x).log_lik(p, tx, t)
}

/// The parts of [`log_lik`] that depend on the parameters and `x` alone (every log-gamma and
/// digamma): a fit over rows sorted by `x` computes them once per distinct `x` rather than
/// once per row, which is most of a row's cost. The same operations in the same order as
/// computing them per row, so the result is bit for bit the same.
#[derive(Debug, Clone, Copy)]
pub struct XTerms {
    x: f64,
    /// `r + x`.
    rx: f64,
    /// `A1 + A2`.
    a12: f64,
    /// Whether the second term is there (`x + k > 0`), and `ln a - ln(b + x + k - 1)`.
    second: bool,
    a4: f64,
    /// `b + x + k - 1`.
    bxm1: f64,
    /// The gradient's parts before the weights of the two terms.
    dr: f64,
    dalpha: f64,
    da: f64,
    db: f64,
}

impl XTerms {
    /// The terms of `x` under parameters `p` (`k`: 0 for BG/NBD, 1 for MBG/NBD).
    pub fn new(k: f64, p: &[f64; 4], x: f64) -> Self {
        let [r, alpha, a, b] = *p;
        let bx = b + x + k;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(bx) - ln_gamma(b) - ln_gamma(a + b + x + k);
        let second = x + k > 0.0;
        let (dab, dabx) = (digamma(a + b), digamma(a + b + x + k));
        XTerms {
            x,
            rx: r + x,
            a12: a1 + a2,
            second,
            a4: if second { a.ln() - (bx - 1.0).ln() } else { f64::NEG_INFINITY },
            bxm1: bx - 1.0,
            dr: digamma(r + x) - digamma(r) + alpha.ln(),
            dalpha: r / alpha,
            da: dab - dabx,
            db: dab + digamma(bx) - digamma(b) - dabx,
        }
    }

    /// The `x` these terms are for.
    pub fn x(&self) -> f64 {
        self.x
    }

    /// `ln L(x, t_x, T)` and its gradient, `p` the parameters the terms were made with.
    pub fn log_lik(&self, p: &[f64; 4], tx: f64, t: f64) -> (f64, [f64; 4]) {
        let [_, alpha, a, _] = *p;
        let rx = self.rx;
        let (lt, ltx) = ((alpha + t).ln(), (alpha + tx).ln());
        let a3 = -rx * lt;
        let a4 = if self.second { self.a4 - rx * ltx } else { f64::NEG_INFINITY };
        let m = a3.max(a4);
        let (e3, e4) = ((a3 - m).exp(), if self.second { (a4 - m).exp() } else { 0.0 });
        let sum = e3 + e4;
        let ll = self.a12 + m + sum.ln();
        let (w3, w4) = (e3 / sum, e4 / sum);
        let dr = self.dr - w3 * lt - w4 * ltx;
        let dalpha = self.dalpha - w3 * rx / (alpha + t) - w4 * rx / (alpha + tx);
        let da = self.da + if self.second { w4 / a } else { 0.0 };
        let db = self.db - if self.second { w4 / self.bxm1 } else { 0.0 };
        (ll, [dr, dalpha, da, db])
    }
}

/// P(alive at T | x, t_x, T) = `1 / (1 + [x+k > 0] a/(b+x+k-1) ((α+T)/(α+t_x))^(r+x))`.
pub fn p_alive(k: f64, p: &[f64; 4], x: f64, tx: f64, t: f64) -> f64 {
    let [r, alpha, a, b] = *p;
    if x + k <= 0.0 {
        return 1.0;
    }
    let odds = (a.ln() - (b + x + k - 1.0).ln() + (r + x) * ((alpha + t).ln() - (alpha + tx).ln())).exp();
    1.0 / (1.0 + odds)
}

/// Expected purchases in `(T, T + h]`: `(a+b+x+k-1)/(a-1) [1 - ((α+T)/(α+T+h))^(r+x)
/// 2F1(r+x, b+x+k; a+b+x+k-1; h/(α+T+h))] × P(alive)`, through [`bg_expectation_core`].
pub fn expected(k: f64, p: &[f64; 4], x: f64, tx: f64, t: f64, h: f64) -> f64 {
    expected_if_alive(k, p, x, t, h) * p_alive(k, p, x, tx, t)
}

/// [`expected`] without its factor P(alive), which does not depend on `h` (a customer's
/// expectations at many horizons share it).
pub fn expected_if_alive(k: f64, p: &[f64; 4], x: f64, t: f64, h: f64) -> f64 {
    let [r, alpha, a, b] = *p;
    let bb = b + k;
    let z = h / (alpha + t + h);
    let core = bg_expectation_core(a + bb - 1.0 - r, a, a + bb + x - 1.0, z);
    (a + bb + x - 1.0) * core
}

/// The median time to the next purchase among the futures that have one: a customer alive at
/// T buys next after an exponential wait of rate λ, λ ~ Gamma(r+x, α+T), and never drops out
/// before it (dropout follows purchases); a dead one never buys. So the wait, given that it
/// ends, has survival `((α+T)/(α+T+h))^(r+x)`, whose median is `(α+T)(2^(1/(r+x)) - 1)`.
/// (Its mean, `(α+T)/(r+x-1)`, is infinite when `r + x <= 1`, as for most one-time buyers.)
pub fn next_purchase(p: &[f64; 4], x: f64, t: f64) -> f64 {
    let [r, alpha, _, _] = *p;
    (alpha + t) * (std::f64::consts::LN_2 / (r + x)).exp_m1()
}
