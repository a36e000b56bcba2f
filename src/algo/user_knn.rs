//! Customer-based collaborative filtering: a customer's score for item `j` is the sum over
//! their `k` most similar customers `v` of `sim(customer, v) * weight(v, j)` ("customers
//! like you also bought"). Neighbours are found at scoring time by the [`similarity`]
//! kernel over customers: a customer x customer matrix would grow with the square of the
//! customers.
//!
//! [`similarity`]: super::similarity

use super::similarity::{KernelScratch, Neighbor, TopK, accumulate};
use super::{Query, Reason, Scratch};
use crate::ids::CustomerIdx;
use crate::matrix::{Csr, Interactions, WeightStats, Weighting};

/// Customer similarity: the [`TopK`] kernel over the weighted customer rows, queried with
/// a customer's undecayed weights, so that under time decay only the neighbours'
/// purchases decay (the kernel's lengths are undecayed too; see [`Weighting`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CustomerKernel<'a> {
    kernel: TopK<'a>,
    /// The weighted customer x item matrix.
    pub weighted: &'a Csr,
    /// The purchases (counts, and which items each customer bought).
    pub data: &'a Interactions,
    /// The weighting without its decay and the corpus statistics, when the weights decay.
    undecayed: Option<(Weighting, &'a WeightStats)>,
}

/// One worker's buffers for [`CustomerKernel`].
#[derive(Debug, Clone)]
pub(crate) struct CustomerScratch {
    kernel: KernelScratch,
    /// The query's undecayed weights.
    weights: Vec<f32>,
}

impl<'a> CustomerKernel<'a> {
    /// A kernel over `weighted`'s rows (its rows' lengths in `kernel` undecayed), weighed by
    /// `weighting` from `data` with the corpus statistics `stats`.
    pub fn new(
        kernel: TopK<'a>,
        weighted: &'a Csr,
        data: &'a Interactions,
        weighting: &Weighting,
        stats: &'a WeightStats,
    ) -> Self {
        CustomerKernel { kernel, weighted, data, undecayed: weighting.undecayed().map(|w| (w, stats)) }
    }

    /// Also counts shared items (to report them).
    pub fn counting_shared(mut self) -> Self {
        self.kernel = self.kernel.counting_shared();
        self
    }

    /// Buffers for one worker.
    pub fn scratch(&self) -> CustomerScratch {
        CustomerScratch { kernel: self.kernel.scratch(), weights: Vec::new() }
    }

    /// The `k` customers most similar to one who bought `items` (sorted, distinct) with
    /// these raw `counts`, weighed `weights` by the model's weighting, best first, into
    /// `out`; `own` (their row in the model, if any) is never their own neighbour.
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &self,
        items: &[u32],
        counts: &[f32],
        weights: &[f32],
        own: Option<usize>,
        k: usize,
        s: &mut CustomerScratch,
        out: &mut Vec<Neighbor>,
    ) {
        let weights = match self.undecayed {
            Some((plain, stats)) => {
                plain.weigh_row(stats, items, counts, None, &mut s.weights);
                &s.weights[..]
            }
            None => weights,
        };
        self.kernel.query(items, weights, own, k, &mut s.kernel, out);
    }

    /// The `k` customers most similar to model customer `c`, best first, into `out`.
    pub fn row(&self, c: CustomerIdx, k: usize, s: &mut CustomerScratch, out: &mut Vec<Neighbor>) {
        let r = self.weighted.indptr().outer_inds_sz(c.get());
        let (items, weights) = (&self.weighted.indices()[r.clone()], &self.weighted.data()[r.clone()]);
        self.query(items, &self.data.counts().data()[r], weights, Some(c.get()), k, s, out);
    }
}

/// What user-kNN scores from, borrowed from a model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserKnn<'a> {
    /// The similarity kernel over customers (and the matrix it scores from).
    pub customers: CustomerKernel<'a>,
    /// Neighbours per customer.
    pub k: usize,
}

impl UserKnn<'_> {
    /// Finds the customer's neighbours (kept in `s.neighbors`) and adds their weighted
    /// purchases into `acc`.
    pub fn score(&self, q: &Query<'_>, s: &mut Scratch, acc: &mut [f32], touched: &mut Vec<u32>) {
        s.neighbors.clear();
        if let Some(ks) = s.kernel.as_mut() {
            let own = q.own.map(CustomerIdx::get);
            self.customers.query(q.items, q.counts, q.weights, own, self.k, ks, &mut s.neighbors);
        }
        s.ids.clear();
        s.sims.clear();
        s.ids.extend(s.neighbors.iter().map(|v| v.index));
        s.sims.extend(s.neighbors.iter().map(|v| v.sim));
        accumulate(self.customers.weighted, &s.ids, &s.sims, acc, &mut [], touched);
    }

    /// The neighbours (found by the last [`UserKnn::score`]) who bought item `j`.
    pub fn explain(&self, j: u32, s: &Scratch) -> Reason {
        let data = self.customers.data;
        let bought: Vec<_> =
            s.neighbors.iter().filter(|v| data.purchases(CustomerIdx(v.index)).0.binary_search(&j).is_ok()).collect();
        Reason::SimilarCustomers {
            ids: bought.iter().take(3).map(|v| CustomerIdx(v.index)).collect(),
            buyers: bought.len() as u32,
            of: s.neighbors.len() as u32,
        }
    }
}
