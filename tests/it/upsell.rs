//! The upgrade learner against a literal reading of its definition, on random small logs:
//! price tiers, what counts as an upgrade (a price step or a higher grade), every path's
//! count, base, expected count, score, median delay and probability, and which paths are
//! kept; the same model for any number of threads on a log large enough that the work is
//! split; offers that respect ownership, category, price cap and timing, ranked by the documented
//! blend of probability, anchor age and affinity. Tiers and upgrades
//! are defined here from the module's documentation, never taken from the code.

use cobuy::ids::{CustomerIdx, IdTable, ItemIdx};
use cobuy::ingest::{LogRow, PurchaseLog};
use cobuy::offers::upsell::{ItemFacts, PairMeasure, UpgradeModel, UpgradePath, UpsellParams};
use proptest::prelude::*;

use crate::common::Lcg;

const DAY: i64 = 86_400;
const ITEMS: usize = 7;
const CATEGORY: [u32; ITEMS] = [0, 0, 0, 0, 1, 1, 1];
const PRICES: [f64; 5] = [1.0, 1.05, 1.2, 2.0, 3.0];

/// Grades per item: `None` (no brand grade), 0 (a private label) or 1 (a national brand).
const GRADES: [Option<u8>; 3] = [None, Some(0), Some(1)];

/// Item facts: the fixed categories, prices and grades by index into `PRICES`, `GRADES`.
fn facts_of(prices: &[usize], grades: &[usize]) -> ItemFacts {
    ItemFacts::new(
        CATEGORY.iter().map(|&c| Some(c)).collect(),
        prices.iter().map(|&p| Some(PRICES[p])).collect(),
        grades.iter().map(|&g| GRADES[g]).collect(),
    )
}

/// The documented upgrade: B of A's category, not A, at least `min_step` dearer, or of a
/// higher grade at no lower price.
fn is_upgrade(prices: &[usize], grades: &[usize], a: u32, b: u32, min_step: f64) -> bool {
    let (a, b) = (a as usize, b as usize);
    let (pa, pb) = (PRICES[prices[a]], PRICES[prices[b]]);
    let higher_grade = matches!((GRADES[grades[a]], GRADES[grades[b]]), (Some(x), Some(y)) if y > x);
    a != b && CATEGORY[a] == CATEGORY[b] && (pb >= pa * (1.0 + min_step) || (pb >= pa && higher_grade))
}

/// The documented price tiers: in each category, the sold items' prices (one per item
/// bought in the log) sorted; the q-th of `tiers` boundaries is the price at position
/// floor(q n / tiers), for q = 1 .. tiers - 1, boundaries at the cheapest price dropped
/// (tier 0 is never empty); an item's tier is the number of distinct boundaries at or
/// below its price.
fn tiers_of(prices: &[usize], sold: &[bool], tiers: u32) -> Vec<u8> {
    let t = tiers as usize;
    let bounds: Vec<Vec<f64>> = (0..2)
        .map(|cat| {
            let mut p: Vec<f64> =
                (0..ITEMS).filter(|&i| sold[i] && CATEGORY[i] == cat).map(|i| PRICES[prices[i]]).collect();
            p.sort_by(f64::total_cmp);
            let mut b: Vec<f64> =
                (1..t).filter(|_| !p.is_empty()).map(|q| p[q * p.len() / t]).filter(|&x| x > p[0]).collect();
            b.dedup();
            b
        })
        .collect();
    (0..ITEMS).map(|i| bounds[CATEGORY[i] as usize].iter().filter(|&&b| b <= PRICES[prices[i]]).count() as u8).collect()
}

fn log_of(customers: usize, rows: &[(u32, u32, i64)]) -> PurchaseLog {
    // Zero-padded, so that numeric order is natural order.
    let cids: Vec<String> = (0..customers).map(|c| format!("c{c:05}")).collect();
    let iids: Vec<String> = (0..ITEMS).map(|i| format!("i{i}")).collect();
    PurchaseLog {
        customers: IdTable::from_sorted(&cids).unwrap(),
        items: IdTable::from_sorted(&iids).unwrap(),
        baskets: None,
        rows: rows
            .iter()
            .map(|&(c, i, day)| LogRow {
                customer: CustomerIdx(c),
                item: ItemIdx(i),
                quantity: 1.0,
                amount: None,
                // Two purchases a day at most apart by hours, so that same-day order counts.
                time: Some(day * DAY / 2),
                basket: None,
            })
            .collect(),
    }
}

/// The definition, spelled out per (customer, anchor, later item).
struct Naive {
    /// (anchor, upgrade) -> delays in days, one per customer.
    pairs: std::collections::BTreeMap<(u32, u32), Vec<u32>>,
    /// Per anchor: k per customer who bought it.
    follows: Vec<Vec<u32>>,
    later: Vec<u32>,
    buyers: Vec<u32>,
    /// (category, tier) -> (upgraded, total) over customers and anchors.
    steps: std::collections::BTreeMap<(u32, u8), (u32, u32)>,
    active: Vec<u32>,
}

fn naive(
    customers: usize,
    rows: &[(u32, u32, i64)],
    upgrade: impl Fn(u32, u32) -> bool,
    tier: &[u8],
    p: &UpsellParams,
) -> Naive {
    let window = i64::from(p.window_days) * DAY;
    let mut n = Naive {
        pairs: Default::default(),
        follows: vec![Vec::new(); ITEMS],
        later: vec![0; ITEMS],
        buyers: vec![0; ITEMS],
        steps: Default::default(),
        active: vec![0; 2],
    };
    let mut per_customer = vec![Vec::new(); customers];
    for r in rows {
        per_customer[r.0 as usize].push(*r);
    }
    for mine in &per_customer {
        let times = |i: u32| -> Vec<i64> {
            let mut v: Vec<i64> = mine.iter().filter(|r| r.1 == i).map(|r| r.2 * DAY / 2).collect();
            v.sort_unstable();
            v
        };
        let mut later_here = [false; ITEMS];
        let mut active_here = [false; 2];
        for a in 0..ITEMS as u32 {
            let ta = times(a);
            if ta.is_empty() {
                continue;
            }
            n.buyers[a as usize] += 1;
            let cat = CATEGORY[a as usize];
            active_here[cat as usize] = true;
            let mut k = 0;
            let mut upgraded = false;
            for b in 0..ITEMS as u32 {
                if b == a || CATEGORY[b as usize] != cat {
                    continue;
                }
                // The first B whose latest earlier A is within the window.
                let first = times(b).into_iter().find_map(|tb| {
                    let last_a = ta.iter().copied().filter(|&t| t < tb).max()?;
                    (tb - last_a <= window).then_some(((tb - last_a) / DAY) as u32)
                });
                if let Some(days) = first {
                    k += 1;
                    later_here[b as usize] = true;
                    if upgrade(a, b) {
                        upgraded = true;
                        n.pairs.entry((a, b)).or_default().push(days);
                    }
                }
            }
            n.follows[a as usize].push(k);
            let e = n.steps.entry((cat, tier[a as usize])).or_default();
            e.0 += u32::from(upgraded);
            e.1 += 1;
        }
        for (b, &l) in later_here.iter().enumerate() {
            n.later[b] += u32::from(l);
        }
        for (cat, &a) in active_here.iter().enumerate() {
            n.active[cat] += u32::from(a);
        }
    }
    n
}

fn median(v: &mut [u32]) -> f32 {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 { v[n / 2] as f32 } else { (v[n / 2 - 1] as f32 + v[n / 2] as f32) / 2.0 }
}

fn xlx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// Checks the model learned from `rows` against the definition.
fn check(customers: usize, rows: &[(u32, u32, i64)], prices: &[usize], grades: &[usize], params: &UpsellParams) {
    let log = log_of(customers, rows);
    let keep = vec![true; log.rows.len()];
    let m = UpgradeModel::learn(&log, &keep, &facts_of(prices, grades), params);
    check_model(&m, customers, rows, prices, grades, params);
}

fn check_model(
    m: &UpgradeModel,
    customers: usize,
    rows: &[(u32, u32, i64)],
    prices: &[usize],
    grades: &[usize],
    params: &UpsellParams,
) {
    let upgrade = |a: u32, b: u32| is_upgrade(prices, grades, a, b, params.min_step);
    let sold: Vec<bool> = (0..ITEMS as u32).map(|i| rows.iter().any(|r| r.1 == i)).collect();
    let tier = tiers_of(prices, &sold, params.tiers);
    for (i, &t) in tier.iter().enumerate() {
        assert_eq!(m.tier(ItemIdx(i as u32)), Some(t), "tier of {i}: prices {prices:?}, sold {sold:?}");
    }
    let n = naive(customers, rows, upgrade, &tier, params);
    assert_eq!(m.buyers(), &n.buyers[..]);

    let t = params.tiers as usize;
    let (mut gup, mut gtot) = (vec![0u32; t], vec![0u32; t]);
    for (&(_, tr), &(u, tot)) in &n.steps {
        gup[tr as usize] += u;
        gtot[tr as usize] += tot;
    }
    let alpha = params.smoothing;
    let up_rate = |a: u32| -> f64 {
        let (cat, tr) = (CATEGORY[a as usize], tier[a as usize] as usize);
        let g = if gtot[tr] > 0 { f64::from(gup[tr]) / f64::from(gtot[tr]) } else { 0.0 };
        let (u, tot) = n.steps.get(&(cat, tr as u8)).copied().unwrap_or((0, 0));
        (f64::from(u) + alpha * g) / (f64::from(tot) + alpha)
    };
    let upgrade_buyers =
        |a: u32| -> u64 { (0..ITEMS as u32).filter(|&b| upgrade(a, b)).map(|b| u64::from(n.buyers[b as usize])).sum() };
    for a in 0..ITEMS as u32 {
        if n.buyers[a as usize] > 0 {
            assert!(close(m.up_rate(ItemIdx(a)).unwrap(), up_rate(a)), "up rate of {a}");
            assert_eq!(m.upgrade_buyers(ItemIdx(a)), upgrade_buyers(a), "upgrade buyers of {a}");
        }
    }

    let mut want: Vec<(u32, UpgradePath)> = Vec::new();
    for (&(a, b), days) in &n.pairs {
        let o = days.len() as u32;
        if o < params.min_path_count {
            continue;
        }
        let cat = CATEGORY[a as usize];
        let later_total: u32 = (0..ITEMS).filter(|&j| CATEGORY[j] == cat).map(|j| n.later[j]).sum();
        let p_b = f64::from(n.later[b as usize]) / f64::from(later_total);
        let ks = &n.follows[a as usize];
        let expected: f64 = ks.iter().map(|&k| 1.0 - (1.0 - p_b).powi(k as i32)).sum();
        let n_a = ks.len() as u32;
        let score = match params.pair_measure {
            PairMeasure::Excess => (f64::from(o) - expected) / expected.max(1e-9).sqrt(),
            PairMeasure::Llr => {
                let (k11, l_b, n_c) = (f64::from(o), f64::from(n.later[b as usize]), f64::from(n.active[cat as usize]));
                let (k12, k21) = ((f64::from(n_a) - k11).max(0.0), (l_b - k11).max(0.0));
                let k22 = (n_c - f64::from(n_a) - l_b + k11).max(0.0);
                let tot = k11 + k12 + k21 + k22;
                let g = 2.0
                    * (xlx(k11) + xlx(k12) + xlx(k21) + xlx(k22) + xlx(tot)
                        - xlx(k11 + k12)
                        - xlx(k21 + k22)
                        - xlx(k11 + k21)
                        - xlx(k12 + k22));
                let g = g.max(0.0);
                if k11 * (k21 + k22) >= k21 * (k11 + k12) { g } else { -g }
            }
        };
        if score < params.min_score {
            continue;
        }
        let p_fb = up_rate(a) * f64::from(n.buyers[b as usize]) / upgrade_buyers(a) as f64;
        let mut d = days.clone();
        want.push((
            a,
            UpgradePath {
                to: ItemIdx(b),
                customers: o,
                anchor_customers: n_a,
                expected,
                score,
                probability: (f64::from(o) + alpha * p_fb) / (f64::from(n_a) + alpha),
                median_days: median(&mut d),
            },
        ));
    }
    for a in 0..ITEMS as u32 {
        let mut w: Vec<UpgradePath> = want.iter().filter(|x| x.0 == a).map(|x| x.1).collect();
        w.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.to.cmp(&y.to)));
        let got = m.paths(ItemIdx(a));
        assert_eq!(got.len(), w.len(), "paths from {a}: got {got:?}, want {w:?}");
        for (g, w) in got.iter().zip(&w) {
            assert_eq!((g.to, g.customers, g.anchor_customers), (w.to, w.customers, w.anchor_customers));
            assert_eq!(g.median_days, w.median_days, "{a} -> {:?}", w.to);
            assert!(close(g.expected, w.expected), "expected {a} -> {:?}: {} vs {}", w.to, g.expected, w.expected);
            assert!(close(g.score, w.score), "score {a} -> {:?}: {} vs {}", w.to, g.score, w.score);
            assert!(close(g.probability, w.probability), "probability {a} -> {:?}", w.to);
        }
    }
}

/// A random log: customers, (customer, item, half-day) rows, and each item's price and
/// grade (indices into `PRICES` and `GRADES`).
type Log = (usize, Rows, Vec<usize>, Vec<usize>);

/// (customer, item, half-day) rows.
type Rows = Vec<(u32, u32, i64)>;

fn log_strategy() -> impl Strategy<Value = Log> {
    (1usize..9).prop_flat_map(|customers| {
        (
            Just(customers),
            prop::collection::vec((0..customers as u32, 0..ITEMS as u32, 0i64..40), 0..60),
            prop::collection::vec(0..PRICES.len(), ITEMS),
            prop::collection::vec(0..GRADES.len(), ITEMS),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn learner_matches_its_definition((customers, rows, prices, grades) in log_strategy(), llr in any::<bool>(), window in 1u32..30, min_path_count in 1u32..3, tiers in 2u32..5) {
        let params = UpsellParams {
            pair_measure: if llr { PairMeasure::Llr } else { PairMeasure::Excess },
            window_days: window,
            min_path_count,
            min_score: if llr { 0.0 } else { -1.0 },
            tiers,
            ..UpsellParams::default()
        };
        check(customers, &rows, &prices, &grades, &params);
    }
}

/// A seeded log of `customers` shoppers, 1 to 8 rows each over 80 days, and item facts
/// with an upgrade between most pairs of a category.
fn large_log(customers: usize, seed: u64) -> (Rows, Vec<usize>, Vec<usize>) {
    let mut rng = Lcg(seed);
    let mut rows = Vec::new();
    for c in 0..customers as u32 {
        for _ in 0..1 + rng.below(8) {
            rows.push((c, rng.skewed(ITEMS as u32), i64::from(rng.below(160))));
        }
    }
    (rows, vec![0, 2, 3, 4, 1, 3, 4], vec![1, 0, 2, 1, 2, 1, 0])
}

/// The learner walks customers in parallel and merges partial counts: with 6,000 customers
/// rayon splits the walk into at least as many pieces as there are threads (its adaptive
/// splitter starts from the pool's thread count), so each pool below merges different
/// partitions in a different order. Every pool gives the same model, and it is the
/// definition's.
#[test]
fn same_model_for_any_thread_count_and_split() {
    const CUSTOMERS: usize = 6_000;
    let (rows, prices, grades) = large_log(CUSTOMERS, 0x0bad_5eed);
    let log = log_of(CUSTOMERS, &rows);
    let keep = vec![true; log.rows.len()];
    let facts = facts_of(&prices, &grades);
    let params = UpsellParams { min_path_count: 1, min_score: f64::MIN, ..UpsellParams::default() };
    let learn = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| UpgradeModel::learn(&log, &keep, &facts, &params))
    };
    let one = learn(1);
    check_model(&one, CUSTOMERS, &rows, &prices, &grades, &params);
    assert!(one.summary.paths >= 8 && one.summary.customers_with_sequences > 1000, "{:?}", one.summary);
    for threads in [2, 3, 8] {
        let other = learn(threads);
        for i in (0..ITEMS as u32).map(ItemIdx) {
            assert_eq!(one.paths(i), other.paths(i), "{threads} threads: paths from {i:?}");
            assert_eq!(one.fallback(i), other.fallback(i), "{threads} threads: fallback of {i:?}");
            assert_eq!(one.up_rate(i).map(f64::to_bits), other.up_rate(i).map(f64::to_bits), "{threads} threads");
            assert_eq!(one.tier(i), other.tier(i), "{threads} threads");
            assert_eq!(one.upgrade_buyers(i), other.upgrade_buyers(i), "{threads} threads");
        }
        for cat in 0..2 {
            assert_eq!(one.delay(cat, None), other.delay(cat, None), "{threads} threads: delay of category {cat}");
        }
        assert_eq!(one.buyers(), other.buyers(), "{threads} threads");
        assert_eq!(&one.summary, &other.summary, "{threads} threads");
    }
}

#[test]
fn a_clear_path_is_learned_with_its_delay() {
    // Customers 0-5 buy i0 (1.0) then i3 (2.0) 20 days later; customers 6-8 buy only i0.
    let mut rows = Vec::new();
    for c in 0..9u32 {
        rows.push((c, 0, 2 * i64::from(c)));
        if c < 6 {
            rows.push((c, 3, 2 * i64::from(c) + 40));
        }
    }
    let facts = ItemFacts::new(
        CATEGORY.iter().map(|&c| Some(c)).collect(),
        vec![Some(1.0), Some(1.05), Some(1.2), Some(2.0), Some(1.0), Some(1.0), Some(1.0)],
        vec![None; ITEMS],
    );
    let log = log_of(9, &rows);
    let m = UpgradeModel::learn(&log, &vec![true; rows.len()], &facts, &UpsellParams::default());
    let paths = m.paths(ItemIdx(0));
    assert_eq!(paths.len(), 1);
    assert_eq!((paths[0].to, paths[0].customers, paths[0].anchor_customers), (ItemIdx(3), 6, 9));
    assert_eq!(paths[0].median_days, 20.0);
    assert!(m.paths(ItemIdx(3)).is_empty(), "a cheaper item is never an upgrade");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn offers_respect_ownership_category_cap_and_timing((customers, rows, prices, grades) in log_strategy(), cap in prop::sample::select(vec![0.0, 1.0, 1.5, 4.0])) {
        use cobuy::model::{FitInfo, FitParams, Model};
        use cobuy::recommend::Filter;
        use cobuy::offers::upsell::UpSell;
        let facts = facts_of(&prices, &grades);
        let log = log_of(customers, &rows);
        let keep = vec![true; log.rows.len()];
        let params = UpsellParams { min_path_count: 1, price_cap: cap, ..UpsellParams::default() };
        let m = UpgradeModel::learn(&log, &keep, &facts, &params);
        let (data, _) = log.interactions(&keep);
        let model = Model::fit(data, &FitParams::default(), FitInfo::default()).unwrap();
        let filter = model.filter(&Filter::default()).unwrap();
        let up = UpSell::new(&m, model.scorer(&filter));
        let mut s = up.scratch();
        for c in 0..customers as u32 {
            let (items, _) = model.interactions().purchases(CustomerIdx(c));
            let times = model.interactions().purchase_times(CustomerIdx(c)).unwrap_or(&[]);
            let offers = up.offers(CustomerIdx(c), 5, &mut s);
            for w in offers.windows(2) {
                prop_assert!(w[0].score > w[1].score || (w[0].score == w[1].score && w[0].item < w[1].item));
            }
            for o in &offers {
                let (b, a) = (o.item.0, o.anchor.0);
                prop_assert!(items.binary_search(&b).is_err(), "offered an owned item");
                let k = items.binary_search(&a).expect("the anchor is bought");
                prop_assert_eq!(CATEGORY[b as usize], CATEGORY[a as usize]);
                prop_assert!(is_upgrade(&prices, &grades, a, b, params.min_step));
                // The anchor is the latest purchase of its category.
                let cat_items = items.iter().enumerate().filter(|(_, j)| CATEGORY[**j as usize] == CATEGORY[a as usize]);
                prop_assert!(cat_items.clone().all(|(x, _)| times[x] <= times[k]));
                if cap > 0.0 {
                    let dearest = cat_items.map(|(_, &j)| PRICES[prices[j as usize]]).fold(0.0, f64::max);
                    prop_assert!(PRICES[prices[b as usize]] <= cap * dearest);
                }
                prop_assert_eq!(o.anchor_time, Some(times[k]));
                match o.delay.days() {
                    Some(d) => prop_assert_eq!(o.offer_after, Some(times[k] + d * DAY)),
                    None => prop_assert_eq!(o.offer_after, None),
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Offers are ranked by the documented score, recomputed here from the learned upgrades,
    /// the anchor's age and the collaborative model's raw affinities:
    /// (probability x 2^(-age / half-life))^(1 - w) x max(affinity / best, 0.01)^w.
    #[test]
    fn offers_rank_by_the_documented_blend((customers, rows, prices, grades) in log_strategy(), w in prop::sample::select(vec![0.0, 0.3, 0.65, 1.0]), half_life in prop::sample::select(vec![0.0, 7.0])) {
        use cobuy::model::{FitInfo, FitParams, Model};
        use cobuy::recommend::Filter;
        use cobuy::offers::upsell::UpSell;
        let facts = facts_of(&prices, &grades);
        let log = log_of(customers, &rows);
        let keep = vec![true; log.rows.len()];
        let params = UpsellParams { min_path_count: 1, affinity_weight: w, anchor_half_life: half_life, ..UpsellParams::default() };
        let m = UpgradeModel::learn(&log, &keep, &facts, &params);
        let (data, _) = log.interactions(&keep);
        let model = Model::fit(data, &FitParams::default(), FitInfo::default()).unwrap();
        let filter = model.filter(&Filter::default()).unwrap();
        let scorer = model.scorer(&filter);
        let newest = model.interactions().decay_reference();
        let up = UpSell::new(&m, model.scorer(&filter));
        let (mut s, mut raw_scratch) = (up.scratch(), scorer.scratch());
        let price = |i: u32| PRICES[prices[i as usize]];
        for c in 0..customers as u32 {
            let (items, _) = model.interactions().purchases(CustomerIdx(c));
            let times = model.interactions().purchase_times(CustomerIdx(c)).unwrap_or(&[]);
            // Per category: the latest purchase (then the dearest, then the lowest index), and
            // the dearest price paid there.
            let mut cands: Vec<(u32, f64)> = Vec::new();
            for cat in 0..2 {
                let bought: Vec<usize> = (0..items.len()).filter(|&k| CATEGORY[items[k] as usize] == cat).collect();
                let Some(&k) = bought.iter().max_by(|&&x, &&y| {
                    times[x].cmp(&times[y]).then(price(items[x]).total_cmp(&price(items[y]))).then(items[y].cmp(&items[x]))
                }) else { continue };
                let dearest = bought.iter().map(|&x| price(items[x])).fold(0.0, f64::max);
                let age = (newest.unwrap() - times[k]).max(0) as f64 / DAY as f64;
                let recency = if half_life > 0.0 { (-age / half_life).exp2() } else { 1.0 };
                for (b, prob, _) in m.upgrades_of(ItemIdx(items[k])) {
                    if items.binary_search(&b.0).is_err() && price(b.0) <= 4.0 * dearest {
                        cands.push((b.0, prob * recency));
                    }
                }
            }
            let ids: Vec<u32> = cands.iter().map(|x| x.0).collect();
            let mut raw = Vec::new();
            if w > 0.0 && !ids.is_empty() {
                scorer.affinity(&scorer.query(CustomerIdx(c)), &ids, &mut raw_scratch, &mut raw);
            } else {
                raw = vec![0.0; ids.len()];
            }
            let best = raw.iter().copied().fold(0f32, f32::max);
            let mut want: Vec<(u32, f64)> = cands
                .iter()
                .zip(&raw)
                .map(|(&(b, p), &a)| {
                    let a = if best > 0.0 { f64::from(a.max(0.0) / best) } else { 0.0 };
                    (b, p.powf(1.0 - w) * a.max(0.01).powf(w))
                })
                .filter(|x| x.1 > 0.0)
                .collect();
            want.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            want.truncate(4);
            let got = up.offers(CustomerIdx(c), 4, &mut s);
            prop_assert_eq!(got.len(), want.len(), "customer {}: {:?} vs {:?}", c, got, want);
            for (g, x) in got.iter().zip(&want) {
                prop_assert!(g.item.0 == x.0 && close(g.score, x.1), "customer {}: {:?} vs {:?}", c, got, want);
            }
        }
    }
}
