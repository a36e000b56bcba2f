//! Naive customer-value formulas, written from the papers' definitions with nothing of
//! cobuy's: their own log-gamma, the likelihoods summed plainly (no log-sum-exp), the
//! Pareto/NBD likelihood and both models' expectations as numerical integrals of the
//! model's definition instead of the hypergeometric closed forms.

/// ln Γ(x), x > 0: shifted above 20 by the recurrence, then Stirling's series.
pub fn ln_gamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 20.0 {
        shift -= x.ln();
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    shift + (x - 0.5) * x.ln() - x
        + 0.5 * (2.0 * std::f64::consts::PI).ln()
        + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// BG/NBD (FHL 2005, eq. 6) or, `modified`, MBG/NBD (Batislam et al. 2007):
/// `L = B(a, b+x)/B(a, b) Γ(r+x) α^r / (Γ(r) (α+T)^(r+x)) + δ B(a+1, b+x-1)/B(a, b) Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))`
/// (MBG/NBD: `b+x+1` and `b+x` in the betas, and the second term for every x).
pub fn bg_log_lik(p: &[f64; 4], x: f64, tx: f64, t: f64, modified: bool) -> f64 {
    let [r, alpha, a, b] = *p;
    let k = if modified { 1.0 } else { 0.0 };
    let g = (ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln()).exp();
    let first = (ln_beta(a, b + x + k) - ln_beta(a, b)).exp() * g / (alpha + t).powf(r + x);
    let second = if x > 0.0 || modified {
        (ln_beta(a + 1.0, b + x + k - 1.0) - ln_beta(a, b)).exp() * g / (alpha + tx).powf(r + x)
    } else {
        0.0
    };
    (first + second).ln()
}

/// Composite Simpson on `[lo, hi]` with `n` (even) intervals.
pub fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> f64 {
    let h = (hi - lo) / n as f64;
    let mut s = f(lo) + f(hi);
    for i in 1..n {
        s += f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

/// Pareto/NBD from its definition: given rates λ, μ, the customer is alive at T with
/// probability `e^-μT` (likelihood `λ^x e^-λT`) or died at τ in `(t_x, T]`; integrated over
/// the gamma mixing distributions:
/// `L = Γ(r+x) α^r β^s / Γ(r) [ (α+T)^-(r+x) (β+T)^-s + s ∫_{t_x}^T (α+τ)^-(r+x) (β+τ)^-(s+1) dτ ]`.
/// The integral is taken in `u = ln(α+τ)` (smooth for any x) with 20,000 Simpson intervals.
pub fn pareto_log_lik(p: &[f64; 4], x: f64, tx: f64, t: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    let lead = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    // Everything scaled by the first term's size to keep it in range.
    let scale = -(r + x) * (alpha + tx).ln() - s * (beta + tx).ln();
    let alive = (-(r + x) * (alpha + t).ln() - s * (beta + t).ln() - scale).exp();
    let integrand = |u: f64| {
        let tau = u.exp() - alpha;
        // dτ = e^u du
        (-(r + x) * u - (s + 1.0) * (beta + tau).ln() - scale + u).exp()
    };
    let died = if t > tx { s * simpson(integrand, (alpha + tx).ln(), (alpha + t).ln(), 20_000) } else { 0.0 };
    lead + scale + (alive + died).ln()
}

/// Gamma-Gamma (FHL 2005, "RFM and CLV", eq. 1 with the individual values' Jacobian
/// left out as lifetimes does):
/// `Γ(px+q)/(Γ(px)Γ(q)) γ^q m^(px-1) x^(px) / (γ + m x)^(px+q)`.
pub fn gg_log_lik(par: &[f64; 3], x: f64, m: f64) -> f64 {
    let [p, q, g] = *par;
    ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) + q * g.ln() + (p * x - 1.0) * m.ln() + p * x * x.ln()
        - (p * x + q) * (g + m * x).ln()
}

/// BG/NBD (or MBG/NBD) expected purchases in `h` from the model: alive (probability
/// `P(alive)`), λ ~ Gamma(r+x, α+T) and p ~ Beta(a, b+x(+1)) independently, and then
/// `E[purchases | λ, p] = (1 - e^-λph) / p`; λ integrated in closed form
/// (`E e^-λph = ((α+T)/(α+T+ph))^(r+x)`), p numerically (in `v = p^a` when `a < 1`, so
/// that the density's `p^(a-1)` disappears).
pub fn bg_expected(p: &[f64; 4], x: f64, tx: f64, t: f64, h: f64, modified: bool) -> f64 {
    let [r, alpha, a, b] = *p;
    let bx = b + x + if modified { 1.0 } else { 0.0 };
    let g = |q: f64| {
        if q == 0.0 {
            (r + x) * h / (alpha + t)
        } else {
            // 1 - (1 + u)^-(r+x), u = qh/(α+T), without cancellation for tiny q.
            -(-(r + x) * (q * h / (alpha + t)).ln_1p()).exp_m1() / q
        }
    };
    let mean = if a < 1.0 {
        let integrand = |v: f64| {
            let q = v.powf(1.0 / a);
            g(q) * (1.0 - q).powf(bx - 1.0)
        };
        simpson(integrand, 0.0, 1.0, 200_000) / (a * ln_beta(a, bx).exp())
    } else {
        let integrand = |q: f64| g(q) * q.powf(a - 1.0) * (1.0 - q).powf(bx - 1.0);
        simpson(integrand, 0.0, 1.0, 200_000) / ln_beta(a, bx).exp()
    };
    bg_p_alive(p, x, tx, t, modified) * mean
}

/// `1 / (1 + δ a/(b+x-1) ((α+T)/(α+t_x))^(r+x))` (MBG/NBD: `a/(b+x)` for every x).
pub fn bg_p_alive(p: &[f64; 4], x: f64, tx: f64, t: f64, modified: bool) -> f64 {
    let [r, alpha, a, b] = *p;
    if x == 0.0 && !modified {
        return 1.0;
    }
    let k = if modified { 1.0 } else { 0.0 };
    1.0 / (1.0 + a / (b + x + k - 1.0) * ((alpha + t) / (alpha + tx)).powf(r + x))
}

/// Pareto/NBD P(alive): the alive term of [`pareto_log_lik`] over the whole likelihood.
pub fn pareto_p_alive(p: &[f64; 4], x: f64, tx: f64, t: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    let alive = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln()
        - (r + x) * (alpha + t).ln()
        - s * (beta + t).ln();
    (alive - pareto_log_lik(p, x, tx, t)).exp()
}

/// Pareto/NBD expected purchases in `h`: alive, λ ~ Gamma(r+x, α+T) and μ ~ Gamma(s, β+T)
/// independently, `E[purchases | λ, μ] = λ ∫_0^h e^-μu du`, so
/// `P(alive) (r+x)/(α+T) ∫_0^h ((β+T)/(β+T+u))^s du`.
pub fn pareto_expected(p: &[f64; 4], x: f64, tx: f64, t: f64, h: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    let surv = simpson(|u| ((beta + t) / (beta + t + u)).powf(s), 0.0, h, 20_000);
    pareto_p_alive(p, x, tx, t) * (r + x) / (alpha + t) * surv
}
