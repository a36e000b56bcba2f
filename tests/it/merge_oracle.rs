//! `InteractionsBuilder::finish` against a naive merge written from its definition: ids in
//! natural order; per (customer, item) pair the rows sorted by (quantity, amount, time) and
//! summed in that order; a pair is bought when some row is a purchase and the net count is
//! above zero in `f32`, else seen; seen marks add seen-only pairs where no row is; the latest
//! purchase time and the summed amount per bought pair. On random rows (returns, fractional
//! quantities whose sum depends on the order, seen marks) over enough customers that the
//! merge splits them into many ranges, on 1, 2 and 4 threads.

use std::collections::BTreeMap;

use cobuy::ids::natural_cmp;
use cobuy::matrix::{Interactions, InteractionsBuilder, MergeStats};
use proptest::prelude::*;

/// A row: customer, item, quantity (0: a seen mark), amount, time.
type Row = (u8, u8, f64, Option<f64>, Option<i64>);

fn row() -> impl Strategy<Value = Row> {
    let quantity = prop_oneof![
        4 => (1u8..4).prop_map(f64::from),
        2 => prop_oneof![Just(0.1), Just(0.2), Just(0.3), Just(1e16), Just(-1e16), Just(-1.0), Just(-2.0)],
        1 => Just(0.0),
    ];
    (0u8..60, 0u8..12, quantity, proptest::option::of(-5.0f64..5.0), proptest::option::of(0i64..1000))
}

fn id(prefix: &str, k: u8) -> String {
    // Some all-digit ids, some not: natural order is not byte order.
    if k % 3 == 0 { format!("{k}") } else { format!("{prefix}{k}") }
}

/// A bought pair: customer, item, count, last time, amount.
type Pair = (String, String, f32, Option<i64>, Option<f32>);

/// What `finish` should give: per customer id, per item id, (count, last time, amount),
/// the seen-only pairs, and the merge figures.
#[derive(Debug, PartialEq)]
struct Want {
    customers: Vec<String>,
    items: Vec<String>,
    bought: Vec<Pair>,
    seen_only: Vec<(String, String)>,
    stats: MergeStats,
}

fn naive(rows: &[Row]) -> Want {
    let sorted = |mut v: Vec<String>| {
        v.sort_by(|a, b| natural_cmp(a, b));
        v.dedup();
        v
    };
    let customers = sorted(rows.iter().map(|r| id("c", r.0)).collect());
    let items = sorted(rows.iter().map(|r| id("i", r.1)).collect());
    // Seen marks carry neither (the test gives `seen` no time or amount): whether the
    // matrix has times or amounts is up to the purchase and return rows.
    let counted = || rows.iter().filter(|r| r.2 != 0.0);
    let (has_time, has_amount) = (counted().any(|r| r.4.is_some()), counted().any(|r| r.3.is_some()));
    let pos = |v: &[String], s: &str| v.iter().position(|x| x == s).unwrap();
    // Per (customer, item) index: the rows' (quantity, amount, time).
    type Rows = Vec<(f64, f64, i64)>;
    let mut pairs: BTreeMap<(usize, usize), Rows> = BTreeMap::new();
    let mut seen: BTreeMap<(usize, usize), ()> = BTreeMap::new();
    for r in rows {
        let key = (pos(&customers, &id("c", r.0)), pos(&items, &id("i", r.1)));
        if r.2 == 0.0 {
            seen.insert(key, ());
        } else {
            let time = if r.2 > 0.0 { r.4.unwrap_or(i64::MIN) } else { i64::MIN };
            pairs.entry(key).or_default().push((r.2, r.3.unwrap_or(0.0), time));
        }
    }
    let mut stats = MergeStats::default();
    let (mut bought, mut seen_only) = (Vec::new(), Vec::new());
    for (&(c, i), rows) in &mut pairs {
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        stats.pairs += 1;
        stats.merged_rows += rows.len() as u64 - 1;
        let mut q = 0.0;
        let mut amount = 0.0;
        for r in rows.iter() {
            q += r.0;
            amount += r.1;
        }
        let q = q as f32;
        if rows.iter().any(|r| r.0 > 0.0) && q > 0.0 && q.is_finite() {
            stats.purchase_pairs += 1;
            let t = rows.iter().map(|r| r.2).max().unwrap();
            bought.push((
                customers[c].clone(),
                items[i].clone(),
                q,
                has_time.then_some(t),
                has_amount.then_some(amount as f32),
            ));
        } else {
            stats.netted_out_pairs += 1;
            seen_only.push((c, i));
        }
    }
    for &(c, i) in seen.keys() {
        if !pairs.contains_key(&(c, i)) {
            stats.seen_only_pairs += 1;
            stats.pairs += 1;
            seen_only.push((c, i));
        }
    }
    seen_only.sort();
    let seen_only = seen_only.into_iter().map(|(c, i)| (customers[c].clone(), items[i].clone())).collect();
    Want { customers, items, bought, seen_only, stats }
}

fn got(data: &Interactions, stats: MergeStats) -> Want {
    let customers: Vec<String> = data.customers().iter().map(str::to_string).collect();
    let items: Vec<String> = data.items().iter().map(str::to_string).collect();
    let (mut bought, mut seen_only) = (Vec::new(), Vec::new());
    let mut k = 0;
    for (c, row) in data.counts().outer_iterator().enumerate() {
        for (i, &q) in row.iter() {
            let t = data.last_time().map(|t| t[k]);
            let a = data.amount().map(|a| a[k]);
            bought.push((customers[c].clone(), items[i].clone(), q, t, a));
            k += 1;
        }
        for &i in data.seen_only(cobuy::ids::CustomerIdx(c as u32)) {
            seen_only.push((customers[c].clone(), items[i as usize].clone()));
        }
    }
    Want { customers, items, bought, seen_only, stats }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn finish_merges_as_the_definition_says_on_any_threads(rows in proptest::collection::vec(row(), 1..400)) {
        let want = naive(&rows);
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (data, stats) = pool.install(|| {
                let mut b = InteractionsBuilder::new();
                for r in &rows {
                    let (c, i) = (id("c", r.0), id("i", r.1));
                    if r.2 == 0.0 {
                        b.seen(&c, &i).unwrap();
                    } else {
                        b.purchase(&c, &i, r.2, r.3, r.4).unwrap();
                    }
                }
                b.finish()
            });
            // Bit-equal sums: compare the f32s by their bits.
            let g = got(&data, stats);
            prop_assert_eq!(&g.customers, &want.customers);
            prop_assert_eq!(&g.items, &want.items);
            prop_assert_eq!(g.stats, want.stats);
            prop_assert_eq!(&g.seen_only, &want.seen_only);
            prop_assert_eq!(g.bought.len(), want.bought.len());
            for (x, y) in g.bought.iter().zip(&want.bought) {
                prop_assert_eq!((&x.0, &x.1, x.2.to_bits(), x.3), (&y.0, &y.1, y.2.to_bits(), y.3));
                prop_assert_eq!(x.4.map(f32::to_bits), y.4.map(f32::to_bits));
            }
        }
    }
}
