//! Item-kNN against a brute-force dense computation on random small matrices.
//!
//! The oracle works in f64 on dense ndarray matrices: cosine between every pair of item
//! columns, each item's top-k, scores `W[u] · S`. Near-equal similarities may be ordered
//! differently by f32 and f64 arithmetic, so selections are checked with a tolerance: every
//! kept entry has the oracle's value, and nothing left out beats the weakest kept entry.

use cobuy::ids::CustomerIdx;
use cobuy::matrix::{InteractionsBuilder, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::recommend::Source;
use ndarray::Array2;
use proptest::prelude::*;

const TOL: f64 = 1e-4;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL * (1.0 + a.abs().max(b.abs()))
}

fn dense(m: &cobuy::matrix::Csr) -> Array2<f64> {
    let mut d = Array2::zeros(m.shape());
    for (r, row) in m.outer_iterator().enumerate() {
        for (c, &v) in row.iter() {
            d[[r, c]] = f64::from(v);
        }
    }
    d
}

fn scheme(k: u8) -> Scheme {
    match k % 5 {
        0 => Scheme::Binary,
        1 => Scheme::Count,
        2 => Scheme::Log,
        3 => Scheme::Bm25 { k1: 1.2, b: 0.75 },
        _ => Scheme::TfIdf,
    }
}

/// (customer, item, quantity) rows, (customer, item) "seen" marks, k, weighting scheme.
type Case = (Vec<(u8, u8, u8)>, Vec<(u8, u8)>, usize, u8);

fn data() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0u8..14, 0u8..12, 1u8..5), 1..90),
        prop::collection::vec((0u8..14, 0u8..12), 0..6),
        1usize..14,
        0u8..5,
    )
}

fn fit(rows: &[(u8, u8, u8)], seen: &[(u8, u8)], k: usize, s: u8) -> Model {
    let mut b = InteractionsBuilder::new();
    for &(c, i, q) in rows {
        b.purchase(&format!("c{c}"), &format!("i{i}"), f64::from(q), None, None).unwrap();
    }
    for &(c, i) in seen {
        b.seen(&format!("c{c}"), &format!("i{i}")).unwrap();
    }
    let params = FitParams { neighbors: k, weighting: Weighting { scheme: scheme(s), ..Weighting::default() } };
    Model::fit(b.finish().0, &params, FitInfo::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn neighbours_match_brute_force_cosine((rows, seen, k, s) in data()) {
        let model = fit(&rows, &seen, k, s);
        let w = dense(model.weighted());
        let items = w.ncols();
        let nb = dense(model.neighbors());
        for i in 0..items {
            let oracle: Vec<f64> = (0..items)
                .map(|j| {
                    let (a, b) = (w.column(i), w.column(j));
                    let denom = a.dot(&a).sqrt() * b.dot(&b).sqrt();
                    if i == j || denom == 0.0 { 0.0 } else { a.dot(&b) / denom }
                })
                .collect();
            let positive = oracle.iter().filter(|&&v| v > 0.0).count();
            let kept: Vec<usize> = (0..items).filter(|&j| nb[[i, j]] != 0.0).collect();
            prop_assert_eq!(kept.len(), k.min(positive), "item {}: kept of positive, k {}", i, k);
            for &j in &kept {
                prop_assert!(close(nb[[i, j]], oracle[j]), "sim({i},{j}) = {} vs {}", nb[[i, j]], oracle[j]);
            }
            let weakest = kept.iter().map(|&j| oracle[j]).fold(f64::INFINITY, f64::min);
            for j in (0..items).filter(|j| !kept.contains(j) && *j != i) {
                prop_assert!(oracle[j] <= weakest + TOL, "item {i}: left out {j} ({}) beats {weakest}", oracle[j]);
            }
        }
    }

    #[test]
    fn scores_match_dense_product((rows, seen, k, s) in data(), n in 1usize..8) {
        let model = fit(&rows, &seen, k, s);
        let w = dense(model.weighted());
        let scores = w.dot(&dense(model.neighbors()));
        let d = model.interactions();
        for c in 0..w.nrows() {
            let cust = CustomerIdx(c as u32);
            let recs = model.recommend(cust, n);
            let (bought, _) = d.purchases(cust);
            let blocked = |j: usize| bought.contains(&(j as u32)) || d.seen_only(cust).contains(&(j as u32));
            let eligible: Vec<usize> = (0..w.ncols()).filter(|&j| !blocked(j) && scores[[c, j]] > 0.0).collect();
            let knn: Vec<_> = recs.iter().filter(|r| r.source == Source::ItemKnn).collect();
            prop_assert_eq!(knn.len(), n.min(eligible.len()));
            prop_assert!(recs.iter().take(knn.len()).all(|r| r.source == Source::ItemKnn), "kNN items come first");
            for pair in knn.windows(2) {
                prop_assert!(pair[0].score > pair[1].score
                    || (pair[0].score == pair[1].score && pair[0].item < pair[1].item));
            }
            for r in &knn {
                let j = r.item.get();
                prop_assert!(!blocked(j), "customer {c} already has item {j}");
                prop_assert!(close(f64::from(r.score), scores[[c, j]]), "score {} vs {}", r.score, scores[[c, j]]);
            }
            let weakest = knn.iter().map(|r| f64::from(r.score)).fold(f64::INFINITY, f64::min);
            for &j in eligible.iter().filter(|&&j| !knn.iter().any(|r| r.item.get() == j)) {
                prop_assert!(scores[[c, j]] <= weakest + TOL);
            }
            // Popularity fill: unseen items only, no repeats, until n or the catalogue runs out.
            let mut all: Vec<usize> = recs.iter().map(|r| r.item.get()).collect();
            prop_assert!(recs.iter().all(|r| !blocked(r.item.get())));
            all.sort_unstable();
            all.dedup();
            prop_assert_eq!(all.len(), recs.len());
            let buyable = model.popular().iter().filter(|&&j| !blocked(j as usize)).count();
            prop_assert_eq!(recs.len(), n.min(buyable));
        }
    }
}
