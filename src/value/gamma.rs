//! Gamma-Gamma spend (Fader, Hardie & Lee 2005, "RFM and CLV"): a customer's purchases
//! are Gamma(p, ν) in value, ν is Gamma(q, γ) across customers. Fitted on the customers
//! with repeat purchases, from the number `x` and the mean `m` of those purchases.

use super::special::{digamma, ln_gamma};

/// `ln L(x, m)` and its gradient in `[p, q, gamma]`:
/// `ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ + (px-1) ln m + px ln x - (px+q) ln(γ + m x)`.
pub fn log_lik(par: &[f64; 3], x: f64, m: f64) -> (f64, [f64; 3]) {
    let [p, q, g] = *par;
    let px = p * x;
    let lgm = (g + m * x).ln();
    let ll =
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * g.ln() + (px - 1.0) * m.ln() + px * x.ln() - (px + q) * lgm;
    let dpq = digamma(px + q);
    let dp = x * (dpq - digamma(px) + m.ln() + x.ln() - lgm);
    let dq = dpq - digamma(q) + g.ln() - lgm;
    let dg = q / g - (px + q) / (g + m * x);
    (ll, [dp, dq, dg])
}

/// E[spend per purchase | x, m] = `p (γ + m x) / (p x + q - 1)`: the population mean
/// `p γ / (q - 1)` for `x = 0`. `None` where that mean is infinite (`p x + q <= 1`).
pub fn expected_spend(par: &[f64; 3], x: f64, m: f64) -> Option<f64> {
    let [p, q, g] = *par;
    let den = p * x + q - 1.0;
    (den > 0.0).then(|| p * (g + m * x) / den)
}
