//! The repeat-purchase and spend models against the naive formulas of `value_oracle`, their
//! gradients against finite differences, the churn probability against its closed form,
//! boundary and degenerate data, and thread-count independence.

use cobuy::value::{self, Distinct, Model, ValueError, gamma};

use super::value_oracle as oracle;

/// Rows that reach every branch: no repeat purchase, a purchase at the end (t_x = T), many
/// purchases, a long-lapsed customer, fractional times.
const ROWS: [[f64; 3]; 7] = [
    [0.0, 0.0, 38.86],
    [0.0, 0.0, 0.5],
    [1.0, 1.71, 38.86],
    [2.0, 30.43, 38.86],
    [26.0, 30.857, 31.0],
    [5.0, 38.86, 38.86],
    [120.0, 70.0, 78.0],
];

/// Parameter sets: CDNOW's fits, a < 1 and a > 1, α below and above β (both Pareto/NBD
/// branches), s near 1; and for Pareto/NBD, one rate scale dwarfing the other (the
/// hypergeometric argument within 1e-5 of 1, where the series in z needed millions of terms)
/// in both branches, with r + x - 1 or s at an integer, and both dropout parameters large.
const BG_PARAMS: [[f64; 4]; 4] =
    [[0.2426, 4.4136, 0.7929, 2.4259], [1.3, 0.8, 2.5, 6.0], [0.05, 30.0, 0.02, 1.5], [3.0, 2.0, 1.0, 1.2]];
const PARETO_PARAMS: [[f64; 4]; 9] = [
    [0.553, 10.578, 0.606, 11.669],
    [1.3, 40.0, 1.0000001, 2.0],
    [0.3, 1.0, 2.5, 20.0],
    [2.0, 5.0, 0.4, 5.0],
    [1.06, 29.6, 0.8, 5e6],
    [1.0, 29.6, 0.8, 5e6],
    [0.5, 2e5, 1.3, 0.7],
    [0.5, 2e5, 2.0, 0.7],
    [2.0, 30.0, 5e3, 2e5],
];

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * want.abs().max(1.0)
}

#[test]
fn likelihoods_are_the_published_formulas() {
    for p in BG_PARAMS {
        for [x, tx, t] in ROWS {
            for (model, modified) in [(Model::BgNbd, false), (Model::MbgNbd, true)] {
                let got = model.log_lik(&p, x, tx, t).0;
                let want = oracle::bg_log_lik(&p, x, tx, t, modified);
                assert!(close(got, want, 1e-11), "{model} {p:?} {x} {tx} {t}: {got} vs {want}");
            }
        }
    }
    for p in PARETO_PARAMS {
        for [x, tx, t] in ROWS {
            let got = Model::ParetoNbd.log_lik(&p, x, tx, t).0;
            let want = oracle::pareto_log_lik(&p, x, tx, t);
            assert!(close(got, want, 1e-9), "pareto {p:?} {x} {tx} {t}: {got} vs {want}");
        }
    }
    for par in [[6.25, 3.74, 15.44], [0.8, 0.6, 2.0]] {
        for (x, m) in [(1.0, 12.0), (3.0, 0.5), (40.0, 140.0)] {
            let got = gamma::log_lik(&par, x, m).0;
            let want = oracle::gg_log_lik(&par, x, m);
            assert!(close(got, want, 1e-11), "gamma-gamma {par:?} {x} {m}: {got} vs {want}");
        }
    }
}

/// Central differences of a log-likelihood in each parameter, step 1e-6 relative.
fn finite_differences<const N: usize>(f: impl Fn(&[f64; N]) -> f64, p: &[f64; N]) -> [f64; N] {
    let mut g = [0.0; N];
    for k in 0..N {
        let h = 1e-6 * p[k];
        let (mut up, mut down) = (*p, *p);
        up[k] += h;
        down[k] -= h;
        g[k] = (f(&up) - f(&down)) / (2.0 * h);
    }
    g
}

#[test]
fn gradients_match_finite_differences() {
    let check = |name: &str, got: &[f64], fd: &[f64]| {
        for (g, d) in got.iter().zip(fd) {
            assert!((g - d).abs() <= 1e-5 * d.abs().max(1.0), "{name}: {got:?} vs {fd:?}");
        }
    };
    for model in Model::ALL {
        let params: &[[f64; 4]] = if model == Model::ParetoNbd { &PARETO_PARAMS } else { &BG_PARAMS };
        for p in params {
            for [x, tx, t] in ROWS {
                let (_, g) = model.log_lik(p, x, tx, t);
                let fd = finite_differences(|q| model.log_lik(q, x, tx, t).0, p);
                check(&format!("{model} {p:?} {x} {tx} {t}"), &g, &fd);
            }
        }
    }
    for par in [[6.25, 3.74, 15.44], [0.8, 0.6, 2.0]] {
        for (x, m) in [(1.0, 12.0), (3.0, 0.5), (40.0, 140.0)] {
            let (_, g) = gamma::log_lik(&par, x, m);
            check("gamma-gamma", &g, &finite_differences(|q| gamma::log_lik(q, x, m).0, &par));
        }
    }
}

#[test]
fn expectations_and_p_alive_are_the_models_integrals() {
    for p in BG_PARAMS.iter().filter(|p| p[3] > 1.0) {
        for [x, tx, t] in ROWS {
            for h in [1.0, 52.0, 400.0] {
                for (model, modified) in [(Model::BgNbd, false), (Model::MbgNbd, true)] {
                    let got = model.expected(p, x, tx, t, h);
                    let want = oracle::bg_expected(p, x, tx, t, h, modified);
                    assert!(close(got, want, 1e-6), "{model} {p:?} {x} {tx} {t} h={h}: {got} vs {want}");
                    let a = model.p_alive(p, x, tx, t);
                    assert!(close(a, oracle::bg_p_alive(p, x, tx, t, modified), 1e-12));
                }
            }
        }
    }
    for p in PARETO_PARAMS {
        for [x, tx, t] in ROWS {
            let a = Model::ParetoNbd.p_alive(&p, x, tx, t);
            assert!(close(a, oracle::pareto_p_alive(&p, x, tx, t), 1e-8), "{p:?} {x} {tx} {t}: {a}");
            for h in [1.0, 52.0, 400.0] {
                let got = Model::ParetoNbd.expected(&p, x, tx, t, h);
                let want = oracle::pareto_expected(&p, x, tx, t, h);
                assert!(close(got, want, 1e-7), "pareto {p:?} {x} {tx} {t} h={h}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn churn_is_the_closed_form_and_one_time_buyers_are_not_certain() {
    // BG/NBD: alive customers die only at purchases, so no purchase in h has probability
    // 1 - P(alive) + P(alive) ((α+T)/(α+T+h))^(r+x).
    for p in BG_PARAMS {
        for [x, tx, t] in ROWS {
            for model in [Model::BgNbd, Model::MbgNbd] {
                let a = model.p_alive(&p, x, tx, t);
                let h = 26.0;
                let want = 1.0 - a + a * ((p[1] + t) / (p[1] + t + h)).powf(p[0] + x);
                let got = model.p_no_purchase(&p, x, tx, t, h);
                assert!(close(got, want, 1e-10), "{model} {p:?} {x} {tx} {t}: {got} vs {want}");
            }
        }
    }
    // One-time buyers: BG/NBD calls them all alive, yet their churn risk is below 1, above
    // 0, and grows with the time since their purchase.
    let p = BG_PARAMS[0];
    assert_eq!(Model::BgNbd.p_alive(&p, 0.0, 0.0, 30.0), 1.0);
    let young = Model::BgNbd.p_no_purchase(&p, 0.0, 0.0, 2.0, 52.0);
    let old = Model::BgNbd.p_no_purchase(&p, 0.0, 0.0, 38.0, 52.0);
    assert!(0.0 < young && young < old && old < 1.0, "{young} {old}");
    assert!(Model::MbgNbd.p_alive(&p, 0.0, 0.0, 30.0) < 1.0);
}

/// Customers from the Pareto/NBD process: purchases at rate λ (Poisson) until an exponential
/// lifetime of rate μ ends, or (`dropout` false) forever; x, t_x, T in weeks on a day grid.
fn simulated(customers: u32, dropout: bool, seed: u64) -> Distinct {
    let mut rng = super::common::Lcg(seed);
    let mut rows = Vec::new();
    for _ in 0..customers {
        let rate = 0.05 + 0.5 * rng.unit(); // purchases per week
        let death = if dropout { -(1.0 - rng.unit()).ln() / (0.005 + 0.1 * rng.unit()) } else { f64::INFINITY };
        let t = (1 + rng.below(40 * 7)) as f64 / 7.0;
        let (mut now, mut x, mut last) = (0.0, 0.0, 0.0);
        loop {
            now += -(1.0 - rng.unit()).ln() / rate;
            if now > t.min(death) {
                break;
            }
            let day = (now * 7.0).floor() / 7.0;
            if day > last {
                x += 1.0;
                last = day;
            }
        }
        rows.push([x, last, t]);
    }
    Distinct::new(rows)
}

#[test]
fn no_dropout_reaches_the_boundary_and_says_so() {
    let d = simulated(3_000, false, 7);
    let f = value::fit_model(Model::BgNbd, &d).unwrap();
    assert_eq!(f.boundary[2], Some(-1), "a should be at 0: {:?}", f.params);
    assert!(f.std_errors[2].is_none());
    assert!(f.log_likelihood.is_finite() && f.params.iter().all(|p| p.is_finite()));
    // Predictions stay finite there.
    for [x, tx, t] in ROWS {
        assert!(f.expected(x, tx, t, 52.0).is_finite() && f.p_alive(x, tx, t).is_finite());
    }
}

#[test]
fn pareto_nbd_without_dropout_converges_to_a_finite_fit() {
    // No dropout drives s and β to 0 (or β far above α): the region where the series in z
    // needed about 40 / (1 - z) terms. The fit converges to a finite answer.
    let d = simulated(3_000, false, 7);
    let f = value::fit_model(Model::ParetoNbd, &d).unwrap();
    assert!(f.log_likelihood.is_finite() && f.params.iter().all(|p| p.is_finite()), "{f:?}");
    // Nearly everyone survives a year: E[e^(-52 μ)] = (β / (β + 52))^s.
    let [_, _, s, beta] = f.params;
    let survive = (s * (beta / (beta + 52.0)).ln()).exp();
    assert!(survive > 0.95, "P(alive a year on) {survive}: {:?}", f.params);
    // Its likelihood is at least BG/NBD's (both describe no dropout in the limit).
    let bg = value::fit_model(Model::BgNbd, &d).unwrap();
    assert!(f.log_likelihood > bg.log_likelihood - 1.0, "{} vs {}", f.log_likelihood, bg.log_likelihood);
    for [x, tx, t] in ROWS {
        assert!(f.expected(x, tx, t, 52.0).is_finite() && f.p_alive(x, tx, t).is_finite());
    }
}

#[test]
fn nobody_buying_twice_is_a_typed_error() {
    let d = Distinct::new(vec![[0.0, 0.0, 10.0], [0.0, 0.0, 3.0]]);
    for model in Model::ALL {
        assert_eq!(value::fit_model(model, &d).unwrap_err(), ValueError::NoRepeatPurchases);
    }
    assert!(matches!(value::fit_best(&d), Err(ValueError::NoRepeatPurchases)));
    assert_eq!(value::fit_spend(&[(1.0, 3.0)]).unwrap_err(), ValueError::NoRepeatSpend);
}

#[test]
fn fits_are_the_same_for_any_thread_count() {
    // More distinct rows than one summing chunk, so the chunks run on several workers.
    let d = simulated(20_000, true, 11);
    assert!(d.rows.len() > 4_096, "{} rows", d.rows.len());
    let fit = |threads| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
            let f = value::fit_model(Model::ParetoNbd, &d).unwrap();
            (f.params.map(f64::to_bits), f.log_likelihood.to_bits())
        })
    };
    assert_eq!(fit(1), fit(3));
}

#[test]
fn a_fit_reports_the_plain_sum_of_its_rows_likelihoods() {
    // More rows than one summing chunk, many sharing an x (BG/NBD and Gamma-Gamma reuse their
    // per-x terms) or an (x, t_x) or (x, T) (Pareto/NBD evaluates its series once per pair):
    // the reported log-likelihood is the naive formula summed row by row at the fitted
    // parameters.
    let d = simulated(6_000, true, 5);
    assert!(d.rows.len() > 2_048, "{} rows", d.rows.len());
    for model in Model::ALL {
        let f = value::fit_model(model, &d).unwrap();
        let want: f64 = d
            .rows
            .iter()
            .zip(&d.weights)
            .map(|(&[x, tx, t], w)| {
                w * match model {
                    Model::BgNbd => oracle::bg_log_lik(&f.params, x, tx, t, false),
                    Model::MbgNbd => oracle::bg_log_lik(&f.params, x, tx, t, true),
                    Model::ParetoNbd => oracle::pareto_log_lik(&f.params, x, tx, t),
                }
            })
            .sum();
        assert!(close(f.log_likelihood, want, 1e-9), "{model}: {} vs {want}", f.log_likelihood);
    }
    // Spend: x in no order, repeated, some above the per-x cache.
    let mut rng = super::common::Lcg(3);
    let pairs: Vec<(f64, f64)> = (0..5_000)
        .map(|i| ((1 + rng.below(if i % 50 == 0 { 9_000 } else { 12 })) as f64, 5.0 + 60.0 * rng.unit()))
        .collect();
    let f = value::fit_spend(&pairs).unwrap();
    let want: f64 = pairs.iter().map(|&(x, m)| oracle::gg_log_lik(&f.params, x, m)).sum();
    assert!(close(f.log_likelihood, want, 1e-9), "gamma-gamma: {} vs {want}", f.log_likelihood);
}

#[test]
fn customers_sharing_a_history_get_their_own_scores() {
    use cobuy::ids::CustomerIdx;
    use cobuy::value::{ChurnScore, CustomerSummary, ScoreOptions, SpendFit, TierBy, fit::Spend};
    // Each history several times, with different spends: every model value is the
    // customer's own, and lifetime value is the discounted sum of the expected purchases in
    // each month of the horizon times the customer's expected spend.
    let summaries: Vec<CustomerSummary> = (0..ROWS.len() * 3)
        .map(|i| {
            let [x, t_x, t] = ROWS[i % ROWS.len()];
            let spend_n = if x > 0.0 { 1 + (i % 3) as u32 } else { 0 };
            CustomerSummary {
                customer: CustomerIdx(i as u32),
                x,
                t_x,
                t,
                first: 0,
                last: (t_x * 7.0 * 86_400.0) as i64,
                revenue: 10.0 * (i + 1) as f64,
                spend_n,
                spend_mean: if spend_n > 0 { 5.0 + i as f64 } else { 0.0 },
            }
        })
        .collect();
    let spend = SpendFit {
        model: Spend::GammaGamma,
        params: [6.25, 3.74, 15.44],
        log_likelihood: 0.0,
        std_errors: [None; 3],
        boundary: [None; 3],
        customers: 1.0,
        iterations: 0,
    };
    let (h, unit, discount) = (52.0, 7.0 * 86_400.0, 0.1);
    let cases = [(Model::BgNbd, BG_PARAMS[0]), (Model::MbgNbd, BG_PARAMS[1]), (Model::ParetoNbd, PARETO_PARAMS[0])];
    for ((model, params), churn) in
        cases.into_iter().flat_map(|c| [(c, ChurnScore::NoPurchase), (c, ChurnScore::FewestExpected)])
    {
        let opts = ScoreOptions { horizon: h, unit_seconds: unit, discount, tier_by: TierBy::Value, churn };
        let m = fitted(model, params);
        let (scores, _) = value::score(&summaries, Some(&m), Some(&spend), true, &opts).unwrap();
        let steps = (h * unit / (30.0 * 86_400.0)).ceil() as usize;
        for (s, got) in summaries.iter().zip(&scores) {
            let (x, tx, t) = (s.x, s.t_x, s.t);
            let espend = spend.expected_spend(f64::from(s.spend_n), s.spend_mean);
            let mut clv = 0.0;
            for k in 1..=steps {
                let (t0, t1) = (h * (k - 1) as f64 / steps as f64, h * k as f64 / steps as f64);
                let bought = m.expected(x, tx, t, t1) - if k == 1 { 0.0 } else { m.expected(x, tx, t, t0) };
                clv += bought * (1.0 + discount).powf(-t1 * unit / (365.25 * 86_400.0));
            }
            let want = [
                Some(m.p_alive(x, tx, t)),
                Some(m.expected(x, tx, t, h)),
                Some(m.p_no_purchase(x, tx, t, h)),
                Some(m.next_purchase(x, tx, t)),
                espend,
                espend.map(|e| clv * e),
                // The churn risk: the chance of no purchase, or of none at a Poisson count
                // with the expected purchases as its mean.
                Some(match churn {
                    ChurnScore::NoPurchase => m.p_no_purchase(x, tx, t, h),
                    ChurnScore::FewestExpected => (-m.expected(x, tx, t, h)).exp(),
                }),
            ];
            let have = [
                got.p_alive,
                got.expected,
                got.p_no_purchase,
                got.next_purchase,
                got.expected_spend,
                got.clv,
                got.churn_risk,
            ];
            for (k, (g, w)) in have.iter().zip(&want).enumerate() {
                match (g, w) {
                    (Some(g), Some(w)) => {
                        assert!(close(*g, *w, 1e-12), "{model} customer {i} value {k}: {g} vs {w}", i = s.customer.0)
                    }
                    _ => assert_eq!(g.is_some(), w.is_some(), "{model} customer {} value {k}", s.customer.0),
                }
            }
        }
    }
}

/// A repeat-purchase model with these parameters (the other fields are not read by scores).
fn fitted(model: Model, params: [f64; 4]) -> value::Purchases {
    value::Purchases {
        model,
        params,
        log_likelihood: 0.0,
        std_errors: [None; 4],
        boundary: [None; 4],
        customers: 1.0,
        iterations: 0,
    }
}
