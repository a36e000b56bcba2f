//! The recommenders: "here is a weighted matrix, give me a fitted model" and "here is a
//! customer's row, score the items".
//!
//! Algorithms ([`Algorithm`]):
//! - item-kNN ([`item_knn`]): `score(j) = sum over bought items i of weight(customer, i) *
//!   sim(i, j)`, with `sim(i, ·)` holding `i`'s top-k neighbours ("customers who bought X
//!   also bought Y");
//! - user-kNN ([`user_knn`]): `score(j) = sum over the k most similar customers v of
//!   sim(customer, v) * weight(v, j)` ("customers like you also bought");
//! - under time decay, the weights in these sums are decayed, and so are a neighbour's in
//!   the similarity; the other side's and the lengths are not ([`crate::matrix::Weighting`]);
//! - EASE ([`ease`]) and ALS ([`als`]): dense models that score every item;
//! - popularity and buy-again ([`baseline`]): items by number of buyers; the customer's own
//!   items by weight (count, recency, ...) times how often the item is bought again.
//!
//! [`similarity`] is the top-k kernel that item-kNN, user-kNN and similar customers share.
//! Each algorithm's module knows how to fit it and how to score and explain one customer;
//! [`Fitted`] holds what fitting produced and [`Recommender`] dispatches to the module, so
//! adding an algorithm touches this folder, the model format and the CLI's flag list.
//!
//! Architecture invariant: nothing here imports a layer above it (`recommend`, `model`,
//! `batch`, `offers`, `eval`); kernels do no I/O and cannot fail.

pub mod als;
pub mod baseline;
pub mod ease;
pub mod item_knn;
pub mod partial;
pub mod similarity;
pub mod user_knn;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{CustomerIdx, ItemIdx};
use crate::matrix::{Csr, Scheme, Weighting};
use als::Als;
use ease::{Ease, EaseScratch};
use similarity::{Measure, Neighbor};
use user_knn::CustomerScratch;

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
    /// The weighting the algorithm gets when none is asked for (RP3beta is item-kNN with
    /// its own measure). Chosen on validation splits (never the test part) of The Complete
    /// Journey: BM25 for item-kNN with cosine (bestsellers do not dominate the
    /// similarities); presence for user-kNN (BM25 scored below popularity) and RP3beta,
    /// whose beta already penalises popularity (idf on top of it pushed 81% of the lists to
    /// items with at most two buyers); log counts for ALS and EASE, whose penalties are on
    /// the scale of squared weights (BM25's large weights swamp EASE's default lambda);
    /// counts with a 60-day half-life for buy-again (how often and how recently); presence
    /// for popularity.
    pub fn default_weighting(self, measure: &Measure) -> Weighting {
        let scheme = match self {
            Algorithm::ItemKnn if matches!(measure, Measure::Rp3Beta { .. }) => Scheme::Binary,
            Algorithm::ItemKnn => Scheme::Bm25 { k1: 1.2, b: 0.75 },
            Algorithm::UserKnn | Algorithm::Popularity => Scheme::Binary,
            Algorithm::Als | Algorithm::Ease => Scheme::Log,
            Algorithm::BuyAgain => Scheme::Count,
        };
        let half_life_days = (self == Algorithm::BuyAgain).then_some(60.0);
        Weighting { scheme, half_life_days, reference_time: None }
    }

    /// The neighbours the algorithm gets when none are asked for: kept per item (item-kNN)
    /// or used per customer (user-kNN). User-kNN takes 200: on arules Groceries (one small
    /// basket per customer) the 50 nearest customers are baskets that share one rare item,
    /// and 50 scored 0.195 NDCG@10 on new items, below popularity (0.231); 200 scored 0.237,
    /// and kept The Complete Journey (0.0445) and UCI Online Retail (0.0672 against 0.0674)
    /// where they were (BENCHMARKS.md, "user-kNN's default neighbours").
    pub fn default_neighbors(self) -> usize {
        match self {
            Algorithm::UserKnn => 200,
            _ => 50,
        }
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

/// A model that scores every item from dense parameters.
#[derive(Debug, Clone)]
pub(crate) enum Latent {
    /// Customer and item factors.
    Als(crate::algo::als::Als),
    /// EASE's solution.
    Ease(crate::algo::ease::Ease),
}

/// What fitting produced beside the weighted matrix.
#[derive(Debug, Clone)]
pub(crate) struct Fitted {
    /// Items x items top-k neighbours (item-kNN; empty otherwise).
    pub neighbors: Csr,
    /// The dense parameters of a latent model.
    pub latent: Option<Latent>,
}

/// The parameters [`fit`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FitSpec<'p> {
    pub algorithm: Algorithm,
    pub neighbors: usize,
    pub similarity: similarity::SimilarityParams,
    pub als: &'p als::AlsParams,
    pub ease: &'p ease::EaseParams,
    /// Item-kNN's customers per summation block ([`partial`]); `None`: the single sum.
    pub sum_block: Option<usize>,
}

/// Fits the algorithm on the weighted customer x item matrix (in parallel on the current
/// rayon pool); `undecayed` is the same before time decay, when it decays (item-kNN's
/// similarities need it). Only EASE can fail: its dense matrix may not fit the memory budget.
pub(crate) fn fit(weighted: &Csr, undecayed: Option<&Csr>, spec: FitSpec<'_>) -> Result<Fitted, ease::EaseError> {
    let items = weighted.cols();
    let neighbors = match spec.algorithm {
        Algorithm::ItemKnn => match spec.sum_block {
            Some(b) => partial::fit(weighted, spec.neighbors, &spec.similarity, b),
            None => item_knn::item_top_k(weighted, undecayed, spec.neighbors, spec.similarity),
        },
        _ => Csr::zero((items, items)),
    };
    let latent = match spec.algorithm {
        Algorithm::Als => Some(Latent::Als(Als::fit(weighted, spec.als))),
        Algorithm::Ease => Some(Latent::Ease(Ease::fit(weighted, spec.ease, ease::memory_budget())?)),
        _ => None,
    };
    Ok(Fitted { neighbors, latent })
}

/// A fitted recommender's scoring view, borrowed from a model.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Recommender<'a> {
    /// Item neighbours.
    ItemKnn(&'a Csr),
    UserKnn(user_knn::UserKnn<'a>),
    Popularity,
    /// Repeat rates per item.
    BuyAgain(&'a [f32]),
    Als(&'a Als),
    Ease(&'a Ease),
}

/// One worker's buffers for the algorithm's own state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    /// The customer's most similar customers (user-kNN), kept for [`Recommender::explain`].
    pub neighbors: Vec<Neighbor>,
    /// The neighbours' indices and similarities, as accumulation input (user-kNN).
    pub ids: Vec<u32>,
    pub sims: Vec<f32>,
    pub kernel: Option<CustomerScratch>,
    /// A customer's factors (ALS).
    pub factors: Vec<f32>,
    pub ease: Option<EaseScratch>,
}

impl Recommender<'_> {
    /// Buffers for one worker.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            kernel: match self {
                Recommender::UserKnn(u) => Some(u.customers.scratch()),
                _ => None,
            },
            ease: match self {
                Recommender::Ease(e) => Some(e.scratch()),
                _ => None,
            },
            ..Scratch::default()
        }
    }

    /// Adds the algorithm's raw score of every item it scores for the customer of `q` into
    /// `acc` (zero on entry), each such item once in `touched`; `None` for popularity, which
    /// ranks from the popularity order directly.
    pub fn score(&self, q: &Query<'_>, s: &mut Scratch, acc: &mut [f32], touched: &mut Vec<u32>) -> Option<Source> {
        Some(match *self {
            Recommender::ItemKnn(neighbors) => {
                item_knn::score(neighbors, q, acc, touched);
                Source::ItemKnn
            }
            Recommender::UserKnn(u) => {
                u.score(q, s, acc, touched);
                Source::UserKnn
            }
            Recommender::Als(als) => {
                als.score_query(q, &mut s.factors, acc, touched);
                Source::Als
            }
            Recommender::Ease(ease) => {
                if let Some(es) = s.ease.as_mut() {
                    ease.score(q.items, q.weights, acc, es);
                    touched.extend(0..acc.len() as u32);
                }
                Source::Ease
            }
            Recommender::BuyAgain(repeat) => {
                baseline::buy_again(repeat, q, acc, touched);
                Source::BuyAgain
            }
            Recommender::Popularity => return None,
        })
    }

    /// The evidence for item `j`, scored from `source` for the customer of `q` (call right
    /// after [`Recommender::score`] with the same scratch: user-kNN reuses its neighbours).
    /// Popularity fill is explained by the caller, which knows the buyers.
    pub fn explain(&self, q: &Query<'_>, j: u32, source: Source, s: &Scratch) -> Option<Reason> {
        Some(match (source, *self) {
            (Source::ItemKnn, Recommender::ItemKnn(neighbors)) => item_knn::explain(neighbors, q, j),
            (Source::UserKnn, Recommender::UserKnn(u)) => u.explain(j, s),
            (Source::Als, Recommender::Als(als)) => als.explain(q, j),
            (Source::Ease, Recommender::Ease(ease)) => ease.explain(q, j),
            (Source::BuyAgain, _) => baseline::explain_buy_again(q, j),
            _ => return None,
        })
    }
}

/// The top three of `contrib` (index, contribution), best first.
pub(crate) fn top_three(mut contrib: Vec<(u32, f32)>) -> Vec<ItemIdx> {
    similarity::keep_top(&mut contrib, 3);
    contrib.sort_unstable_by(similarity::by_score_then_index);
    contrib.into_iter().map(|c| ItemIdx(c.0)).collect()
}
