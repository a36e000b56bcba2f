//! Item-kNN, user-kNN and similar customers against brute-force dense computations on
//! random small matrices.
//!
//! The oracle works in f64 on dense ndarray matrices: every pairwise similarity (each
//! measure by its textbook formula), each row's top-k, scores as dense products.
//! Near-equal similarities may be ordered differently by f32 and f64 arithmetic, so
//! selections are checked with a tolerance: every kept entry has the oracle's value, and
//! nothing left out beats the weakest kept entry.

use cobuy::algo::Algorithm;
use cobuy::algo::similarity::{Measure, SimilarityParams, Ties};
use cobuy::ids::CustomerIdx;
use cobuy::matrix::{InteractionsBuilder, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::recommend::Source;
use ndarray::{Array2, ArrayView1};
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

fn similarity(m: u8, shrink: u8, min_shared: u8) -> SimilarityParams {
    let measure = match m % 5 {
        0 => Measure::Cosine,
        1 => Measure::Jaccard,
        2 => Measure::AsymmetricCosine { alpha: 0.8 },
        3 => Measure::Lift,
        _ => Measure::AsymmetricCosine { alpha: 0.3 },
    };
    SimilarityParams {
        measure,
        shrinkage: f32::from(shrink % 3) * 1.5,
        min_shared: u32::from(min_shared % 3),
        ties: Default::default(),
    }
}

/// The textbook similarity of two rows (f64), `features` = the number of columns.
fn oracle_sim(p: &SimilarityParams, a: ArrayView1<f64>, b: ArrayView1<f64>, features: f64) -> f64 {
    let shared = a.iter().zip(b.iter()).filter(|(x, y)| **x != 0.0 && **y != 0.0).count() as f64;
    if shared == 0.0 || shared < f64::from(p.min_shared) {
        return 0.0;
    }
    let (na, nb) = (a.iter().filter(|x| **x != 0.0).count() as f64, b.iter().filter(|x| **x != 0.0).count() as f64);
    let sim = match p.measure {
        Measure::Cosine => a.dot(&b) / (a.dot(&a) * b.dot(&b)).sqrt(),
        Measure::AsymmetricCosine { alpha } => {
            let alpha = f64::from(alpha);
            a.dot(&b) / (a.dot(&a).powf(alpha) * b.dot(&b).powf(1.0 - alpha))
        }
        Measure::Jaccard => shared / (na + nb - shared),
        Measure::Lift => shared * features / (na * nb),
        Measure::Rp3Beta { .. } => unreachable!("rp3beta has its own oracle"),
    };
    let s = f64::from(p.shrinkage);
    if s > 0.0 { sim * shared / (shared + s) } else { sim }
}

/// Lift's N: how many of these lanes (customers, or items) hold anything.
fn nonempty<'a>(lanes: impl IntoIterator<Item = ArrayView1<'a, f64>>) -> f64 {
    lanes.into_iter().filter(|l| l.iter().any(|&x| x != 0.0)).count() as f64
}

/// Checks one row's kept neighbours against the oracle row (self excluded by the caller).
fn check_top_k(what: &str, oracle: &[f64], kept: &[(usize, f64)], k: usize) -> Result<(), TestCaseError> {
    let positive = oracle.iter().filter(|&&v| v > 0.0).count();
    prop_assert_eq!(kept.len(), k.min(positive), "{}: kept of positive, k {}", what, k);
    for &(j, v) in kept {
        prop_assert!(close(v, oracle[j]), "{what}: sim to {j} = {v} vs oracle {}", oracle[j]);
    }
    let weakest = kept.iter().map(|&(_, v)| v).fold(f64::INFINITY, f64::min);
    for (j, &v) in oracle.iter().enumerate() {
        if v > 0.0 && !kept.iter().any(|&(i, _)| i == j) {
            prop_assert!(v <= weakest + TOL, "{what}: left out {j} ({v}) beats {weakest}");
        }
    }
    Ok(())
}

/// (customer, item, quantity) rows, (customer, item) "seen" marks, k, weighting, and the
/// similarity's measure, shrinkage and minimum overlap.
type Case = (Vec<(u8, u8, u8)>, Vec<(u8, u8)>, usize, u8, (u8, u8, u8));

fn data() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0u8..14, 0u8..12, 1u8..5), 1..90),
        prop::collection::vec((0u8..14, 0u8..12), 0..6),
        1usize..14,
        0u8..5,
        (0u8..5, 0u8..3, 0u8..3),
    )
}

fn fit(case: &Case, algorithm: Algorithm) -> Model {
    let (rows, seen, k, s, (m, sh, ms)) = case;
    let mut b = InteractionsBuilder::new();
    for &(c, i, q) in rows {
        b.purchase(&format!("c{c}"), &format!("i{i}"), f64::from(q), None, None).unwrap();
    }
    for &(c, i) in seen {
        b.seen(&format!("c{c}"), &format!("i{i}")).unwrap();
    }
    let params = FitParams {
        algorithm,
        neighbors: *k,
        weighting: Weighting { scheme: scheme(*s), ..Weighting::default() },
        similarity: similarity(*m, *sh, *ms),
        ..FitParams::default()
    };
    Model::fit(b.finish().0, &params, FitInfo::default()).unwrap()
}

/// Checks a customer's list: scores match `scores` (dense, customers x items), the
/// personal part is the oracle's top under the filter, the fill is popular and unseen.
fn check_list(model: &Model, scores: &Array2<f64>, c: usize, n: usize, source: Source) -> Result<(), TestCaseError> {
    let d = model.interactions();
    let cust = CustomerIdx(c as u32);
    let recs = model.recommend(cust, n);
    let (bought, _) = d.purchases(cust);
    let blocked = |j: usize| bought.contains(&(j as u32)) || d.seen_only(cust).contains(&(j as u32));
    let eligible: Vec<usize> = (0..scores.ncols()).filter(|&j| !blocked(j) && scores[[c, j]] > 0.0).collect();
    let personal: Vec<_> = recs.iter().filter(|r| r.source == source).collect();
    prop_assert_eq!(personal.len(), n.min(eligible.len()));
    prop_assert!(recs.iter().take(personal.len()).all(|r| r.source == source), "personal items come first");
    for pair in personal.windows(2) {
        prop_assert!(pair[0].score > pair[1].score || (pair[0].score == pair[1].score && pair[0].item < pair[1].item));
    }
    for r in &personal {
        let j = r.item.get();
        prop_assert!(!blocked(j), "customer {c} already has item {j}");
        prop_assert!(close(f64::from(r.score), scores[[c, j]]), "score {} vs {}", r.score, scores[[c, j]]);
    }
    let weakest = personal.iter().map(|r| f64::from(r.score)).fold(f64::INFINITY, f64::min);
    for &j in eligible.iter().filter(|&&j| !personal.iter().any(|r| r.item.get() == j)) {
        prop_assert!(scores[[c, j]] <= weakest + TOL);
    }
    let mut all: Vec<usize> = recs.iter().map(|r| r.item.get()).collect();
    prop_assert!(recs.iter().all(|r| !blocked(r.item.get())));
    all.sort_unstable();
    all.dedup();
    prop_assert_eq!(all.len(), recs.len());
    let buyable = model.popular().iter().filter(|&&j| !blocked(j as usize)).count();
    prop_assert_eq!(recs.len(), n.min(buyable));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn item_neighbours_match_brute_force(case in data()) {
        let model = fit(&case, Algorithm::ItemKnn);
        let p = model.params().similarity;
        let w = dense(model.weighted());
        let nb = dense(model.neighbors());
        for i in 0..w.ncols() {
            let oracle: Vec<f64> = (0..w.ncols())
                .map(|j| if i == j { 0.0 } else { oracle_sim(&p, w.column(i), w.column(j), nonempty(w.rows())) })
                .collect();
            let kept: Vec<(usize, f64)> = (0..w.ncols()).filter(|&j| nb[[i, j]] != 0.0).map(|j| (j, nb[[i, j]])).collect();
            check_top_k(&format!("item {i}"), &oracle, &kept, case.2)?;
        }
    }

    #[test]
    fn item_knn_scores_match_dense_product(case in data(), n in 1usize..8) {
        let model = fit(&case, Algorithm::ItemKnn);
        let scores = dense(model.weighted()).dot(&dense(model.neighbors()));
        for c in 0..scores.nrows() {
            check_list(&model, &scores, c, n, Source::ItemKnn)?;
        }
    }

    #[test]
    fn similar_customers_match_brute_force(case in data()) {
        let model = fit(&case, Algorithm::UserKnn);
        let p = model.params().similarity;
        let w = dense(model.weighted());
        for c in 0..w.nrows() {
            let oracle: Vec<f64> = (0..w.nrows())
                .map(|v| if v == c { 0.0 } else { oracle_sim(&p, w.row(c), w.row(v), nonempty(w.columns())) })
                .collect();
            let got = model.similar_customers(CustomerIdx(c as u32), case.2, p);
            let kept: Vec<(usize, f64)> = got.iter().map(|n| (n.index as usize, f64::from(n.sim))).collect();
            check_top_k(&format!("customer {c}"), &oracle, &kept, case.2)?;
            for n in &got {
                let shared = w.row(c).iter().zip(w.row(n.index as usize).iter()).filter(|(a, b)| **a != 0.0 && **b != 0.0).count();
                prop_assert_eq!(n.shared as usize, shared);
            }
        }
    }

    #[test]
    fn user_knn_scores_match_dense_product(case in data(), n in 1usize..8) {
        let model = fit(&case, Algorithm::UserKnn);
        let p = model.params().similarity;
        let w = dense(model.weighted());
        // Scores from the model's own neighbours (checked above): sum of sim(c, v) * W[v].
        let mut scores = Array2::zeros(w.dim());
        for c in 0..w.nrows() {
            for v in model.similar_customers(CustomerIdx(c as u32), case.2, p) {
                let row = &w.row(v.index as usize) * f64::from(v.sim);
                let mut target = scores.row_mut(c);
                target += &row;
            }
        }
        for c in 0..w.nrows() {
            check_list(&model, &scores, c, n, Source::UserKnn)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// A customer folded in from their own history gets exactly the model's list.
    #[test]
    fn fold_in_of_a_known_customer_matches(case in data(), n in 1usize..8, alg in 0usize..4) {
        let algorithm = [Algorithm::ItemKnn, Algorithm::UserKnn, Algorithm::Popularity, Algorithm::BuyAgain][alg];
        let model = fit(&case, algorithm);
        let d = model.interactions();
        let filter = cobuy::recommend::ResolvedFilter::exclude_bought(model.items().len());
        let scorer = model.scorer(&filter);
        let mut s = scorer.scratch();
        let mut got = Vec::new();
        for c in 0..d.customers().len() {
            let cust = CustomerIdx(c as u32);
            let (items, counts) = d.purchases(cust);
            let f = model.fold_in(items.to_vec(), counts.to_vec(), None, d.seen_only(cust).to_vec()).as_customer(Some(cust));
            scorer.recommend(&f.query(), n, &mut s, &mut got);
            prop_assert_eq!(&got, &model.recommend(cust, n));
        }
    }
}

/// The pruned cosine path (skips long columns) against the exhaustive path on skewed
/// generated data, large enough that pruning really stops early: asymmetric cosine with
/// alpha 0.5 is cosine by definition but never pruned.
#[test]
fn pruned_cosine_matches_exhaustive_on_generated_data() {
    use cobuy::ingest::{Columns, IngestOptions, read_purchases};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    cobuy::generate::generate(&cobuy::generate::GenerateParams::new(3_000, 400, 40_000, 5), &mut f).unwrap();
    let mut cols = Columns::new("customer_id", "item_id");
    cols.quantity = Some("quantity".into());
    cols.time = Some("timestamp".into());
    let data = read_purchases(&path, &IngestOptions::new(cols)).unwrap().interactions;
    // The third weighting decays so fast that most weights are exactly zero.
    let weightings = [
        Weighting { scheme: Scheme::Count, ..Weighting::default() },
        Weighting::default(),
        Weighting { scheme: Scheme::Binary, half_life_days: Some(0.5), reference_time: None },
    ];
    for weighting in weightings {
        let params = FitParams { algorithm: Algorithm::UserKnn, weighting, ..FitParams::default() };
        let model = Model::fit(data.clone(), &params, FitInfo::default()).unwrap();
        let exhaustive = SimilarityParams { measure: Measure::AsymmetricCosine { alpha: 0.5 }, ..Default::default() };
        for c in 0..model.customers().len() as u32 {
            let a = model.similar_customers(CustomerIdx(c), 20, SimilarityParams::default());
            let b = model.similar_customers(CustomerIdx(c), 20, exhaustive);
            assert_eq!(a.len(), b.len(), "customer {c}");
            for (x, y) in a.iter().zip(&b) {
                assert!((x.sim - y.sim).abs() <= 1e-5, "customer {c}: {x:?} vs {y:?}");
                if x.index != y.index {
                    // Only ties may swap: the other list holds the same row with the same score.
                    let twin = b.iter().find(|n| n.index == x.index).map(|n| n.sim);
                    assert!(
                        twin.is_some_and(|t| (t - x.sim).abs() <= 1e-5)
                            || (x.sim - a.last().unwrap().sim).abs() <= 1e-5,
                        "customer {c}: {x:?} vs {y:?}"
                    );
                }
            }
        }
    }
}

/// [`Ties::VisitOrder`] against a literal simulation of a row-by-row product feeding a
/// min-heap of k + 1 (implicit's `all_pairs_knn`): buyers in index order, each buyer's
/// items in index order, candidates offered newest-first-touched first, a full heap taking
/// only strictly better ones and dropping its weakest lowest-index entry. Binary data, so
/// ties are everywhere.
fn visit_order_oracle(w: &Array2<f64>, i: usize, k: usize) -> Vec<usize> {
    let inv: Vec<f64> = w.columns().into_iter().map(|c| 1.0 / c.dot(&c).sqrt()).collect();
    let (mut sums, mut order) = (vec![0.0f64; w.ncols()], Vec::new());
    for u in (0..w.nrows()).filter(|&u| w[[u, i]] != 0.0) {
        for j in (0..w.ncols()).filter(|&j| w[[u, j]] != 0.0) {
            if sums[j] == 0.0 {
                order.push(j);
            }
            sums[j] += w[[u, i]] * w[[u, j]];
        }
    }
    let weakest = |h: &[(f32, usize)]| (0..h.len()).min_by(|&a, &b| h[a].partial_cmp(&h[b]).unwrap()).unwrap();
    let mut heap: Vec<(f32, usize)> = Vec::new();
    for &j in order.iter().rev() {
        let sim = (sums[j] * inv[i] * inv[j]) as f32;
        if heap.len() < k + 1 {
            heap.push((sim, j));
        } else if sim > heap[weakest(&heap)].0 {
            heap.swap_remove(weakest(&heap));
            heap.push((sim, j));
        }
    }
    heap.retain(|&(_, j)| j != i);
    if heap.len() > k {
        heap.swap_remove(weakest(&heap));
    }
    let mut kept: Vec<usize> = heap.into_iter().map(|(_, j)| j).collect();
    kept.sort_unstable();
    kept
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn visit_order_ties_match_a_heap_kernel(
        cells in prop::collection::vec((0u32..10, 0u32..12), 1..70),
        k in 1usize..6,
    ) {
        let mut cells = cells;
        cells.sort_unstable();
        cells.dedup();
        let indptr: Vec<usize> = (0..=10).map(|c| cells.iter().filter(|e| e.0 < c).count()).collect();
        let indices: Vec<u32> = cells.iter().map(|e| e.1).collect();
        let x = cobuy::matrix::Csr::new((10, 12), indptr, indices, vec![1.0f32; cells.len()]);
        let params = SimilarityParams { ties: Ties::VisitOrder, ..Default::default() };
        let nb = cobuy::algo::item_knn::item_top_k(&x, k, params);
        let w = dense(&x);
        for i in (0..12).filter(|&i| w.column(i).sum() > 0.0) {
            let kept: Vec<usize> = nb.outer_view(i).unwrap().indices().iter().map(|&j| j as usize).collect();
            prop_assert_eq!(kept, visit_order_oracle(&w, i, k), "item {}", i);
        }
    }
}

/// RP3beta's walk probabilities, densely: step one from item i to customer u is x_ui over
/// i's column sum, step two from u to item j is x_uj over u's row sum, each raised to
/// alpha; the sum over u is divided by j's number of buyers raised to beta.
fn rp3_oracle(w: &Array2<f64>, alpha: f64, beta: f64) -> Array2<f64> {
    let (m, n) = w.dim();
    let mut sims = Array2::zeros((n, n));
    let col: Vec<f64> = (0..n).map(|j| w.column(j).sum()).collect();
    let row: Vec<f64> = (0..m).map(|u| w.row(u).sum()).collect();
    let buyers: Vec<f64> = (0..n).map(|j| w.column(j).iter().filter(|&&v| v != 0.0).count() as f64).collect();
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i && buyers[j] > 0.0) {
            let walk: f64 = (0..m)
                .filter(|&u| w[[u, i]] != 0.0 && w[[u, j]] != 0.0)
                .map(|u| (w[[u, i]] / col[i]).powf(alpha) * (w[[u, j]] / row[u]).powf(alpha))
                .sum();
            sims[[i, j]] = walk / buyers[j].powf(beta);
        }
    }
    sims
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn rp3beta_neighbours_match_the_random_walk(case in data(), alpha in 1u8..4, beta in 0u8..4) {
        let (alpha, beta) = (f32::from(alpha) * 0.5, f32::from(beta) * 0.25);
        let mut b = InteractionsBuilder::new();
        for &(c, i, q) in &case.0 {
            b.purchase(&format!("c{c}"), &format!("i{i}"), f64::from(q), None, None).unwrap();
        }
        let params = FitParams {
            algorithm: Algorithm::ItemKnn,
            neighbors: case.2,
            weighting: Weighting { scheme: scheme(case.3), ..Weighting::default() },
            similarity: SimilarityParams { measure: Measure::Rp3Beta { alpha, beta }, ..Default::default() },
            ..FitParams::default()
        };
        let model = Model::fit(b.finish().0, &params, FitInfo::default()).unwrap();
        let oracle = rp3_oracle(&dense(model.weighted()), f64::from(alpha), f64::from(beta));
        let nb = dense(model.neighbors());
        for i in 0..nb.nrows() {
            let kept: Vec<(usize, f64)> = (0..nb.ncols()).filter(|&j| nb[[i, j]] != 0.0).map(|j| (j, nb[[i, j]])).collect();
            check_top_k(&format!("item {i}"), oracle.row(i).as_slice().unwrap(), &kept, case.2)?;
        }
    }
}

#[test]
fn a_huge_k_lists_every_neighbour_without_reserving_room_for_k() {
    let mut b = InteractionsBuilder::new();
    for c in 0..6u32 {
        for i in 0..4u32 {
            if (c + i) % 3 != 0 {
                b.purchase(&format!("c{c}"), &format!("i{i}"), 1.0, None, None).unwrap();
            }
        }
    }
    let model = Model::fit(b.finish().0, &FitParams::default(), FitInfo::default()).unwrap();
    for ties in [Ties::LowestIndex, Ties::VisitOrder] {
        let p = SimilarityParams { ties, ..SimilarityParams::default() };
        let all = model.similar_customers(CustomerIdx(0), 1_000_000_000_000, p);
        let five = model.similar_customers(CustomerIdx(0), 5, p);
        assert_eq!(all, five, "{ties:?}: every other customer, as with k = 5");
    }
}
