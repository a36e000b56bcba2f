//! EASE against a naive dense f64 implementation on random small matrices, both solves
//! against each other, `max_items`, the memory budget (refused before any allocation),
//! damaged parts, and thread-count independence.
//!
//! The oracle builds `G = XᵀX + λI` over the kept items, inverts it by Gauss-Jordan with
//! partial pivoting, forms `B = I - P diag(1 / diag(P))` and scores `s = x B`, all in f64.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cobuy::algo::ease::{Ease, EaseError, EaseParams, EaseParts, EaseSide, EaseSolution};
use cobuy::generate::Rng;
use cobuy::matrix::Csr;
use proptest::prelude::*;
use rayon::prelude::*;

// ---------------------------------------------------------------------------------------
// An allocator that records the largest single allocation made by the current thread. It
// is the whole `it` binary's allocator; other tests run on other threads and do not touch
// what a test here reads.
// ---------------------------------------------------------------------------------------

struct Recording;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(layout.size())));
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Recording = Recording;

// ---------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------

pub(crate) type Dense = Vec<Vec<f64>>;

pub(crate) fn dense(x: &Csr) -> Dense {
    let mut d = vec![vec![0.0; x.cols()]; x.rows()];
    for (r, row) in x.outer_iterator().enumerate() {
        for (c, &v) in row.iter() {
            d[r][c] = f64::from(v);
        }
    }
    d
}

/// The inverse of `a` by Gauss-Jordan elimination with partial pivoting.
pub(crate) fn gauss_jordan(a: &Dense) -> Dense {
    let n = a.len();
    let mut m: Dense = a
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&p, &q| m[p][col].abs().total_cmp(&m[q][col].abs())).unwrap();
        m.swap(col, pivot);
        let d = m[col][col];
        m[col].iter_mut().for_each(|v| *v /= d);
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            let f = row[col];
            if r != col && f != 0.0 {
                row.iter_mut().zip(&pivot_row).for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    m.into_iter().map(|r| r[n..].to_vec()).collect()
}

/// The items EASE keeps: the `max_items` with the most buyers, ties by lower index (all
/// items when 0), ascending.
pub(crate) fn kept_items(x: &Dense, items: usize, max_items: usize) -> Vec<usize> {
    let buyers = |j: usize| x.iter().filter(|r| r[j] != 0.0).count();
    let mut order: Vec<usize> = (0..items).collect();
    order.sort_by(|&a, &b| buyers(b).cmp(&buyers(a)).then(a.cmp(&b)));
    if max_items > 0 {
        order.truncate(max_items);
    }
    order.sort_unstable();
    order
}

/// `B` over the kept items (row-major, `k x k`).
pub(crate) fn oracle_b(x: &Dense, kept: &[usize], lambda: f64) -> Dense {
    let k = kept.len();
    let mut g = vec![vec![0.0; k]; k];
    for row in x {
        for (a, &i) in kept.iter().enumerate() {
            for (b, &j) in kept.iter().enumerate() {
                g[a][b] += row[i] * row[j];
            }
        }
    }
    (0..k).for_each(|a| g[a][a] += lambda);
    let p = gauss_jordan(&g);
    (0..k).map(|i| (0..k).map(|j| if i == j { 0.0 } else { -p[i][j] / p[j][j] }).collect()).collect()
}

/// Scores of every item for the dense row `x` (items outside `kept` score 0).
fn oracle_score(b: &Dense, kept: &[usize], items: usize, x: &[f64]) -> Vec<f64> {
    let mut s = vec![0.0; items];
    for (jb, &j) in kept.iter().enumerate() {
        s[j] = kept.iter().enumerate().map(|(ib, &i)| x[i] * b[ib][jb]).sum();
    }
    s
}

/// Within 1e-4 of the row's largest score.
fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-6);
    for (j, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= 1e-4 * scale,
            "{what}: item {j}: {g} vs oracle {w} (scale {scale})\n got {got:?}\nwant {want:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Random matrices
// ---------------------------------------------------------------------------------------

const WEIGHTS: [f32; 5] = [1.0, 1.0, 0.5, 2.0, 3.75];

fn matrix(rows: usize, cols: usize, density: f64, seed: u64) -> Csr {
    let mut rng = Rng::new(seed, 7);
    let mut tri = sprs::TriMatI::<f32, u32>::new((rows, cols));
    for r in 0..rows {
        for c in 0..cols {
            if rng.unit() < density {
                tri.add_triplet(r, c, WEIGHTS[rng.below(WEIGHTS.len() as u64) as usize]);
            }
        }
    }
    tri.to_csr()
}

fn row(x: &Csr, r: usize) -> (Vec<u32>, Vec<f32>) {
    let v = x.outer_view(r).unwrap();
    (v.indices().to_vec(), v.data().to_vec())
}

fn scores(e: &Ease, items: &[u32], weights: &[f32]) -> Vec<f32> {
    let mut out = vec![f32::NAN; e.items()];
    e.score(items, weights, &mut out, &mut e.scratch());
    out
}

fn params(lambda: f64, max_items: usize, side: EaseSide) -> EaseParams {
    EaseParams { lambda: lambda as f32, max_items, side }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Both solves give the oracle's scores for every customer and for new purchase rows
    /// (fold-in), with and without `max_items`.
    #[test]
    fn both_sides_match_the_dense_oracle(
        rows in 1usize..=12,
        cols in 1usize..=15,
        density in 0.05f64..0.7,
        lambda in prop::sample::select(vec![0.25, 1.0, 4.0, 30.0, 500.0]),
        max_items in prop::sample::select(vec![0usize, 0, 1, 3, 8]),
        seed in any::<u64>(),
    ) {
        let x = matrix(rows, cols, density, seed);
        let d = dense(&x);
        let kept = kept_items(&d, cols, max_items);
        let b = oracle_b(&d, &kept, f64::from(lambda as f32));
        let fitted: Vec<Ease> = [EaseSide::Auto, EaseSide::Items, EaseSide::Customers]
            .into_iter()
            .map(|side| Ease::fit(&x, &params(lambda, max_items, side), u64::MAX).unwrap())
            .collect();
        prop_assert_eq!(fitted[1].side(), EaseSide::Items);
        prop_assert_eq!(fitted[2].side(), EaseSide::Customers);
        let active = d.iter().filter(|r| kept.iter().any(|&j| r[j] != 0.0)).count();
        let bought = fitted[1].kept_items().len();
        let auto = if bought <= active { EaseSide::Items } else { EaseSide::Customers };
        prop_assert_eq!(fitted[0].side(), auto);
        if max_items > 0 {
            prop_assert!(bought <= max_items);
        }

        // Fitted customers, then random new rows (repeated items and unbought ones included).
        let mut rng = Rng::new(seed, 11);
        let mut inputs: Vec<(Vec<u32>, Vec<f32>)> = (0..rows).map(|r| row(&x, r)).collect();
        for _ in 0..3 {
            let n = rng.below(5) as usize;
            let items: Vec<u32> = (0..n).map(|_| rng.below(cols as u64) as u32).collect();
            let weights: Vec<f32> = (0..n).map(|_| WEIGHTS[rng.below(5) as usize]).collect();
            inputs.push((items, weights));
        }
        for (items, weights) in &inputs {
            let mut xd = vec![0.0; cols];
            items.iter().zip(weights).for_each(|(&i, &w)| xd[i as usize] += f64::from(w));
            let want = oracle_score(&b, &kept, cols, &xd);
            let got: Vec<Vec<f32>> = fitted.iter().map(|e| scores(e, items, weights)).collect();
            assert_close(&got[1], &want, "item side");
            assert_close(&got[2], &want, "customer side");
            assert_eq!(&got[0], &got[if auto == EaseSide::Items { 1 } else { 2 }]);
            // The two solves agree with each other as closely as with the oracle.
            let g1: Vec<f64> = got[1].iter().map(|&v| f64::from(v)).collect();
            assert_close(&got[2], &g1, "customer side vs item side");
            for (j, &s) in got[1].iter().enumerate() {
                if !kept.contains(&j) {
                    prop_assert_eq!(s, 0.0);
                }
            }
        }
    }

    /// Whatever is done to the parts, `from_parts` answers without panicking, and a model
    /// that comes back scores like the original when nothing was changed.
    #[test]
    fn damaged_parts_never_panic(
        seed in any::<u64>(),
        customer_side in any::<bool>(),
        what in 0u8..12,
        at in any::<prop::sample::Index>(),
        value in prop::sample::select(vec![f64::NAN, -1.0, 0.0, 1e300, 7.0]),
    ) {
        let side = if customer_side { EaseSide::Customers } else { EaseSide::Items };
        let x = matrix(6, 9, 0.4, seed);
        let e = Ease::fit(&x, &params(2.0, 0, side), u64::MAX).unwrap();
        let mut p = e.to_parts();
        let back = Ease::from_parts(p.clone()).unwrap();
        let (items, weights) = row(&x, 0);
        prop_assert_eq!(scores(&back, &items, &weights), scores(&e, &items, &weights));
        damage(&mut p, what, &at, value);
        if let Ok(d) = Ease::from_parts(p) {
            let mut out = vec![0.0; d.items()];
            d.score(&items, &weights, &mut out, &mut d.scratch());
            d.score(&[0, 3, 1_000_000], &[1.0, 2.0, 3.0], &mut out, &mut d.scratch());
        }
    }
}

/// One kind of damage to `p`.
fn damage(p: &mut EaseParts, what: u8, at: &prop::sample::Index, value: f64) {
    fn poke<T: Copy>(v: &mut [T], at: &prop::sample::Index, x: T) {
        if !v.is_empty() {
            v[at.index(v.len())] = x;
        }
    }
    match (what, &mut p.solution) {
        (0, _) => p.items = p.items.saturating_sub(1 + at.index(3)),
        (1, _) => {
            p.kept.pop();
        }
        (2, _) => poke(&mut p.kept, at, at.index(20) as u32),
        (3, _) => p.params.lambda = value as f32,
        (4, _) => p.params.max_items = 1 + at.index(3),
        (5, EaseSolution::Items { b }) => poke(b, at, value as f32),
        (6, EaseSolution::Items { b }) => {
            b.pop();
        }
        (5, EaseSolution::Customers { m_upper, .. }) => poke(m_upper, at, value),
        (6, EaseSolution::Customers { m_upper, .. }) => {
            m_upper.pop();
        }
        (7, EaseSolution::Customers { diag_p, .. }) => poke(diag_p, at, value),
        (8, EaseSolution::Customers { indptr, .. }) => poke(indptr, at, at.index(1000)),
        (9, EaseSolution::Customers { indices, .. }) => poke(indices, at, at.index(20) as u32),
        (10, EaseSolution::Customers { data, .. }) => poke(data, at, value as f32),
        (11, EaseSolution::Customers { indptr, .. }) => {
            indptr.pop();
        }
        _ => {}
    }
}

#[test]
fn from_parts_rejects_corrupted_parts() {
    let x = matrix(7, 10, 0.4, 3);
    let items_side = Ease::fit(&x, &params(2.0, 0, EaseSide::Items), u64::MAX).unwrap().to_parts();
    let cust_side = Ease::fit(&x, &params(2.0, 0, EaseSide::Customers), u64::MAX).unwrap().to_parts();
    assert!(Ease::from_parts(items_side.clone()).is_ok());
    assert!(Ease::from_parts(cust_side.clone()).is_ok());

    let bad = |p: &EaseParts, f: &dyn Fn(&mut EaseParts)| {
        let mut p = p.clone();
        f(&mut p);
        Ease::from_parts(p).expect_err("damaged parts accepted")
    };
    for p in [&items_side, &cust_side] {
        bad(p, &|p| p.params.lambda = f32::NAN);
        bad(p, &|p| p.params.lambda = 0.0);
        bad(p, &|p| p.items = 3);
        bad(p, &|p| p.kept.swap(0, 1));
        bad(p, &|p| *p.kept.last_mut().unwrap() = 10);
        bad(p, &|p| p.params.max_items = 2);
        bad(p, &|p| p.items = usize::MAX);
    }
    let items = |f: &dyn Fn(&mut Vec<f32>)| {
        bad(&items_side, &|p| {
            if let EaseSolution::Items { b } = &mut p.solution {
                f(b)
            }
        })
    };
    items(&|b| b.truncate(b.len() - 1));
    items(&|b| b.push(0.0));
    items(&|b| b[1] = f32::NAN);
    items(&|b| b[1] = f32::INFINITY);
    items(&|b| b[0] = 0.5); // diagonal
    type Damage = dyn Fn(&mut Vec<f64>, &mut Vec<f64>, &mut Vec<usize>, &mut Vec<u32>, &mut Vec<f32>);
    let cust = |f: &Damage| {
        bad(&cust_side, &|p| {
            if let EaseSolution::Customers { m_upper, diag_p, indptr, indices, data } = &mut p.solution {
                f(m_upper, diag_p, indptr, indices, data)
            }
        })
    };
    cust(&|m, _, _, _, _| {
        m.pop();
    });
    cust(&|m, _, _, _, _| m[2] = f64::NAN);
    cust(&|m, _, _, _, _| m[0] = -1.0);
    cust(&|_, d, _, _, _| d[0] = 0.0);
    cust(&|_, d, _, _, _| d[1] = f64::INFINITY);
    cust(&|_, d, _, _, _| {
        d.pop();
    });
    cust(&|_, _, p, _, _| p.clear());
    cust(&|_, _, p, _, _| {
        p.pop();
    });
    cust(&|_, _, p, _, _| p[1] = 1_000);
    cust(&|_, _, p, _, _| p[0] = 1);
    cust(&|_, _, _, i, _| i[0] = 99);
    cust(&|_, _, p, i, _| {
        // A repeated column in the first row with two or more.
        let r = (0..p.len() - 1).find(|&r| p[r + 1] - p[r] >= 2).unwrap();
        i[p[r] + 1] = i[p[r]];
    });
    cust(&|_, _, _, _, v| v[0] = f32::NAN);
    cust(&|_, _, _, _, v| {
        v.pop();
    });
    let e = bad(&cust_side, &|p| p.solution = EaseSolution::Items { b: vec![] });
    assert!(e.contains("B holds"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Memory budget
// ---------------------------------------------------------------------------------------

#[test]
fn too_large_is_refused_before_allocating() {
    // 3,000 customers each buying two of 2,000 items: the item side is 2,000 x 2,000
    // (64 MB at its peak).
    let (c, n) = (3_000usize, 2_000usize);
    let mut tri = sprs::TriMatI::<f32, u32>::new((c, n));
    for r in 0..c {
        tri.add_triplet(r, r % n, 1.0);
        tri.add_triplet(r, (r * 7 + 1) % n, 1.0);
    }
    let x: Csr = tri.to_csr();
    let p = EaseParams::default();
    let size = Ease::estimate(&x, &p).unwrap();
    assert_eq!((size.side, size.dim, size.bytes), (EaseSide::Items, n, 16 * (n * n) as u64));

    LARGEST.with(|l| l.set(0));
    let err = Ease::fit(&x, &p, 10_000_000).unwrap_err();
    let largest = LARGEST.with(|l| l.get());
    match &err {
        EaseError::TooLarge { side, dim, bytes, budget, max_items } => {
            assert_eq!((*side, *dim, *bytes, *budget), (EaseSide::Items, n, size.bytes, 10_000_000));
            assert_eq!(*max_items, 790); // sqrt(10 MB / 16) = 790.5
        }
        e => panic!("not TooLarge: {e}"),
    }
    assert_eq!(
        err.to_string(),
        "EASE's item-side solve needs two 2,000 x 2,000 dense matrices (64.0 MB); the memory budget allows \
         10.0 MB: restrict with max_items = 790 or use item-knn"
    );
    assert!(largest < 64 * 1024, "allocated {largest} bytes at once before refusing");

    // The suggestion works, and a fit that goes ahead does allocate the dense matrix.
    LARGEST.with(|l| l.set(0));
    let e = Ease::fit(&x, &EaseParams { max_items: 790, ..p }, 10_000_000).unwrap();
    assert_eq!(e.kept_items().len(), 790);
    assert!(LARGEST.with(|l| l.get()) >= 8 * 790 * 790);

    // The customer side is budgeted by customers: 40 customers over 2,000 items fit.
    let wide = matrix(40, 2_000, 0.05, 9);
    let e = Ease::fit(&wide, &p, 16 * 40 * 40).unwrap();
    assert_eq!(e.side(), EaseSide::Customers);
    assert!(matches!(Ease::fit(&wide, &p, 16 * 40 * 40 - 1), Err(EaseError::TooLarge { dim: 40, .. })));
    // Forcing the item side on it needs the bought items' system.
    let forced = EaseParams { side: EaseSide::Items, ..p };
    let bought = e.kept_items().len();
    assert!(bought > 1_000);
    let err = Ease::fit(&wide, &forced, 1 << 20).unwrap_err();
    assert!(matches!(err, EaseError::TooLarge { side: EaseSide::Items, dim, .. } if dim == bought), "{err}");
}

#[test]
fn max_items_keeps_the_most_bought() {
    // Buyers per item: 0 → 3, 1 → 1, 2 → 3, 3 → 2, 4 → 0.
    let entries = [(0, 0), (1, 0), (2, 0), (0, 1), (0, 2), (1, 2), (3, 2), (2, 3), (3, 3)];
    let mut tri = sprs::TriMatI::<f32, u32>::new((4, 5));
    entries.iter().for_each(|&(r, c)| tri.add_triplet(r, c, 1.0));
    let x: Csr = tri.to_csr();
    let kept = |m| Ease::fit(&x, &params(1.0, m, EaseSide::Auto), u64::MAX).unwrap().kept_items().to_vec();
    assert_eq!(kept(0), vec![0, 1, 2, 3]);
    assert_eq!(kept(1), vec![0]);
    assert_eq!(kept(2), vec![0, 2]);
    assert_eq!(kept(3), vec![0, 2, 3]);
    assert_eq!(kept(9), vec![0, 1, 2, 3]);
    let e = Ease::fit(&x, &params(1.0, 2, EaseSide::Auto), u64::MAX).unwrap();
    let s = scores(&e, &[0, 1, 3], &[1.0, 1.0, 1.0]);
    assert_eq!((s[1], s[3], s[4]), (0.0, 0.0, 0.0));
    assert!(s[2] > 0.0);
}

// ---------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------

/// Parts and every customer's scores, fitted and scored in a pool of `threads`.
fn run(x: &Csr, p: &EaseParams, threads: usize) -> (EaseParts, Vec<Vec<u32>>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let e = Ease::fit(x, p, u64::MAX).unwrap();
        let s = (0..x.rows())
            .into_par_iter()
            .map_init(
                || e.scratch(),
                |scratch, r| {
                    let (items, weights) = row(x, r);
                    let mut out = vec![0.0; e.items()];
                    e.score(&items, &weights, &mut out, scratch);
                    out.iter().map(|v| v.to_bits()).collect()
                },
            )
            .collect();
        (e.to_parts(), s)
    })
}

#[test]
fn same_bits_with_one_and_four_threads() {
    // Large enough for faer's parallel kernels (blocks of 128, 512-deep products).
    let cases = [
        (matrix(700, 450, 0.03, 5), EaseSide::Auto),      // item side, 450
        (matrix(420, 1_500, 0.02, 6), EaseSide::Auto),    // customer side, 420
        (matrix(300, 330, 0.05, 7), EaseSide::Customers), // forced
    ];
    for (x, side) in &cases {
        let p = EaseParams { lambda: 3.0, max_items: 0, side: *side };
        let one = run(x, &p, 1);
        let four = run(x, &p, 4);
        assert!(one.0 == four.0, "parts differ between 1 and 4 threads ({side:?})");
        assert!(one.1 == four.1, "scores differ between 1 and 4 threads ({side:?})");
    }
}
