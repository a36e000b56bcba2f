//! The mixed cross-sell score (`Scoring::Mix`) against its documented formula, computed
//! here on tiny catalogues:
//! candidates are the collaborative ones and the consequents of the rules from the
//! customer's items (lift above 1, never bought or seen); each candidate keeps its
//! strongest rule (lift, then confidence, then the lower antecedent); collaborative scores
//! are scaled by the customer's best, lifts as `ln(lift) / ln(best lift)`; the two mix by
//! `cf_weight`, times the novelty factor `1 / (1 + n)^novelty` of the candidate's category;
//! scores above 0 rank descending, ties by item.
//!
//! Once through the library with hand-made rules and an item-kNN whose scores are plain
//! cosine sums, and once through `cobuy cross-sell`, whose rules are mined from baskets
//! and whose item-kNN weighs by BM25, each computed here from the rows.

use std::collections::{BTreeMap, BTreeSet};

use cobuy::algo::Algorithm;
use cobuy::algo::similarity::SimilarityParams;
use cobuy::ids::{CustomerIdx, ItemIdx};
use cobuy::matrix::{InteractionsBuilder, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::offers::crosssell::{CategoryEntries, CrossSell, CrossSellParams, Offer, Scoring};
use cobuy::offers::rules::Rule;
use cobuy::recommend::Filter;
use ndarray::Array2;

use crate::common::{Corpus, check_ranking, run_cobuy};

/// Relative tolerance: collaborative scores are f32 sums.
const TOL: f64 = 1e-5;

/// One candidate by the definition: collaborative score (unscaled), strongest rule.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    cf: f64,
    with: Option<(usize, f64, f64)>,
}

/// The definition's offers of one customer, best first: (item, score, candidate).
/// `cf[j]`: the collaborative score (0: none); `rules`: (antecedent, consequent,
/// confidence, lift); `blocked`: bought or seen; `allowed`: may be offered; `category`
/// per item; `bought`: the customer's items.
#[allow(clippy::too_many_arguments)]
fn expected(
    cf: &[f64],
    rules: &[(usize, usize, f64, f64)],
    bought: &[usize],
    blocked: &[bool],
    allowed: &[bool],
    category: &[Option<u32>],
    p: &CrossSellParams,
) -> Vec<(usize, f64, Candidate)> {
    let mut cands: BTreeMap<usize, Candidate> = BTreeMap::new();
    for j in (0..cf.len()).filter(|&j| cf[j] > 0.0 && !blocked[j]) {
        cands.insert(j, Candidate { cf: cf[j], with: None });
    }
    for &(a, b, confidence, lift) in rules {
        if lift > 1.0 && bought.contains(&a) && !blocked[b] {
            let c = cands.entry(b).or_insert(Candidate { cf: 0.0, with: None });
            let stronger = match c.with {
                None => true,
                Some((a0, c0, l0)) => (lift, confidence) > (l0, c0) || ((lift, confidence) == (l0, c0) && a < a0),
            };
            if stronger {
                c.with = Some((a, confidence, lift));
            }
        }
    }
    cands.retain(|&j, _| allowed[j]);
    let best_cf = cands.values().map(|c| c.cf).fold(0.0, f64::max);
    let best_lift = cands.values().filter_map(|c| c.with).map(|w| w.2).fold(1.0, f64::max);
    let mut out: Vec<(usize, f64, Candidate)> = cands
        .into_iter()
        .map(|(j, c)| {
            let cf = if best_cf > 0.0 { c.cf / best_cf } else { 0.0 };
            let lift = match c.with {
                Some((_, _, l)) if best_lift > 1.0 => l.ln() / best_lift.ln(),
                _ => 0.0,
            };
            let n = category[j].map_or(0, |g| bought.iter().filter(|&&i| category[i] == Some(g)).count());
            let novelty = (1.0 / (1.0 + n as f64)).powf(p.novelty);
            (j, (p.cf_weight * cf + (1.0 - p.cf_weight) * lift) * novelty, Candidate { cf, with: c.with })
        })
        .filter(|o| o.1 > 0.0)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// Item-kNN scores over binary data with cosine and every neighbour kept: the sum of the
/// cosines of the candidate with the customer's items.
fn cosine_sums(x: &Array2<f64>, c: usize) -> Vec<f64> {
    let norm = |j: usize| x.column(j).dot(&x.column(j)).sqrt();
    (0..x.ncols())
        .map(|j| {
            (0..x.ncols())
                .filter(|&i| i != j && x[[c, i]] > 0.0 && norm(j) > 0.0)
                .map(|i| x.column(i).dot(&x.column(j)) / (norm(i) * norm(j)))
                .sum()
        })
        .collect()
}

fn rule(a: u32, b: u32, confidence: f64, lift: f64) -> Rule {
    Rule {
        antecedent: ItemIdx(a),
        consequent: ItemIdx(b),
        antecedent_count: 0,
        consequent_count: 0,
        count: 0,
        support: 0.0,
        confidence,
        lift,
        leverage: 0.0,
        conviction: 0.0,
    }
}

#[test]
fn library_offers_follow_the_formula() {
    const ITEMS: usize = 8;
    let bought: [&[usize]; 7] = [&[0, 2], &[0, 1, 3], &[2, 3, 4], &[1, 5], &[4, 6, 7], &[0, 5, 7], &[3]];
    let mut b = InteractionsBuilder::new();
    for (c, items) in bought.iter().enumerate() {
        for &i in *items {
            b.purchase(&format!("c{c}"), &format!("i{i}"), 1.0, None, None).unwrap();
        }
    }
    b.seen("c6", "i6").unwrap();
    let params = FitParams {
        algorithm: Algorithm::ItemKnn,
        neighbors: 100,
        weighting: Weighting { scheme: Scheme::Binary, ..Weighting::default() },
        similarity: SimilarityParams::default(),
        ..FitParams::default()
    };
    let model = Model::fit(b.finish().0, &params, FitInfo::default()).unwrap();
    let x = Array2::from_shape_fn((bought.len(), ITEMS), |(c, i)| if bought[c].contains(&i) { 1.0 } else { 0.0 });
    // Equal lifts to one consequent (the higher confidence wins, then the lower antecedent),
    // a lift below 1, rules to bought, seen, denied and restricted items.
    let rules: Vec<(usize, usize, f64, f64)> = vec![
        (0, 4, 0.5, 2.0),
        (2, 4, 0.6, 2.0),
        (0, 6, 0.3, 3.0),
        (2, 6, 0.3, 3.0),
        (3, 5, 0.2, 0.9),
        (1, 7, 0.4, 1.5),
        (3, 7, 0.4, 1.5),
        (4, 0, 0.5, 4.0),
        (5, 2, 0.25, 1.2),
        (0, 2, 0.9, 5.0),
        (6, 1, 0.1, 1.1),
        (3, 6, 0.2, 2.5),
        (1, 6, 0.2, 2.5),
        (3, 1, 0.5, 1.5),
    ];
    let mined: Vec<Rule> = rules.iter().map(|&(a, b, c, l)| rule(a as u32, b as u32, c, l)).collect();
    let category = vec![Some(0), Some(0), Some(1), Some(1), Some(1), Some(2), None, Some(2)];
    // Item 5 is outside the allow list (as outside the allowed categories), item 7 denied.
    let allow = (0..ITEMS as u32).filter(|&j| j != 5).map(ItemIdx).collect();
    let filter = model.filter(&Filter { allow: Some(allow), deny: vec![ItemIdx(7)], ..Filter::default() }).unwrap();
    let allowed: Vec<bool> = (0..ITEMS).map(|j| j != 5 && j != 7).collect();
    let mut nonzero = 0;
    for cf_weight in [0.0, 0.3, 0.5, 1.0] {
        for novelty in [0.0, 1.0, 2.5] {
            let p = CrossSellParams { scoring: Scoring::Mix, cf_weight, novelty, ..CrossSellParams::default() };
            let cs = CrossSell::new(&model, &filter, &mined, category.clone(), &CategoryEntries::default(), p);
            let (mut s, mut got) = (cs.scratch(), Vec::new());
            for (c, mine) in bought.iter().enumerate() {
                let blocked: Vec<bool> = (0..ITEMS).map(|j| mine.contains(&j) || (c == 6 && j == 6)).collect();
                let want = expected(&cosine_sums(&x, c), &rules, mine, &blocked, &allowed, &category, &p);
                cs.offers(CustomerIdx(c as u32), 10, &mut s, &mut got);
                check_offers(&got, &want, mine, &category, &format!("c{c}, cf {cf_weight}, novelty {novelty}"));
                nonzero += got.len();
            }
        }
    }
    assert!(nonzero > 100, "{nonzero} offers");
}

/// Checks offers against the definition's: the same items in the documented order (values
/// within `TOL` may swap; rule-only candidates with equal lifts and category counts tie
/// exactly and go by item), each with its score, scaled collaborative score, category
/// count and strongest rule.
fn check_offers(
    got: &[Offer],
    want: &[(usize, f64, Candidate)],
    bought: &[usize],
    category: &[Option<u32>],
    what: &str,
) {
    let items = category.len();
    let mut oracle = vec![0.0; items];
    for w in want {
        oracle[w.0] = w.1;
    }
    let n_in = |j: usize| category[j].map_or(0, |g| bought.iter().filter(|&&i| category[i] == Some(g)).count());
    let by_item: BTreeMap<usize, &Candidate> = want.iter().map(|w| (w.0, &w.2)).collect();
    let twins = |a: usize, b: usize| {
        let (x, y) = (by_item[&a], by_item[&b]);
        x.cf == 0.0 && y.cf == 0.0 && x.with.map(|w| w.2) == y.with.map(|w| w.2) && n_in(a) == n_in(b)
    };
    let ranked: Vec<(usize, f64)> = got.iter().map(|o| (o.item.get(), o.score)).collect();
    check_ranking(&ranked, &oracle, 10, TOL, twins).unwrap_or_else(|e| panic!("{what}: {e}"));
    for o in got {
        let j = o.item.get();
        let w = by_item[&j];
        assert!((o.cf - w.cf).abs() <= TOL * (1.0 + w.cf), "{what}: cf of {j}: {} vs {}", o.cf, w.cf);
        assert_eq!(o.with.map(|(a, c, l)| (a.get(), c, l)), w.with, "{what}: rule of {j}");
        assert_eq!((o.category, o.bought_in_category as usize), (category[j], n_in(j)), "{what}: category of {j}");
    }
}

// ---------------------------------------------------------------------------------------
// Through the CLI: rules mined from baskets, BM25 item-kNN, categories from a catalogue
// ---------------------------------------------------------------------------------------

const CATALOG: &str = "item,department\nmilk,dairy\ncheese,dairy\nyogurt,dairy\nbread,bakery\nrolls,bakery\n\
apple,produce\nbanana,produce\njuice,drinks\nwater,drinks\nsoap,household\n";

/// Baskets per customer: 20 customers, two baskets each, from seven patterns.
fn baskets() -> Vec<(String, usize, Vec<&'static str>)> {
    let patterns: [&[&str]; 7] = [
        &["milk", "bread"],
        &["bread", "rolls", "cheese"],
        &["apple", "juice"],
        &["banana", "yogurt", "milk"],
        &["water", "soap"],
        &["cheese", "apple"],
        &["juice", "banana"],
    ];
    let mut out = Vec::new();
    for c in 0..20usize {
        for b in 0..2usize {
            let p = patterns[(c * 5 + b * (c % 4 + 1)) % 7];
            let items: Vec<&str> =
                p.iter().enumerate().filter(|(k, _)| (c + b + k) % 6 != 0).map(|(_, i)| *i).collect();
            if !items.is_empty() {
                out.push((format!("c{c:02}"), b, items));
            }
        }
    }
    out
}

#[test]
fn cross_sell_command_follows_the_formula() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("customer,item,basket\n");
    for (c, b, items) in baskets() {
        for i in items {
            text.push_str(&format!("{c},{i},{c}-{b}\n"));
        }
    }
    std::fs::write(dir.path().join("p.csv"), text).unwrap();
    std::fs::write(dir.path().join("catalog.csv"), CATALOG).unwrap();

    // Ids in natural order; each customer's items; every basket's items.
    let all = baskets();
    let customers: Vec<String> = all.iter().map(|b| b.0.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let items: Vec<&str> = all.iter().flat_map(|b| b.2.iter().copied()).collect::<BTreeSet<_>>().into_iter().collect();
    let at = |i: &str| items.iter().position(|x| *x == i).unwrap();
    let mut x = Array2::<f64>::zeros((customers.len(), items.len()));
    for (c, _, basket) in &all {
        let r = customers.iter().position(|x| x == c).unwrap();
        for &i in basket {
            x[[r, at(i)]] += 1.0;
        }
    }
    // Rules by their definitions over the baskets: n(AB) of N baskets; confidence
    // n(AB) / n(A); lift confidence / (n(B) / N); kept when n(AB) reaches the larger of
    // --min-count and --min-support N.
    let n = all.len() as f64;
    let holds = |i: usize| all.iter().filter(|b| b.2.contains(&items[i])).count() as f64;
    let both =
        |i: usize, j: usize| all.iter().filter(|b| b.2.contains(&items[i]) && b.2.contains(&items[j])).count() as f64;
    let min_pairs = 2f64.max((0.05 * n - 1e-9).ceil());
    let mut rules = Vec::new();
    for a in 0..items.len() {
        for b in (0..items.len()).filter(|&b| b != a && both(a, b) >= min_pairs) {
            let confidence = both(a, b) / holds(a);
            rules.push((a, b, confidence, confidence / (holds(b) / n)));
        }
    }
    assert!(rules.iter().filter(|r| r.3 > 1.0).count() >= 4, "{rules:?}");
    // Item-kNN over BM25 weights of the counts (the command's default), cosine, every
    // neighbour kept (10 items, 50 neighbours).
    let w = Corpus::of(&x).weigh_all(Scheme::Bm25 { k1: 1.2, b: 0.75 }, &x);
    let norm = |j: usize| w.column(j).dot(&w.column(j)).sqrt();
    let sim = |i: usize, j: usize| if i == j { 0.0 } else { w.column(i).dot(&w.column(j)) / (norm(i) * norm(j)) };
    let department: BTreeMap<&str, &str> = CATALOG.lines().skip(1).filter_map(|l| l.split_once(',')).collect();
    let names: Vec<&str> = department.values().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let category: Vec<Option<u32>> =
        items.iter().map(|i| Some(names.iter().position(|d| *d == department[i]).unwrap() as u32)).collect();

    for (cf_weight, novelty) in [("0.5", "1"), ("0.2", "2"), ("1", "0"), ("0", "1")] {
        let out = dir.path().join(format!("offers-{cf_weight}-{novelty}.csv"));
        let out = out.to_str().unwrap();
        let args = [
            "cross-sell",
            "--purchases",
            "p.csv",
            "--customer-col",
            "customer",
            "--item-col",
            "item",
            "--basket-col",
            "basket",
            "--catalog",
            "catalog.csv",
            "--catalog-item-col",
            "item",
            "--catalog-category-cols",
            "department",
            "--level",
            "0",
            "--min-support",
            "0.05",
            "--min-count",
            "2",
            "--scoring",
            "mix",
            "--cf-weight",
            cf_weight,
            "--novelty",
            novelty,
            "--top",
            "10",
            "--out",
            out,
        ];
        let o = run_cobuy(dir.path(), &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut got: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for rec in csv::Reader::from_path(out).unwrap().records() {
            let rec = rec.unwrap();
            got.entry(rec[0].to_string()).or_default().push((rec[2].to_string(), rec[3].parse().unwrap()));
        }
        let p = CrossSellParams {
            scoring: Scoring::Mix,
            cf_weight: cf_weight.parse().unwrap(),
            novelty: novelty.parse().unwrap(),
            ..CrossSellParams::default()
        };
        let allowed = vec![true; items.len()];
        let offers: usize = got.values().map(Vec::len).sum();
        assert!(offers >= 3 * customers.len(), "{offers} offers");
        for (c, id) in customers.iter().enumerate() {
            let mine: Vec<usize> = (0..items.len()).filter(|&i| x[[c, i]] > 0.0).collect();
            let cf: Vec<f64> = (0..items.len()).map(|j| mine.iter().map(|&i| w[[c, i]] * sim(i, j)).sum()).collect();
            let blocked: Vec<bool> = (0..items.len()).map(|j| mine.contains(&j)).collect();
            let want = expected(&cf, &rules, &mine, &blocked, &allowed, &category, &p);
            let rows = got.remove(id).unwrap_or_default();
            // Scores are printed to 6 decimals.
            let mut oracle = vec![0.0; items.len()];
            for w in &want {
                oracle[w.0] = w.1;
            }
            let ranked: Vec<(usize, f64)> = rows.iter().map(|(i, s)| (at(i), *s)).collect();
            check_ranking(&ranked, &oracle, 10, 1e-5, |_, _| false)
                .unwrap_or_else(|e| panic!("{id}, cf {cf_weight}, novelty {novelty}: {e}"));
            for (i, s) in &rows {
                assert!((s - oracle[at(i)]).abs() <= 0.6e-6, "{id} {i}: {s} vs {}", oracle[at(i)]);
            }
        }
        assert!(got.is_empty(), "offers for unknown customers: {got:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The new-categories scoring (the default), against a naive reading of its definition
// ---------------------------------------------------------------------------------------

/// The inverse of a small symmetric positive definite matrix, by Gauss-Jordan.
fn inverse(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut m = a.clone();
    let mut inv = Array2::<f64>::eye(n);
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| m[[x, col]].abs().total_cmp(&m[[y, col]].abs())).unwrap();
        for k in 0..n {
            m.swap([col, k], [pivot, k]);
            inv.swap([col, k], [pivot, k]);
        }
        let d = m[[col, col]];
        for k in 0..n {
            m[[col, k]] /= d;
            inv[[col, k]] /= d;
        }
        for r in (0..n).filter(|&r| r != col) {
            let f = m[[r, col]];
            for k in 0..n {
                m[[r, k]] -= f * m[[col, k]];
                inv[[r, k]] -= f * inv[[col, k]];
            }
        }
    }
    inv
}

/// Customers, items, categories and times by hand: the offers of every customer are the
/// candidates (a category the customer bought nothing of, bought by someone, allowed, not
/// seen) ranked by `a ln P(c) + e ln(entries(c) + 1) + b ln share(j) + g ln(cf / best +
/// 1e-4) + d lift + n ln newcomers(j)` (the default weights and others), with `P` a dense
/// EASE over customers x categories, entries the customers whose first purchase in the
/// category is within 30 days of the newest purchase, shares of buyers weighted by
/// `0.5^(age of their latest purchase / 15 days)`, cf the cosine sums of item-kNN, lift
/// `ln l / ln(best l)` of the strongest rule, newcomers the item's share of its category's
/// customers whose first purchase of it is within those 30 days (plus 1 on both sides);
/// each offer's score is `exp(its value - the best's)`.
#[test]
fn library_new_category_offers_follow_the_formula() {
    use cobuy::ingest::{Columns, IngestOptions, read_log};
    use cobuy::offers::crosssell::NewCategoryWeights;
    const ITEMS: usize = 10;
    const DAY: i64 = 86_400;
    let t0 = 1_700_000_000;
    // (customer, item, day): nine customers over 100 days.
    let rows: Vec<(usize, usize, i64)> = vec![
        (0, 0, 1),
        (0, 2, 50),
        (0, 4, 95),
        (0, 0, 99),
        (1, 1, 3),
        (1, 3, 80),
        (1, 6, 90),
        (2, 2, 10),
        (2, 3, 12),
        (2, 5, 85),
        (3, 0, 20),
        (3, 7, 75),
        (3, 8, 99),
        (4, 4, 5),
        (4, 6, 30),
        (4, 9, 98),
        (5, 1, 40),
        (5, 5, 41),
        (5, 7, 94),
        (6, 3, 60),
        (6, 8, 61),
        (7, 2, 70),
        (7, 9, 72),
        (7, 6, 96),
        (8, 0, 2),
        (8, 1, 88),
    ];
    let category = [Some(0), Some(0), Some(1), Some(1), Some(2), Some(2), Some(3), Some(3), None, Some(1)];
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("customer,item,time\n");
    for &(c, i, d) in &rows {
        text.push_str(&format!("c{c},i{i},{}\n", t0 + d * DAY));
    }
    std::fs::write(dir.path().join("p.csv"), text).unwrap();
    let mut cols = Columns::new("customer", "item");
    cols.time = Some("time".into());
    let (log, _) = read_log(dir.path().join("p.csv"), &IngestOptions::new(cols)).unwrap();
    let (data, _) = log.interactions(&vec![true; log.rows.len()]);
    let params = FitParams {
        algorithm: Algorithm::ItemKnn,
        neighbors: 100,
        weighting: Weighting { scheme: Scheme::Binary, ..Weighting::default() },
        similarity: SimilarityParams::default(),
        ..FitParams::default()
    };
    let model = Model::fit(data, &params, FitInfo::default()).unwrap();
    let customers = 9;
    let x =
        Array2::from_shape_fn(
            (customers, ITEMS),
            |(c, i)| {
                if rows.iter().any(|r| r.0 == c && r.1 == i) { 1.0 } else { 0.0 }
            },
        );
    let rules: Vec<(usize, usize, f64, f64)> =
        vec![(0, 4, 0.5, 2.0), (2, 6, 0.3, 3.0), (1, 2, 0.4, 1.5), (3, 7, 0.2, 0.8), (0, 5, 0.6, 2.0)];
    let mined: Vec<Rule> = rules.iter().map(|&(a, b, c, l)| rule(a as u32, b as u32, c, l)).collect();
    let cats: Vec<Option<u32>> = category.to_vec();
    // Item 9 is denied.
    let filter = model.filter(&Filter { deny: vec![ItemIdx(9)], ..Filter::default() }).unwrap();
    let newest = t0 + 99 * DAY;

    // Category-level EASE, lambda 100, over binary customers x categories.
    let g = 4;
    let xc = Array2::from_shape_fn((customers, g), |(c, k)| {
        if (0..ITEMS).any(|i| x[[c, i]] > 0.0 && category[i] == Some(k as u32)) { 1.0 } else { 0.0 }
    });
    let gram = xc.t().dot(&xc) + Array2::<f64>::eye(g) * 100.0;
    let p = inverse(&gram);
    let b = Array2::from_shape_fn((g, g), |(i, j)| if i == j { 0.0 } else { -p[[i, j]] / p[[j, j]] });
    // Entries: first purchase per (customer, category) within 30 days of the newest.
    let mut entries = vec![0.0f64; g];
    for c in 0..customers {
        for k in 0..g as u32 {
            let first = rows.iter().filter(|r| r.0 == c && category[r.1] == Some(k)).map(|r| r.2).min();
            if first.is_some_and(|d| t0 + d * DAY >= newest - 30 * DAY) {
                entries[k as usize] += 1.0;
            }
        }
    }
    // Shares: buyers weighted by the age of their latest purchase of the item.
    let weight: Vec<f64> = (0..ITEMS)
        .map(|i| {
            (0..customers)
                .filter_map(|c| rows.iter().filter(|r| r.0 == c && r.1 == i).map(|r| r.2).max())
                .map(|d| 0.5f64.powf((99 - d) as f64 / 15.0))
                .sum()
        })
        .collect();
    let in_category = |k: u32| (0..ITEMS).filter(|&i| category[i] == Some(k)).map(|i| weight[i]).sum::<f64>();
    // Newcomers: customers whose first purchase of the item is within 30 days of the newest.
    let newcomers: Vec<f64> = (0..ITEMS)
        .map(|i| {
            let firsts = (0..customers).filter_map(|c| rows.iter().filter(|r| r.0 == c && r.1 == i).map(|r| r.2).min());
            firsts.filter(|&d| t0 + d * DAY >= newest - 30 * DAY).count() as f64
        })
        .collect();
    let new_in_category = |k: u32| (0..ITEMS).filter(|&i| category[i] == Some(k)).map(|i| newcomers[i]).sum::<f64>();

    for weights in [
        NewCategoryWeights::default(),
        NewCategoryWeights { category: 0.5, entries: 0.0, share: 2.0, cf: 0.3, lift: 3.0, newcomers: 0.0 },
        NewCategoryWeights { category: 1.0, entries: 1.0, share: 0.0, cf: 0.5, lift: 0.0, newcomers: 2.0 },
    ] {
        let p = CrossSellParams { weights, ..CrossSellParams::default() };
        let learned = CategoryEntries::learn(&log, None, &cats, model.interactions().decay_reference(), 30.0);
        let cs = CrossSell::new(&model, &filter, &mined, cats.clone(), &learned, p);
        let (mut s, mut got) = (cs.scratch(), Vec::new());
        let mut offered = 0;
        for c in 0..customers {
            let mine: Vec<usize> = (0..ITEMS).filter(|&i| x[[c, i]] > 0.0).collect();
            let had: Vec<u32> = mine.iter().filter_map(|&i| category[i]).collect();
            let cf = cosine_sums(&x, c);
            let candidates: Vec<usize> =
                (0..ITEMS).filter(|&j| category[j].is_some_and(|k| !had.contains(&k)) && j != 9).collect();
            let best_cf = candidates.iter().map(|&j| cf[j]).fold(0.0, f64::max);
            let best_cf = if best_cf > 0.0 { best_cf } else { 1.0 };
            let strongest = |j: usize| {
                rules
                    .iter()
                    .filter(|r| r.1 == j && r.3 > 1.0 && mine.contains(&r.0))
                    .max_by(|a, b| a.3.total_cmp(&b.3).then(a.2.total_cmp(&b.2)).then(b.0.cmp(&a.0)))
                    .copied()
            };
            let best_lift = candidates.iter().filter_map(|&j| strongest(j)).map(|r| r.3).fold(1.0, f64::max);
            let mut parts = vec![None; ITEMS];
            let mut value = [f64::NEG_INFINITY; ITEMS];
            for &j in &candidates {
                let k = category[j].unwrap();
                let pc: f64 = (0..g).map(|i| xc[[c, i]] * b[[i, k as usize]]).sum::<f64>().max(1e-6);
                let lift = strongest(j).map_or(0.0, |r| if best_lift > 1.0 { r.3.ln() / best_lift.ln() } else { 0.0 });
                let share = (weight[j] + 1e-3) / (in_category(k) + 1e-3);
                let new_share = (newcomers[j] + 1.0) / (new_in_category(k) + 1.0);
                let scaled = (cf[j] / best_cf).max(0.0);
                value[j] = weights.category * pc.ln()
                    + weights.entries * (entries[k as usize] + 1.0).ln()
                    + weights.share * share.ln()
                    + weights.cf * (scaled + 1e-4).ln()
                    + weights.lift * lift
                    + weights.newcomers * new_share.ln();
                parts[j] = Some((k, weight[j], newcomers[j], scaled, strongest(j)));
            }
            let top = value.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let oracle: Vec<f64> = value.iter().map(|&v| if v.is_finite() { (v - top).exp() } else { 0.0 }).collect();
            cs.offers(CustomerIdx(c as u32), 10, &mut s, &mut got);
            let what = format!("c{c}, {weights:?}");
            let ranked: Vec<(usize, f64)> = got.iter().map(|o| (o.item.get(), o.score)).collect();
            let twins = |a: usize, b: usize| parts[a].is_some() && parts[a] == parts[b];
            check_ranking(&ranked, &oracle, 10, TOL, twins).unwrap_or_else(|e| panic!("{what}: {e}"));
            for o in &got {
                let (k, _, _, scaled, with) = parts[o.item.get()].unwrap();
                assert_eq!((o.category, o.bought_in_category), (Some(k), 0), "{what}");
                assert!((o.cf - scaled).abs() <= TOL * (1.0 + scaled), "{what}: cf {} vs {scaled}", o.cf);
                assert_eq!(o.with.map(|(a, c, l)| (a.get(), c, l)), with.map(|r| (r.0, r.2, r.3)), "{what}");
            }
            offered += got.len();
        }
        assert!(offered > 20, "{offered} offers");
        // The entries learned are the literal count.
        for k in 0..g as u32 {
            assert_eq!(f64::from(learned.get(k)), entries[k as usize], "entries of category {k}");
        }
        for i in (0..ITEMS).filter(|&i| category[i].is_some()) {
            assert_eq!(f64::from(learned.item(i as u32)), newcomers[i], "newcomers of item {i}");
        }
    }
}
