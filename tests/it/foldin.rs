//! Fold-in against independent oracles: `Model::recommend_for_items` and `cobuy fold-in`
//! score a basket given now as the definitions say, computed here from the model's
//! parameters (item neighbours; EASE's `B`, solved densely here; ALS's item factors, read
//! from the file) and weights computed here from counts and purchase times (time decay
//! counted back from the model's reference time). `tests/it/hostile_eval.rs` checks the
//! other half of the claim: a customer folded in from their own history gets the model's
//! list.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use cobuy::algo::Algorithm;
use cobuy::algo::ease::EaseParams;
use cobuy::ids::CustomerIdx;
use cobuy::matrix::{Csr, Scheme, Weighting};
use cobuy::model::{FitParams, Model};
use cobuy::recommend::{Recommendation, Source};

use crate::common::{COLUMNS, SEED, customer_id, item_id, price, purchase_lines, run_cobuy, write_lines};
use crate::ease_oracle::{Dense, dense, gauss_jordan, kept_items, oracle_b};
use crate::explain::{fit, purchases};
use crate::model_values::sections;

// ---------------------------------------------------------------------------------------
// The oracle's list and the comparison
// ---------------------------------------------------------------------------------------

/// Scores of every item for a basket (item index -> weight) under `how`.
enum Oracle<'a> {
    /// `s_j = sum_i w_i N[i, j]`; only positive scores rank.
    Neighbours(&'a Csr),
    /// `s_j = sum_i w_i B[i, j]` over the kept items; every item ranks (unkept ones at 0).
    Ease { b: &'a Dense, kept: &'a [usize] },
    /// `s_j = u . y_j` for the customer factors `u` solved from the normal equations
    /// ([`als_fold_in`]) against the item factors `y` (`f` per item); every item ranks.
    Factors { y: &'a [f64], f: usize, reg: f64, alpha: f64 },
}

impl Oracle<'_> {
    fn scores(&self, items: usize, basket: &BTreeMap<usize, f64>) -> Vec<f64> {
        let mut s = vec![0.0; items];
        match self {
            Oracle::Neighbours(n) => {
                for (&i, &w) in basket {
                    let row = n.outer_view(i).unwrap();
                    for (j, &v) in row.iter() {
                        s[j] += w * f64::from(v);
                    }
                }
            }
            Oracle::Ease { b, kept } => {
                for (&i, &w) in basket {
                    let Ok(a) = kept.binary_search(&i) else { continue };
                    for (c, &j) in kept.iter().enumerate() {
                        s[j] += w * b[a][c];
                    }
                }
            }
            &Oracle::Factors { y, f, reg, alpha } => {
                let u = als_fold_in(y, f, reg, alpha, basket);
                for (j, sj) in s.iter_mut().enumerate() {
                    *sj = (0..f).map(|k| u[k] * y[j * f + k]).sum();
                }
            }
        }
        s
    }

    fn ranks(&self, score: f64) -> bool {
        !matches!(self, Oracle::Neighbours(_)) || score > 0.0
    }
}

/// ALS's customer step, from its definition (module docs of `algo/als.rs`): minimise
/// `sum_i c_i (p_i - u . y_i)^2 + reg |u|^2` over every item, `p_i = 1` and
/// `c_i = 1 + alpha w_i` for the basket's items, 0 and 1 for the rest; solved in f64.
fn als_fold_in(y: &[f64], f: usize, reg: f64, alpha: f64, basket: &BTreeMap<usize, f64>) -> Vec<f64> {
    let items = y.len() / f;
    let mut a = vec![vec![0.0; f]; f];
    let mut b = vec![0.0; f];
    for j in 0..items {
        let c = basket.get(&j).map_or(1.0, |&w| 1.0 + alpha * w);
        let yj = &y[j * f..(j + 1) * f];
        for r in 0..f {
            for k in 0..f {
                a[r][k] += c * yj[r] * yj[k];
            }
            if basket.contains_key(&j) {
                b[r] += c * yj[r];
            }
        }
    }
    (0..f).for_each(|r| a[r][r] += reg);
    let inv = gauss_jordan(&a);
    (0..f).map(|r| (0..f).map(|k| inv[r][k] * b[k]).sum()).collect()
}

/// Items by buyers (customers with the item in the model), most first, ties by index.
fn popularity(model: &Model) -> Vec<usize> {
    let counts = model.interactions().counts();
    let mut buyers = vec![0u32; counts.cols()];
    counts.indices().iter().for_each(|&j| buyers[j as usize] += 1);
    let mut order: Vec<usize> = (0..buyers.len()).filter(|&j| buyers[j] > 0).collect();
    order.sort_by_key(|&j| (std::cmp::Reverse(buyers[j]), j));
    order
}

/// Checks a list (item, score, filled from popularity) against the oracle: the scored
/// part ranks the eligible items by the oracle's score (each rank's score within `1e-4`
/// of the largest, so near ties may swap), the rest is the most popular eligible items
/// not listed, with score 0.
fn assert_list(
    got: &[(usize, f64, bool)],
    want: &[f64],
    eligible: &dyn Fn(usize) -> bool,
    o: &Oracle,
    popular: &[usize],
    n: usize,
    what: &str,
) {
    let eps = 1e-4 * want.iter().fold(1e-9f64, |m, v| m.max(v.abs()));
    let mut ranked: Vec<usize> = (0..want.len()).filter(|&j| eligible(j) && o.ranks(want[j])).collect();
    ranked.sort_by(|&a, &b| want[b].total_cmp(&want[a]).then(a.cmp(&b)));
    ranked.truncate(n);
    let scored: Vec<&(usize, f64, bool)> = got.iter().filter(|g| !g.2).collect();
    assert_eq!(
        scored.len(),
        ranked.len(),
        "{what}: {} scored items, the oracle ranks {}: {got:?}",
        scored.len(),
        ranked.len()
    );
    for (k, &&(j, s, _)) in scored.iter().enumerate() {
        assert!(eligible(j), "{what}: item {j} may not be recommended");
        assert!(
            (want[j] - s).abs() <= eps && (want[ranked[k]] - s).abs() <= eps,
            "{what}: rank {k}: item {j} scored {s}, the oracle scores it {} and ranks item {} ({}) here",
            want[j],
            ranked[k],
            want[ranked[k]]
        );
        assert!(!scored[..k].iter().any(|g| g.0 == j), "{what}: item {j} twice");
    }
    let listed: Vec<usize> = scored.iter().map(|g| g.0).collect();
    let fill: Vec<usize> =
        popular.iter().copied().filter(|&j| eligible(j) && !listed.contains(&j)).take(n - listed.len()).collect();
    let got_fill: Vec<usize> = got.iter().filter(|g| g.2).map(|g| g.0).collect();
    assert_eq!(got_fill, fill, "{what}: the popularity fill");
    assert!(got.iter().filter(|g| g.2).all(|g| g.1 == 0.0), "{what}: fill scores 0");
    assert!(got.iter().skip(listed.len()).all(|g| g.2), "{what}: the fill comes last");
}

fn as_rows(recs: &[Recommendation]) -> Vec<(usize, f64, bool)> {
    recs.iter().map(|r| (r.item.0 as usize, f64::from(r.score), r.source == Source::Popular)).collect()
}

// ---------------------------------------------------------------------------------------
// Model::recommend_for_items
// ---------------------------------------------------------------------------------------

#[test]
fn recommend_for_items_scores_the_basket_as_defined() {
    let p = purchases();
    let customers = 1 + p.keys().map(|k| k.0).max().unwrap() as usize;
    let items = 1 + p.keys().map(|k| k.1).max().unwrap() as usize;
    // Binary weights: every bought item weighs 1, in the model and in fold-in.
    let mut x: Dense = vec![vec![0.0; items]; customers];
    p.keys().for_each(|&(c, i)| x[c as usize][i as usize] = 1.0);
    let binary = Weighting { scheme: Scheme::Binary, half_life_days: None, reference_time: None };
    let lambda = 2.0f32;
    let kept = kept_items(&x, items, 0);
    let b = oracle_b(&x, &kept, f64::from(lambda));
    let knn = fit(&p, &FitParams { neighbors: 6, weighting: binary, ..FitParams::default() });
    let ease = fit(
        &p,
        &FitParams {
            algorithm: Algorithm::Ease,
            weighting: binary,
            ease: EaseParams { lambda, ..EaseParams::default() },
            ..FitParams::default()
        },
    );
    // Baskets: every customer's items, and some new ones.
    let mut baskets: Vec<Vec<usize>> =
        (0..customers as u32).map(|c| p.range((c, 0)..(c + 1, 0)).map(|(k, _)| k.1 as usize).collect()).collect();
    baskets.extend([vec![0], vec![3, 9], vec![1, 7, 12, 15], vec![]]);
    for (model, oracle, name) in
        [(&knn, Oracle::Neighbours(knn.neighbors()), "item-knn"), (&ease, Oracle::Ease { b: &b, kept: &kept }, "ease")]
    {
        // The model indexes items in natural id order: i00, i01, ... as the test does.
        assert!((0..items).all(|i| model.item(&format!("i{i:02}")).map(|j| j.0 as usize) == Some(i)));
        let popular = popularity(model);
        for (n, basket) in baskets.iter().enumerate() {
            let ids: Vec<String> = basket.iter().map(|i| format!("i{i:02}")).collect();
            // Unknown ids are ignored and a repeated one counts once.
            let mut given: Vec<&str> = ids.iter().map(String::as_str).collect();
            given.extend(["no-such-item", ids.first().map_or("i00x", String::as_str)]);
            let recs = model.recommend_for_items(&given, 8);
            let weights: BTreeMap<usize, f64> = basket.iter().map(|&i| (i, 1.0)).collect();
            let want = oracle.scores(items, &weights);
            let what = format!("{name}, basket {n} {basket:?}");
            assert_list(&as_rows(&recs), &want, &|j| !basket.contains(&j), &oracle, &popular, 8, &what);
            // A customer in the model folded in from their own items gets their list.
            if n < customers {
                assert_eq!(recs, model.recommend(CustomerIdx(n as u32), 8), "{what}: fold-in vs the model's list");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// cobuy fold-in, with purchase times and decay
// ---------------------------------------------------------------------------------------

const HALF_LIFE: f64 = 30.0;

/// Purchase rows given now: a new customer with a pair bought twice (the later time
/// counts), an unknown item and a purchase decayed to nothing; a new customer with a
/// netted-out pair (seen: not recommended, no weight); a known customer (only these rows
/// count, not their history).
fn fold_in_rows() -> Vec<String> {
    let row = |c: &str, i: u32, q: i32, t: &str| format!("{c},{},{q},{},{t}", item_id(i), price(i));
    let known = customer_id(1);
    vec![
        row("new-1", 3, 1, "2023-12-20 10:00:00"),
        row("new-1", 3, 2, "2023-06-01 00:00:00"),
        row("new-1", 17, 1, "2023-03-15 12:00:00"),
        "new-1,NO-SUCH-ITEM,1,1.00,2023-05-05 00:00:00".into(),
        row("new-1", 40, 1, "2001-01-01 00:00:00"),
        row("new-2", 5, 1, "2023-11-01 08:00:00"),
        row("new-2", 6, 2, "2023-10-01 08:00:00"),
        row("new-2", 6, -2, "2023-10-02 08:00:00"),
        row("new-2", 22, 4, "2023-09-09 09:09:09"),
        row(&known, 10, 1, "2023-12-01 00:00:00"),
        row(&known, 11, 3, "2023-08-08 00:00:00"),
        row(&known, 61, 1, "2024-02-01 00:00:00"),
    ]
}

/// The rows as baskets: customer id -> (item id -> (net count, latest purchase time));
/// a net count of 0 is a pair seen only (netted out).
type Baskets = BTreeMap<String, BTreeMap<String, (f64, i64)>>;

fn baskets(rows: &[String]) -> Baskets {
    let mut b: Baskets = BTreeMap::new();
    for r in rows {
        let f: Vec<&str> = r.split(',').collect();
        let q: f64 = f[2].parse().unwrap();
        let t = cobuy::time::parse(f[4]).unwrap();
        let e = b.entry(f[0].into()).or_default().entry(f[1].into()).or_insert((0.0, i64::MIN));
        e.0 += q;
        if q > 0.0 {
            e.1 = e.1.max(t);
        }
    }
    b
}

/// `0.5^(age / half-life)`, ages counted back from `t0`, none for later times; stored as
/// f32 like every weight.
fn decayed(t0: i64, t: i64) -> f64 {
    f64::from(0.5f64.powf((t0 - t).max(0) as f64 / 86_400.0 / HALF_LIFE) as f32)
}

/// The fold-in output: customer id -> (item id, score, filled) rows in order.
fn read_lists(path: &Path) -> BTreeMap<String, Vec<(String, f64, bool)>> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("customer_id,rank,item_id,score,source"));
    let mut out: BTreeMap<String, Vec<(String, f64, bool)>> = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let list = out.entry(f[0].into()).or_default();
        assert_eq!(f[1], (list.len() + 1).to_string(), "{l}");
        list.push((f[2].into(), f[3].parse().unwrap(), f[4] == "popular"));
    }
    out
}

struct Run {
    _tmp: tempfile::TempDir,
    model: Model,
    lists: BTreeMap<String, Vec<(String, f64, bool)>>,
}

/// Fits with `fit` flags, folds in [`fold_in_rows`], reads both back.
fn fit_and_fold_in(fit: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.join("purchases.csv"), &header, &lines);
    write_lines(&dir.join("new.csv"), &header, &fold_in_rows());
    let mut args = vec!["fit", "--purchases", "purchases.csv", "--model", "m.cobuy", "--quiet"];
    args.extend_from_slice(&COLUMNS);
    args.extend_from_slice(fit);
    let o = run_cobuy(dir, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut args = vec!["fold-in", "--model", "m.cobuy", "--purchases", "new.csv", "--top", "10", "--out", "f.csv"];
    args.extend_from_slice(&COLUMNS);
    let o = run_cobuy(dir, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 customer-item pairs name items the model does not know"), "{err}");
    Run { model: Model::load(dir.join("m.cobuy")).unwrap(), lists: read_lists(&dir.join("f.csv")), _tmp: tmp }
}

/// Checks every folded-in customer's list against `oracle`, with basket weights
/// `weight(net count, latest time)`.
fn check_fold_in(run: &Run, oracle: &Oracle, weight: &dyn Fn(f64, i64) -> f64, what: &str) {
    let model = &run.model;
    let items = model.items().len();
    let popular = popularity(model);
    let given = baskets(&fold_in_rows());
    assert_eq!(run.lists.keys().collect::<Vec<_>>(), given.keys().collect::<Vec<_>>(), "{what}: every customer");
    for (customer, rows) in &given {
        let mut basket = BTreeMap::new();
        let mut blocked = Vec::new();
        for (id, &(count, time)) in rows {
            let Some(i) = model.item(id) else { continue };
            blocked.push(i.0 as usize);
            if count > 0.0 {
                basket.insert(i.0 as usize, weight(count, time));
            }
        }
        let want = oracle.scores(items, &basket);
        let got: Vec<(usize, f64, bool)> =
            run.lists[customer].iter().map(|(id, s, fill)| (model.item(id).unwrap().0 as usize, *s, *fill)).collect();
        let what = format!("{what}, {customer}");
        assert_list(&got, &want, &|j| !blocked.contains(&j), oracle, &popular, 10, &what);
    }
}

#[test]
fn cli_fold_in_with_decay_scores_as_defined() {
    let decay = ["--weighting", "binary", "--half-life-days", "30"];
    let knn = fit_and_fold_in(&[&["--algorithm", "item-knn", "--neighbors", "15"][..], &decay].concat());
    let t0 = knn.model.params().weighting.reference_time.expect("the decay reference is resolved");
    assert_eq!(knn.model.params().weighting.half_life_days, Some(HALF_LIFE));
    check_fold_in(&knn, &Oracle::Neighbours(knn.model.neighbors()), &|_, t| decayed(t0, t), "item-knn");

    let ease = fit_and_fold_in(&[&["--algorithm", "ease", "--ease-lambda", "5"][..], &decay].concat());
    let model = &ease.model;
    assert_eq!(model.params().weighting.reference_time, Some(t0));
    // The model's own weighted rows, from its counts' structure and times.
    let (customers, items) = (model.customers().len(), model.items().len());
    let mut x: Dense = vec![vec![0.0; items]; customers];
    let times = model.interactions().last_time().unwrap();
    let counts = model.interactions().counts();
    for (c, row) in counts.outer_iterator().enumerate() {
        let start = counts.indptr().outer_inds_sz(c).start;
        for (k, (i, _)) in row.iter().enumerate() {
            x[c][i] = decayed(t0, times[start + k]);
        }
    }
    let weighted = dense(model.weighted());
    assert!(x.iter().flatten().zip(weighted.iter().flatten()).all(|(a, b)| (a - b).abs() <= 1e-6 * a.abs()));
    let kept = kept_items(&x, items, 0);
    let b = oracle_b(&x, &kept, 5.0);
    check_fold_in(&ease, &Oracle::Ease { b: &b, kept: &kept }, &|_, t| decayed(t0, t), "ease");
}

/// ALS fold-in solves the customer's least-squares step exactly against the item factors
/// (README, ARCHITECTURE.md): the lists are those of the normal equations solved here.
#[test]
fn cli_als_fold_in_solves_the_customer_step_exactly() {
    let run = fit_and_fold_in(&["--algorithm", "als", "--factors", "8", "--iterations", "6"]);
    let model = &run.model;
    let p = model.params();
    assert_eq!(p.weighting.scheme, Scheme::Log, "ALS weighs log(1 + count) by default");
    let f = p.als.factors;
    let aitm = sections(&model.to_bytes()).into_iter().find(|s| &s.0 == b"AITM").unwrap().1;
    let y: Vec<f64> = aitm.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap()))).collect();
    let oracle = Oracle::Factors { y: &y, f, reg: f64::from(p.als.regularization), alpha: f64::from(p.als.alpha) };
    check_fold_in(&run, &oracle, &|count, _| f64::from(count.ln_1p() as f32), "als");
}

/// Buy-again's fold-in reason counts in the unit of the rows folded in, not the model's:
/// with a quantity column the net units ("bought 3 units before"), without one the
/// purchase rows ("bought 2 times before"), whichever the model was fitted with.
#[test]
fn cli_fold_in_reasons_count_in_the_unit_of_the_rows_given() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.join("purchases.csv"), &header, &lines);
    let rows = fold_in_rows();
    write_lines(&dir.join("new.csv"), &header, &rows);
    // Without the quantity column every row is one purchase (returns too: nothing says so).
    let no_quantity: Vec<&str> = COLUMNS.chunks(2).filter(|f| f[0] != "--quantity-col").flatten().copied().collect();
    let date = |t: i64| cobuy::time::date(t).to_string();
    // (customer, item) -> the reason the definition gives, per unit.
    let mut by_units: BTreeMap<(String, String), String> = BTreeMap::new();
    for (c, pairs) in baskets(&rows) {
        for (i, (net, last)) in pairs {
            let n = net as i64;
            let units = if n == 1 { "1 unit".to_string() } else { format!("{n} units") };
            by_units.insert((c.clone(), i), format!("bought {units} before, last on {}", date(last)));
        }
    }
    let mut by_rows: BTreeMap<(String, String), (usize, i64)> = BTreeMap::new();
    for r in &rows {
        let f: Vec<&str> = r.split(',').collect();
        let e = by_rows.entry((f[0].into(), f[1].into())).or_insert((0, i64::MIN));
        *e = (e.0 + 1, e.1.max(cobuy::time::parse(f[4]).unwrap()));
    }
    let by_rows: BTreeMap<(String, String), String> = by_rows
        .into_iter()
        .map(|(k, (n, last))| {
            let times = if n == 1 { "once".to_string() } else { format!("{n} times") };
            (k, format!("bought {times} before, last on {}", date(last)))
        })
        .collect();
    for (fit_cols, fold_cols, want, what) in [
        (&COLUMNS[..], &no_quantity[..], &by_rows, "fitted on units, rows folded in"),
        (&no_quantity[..], &COLUMNS[..], &by_units, "fitted on rows, units folded in"),
        (&COLUMNS[..], &COLUMNS[..], &by_units, "units both"),
    ] {
        let mut args = vec!["fit", "--purchases", "purchases.csv", "--model", "m.cobuy", "--quiet"];
        args.extend_from_slice(fit_cols);
        args.extend_from_slice(&["--algorithm", "buy-again"]);
        let o = run_cobuy(dir, &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut args = vec!["fold-in", "--model", "m.cobuy", "--purchases", "new.csv", "--explain", "--out", "f.csv"];
        args.extend_from_slice(fold_cols);
        let o = run_cobuy(dir, &args);
        assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
        let mut checked = 0;
        for r in csv::Reader::from_path(dir.join("f.csv")).unwrap().records() {
            let r = r.unwrap();
            if &r[4] != "buy-again" {
                continue;
            }
            let key = (r[0].to_string(), r[2].to_string());
            assert_eq!(Some(&r[5]), want.get(&key).map(String::as_str), "{what}: reason of {r:?}");
            checked += 1;
        }
        assert!(checked >= 5, "{what}: only {checked} buy-again rows");
    }
}
