//! Gamma-Gamma spend (Fader, Hardie & Lee 2005, "RFM and CLV"): a customer's purchases
//! are Gamma(p, ν) in value, ν is Gamma(q, γ) across customers. Fitted on the customers
//! with repeat purchases, from the number `x` and the mean `m` of those purchases.

use super::special::{digamma, ln_gamma};

/// `ln L(x, m)` and its gradient in `[p, q, gamma]`:
/// `ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ + (px-1) ln m + px ln x - (px+q) ln(γ + m x)`.
pub fn log_lik(par: &[f64; 3], x: f64, m: f64) -> (f64, [f64; 3]) {
    XTerms::new(par, x).log_lik(par, m)
}

/// The parts of [`log_lik`] that depend on the parameters and `x` alone (the log-gammas and
/// digammas): a fit computes them once per distinct `x`, in the same operations and order
/// as per row, so the result is bit for bit the same.
#[derive(Debug, Clone, Copy)]
pub struct XTerms {
    x: f64,
    /// `ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ`.
    ll: f64,
    px: f64,
    ln_x: f64,
    /// `ψ(px+q) - ψ(px)`, `ψ(px+q) - ψ(q) + ln γ`.
    dp: f64,
    dq: f64,
}

impl XTerms {
    /// The terms of `x` under parameters `par`.
    pub fn new(par: &[f64; 3], x: f64) -> Self {
        let [p, q, g] = *par;
        let px = p * x;
        let dpq = digamma(px + q);
        XTerms {
            x,
            ll: ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * g.ln(),
            px,
            ln_x: x.ln(),
            dp: dpq - digamma(px),
            dq: dpq - digamma(q) + g.ln(),
        }
    }

    /// `ln L(x, m)` and its gradient, `par` the parameters the terms were made with.
    pub fn log_lik(&self, par: &[f64; 3], m: f64) -> (f64, [f64; 3]) {
        let [_, q, g] = *par;
        let (x, px) = (self.x, self.px);
        let lgm = (g + m * x).ln();
        let ll = self.ll + (px - 1.0) * m.ln() + px * self.ln_x - (px + q) * lgm;
        let dp = x * (self.dp + m.ln() + self.ln_x - lgm);
        let dq = self.dq - lgm;
        let dg = q / g - (px + q) / (g + m * x);
        (ll, [dp, dq, dg])
    }
}

/// E[spend per purchase | x, m] = `p (γ + m x) / (p x + q - 1)`: the population mean
/// `p γ / (q - 1)` for `x = 0`. `None` where that mean is infinite (`p x + q <= 1`).
pub fn expected_spend(par: &[f64; 3], x: f64, m: f64) -> Option<f64> {
    let [p, q, g] = *par;
    let den = p * x + q - 1.0;
    (den > 0.0).then(|| p * (g + m * x) / den)
}
