//! Weighting, item-kNN, user-kNN, similar customers and fold-in against brute-force
//! computations on random small purchase logs.
//!
//! The oracle starts from the raw rows (purchases, returns, "seen" marks and times), never
//! from the model: it nets each pair, orders ids naturally, weighs the net counts by each
//! scheme's documented formula with time decay, computes every pairwise similarity by its
//! textbook formula, each row's top-k by the documented tie rule (score descending, then
//! index ascending) and every score as a dense sum, in f64 on dense ndarray matrices.
//! Values that f32 and f64 arithmetic may order differently may come in either order, but
//! rows with identical inputs tie exactly and must keep the lower index
//! (`common::check_ranking`); where a top-k cut falls between such near-equal values, what
//! depends on the choice is not checked (`common::top_k`).

use cobuy::algo::Algorithm;
use cobuy::algo::similarity::{Measure, SimilarityParams, Ties};
use cobuy::ids::CustomerIdx;
use cobuy::matrix::{InteractionsBuilder, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::recommend::{Filter, Recommendation, Source};
use ndarray::{Array1, Array2, ArrayView1};
use proptest::prelude::*;

use crate::common::{Corpus, check_ranking, decay, natural, near, top_k};

/// Relative tolerance between the code's f32 values and the oracle's f64 ones.
const TOL: f64 = 1e-5;
const DAY: i64 = 86_400;
/// Purchases fall on days 0 to `NOW`; time decay counts ages back from day `NOW`.
const NOW: u8 = 60;

/// Customer ids: some all-digit (they sort first, shorter first), the rest bytewise, so
/// natural order is neither numeric nor arrival order.
fn customer_id(c: u8) -> String {
    if c % 3 == 0 { c.to_string() } else { format!("c{c}") }
}

fn item_id(i: u8) -> String {
    if i % 3 == 0 { i.to_string() } else { format!("i{i}") }
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

fn weighting(s: u8, half_life: u8) -> Weighting {
    let half_life_days = [None, Some(10.0), Some(45.0)][usize::from(half_life % 3)];
    Weighting { scheme: scheme(s), half_life_days, reference_time: half_life_days.map(|_| i64::from(NOW) * DAY) }
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

/// The textbook similarity of a query row `a` to a candidate row `b`, `features` = Lift's
/// N, under time decay as documented (`cobuy::matrix::Weighting`): the query's weights
/// are undecayed, the candidate's decayed (`b`), and lengths are undecayed (`b_plain`, the
/// candidate's undecayed weights).
fn oracle_sim(
    p: &SimilarityParams,
    a: ArrayView1<f64>,
    b: ArrayView1<f64>,
    b_plain: ArrayView1<f64>,
    features: f64,
) -> f64 {
    let shared = a.iter().zip(b.iter()).filter(|(x, y)| **x != 0.0 && **y != 0.0).count() as f64;
    if shared == 0.0 || shared < f64::from(p.min_shared) {
        return 0.0;
    }
    let (na, nb) = (a.iter().filter(|x| **x != 0.0).count() as f64, b.iter().filter(|x| **x != 0.0).count() as f64);
    let sim = match p.measure {
        Measure::Cosine => a.dot(&b) / (a.dot(&a) * b_plain.dot(&b_plain)).sqrt(),
        Measure::AsymmetricCosine { alpha } => {
            let alpha = f64::from(alpha);
            a.dot(&b) / (a.dot(&a).powf(alpha) * b_plain.dot(&b_plain).powf(1.0 - alpha))
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

/// A random log: (customer, item, quantity, day) rows, where a negative quantity is a
/// return, and (customer, item) "seen" marks; then the fit's k, scheme, half-life and the
/// similarity's measure, shrinkage and minimum overlap.
#[derive(Debug, Clone)]
struct Case {
    rows: Vec<(u8, u8, i8, u8)>,
    seen: Vec<(u8, u8)>,
    k: usize,
    scheme: u8,
    half_life: u8,
    sim: (u8, u8, u8),
}

fn data() -> impl Strategy<Value = Case> {
    let quantity = prop::sample::select(vec![-2i8, -1, 1, 1, 2, 2, 3, 4]);
    (
        prop::collection::vec((0u8..14, 0u8..12, quantity, 0..=NOW), 1..90),
        prop::collection::vec((0u8..14, 0u8..12), 0..6),
        1usize..14,
        0u8..5,
        0u8..3,
        (0u8..5, 0u8..3, 0u8..3),
    )
        .prop_map(|(rows, seen, k, scheme, half_life, sim)| Case { rows, seen, k, scheme, half_life, sim })
}

/// What the rows mean, by the documented rules: ids in natural order; a pair is bought
/// when it has a purchase row and its quantities net above zero (its count is the net),
/// and "seen" (never recommended) when its returns cancel every purchase, or when it has
/// a seen mark and is not bought.
struct Raw {
    customers: Vec<String>,
    items: Vec<String>,
    counts: Array2<f64>,
    seen: Array2<bool>,
    /// The day of each bought pair's latest purchase row.
    last_day: Array2<f64>,
}

impl Raw {
    fn of(case: &Case) -> Raw {
        let ids = |v: Vec<String>| {
            let mut v = v;
            v.sort_by(|a, b| natural(a, b));
            v.dedup();
            v
        };
        let customers =
            ids(case.rows.iter().map(|r| r.0).chain(case.seen.iter().map(|s| s.0)).map(customer_id).collect());
        let items = ids(case.rows.iter().map(|r| r.1).chain(case.seen.iter().map(|s| s.1)).map(item_id).collect());
        let at = |c: u8, i: u8| {
            let r = customers.iter().position(|x| *x == customer_id(c)).unwrap();
            (r, items.iter().position(|x| *x == item_id(i)).unwrap())
        };
        let shape = (customers.len(), items.len());
        let (mut net, mut rows, mut purchased) =
            (Array2::zeros(shape), Array2::from_elem(shape, false), Array2::from_elem(shape, false));
        let mut last_day = Array2::from_elem(shape, f64::NEG_INFINITY);
        for &(c, i, q, d) in &case.rows {
            let p = at(c, i);
            net[p] += f64::from(q);
            rows[p] = true;
            if q > 0 {
                purchased[p] = true;
                last_day[p] = last_day[p].max(f64::from(d));
            }
        }
        let counts = Array2::from_shape_fn(shape, |p| if purchased[p] && net[p] > 0.0 { net[p] } else { 0.0 });
        let mut seen = Array2::from_shape_fn(shape, |p| rows[p] && counts[p] == 0.0);
        for &(c, i) in &case.seen {
            let p = at(c, i);
            seen[p] |= counts[p] == 0.0;
        }
        Raw { customers, items, counts, seen, last_day }
    }

    /// The weighted matrix: the scheme's formula over the corpus of these counts, each
    /// weight decayed by its pair's latest purchase.
    fn weights(&self, w: &Weighting) -> Array2<f64> {
        let mut x = self.plain(w);
        if let Some(h) = w.half_life_days {
            x.zip_mut_with(&self.last_day, |v, &d| *v *= decay(f64::from(NOW) - d, h));
        }
        x
    }

    /// The weighted matrix without time decay.
    fn plain(&self, w: &Weighting) -> Array2<f64> {
        Corpus::of(&self.counts).weigh_all(w.scheme, &self.counts)
    }

    /// Per item, buy-again's season: buyers whose last purchase is within 14 days of the
    /// decay reference (day `NOW` for a decaying weighting, else the newest purchase),
    /// against every item's share of them, `((recent + 1) / (buyers * share + 1))^(1/4)`.
    fn season(&self, w: &Weighting) -> Vec<f64> {
        let bought = |p: &(usize, usize)| self.counts[*p] > 0.0;
        let days = self.last_day.indexed_iter().filter(|(p, _)| bought(p)).map(|(_, &d)| d);
        let reference = if w.half_life_days.is_some() { f64::from(NOW) } else { days.fold(f64::MIN, f64::max) };
        let recent: Vec<f64> = self
            .last_day
            .columns()
            .into_iter()
            .zip(self.counts.columns())
            .map(|(d, c)| d.iter().zip(c).filter(|&(&d, &c)| c > 0.0 && d >= reference - 14.0).count() as f64)
            .collect();
        let buyers = self.buyers();
        let share = recent.iter().sum::<f64>() / buyers.iter().sum::<f64>().max(1.0);
        recent.iter().zip(&buyers).map(|(r, b)| ((r + 1.0) / (b * share + 1.0)).powf(0.25)).collect()
    }

    /// Buyers per item.
    fn buyers(&self) -> Vec<f64> {
        self.counts.columns().into_iter().map(|c| c.iter().filter(|&&x| x > 0.0).count() as f64).collect()
    }

    /// Items anyone bought, most buyers first, then by index.
    fn popular(&self) -> Vec<usize> {
        let buyers = self.buyers();
        let mut order: Vec<usize> = (0..buyers.len()).filter(|&j| buyers[j] > 0.0).collect();
        order.sort_by(|&a, &b| buyers[b].total_cmp(&buyers[a]).then(a.cmp(&b)));
        order
    }
}

fn fit(case: &Case, algorithm: Algorithm) -> (Model, Raw) {
    let mut b = InteractionsBuilder::new();
    for &(c, i, q, d) in &case.rows {
        b.purchase(&customer_id(c), &item_id(i), f64::from(q), None, Some(i64::from(d) * DAY)).unwrap();
    }
    for &(c, i) in &case.seen {
        b.seen(&customer_id(c), &item_id(i)).unwrap();
    }
    let (s, m, sh, ms) = (case.scheme, case.sim.0, case.sim.1, case.sim.2);
    let params = FitParams {
        algorithm,
        neighbors: case.k,
        weighting: weighting(s, case.half_life),
        similarity: similarity(m, sh, ms),
        ..FitParams::default()
    };
    let model = Model::fit(b.finish().0, &params, FitInfo::default()).unwrap();
    let raw = Raw::of(case);
    // The oracle's indices are the model's: ids in natural order.
    assert_eq!(model.customers().iter().collect::<Vec<_>>(), raw.customers);
    assert_eq!(model.items().iter().collect::<Vec<_>>(), raw.items);
    (model, raw)
}

/// Item `i`'s similarity to every item (0 to itself): its undecayed column (in `x`)
/// against the others' decayed ones (in `w`).
pub(crate) fn item_sims(p: &SimilarityParams, x: &Array2<f64>, w: &Array2<f64>, i: usize) -> Vec<f64> {
    let n = nonempty(w.rows());
    (0..w.ncols()).map(|j| if i == j { 0.0 } else { oracle_sim(p, x.column(i), w.column(j), x.column(j), n) }).collect()
}

/// Whether items `a` and `b` are alike as candidates (tie exactly).
pub(crate) fn same_items(x: &Array2<f64>, w: &Array2<f64>, a: usize, b: usize) -> bool {
    x.column(a) == x.column(b) && w.column(a) == w.column(b)
}

/// Whether customers `a` and `b` are alike as candidates (tie exactly).
fn same_customers(x: &Array2<f64>, w: &Array2<f64>, a: usize, b: usize) -> bool {
    x.row(a) == x.row(b) && w.row(a) == w.row(b)
}

/// Every item's neighbours by the definition (`x` undecayed, `w` decayed weights): `None`
/// where the cut at k is undecidable.
fn item_neighbours(p: &SimilarityParams, x: &Array2<f64>, w: &Array2<f64>, k: usize) -> Vec<Option<Vec<(usize, f64)>>> {
    (0..w.ncols())
        .map(|i| {
            let sims = item_sims(p, x, w, i);
            let kept = top_k(&sims, k, TOL, |a, b| same_items(x, w, a, b))?;
            Some(kept.into_iter().map(|j| (j, sims[j])).collect())
        })
        .collect()
}

/// Item-kNN scores of a weighted row: the sum of its items' neighbour rows, each times the
/// item's weight; `None` when one of those rows is undecidable.
fn item_knn_scores(neighbours: &[Option<Vec<(usize, f64)>>], q: ArrayView1<f64>) -> Option<Array1<f64>> {
    let mut s = Array1::zeros(q.len());
    for (i, &wi) in q.iter().enumerate().filter(|(_, w)| **w != 0.0) {
        for &(j, sim) in neighbours[i].as_ref()? {
            s[j] += wi * sim;
        }
    }
    Some(s)
}

/// Similarities of an undecayed weighted row `q` to every customer's row (`own`
/// excluded), `x` and `w` the undecayed and decayed weights.
fn customer_sims(
    p: &SimilarityParams,
    x: &Array2<f64>,
    w: &Array2<f64>,
    q: ArrayView1<f64>,
    own: Option<usize>,
) -> Vec<f64> {
    let n = nonempty(w.columns());
    (0..w.nrows()).map(|v| if Some(v) == own { 0.0 } else { oracle_sim(p, q, w.row(v), x.row(v), n) }).collect()
}

/// User-kNN scores of an undecayed weighted row `q`: its k most similar customers' decayed
/// rows, each times the similarity; `None` when the neighbours are undecidable.
fn user_knn_scores(
    p: &SimilarityParams,
    x: &Array2<f64>,
    w: &Array2<f64>,
    q: ArrayView1<f64>,
    own: Option<usize>,
    k: usize,
) -> Option<Array1<f64>> {
    let sims = customer_sims(p, x, w, q, own);
    let mut s = Array1::zeros(w.ncols());
    for v in top_k(&sims, k, TOL, |a, b| same_customers(x, w, a, b))? {
        s.scaled_add(sims[v], &w.row(v));
    }
    Some(s)
}

/// Checks a list of recommendations against the definition: first the personal part
/// (`source`), the top of `scores` over the items not `blocked` (`None`: undecidable,
/// unchecked); then popular fill: the most bought items not blocked nor listed, in
/// popularity order, each scored `fill(j)`.
fn check_list(
    recs: &[Recommendation],
    scores: Option<&Array1<f64>>,
    blocked: &[bool],
    n: usize,
    source: Source,
    popular: &[usize],
    fill: impl Fn(usize) -> f64,
) -> Result<(), String> {
    let personal = if source == Source::Popular { 0 } else { recs.iter().take_while(|r| r.source == source).count() };
    let (mine, rest) = recs.split_at(personal);
    if let Some(s) = scores {
        let oracle: Vec<f64> = (0..blocked.len()).map(|j| if blocked[j] { 0.0 } else { s[j] }).collect();
        let got: Vec<(usize, f64)> = mine.iter().map(|r| (r.item.get(), f64::from(r.score))).collect();
        check_ranking(&got, &oracle, n, TOL, |_, _| false)?;
    }
    if mine.iter().any(|r| blocked[r.item.get()]) {
        return Err(format!("a blocked item is recommended: {recs:?}"));
    }
    let listed = |j: usize| mine.iter().any(|r| r.item.get() == j);
    let want: Vec<usize> = popular.iter().copied().filter(|&j| !blocked[j] && !listed(j)).take(n - personal).collect();
    let got: Vec<usize> = rest.iter().map(|r| r.item.get()).collect();
    if got != want
        || rest.iter().any(|r| r.source != Source::Popular || !near(f64::from(r.score), fill(r.item.get()), TOL))
    {
        return Err(format!("fill {rest:?}, want items {want:?}"));
    }
    Ok(())
}

/// The items customer `c` may not get: bought or seen.
fn blocked_row(raw: &Raw, c: usize) -> Vec<bool> {
    (0..raw.items.len()).map(|j| raw.counts[[c, j]] > 0.0 || raw.seen[[c, j]]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn weights_follow_the_documented_formulas(case in data()) {
        let (model, raw) = fit(&case, Algorithm::ItemKnn);
        let want = raw.weights(&model.params().weighting);
        let got = model.weighted();
        prop_assert_eq!(got.shape(), want.dim());
        prop_assert_eq!(got.nnz(), raw.counts.iter().filter(|&&c| c > 0.0).count(), "one entry per bought pair");
        for (c, row) in got.outer_iterator().enumerate() {
            for (j, &v) in row.iter() {
                prop_assert!(raw.counts[[c, j]] > 0.0, "an entry for ({}, {}), which was not bought", c, j);
                prop_assert!(near(f64::from(v), want[[c, j]], TOL), "weight of ({c}, {j}): {v} vs {}", want[[c, j]]);
            }
            let seen: Vec<u32> = (0..raw.items.len()).filter(|&j| raw.seen[[c, j]]).map(|j| j as u32).collect();
            prop_assert_eq!(model.interactions().seen_only(CustomerIdx(c as u32)), &seen[..]);
        }
    }

    #[test]
    fn item_neighbours_match_brute_force(case in data()) {
        let (model, raw) = fit(&case, Algorithm::ItemKnn);
        let p = model.params().similarity;
        let (x, w) = (raw.plain(&model.params().weighting), raw.weights(&model.params().weighting));
        let nb = model.neighbors();
        for i in 0..w.ncols() {
            let oracle = item_sims(&p, &x, &w, i);
            let row = nb.outer_view(i).unwrap();
            let mut kept: Vec<(usize, f64)> = row.iter().map(|(j, &v)| (j, f64::from(v))).collect();
            kept.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            check_ranking(&kept, &oracle, case.k, TOL, |a, b| same_items(&x, &w, a, b))
                .map_err(|e| TestCaseError::fail(format!("item {i}: {e}")))?;
        }
    }

    #[test]
    fn item_knn_lists_match_the_dense_sums(case in data(), n in 1usize..8) {
        let (model, raw) = fit(&case, Algorithm::ItemKnn);
        let (x, w) = (raw.plain(&model.params().weighting), raw.weights(&model.params().weighting));
        let neighbours = item_neighbours(&model.params().similarity, &x, &w, case.k);
        let popular = raw.popular();
        prop_assert_eq!(model.popular().iter().map(|&j| j as usize).collect::<Vec<_>>(), popular.clone());
        for c in 0..w.nrows() {
            let scores = item_knn_scores(&neighbours, w.row(c));
            let recs = model.recommend(CustomerIdx(c as u32), n);
            check_list(&recs, scores.as_ref(), &blocked_row(&raw, c), n, Source::ItemKnn, &popular, |_| 0.0)
                .map_err(|e| TestCaseError::fail(format!("customer {c}: {e}")))?;
        }
    }

    #[test]
    fn similar_customers_match_brute_force(case in data()) {
        let (model, raw) = fit(&case, Algorithm::UserKnn);
        let p = model.params().similarity;
        let (x, w) = (raw.plain(&model.params().weighting), raw.weights(&model.params().weighting));
        for c in 0..w.nrows() {
            let oracle = customer_sims(&p, &x, &w, x.row(c), Some(c));
            let got = model.similar_customers(CustomerIdx(c as u32), case.k, p);
            let kept: Vec<(usize, f64)> = got.iter().map(|n| (n.index as usize, f64::from(n.sim))).collect();
            check_ranking(&kept, &oracle, case.k, TOL, |a, b| same_customers(&x, &w, a, b))
                .map_err(|e| TestCaseError::fail(format!("customer {c}: {e}")))?;
            for n in &got {
                let shared = (0..w.ncols()).filter(|&j| raw.counts[[c, j]] > 0.0 && raw.counts[[n.index as usize, j]] > 0.0).count();
                prop_assert_eq!(n.shared as usize, shared);
            }
        }
    }

    #[test]
    fn user_knn_lists_match_the_dense_sums(case in data(), n in 1usize..8) {
        let (model, raw) = fit(&case, Algorithm::UserKnn);
        let p = model.params().similarity;
        let (x, w) = (raw.plain(&model.params().weighting), raw.weights(&model.params().weighting));
        let popular = raw.popular();
        for c in 0..w.nrows() {
            let scores = user_knn_scores(&p, &x, &w, x.row(c), Some(c), case.k);
            let recs = model.recommend(CustomerIdx(c as u32), n);
            check_list(&recs, scores.as_ref(), &blocked_row(&raw, c), n, Source::UserKnn, &popular, |_| 0.0)
                .map_err(|e| TestCaseError::fail(format!("customer {c}: {e}")))?;
        }
    }
}

/// A basket to fold in: net counts and latest purchase days per item, the items seen, and
/// the model customer it is (if any).
type Query = (Array1<f64>, Array1<f64>, Vec<bool>, Option<usize>);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Fold-in weighs a basket with the model's corpus statistics and scores it as the
    /// model scores its own customers: new baskets (items, counts, purchase days, seen
    /// items) and every known customer's own history get the lists the definitions give.
    #[test]
    fn fold_in_matches_the_definition(
        case in data(),
        baskets in prop::collection::vec(prop::collection::vec((0u8..12, 1u8..4, 0..=NOW), 1..6), 1..4),
        n in 1usize..8,
        alg in 0usize..4,
    ) {
        let algorithm = [Algorithm::ItemKnn, Algorithm::UserKnn, Algorithm::Popularity, Algorithm::BuyAgain][alg];
        let (model, raw) = fit(&case, algorithm);
        // A log whose returns cancel every purchase has no corpus to weigh a basket by
        // (ingest refuses it: "nothing kept"); BM25's mean length is then 0.
        prop_assume!(raw.counts.iter().any(|&c| c > 0.0));
        let params = *model.params();
        let (x, w) = (raw.plain(&params.weighting), raw.weights(&params.weighting));
        let corpus = Corpus::of(&raw.counts);
        let (items, customers) = (raw.items.len(), raw.customers.len());
        let neighbours = item_neighbours(&params.similarity, &x, &w, case.k);
        let buyers = raw.buyers();
        let repeaters: Vec<f64> = raw.counts.columns().into_iter().map(|c| c.iter().filter(|&&x| x >= 2.0).count() as f64).collect();
        let season = raw.season(&params.weighting);
        let popular = raw.popular();
        let filter = model.filter(&Filter::default()).unwrap();
        let scorer = model.scorer(&filter);
        let mut s = scorer.scratch();
        let mut got = Vec::new();
        let mut queries: Vec<Query> = (0..customers)
            .map(|c| (raw.counts.row(c).to_owned(), raw.last_day.row(c).to_owned(), raw.seen.row(c).to_vec(), Some(c)))
            .collect();
        for basket in &baskets {
            let (mut counts, mut days) = (Array1::zeros(items), Array1::from_elem(items, f64::NEG_INFINITY));
            for &(i, q, d) in basket {
                let j = usize::from(i) % items;
                counts[j] += f64::from(q);
                days[j] = f64::max(days[j], f64::from(d));
            }
            // The first unbought item, if any, was seen.
            let seen: Vec<bool> = (0..items).map(|j| Some(j) == (0..items).find(|&x| counts[x] == 0.0)).collect();
            queries.push((counts, days, seen, None));
        }
        for (counts, days, seen, own) in queries {
            let bought: Vec<usize> = (0..items).filter(|&j| counts[j] > 0.0).collect();
            let plain = corpus.weigh(params.weighting.scheme, counts.view());
            let mut q = plain.clone();
            if let Some(h) = params.weighting.half_life_days {
                q.zip_mut_with(&days, |v, &d| *v *= decay(f64::from(NOW) - d, h));
            }
            let f = model.fold_in(
                bought.iter().map(|&j| j as u32).collect(),
                bought.iter().map(|&j| counts[j] as f32).collect(),
                Some(bought.iter().map(|&j| days[j] as i64 * DAY).collect()),
                (0..items).filter(|&j| seen[j]).map(|j| j as u32).collect(),
            );
            let f = f.as_customer(own.map(|c| CustomerIdx(c as u32)));
            scorer.recommend(&f.query(), n, &mut s, &mut got);
            let buy_again = algorithm == Algorithm::BuyAgain;
            let blocked: Vec<bool> = (0..items).map(|j| seen[j] || (!buy_again && counts[j] > 0.0)).collect();
            let (source, scores) = match algorithm {
                Algorithm::ItemKnn => (Source::ItemKnn, item_knn_scores(&neighbours, q.view())),
                Algorithm::UserKnn => {
                    (Source::UserKnn, user_knn_scores(&params.similarity, &x, &w, plain.view(), own, case.k))
                }
                Algorithm::BuyAgain => (Source::BuyAgain, Some(Array1::from_shape_fn(items, |j| {
                    q[j] * ((repeaters[j] + 1.0) / (buyers[j] + 2.0)).sqrt() * season[j]
                }))),
                _ => (Source::Popular, None),
            };
            let fill = |j: usize| if algorithm == Algorithm::Popularity { buyers[j] / customers as f64 } else { 0.0 };
            check_list(&got, scores.as_ref(), &blocked, n, source, &popular, fill)
                .map_err(|e| TestCaseError::fail(format!("{algorithm:?}, customer {own:?}, counts {counts}: {e}")))?;
        }
    }
}

/// Exact ties are settled by the lower index, which is natural id order: customers whose
/// purchases are identical have the same similarity to anyone, bit for bit, and items
/// bought alike by a customer's only neighbour get the same score.
#[test]
fn exact_ties_go_to_the_lowest_ids_in_natural_order() {
    let mut b = InteractionsBuilder::new();
    let mut buy = |c: &str, items: &[&str]| {
        for i in items {
            b.purchase(c, i, 1.0, None, None).unwrap();
        }
    };
    buy("q", &["x", "y"]);
    buy("z", &["x", "y"]);
    // Four identical customers; natural order 9, 00, 10, 007 (digits by length, then bytes).
    for c in ["10", "007", "9", "00"] {
        buy(c, &["x"]);
    }
    // A customer sharing only y with q, and one buying the items to recommend, in an
    // order unlike their natural order (9 < 10 < a < b).
    buy("w", &["y", "w1"]);
    buy("n", &["solo", "b", "a", "10", "9"]);
    buy("m", &["solo"]);
    let data = b.finish().0;
    let params = FitParams {
        algorithm: Algorithm::UserKnn,
        weighting: Weighting { scheme: Scheme::Binary, ..Weighting::default() },
        neighbors: 1,
        ..FitParams::default()
    };
    let model = Model::fit(data.clone(), &params, FitInfo::default()).unwrap();
    let id = |c: &cobuy::algo::similarity::Neighbor| model.customers().id(c.index).to_string();
    let q = model.customer("q").unwrap();
    let got = model.similar_customers(q, 3, SimilarityParams::default());
    let ids: Vec<String> = got.iter().map(id).collect();
    assert_eq!(ids, ["z", "9", "00"], "{got:?}");
    assert_eq!(got[0].sim, 1.0);
    assert_eq!(got[1].sim, got[2].sim);
    assert!((f64::from(got[1].sim) - 0.5f64.sqrt()).abs() < 1e-7, "{got:?}");
    // All five twins and w: w's cosine with q is 1/2, below the twins' 1/sqrt(2).
    let all: Vec<String> = model.similar_customers(q, 100, SimilarityParams::default()).iter().map(id).collect();
    assert_eq!(all, ["z", "9", "00", "10", "007", "w"]);

    // m's only neighbour is n; n's other items all score the same for m.
    let m = model.customer("m").unwrap();
    let items = |n: usize| -> Vec<String> {
        model
            .recommend(m, n)
            .iter()
            .filter(|r| r.source == Source::UserKnn)
            .map(|r| model.items().id(r.item.0).to_string())
            .collect()
    };
    assert_eq!(items(10), ["9", "10", "a", "b"]);
    assert_eq!(items(3), ["9", "10", "a"]);
    assert!(model.recommend(m, 4).windows(2).all(|w| w[0].score == w[1].score));

    // Items bought by n alone are identical columns: solo's two neighbours among them (all
    // at 1/sqrt(2)) are the lowest ids, whatever order popularity relabelling visits them.
    let items =
        Model::fit(data, &FitParams { algorithm: Algorithm::ItemKnn, neighbors: 2, ..params }, FitInfo::default())
            .unwrap();
    let solo = items.item("solo").unwrap().get();
    let kept: Vec<&str> =
        items.neighbors().outer_view(solo).unwrap().indices().iter().map(|&j| items.items().id(j)).collect();
    assert_eq!(kept, ["9", "10"]);
}

/// A CSR matrix, densely.
pub(crate) fn dense(m: &cobuy::matrix::Csr) -> Array2<f64> {
    let mut d = Array2::zeros(m.shape());
    for (r, row) in m.outer_iterator().enumerate() {
        for (c, &v) in row.iter() {
            d[[r, c]] = f64::from(v);
        }
    }
    d
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
        let nb = cobuy::algo::item_knn::item_top_k(&x, None, k, params);
        let w = dense(&x);
        for i in (0..12).filter(|&i| w.column(i).sum() > 0.0) {
            let kept: Vec<usize> = nb.outer_view(i).unwrap().indices().iter().map(|&j| j as usize).collect();
            prop_assert_eq!(kept, visit_order_oracle(&w, i, k), "item {}", i);
        }
    }
}

/// RP3beta's walk probabilities, densely: step one from item i to customer u is x_ui over
/// i's column sum, step two from u to item j is w_uj over u's row sum of x, each raised to
/// alpha (x undecayed, w decayed weights); the sum over u is divided by j's number of
/// buyers raised to beta.
fn rp3_oracle(x: &Array2<f64>, w: &Array2<f64>, alpha: f64, beta: f64) -> Array2<f64> {
    let (m, n) = w.dim();
    let mut sims = Array2::zeros((n, n));
    let col: Vec<f64> = (0..n).map(|j| x.column(j).sum()).collect();
    let row: Vec<f64> = (0..m).map(|u| x.row(u).sum()).collect();
    let buyers: Vec<f64> = (0..n).map(|j| x.column(j).iter().filter(|&&v| v != 0.0).count() as f64).collect();
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i && buyers[j] > 0.0) {
            let walk: f64 = (0..m)
                .filter(|&u| x[[u, i]] != 0.0 && x[[u, j]] != 0.0)
                .map(|u| (x[[u, i]] / col[i]).powf(alpha) * (w[[u, j]] / row[u]).powf(alpha))
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
        let case = Case { sim: (0, 0, 0), ..case };
        let (model, raw) = fit(&case, Algorithm::ItemKnn);
        let mut params = *model.params();
        params.similarity = SimilarityParams { measure: Measure::Rp3Beta { alpha, beta }, ..Default::default() };
        let model = Model::fit(model.interactions().clone(), &params, FitInfo::default()).unwrap();
        let (x, w) = (raw.plain(&params.weighting), raw.weights(&params.weighting));
        let oracle = rp3_oracle(&x, &w, f64::from(alpha), f64::from(beta));
        let nb = model.neighbors();
        for i in 0..w.ncols() {
            let mut kept: Vec<(usize, f64)> = nb.outer_view(i).unwrap().iter().map(|(j, &v)| (j, f64::from(v))).collect();
            kept.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            check_ranking(&kept, oracle.row(i).as_slice().unwrap(), case.k, TOL, |a, b| same_items(&x, &w, a, b))
                .map_err(|e| TestCaseError::fail(format!("item {i}: {e}")))?;
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
