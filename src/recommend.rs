//! A customer in, ranked items out.
//!
//! Item-based collaborative filtering: a customer's score for item `j` is
//! `sum over bought items i of weight(customer, i) * sim(i, j)`, where `sim(i, ·)` holds
//! only `i`'s top-k neighbours. Items the customer bought or saw are never recommended.
//! When the neighbours yield fewer than `n` items, the list is filled with the most
//! popular items the customer has not bought, marked [`Source::Popular`] with score 0, so
//! that every customer gets a full list and a reader can tell the two apart.
//!
//! Ranking: score descending, then item index ascending (= natural item id order).

use serde::Serialize;

use crate::ids::{CustomerIdx, ItemIdx};
use crate::matrix::{Csr, RowSets};
use crate::similarity::{by_score_then_index, keep_top};

/// Why an item was recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Scored by item-based collaborative filtering.
    ItemKnn,
    /// Filled in from overall popularity (the neighbours gave too few items).
    Popular,
}

impl Source {
    /// The name written in output files.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::ItemKnn => "item-knn",
            Source::Popular => "popular",
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

/// Per-worker buffers, sized to the catalogue once and reused for every customer.
#[derive(Debug, Clone)]
pub struct Scratch {
    acc: Vec<f32>,
    /// `visited[j] == stamp` when `j` is in `touched` for the current customer.
    visited: Vec<u32>,
    /// `blocked[j] == stamp` when `j` must not be recommended to the current customer.
    blocked: Vec<u32>,
    stamp: u32,
    touched: Vec<u32>,
    cands: Vec<(u32, f32)>,
}

impl Scratch {
    /// Buffers for a catalogue of `items` items.
    pub fn new(items: usize) -> Self {
        Scratch {
            acc: vec![0.0; items],
            visited: vec![0; items],
            blocked: vec![0; items],
            stamp: 0,
            touched: Vec::new(),
            cands: Vec::new(),
        }
    }

    fn next_stamp(&mut self) -> u32 {
        if self.stamp == u32::MAX {
            self.visited.fill(0);
            self.blocked.fill(0);
            self.stamp = 0;
        }
        self.stamp += 1;
        self.stamp
    }
}

/// What scoring reads: borrowed from a fitted model.
#[derive(Debug, Clone, Copy)]
pub struct ItemKnnScorer<'a> {
    /// Weighted customer x item matrix.
    pub weighted: &'a Csr,
    /// Items x items top-k neighbours.
    pub neighbors: &'a Csr,
    /// Items seen without a purchase, per customer.
    pub seen_only: &'a RowSets,
    /// All items, most bought first.
    pub popular: &'a [u32],
}

impl ItemKnnScorer<'_> {
    /// Scores `items` (a customer's bought items with their weights) and writes the top
    /// `n` into `out`, best first. `exclude` lists further items never to recommend.
    pub fn score_items(
        &self,
        items: &[u32],
        weights: &[f32],
        exclude: &[u32],
        n: usize,
        s: &mut Scratch,
        out: &mut Vec<Recommendation>,
    ) {
        out.clear();
        let stamp = s.next_stamp();
        for &j in items.iter().chain(exclude) {
            s.blocked[j as usize] = stamp;
        }
        let (nptr, nind, nval) = (self.neighbors.indptr(), self.neighbors.indices(), self.neighbors.data());
        for (&i, &w) in items.iter().zip(weights) {
            for k in nptr.outer_inds_sz(i as usize) {
                let j = nind[k] as usize;
                if s.visited[j] != stamp {
                    s.visited[j] = stamp;
                    s.touched.push(j as u32);
                }
                s.acc[j] += w * nval[k];
            }
        }
        s.cands.clear();
        for &j in &s.touched {
            let score = std::mem::take(&mut s.acc[j as usize]);
            if s.blocked[j as usize] != stamp && score > 0.0 {
                s.cands.push((j, score));
            }
        }
        s.touched.clear();
        keep_top(&mut s.cands, n);
        s.cands.sort_unstable_by(by_score_then_index);
        for &(j, score) in &s.cands {
            s.blocked[j as usize] = stamp;
            out.push(Recommendation { item: ItemIdx(j), score, source: Source::ItemKnn });
        }
        for &j in self.popular {
            if out.len() >= n {
                break;
            }
            if s.blocked[j as usize] != stamp {
                out.push(Recommendation { item: ItemIdx(j), score: 0.0, source: Source::Popular });
            }
        }
    }

    /// The top `n` items for a customer in the model, best first, into `out`.
    pub fn recommend(&self, c: CustomerIdx, n: usize, s: &mut Scratch, out: &mut Vec<Recommendation>) {
        let r = self.weighted.indptr().outer_inds_sz(c.get());
        let items = &self.weighted.indices()[r.clone()];
        let weights = &self.weighted.data()[r];
        self.score_items(items, weights, self.seen_only.row(c.get()), n, s, out);
    }
}

/// The items anyone bought, by number of buyers descending, then by index.
pub fn popularity_order(weighted: &Csr) -> Vec<u32> {
    let mut buyers = vec![0u32; weighted.cols()];
    for &j in weighted.indices() {
        buyers[j as usize] += 1;
    }
    let mut order: Vec<u32> = (0..weighted.cols() as u32).filter(|&j| buyers[j as usize] > 0).collect();
    order.sort_by_key(|&j| (std::cmp::Reverse(buyers[j as usize]), j));
    order
}
