//! A customer in, ranked items out, each with a reason.
//!
//! The algorithms ([`crate::algo`]) score items; this layer turns their scores into a list.
//! One [`Filter`] policy applies to all of them: already-bought items are excluded (or
//! allowed again after some days), items seen without a purchase are always excluded, and
//! allow and deny lists restrict the catalogue. When an algorithm yields fewer than `n`
//! items, the list is filled with the most popular allowed items, marked
//! [`Source::Popular`] with score 0, so that a reader can tell the personal part from the
//! fill.
//!
//! Ranking: score descending, then item index ascending (= natural item id order).

mod filter;

use serde::Serialize;

use crate::algo::similarity::{Pruned, by_score_then_index, keep_top};
use crate::algo::{self, Recommender};
pub use crate::algo::{Query, Reason, Source};
use crate::ids::{CustomerIdx, ItemIdx};
use crate::matrix::{Csr, Interactions};
pub use filter::{Filter, ResolvedFilter};

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
    /// The items that must not be recommended to the current customer, one bit each: an
    /// eighth of a kilobyte per thousand items, so it stays in the nearest cache while the
    /// customer's candidates are checked against it (a `u32` stamp per item missed it on
    /// most candidates of a 100,000-item catalogue).
    blocked: Blocked,
    touched: Vec<u32>,
    cands: Vec<(u32, f32)>,
    /// The algorithm's own buffers.
    algo: algo::Scratch,
}

/// A set of items as bits, emptied for the next customer by clearing only the words it set.
#[derive(Debug, Clone)]
struct Blocked {
    bits: Vec<u64>,
    /// The words holding a set bit (with repeats).
    set: Vec<u32>,
}

impl Blocked {
    fn new(items: usize) -> Self {
        Blocked { bits: vec![0; items.div_ceil(64)], set: Vec::new() }
    }

    fn clear(&mut self) {
        for &w in &self.set {
            self.bits[w as usize] = 0;
        }
        self.set.clear();
    }

    #[inline]
    fn insert(&mut self, j: u32) {
        let w = j as usize / 64;
        self.bits[w] |= 1 << (j % 64);
        self.set.push(w as u32);
    }

    #[inline]
    fn contains(&self, j: u32) -> bool {
        self.bits[j as usize / 64] >> (j % 64) & 1 != 0
    }
}

/// Everything scoring reads, borrowed from a fitted model.
#[derive(Debug, Clone, Copy)]
pub struct Scorer<'a> {
    pub(crate) recommender: Recommender<'a>,
    /// Customers in the model (popularity scores are shares of them).
    pub(crate) customers: usize,
    /// Items in the catalogue.
    pub(crate) items: usize,
    /// Items anyone bought, most buyers first, and buyers per item.
    pub(crate) popular: &'a [u32],
    pub(crate) buyers: &'a [u32],
    /// Per item, how often a purchase is repeated (buy-again).
    pub(crate) repeat: &'a [f32],
    /// Buy-again blend weight (see [`crate::model::FitParams::buy_again_weight`]).
    pub(crate) buy_again_weight: f32,
    /// The blend's own time decay of the customer's counts: buy-again's default half-life
    /// (days) and the reference time, or `None` (counts alone) without purchase times.
    /// Independent of the model's weighting, so that how often and how recently a customer
    /// bought an item counts even when the collaborative model weighs by presence alone.
    pub(crate) again_decay: Option<(f64, i64)>,
    /// The purchases of the model's customers.
    pub(crate) weighted: &'a Csr,
    pub(crate) data: &'a Interactions,
    pub(crate) filter: &'a ResolvedFilter,
}

impl<'a> Scorer<'a> {
    /// Buffers for one worker.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            acc: vec![0.0; self.items],
            blocked: Blocked::new(self.items),
            touched: Vec::new(),
            cands: Vec::new(),
            algo: self.recommender.scratch(),
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
        s.blocked.clear();
        for &j in q.seen {
            s.blocked.insert(j);
        }
        if !self.filter.include_bought {
            for (k, &j) in q.items.iter().enumerate() {
                let again = match (self.filter.bought_before, q.last_time) {
                    (Some(before), Some(t)) => t[k] <= before,
                    _ => false,
                };
                if !again {
                    s.blocked.insert(j);
                }
            }
        }
        let Some(source) = self.recommender.score(q, &mut s.algo, &mut s.acc, &mut s.touched) else {
            let total = self.customers.max(1) as f32;
            for &j in self.popular {
                if out.len() >= n {
                    break;
                }
                if !s.blocked.contains(j) && !self.filter.banned[j as usize] {
                    let score = self.buyers[j as usize] as f32 / total;
                    out.push(Recommendation { item: ItemIdx(j), score, source: Source::Popular });
                }
            }
            return;
        };
        let blend = self.buy_again_weight > 0.0 && source != Source::BuyAgain;
        if blend {
            self.add_buy_again(q, s, matches!(source, Source::Als | Source::Ease));
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
            if scored && top.admits(score) && !blocked.contains(j) && !self.filter.banned[j as usize] {
                top.push(cands, (j, score));
            }
        }
        touched.clear();
        keep_top(cands, n);
        cands.sort_unstable_by(by_score_then_index);
        for &(j, score) in &s.cands {
            s.blocked.insert(j);
            // In a blend, the customer's own items are offered as what they are: buy-again.
            let source = if blend && q.items.binary_search(&j).is_ok() { Source::BuyAgain } else { source };
            out.push(Recommendation { item: ItemIdx(j), score, source });
        }
        for &j in self.popular {
            if out.len() >= n {
                break;
            }
            if !s.blocked.contains(j) && !self.filter.banned[j as usize] {
                out.push(Recommendation { item: ItemIdx(j), score: 0.0, source: Source::Popular });
            }
        }
    }

    /// The algorithm's raw score of each of `items` for the customer of `q` (0 where it
    /// gives none), before any filter: how strongly this customer's neighbourhood or
    /// factors favour candidates that another component chose (up-sell).
    pub fn affinity(&self, q: &Query<'_>, items: &[u32], s: &mut Scratch, out: &mut Vec<f32>) {
        out.clear();
        if self.recommender.score(q, &mut s.algo, &mut s.acc, &mut s.touched).is_none() {
            let total = self.customers.max(1) as f32;
            out.extend(items.iter().map(|&j| self.buyers[j as usize] as f32 / total));
            return;
        }
        out.extend(items.iter().map(|&j| s.acc[j as usize]));
        for &j in &s.touched {
            s.acc[j as usize] = 0.0;
        }
        s.touched.clear();
    }

    /// Adds the buy-again scores of the bought items that may be recommended (count, decayed
    /// by [`Scorer::again_decay`], times the item's repeat rate), scaled so that the strongest
    /// is `buy_again_weight` times the strongest collaborative score (1 when there is none).
    /// `dense`: the model touched every item already.
    fn add_buy_again(&self, q: &Query<'_>, s: &mut Scratch, dense: bool) {
        let decay = |k: usize| match (self.again_decay, q.last_time) {
            (Some((h, t0)), Some(t)) => crate::matrix::decay_factor(t0, t[k], h),
            _ => 1.0,
        };
        let repeat = |k: usize, j: u32| (f64::from(q.counts[k]) * decay(k)) as f32 * self.repeat[j as usize];
        let allowed = |j: u32| !s.blocked.contains(j);
        let strongest =
            (0..q.items.len()).filter(|&k| allowed(q.items[k])).map(|k| repeat(k, q.items[k])).fold(0f32, f32::max);
        if strongest <= 0.0 {
            return;
        }
        let cf = s.touched.iter().map(|&j| s.acc[j as usize]).fold(0f32, f32::max);
        let scale = self.buy_again_weight * if cf > 0.0 { cf } else { 1.0 } / strongest;
        for (k, &j) in q.items.iter().enumerate() {
            if s.blocked.contains(j) {
                continue;
            }
            let a = &mut s.acc[j as usize];
            if *a == 0.0 && !dense {
                s.touched.push(j);
            }
            *a += scale * repeat(k, j);
        }
    }

    /// Why `rec` was recommended to the customer of `q` (call right after
    /// [`Scorer::recommend`] with the same scratch: user-kNN reuses its neighbours).
    pub fn explain(&self, q: &Query<'_>, rec: &Recommendation, s: &Scratch) -> Reason {
        let j = rec.item.0;
        self.recommender
            .explain(q, j, rec.source, &s.algo)
            .unwrap_or(Reason::Popular { buyers: self.buyers[j as usize] })
    }
}
