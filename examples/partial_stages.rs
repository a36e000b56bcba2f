//! Measures the stages of item-kNN's distributed fit (`cobuy::algo::partial`) on one core:
//! each customer block's map (CPU seconds, input and output bytes), the combine, and the
//! reduce of every `SAMPLE`-th item block; the figures behind docs/SPARK-PLAN.md.
//!
//! cargo run --release --example partial_stages -- PURCHASES.csv SUM_BLOCK ITEM_BLOCKS [SAMPLE]
//! (columns customer_id, item_id, quantity: what `cobuy generate` writes)

use std::collections::BTreeMap;

use cobuy::algo::partial::{CustomerBlock, ItemStats, Pairs, needs_shared, reduce};
use cobuy::ingest::{Columns, IngestOptions, read_purchases};
use cobuy::model::{FitInfo, FitParams, Model};

/// CPU seconds this process has used (user + system).
fn cpu() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, sum_block, item_blocks) =
        (&args[1], args[2].parse::<usize>().unwrap(), args[3].parse::<usize>().unwrap());
    let sample = args.get(4).map_or(16, |s| s.parse::<usize>().unwrap());
    rayon::ThreadPoolBuilder::new().num_threads(1).build_global().unwrap();
    let mut cols = Columns::new("customer_id", "item_id");
    cols.quantity = Some("quantity".into());
    let t = cpu();
    let data = read_purchases(path, &IngestOptions::new(cols)).unwrap().interactions;
    let p = FitParams { sum_block: Some(sum_block), ..FitParams::default() };
    let dist = Model::distributed(data, &p, FitInfo::default()).unwrap();
    let w = dist.weighted();
    let (customers, items) = w.shape();
    let products: u64 = w.proper_indptr().windows(2).map(|r| ((r[1] - r[0]) as u64).pow(2)).sum();
    println!(
        "read and weighed {customers} customers x {items} items, {} pairs, {products} products (sum of squared \
         row lengths): {:.1} s CPU",
        w.nnz(),
        cpu() - t
    );
    let item_block = items.div_ceil(item_blocks);
    let shared = needs_shared(&p.similarity);
    let (mut stats, mut kept) = (Vec::new(), BTreeMap::<u32, Vec<Pairs>>::new());
    let (mut in_bytes, mut stats_bytes, mut pair_bytes, mut pairs_n, mut map_cpu) =
        (0usize, 0usize, 0usize, 0usize, 0f64);
    let mut worst = (0f64, 0usize);
    for c in 0..customers.div_ceil(sum_block) {
        let t = cpu();
        let rows = CustomerBlock::encode(w, c as u32, c * sum_block..((c + 1) * sum_block).min(customers));
        let block = CustomerBlock::from_bytes(items, &rows).unwrap();
        let (s, pairs) = block.map(item_block, shared);
        let (sb, mut pb) = (s.to_bytes().len(), 0);
        for (b, p) in pairs {
            pb += p.to_bytes().len();
            pairs_n += p.len();
            if b as usize % sample == 0 {
                kept.entry(b).or_default().push(p);
            }
        }
        let dt = cpu() - t;
        worst = if dt > worst.0 { (dt, pb) } else { worst };
        (in_bytes, stats_bytes, pair_bytes, map_cpu) =
            (in_bytes + rows.len(), stats_bytes + sb, pair_bytes + pb, map_cpu + dt);
        stats.push(s);
    }
    let blocks = customers.div_ceil(sum_block);
    println!(
        "map: {blocks} blocks of {sum_block} customers, {:.1} s CPU in all (slowest block {:.1} s), input {:.1} MiB, \
         statistics {:.1} MiB, pairs {:.1} MiB ({pairs_n} entries; the slowest block's {:.1} MiB)",
        map_cpu,
        worst.0,
        in_bytes as f64 / 1048576.0,
        stats_bytes as f64 / 1048576.0,
        pair_bytes as f64 / 1048576.0,
        worst.1 as f64 / 1048576.0
    );
    let t = cpu();
    let combined = ItemStats::combine(items, &stats);
    println!("combine: {:.2} s CPU, {:.1} MiB", cpu() - t, combined.to_bytes().len() as f64 / 1048576.0);
    let (mut reduce_cpu, mut reduced, mut reduced_in) = (0f64, 0usize, 0usize);
    for (b, parts) in &kept {
        let t = cpu();
        let out = reduce(*b as usize, item_block, parts, &combined, p.neighbors, &p.similarity);
        reduce_cpu += cpu() - t;
        reduced += out.to_bytes().len();
        reduced_in += parts.iter().map(|p| p.to_bytes().len()).sum::<usize>();
    }
    let n = kept.len().max(1);
    println!(
        "reduce: {} of {item_blocks} item blocks of {item_block} items: {:.2} s CPU per block, {:.1} MiB of pairs in and \
         {:.2} MiB of lists out per block",
        kept.len(),
        reduce_cpu / n as f64,
        reduced_in as f64 / n as f64 / 1048576.0,
        reduced as f64 / n as f64 / 1048576.0
    );
}
