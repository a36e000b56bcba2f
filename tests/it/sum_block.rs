//! Item-kNN's fit over blocks of customers (`sum_block`, `cobuy::algo::partial`): the map
//! and reduce stages a Spark job runs, and `cobuy fit --sum-block` runs in-process.
//!
//! Oracles: with one block, the default kernel (an independent, pruned and relabelled
//! implementation) must give the same model bytes; with several, every list must match the
//! textbook similarities in f64 (`knn_oracle`'s definitions) within f32 rounding; and the
//! bytes must not depend on how the blocks are spread over "machines" (partitions, item
//! blocks, the order the partials arrive in).

use std::collections::BTreeMap;

use cobuy::algo::Algorithm;
use cobuy::algo::partial::{CustomerBlock, ItemStats, NeighborBlock, assemble, needs_shared, reduce_bytes};
use cobuy::algo::similarity::{Measure, SimilarityParams, Ties};
use cobuy::ingest::{Columns, IngestOptions, read_purchases};
use cobuy::matrix::{Interactions, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};

use crate::common::{Lcg, check_ranking, run_cobuy};
use crate::knn_oracle::{dense, item_sims, same_items};

/// A generated log (skewed items, baskets), merged.
fn generated(customers: usize, items: usize, rows: usize, seed: u64) -> Interactions {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    let params = cobuy::generate::GenerateParams::new(customers as u64, items as u64, rows as u64, seed);
    cobuy::generate::generate(&params, &mut f).unwrap();
    let mut cols = Columns::new("customer_id", "item_id");
    cols.quantity = Some("quantity".into());
    read_purchases(&path, &IngestOptions::new(cols)).unwrap().interactions
}

/// The measures and dampings the blocked fit supports, each with a weighting.
fn cases() -> Vec<(Weighting, SimilarityParams)> {
    let w = |scheme| Weighting { scheme, ..Weighting::default() };
    let s =
        |measure, shrinkage, min_shared| SimilarityParams { measure, shrinkage, min_shared, ties: Ties::LowestIndex };
    vec![
        (Algorithm::ItemKnn.default_weighting(&Measure::Cosine), SimilarityParams::default()),
        (w(Scheme::Count), s(Measure::Cosine, 2.5, 2)),
        (w(Scheme::TfIdf), s(Measure::AsymmetricCosine { alpha: 0.3 }, 0.0, 0)),
        (w(Scheme::Binary), s(Measure::Jaccard, 0.0, 0)),
        (w(Scheme::Log), s(Measure::Lift, 1.0, 0)),
    ]
}

fn params(weighting: Weighting, similarity: SimilarityParams, sum_block: Option<usize>) -> FitParams {
    FitParams { neighbors: 12, weighting, similarity, sum_block, ..FitParams::default() }
}

fn fit(data: &Interactions, p: &FitParams) -> Model {
    Model::fit(data.clone(), p, FitInfo::default()).unwrap()
}

#[test]
fn one_block_gives_the_default_kernels_bytes() {
    let data = generated(2_000, 300, 30_000, 11);
    let n = data.customers().len();
    for (weighting, similarity) in cases() {
        let default = fit(&data, &params(weighting, similarity, None)).to_bytes();
        for b in [n, n + 1, usize::MAX] {
            let one = fit(&data, &params(weighting, similarity, Some(b))).to_bytes();
            assert!(one == default, "{similarity:?} {weighting:?}, sum_block {b}: the bytes differ");
        }
    }
}

#[test]
fn several_blocks_agree_with_the_definition_within_rounding() {
    let data = generated(1_500, 200, 20_000, 12);
    for (weighting, similarity) in cases() {
        for b in [1, 37, 400] {
            let model = fit(&data, &params(weighting, similarity, Some(b)));
            assert_eq!(model.params().sum_block, Some(b), "stored");
            // The oracle weighs nothing itself: the weights are the model's, the similarity
            // and the selection the textbook's, in f64.
            let w = dense(model.weighted());
            let got = model.neighbors();
            for i in 0..w.ncols() {
                let sims = item_sims(&similarity, &w, &w, i);
                let row = got.outer_view(i).unwrap();
                let mut list: Vec<(usize, f64)> = row.iter().map(|(j, &v)| (j, f64::from(v))).collect();
                list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                check_ranking(&list, &sims, 12, 1e-5, |a, c| same_items(&w, &w, a, c))
                    .unwrap_or_else(|e| panic!("{similarity:?}, sum_block {b}, item {i}: {e}"));
            }
        }
    }
}

/// The stages through their bytes, as a Spark job runs them: the customer blocks spread
/// over `partitions` machines (round-robin), each machine mapping its blocks; the pairs
/// shuffled by item block and arriving in any order, sorted by customer block before the
/// reduce; the statistics combined in block order.
fn spread(
    model: &Model,
    data: &Interactions,
    p: &FitParams,
    partitions: usize,
    item_block: usize,
    seed: u64,
) -> Vec<u8> {
    let dist = Model::distributed(data.clone(), p, FitInfo::default()).unwrap();
    let (w, b) = (dist.weighted(), dist.sum_block());
    let blocks: Vec<Vec<u8>> = (0..w.rows().div_ceil(b))
        .map(|c| CustomerBlock::encode(w, c as u32, c * b..((c + 1) * b).min(w.rows())))
        .collect();
    let (mut stats, mut shuffled) = (Vec::new(), BTreeMap::<u32, Vec<(u32, Vec<u8>)>>::new());
    let mut rng = Lcg(seed);
    for part in 0..partitions {
        for (c, bytes) in blocks.iter().enumerate().filter(|(c, _)| c % partitions == part) {
            let block = CustomerBlock::from_bytes(w.cols(), bytes).unwrap();
            let (s, pairs) = block.map(item_block, needs_shared(&p.similarity));
            stats.push((c, s.to_bytes()));
            for (ib, pairs) in pairs {
                let slot = shuffled.entry(ib).or_default();
                // Arrival order is the network's: anywhere in the list.
                let at = rng.below(slot.len() as u32 + 1) as usize;
                slot.insert(at, (c as u32, pairs.to_bytes()));
            }
        }
    }
    stats.sort_by_key(|s| s.0);
    let stats: Vec<&[u8]> = stats.iter().map(|s| s.1.as_slice()).collect();
    let stats = ItemStats::from_bytes(&ItemStats::combine_bytes(w.cols(), &stats).unwrap().to_bytes()).unwrap();
    let items = w.cols();
    let lists: Vec<NeighborBlock> = (0..items.div_ceil(item_block))
        .map(|ib| {
            let mut parts = shuffled.remove(&(ib as u32)).unwrap_or_default();
            parts.sort_by_key(|x| x.0);
            let parts: Vec<&[u8]> = parts.iter().map(|x| x.1.as_slice()).collect();
            let out = reduce_bytes(ib, item_block, &parts, &stats, p.neighbors, &p.similarity).unwrap();
            NeighborBlock::from_bytes(&out.to_bytes()).unwrap()
        })
        .collect();
    let m = dist.with_neighbors(assemble(&lists).unwrap()).unwrap();
    assert_eq!(m.params(), model.params());
    m.to_bytes()
}

#[test]
fn any_spread_of_the_blocks_gives_the_same_bytes() {
    let data = generated(1_200, 150, 15_000, 13);
    for (weighting, similarity) in cases() {
        for b in [50, 333, 5_000] {
            let p = params(weighting, similarity, Some(b));
            let model = fit(&data, &p);
            let want = model.to_bytes();
            for (partitions, item_block) in [(1, 150), (2, 7), (4, 64), (7, 1)] {
                let got = spread(&model, &data, &p, partitions, item_block, b as u64);
                assert!(
                    got == want,
                    "{similarity:?}, sum_block {b}, {partitions} partitions, item blocks of {item_block}"
                );
            }
        }
    }
}

#[test]
fn what_the_blocked_fit_does_not_compute_is_refused() {
    let ok = params(Weighting::default(), SimilarityParams::default(), Some(10));
    let refused = [
        FitParams { sum_block: Some(0), ..ok },
        FitParams { algorithm: Algorithm::UserKnn, ..ok },
        FitParams { algorithm: Algorithm::Als, ..ok },
        FitParams { weighting: Weighting { half_life_days: Some(30.0), ..ok.weighting }, ..ok },
        FitParams {
            similarity: SimilarityParams { measure: Measure::Rp3Beta { alpha: 1.0, beta: 0.5 }, ..ok.similarity },
            ..ok
        },
        FitParams { similarity: SimilarityParams { ties: Ties::VisitOrder, ..ok.similarity }, ..ok },
    ];
    for p in refused {
        let e = p.check().expect_err("refused");
        assert!(e.to_string().contains("sum_block"), "{e}");
    }
    let data = generated(100, 20, 500, 14);
    assert!(Model::distributed(data, &FitParams { sum_block: None, ..ok }, FitInfo::default()).is_err());
    // The CLI: exit code 2 and the flag named.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    cobuy::generate::generate(
        &cobuy::generate::GenerateParams::new(50, 10, 300, 1),
        &mut std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    let base =
        ["fit", "--purchases", "p.csv", "--model", "m.cobuy", "--customer-col", "customer_id", "--item-col", "item_id"];
    for extra in [
        &["--algorithm", "item-knn", "--sum-block", "0"][..],
        &["--sum-block", "5"],
        &["--algorithm", "item-knn", "--sum-block", "5", "--similarity", "rp3beta"],
        &["--algorithm", "ease", "--sum-block", "5"],
    ] {
        let out = run_cobuy(dir.path(), &[&base[..], extra].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("sum-block") || err.contains("sum_block"), "{extra:?}: {err}");
        assert!(!dir.path().join("m.cobuy").exists());
    }
    // And a block holding every customer writes the default fit's file.
    let fit = |extra: &[&str], model: &str| {
        let args = [&base[..4], &[model], &base[5..], &["--algorithm", "item-knn"], extra].concat();
        let out = run_cobuy(dir.path(), &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(dir.path().join(model)).unwrap()
    };
    assert!(fit(&[], "a.cobuy") == fit(&["--sum-block", "1000"], "b.cobuy"));
}

/// Whether bytes decode (as a stage's input).
type Decodes<'a> = dyn Fn(&[u8]) -> bool + 'a;

#[test]
fn damaged_stage_bytes_are_errors_never_panics() {
    let data = generated(300, 40, 3_000, 15);
    let p =
        params(Weighting::default(), SimilarityParams { measure: Measure::Jaccard, ..Default::default() }, Some(100));
    let dist = Model::distributed(data, &p, FitInfo::default()).unwrap();
    let w = dist.weighted();
    let rows = CustomerBlock::encode(w, 0, 0..100);
    let items = w.cols();
    let block = CustomerBlock::from_bytes(items, &rows).unwrap();
    let (stats, pairs) = block.map(16, true);
    let stats_b = stats.to_bytes();
    let combined = ItemStats::combine_bytes(items, &[&stats_b]).unwrap();
    let (ib, pairs) = pairs.into_iter().next().unwrap();
    assert!(!pairs.is_empty());
    let pairs_b = pairs.to_bytes();
    let out = reduce_bytes(ib as usize, 16, &[&pairs_b], &combined, 5, &p.similarity).unwrap().to_bytes();
    let all: [(&str, &Vec<u8>, &Decodes); 5] = [
        ("rows", &rows, &|b| CustomerBlock::from_bytes(items, b).is_ok()),
        ("stats", &stats_b, &|b| ItemStats::combine_bytes(items, &[b]).is_ok()),
        ("combined", &combined.to_bytes(), &|b| ItemStats::from_bytes(b).is_ok()),
        ("pairs", &pairs_b, &|b| reduce_bytes(ib as usize, 16, &[b], &combined, 5, &p.similarity).is_ok()),
        ("neighbours", &out, &|b| NeighborBlock::from_bytes(b).is_ok()),
    ];
    let mut rng = Lcg(7);
    for (what, bytes, decodes) in all {
        assert!(decodes(bytes), "{what}: the intact bytes decode");
        for len in 0..bytes.len() {
            assert!(!decodes(&bytes[..len]), "{what}: truncated to {len} bytes, accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!decodes(&longer), "{what}: a byte too many, accepted");
        for _ in 0..2_000 {
            let mut b = bytes.clone();
            let at = rng.below(b.len() as u32) as usize;
            b[at] ^= 1 << rng.below(8);
            let _ = decodes(&b); // an error or a value, never a panic
        }
    }
    // Partials out of customer-block order, twice, or of another item block.
    let first = block.pairs(16..32, true).to_bytes();
    let later = CustomerBlock::from_bytes(items, &CustomerBlock::encode(w, 1, 100..200))
        .unwrap()
        .pairs(16..32, true)
        .to_bytes();
    let reduce = |b: usize, parts: &[&[u8]]| reduce_bytes(b, 16, parts, &combined, 5, &p.similarity);
    assert!(reduce(1, &[&first, &later]).is_ok());
    assert!(reduce(1, &[&later, &first]).is_err());
    assert!(reduce(1, &[&first, &first]).is_err());
    assert!(reduce(2, &[&first]).is_err());
    assert!(CustomerBlock::from_bytes(items + 1, &rows).is_err());
    assert!(ItemStats::combine_bytes(items - 1, &[&stats_b]).is_err());
    // Without the customer counts Jaccard needs.
    let bare = block.pairs(16..32, false).to_bytes();
    assert!(reduce_bytes(1, 16, &[&bare], &combined, 5, &p.similarity).is_err());
}
