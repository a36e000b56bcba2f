//! Implicit ALS through the public API: convergence, the CG solver against the exact one,
//! fold-in, determinism, storage validation and a planted structure.
//!
//! Timings (not a test): `cargo test --release --test it als:: -- --ignored --nocapture`.

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
    AlsParams { factors, regularization: 0.1, alpha: 2.0, iterations, cg_steps: 3, seed: 7 }
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

#[test]
fn many_cg_steps_reach_the_exact_solution() {
    let x = random_matrix(300, 120, 12, 3);
    let p = params(16, 4);
    let model = Als::fit(&x, &p);
    let (mut cg, mut exact) = (model.clone(), model.clone());
    cg.user_step(&x, Solver::ConjugateGradient { steps: 64 }).unwrap();
    exact.user_step(&x, Solver::Cholesky).unwrap();
    let d = max_diff(cg.user_matrix(), exact.user_matrix());
    assert!(d < 1e-4, "max difference {d}");
    // And three steps from a warm start are already close.
    let mut few = model.clone();
    few.user_step(&x, Solver::ConjugateGradient { steps: 3 }).unwrap();
    assert!(max_diff(few.user_matrix(), exact.user_matrix()) < 0.05);
    // Items too.
    let xt = transpose(&x);
    let (mut cg, mut exact) = (model.clone(), model);
    cg.item_step(&xt, Solver::ConjugateGradient { steps: 64 }).unwrap();
    exact.item_step(&xt, Solver::Cholesky).unwrap();
    let d = max_diff(cg.item_matrix(), exact.item_matrix());
    assert!(d < 1e-4, "max difference {d}");
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
    let model = Als::fit(&x, &AlsParams { factors: 4, regularization: 0.1, ..AlsParams::default() });
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

/// Process CPU seconds (user + system), where `/proc` tells them.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Fit times on generated data (64 factors, 15 iterations, log weighting): `--ignored
/// --nocapture`. Purchase rows are chosen so that the merged matrices hold about 900K and
/// 2M pairs.
#[test]
#[ignore]
fn timing() {
    use cobuy::generate::{GenerateParams, generate};
    use cobuy::ingest::{Columns, IngestOptions, read_purchases};
    use cobuy::matrix::{Scheme, Weighting};
    for (c, i, n) in [(2_500, 65_000, 1_450_000), (100_000, 10_000, 2_230_000)] {
        let dir = std::env::temp_dir().join(format!("cobuy-als-timing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("purchases.csv");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        generate(&GenerateParams::new(c, i, n, 42), &mut file).unwrap();
        drop(file);
        let data = read_purchases(&path, &IngestOptions::new(Columns::new("customer_id", "item_id"))).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let data = data.interactions;
        let w = Weighting { scheme: Scheme::Log, half_life_days: None, reference_time: None };
        let x = w.apply(&data, &w.stats(&data));
        let p = AlsParams::default();
        let (start, cpu) = (std::time::Instant::now(), cpu_seconds());
        let model = Als::fit(&x, &p);
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds().zip(cpu).map_or(f64::NAN, |(b, a)| b - a);
        println!(
            "{} x {} x {} pairs: fit {secs:.2} s wall, {cpu:.2} s CPU, {} threads (loss {:.1})",
            x.rows(),
            x.cols(),
            x.nnz(),
            rayon::current_num_threads(),
            model.loss(&x, &p)
        );
    }
}
