//! A customer in, ranked items out, each with a reason.
//!
//! Algorithms ([`Algorithm`]):
//! - item-kNN: `score(j) = sum over bought items i of weight(customer, i) * sim(i, j)`, with
//!   `sim(i, ·)` holding `i`'s top-k neighbours ("customers who bought X also bought Y");
//! - user-kNN: `score(j) = sum over the k most similar customers v of sim(customer, v) *
//!   weight(v, j)` ("customers like you also bought");
//! - popularity: items by number of buyers;
//! - buy-again: the customer's own items by weight (count, recency, ...).
//!
//! One [`Filter`] policy applies to all of them: already-bought items are excluded (or
//! allowed again after some days), items seen without a purchase are always excluded, and
//! allow and deny lists restrict the catalogue. When an algorithm yields fewer than `n`
//! items, the list is filled with the most popular allowed items, marked
//! [`Source::Popular`] with score 0, so that a reader can tell the personal part from the
//! fill.
//!
//! Ranking: score descending, then item index ascending (= natural item id order).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{CustomerIdx, ItemIdx};
use crate::matrix::{Csr, Interactions, Scheme, Weighting};
use crate::similarity::{KernelScratch, Neighbor, Pruned, TopK, accumulate, by_score_then_index, keep_top};
use crate::time::DAY;

/// Which recommender scores the items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Item-based collaborative filtering.
    #[default]
    ItemKnn,
    /// Customer-based collaborative filtering.
    UserKnn,
    /// Most bought items.
    Popularity,
    /// The customer's own items again.
    BuyAgain,
    /// Implicit-feedback matrix factorisation (alternating least squares).
    Als,
    /// A closed-form item x item linear model (EASE).
    Ease,
}

impl Algorithm {
    /// Every algorithm, for messages.
    pub const ALL: &'static str = "item-knn, user-knn, popularity, buy-again, als, ease";

    /// The name used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::ItemKnn => "item-knn",
            Algorithm::UserKnn => "user-knn",
            Algorithm::Popularity => "popularity",
            Algorithm::BuyAgain => "buy-again",
            Algorithm::Als => "als",
            Algorithm::Ease => "ease",
        }
    }
}

impl Algorithm {
    /// The weighting the algorithm gets when none is asked for. Chosen on validation
    /// splits (never the test part) of The Complete Journey: BM25 for the neighbourhood
    /// models (bestsellers do not dominate the similarities); log counts for ALS and EASE,
    /// whose penalties are on the scale of squared weights (BM25's large weights swamp
    /// EASE's default lambda); counts with a 60-day half-life for buy-again (how often and
    /// how recently); presence for popularity.
    pub fn default_weighting(self) -> Weighting {
        let scheme = match self {
            Algorithm::ItemKnn | Algorithm::UserKnn => Scheme::Bm25 { k1: 1.2, b: 0.75 },
            Algorithm::Als | Algorithm::Ease => Scheme::Log,
            Algorithm::BuyAgain => Scheme::Count,
            Algorithm::Popularity => Scheme::Binary,
        };
        let half_life_days = (self == Algorithm::BuyAgain).then_some(60.0);
        Weighting { scheme, half_life_days, reference_time: None }
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "item-knn" => Ok(Algorithm::ItemKnn),
            "user-knn" => Ok(Algorithm::UserKnn),
            "popularity" => Ok(Algorithm::Popularity),
            "buy-again" => Ok(Algorithm::BuyAgain),
            "als" => Ok(Algorithm::Als),
            "ease" => Ok(Algorithm::Ease),
            _ => Err(format!("unknown algorithm {s:?}; accepted: {}", Algorithm::ALL)),
        }
    }
}

/// Where a recommended item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Scored by item-based collaborative filtering.
    ItemKnn,
    /// Scored by customer-based collaborative filtering.
    UserKnn,
    /// Overall popularity (the popularity algorithm, or fill).
    Popular,
    /// The customer's own earlier purchase.
    BuyAgain,
    /// Scored by a latent-factor model (ALS).
    Als,
    /// Scored by EASE.
    Ease,
}

impl Source {
    /// The name written in output files.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::ItemKnn => "item-knn",
            Source::UserKnn => "user-knn",
            Source::Popular => "popular",
            Source::BuyAgain => "buy-again",
            Source::Als => "als",
            Source::Ease => "ease",
        }
    }
}

/// One recommended item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recommendation {
    /// The item.
    pub item: ItemIdx,
    /// Its score (0 for popularity fill).
    pub score: f32,
    /// Where the item came from.
    pub source: Source,
}

/// Which items may be recommended to whom.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    /// Recommend items the customer bought before (default: no). Buy-again always does.
    pub include_bought: bool,
    /// Allow a bought item again once this many days have passed since its last purchase.
    pub repurchase_after_days: Option<f64>,
    /// "Now" for repurchase windows (unix seconds); default: the newest purchase.
    pub as_of: Option<i64>,
    /// Only these items (none: every item).
    pub allow: Option<Vec<ItemIdx>>,
    /// Never these items.
    pub deny: Vec<ItemIdx>,
}

impl Filter {
    /// Checks ranges and resolves the filter against a model's data.
    pub fn resolve(&self, data: &Interactions, algorithm: Algorithm) -> Result<ResolvedFilter, String> {
        let items = data.items().len();
        let mut banned = vec![self.allow.is_some(); items];
        for &ItemIdx(j) in self.allow.iter().flatten() {
            banned[j as usize] = false;
        }
        for &ItemIdx(j) in &self.deny {
            banned[j as usize] = true;
        }
        let repurchase = match self.repurchase_after_days {
            None => None,
            Some(d) if !(d.is_finite() && d >= 0.0) => {
                return Err(format!("the repurchase window must be a number of days >= 0, got {d}"));
            }
            Some(d) => {
                if data.last_time().is_none() {
                    return Err("a repurchase window needs purchase times: fit with a time column".into());
                }
                let now = self.as_of.or(data.newest_time()).unwrap_or(0);
                Some(now.saturating_sub((d * DAY as f64).min(i64::MAX as f64) as i64))
            }
        };
        let include_bought = self.include_bought || algorithm == Algorithm::BuyAgain;
        Ok(ResolvedFilter { banned, include_bought, bought_before: repurchase })
    }
}

/// A [`Filter`] ready for scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedFilter {
    /// `banned[j]`: never recommend item `j`.
    banned: Vec<bool>,
    include_bought: bool,
    /// Bought items whose last purchase is at or before this time are allowed again
    /// (when bought items are otherwise excluded).
    bought_before: Option<i64>,
}

impl ResolvedFilter {
    /// The default policy (exclude bought and seen items) for a catalogue of `items`.
    pub fn exclude_bought(items: usize) -> Self {
        ResolvedFilter { banned: vec![false; items], include_bought: false, bought_before: None }
    }
}

/// Why an item was recommended, with the evidence (resolved to ids when written).
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The customer's items that contributed most (item-kNN, EASE).
    BoughtWith(Vec<ItemIdx>),
    /// The customer's items the model places closest to it (latent models).
    Resembles(Vec<ItemIdx>),
    /// Similar customers who bought it, out of how many neighbours (user-kNN).
    SimilarCustomers {
        /// The most similar ones that bought it.
        ids: Vec<CustomerIdx>,
        /// How many of the neighbours bought it.
        buyers: u32,
        /// Neighbours considered.
        of: u32,
    },
    /// Popular: this many customers bought it.
    Popular {
        /// Buyers of the item.
        buyers: u32,
    },
    /// Bought before: the customer's count and last purchase time.
    BoughtBefore {
        /// Net count.
        count: f32,
        /// Last purchase (unix seconds), if known.
        last: Option<i64>,
    },
}

/// A customer to score: their items, weights, times and seen-only items.
#[derive(Debug, Clone, Copy)]
pub struct Query<'q> {
    /// Bought items, sorted.
    pub items: &'q [u32],
    /// Their weights.
    pub weights: &'q [f32],
    /// Their raw counts.
    pub counts: &'q [f32],
    /// Their last purchase times, if known.
    pub last_time: Option<&'q [i64]>,
    /// Items seen without a purchase.
    pub seen: &'q [u32],
    /// The customer's own row, when they are in the model (never their own neighbour).
    pub own: Option<CustomerIdx>,
    /// The purchases are the model's own row of `own` (latent models then use the
    /// customer's fitted factors instead of folding the purchases in).
    pub from_model: bool,
}

/// A customer scored from purchases given now rather than from the model's history
/// (fold-in): owned, weighted rows. Build with [`crate::model::Model::fold_in`].
#[derive(Debug, Clone, PartialEq)]
pub struct FoldIn {
    pub(crate) items: Vec<u32>,
    pub(crate) weights: Vec<f32>,
    pub(crate) counts: Vec<f32>,
    pub(crate) times: Option<Vec<i64>>,
    pub(crate) seen: Vec<u32>,
    pub(crate) own: Option<CustomerIdx>,
}

impl FoldIn {
    /// Marks the folded-in customer as this model customer (by the same id), so that
    /// user-kNN never counts the model's copy of them as their own neighbour.
    pub fn as_customer(mut self, c: Option<CustomerIdx>) -> Self {
        self.own = c;
        self
    }

    /// The query to score.
    pub fn query(&self) -> Query<'_> {
        Query {
            items: &self.items,
            weights: &self.weights,
            counts: &self.counts,
            last_time: self.times.as_deref(),
            seen: &self.seen,
            own: self.own,
            from_model: false,
        }
    }
}

/// Per-worker buffers, sized to the catalogue once and reused for every customer.
#[derive(Debug, Clone)]
pub struct Scratch {
    acc: Vec<f32>,
    /// `blocked[j] == stamp` when `j` must not be recommended to the current customer.
    blocked: Vec<u32>,
    stamp: u32,
    touched: Vec<u32>,
    cands: Vec<(u32, f32)>,
    neighbors: Vec<Neighbor>,
    /// The neighbours' indices and similarities, as accumulation input (user-kNN).
    ids: Vec<u32>,
    sims: Vec<f32>,
    kernel: Option<KernelScratch>,
    /// A customer's factors (latent models).
    factors: Vec<f32>,
    ease: Option<crate::ease::EaseScratch>,
}

impl Scratch {
    fn next_stamp(&mut self) -> u32 {
        if self.stamp == u32::MAX {
            self.blocked.fill(0);
            self.stamp = 0;
        }
        self.stamp += 1;
        self.stamp
    }
}

/// Everything scoring reads, borrowed from a fitted model.
#[derive(Debug, Clone, Copy)]
pub struct Scorer<'a> {
    pub(crate) algorithm: Algorithm,
    pub(crate) data: &'a Interactions,
    /// Weighted customer x item matrix.
    pub(crate) weighted: &'a Csr,
    /// Items x items top-k neighbours (item-kNN).
    pub(crate) item_neighbors: &'a Csr,
    /// Customer similarity kernel (user-kNN).
    pub(crate) customers: Option<TopK<'a>>,
    /// Neighbours per customer (user-kNN).
    pub(crate) k: usize,
    /// Items anyone bought, most buyers first, and buyers per item.
    pub(crate) popular: &'a [u32],
    pub(crate) buyers: &'a [u32],
    /// Per item, how often a purchase is repeated (buy-again).
    pub(crate) repeat: &'a [f32],
    /// Buy-again blend weight (see [`crate::model::FitParams::buy_again_weight`]).
    pub(crate) buy_again_weight: f32,
    /// The factors of a latent model (ALS).
    pub(crate) latent: Option<&'a Latent>,
    pub(crate) filter: &'a ResolvedFilter,
}

/// A model that scores every item from dense parameters.
#[derive(Debug, Clone)]
pub enum Latent {
    /// Customer and item factors.
    Als(crate::als::Als),
    /// EASE's solution.
    Ease(crate::ease::Ease),
}

impl<'a> Scorer<'a> {
    /// Buffers for one worker.
    pub fn scratch(&self) -> Scratch {
        let items = self.weighted.cols();
        Scratch {
            acc: vec![0.0; items],
            blocked: vec![0; items],
            stamp: 0,
            touched: Vec::new(),
            cands: Vec::new(),
            neighbors: Vec::new(),
            ids: Vec::new(),
            sims: Vec::new(),
            kernel: self.customers.map(|k| k.scratch()),
            factors: Vec::new(),
            ease: match self.latent {
                Some(Latent::Ease(e)) => Some(e.scratch()),
                _ => None,
            },
        }
    }

    /// Whether the filter lets item `j` be recommended at all (allow and deny lists).
    pub fn allows(&self, j: u32) -> bool {
        !self.filter.banned.get(j as usize).copied().unwrap_or(true)
    }

    /// The query for a customer in the model.
    pub fn query(&self, c: CustomerIdx) -> Query<'a> {
        let r = self.weighted.indptr().outer_inds_sz(c.get());
        Query {
            items: &self.weighted.indices()[r.clone()],
            weights: &self.weighted.data()[r.clone()],
            counts: &self.data.counts().data()[r.clone()],
            last_time: self.data.last_time().map(|t| &t[r]),
            seen: self.data.seen_only(c),
            own: Some(c),
            from_model: true,
        }
    }

    /// The top `n` items for a customer, best first, into `out`.
    pub fn recommend(&self, q: &Query<'_>, n: usize, s: &mut Scratch, out: &mut Vec<Recommendation>) {
        out.clear();
        let stamp = s.next_stamp();
        for &j in q.seen {
            s.blocked[j as usize] = stamp;
        }
        if !self.filter.include_bought {
            for (k, &j) in q.items.iter().enumerate() {
                let again = match (self.filter.bought_before, q.last_time) {
                    (Some(before), Some(t)) => t[k] <= before,
                    _ => false,
                };
                if !again {
                    s.blocked[j as usize] = stamp;
                }
            }
        }
        let Some(source) = self.fill(q, s) else {
            let total = self.data.customers().len().max(1) as f32;
            for &j in self.popular {
                if out.len() >= n {
                    break;
                }
                if s.blocked[j as usize] != stamp && !self.filter.banned[j as usize] {
                    let score = self.buyers[j as usize] as f32 / total;
                    out.push(Recommendation { item: ItemIdx(j), score, source: Source::Popular });
                }
            }
            return;
        };
        if self.buy_again_weight > 0.0 && matches!(source, Source::ItemKnn | Source::UserKnn) {
            self.add_buy_again(q, s, stamp);
        }
        let Scratch { acc, blocked, touched, cands, .. } = s;
        cands.clear();
        let mut top = Pruned::new(n);
        for &j in touched.iter() {
            // Contributions are positive, so a zero sum was never touched (or underflowed).
            let score = std::mem::take(&mut acc[j as usize]);
            // Scores are sums of positive contributions; buy-again's are the customer's own
            // weights, which time decay may have taken to zero and still count; a latent
            // model scores every item, some below zero.
            let scored = score > 0.0 || matches!(source, Source::BuyAgain | Source::Als | Source::Ease);
            if scored && top.admits(score) && blocked[j as usize] != stamp && !self.filter.banned[j as usize] {
                top.push(cands, (j, score));
            }
        }
        touched.clear();
        keep_top(cands, n);
        cands.sort_unstable_by(by_score_then_index);
        for &(j, score) in &s.cands {
            s.blocked[j as usize] = stamp;
            out.push(Recommendation { item: ItemIdx(j), score, source });
        }
        for &j in self.popular {
            if out.len() >= n {
                break;
            }
            if s.blocked[j as usize] != stamp && !self.filter.banned[j as usize] {
                out.push(Recommendation { item: ItemIdx(j), score: 0.0, source: Source::Popular });
            }
        }
    }

    /// Leaves the algorithm's raw score of every touched item in `s.acc` (the touched items
    /// in `s.touched`); `None` for popularity, which ranks from `popular` directly.
    fn fill(&self, q: &Query<'_>, s: &mut Scratch) -> Option<Source> {
        Some(match self.algorithm {
            Algorithm::ItemKnn => {
                accumulate(self.item_neighbors, q.items, q.weights, &mut s.acc, &mut [], &mut s.touched);
                Source::ItemKnn
            }
            Algorithm::UserKnn => {
                self.similar(q, s);
                s.ids.clear();
                s.sims.clear();
                s.ids.extend(s.neighbors.iter().map(|v| v.index));
                s.sims.extend(s.neighbors.iter().map(|v| v.sim));
                accumulate(self.weighted, &s.ids, &s.sims, &mut s.acc, &mut [], &mut s.touched);
                Source::UserKnn
            }
            Algorithm::Als => {
                if let Some(Latent::Als(als)) = self.latent {
                    match q.own {
                        Some(c) if q.from_model => {
                            s.factors.clear();
                            s.factors.extend_from_slice(als.user_factors(c.get()));
                        }
                        _ => s.factors = als.fold_in(q.items, q.weights),
                    }
                    als.score(&s.factors, &mut s.acc);
                    s.touched.extend(0..s.acc.len() as u32);
                }
                Source::Als
            }
            Algorithm::Ease => {
                if let (Some(Latent::Ease(ease)), Some(es)) = (self.latent, s.ease.as_mut()) {
                    ease.score(q.items, q.weights, &mut s.acc, es);
                    s.touched.extend(0..s.acc.len() as u32);
                }
                Source::Ease
            }
            Algorithm::BuyAgain => {
                for (&j, &w) in q.items.iter().zip(q.weights) {
                    s.acc[j as usize] = w * self.repeat[j as usize];
                    s.touched.push(j);
                }
                Source::BuyAgain
            }
            Algorithm::Popularity => return None,
        })
    }

    /// The algorithm's raw score of each of `items` for the customer of `q` (0 where it
    /// gives none), before any filter: how strongly this customer's neighbourhood or
    /// factors favour candidates that another component chose (up-sell).
    pub fn affinity(&self, q: &Query<'_>, items: &[u32], s: &mut Scratch, out: &mut Vec<f32>) {
        out.clear();
        if self.fill(q, s).is_none() {
            let total = self.data.customers().len().max(1) as f32;
            out.extend(items.iter().map(|&j| self.buyers[j as usize] as f32 / total));
            return;
        }
        out.extend(items.iter().map(|&j| s.acc[j as usize]));
        for &j in &s.touched {
            s.acc[j as usize] = 0.0;
        }
        s.touched.clear();
    }

    /// Adds the buy-again scores of the bought items that may be recommended, scaled so
    /// that the strongest is `buy_again_weight` times the strongest collaborative score
    /// (1 when there is none).
    fn add_buy_again(&self, q: &Query<'_>, s: &mut Scratch, stamp: u32) {
        let repeat = |k: usize, j: u32| q.weights[k] * self.repeat[j as usize];
        let allowed = |j: u32| s.blocked[j as usize] != stamp;
        let strongest =
            (0..q.items.len()).filter(|&k| allowed(q.items[k])).map(|k| repeat(k, q.items[k])).fold(0f32, f32::max);
        if strongest <= 0.0 {
            return;
        }
        let cf = s.touched.iter().map(|&j| s.acc[j as usize]).fold(0f32, f32::max);
        let scale = self.buy_again_weight * if cf > 0.0 { cf } else { 1.0 } / strongest;
        for (k, &j) in q.items.iter().enumerate() {
            if s.blocked[j as usize] == stamp {
                continue;
            }
            let a = &mut s.acc[j as usize];
            if *a == 0.0 {
                s.touched.push(j);
            }
            *a += scale * repeat(k, j);
        }
    }

    /// Leaves the query's `k` most similar customers in `s.neighbors`, best first.
    fn similar(&self, q: &Query<'_>, s: &mut Scratch) {
        s.neighbors.clear();
        let (Some(kernel), Some(ks)) = (&self.customers, s.kernel.as_mut()) else { return };
        kernel.query(q.items, q.weights, q.own.map(CustomerIdx::get), self.k, ks, &mut s.neighbors);
    }

    /// Why `rec` was recommended to the customer of `q` (call right after
    /// [`Scorer::recommend`] with the same scratch: user-kNN reuses its neighbours).
    pub fn explain(&self, q: &Query<'_>, rec: &Recommendation, s: &Scratch) -> Reason {
        let j = rec.item.0;
        match rec.source {
            Source::ItemKnn => {
                let mut contrib: Vec<(u32, f32)> = Vec::new();
                for (&i, &w) in q.items.iter().zip(q.weights) {
                    let r = self.item_neighbors.indptr().outer_inds_sz(i as usize);
                    let row = &self.item_neighbors.indices()[r.clone()];
                    if let Ok(p) = row.binary_search(&j) {
                        contrib.push((i, w * self.item_neighbors.data()[r.start + p]));
                    }
                }
                keep_top(&mut contrib, 3);
                contrib.sort_unstable_by(by_score_then_index);
                Reason::BoughtWith(contrib.into_iter().map(|c| ItemIdx(c.0)).collect())
            }
            Source::UserKnn => {
                let bought: Vec<&Neighbor> = s
                    .neighbors
                    .iter()
                    .filter(|v| self.data.purchases(CustomerIdx(v.index)).0.binary_search(&j).is_ok())
                    .collect();
                Reason::SimilarCustomers {
                    ids: bought.iter().take(3).map(|v| CustomerIdx(v.index)).collect(),
                    buyers: bought.len() as u32,
                    of: s.neighbors.len() as u32,
                }
            }
            Source::Als => {
                // The bought items whose factors point most the same way as the item's.
                let mut contrib: Vec<(u32, f32)> = Vec::new();
                if let Some(Latent::Als(als)) = self.latent {
                    let target = als.item_factors(j as usize);
                    for &i in q.items {
                        let d: f32 = als.item_factors(i as usize).iter().zip(target).map(|(a, b)| a * b).sum();
                        if d > 0.0 {
                            contrib.push((i, d));
                        }
                    }
                }
                keep_top(&mut contrib, 3);
                contrib.sort_unstable_by(by_score_then_index);
                Reason::Resembles(contrib.into_iter().map(|c| ItemIdx(c.0)).collect())
            }
            Source::Ease => {
                // Each bought item's own term of the score (its weight times its EASE
                // coefficient towards the item).
                let mut contrib: Vec<(u32, f32)> = Vec::new();
                if let Some(Latent::Ease(ease)) = self.latent {
                    let mut es = ease.scratch();
                    let mut one = vec![0f32; self.weighted.cols()];
                    for (&i, &w) in q.items.iter().zip(q.weights) {
                        ease.score(&[i], &[w], &mut one, &mut es);
                        if one[j as usize] > 0.0 {
                            contrib.push((i, one[j as usize]));
                        }
                    }
                }
                keep_top(&mut contrib, 3);
                contrib.sort_unstable_by(by_score_then_index);
                Reason::BoughtWith(contrib.into_iter().map(|c| ItemIdx(c.0)).collect())
            }
            Source::Popular => Reason::Popular { buyers: self.buyers[j as usize] },
            Source::BuyAgain => {
                let k = q.items.binary_search(&j).unwrap_or(0);
                Reason::BoughtBefore {
                    count: q.counts.get(k).copied().unwrap_or(0.0),
                    last: q.last_time.and_then(|t| t.get(k).copied()).filter(|&t| t != i64::MIN),
                }
            }
        }
    }
}

/// Per item, the share of its buyers who bought it more than once (a count of at least
/// 2), smoothed toward 1/2 by one pseudo-buyer each way so that items with a single buyer
/// are neither certain repeats nor never.
pub fn repeat_rates(counts: &Csr, buyers: &[u32]) -> Vec<f32> {
    let mut repeaters = vec![0u32; counts.cols()];
    for (&j, &c) in counts.indices().iter().zip(counts.data()) {
        if c >= 2.0 {
            repeaters[j as usize] += 1;
        }
    }
    repeaters.iter().zip(buyers).map(|(&r, &b)| (r as f32 + 1.0) / (b as f32 + 2.0)).collect()
}

/// Buyers per item, from the weighted matrix's structure.
pub fn buyers(weighted: &Csr) -> Vec<u32> {
    let mut buyers = vec![0u32; weighted.cols()];
    for &j in weighted.indices() {
        buyers[j as usize] += 1;
    }
    buyers
}

/// The items anyone bought, by number of buyers descending, then by index.
pub fn popularity_order(buyers: &[u32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..buyers.len() as u32).filter(|&j| buyers[j as usize] > 0).collect();
    order.sort_by_key(|&j| (std::cmp::Reverse(buyers[j as usize]), j));
    order
}
