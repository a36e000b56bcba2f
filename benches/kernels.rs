//! Kernel benchmarks on a seeded synthetic matrix (Zipf item popularity, skewed customer
//! activity): item-item top-k cosine, and scoring every customer into a CSV buffer.
//!
//! `cargo bench --bench kernels`

use cobuy::batch::write_recommendations;
use cobuy::ids::CustomerIdx;
use cobuy::matrix::{InteractionsBuilder, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::similarity::item_cosine_top_k;
use criterion::{Criterion, criterion_group, criterion_main};

/// A small deterministic generator (64-bit LCG), so the bench needs no extra crates.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn synthetic(customers: usize, items: usize, purchases: usize) -> Model {
    let mut rng = Lcg(42);
    // Zipf(s = 0.8) over items by inverse CDF on a precomputed table.
    let weights: Vec<f64> = (1..=items).map(|r| 1.0 / (r as f64).powf(0.8)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(items);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut b = InteractionsBuilder::new();
    for _ in 0..purchases {
        // Skewed activity: squaring a uniform favours low customer numbers.
        let c = ((rng.next().powi(2)) * customers as f64) as usize;
        let u = rng.next();
        let i = cdf.partition_point(|&p| p < u).min(items - 1);
        b.purchase(&c.to_string(), &i.to_string(), 1.0, None, None).unwrap();
    }
    let params = FitParams { neighbors: 50, weighting: Weighting::default() };
    Model::fit(b.finish().0, &params, FitInfo::default()).unwrap()
}

fn kernels(c: &mut Criterion) {
    let model = synthetic(50_000, 10_000, 500_000);
    let mut g = c.benchmark_group("item-knn 50k x 10k x 500k");
    g.sample_size(10);
    g.bench_function("item_cosine_top_k k=50", |b| b.iter(|| item_cosine_top_k(model.weighted(), 50)));
    let customers: Vec<CustomerIdx> = (0..model.customers().len() as u32).map(CustomerIdx).collect();
    g.bench_function("recommend top-10, all customers", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(32 << 20);
            write_recommendations(&model, &customers, 10, &mut out, &|_| {}).unwrap();
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
