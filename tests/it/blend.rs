//! The blend with buy-again (`buy_again_weight`) against its documented formula, computed
//! here from the raw purchases: where bought items may be recommended, item `j`'s score is
//! the model's own score plus, for the customer's bought items,
//! `weight * strongest_model / strongest_own * count_j * 0.5^(age_j / 60 days) * sqrt(rr_j) * season_j`,
//! with `rr_j = (buyers of j with a count >= 2 + 1) / (buyers of j + 2)`, times the season
//! `((recent_j + 1) / (buyers_j * recent share + 1))^(1/4)` (recent: the last purchase within
//! 14 days of the newest), ages counted back from the newest purchase, and the strongest
//! values over the customer's allowed items;
//! bought items are then offered as buy-again. Under the default filter the weight changes
//! nothing, and `recommend` says so. `auto` tries the blend for all items.

use std::collections::BTreeMap;

use cobuy::algo::Algorithm;
use cobuy::algo::ease::{EaseParams, EaseSide};
use cobuy::matrix::{InteractionsBuilder, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::recommend::{Filter, Source};

use crate::common::{Lcg, SEED, run_cobuy, write_lines};
use crate::ease_oracle::{Dense, kept_items, oracle_b};

const CUSTOMERS: u32 = 30;
const ITEMS: u32 = 12;
const DAY: i64 = 86_400;
/// The newest purchase: day 200.
const NEWEST: i64 = 200 * DAY;

/// (customer, item) -> (count, day of the last purchase); every customer buys on day 200
/// at least once, so the decay reference is day 200.
fn purchases() -> BTreeMap<(u32, u32), (f64, i64)> {
    let mut rng = Lcg(SEED ^ 0xb1e4d);
    let mut p = BTreeMap::new();
    for c in 0..CUSTOMERS {
        for _ in 0..3 + rng.below(6) {
            let i = if rng.below(10) < 6 { (c % 2) * 6 + rng.below(6) } else { rng.below(ITEMS) };
            let count = f64::from(1 + rng.below(3));
            let day = i64::from(rng.below(201));
            p.insert((c, i), (count, day));
        }
    }
    p.insert((0, 0), (2.0, 200));
    p
}

fn fit(p: &BTreeMap<(u32, u32), (f64, i64)>, params: &FitParams) -> Model {
    let mut b = InteractionsBuilder::new();
    for (&(c, i), &(q, day)) in p {
        b.purchase(&format!("c{c:02}"), &format!("i{i:02}"), q, None, Some(day * DAY)).unwrap();
    }
    Model::fit(b.finish().0, params, FitInfo::default()).unwrap()
}

#[test]
fn the_blend_adds_the_scaled_buy_again_score_to_bought_items() {
    let p = purchases();
    let mut x: Dense = vec![vec![0.0; ITEMS as usize]; CUSTOMERS as usize];
    p.iter().for_each(|(&(c, i), &(q, _))| x[c as usize][i as usize] = q);
    let lambda = 2.0f32;
    let b = oracle_b(&x, &kept_items(&x, ITEMS as usize, 0), f64::from(lambda));
    let buyers: Vec<f64> = (0..ITEMS).map(|i| p.keys().filter(|k| k.1 == i).count() as f64).collect();
    let repeaters: Vec<f64> =
        (0..ITEMS).map(|i| p.iter().filter(|(k, v)| k.1 == i && v.0 >= 2.0).count() as f64).collect();
    // The season: buyers whose last purchase is within 14 days of the newest, against
    // every item's share of them.
    let recent: Vec<f64> = (0..ITEMS)
        .map(|i| p.iter().filter(|(k, v)| k.1 == i && (v.1 * DAY) >= NEWEST - 14 * DAY).count() as f64)
        .collect();
    let share = recent.iter().sum::<f64>() / buyers.iter().sum::<f64>();
    let season = |i: usize| ((recent[i] + 1.0) / (buyers[i] * share + 1.0)).powf(0.25);
    let rr = |i: usize| ((repeaters[i] + 1.0) / (buyers[i] + 2.0)).sqrt() * season(i);
    for weight in [0.5f32, 3.0] {
        let params = FitParams {
            algorithm: Algorithm::Ease,
            weighting: Weighting { scheme: Scheme::Count, half_life_days: None, reference_time: None },
            ease: EaseParams { lambda, max_items: 0, side: EaseSide::Items },
            buy_again_weight: weight,
            ..FitParams::default()
        };
        let model = fit(&p, &params);
        let filter = model.filter(&Filter { include_bought: true, ..Filter::default() }).unwrap();
        let scorer = model.scorer(&filter);
        let mut s = scorer.scratch();
        let mut got = Vec::new();
        let mut blended = 0;
        for c in 0..CUSTOMERS {
            let idx = model.customer(&format!("c{c:02}")).unwrap();
            scorer.recommend(&scorer.query(idx), ITEMS as usize, &mut s, &mut got);
            // The model's score: sum over bought items of x_i B[i, j].
            let cf: Vec<f64> =
                (0..ITEMS as usize).map(|j| (0..ITEMS as usize).map(|i| x[c as usize][i] * b[i][j]).sum()).collect();
            let own = |j: usize| {
                p.get(&(c, j as u32))
                    .map(|&(q, day)| q * 0.5f64.powf((NEWEST - day * DAY) as f64 / DAY as f64 / 60.0) * rr(j))
            };
            let strongest_cf = cf.iter().copied().fold(f64::MIN, f64::max);
            let strongest_own = (0..ITEMS as usize).filter_map(own).fold(0.0, f64::max);
            let scale = f64::from(weight) * if strongest_cf > 0.0 { strongest_cf } else { 1.0 } / strongest_own;
            let want: Vec<f64> = (0..ITEMS as usize).map(|j| cf[j] + own(j).map_or(0.0, |o| scale * o)).collect();
            let tol = 1e-4 * want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert_eq!(got.len(), ITEMS as usize, "customer {c}: every item is scored");
            for (r, rec) in got.iter().enumerate() {
                let j: usize = model.item_id(rec.item)[1..].parse().unwrap();
                assert!(
                    (f64::from(rec.score) - want[j]).abs() <= tol,
                    "weight {weight}, customer {c}, item {j}: {} vs {}",
                    rec.score,
                    want[j]
                );
                let bought = p.contains_key(&(c, j as u32));
                let source = if bought { Source::BuyAgain } else { Source::Ease };
                assert_eq!(rec.source, source, "customer {c}, item {j}");
                blended += usize::from(bought && r < 3);
                if let Some(next) = got.get(r + 1) {
                    let k: usize = model.item_id(next.item)[1..].parse().unwrap();
                    assert!(want[j] >= want[k] - tol, "customer {c}: {j} ({}) before {k} ({})", want[j], want[k]);
                }
            }
        }
        assert!(blended > 0, "weight {weight}: no bought item in any top 3");
    }
}

#[test]
fn the_weight_changes_nothing_under_the_default_filter_and_recommend_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = purchases();
    let lines: Vec<String> =
        p.iter().map(|(&(c, i), &(q, day))| format!("c{c:02},i{i:02},{q},{}", day * DAY)).collect();
    write_lines(&dir.path().join("p.csv"), "customer,item,quantity,time", &lines);
    let mut lists = Vec::new();
    for (model, weight) in [("a.cobuy", "0"), ("b.cobuy", "2")] {
        let out = run_cobuy(
            dir.path(),
            &[
                "fit",
                "--purchases",
                "p.csv",
                "--customer-col",
                "customer",
                "--item-col",
                "item",
                "--quantity-col",
                "quantity",
                "--time-col",
                "time",
                "--algorithm",
                "item-knn",
                "--buy-again-weight",
                weight,
                "--model",
                model,
            ],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for include in [false, true] {
            let mut args = vec!["recommend", "--model", model, "--top", "5", "--out", "r.csv"];
            if include {
                args.push("--include-bought");
            }
            let out = run_cobuy(dir.path(), &args);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let warned = String::from_utf8_lossy(&out.stderr).contains("buy-again weight (2) changes nothing here");
            assert_eq!(warned, weight == "2" && !include, "{}", String::from_utf8_lossy(&out.stderr));
            lists.push(std::fs::read_to_string(dir.path().join("r.csv")).unwrap());
        }
    }
    assert_eq!(lists[0], lists[2], "the weight changed lists under the default filter");
    assert_ne!(lists[1], lists[3], "the weight changed nothing with --include-bought");
    assert!(lists[3].contains(",buy-again"), "{}", lists[3]);
}

#[test]
fn auto_for_all_items_tries_the_blend_and_an_eval_job_refuses_a_fixed_target() {
    let dir = tempfile::tempdir().unwrap();
    // Customers who mostly buy their own items again, with a time each.
    let mut rng = Lcg(SEED ^ 0xa11);
    let mut lines = Vec::new();
    for c in 0..150 {
        let own: Vec<u32> = (0..4).map(|_| (c % 5) * 8 + rng.below(8)).collect();
        for day in 0..12 {
            let i = if rng.below(10) < 8 { own[rng.below(4) as usize] } else { rng.below(40) };
            lines.push(format!("c{c:03},i{i:02},1,{}", i64::from(day * 10 + rng.below(10)) * DAY));
        }
    }
    write_lines(&dir.path().join("p.csv"), "customer,item,quantity,time", &lines);
    let cols = ["--customer-col", "customer", "--item-col", "item", "--quantity-col", "quantity", "--time-col", "time"];
    let mut args = vec!["fit", "--purchases", "p.csv", "--model", "m.cobuy", "--auto-target", "all-items"];
    args.extend(cols);
    let out = run_cobuy(dir.path(), &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_cobuy(dir.path(), &["inspect", "m.cobuy"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for w in ["0.5", "1", "2", "4", "8"] {
        assert!(text.contains(&format!("buy-again weight {w})")), "blend weight {w} not tried:\n{text}");
    }
    assert!(text.contains("on all items"), "{text}");
    let out = run_cobuy(dir.path(), &["fit", "--purchases", "p.csv", "--model", "x.cobuy", "--auto-target", "some"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--auto-target: unknown \"some\""));
    std::fs::write(
        dir.path().join("e.toml"),
        "[input]\npurchases = \"p.csv\"\ncustomer_col = \"customer\"\nitem_col = \"item\"\ntime_col = \"time\"\n\
         [split]\nmethod = \"random\"\n[eval]\nout_dir = \"o\"\n[[algorithm]]\nauto_target = \"all-items\"\n",
    )
    .unwrap();
    let out = run_cobuy(dir.path(), &["run", "e.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auto_target: in an eval job"));
}
