//! A matrix in, each item's top-k most similar items out.
//!
//! Item-item cosine over the columns of the weighted customer x item matrix, computed
//! row by row (Gustavson): for item `i`, walk its buyers and every item they bought,
//! accumulating dot products into a dense per-worker accumulator; divide by the norms;
//! keep the top `k`. The full item x item product is never materialised.
//!
//! Architecture invariant: kernels do no I/O and cannot fail; the result depends only on
//! the input, never on the number of threads (each row is computed by one worker, in a
//! fixed order).

use rayon::prelude::*;

use crate::matrix::Csr;

/// Items per parallel task: large enough to amortise scheduling, small enough to balance.
const BLOCK: usize = 64;

/// Transposes a CSR matrix (counting sort; rows of the result are sorted).
pub fn transpose(m: &Csr) -> Csr {
    let (rows, cols) = m.shape();
    let indptr = m.proper_indptr();
    let mut tptr = vec![0usize; cols + 1];
    for &c in m.indices() {
        tptr[c as usize + 1] += 1;
    }
    for c in 0..cols {
        tptr[c + 1] += tptr[c];
    }
    let mut next = tptr.clone();
    let mut tind = vec![0u32; m.nnz()];
    let mut tval = vec![0f32; m.nnz()];
    for r in 0..rows {
        for k in indptr[r]..indptr[r + 1] {
            let c = m.indices()[k] as usize;
            tind[next[c]] = r as u32;
            tval[next[c]] = m.data()[k];
            next[c] += 1;
        }
    }
    Csr::new((cols, rows), tptr, tind, tval)
}

/// Orders candidates by similarity descending, then index ascending: a total order, so
/// the selected set and its order never depend on how the candidates were gathered.
#[inline]
pub(crate) fn by_score_then_index(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Keeps the best `k` candidates under [`by_score_then_index`], unsorted.
pub(crate) fn keep_top(cands: &mut Vec<(u32, f32)>, k: usize) {
    if cands.len() > k {
        if k > 0 {
            cands.select_nth_unstable_by(k - 1, by_score_then_index);
        }
        cands.truncate(k);
    }
}

/// One block's row lengths and (neighbour, similarity) entries.
type Block = (Vec<usize>, Vec<(u32, f32)>);

struct Scratch {
    acc: Vec<f32>,
    touched: Vec<u32>,
    cands: Vec<(u32, f32)>,
}

/// Each item's top-`k` neighbours by cosine similarity of the matrix's columns, as an
/// items x items CSR matrix (columns sorted; only positive similarities; no self-pairs).
pub fn item_cosine_top_k(weighted: &Csr, k: usize) -> Csr {
    let items = weighted.cols();
    let by_item = transpose(weighted);
    let norms: Vec<f32> = (0..items)
        .map(|i| {
            let r = by_item.indptr().outer_inds_sz(i);
            by_item.data()[r].iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt() as f32
        })
        .collect();
    let xptr = weighted.proper_indptr();
    let (xind, xval) = (weighted.indices(), weighted.data());
    let tptr = by_item.proper_indptr();
    let (tind, tval) = (by_item.indices(), by_item.data());

    let blocks: Vec<Block> = (0..items.div_ceil(BLOCK))
        .into_par_iter()
        .map_init(
            || Scratch { acc: vec![0.0; items], touched: Vec::new(), cands: Vec::new() },
            |s, block| {
                let rows = block * BLOCK..((block + 1) * BLOCK).min(items);
                let mut lens = Vec::with_capacity(rows.len());
                let mut out = Vec::new();
                for i in rows {
                    for t in tptr[i]..tptr[i + 1] {
                        let (u, wi) = (tind[t] as usize, tval[t]);
                        for x in xptr[u]..xptr[u + 1] {
                            let j = xind[x] as usize;
                            if s.acc[j] == 0.0 {
                                s.touched.push(j as u32);
                            }
                            s.acc[j] += wi * xval[x];
                        }
                    }
                    s.cands.clear();
                    for &j in &s.touched {
                        let dot = std::mem::take(&mut s.acc[j as usize]);
                        let denom = norms[i] * norms[j as usize];
                        if j as usize != i && dot > 0.0 && denom > 0.0 {
                            s.cands.push((j, dot / denom));
                        }
                    }
                    s.touched.clear();
                    keep_top(&mut s.cands, k);
                    s.cands.sort_unstable_by_key(|c| c.0);
                    lens.push(s.cands.len());
                    out.extend_from_slice(&s.cands);
                }
                (lens, out)
            },
        )
        .collect();

    let mut indptr = Vec::with_capacity(items + 1);
    indptr.push(0);
    let total = blocks.iter().map(|b| b.1.len()).sum();
    let (mut indices, mut data) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for (lens, entries) in blocks {
        for len in lens {
            indptr.push(indptr.last().copied().unwrap_or(0) + len);
        }
        for (j, v) in entries {
            indices.push(j);
            data.push(v);
        }
    }
    Csr::new((items, items), indptr, indices, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_round_trips() {
        let m = Csr::new((2, 3), vec![0, 2, 3], vec![0, 2, 1], vec![1.0, 2.0, 3.0]);
        let t = transpose(&m);
        assert_eq!(t.shape(), (3, 2));
        assert_eq!(t.indices(), [0, 1, 0]);
        assert_eq!(t.data(), [1.0, 3.0, 2.0]);
        assert_eq!(transpose(&t), m);
    }

    #[test]
    fn keep_top_breaks_ties_by_index() {
        let mut c = vec![(5, 1.0), (2, 1.0), (9, 3.0), (1, 0.5)];
        keep_top(&mut c, 2);
        c.sort_by(by_score_then_index);
        assert_eq!(c, [(9, 3.0), (2, 1.0)]);
    }
}
