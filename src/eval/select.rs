//! `algorithm = auto`: choose the recommender on the user's own purchases.
//!
//! 1. Carve validation rows from the rows given: the most recent tenth of the purchases
//!    when every purchase has a time and that window holds at least [`MIN_WINDOW`]
//!    measurable customers (the future is never used to predict the past); otherwise a
//!    seeded random fifth of each customer's items. With fewer than [`MIN_RANDOM`]
//!    measurable customers nothing is measured and item-kNN is taken, and the record says
//!    so.
//!    Above [`MAX_CUSTOMERS`] customers, a seeded sample of them (all their rows) stands
//!    for the data, so that choosing costs about the same at any size; a file can be read
//!    keeping only their rows ([`reading_sample`], [`choose_sampled`]).
//! 2. Measure every family at its defaults (item-kNN, RP3beta, user-kNN, EASE where its
//!    dense system is small enough, ALS, popularity; buy-again too when bought items may be
//!    recommended), then refine the two best families one dimension at a time (weighting
//!    and time decay together, then the family's main parameter), moving only on a strict
//!    gain. For all items, blend the best collaborative candidate with buy-again at a few
//!    weights. The dense candidates (EASE, ALS) are measured within a [`Budget`]; each one
//!    skipped is recorded with its reason.
//! 3. Return the best parameters and a [`Selection`] record; the caller refits on all rows.
//!
//! Deterministic: the candidates and their order depend only on the data and the
//! parameters, scores do not depend on the number of threads, and ties go to the earlier
//! candidate, so the same rows give the same choice, and the same model bytes, anywhere.

use crate::algo::Algorithm;
use crate::algo::similarity::{Measure, SimilarityParams};
use crate::ingest::{CustomerSample, PurchaseLog};
use crate::matrix::Scheme;
use crate::model::{FitParams, Selection, Tried, describe};

use super::metrics::Metric;
use super::split::{Cutoff, SplitMethod, id_hash};
use super::{EvalError, Prepared, Target, prepare_within};

/// Measurable customers the most recent window must hold to be the validation split.
pub const MIN_WINDOW: u64 = 100;
/// Measurable customers below which nothing is measured.
pub const MIN_RANDOM: u64 = 20;
/// The cut-off of the objective, NDCG@K.
pub const K: usize = 10;
/// EASE is a candidate only when its smaller dense side (items or customers) is at most
/// this: a 12,000 x 12,000 solve takes about half a minute on two cores.
pub const EASE_MAX_SIDE: usize = 12_000;
/// What the search may spend on its dense candidates, whose cost grows with the catalogue
/// where the neighbourhood methods' sparse work does not. Deterministic (estimated from
/// the data's shape, never timed), so the same data gets the same candidates anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// ALS is measured only when its validation scoring (measured customers x items x
    /// factors multiply-adds: each customer's factors against every item's) is at most
    /// this. Default 40 billion: 81 billion (12,580 x 100,000 x 64) took 36 s on two
    /// loaded cores, more than all the neighbourhood candidates together.
    pub als_scoring: u64,
    /// EASE candidates are measured while their dense solves (side³ multiply-adds each)
    /// add up to at most this. Default 3,000 billion: three 10,000 x 10,000 solves, about
    /// two minutes on two loaded cores; at the sides of The Complete Journey or UCI Online
    /// Retail (2,000 to 4,000) it allows the whole search.
    pub ease_solves: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { als_scoring: 40_000_000_000, ease_solves: 3_000_000_000_000 }
    }
}
/// Customers the search works on at most: above, a seeded sample of customers (all their
/// rows) stands for the data, so that choosing costs about the same on a million customers
/// as on this many.
pub const MAX_CUSTOMERS: usize = 50_000;
/// The share of purchases in the recent window.
const WINDOW_SHARE: f64 = 0.1;
/// The share of each customer's items held out at random.
const HOLDOUT_SHARE: f64 = 0.2;
/// Seed of the random holdout.
const SEED: u64 = 0x00c0_b0b0_a070;
/// Weights of the blend with buy-again tried for all items (see
/// [`FitParams::buy_again_weight`]).
const BLEND_WEIGHTS: [f32; 5] = [0.5, 1.0, 2.0, 4.0, 8.0];
/// Half-lives (days) tried as time decay.
const HALF_LIVES: [f64; 4] = [365.0, 180.0, 90.0, 45.0];

/// Parameters the user fixed: the search leaves them as given in [`AutoParams::base`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pins {
    /// The weighting scheme.
    pub weighting: bool,
    /// The decay half-life (and reference date).
    pub half_life: bool,
    /// The number of neighbours.
    pub neighbors: bool,
    /// The similarity measure (item-kNN and user-kNN); RP3beta is then not tried.
    pub similarity: bool,
    /// EASE's lambda.
    pub ease_lambda: bool,
    /// ALS's factors and regularisation.
    pub als: bool,
    /// The weight of the blend with buy-again.
    pub buy_again_weight: bool,
}

/// What to choose for.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoParams {
    /// Every value the search does not vary, and the pinned ones.
    pub base: FitParams,
    /// What the user fixed.
    pub pins: Pins,
    /// New items (the default) or all items (when bought items may be recommended).
    pub target: Target,
    /// Customers the search works on at most ([`MAX_CUSTOMERS`] by default): above, a
    /// seeded sample of customers (all their rows) stands for the data.
    pub max_customers: usize,
    /// What the dense candidates may cost.
    pub budget: Budget,
}

/// Chooses parameters on validation rows carved from the rows `among` marks (all when
/// `None`); `progress` sees each candidate as it is measured. Returns the winner (item-kNN
/// at its defaults when nothing could be measured) and the record of the choice.
pub fn choose(
    log: &PurchaseLog,
    among: Option<&[bool]>,
    auto: &AutoParams,
    progress: &mut dyn FnMut(&Tried),
) -> Result<(FitParams, Selection), EvalError> {
    choose_in(log, among, None, auto, progress)
}

/// What a read keeps for [`choose_sampled`] ([`crate::ingest::read_log_sample_with_progress`]):
/// the customers the search would sample, so that a file too large to hold row by row
/// holds only their rows.
pub fn reading_sample(auto: &AutoParams) -> CustomerSample {
    CustomerSample { max: auto.max_customers.max(1), rank: |id| id_hash(SEED, id) }
}

/// [`choose`] on a log read with [`reading_sample`], whose file has `with_purchases`
/// customers with a purchase row: the same choice, and the same record, as on the whole
/// file.
pub fn choose_sampled(
    log: &PurchaseLog,
    with_purchases: u64,
    auto: &AutoParams,
    progress: &mut dyn FnMut(&Tried),
) -> Result<(FitParams, Selection), EvalError> {
    choose_in(log, None, Some(with_purchases), auto, progress)
}

fn choose_in(
    log: &PurchaseLog,
    among: Option<&[bool]>,
    with_purchases: Option<u64>,
    auto: &AutoParams,
    progress: &mut dyn FnMut(&Tried),
) -> Result<(FitParams, Selection), EvalError> {
    let objective = format!("NDCG@{K} on {}", target_words(auto.target));
    let fallback = family(auto, Algorithm::ItemKnn, false);
    let all: Vec<bool> = match among {
        Some(a) => a.to_vec(),
        None => vec![true; log.rows.len()],
    };
    let (among, sampled) = sample(log, all, auto.max_customers.max(1), with_purchases);
    let carved = carve(log, &among, auto.target).map(|(p, split)| match &sampled {
        Some(s) => (p, format!("{split}; on {s}")),
        None => (p, split),
    });
    let (prepared, split) = match carved {
        Ok(p) => p,
        Err(why) => {
            let reason = format!("{why}: nothing to measure on, so {} by default", describe(&fallback));
            let selection = Selection { split: why, objective, reason, ..Selection::default() };
            return Ok((fallback, selection));
        }
    };
    let customers = measured(&prepared, auto.target);
    let has_times = log.rows.iter().any(|r| r.time.is_some());
    let mut search =
        Search { prepared: &prepared, target: auto.target, budget: auto.budget, tried: Vec::new(), progress };

    // Stage 1: every family at its defaults.
    let mut families: Vec<FitParams> = vec![
        family(auto, Algorithm::ItemKnn, false),
        family(auto, Algorithm::ItemKnn, true),
        family(auto, Algorithm::UserKnn, false),
        family(auto, Algorithm::Ease, false),
        family(auto, Algorithm::Als, false),
        family(auto, Algorithm::Popularity, false),
    ];
    if auto.pins.similarity {
        families.remove(1);
    }
    if auto.target == Target::AllItems {
        families.push(family(auto, Algorithm::BuyAgain, false));
    }
    let ease_side = ease_side(&prepared);
    let mut leaders: Vec<(f64, usize)> = Vec::new();
    for p in families {
        let skip = (p.algorithm == Algorithm::Ease && ease_side > EASE_MAX_SIDE).then(|| {
            format!("not tried: its smaller side has {ease_side} rows, above the {EASE_MAX_SIDE} EASE is tried at")
        });
        let at = search.tried.len();
        if let Some(score) = search.measure(p, skip) {
            if p.algorithm != Algorithm::Popularity {
                leaders.push((score, at));
            }
        }
    }
    leaders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));

    // Stages 2 and 3: the two best families, one parameter at a time.
    for &(score, at) in leaders.iter().take(2) {
        let mut best = (score, search.tried[at].params);
        for dimension in 0..2 {
            for p in variants(&best.1, dimension, auto.pins, has_times) {
                if let Some(s) = search.measure(p, None) {
                    if s > best.0 {
                        best = (s, p);
                    }
                }
            }
        }
    }

    // Stage 4, all items: the best collaborative candidate blended with buy-again (bought
    // items compete with new ones), at weights from "new items first" to "own items first".
    if auto.target == Target::AllItems && !auto.pins.buy_again_weight {
        let collaborative = |t: &&Tried| !matches!(t.params.algorithm, Algorithm::Popularity | Algorithm::BuyAgain);
        let best =
            search.tried.iter().filter(collaborative).filter_map(|t| t.score.map(|s| (s, t.params))).fold(
                None::<(f64, FitParams)>,
                |b, (s, p)| if b.is_none_or(|(bs, _)| s > bs) { Some((s, p)) } else { b },
            );
        if let Some((_, p)) = best {
            let mut blend = (f64::NEG_INFINITY, 0f32);
            for &w in &BLEND_WEIGHTS {
                if let Some(s) = search.measure(FitParams { buy_again_weight: w, ..p }, None) {
                    if s > blend.0 {
                        blend = (s, w);
                    }
                }
            }
            // Then about halfway (geometrically) to the best weight's neighbours on the grid.
            if blend.0.is_finite() {
                for f in [0.7, 1.4] {
                    search.measure(FitParams { buy_again_weight: scaled(blend.1, f), ..p }, None);
                }
            }
        }
    }

    let tried = search.tried;
    let chosen = best_of(&tried);
    let (params, reason) = match chosen {
        Some(c) => (tried[c].params, reason(&tried, c, &objective)),
        None => (fallback, format!("no candidate could be measured: {} by default", describe(&fallback))),
    };
    Ok((params, Selection { split, objective, customers, tried, chosen, reason }))
}

/// Measures candidates on the validation split and records them.
struct Search<'a, 'p> {
    prepared: &'a Prepared,
    target: Target,
    budget: Budget,
    tried: Vec<Tried>,
    progress: &'p mut dyn FnMut(&Tried),
}

impl Search<'_, '_> {
    /// Measures `params` (unless `skip` says why not, or it was measured already) and
    /// records it; returns its score.
    fn measure(&mut self, params: FitParams, skip: Option<String>) -> Option<f64> {
        if let Some(t) = self.tried.iter().find(|t| t.params == params) {
            return t.score;
        }
        let skip = skip.or_else(|| self.over_budget(&params));
        let label = describe(&params);
        let (score, note) = match skip {
            Some(why) => (None, Some(why)),
            None => match self.prepared.evaluate(&label, &params, &[K], &[self.target]) {
                Ok(runs) => match runs.first() {
                    Some(r) => (Some(r.table.get(Metric::Ndcg, K).unwrap_or(0.0)), None),
                    None => (None, Some("recommends only bought items".to_string())),
                },
                Err(e) => (None, Some(e.to_string())),
            },
        };
        self.tried.push(Tried { label, params, score, note });
        (self.progress)(self.tried.last().expect("just pushed"));
        score
    }

    /// Why measuring `p` would cost more than the [`Budget`] allows, if it would.
    fn over_budget(&self, p: &FitParams) -> Option<String> {
        match p.algorithm {
            Algorithm::Als => {
                let customers = measured(self.prepared, self.target);
                let (items, factors) = (self.prepared.train().items().len() as u64, p.als.factors as u64);
                let work = customers.saturating_mul(items).saturating_mul(factors);
                (work > self.budget.als_scoring).then(|| {
                    format!(
                        "not tried: scoring {customers} customers x {items} items x {factors} factors takes {work} \
                         multiply-adds, above the {} ALS is tried at",
                        self.budget.als_scoring
                    )
                })
            }
            Algorithm::Ease => {
                let side = ease_side(self.prepared) as u64;
                let solved = self.tried.iter().filter(|t| t.params.algorithm == Algorithm::Ease && t.score.is_some());
                let work = (solved.count() as u64 + 1).saturating_mul(side.saturating_pow(3));
                (work > self.budget.ease_solves).then(|| {
                    format!(
                        "not tried: with this {side} x {side} solve EASE's solves would take {work} multiply-adds, \
                         above the {} the search spends on them",
                        self.budget.ease_solves
                    )
                })
            }
            _ => None,
        }
    }
}

/// The validation split, and a sentence saying which and why; or why there is none.
pub fn carve(log: &PurchaseLog, all: &[bool], target: Target) -> Result<(Prepared, String), String> {
    let measured = |p: &Prepared| measured(p, target);
    let purchases = log.rows.iter().zip(all).filter(|(r, a)| **a && r.quantity > 0.0);
    let (n, timed) = purchases.fold((0u64, 0u64), |(n, t), (r, _)| (n + 1, t + u64::from(r.time.is_some())));
    let why = if n > 0 && timed == n {
        let method = SplitMethod::Time { cutoff: Cutoff::LastShare(WINDOW_SHARE) };
        match prepare_within(log, all, &method) {
            Ok(p) if measured(&p) >= MIN_WINDOW => {
                let from = method.cutoff_time(log, Cutoff::LastShare(WINDOW_SHARE), Some(all)).ok();
                let split = format!(
                    "validation on the most recent tenth of the purchases{} ({} customers measured), trained on \
                     the rows before",
                    from.map(|t| format!(", from {}", crate::time::format(t))).unwrap_or_default(),
                    measured(&p)
                );
                return Ok((p, split));
            }
            Ok(p) => format!(
                "the most recent tenth of the purchases holds {} measurable customers, fewer than {MIN_WINDOW}",
                measured(&p)
            ),
            Err(e) => format!("the most recent tenth of the purchases cannot be held out ({e})"),
        }
    } else if timed == 0 {
        "the purchases have no times".to_string()
    } else {
        format!("{} of {n} purchases have no time", n - timed)
    };
    let method = SplitMethod::Random { fraction: HOLDOUT_SHARE, seed: SEED };
    match prepare_within(log, all, &method) {
        Ok(p) if measured(&p) >= MIN_RANDOM => {
            let split = format!(
                "validation on a random fifth of each customer's items ({} customers measured), because {why}",
                measured(&p)
            );
            Ok((p, split))
        }
        Ok(p) => Err(format!(
            "{why}, and a random fifth of each customer's items leaves {} measurable customers, fewer than \
             {MIN_RANDOM}",
            measured(&p)
        )),
        Err(e) => Err(format!("{why}, and no random holdout is possible ({e})")),
    }
}

/// The customers a split measures for `target`.
fn measured(p: &Prepared, target: Target) -> u64 {
    match target {
        Target::AllItems => p.summary.measured_all,
        _ => p.summary.measured_new,
    }
}

/// Keeps the rows of at most `max` customers with purchases among `among`: those
/// whose ids hash lowest, all their rows; says so when it drops any. `with_purchases`:
/// the customers with purchases in the whole file when `log` holds only the rows that
/// [`reading_sample`] kept.
fn sample(
    log: &PurchaseLog,
    mut among: Vec<bool>,
    max: usize,
    with_purchases: Option<u64>,
) -> (Vec<bool>, Option<String>) {
    let mut buys = vec![false; log.customers.len()];
    for (r, _) in log.rows.iter().zip(&among).filter(|(r, a)| **a && r.quantity > 0.0) {
        buys[r.customer.get()] = true;
    }
    let mut ranked: Vec<(u64, u32)> =
        (0..buys.len() as u32).filter(|&c| buys[c as usize]).map(|c| (id_hash(SEED, log.customers.id(c)), c)).collect();
    let n = with_purchases.map_or(ranked.len(), |n| n as usize);
    if n <= max {
        return (among, None);
    }
    if ranked.len() > max {
        ranked.select_nth_unstable(max);
    }
    ranked.truncate(max);
    let mut keep = vec![false; buys.len()];
    for &(_, c) in &ranked {
        keep[c as usize] = true;
    }
    for (a, r) in among.iter_mut().zip(&log.rows) {
        *a = *a && keep[r.customer.get()];
    }
    (among, Some(format!("a sample of {max} of the {n} customers with purchases (all their rows)")))
}

/// The smaller side of EASE's dense system on the training part.
fn ease_side(p: &Prepared) -> usize {
    let train = p.train();
    let items = crate::algo::baseline::buyers(train.counts()).iter().filter(|&&b| b > 0).count();
    items.min(train.customers_with_purchases())
}

/// A family at its defaults, with the user's pinned values.
fn family(auto: &AutoParams, algorithm: Algorithm, rp3: bool) -> FitParams {
    let (base, pins) = (&auto.base, auto.pins);
    let mut p = FitParams { algorithm, ..*base };
    if !pins.neighbors {
        p.neighbors = algorithm.default_neighbors();
    }
    if !pins.similarity {
        let measure = if rp3 { Measure::Rp3Beta { alpha: 0.5, beta: 0.5 } } else { Measure::Cosine };
        p.similarity = SimilarityParams { measure, ..base.similarity };
    }
    let defaults = algorithm.default_weighting(&p.similarity.measure);
    if !pins.weighting {
        p.weighting.scheme = defaults.scheme;
    }
    if !pins.half_life {
        p.weighting.half_life_days = defaults.half_life_days;
        p.weighting.reference_time = None;
    }
    p
}

/// The alternatives to `p` along one dimension: 0 the weighting and time decay together
/// (they interact: on The Complete Journey decay alone and presence alone each lose to log
/// counts, together they win), 1 the family's main parameter.
fn variants(p: &FitParams, dimension: usize, pins: Pins, has_times: bool) -> Vec<FitParams> {
    let rp3 = matches!(p.similarity.measure, Measure::Rp3Beta { .. });
    let bm25 = Scheme::Bm25 { k1: 1.2, b: 0.75 };
    match dimension {
        0 => {
            let schemes: Vec<Scheme> = match p.algorithm {
                _ if pins.weighting => vec![p.weighting.scheme],
                Algorithm::ItemKnn if !rp3 => vec![bm25, Scheme::Binary],
                Algorithm::UserKnn => vec![Scheme::Binary, bm25],
                Algorithm::Ease | Algorithm::Als => vec![Scheme::Log, Scheme::Binary],
                _ => vec![p.weighting.scheme],
            };
            let half_lives: Vec<Option<f64>> = if has_times && !pins.half_life && p.algorithm != Algorithm::Popularity {
                std::iter::once(None).chain(HALF_LIVES.iter().map(|&h| Some(h))).collect()
            } else {
                vec![p.weighting.half_life_days]
            };
            // EASE's lambda moves with the weighting (its penalty is on the scale of squared
            // weights), so it joins this grid at its value and half of it.
            let lambdas: Vec<f32> = if p.algorithm == Algorithm::Ease && !pins.ease_lambda {
                vec![p.ease.lambda, scaled(p.ease.lambda, 0.5)]
            } else {
                vec![p.ease.lambda]
            };
            let mut v = Vec::new();
            for &scheme in &schemes {
                for &half_life_days in &half_lives {
                    for &lambda in &lambdas {
                        let mut q = *p;
                        q.weighting.scheme = scheme;
                        q.weighting.half_life_days = half_life_days;
                        q.ease.lambda = lambda;
                        v.push(q);
                    }
                }
            }
            v
        }
        1 => {
            let with = |f: &dyn Fn(&mut FitParams)| {
                let mut q = *p;
                f(&mut q);
                q
            };
            match p.algorithm {
                Algorithm::ItemKnn if rp3 && !pins.similarity => [0.3f32, 0.7]
                    .iter()
                    .map(|&beta| with(&|q| q.similarity.measure = Measure::Rp3Beta { alpha: 0.5, beta }))
                    .collect(),
                // Shrinkage keeps pairs with few co-buyers from the top, which decay makes
                // common (item-kNN with a 30-day half-life on The Complete Journey: 0.0246
                // without, 0.0457 with 10).
                Algorithm::ItemKnn | Algorithm::UserKnn => {
                    let mut v: Vec<FitParams> = if pins.neighbors {
                        Vec::new()
                    } else {
                        [20usize, 100, 200].iter().map(|&k| with(&|q| q.neighbors = k)).collect()
                    };
                    if !pins.similarity && p.similarity.shrinkage == 0.0 {
                        v.push(with(&|q| q.similarity.shrinkage = 10.0));
                    }
                    v
                }
                Algorithm::Ease if !pins.ease_lambda => {
                    [0.2, 0.5, 2.0].iter().map(|&f| with(&|q| q.ease.lambda = scaled(p.ease.lambda, f))).collect()
                }
                // The data-scaled penalty's optima measured within 0.5x to 3x of it.
                Algorithm::Als if !pins.als => [0.5, 2.0]
                    .iter()
                    .map(|&f| with(&|q| q.als.regularization = scaled(p.als.regularization, f)))
                    .chain([32usize, 128].iter().map(|&k| with(&|q| q.als.factors = k)))
                    .collect(),
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// `x * f` computed on `x`'s shortest decimal form, so that 0.01 x 10 is 0.1, not
/// 0.099999994, in the records and labels.
fn scaled(x: f32, f: f64) -> f32 {
    (x.to_string().parse::<f64>().unwrap_or(f64::from(x)) * f) as f32
}

/// The best measured candidate; ties go to the earlier one.
fn best_of(tried: &[Tried]) -> Option<usize> {
    let mut best: Option<(f64, usize)> = None;
    for (k, t) in tried.iter().enumerate() {
        if let Some(s) = t.score {
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, k));
            }
        }
    }
    best.map(|b| b.1)
}

/// "ease (...) scored 0.0512 NDCG@10 on new items, 11% above the best other family,
/// user-knn (...), at 0.0461."
fn reason(tried: &[Tried], chosen: usize, objective: &str) -> String {
    let c = &tried[chosen];
    let score = c.score.unwrap_or(0.0);
    let runner = tried
        .iter()
        .filter(|t| t.params.algorithm != c.params.algorithm || t.params.similarity != c.params.similarity)
        .filter_map(|t| t.score.map(|s| (s, t)))
        .fold(None::<(f64, &Tried)>, |b, (s, t)| if b.is_none_or(|(bs, _)| s > bs) { Some((s, t)) } else { b });
    let mut r = format!("{} scored {score:.4} {objective}", c.label);
    if let Some((s, t)) = runner {
        let gain = if s > 0.0 { format!("{:+.1}%", (score / s - 1.0) * 100.0) } else { "ahead".into() };
        r.push_str(&format!(", {gain} against the best other family, {} at {s:.4}", t.label));
    }
    r
}

fn target_words(t: Target) -> &'static str {
    match t {
        Target::NewItems => "new items",
        Target::AllItems => "all items",
        Target::Upgrades => "upgrades",
        Target::NewCategories => "new categories",
    }
}
