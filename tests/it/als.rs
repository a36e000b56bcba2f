//! Implicit ALS through the public API: convergence, every row solver against the normal
//! equations solved here (an independent dense solve, with error bounds from the
//! arithmetic), fold-in, determinism, storage validation and a planted structure.

use cobuy::algo::als::{Als, AlsParams, AlsParts, Solver};
use cobuy::generate::Rng;
use cobuy::matrix::Csr;
use cobuy::matrix::transpose;

/// A random customers x items matrix: each customer buys 1 to `2 * avg` distinct items
/// with skewed popularity, values 1 to 3.
fn random_matrix(users: usize, items: usize, avg: u64, seed: u64) -> Csr {
    let mut indptr = vec![0];
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    let mut row: Vec<u32> = Vec::new();
    for u in 0..users {
        let mut rng = Rng::new(seed, u as u64);
        row.clear();
        for _ in 0..1 + rng.below(2 * avg) {
            row.push((rng.unit().powi(2) * items as f64) as u32);
        }
        row.sort_unstable();
        row.dedup();
        for &i in &row {
            indices.push(i);
            data.push(1.0 + rng.below(3) as f32);
        }
        indptr.push(indices.len());
    }
    Csr::new((users, items), indptr, indices, data)
}

fn params(factors: usize, iterations: usize) -> AlsParams {
    AlsParams { factors, regularization: 0.1, relative: false, alpha: 2.0, iterations, cg_steps: 3, seed: 7 }
}

fn bits(m: &Als) -> (Vec<u32>, Vec<u32>) {
    (m.user_matrix().iter().map(|v| v.to_bits()).collect(), m.item_matrix().iter().map(|v| v.to_bits()).collect())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn loss_decreases_over_iterations() {
    let x = random_matrix(400, 150, 10, 1);
    let p = params(12, 10);
    let initial = Als::init(400, 150, &p).loss(&x, &p);
    let mut losses = vec![initial];
    let model = Als::fit_with(&x, &p, |_, m| losses.push(m.loss(&x, &p)));
    assert_eq!(losses.len(), 11);
    assert_eq!(*losses.last().unwrap(), model.loss(&x, &p));
    for w in losses.windows(2) {
        assert!(w[1] <= w[0] * (1.0 + 1e-6), "{losses:?}");
    }
    assert!(losses[10] < 0.8 * losses[1] && losses[10] < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn exact_alternation_decreases_the_loss_too() {
    let x = random_matrix(200, 80, 8, 2);
    let xt = transpose(&x);
    let p = params(8, 1);
    let mut m = Als::init(200, 80, &p);
    let mut last = m.loss(&x, &p);
    for _ in 0..5 {
        m.user_step(&x, Solver::Cholesky).unwrap();
        let after_users = m.loss(&x, &p);
        m.item_step(&xt, Solver::Cholesky).unwrap();
        let after_items = m.loss(&x, &p);
        assert!(after_users <= last * (1.0 + 1e-9) && after_items <= after_users * (1.0 + 1e-9));
        last = after_items;
    }
}

/// A dense `f x f` matrix, row-major, in f64.
type Dense = Vec<f64>;

/// The row's normal equations by the module's definition, in f64 from the f32 factors
/// `y` (rows x f) of the other side: `A = Y^T Y + reg I + sum (c - 1) y y^T` and
/// `b = sum c y` over the row's entries, `c = 1 + alpha x` (0 added for values that are
/// not positive). Also `|Y|^T |Y|`, which bounds the rounding of the code's `Y^T Y`.
fn normal_equations(y: &[f32], f: usize, cols: &[u32], vals: &[f32], p: &AlsParams) -> (Dense, Vec<f64>, Dense) {
    let (mut a, mut abs) = (vec![0.0; f * f], vec![0.0; f * f]);
    for row in y.chunks_exact(f) {
        for k in 0..f {
            for l in 0..f {
                let (yk, yl) = (f64::from(row[k]), f64::from(row[l]));
                a[k * f + l] += yk * yl;
                abs[k * f + l] += (yk * yl).abs();
            }
        }
    }
    for d in 0..f {
        a[d * f + d] += f64::from(p.regularization);
    }
    let mut b = vec![0.0; f];
    for (&i, &v) in cols.iter().zip(vals) {
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        let w = if v > 0.0 { f64::from(p.alpha) * f64::from(v) } else { 0.0 };
        for k in 0..f {
            for l in 0..f {
                a[k * f + l] += w * f64::from(yi[k]) * f64::from(yi[l]);
            }
            b[k] += (1.0 + w) * f64::from(yi[k]);
        }
    }
    (a, b, abs)
}

/// The inverse of a dense matrix by Gauss-Jordan elimination with partial pivoting: an
/// algorithm the code does not use (it factors by Cholesky, or iterates).
fn inverse(a: &[f64], f: usize) -> Dense {
    let mut m = a.to_vec();
    let mut inv: Dense = (0..f * f).map(|k| if k / f == k % f { 1.0 } else { 0.0 }).collect();
    for c in 0..f {
        let p = (c..f).max_by(|&x, &y| m[x * f + c].abs().total_cmp(&m[y * f + c].abs())).unwrap();
        for k in 0..f {
            m.swap(c * f + k, p * f + k);
            inv.swap(c * f + k, p * f + k);
        }
        let d = m[c * f + c];
        for k in 0..f {
            m[c * f + k] /= d;
            inv[c * f + k] /= d;
        }
        for r in (0..f).filter(|&r| r != c) {
            let e = m[r * f + c];
            for k in 0..f {
                m[r * f + k] -= e * m[c * f + k];
                inv[r * f + k] -= e * inv[c * f + k];
            }
        }
    }
    inv
}

fn mul(a: &[f64], x: &[f64]) -> Vec<f64> {
    let f = x.len();
    (0..f).map(|k| (0..f).map(|l| a[k * f + l] * x[l]).sum()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `A`-norm of `x - z`.
fn a_norm(a: &[f64], x: &[f64], z: &[f64]) -> f64 {
    let d: Vec<f64> = x.iter().zip(z).map(|(p, q)| p - q).collect();
    dot(&d, &mul(a, &d)).sqrt()
}

/// What `steps` conjugate-gradient steps from `x0` give in exact arithmetic, by CG's
/// defining property: the point of `x0 + span{r, A r, A^2 r, ...}` (`r = b - A x0`) closest
/// to the solution in the `A`-norm, found here by projecting onto an orthonormal basis of
/// that space.
fn krylov_minimiser(a: &[f64], b: &[f64], x0: &[f64], steps: usize) -> Vec<f64> {
    let f = b.len();
    let r: Vec<f64> = b.iter().zip(mul(a, x0)).map(|(b, ax)| b - ax).collect();
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut v = r.clone();
    for _ in 0..steps {
        for q in &basis {
            let c = dot(&v, q);
            v.iter_mut().zip(q).for_each(|(x, y)| *x -= c * y);
        }
        let norm = dot(&v, &v).sqrt();
        if norm <= 1e-12 * dot(&r, &r).sqrt() {
            break;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        basis.push(v.clone());
        v = mul(a, &v);
    }
    // (V^T A V) c = V^T r.
    let k = basis.len();
    let av: Vec<Vec<f64>> = basis.iter().map(|q| mul(a, q)).collect();
    let m: Dense = (0..k * k).map(|e| dot(&basis[e / k], &av[e % k])).collect();
    let rhs: Vec<f64> = basis.iter().map(|q| dot(q, &r)).collect();
    let c = mul(&inverse(&m, k), &rhs);
    (0..f).map(|d| x0[d] + (0..k).map(|j| c[j] * basis[j][d]).sum::<f64>()).collect()
}

/// One side's step (customers of `x`, given the other side's factors `other`) against the
/// normal equations solved here, from the factors `before` the step: the exact solver, 64
/// CG steps and 3 CG steps, each within what its arithmetic supports.
fn check_step(x: &Csr, other: &[f32], before: &[f32], after: [&[f32]; 3], p: &AlsParams) {
    let f = p.factors;
    let [exact, cg64, cg3] = after;
    let eps = f64::from(f32::EPSILON) / 2.0;
    // The code sums `Y^T Y` in f32 over blocks of at most 256 rows (then in f64): each entry
    // is off by at most gamma |Y|^T |Y|, gamma = m eps / (1 - m eps), m = terms + 1.
    let m = (other.len() / f).min(256) as f64 + 1.0;
    let gamma = m * eps / (1.0 - m * eps);
    for u in 0..x.rows() {
        let r = x.indptr().outer_inds_sz(u);
        let (cols, vals) = (&x.indices()[r.clone()], &x.data()[r]);
        let row = |m: &[f32]| -> Vec<f64> { m[u * f..(u + 1) * f].iter().map(|&v| f64::from(v)).collect() };
        if cols.is_empty() {
            assert!(after.iter().all(|m| row(m).iter().all(|&v| v == 0.0)), "row {u} has no entries: zero factors");
            continue;
        }
        let (a, b, abs) = normal_equations(other, f, cols, vals, p);
        let inv = inverse(&a, f);
        let solution = mul(&inv, &b);
        // Exact solver: to first order |dx| <= |A^-1| (gamma |Y|^T|Y|) |x|, then rounded to
        // f32 (eps |x|); the f64 solve itself adds about 1e-16 relative, far below.
        let abs_inv: Dense = inv.iter().map(|v| v.abs()).collect();
        let abs_x: Vec<f64> = solution.iter().map(|v| v.abs()).collect();
        let gram_err: Vec<f64> = mul(&abs, &abs_x).iter().map(|v| gamma * v).collect();
        let bound: Vec<f64> = mul(&abs_inv, &gram_err);
        for (k, (got, want)) in row(exact).iter().zip(&solution).enumerate() {
            let allowed = 1.5 * bound[k] + 2.0 * eps * want.abs() + 1e-12;
            assert!(
                (got - want).abs() <= allowed,
                "row {u}, factor {k}: exact {got}, solution {want}, bound {allowed}"
            );
        }
        // CG in f32 stalls near the solution at about eps kappa(A) |x| (finite-precision
        // CG's attainable accuracy); kappa in the 1-norm, times f for the length of the
        // inner products.
        let norm1 = |m: &[f64]| (0..f).map(|c| (0..f).map(|r| m[r * f + c].abs()).sum::<f64>()).fold(0.0, f64::max);
        let kappa = norm1(&a) * norm1(&inv);
        let size = solution.iter().fold(0.0f64, |s, v| s.max(v.abs()));
        let cg_err = row(cg64).iter().zip(&solution).fold(0.0f64, |e, (g, w)| e.max((g - w).abs()));
        let allowed = f as f64 * eps * kappa * size;
        assert!(cg_err <= allowed, "row {u}: 64 CG steps off by {cg_err}, allowed {allowed} (kappa {kappa})");
        // Three CG steps are the Krylov minimiser of the exact equations, up to the f32
        // arithmetic of the steps, a few eps kappa of the distance they moved; and in the
        // A-norm they never move away from the solution.
        let x0 = row(before);
        let want = krylov_minimiser(&a, &b, &x0, 3);
        let got = row(cg3);
        let moved = want.iter().zip(&x0).fold(0.0f64, |e, (w, s)| e.max((w - s).abs()));
        let off = got.iter().zip(&want).fold(0.0f64, |e, (g, w)| e.max((g - w).abs()));
        let allowed = f as f64 * eps * kappa * (moved + size);
        assert!(off <= allowed, "row {u}: 3 CG steps are {off} from the Krylov minimiser, allowed {allowed}");
        assert!(a_norm(&a, &got, &solution) <= a_norm(&a, &x0, &solution) * (1.0 + 1e-6), "row {u}: CG moved away");
    }
}

#[test]
fn row_solves_match_the_normal_equations_solved_here() {
    let x = random_matrix(300, 120, 12, 3);
    let xt = transpose(&x);
    let p = params(16, 4);
    let model = Als::fit(&x, &p);
    let step = |solver, users: bool| {
        let mut m = model.clone();
        let done = if users { m.user_step(&x, solver) } else { m.item_step(&xt, solver) };
        done.unwrap();
        m
    };
    let solvers = [Solver::Cholesky, Solver::ConjugateGradient { steps: 64 }, Solver::ConjugateGradient { steps: 3 }];
    let users = solvers.map(|s| step(s, true));
    check_step(&x, model.item_matrix(), model.user_matrix(), users.each_ref().map(|m| m.user_matrix()), &p);
    let items = solvers.map(|s| step(s, false));
    check_step(&xt, model.user_matrix(), model.item_matrix(), items.each_ref().map(|m| m.item_matrix()), &p);
}

#[test]
fn fold_in_of_a_known_row_gives_its_factors() {
    let x = random_matrix(200, 90, 10, 4);
    // Folding in during the fit caches the item factors' Gram matrix; every item step must
    // drop it.
    let mut model = Als::fit_with(&x, &params(10, 5), |_, m| assert!(m.fold_in(&[0], &[1.0])[0].is_finite()));
    model.user_step(&x, Solver::Cholesky).unwrap();
    for u in 0..200 {
        let r = x.indptr().outer_inds_sz(u);
        let folded = model.fold_in(&x.indices()[r.clone()], &x.data()[r]);
        assert!(max_diff(&folded, model.user_factors(u)) < 1e-6, "customer {u}");
    }
    assert_eq!(model.fold_in(&[], &[]), vec![0.0; 10]);
    // Unknown items are skipped, extra weights ignored.
    let r = x.indptr().outer_inds_sz(0);
    let mut items = x.indices()[r.clone()].to_vec();
    let mut weights = x.data()[r].to_vec();
    items.push(90);
    weights.extend([1.0, 5.0]);
    assert!(max_diff(&model.fold_in(&items, &weights), model.user_factors(0)) < 1e-6);
}

#[test]
fn same_bits_for_any_thread_count() {
    // Enough customers for several Gram chunks and many parallel splits.
    let x = random_matrix(9_000, 300, 6, 5);
    let p = params(16, 3);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let m = Als::fit(&x, &p);
            let loss = m.loss(&x, &p);
            let r = x.indptr().outer_inds_sz(17);
            let folded = m.fold_in(&x.indices()[r.clone()], &x.data()[r]);
            (bits(&m), loss.to_bits(), folded)
        })
    };
    let one = run(1);
    assert!(one == run(4));
    assert!(one == run(3));
}

#[test]
fn the_seed_decides_the_model() {
    let x = random_matrix(100, 50, 5, 6);
    let a = Als::fit(&x, &params(8, 2));
    let b = Als::fit(&x, &params(8, 2));
    let c = Als::fit(&x, &AlsParams { seed: 8, ..params(8, 2) });
    assert_eq!(bits(&a), bits(&b));
    assert_ne!(a.user_matrix(), c.user_matrix());
    assert_ne!(a.item_matrix(), c.item_matrix());
}

#[test]
fn parts_round_trip_and_bad_parts_are_errors() {
    let x = random_matrix(30, 20, 4, 7);
    let m = Als::fit(&x, &params(4, 2));
    assert_eq!(Als::from_parts(m.to_parts()).unwrap(), m);
    let parts = m.to_parts();
    let bad: Vec<(&str, AlsParts)> = vec![
        ("short customers", AlsParts { user_factors: parts.user_factors[1..].to_vec(), ..parts.clone() }),
        ("long items", AlsParts { item_factors: [&parts.item_factors[..], &[0.0]].concat(), ..parts.clone() }),
        ("customer count", AlsParts { users: 31, ..parts.clone() }),
        ("overflow", AlsParts { items: usize::MAX, ..parts.clone() }),
        ("factors", AlsParts { params: AlsParams { factors: 5, ..parts.params }, ..parts.clone() }),
        ("params", AlsParts { params: AlsParams { regularization: -1.0, ..parts.params }, ..parts.clone() }),
        ("nan", {
            let mut p = parts.clone();
            p.item_factors[3] = f32::NAN;
            p
        }),
        ("inf", {
            let mut p = parts.clone();
            p.user_factors[0] = f32::INFINITY;
            p
        }),
    ];
    for (what, p) in bad {
        assert!(Als::from_parts(p).is_err(), "{what}");
    }
}

#[test]
fn planted_groups_recommend_within_their_group() {
    // Customers 0..60 buy among items 0..20, customers 60..120 among items 20..40.
    let (users, items) = (120usize, 40usize);
    let mut indptr = vec![0];
    let mut indices = Vec::new();
    for u in 0..users {
        let base = if u < 60 { 0 } else { 20 };
        let mut rng = Rng::new(3, u as u64);
        let mut row: Vec<u32> = (0..6).map(|_| base + rng.below(20) as u32).collect();
        row.sort_unstable();
        row.dedup();
        indices.extend(&row);
        indptr.push(indices.len());
    }
    let data = vec![1.0; indices.len()];
    let x = Csr::new((users, items), indptr, indices, data);
    let model = Als::fit(&x, &AlsParams { factors: 4, regularization: 0.1, relative: false, ..AlsParams::default() });
    let mut scores = vec![0f32; items];
    for u in 0..users {
        model.score(model.user_factors(u), &mut scores);
        let bought = &x.indices()[x.indptr().outer_inds_sz(u)];
        let best = (0..items as u32)
            .filter(|i| !bought.contains(i))
            .max_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]).then(b.cmp(&a)))
            .unwrap();
        assert_eq!(best < 20, u < 60, "customer {u} gets item {best}: {bought:?} {scores:?}");
    }
    // A new customer with a group-2 basket.
    let folded = model.fold_in(&[21, 25, 30], &[1.0, 1.0, 1.0]);
    model.score(&folded, &mut scores);
    let top = (0..items).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
    assert!(top >= 20);
}

#[test]
fn odd_inputs_do_not_panic() {
    let p = params(4, 2);
    // Empty shapes.
    for (users, items) in [(0, 0), (0, 5), (5, 0), (3, 3)] {
        let x = Csr::new((users, items), vec![0; users + 1], vec![], vec![]);
        let m = Als::fit(&x, &p);
        assert!(m.user_matrix().iter().chain(m.item_matrix()).all(|&v| v == 0.0));
        assert_eq!(m.loss(&x, &p), 0.0);
    }
    // More factors than items, no regularization: the exact solver needs its ridge.
    let x = random_matrix(10, 3, 2, 8);
    let zero = AlsParams { factors: 16, regularization: 0.0, ..p };
    let mut m = Als::fit(&x, &zero);
    m.user_step(&x, Solver::Cholesky).unwrap();
    assert!(m.user_matrix().iter().all(|v| v.is_finite()));
    assert!(m.fold_in(&[0, 2], &[1.0, 1.0]).iter().all(|v| v.is_finite()));
    // Negative, NaN and infinite values count as 0.
    let odd = Csr::new((2, 3), vec![0, 2, 3], vec![0, 2, 1], vec![-1.0, f32::NAN, f32::INFINITY]);
    let m = Als::fit(&odd, &p);
    assert!(m.user_matrix().iter().chain(m.item_matrix()).all(|v| v.is_finite()));
    // Column-major storage is read as the same matrix.
    assert_eq!(Als::fit(&x.to_csc(), &p), Als::fit(&x, &p));
    // Unchecked parameters are clamped.
    let m = Als::fit(&odd, &AlsParams { factors: 0, iterations: 0, alpha: f32::NAN, ..p });
    assert_eq!(m.factors(), 1);
    assert!(m.params().check().is_ok());
    // Shapes that do not match.
    let mut m = Als::fit(&x, &p);
    assert!(m.user_step(&odd, Solver::Cholesky).is_err());
    assert!(m.item_step(&x, Solver::Cholesky).is_err());
    assert!(m.loss(&odd, &p).is_nan());
    // Out-of-range lookups and odd lengths.
    assert!(m.user_factors(10).is_empty() && m.item_factors(usize::MAX).is_empty());
    let mut out = vec![-1.0; 5];
    m.score(&[1.0], &mut out);
    assert_eq!(out[3..], [-1.0, -1.0]);
    assert_eq!(out[0], m.item_factors(0)[0]);
    m.score(&[1.0; 9], &mut out[..1]);
    assert!(m.fold_in(&[7, u32::MAX], &[1.0, 1.0]).iter().all(|&v| v == 0.0));
}

/// The documented default penalty, computed here from its definition, pair by pair over a
/// list of the entries: twice the square root of the mean, over bought pairs, of the
/// confidence mass (the sum over the item's buyers of `1 + alpha x`, with negative and
/// non-finite `alpha x` counting as 0) of the pair's item.
fn documented_default(x: &Csr, alpha: f32) -> f64 {
    let entries: Vec<(usize, f32)> = x.iter().map(|(&v, (_, i))| (i as usize, v)).collect();
    let conf = |v: f32| {
        let w = f64::from(alpha) * f64::from(v);
        if w > 0.0 && w.is_finite() { 1.0 + w } else { 1.0 }
    };
    let mut sum = 0.0;
    for &(i, _) in &entries {
        sum += entries.iter().filter(|e| e.0 == i).map(|e| conf(e.1)).sum::<f64>();
    }
    if entries.is_empty() { 0.0 } else { 2.0 * (sum / entries.len() as f64).sqrt() }
}

/// `got` is `want` rounded to three significant digits.
fn three_digits_of(got: f32, want: f64) {
    assert_eq!(format!("{got:.2e}").parse::<f32>().unwrap(), got, "{got} has more than three digits");
    assert!((f64::from(got) - want).abs() <= 0.005 * want + 1e-9, "{got} is not {want} to three digits");
}

#[test]
fn the_default_penalty_follows_the_documented_formula_and_a_given_one_is_kept() {
    let mut x = random_matrix(120, 30, 6, 11);
    // Odd values count as confidence 1.
    let n = x.data().len();
    x.data_mut()[n / 3] = -2.0;
    x.data_mut()[n / 2] = f32::NAN;
    x.data_mut()[n - 1] = f32::INFINITY;
    let base = AlsParams { factors: 4, iterations: 2, ..AlsParams::default() };
    assert!(base.relative, "the default penalty is relative to the data");
    for alpha in [0.0f32, 1.0, 3.5] {
        let p = AlsParams { alpha, ..base };
        let want = documented_default(&x, alpha);
        let m = Als::fit(&x, &p);
        assert!(!m.params().relative, "the fitted model holds the penalty it used");
        three_digits_of(m.params().regularization, want);
        assert_eq!(*m.params(), p.resolve(&x));
        // Column-major storage resolves to the same penalty.
        assert_eq!(p.resolve(&x.to_csc()), p.resolve(&x));
        // A given penalty is kept as it is, and a relative one scales.
        assert_eq!(
            Als::fit(&x, &AlsParams { regularization: 0.37, relative: false, ..p }).params().regularization,
            0.37
        );
        let tenth = AlsParams { regularization: 0.2, ..p }.resolve(&x);
        three_digits_of(tenth.regularization, want / 10.0);
    }
    // The scale grows with the confidence: every value times 4 with alpha 1.
    let mut big = x.clone();
    big.data_mut().iter_mut().for_each(|v| *v *= 4.0);
    assert!(base.resolve(&big).regularization > 1.5 * base.resolve(&x).regularization);
    // Before a fit, a description says the rule: auto, or a multiple of it as auto's search
    // tries (a tenth and ten times, on the shortest decimal forms).
    let label = |als: AlsParams| {
        cobuy::model::describe(&cobuy::model::FitParams {
            algorithm: cobuy::algo::Algorithm::Als,
            als,
            ..Default::default()
        })
    };
    assert!(label(base).contains("regularisation auto,"), "{}", label(base));
    assert!(label(AlsParams { regularization: 0.2, ..base }).contains("regularisation auto x 0.1,"));
    assert!(label(AlsParams { regularization: 20.0, ..base }).contains("regularisation auto x 10,"));
    assert!(label(base.resolve(&x)).contains(&format!("regularisation {},", base.resolve(&x).regularization)));
    // An empty matrix has no scale: no penalty, and no panic.
    let empty = Csr::new((3, 4), vec![0; 4], vec![], vec![]);
    assert_eq!(Als::fit(&empty, &base).params().regularization, 0.0);
}

/// On a small catalogue (40 items, 64 factors) a fixed penalty of 0.01, implicit's default
/// and cobuy's before, makes the lists noise, far below popularity; the default penalty
/// keeps ALS at popularity's level. The data: the seeded generator, a random holdout.
#[test]
fn on_a_small_catalogue_the_default_penalty_does_not_collapse() {
    use cobuy::eval::metrics::Metric;
    use cobuy::eval::split::SplitMethod;
    use cobuy::eval::{Target, prepare};
    use cobuy::model::FitParams;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    let mut csv = Vec::new();
    cobuy::generate::generate(&cobuy::generate::GenerateParams::new(1500, 40, 6000, 1), &mut csv).unwrap();
    std::fs::write(&path, csv).unwrap();
    let cols = cobuy::ingest::Columns::new("customer_id", "item_id");
    let log = cobuy::ingest::read_log(&path, &cobuy::ingest::IngestOptions::new(cols)).unwrap().0;
    let prepared = prepare(&log, &SplitMethod::Random { fraction: 0.2, seed: 1 }, false).unwrap();
    let ndcg = |p: FitParams| {
        let runs = prepared.evaluate("x", &p, &[10], &[Target::NewItems]).unwrap();
        runs[0].table.get(Metric::Ndcg, 10).unwrap()
    };
    let als = FitParams { algorithm: cobuy::algo::Algorithm::Als, ..FitParams::default() };
    let popularity = ndcg(FitParams { algorithm: cobuy::algo::Algorithm::Popularity, ..FitParams::default() });
    let fixed = ndcg(FitParams { als: AlsParams { regularization: 0.01, relative: false, ..als.als }, ..als });
    let default = ndcg(als);
    assert!(fixed < 0.6 * popularity, "0.01 scored {fixed}, popularity {popularity}");
    assert!(default >= 0.95 * popularity, "the default scored {default}, popularity {popularity}");
}

/// Through the command line: the default penalty is resolved at fit and `inspect` shows the
/// number; a given one is kept; a bad one is refused with exit code 2.
#[test]
fn cli_resolves_the_default_penalty_and_keeps_a_given_one() {
    use crate::common::{COLUMNS, SEED, purchase_lines, run_cobuy, write_lines};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.join("purchases.csv"), &header, &lines);
    let fit = |extra: &[&str]| {
        let mut args = vec!["fit", "--purchases", "purchases.csv", "--model", "m.cobuy", "--quiet"];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(&["--algorithm", "als", "--factors", "4", "--iterations", "2"]);
        args.extend_from_slice(extra);
        run_cobuy(dir, &args)
    };
    let inspect = || String::from_utf8_lossy(&run_cobuy(dir, &["inspect", "m.cobuy"]).stdout).into_owned();
    for extra in [&[][..], &["--regularization", "auto"], &["--als-alpha", "4"]] {
        let o = fit(extra);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let model = cobuy::model::Model::load(dir.join("m.cobuy")).unwrap();
        let p = model.params().als;
        assert!(!p.relative);
        three_digits_of(p.regularization, documented_default(model.weighted(), p.alpha));
        let text = inspect();
        assert!(text.contains(&format!("regularisation {}", p.regularization)), "{extra:?}: {text}");
    }
    let o = fit(&["--regularization", "0.5"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(cobuy::model::Model::load(dir.join("m.cobuy")).unwrap().params().als.regularization, 0.5);
    assert!(inspect().contains("regularisation 0.5,"));
    for bad in ["-1", "abc", "NaN"] {
        let o = fit(&["--regularization", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("regularization"), "{bad}");
    }
}
