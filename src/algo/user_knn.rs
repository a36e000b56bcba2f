//! Customer-based collaborative filtering: a customer's score for item `j` is the sum over
//! their `k` most similar customers `v` of `sim(customer, v) * weight(v, j)` ("customers
//! like you also bought"). Neighbours are found at scoring time by the [`similarity`]
//! kernel over customers: a customer x customer matrix would grow with the square of the
//! customers.
//!
//! [`similarity`]: super::similarity

use super::similarity::{TopK, accumulate};
use super::{Query, Reason, Scratch};
use crate::ids::CustomerIdx;
use crate::matrix::{Csr, Interactions};

/// What user-kNN scores from, borrowed from a model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserKnn<'a> {
    /// The similarity kernel over customers.
    pub kernel: TopK<'a>,
    /// The weighted customer x item matrix.
    pub weighted: &'a Csr,
    /// The purchases (which items each neighbour bought).
    pub data: &'a Interactions,
    /// Neighbours per customer.
    pub k: usize,
}

impl UserKnn<'_> {
    /// Finds the customer's neighbours (kept in `s.neighbors`) and adds their weighted
    /// purchases into `acc`.
    pub fn score(&self, q: &Query<'_>, s: &mut Scratch, acc: &mut [f32], touched: &mut Vec<u32>) {
        s.neighbors.clear();
        if let Some(ks) = s.kernel.as_mut() {
            self.kernel.query(q.items, q.weights, q.own.map(CustomerIdx::get), self.k, ks, &mut s.neighbors);
        }
        s.ids.clear();
        s.sims.clear();
        s.ids.extend(s.neighbors.iter().map(|v| v.index));
        s.sims.extend(s.neighbors.iter().map(|v| v.sim));
        accumulate(self.weighted, &s.ids, &s.sims, acc, &mut [], touched);
    }

    /// The neighbours (found by the last [`UserKnn::score`]) who bought item `j`.
    pub fn explain(&self, j: u32, s: &Scratch) -> Reason {
        let bought: Vec<_> = s
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
}
