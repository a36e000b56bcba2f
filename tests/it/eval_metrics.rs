//! `MetricsAccumulator` against a deliberately naive implementation of each definition on
//! random ranked lists, relevant sets, revenues and cut-offs (means and their standard
//! errors), and the bounds and monotonicity every table must have.
//!
//! The oracle recomputes everything per cut-off and per customer with hash sets and
//! explicit loops, straight from the definitions in the `Metric` docs.

use std::collections::{HashMap, HashSet};

use cobuy::eval::metrics::{Metric, MetricTable, MetricsAccumulator};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Customer {
    ranked: Vec<u32>,
    relevant: Vec<u32>,
    revenue: Option<Vec<f64>>,
}

#[derive(Debug, Clone)]
struct Case {
    items: usize,
    ks: Vec<usize>,
    popularity: Vec<f64>,
    customers: Vec<Customer>,
}

fn customer(items: u32) -> impl Strategy<Value = Customer> {
    let all: Vec<u32> = (0..items).collect();
    let n = items as usize;
    (prop::sample::subsequence(all.clone(), 0..=n.min(25)).prop_shuffle(), prop::sample::subsequence(all, 1..=n.min(8)))
        .prop_flat_map(|(ranked, relevant)| {
            let value = prop_oneof![Just(0.0), 0.0..100.0f64];
            let revenue = prop::option::of(prop::collection::vec(value, relevant.len()));
            (Just(ranked), Just(relevant), revenue)
        })
        .prop_map(|(ranked, relevant, revenue)| Customer { ranked, relevant, revenue })
}

fn case() -> impl Strategy<Value = Case> {
    (1u32..30).prop_flat_map(|items| {
        (
            prop::collection::vec(1usize..30, 1..5),
            prop::collection::vec(0.0..=1.0f64, items as usize),
            prop::collection::vec(customer(items), 0..12),
        )
            .prop_map(move |(ks, popularity, customers)| Case {
                items: items as usize,
                ks,
                popularity,
                customers,
            })
    })
}

/// One customer's value of `m` at `k`, from the definition; `None` when the customer does
/// not count (revenue recall without positive revenue).
fn naive(m: Metric, c: &Customer, k: usize) -> Option<f64> {
    let rel: HashSet<u32> = c.relevant.iter().copied().collect();
    let top: Vec<u32> = c.ranked.iter().copied().take(k).collect();
    let hits = top.iter().filter(|i| rel.contains(i)).count() as f64;
    let discount = |r: usize| 1.0 / ((r + 1) as f64).log2();
    Some(match m {
        Metric::Precision => hits / k as f64,
        Metric::Recall => hits / rel.len() as f64,
        Metric::HitRate => {
            if hits > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Metric::Mrr => match top.iter().position(|i| rel.contains(i)) {
            Some(p) => 1.0 / (p + 1) as f64,
            None => 0.0,
        },
        Metric::Ndcg => {
            let mut dcg = 0.0;
            for (p, i) in top.iter().enumerate() {
                if rel.contains(i) {
                    dcg += discount(p + 1);
                }
            }
            let mut idcg = 0.0;
            for r in 1..=k.min(rel.len()) {
                idcg += discount(r);
            }
            dcg / idcg
        }
        Metric::Map => {
            let mut sum = 0.0;
            for r in 1..=top.len() {
                if rel.contains(&top[r - 1]) {
                    let hits_r = top[..r].iter().filter(|i| rel.contains(i)).count();
                    sum += hits_r as f64 / r as f64;
                }
            }
            sum / k.min(rel.len()) as f64
        }
        Metric::RevenueRecall => {
            let values: HashMap<u32, f64> =
                c.relevant.iter().copied().zip(c.revenue.as_ref()?.iter().copied()).collect();
            let total: f64 = values.values().sum();
            if total <= 0.0 {
                return None;
            }
            top.iter().filter_map(|i| values.get(i)).sum::<f64>() / total
        }
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

fn accumulate(case: &Case) -> MetricTable {
    let mut acc = MetricsAccumulator::new(&case.ks, case.items, case.popularity.clone());
    for c in &case.customers {
        acc.add(&c.ranked, &c.relevant, c.revenue.as_deref());
    }
    acc.finish()
}

fn non_decreasing(v: &[f64]) -> bool {
    v.windows(2).all(|w| w[0] <= w[1])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn metrics_match_the_definitions(case in case()) {
        let t = accumulate(&case);
        let mut ks = case.ks.clone();
        ks.sort_unstable();
        ks.dedup();
        prop_assert_eq!(&t.ks, &ks);
        prop_assert_eq!(t.customers, case.customers.len());

        for m in Metric::ALL {
            for &k in &ks {
                let per: Vec<f64> = case.customers.iter().filter_map(|c| naive(m, c, k)).collect();
                let got = t.get(m, k);
                if per.is_empty() {
                    // No customers: every mean is 0, and revenue recall is absent.
                    if m == Metric::RevenueRecall {
                        prop_assert_eq!(got, None);
                    } else {
                        prop_assert_eq!(got, Some(0.0));
                    }
                    continue;
                }
                let expected = per.iter().sum::<f64>() / per.len() as f64;
                let got = got.unwrap();
                prop_assert!(close(got, expected), "{}@{}: got {}, expected {}", m.name(), k, got, expected);
                // The standard error: two passes over the per-customer values, the sample
                // variance over n; none below two customers. Compared squared: a spread of 0
                // comes out of the accumulator's one pass as a rounding error whose root is
                // far larger than the error itself.
                let se = t.std_error(m, k);
                if per.len() < 2 {
                    prop_assert_eq!(se, None, "{}@{}", m.name(), k);
                } else {
                    let n = per.len() as f64;
                    let variance = per.iter().map(|v| (v - expected).powi(2)).sum::<f64>() / (n - 1.0);
                    let got = se.unwrap();
                    prop_assert!(
                        close(got * got, variance / n),
                        "{}@{}: standard error {}, expected {}", m.name(), k, got, (variance / n).sqrt()
                    );
                }
            }
        }

        for (i, &k) in ks.iter().enumerate() {
            let mut seen = HashSet::new();
            let (mut popularity, mut slots) = (0.0, 0usize);
            for c in &case.customers {
                for &item in c.ranked.iter().take(k) {
                    seen.insert(item);
                    popularity += case.popularity[item as usize];
                    slots += 1;
                }
            }
            let coverage = seen.len() as f64 / case.items as f64;
            prop_assert!(close(t.coverage[i], coverage), "coverage@{}: {} vs {}", k, t.coverage[i], coverage);
            let mean = if slots == 0 { 0.0 } else { popularity / slots as f64 };
            prop_assert!(close(t.mean_popularity[i], mean), "popularity@{}: {} vs {}", k, t.mean_popularity[i], mean);
        }
    }

    #[test]
    fn tables_are_bounded_and_monotone(case in case()) {
        let t = accumulate(&case);
        prop_assert_eq!(t.coverage.len(), t.ks.len());
        prop_assert_eq!(t.mean_popularity.len(), t.ks.len());
        for (m, values) in &t.values {
            prop_assert_eq!(values.len(), t.ks.len());
            prop_assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "{} out of [0, 1]: {:?}", m.name(), values);
            if matches!(m, Metric::Recall | Metric::HitRate | Metric::Mrr | Metric::RevenueRecall) {
                prop_assert!(non_decreasing(values), "{} decreases in k: {:?}", m.name(), values);
            }
        }
        let order: Vec<Metric> = t.values.iter().map(|(m, _)| *m).collect();
        let expected: Vec<Metric> =
            Metric::ALL.into_iter().filter(|&m| m != Metric::RevenueRecall || order.contains(&m)).collect();
        prop_assert_eq!(order, expected);
        prop_assert!(t.coverage.iter().chain(&t.mean_popularity).all(|v| (0.0..=1.0).contains(v)));
        prop_assert!(non_decreasing(&t.coverage), "coverage decreases in k: {:?}", t.coverage);
    }
}
