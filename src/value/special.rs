//! The special functions the likelihoods need: log-gamma, digamma, and the two
//! hypergeometric series of the BG/NBD expectation and the Pareto/NBD likelihood, each in
//! the Euler-transformed form whose terms are positive (or of one sign) and shrink at
//! least as fast as `z^n`, so no cancellation and no growth phase. Hand-written because
//! `f64::ln_gamma` is unstable and the crate has no special-function dependency.

use std::f64::consts::PI;

/// Terms summed before a series gives up (about 40 / (1 - z) are needed: reached for `z`
/// within about 1e-4 of 1). The caller gets no value (NaN, or `None`) rather than a wrong one.
const MAX_TERMS: usize = 400_000;

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 1e-15 relative in Γ).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx); only positive arguments reach here.
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ψ(x) = d ln Γ(x) / dx for x > 0 (recurrence up to 12, then the asymptotic series).
pub fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 12.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series =
        inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 / 132.0))));
    acc + x.ln() - 0.5 * inv - series
}

/// `H = 2F1(1, p; q; z)` for `0 < p < q`, `0 <= z < 1`, with its partial derivatives in
/// `p`, `q` and `z`: the Pareto/NBD likelihood's series after Euler's transformation. The
/// terms `(p)_n / (q)_n z^n` are positive and each below `z` times the last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyp1 {
    /// The value.
    pub h: f64,
    /// dH/dp.
    pub dp: f64,
    /// dH/dq.
    pub dq: f64,
    /// dH/dz.
    pub dz: f64,
}

/// See [`Hyp1`]; `None` when the series has not converged after [`MAX_TERMS`] terms.
pub fn hyp2f1_one(p: f64, q: f64, z: f64) -> Option<Hyp1> {
    // term_n = (p)_n / (q)_n z^n; d term_n / dp = term_n Σ_{k<n} 1/(p+k), likewise -1/(q+k)
    // for q; d term_n / dz = n term_n / z, summed as n (p)_n/(q)_n z^(n-1).
    let (mut h, mut dp, mut dq, mut dz) = (1.0, 0.0, 0.0, 0.0);
    let (mut coef, mut sp, mut sq) = (1.0, 0.0, 0.0); // (p)_n/(q)_n z^(n-1) after step n
    let mut zpow = 1.0; // z^(n-1)
    for n in 0..MAX_TERMS {
        let k = n as f64;
        sp += 1.0 / (p + k);
        sq += 1.0 / (q + k);
        coef *= (p + k) / (q + k);
        let deriv_term = (k + 1.0) * coef * zpow; // d/dz of the term of order n + 1
        let term = coef * zpow * z;
        h += term;
        dp += term * sp;
        dq -= term * sq;
        dz += deriv_term;
        zpow *= z;
        if deriv_term <= 1e-17 * dz.max(h) && term * sp.max(sq) <= 1e-17 * h {
            return Some(Hyp1 { h, dp, dq, dz });
        }
    }
    None
}

/// The BG/NBD (and MBG/NBD) conditional expectation's core, `[1 - (1-z)^(a-1) F] / (a-1)`
/// with `F = 2F1(c - a0, a - 1; c; z)` (Euler's transformation of the published
/// `2F1(r+x, b+x; a+b+x-1; z)`, with `c0 = c - a0` the first parameter), written so that
/// `a = 1` (where the published form is 0/0) and `a` near 0 lose no precision:
/// `-expm1((a-1) L) / (a-1) - (1-z)^(a-1) G`, `L = ln(1-z)`, `G = Σ_{n>=1} (c0)_n (a)_(n-1) / ((c)_n n!) z^n`.
/// NaN when the series has not converged after [`MAX_TERMS`] terms.
pub fn bg_expectation_core(c0: f64, a: f64, c: f64, z: f64) -> f64 {
    let l = (-z).ln_1p();
    let am1 = a - 1.0;
    let u = am1 * l;
    let first = if u == 0.0 { -l } else { -u.exp_m1() / am1 };
    // G's terms: g_1 = c0 / c z; g_(n+1) = g_n (c0 + n)(a + n - 1) / ((c + n)(n + 1)) z.
    let mut term = c0 / c * z;
    let mut g = term;
    for n in 1..MAX_TERMS {
        let k = n as f64;
        term *= (c0 + k) * (a + k - 1.0) / ((c + k) * (k + 1.0)) * z;
        g += term;
        if term.abs() <= 1e-17 * g.abs() || term == 0.0 {
            return first - u.exp() * g;
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials_and_half_integers() {
        let mut f = 1.0f64;
        for n in 1..30 {
            f *= n as f64;
            let got = ln_gamma(n as f64 + 1.0);
            assert!((got - f.ln()).abs() <= 1e-13 * f.ln().max(1.0), "{n}: {got} vs {}", f.ln());
        }
        // Γ(1/2) = √π, Γ(0.1) = 9.513507698668731836...
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-14);
        assert!((ln_gamma(0.1) - 9.513_507_698_668_732f64.ln()).abs() < 1e-14);
    }

    #[test]
    fn digamma_is_the_derivative_of_ln_gamma() {
        for &x in &[0.05, 0.3, 1.0, 2.5, 7.0, 40.0, 1234.5] {
            let h = 1e-5 * x;
            let fd = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!((digamma(x) - fd).abs() < 1e-7 * (1.0 + fd.abs()), "{x}: {} vs {fd}", digamma(x));
        }
        // ψ(1) = -γ (Euler-Mascheroni).
        assert!((digamma(1.0) + 0.577_215_664_901_532_9).abs() < 1e-14);
    }

    /// The plain Gauss series, summed naively (only where it converges fast).
    fn naive_2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
        let (mut s, mut t) = (1.0, 1.0);
        for n in 0..5000 {
            let k = n as f64;
            t *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
            s += t;
        }
        s
    }

    #[test]
    fn the_pareto_series_is_euler_transformed_gauss() {
        // 2F1(A, B; A+1; z) = (1-z)^(1-B) 2F1(1, A+1-B; A+1; z), for B < A + 1.
        for &(a, b, z) in &[(3.2, 1.6, 0.3), (30.0, 0.7, 0.6), (0.8, 1.5, 0.05)] {
            let h = hyp2f1_one(a + 1.0 - b, a + 1.0, z).unwrap().h * (1.0 - z).powf(1.0 - b);
            let want = naive_2f1(a, b, a + 1.0, z);
            assert!((h - want).abs() < 1e-12 * want, "{a} {b} {z}: {h} vs {want}");
        }
    }

    #[test]
    fn the_pareto_series_derivatives_match_differences() {
        let (p, q, z) = (2.3, 4.1, 0.7);
        let f = hyp2f1_one(p, q, z).unwrap();
        let e = 1e-6;
        let fd = |g: &dyn Fn(f64) -> f64, v: f64| (g(v + e) - g(v - e)) / (2.0 * e);
        let dp = fd(&|v| hyp2f1_one(v, q, z).unwrap().h, p);
        let dq = fd(&|v| hyp2f1_one(p, v, z).unwrap().h, q);
        let dz = fd(&|v| hyp2f1_one(p, q, v).unwrap().h, z);
        for (got, want) in [(f.dp, dp), (f.dq, dq), (f.dz, dz)] {
            assert!((got - want).abs() < 1e-7 * want.abs().max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn the_bg_core_is_the_published_form_and_continuous_at_a_1() {
        // [1 - (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z)] / (a-1), summed naively.
        let (r, x, b, z): (f64, f64, f64, f64) = (0.24, 3.0, 2.4, 0.4);
        for &a in &[0.3, 0.79, 1.7] {
            let pub_form = (1.0 - (1.0 - z).powf(r + x) * naive_2f1(r + x, b + x, a + b + x - 1.0, z)) / (a - 1.0);
            let got = bg_expectation_core(a + b - 1.0 - r, a, a + b + x - 1.0, z);
            assert!((got - pub_form).abs() < 1e-11 * pub_form.abs(), "{a}: {got} vs {pub_form}");
        }
        let near = |a: f64| bg_expectation_core(a + b - 1.0 - r, a, a + b + x - 1.0, z);
        assert!((near(1.0) - 0.5 * (near(1.0 + 1e-7) + near(1.0 - 1e-7))).abs() < 1e-9);
    }

    #[test]
    fn series_that_would_not_converge_give_no_value() {
        assert!(hyp2f1_one(1.5, 1.7, 1.0 - 1e-9).is_none());
        assert!(hyp2f1_one(1.5, 1.7, 0.999).is_some());
        assert!(bg_expectation_core(0.5, 0.3, 2.0, 1.0).is_nan());
    }
}
