//! Item-based collaborative filtering: each item's top-k neighbours, fitted once;
//! a customer's score for item `j` is the sum over their bought items `i` of
//! `weight(customer, i) * sim(i, j)` ("customers who bought X also bought Y").

use rayon::prelude::*;

use super::baseline;
use super::similarity::{Measure, Packed, RowStats, SimilarityParams, Ties, TopK, accumulate, balanced_ranges};
use super::{Query, Reason, top_three};
use crate::matrix::{Csr, transpose, transpose_renamed};

/// Each item's top-`k` neighbours over the columns of the weighted customer x item matrix.
///
/// `undecayed`: the same weights before time decay, when they decay. Each item's column is
/// then compared, undecayed, with the other items' decayed columns, and lengths (RP3beta:
/// totals) are the undecayed ones, so that an item whose buyers all bought long ago is a
/// weak neighbour (see [`crate::matrix::Weighting`]).
///
/// Items are relabelled by popularity first: the accumulator's hot entries (bestsellers,
/// touched by almost every row) then sit together in cache. Sums run in the same order
/// and ties still break by the original index, so the result is the same either way.
pub fn item_top_k(weighted: &Csr, undecayed: Option<&Csr>, k: usize, params: SimilarityParams) -> Csr {
    let items = weighted.cols();
    if params.ties == Ties::VisitOrder {
        let by_item = transpose(undecayed.unwrap_or(weighted));
        let stats = RowStats::of(&by_item);
        return TopK::new(&by_item, weighted, &stats, params).without_pruning().all(k);
    }
    let buyers = baseline::buyers(weighted);
    let mut label: Vec<u32> = (0..items as u32).collect();
    label.sort_by_key(|&j| (std::cmp::Reverse(buyers[j as usize]), j));
    let mut row_of = vec![0u32; items];
    for (r, &l) in label.iter().enumerate() {
        row_of[l as usize] = r as u32;
    }
    if let Measure::Rp3Beta { alpha, .. } = params.measure {
        let x = relabel_columns(weighted, &row_of);
        let plain = undecayed.map(|u| relabel_columns(u, &row_of));
        let plain = plain.as_ref().unwrap_or(&x);
        let by_item = transpose(plain);
        // Step one from item i to customer u: x_ui over i's column sum; step two from u to
        // item j: x'_uj over u's row sum (x' decayed, sums undecayed); both raised to
        // alpha. The kernel's dot product of the two is the walk's probability.
        let step = |m: &Csr, totals: &Csr| {
            let ptr = m.proper_indptr();
            let mut data = m.data().to_vec();
            for w in ptr.windows(2) {
                let sum: f64 = totals.data()[w[0]..w[1]].iter().map(|&v| f64::from(v)).sum();
                // A row whose weights are all zero takes no step at all, rather than
                // 0 / 0 = NaN, which would remove every pair it touches.
                let p = |v: f32| if sum > 0.0 { (f64::from(v) / sum).powf(f64::from(alpha)) as f32 } else { 0.0 };
                for v in &mut data[w[0]..w[1]] {
                    *v = p(*v);
                }
            }
            Csr::new(m.shape(), ptr.into_owned(), m.indices().to_vec(), data)
        };
        let (from_item, to_item) = (step(&by_item, &by_item), step(&x, plain));
        let stats = RowStats::of(&from_item);
        return TopK::new(&from_item, &to_item, &stats, params).relabelled(&label, &row_of).without_pruning().all(k);
    }
    // The queries: every item's undecayed column; the candidates: customers' rows, packed
    // (no relabelled copy of the matrix is made but the packed one).
    let by_item = transpose_renamed(undecayed.unwrap_or(weighted), &row_of);
    let stats = RowStats::of(&by_item);
    let Some(rows) = packed_renamed(weighted, &row_of) else {
        let x = relabel_columns(weighted, &row_of);
        return TopK::new(&by_item, &x, &stats, params).relabelled(&label, &row_of).without_pruning().all(k);
    };
    // Each query names a customer by the first slot of their packed row.
    let ptr = weighted.proper_indptr();
    let shape = by_item.shape();
    let (qptr, mut customers, data) = by_item.into_raw_storage();
    customers.par_iter_mut().for_each(|u| *u = Packed::slot(&ptr, *u as usize));
    let by_slot = Csr::new((shape.0, rows.len()), qptr, customers, data);
    TopK::packed(&by_slot, &rows, &stats, params).relabelled(&label, &row_of).all(k)
}

/// The matrix's rows with column `c` renamed `to[c]`, packed ([`Packed`]), rows in
/// parallel; `None` when it is too large to pack.
fn packed_renamed(m: &Csr, to: &[u32]) -> Option<Packed> {
    let ptr = m.proper_indptr();
    let ranges = balanced_ranges(m.rows(), |r| (ptr[r + 1] - ptr[r]) as u64 + 1, 64);
    Packed::build(&ptr, ranges, |rows, piece| {
        let mut row = Vec::new();
        let mut at = 0;
        for r in rows {
            renamed_row(m, to, r, &mut row);
            piece[at] = [row.len() as u32, 0];
            for (slot, &(c, v)) in piece[at + 1..].iter_mut().zip(&row) {
                *slot = [c, v.to_bits()];
            }
            at += 1 + row.len();
        }
    })
}

/// Row `r` of `m` with column `c` renamed `to[c]`, sorted by the new names, into `row`.
fn renamed_row(m: &Csr, to: &[u32], r: usize, row: &mut Vec<(u32, f32)>) {
    let range = m.indptr().outer_inds_sz(r);
    row.clear();
    row.extend(m.indices()[range.clone()].iter().zip(&m.data()[range]).map(|(&c, &v)| (to[c as usize], v)));
    row.sort_unstable_by_key(|e| e.0);
}

/// The matrix with column `c` renamed `to[c]` (rows re-sorted), rows in parallel.
fn relabel_columns(m: &Csr, to: &[u32]) -> Csr {
    let ptr = m.proper_indptr().into_owned();
    let mut indices = vec![0u32; m.nnz()];
    let mut data = vec![0f32; m.nnz()];
    // Ranges of rows with about equal numbers of entries, each with its own part of the
    // result.
    let ranges = balanced_ranges(m.rows(), |r| (ptr[r + 1] - ptr[r]) as u64 + 1, 64);
    let mut pieces = Vec::with_capacity(ranges.len());
    let (mut ind_rest, mut val_rest) = (indices.as_mut_slice(), data.as_mut_slice());
    for r in ranges {
        let len = ptr[r.end] - ptr[r.start];
        let (ind_piece, ind_tail) = std::mem::take(&mut ind_rest).split_at_mut(len);
        let (val_piece, val_tail) = std::mem::take(&mut val_rest).split_at_mut(len);
        (ind_rest, val_rest) = (ind_tail, val_tail);
        pieces.push((r, ind_piece, val_piece));
    }
    pieces.into_par_iter().for_each(|(rows, ind_piece, val_piece)| {
        let base = ptr[rows.start];
        let mut row: Vec<(u32, f32)> = Vec::new();
        for r in rows {
            renamed_row(m, to, r, &mut row);
            for (k, &(c, v)) in row.iter().enumerate() {
                ind_piece[ptr[r] - base + k] = c;
                val_piece[ptr[r] - base + k] = v;
            }
        }
    });
    Csr::new(m.shape(), ptr, indices, data)
}

/// Adds the customer's score of every neighbour of their items into `acc`.
pub(crate) fn score(neighbors: &Csr, q: &Query<'_>, acc: &mut [f32], touched: &mut Vec<u32>) {
    accumulate(neighbors, q.items, q.weights, acc, &mut [], touched);
}

/// The customer's items that contributed most to item `j`'s score.
pub(crate) fn explain(neighbors: &Csr, q: &Query<'_>, j: u32) -> Reason {
    let mut contrib: Vec<(u32, f32)> = Vec::new();
    for (&i, &w) in q.items.iter().zip(q.weights) {
        let r = neighbors.indptr().outer_inds_sz(i as usize);
        let row = &neighbors.indices()[r.clone()];
        if let Ok(p) = row.binary_search(&j) {
            contrib.push((i, w * neighbors.data()[r.start + p]));
        }
    }
    Reason::BoughtWith(top_three(contrib))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp3beta_ignores_a_customer_whose_weights_are_all_zero() {
        // Customer 0 bought items 0 and 1 with weights decayed to zero; customer 1 bought
        // both with weight 1. The zero row must not hide the pair customer 1 makes.
        let x = Csr::new((2, 2), vec![0, 2, 4], vec![0, 1, 0, 1], vec![0.0, 0.0, 1.0, 1.0]);
        let params = SimilarityParams { measure: Measure::Rp3Beta { alpha: 1.0, beta: 0.5 }, ..Default::default() };
        let n = item_top_k(&x, None, 5, params);
        assert_eq!(n.indices(), [1, 0], "each item is the other's neighbour");
        assert!(n.data().iter().all(|v| v.is_finite() && *v > 0.0), "{:?}", n.data());
    }
}
