//! Kernel benchmarks on a seeded synthetic log (`cobuy::generate`: Zipf item popularity,
//! lognormal customer activity, taste clusters): item-item top-k, similar customers, and
//! scoring every customer into a CSV buffer.
//!
//! `cargo bench --bench kernels`

use cobuy::algo::Algorithm;
use cobuy::algo::item_knn::item_top_k;
use cobuy::algo::similarity::SimilarityParams;
use cobuy::batch::{BatchOptions, write_recommendations};
use cobuy::generate::{GenerateParams, generate};
use cobuy::ids::CustomerIdx;
use cobuy::ingest::{Columns, IngestOptions, read_purchases};
use cobuy::matrix::Interactions;
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::recommend::ResolvedFilter;
use criterion::{Criterion, criterion_group, criterion_main};

fn synthetic(customers: u64, items: u64, purchases: u64) -> Interactions {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("purchases.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    generate(&GenerateParams::new(customers, items, purchases, 42), &mut file).unwrap();
    drop(file);
    read_purchases(&path, &IngestOptions::new(Columns::new("customer_id", "item_id"))).unwrap().interactions
}

fn kernels(c: &mut Criterion) {
    let data = synthetic(50_000, 10_000, 500_000);
    let item_knn = Model::fit(data.clone(), &FitParams::default(), FitInfo::default()).unwrap();
    let user_params = FitParams { algorithm: Algorithm::UserKnn, ..FitParams::default() };
    let user_knn = Model::fit(data, &user_params, FitInfo::default()).unwrap();
    let customers: Vec<CustomerIdx> = (0..item_knn.customers().len() as u32).map(CustomerIdx).collect();
    let filter = ResolvedFilter::exclude_bought(item_knn.items().len());
    let opts = BatchOptions { top: 10, filter: &filter, explain: false, columns: None };

    let mut g = c.benchmark_group("synthetic 50k x 10k x 500k");
    g.sample_size(10);
    g.bench_function("item top-k cosine, k=50", |b| {
        b.iter(|| item_top_k(item_knn.weighted(), None, 50, SimilarityParams::default()))
    });
    g.bench_function("item-knn recommend top-10, all customers", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(32 << 20);
            write_recommendations(&item_knn, &customers, &opts, &mut out, &|_| {}).unwrap();
            out.len()
        })
    });
    let first: Vec<CustomerIdx> = customers.iter().copied().take(5_000).collect();
    g.bench_function("user-knn recommend top-10, 5k customers", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(4 << 20);
            write_recommendations(&user_knn, &first, &opts, &mut out, &|_| {}).unwrap();
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
