//! `--explain` reasons of the latent models against independent oracles: EASE's are the
//! bought items with the largest terms `w_i B[i, j]` of item `j`'s score (B solved densely
//! here, on both of EASE's sides), ALS's the bought items whose factors have the largest
//! positive dot product with item `j`'s (factors read from the model file's bytes). And
//! the sentences README shows: "also bought by customers who bought A, B, C" and "bought
//! by the same kind of customers as A, B, C".

use std::collections::BTreeMap;
use std::fs;

use cobuy::algo::Algorithm;
use cobuy::algo::als::AlsParams;
use cobuy::algo::ease::{EaseParams, EaseSide};
use cobuy::ids::ItemIdx;
use cobuy::matrix::{InteractionsBuilder, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::recommend::{Filter, Reason, Source};

use crate::common::{COLUMNS, Lcg, SEED, purchase_lines, run_cobuy, write_lines};
use crate::ease_oracle::{Dense, dense, kept_items, oracle_b};
use crate::model_values::sections;

/// Checks that `got` (a reason's items, best first) is the top three of `contrib`'s
/// positive values (item, value), best first: each item's value is the oracle's value at
/// that rank within `1e-4` of the largest value (so near ties may swap); the number of
/// items is three or every positive one. Returns whether there were three.
fn assert_top_three(got: &[ItemIdx], contrib: &[(u32, f64)], what: &str) -> bool {
    let scale = contrib.iter().fold(0.0f64, |m, c| m.max(c.1.abs())).max(1e-12);
    let eps = 1e-4 * scale;
    let mut want: Vec<(u32, f64)> = contrib.iter().copied().filter(|c| c.1 > 0.0).collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let (sure, maybe) = (contrib.iter().filter(|c| c.1 > eps).count(), contrib.iter().filter(|c| c.1 > -eps).count());
    assert!(
        (sure.min(3)..=maybe.min(3)).contains(&got.len()),
        "{what}: {} items given, the oracle has {sure} to {maybe} positive terms: {got:?} vs {want:?}",
        got.len()
    );
    let value = |i: u32| contrib.iter().find(|c| c.0 == i).map(|c| c.1);
    for (k, g) in got.iter().enumerate() {
        let v = value(g.0).unwrap_or_else(|| panic!("{what}: item {} was not bought: {got:?}", g.0));
        let w = want.get(k).map_or(0.0, |w| w.1);
        assert!((v - w).abs() <= eps, "{what}: rank {k} is item {} ({v}), the oracle's is {want:?}", g.0);
        assert!(!got[..k].contains(g), "{what}: item {} twice", g.0);
    }
    got.len() == 3
}

// ---------------------------------------------------------------------------------------
// Library: EASE on both sides, with counts as weights
// ---------------------------------------------------------------------------------------

const CUSTOMERS: u32 = 40;
const ITEMS: u32 = 16;

/// Purchases with three taste groups: (customer, item) -> summed quantity.
pub(crate) fn purchases() -> BTreeMap<(u32, u32), f64> {
    let mut rng = Lcg(SEED ^ 0xe4);
    let mut p = BTreeMap::new();
    for c in 0..CUSTOMERS {
        for _ in 0..4 + rng.below(7) {
            let i = if rng.below(10) < 7 { (c % 3) * 5 + rng.below(6) } else { rng.below(ITEMS) };
            *p.entry((c, i)).or_default() += f64::from(1 + rng.below(4));
        }
    }
    p
}

pub(crate) fn fit(p: &BTreeMap<(u32, u32), f64>, params: &FitParams) -> Model {
    let mut b = InteractionsBuilder::new();
    for (&(c, i), &q) in p {
        b.purchase(&format!("c{c:02}"), &format!("i{i:02}"), q, None, None).unwrap();
    }
    Model::fit(b.finish().0, params, FitInfo::default()).unwrap()
}

#[test]
fn ease_reasons_are_the_largest_terms_of_the_score() {
    let p = purchases();
    let mut x: Dense = vec![vec![0.0; ITEMS as usize]; CUSTOMERS as usize];
    p.iter().for_each(|(&(c, i), &q)| x[c as usize][i as usize] = q);
    let lambda = 3.0f32;
    let kept = kept_items(&x, ITEMS as usize, 0);
    let b = oracle_b(&x, &kept, f64::from(lambda));
    let coefficient = |i: usize, j: usize| match (kept.binary_search(&i), kept.binary_search(&j)) {
        (Ok(a), Ok(c)) => b[a][c],
        _ => 0.0,
    };
    for side in [EaseSide::Items, EaseSide::Customers] {
        let params = FitParams {
            algorithm: Algorithm::Ease,
            weighting: Weighting { scheme: Scheme::Count, half_life_days: None, reference_time: None },
            ease: EaseParams { lambda, max_items: 0, side },
            ..FitParams::default()
        };
        let model = fit(&p, &params);
        let (mut reasons, mut full) = (0, 0);
        for include_bought in [false, true] {
            let filter = model.filter(&Filter { include_bought, ..Filter::default() }).unwrap();
            let scorer = model.scorer(&filter);
            let mut s = scorer.scratch();
            let mut out = Vec::new();
            for c in 0..CUSTOMERS {
                let cust = model.customer(&format!("c{c:02}")).unwrap();
                let q = scorer.query(cust);
                scorer.recommend(&q, 6, &mut s, &mut out);
                for rec in out.iter().filter(|r| r.source == Source::Ease) {
                    let j: usize = model.item_id(rec.item)[1..].parse().unwrap();
                    let got = match scorer.explain(&q, rec, &s) {
                        Reason::BoughtWith(v) if !v.is_empty() => v,
                        // No bought item argues for it: the whole pattern does.
                        Reason::Resembles(v) if v.is_empty() => v,
                        other => panic!("EASE explains by items, got {other:?}"),
                    };
                    // The reason names model indices; the oracle works in the test's own.
                    let got: Vec<ItemIdx> =
                        got.iter().map(|&i| ItemIdx(model.item_id(i)[1..].parse().unwrap())).collect();
                    let contrib: Vec<(u32, f64)> =
                        p.range((c, 0)..(c + 1, 0)).map(|(&(_, i), &w)| (i, w * coefficient(i as usize, j))).collect();
                    let what = format!("{side:?}, customer {c}, item {j}, bought shown {include_bought}");
                    full += usize::from(assert_top_three(&got, &contrib, &what));
                    reasons += 1;
                }
            }
        }
        assert!(reasons >= 400 && full * 2 >= reasons, "{side:?}: {full} of {reasons} reasons name three items");
    }
}

// ---------------------------------------------------------------------------------------
// Command line: README's sentences, EASE and ALS
// ---------------------------------------------------------------------------------------

/// (customer id, item id, reason) of each row of a `recommend --explain` file.
fn explained(csv: &str) -> Vec<(String, String, String, String)> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("customer_id,rank,item_id,score,source,reason"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.splitn(6, ',').collect();
            let reason = f[5].strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(f[5]);
            (f[0].to_string(), f[2].to_string(), f[4].to_string(), reason.to_string())
        })
        .collect()
}

/// Fits `algorithm` on the generated purchases and returns the loaded model and the
/// explained recommendations.
fn fit_and_explain(algorithm: &[&str]) -> (Model, Vec<(String, String, String, String)>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.join("purchases.csv"), &header, &lines);
    let mut args = vec!["fit", "--purchases", "purchases.csv", "--model", "m.cobuy", "--quiet"];
    args.extend_from_slice(&COLUMNS);
    args.extend_from_slice(algorithm);
    let o = run_cobuy(dir, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_cobuy(dir, &["recommend", "--model", "m.cobuy", "--top", "5", "--explain", "--out", "r.csv"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (Model::load(dir.join("m.cobuy")).unwrap(), explained(&fs::read_to_string(dir.join("r.csv")).unwrap()))
}

/// The items a sentence names after `prefix`, as model indices.
fn named(model: &Model, reason: &str, prefix: &str) -> Vec<ItemIdx> {
    let list = reason.strip_prefix(prefix).unwrap_or_else(|| panic!("{reason:?} does not start with {prefix:?}"));
    list.split(", ").map(|id| model.item(id).unwrap_or_else(|| panic!("{id:?} in {reason:?}"))).collect()
}

#[test]
fn cli_ease_reasons_name_the_largest_terms() {
    let (model, rows) = fit_and_explain(&["--algorithm", "ease", "--ease-lambda", "20"]);
    let x = dense(model.weighted());
    let items = model.items().len();
    let kept = kept_items(&x, items, 0);
    let b = oracle_b(&x, &kept, 20.0);
    let (mut full, mut ease) = (0, 0);
    for (customer, item, source, reason) in &rows {
        if source != "ease" {
            continue;
        }
        ease += 1;
        let c = model.customer(customer).unwrap().get();
        let j = kept.binary_search(&(model.item(item).unwrap().0 as usize)).expect("a scored item is in the solve");
        let contrib: Vec<(u32, f64)> = (0..items)
            .filter(|&i| x[c][i] != 0.0)
            .map(|i| (i as u32, x[c][i] * kept.binary_search(&i).map_or(0.0, |a| b[a][j])))
            .collect();
        let got = if reason == "fits the customer's overall purchase pattern" {
            Vec::new()
        } else {
            named(&model, reason, "also bought by customers who bought ")
        };
        full += usize::from(assert_top_three(&got, &contrib, &format!("{customer} {item}")));
    }
    assert!(ease >= 1000 && full * 4 >= ease * 3, "{full} of {ease} EASE rows name three items");
}

#[test]
fn cli_als_reasons_name_the_items_closest_in_factor_space() {
    let (model, rows) = fit_and_explain(&["--algorithm", "als", "--factors", "8", "--iterations", "6"]);
    let f = model.params().als.factors;
    let flags = AlsParams { factors: 8, iterations: 6, ..AlsParams::default() };
    assert_eq!(model.params().als, flags.resolve(model.weighted()), "the flags, the default penalty resolved");
    // The item factors, read from the file's AITM section (items x factors, f32 LE).
    let aitm = sections(&model.to_bytes()).into_iter().find(|s| &s.0 == b"AITM").unwrap().1;
    let y: Vec<f64> = aitm.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap()))).collect();
    assert_eq!(y.len(), model.items().len() * f);
    let dot = |i: usize, j: usize| (0..f).map(|k| y[i * f + k] * y[j * f + k]).sum::<f64>();
    let (mut full, mut als) = (0, 0);
    for (customer, item, source, reason) in &rows {
        if source != "als" {
            continue;
        }
        als += 1;
        let c = model.customer(customer).unwrap();
        let j = model.item(item).unwrap().0 as usize;
        let contrib: Vec<(u32, f64)> =
            model.interactions().purchases(c).0.iter().map(|&i| (i, dot(i as usize, j))).collect();
        let got = if reason == "fits the customer's overall purchase pattern" {
            Vec::new()
        } else {
            named(&model, reason, "bought by the same kind of customers as ")
        };
        full += usize::from(assert_top_three(&got, &contrib, &format!("{customer} {item}")));
    }
    assert!(als >= 1000 && full * 10 >= als * 8, "{full} of {als} ALS rows name three items");
}
