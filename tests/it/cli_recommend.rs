//! End-to-end tests of `cobuy recommend`, `cobuy similar-customers` and `cobuy run` on the
//! shared generated purchases: every algorithm's output shape and invariants, reasons,
//! shards, customer lists, filters, usage errors, thread invariance and job files.
//!
//! Every expectation is computed here from the generated rows themselves (net quantities,
//! last purchase times, buyers per item), never from the library.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;

use tempfile::TempDir;

use cobuy::matrix::Scheme;
use ndarray::Array2;

use crate::common::{COLUMNS, Corpus, SEED, check_ranking, natural, purchase_lines, run_cobuy, top_k, write_lines};

/// Relative tolerance between the binary's f32 similarities and the oracle's f64 ones.
const TOL: f64 = 1e-5;

// ---------------------------------------------------------------------------------------
// The expected facts, computed from the generated rows
// ---------------------------------------------------------------------------------------

/// `YYYY-MM-DD HH:MM:SS` of 2023 (the generator's only year) as seconds since 2023-01-01.
fn seconds_2023(t: &str) -> i64 {
    const BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    assert!(t.len() == 19 && t.starts_with("2023-"), "unexpected time {t:?}");
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap_or_else(|_| panic!("bad time {t:?}"));
    let days = BEFORE[n(5..7) as usize - 1] + n(8..10) - 1;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Seconds since 2023-01-01 back to `YYYY-MM-DD`.
fn date_2023(secs: i64) -> String {
    const LEN: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut day = secs / 86_400;
    let mut month = 0;
    while day >= LEN[month] {
        day -= LEN[month];
        month += 1;
    }
    format!("2023-{:02}-{:02}", month + 1, day + 1)
}

type Pair = (String, String);

/// The generated purchases and what they imply.
struct Purchases {
    header: String,
    lines: Vec<String>,
    /// Every customer of the file (with or without net purchases), in natural order.
    customers: Vec<String>,
    /// Net quantity per (customer, item).
    net: HashMap<Pair, i64>,
    /// Latest time of a purchase row (quantity > 0) per (customer, item).
    last: HashMap<Pair, i64>,
    /// Items with a net purchase, per customer.
    bought: HashMap<String, BTreeSet<String>>,
    /// Customers with a net purchase, per item.
    buyers: HashMap<String, usize>,
    /// The newest purchase row's time.
    newest: i64,
}

impl Purchases {
    fn generate() -> Self {
        let (header, lines) = purchase_lines(SEED);
        let (mut net, mut last) = (HashMap::new(), HashMap::new());
        let mut customers = BTreeSet::new();
        let mut newest = i64::MIN;
        for line in &lines {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 5, "unexpected generated line {line:?}");
            let key = (f[0].to_string(), f[1].to_string());
            let q: i64 = f[2].parse().expect("integer quantity");
            let t = seconds_2023(f[4]);
            customers.insert(f[0].to_string());
            *net.entry(key.clone()).or_insert(0) += q;
            if q > 0 {
                let l = last.entry(key).or_insert(t);
                *l = (*l).max(t);
                newest = newest.max(t);
            }
        }
        let mut bought: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut buyers: HashMap<String, usize> = HashMap::new();
        for ((c, i), &q) in &net {
            if q > 0 {
                bought.entry(c.clone()).or_default().insert(i.clone());
                *buyers.entry(i.clone()).or_default() += 1;
            }
        }
        let mut customers: Vec<String> = customers.into_iter().collect();
        customers.sort_by(|a, b| natural(a, b));
        Purchases { header, lines, customers, net, last, bought, buyers, newest }
    }

    fn has_bought(&self, customer: &str, item: &str) -> bool {
        self.net.get(&(customer.to_string(), item.to_string())).is_some_and(|&q| q > 0)
    }

    fn items_of(&self, customer: &str) -> BTreeSet<String> {
        self.bought.get(customer).cloned().unwrap_or_default()
    }

    fn buyers_of(&self, item: &str) -> usize {
        self.buyers.get(item).copied().unwrap_or(0)
    }

    /// Every item of the file (bought, or only returned), in natural order.
    fn items(&self) -> Vec<String> {
        let mut items: Vec<String> = self.net.keys().map(|k| k.1.clone()).collect();
        items.sort_by(|a, b| natural(a, b));
        items.dedup();
        items
    }

    /// The model's weighted matrix by the documented default of item-kNN, BM25 (k1 1.2,
    /// b 0.75) over the net counts: customers (in natural order) x `items()`.
    fn bm25(&self) -> Array2<f64> {
        self.weighted(Scheme::Bm25 { k1: 1.2, b: 0.75 })
    }

    /// The net counts weighted by `scheme`: customers (in natural order) x `items()`.
    fn weighted(&self, scheme: Scheme) -> Array2<f64> {
        let items = self.items();
        let counts = Array2::from_shape_fn((self.customers.len(), items.len()), |(c, j)| {
            let q = self.net.get(&(self.customers[c].clone(), items[j].clone())).copied().unwrap_or(0);
            q.max(0) as f64
        });
        Corpus::of(&counts).weigh_all(scheme, &counts)
    }

    /// Every customer's cosine similarity to every other (0 on the diagonal) over weights `w`.
    fn cosines(w: &Array2<f64>) -> Array2<f64> {
        let norms: Vec<f64> = w.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
        let dots = w.dot(&w.t());
        Array2::from_shape_fn(dots.dim(), |(a, b)| {
            if a == b || dots[[a, b]] == 0.0 { 0.0 } else { dots[[a, b]] / (norms[a] * norms[b]) }
        })
    }

    /// Items by number of buyers, most first (ties: natural order).
    fn most_bought(&self) -> Vec<String> {
        let mut items: Vec<String> = self.buyers.keys().cloned().collect();
        items.sort_by(|a, b| self.buyers[b].cmp(&self.buyers[a]).then_with(|| natural(a, b)));
        items
    }
}

// ---------------------------------------------------------------------------------------
// Running the binary in a scratch folder
// ---------------------------------------------------------------------------------------

struct Run {
    code: i32,
    stderr: String,
}

/// A scratch folder holding `purchases.csv`; the binary runs inside it.
struct Fx {
    dir: TempDir,
    p: Purchases,
}

impl Fx {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = Purchases::generate();
        write_lines(&dir.path().join("purchases.csv"), &p.header, &p.lines);
        Fx { dir, p }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).expect("write input file");
    }

    fn run(&self, args: &[&str]) -> Run {
        let o = run_cobuy(self.dir.path(), args);
        Run { code: o.status.code().unwrap_or(-1), stderr: String::from_utf8_lossy(&o.stderr).into_owned() }
    }

    /// Runs and asserts exit code 0.
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "cobuy {args:?} failed:\n{}", r.stderr);
        r
    }

    /// `cobuy fit` of `purchases.csv` into `model` with the column flags and `extra`.
    fn fit(&self, model: &str, extra: &[&str]) {
        let mut args = vec!["fit", "--purchases", "purchases.csv", "--model", model];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// `cobuy recommend --model MODEL --out OUT EXTRA...`, exit code unchecked.
    fn recommend(&self, model: &str, out: &str, extra: &[&str]) -> Run {
        let mut args = vec!["recommend", "--model", model, "--out", out];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `cobuy similar-customers --model MODEL --out OUT EXTRA...`, exit code unchecked.
    fn similar(&self, model: &str, out: &str, extra: &[&str]) -> Run {
        let mut args = vec!["similar-customers", "--model", model, "--out", out];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// The data lines of an output file (header dropped).
    fn data_lines(&self, name: &str) -> Vec<String> {
        let text = String::from_utf8(self.bytes(name)).expect("UTF-8 output");
        text.lines().skip(1).map(str::to_string).collect()
    }

    /// A CSV output file: its header and its records, parsed by the `csv` crate.
    fn csv(&self, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_path(self.path(name)).expect("open csv");
        let mut rows = r.records().map(|rec| rec.expect("csv record").iter().map(str::to_string).collect());
        let header = rows.next().expect("a header line");
        (header, rows.collect())
    }

    /// A recommendations file, checked for its header.
    fn recs(&self, name: &str, explain: bool) -> Vec<Rec> {
        let (header, rows) = self.csv(name);
        let mut want = vec!["customer_id", "rank", "item_id", "score", "source"];
        if explain {
            want.push("reason");
        }
        assert_eq!(header, want, "{name}: header");
        rows.into_iter()
            .map(|r| {
                assert_eq!(r.len(), want.len(), "{name}: row {r:?}");
                Rec {
                    customer: r[0].clone(),
                    rank: r[1].parse().unwrap_or_else(|_| panic!("{name}: rank in {r:?}")),
                    item: r[2].clone(),
                    score: r[3].parse().unwrap_or_else(|_| panic!("{name}: score in {r:?}")),
                    source: r[4].clone(),
                    reason: r.get(5).cloned(),
                }
            })
            .collect()
    }

    /// A similar-customers file, checked for its header.
    fn neighbours(&self, name: &str) -> Vec<Nb> {
        let (header, rows) = self.csv(name);
        assert_eq!(header, ["customer_id", "rank", "neighbor_id", "similarity", "shared_items"], "{name}: header");
        rows.into_iter()
            .map(|r| {
                assert_eq!(r.len(), 5, "{name}: row {r:?}");
                Nb {
                    customer: r[0].clone(),
                    rank: r[1].parse().unwrap_or_else(|_| panic!("{name}: rank in {r:?}")),
                    neighbour: r[2].clone(),
                    sim: r[3].parse().unwrap_or_else(|_| panic!("{name}: similarity in {r:?}")),
                    shared: r[4].parse().unwrap_or_else(|_| panic!("{name}: shared_items in {r:?}")),
                }
            })
            .collect()
    }
}

/// One recommendation row.
#[derive(Debug, Clone)]
struct Rec {
    customer: String,
    rank: usize,
    item: String,
    score: f32,
    source: String,
    reason: Option<String>,
}

/// One similar-customers row.
#[derive(Debug, Clone)]
struct Nb {
    customer: String,
    rank: usize,
    neighbour: String,
    sim: f32,
    shared: usize,
}

/// Rows grouped by customer in file order; each customer must form one contiguous block
/// ranked 1, 2, ... n.
fn by_customer<T: Clone>(
    rows: &[T],
    customer: impl Fn(&T) -> &str,
    rank: impl Fn(&T) -> usize,
) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for r in rows {
        match groups.last_mut() {
            Some((c, v)) if c == customer(r) => v.push(r.clone()),
            _ => groups.push((customer(r).to_string(), vec![r.clone()])),
        }
    }
    let mut seen = BTreeSet::new();
    for (c, v) in &groups {
        assert!(seen.insert(c.clone()), "customer {c} appears in two separate blocks");
        let ranks: Vec<usize> = v.iter().map(&rank).collect();
        assert_eq!(ranks, (1..=v.len()).collect::<Vec<_>>(), "ranks of customer {c}");
    }
    groups
}

fn rec_groups(recs: &[Rec]) -> Vec<(String, Vec<Rec>)> {
    by_customer(recs, |r| &r.customer, |r| r.rank)
}

fn customers_of<T>(groups: &[(String, T)]) -> Vec<String> {
    groups.iter().map(|g| g.0.clone()).collect()
}

/// Writes ids one per line.
fn id_file(ids: &[&str]) -> String {
    ids.iter().map(|id| format!("{id}\n")).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// 1. Every algorithm: shape, ranks, order, sources, scores, exclusions
// ---------------------------------------------------------------------------------------

fn check_algorithm(algorithm: &str, source: &str) {
    let fx = Fx::new();
    fx.fit("model.cobuy", &["--algorithm", algorithm]);
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "recs.csv"]);
    let recs = fx.recs("recs.csv", false);
    let groups = rec_groups(&recs);
    assert_eq!(customers_of(&groups), fx.p.customers, "{algorithm}: every customer, in the model's order");

    let mut personal_rows = 0;
    for (c, rows) in &groups {
        // 80 items in the catalogue, at most a few dozen bought: 7 can always be filled.
        assert_eq!(rows.len(), 7, "{algorithm}: rows of customer {c}");
        let items: BTreeSet<&str> = rows.iter().map(|r| r.item.as_str()).collect();
        assert_eq!(items.len(), rows.len(), "{algorithm}: an item twice for {c}: {rows:?}");
        let personal = rows.iter().take_while(|r| r.source == source).count();
        personal_rows += personal;
        if source != "popular" {
            for r in &rows[personal..] {
                assert_eq!(r.source, "popular", "{algorithm}: after the personal part only fill, for {c}: {rows:?}");
                assert_eq!(r.score, 0.0, "{algorithm}: fill rows score 0, for {c}: {rows:?}");
            }
        }
        for r in &rows[..personal] {
            assert!(r.score > 0.0 && r.score.is_finite(), "{algorithm}: personal score of {c}: {r:?}");
        }
        for w in rows[..personal].windows(2) {
            assert!(w[0].score >= w[1].score, "{algorithm}: scores increase for {c}: {rows:?}");
        }
        for r in rows {
            let bought = fx.p.has_bought(c, &r.item);
            if algorithm == "buy-again" {
                if r.source == "buy-again" {
                    assert!(bought, "buy-again recommends {} to {c}, who never bought it", r.item);
                }
            } else {
                assert!(!bought, "{algorithm} recommends {} to {c}, who bought it", r.item);
            }
        }
    }
    assert!(personal_rows > recs.len() / 2, "{algorithm}: mostly personal rows expected, got {personal_rows}");

    if algorithm == "popularity" {
        // Score: the share of customers who bought the item.
        let all = fx.p.customers.len() as f32;
        for r in &recs {
            let want = fx.p.buyers_of(&r.item) as f32 / all;
            assert!((r.score - want).abs() < 1e-6, "popularity score of {r:?}: want {want}");
        }
    }
    if algorithm == "buy-again" {
        // Customers with net purchases get their own items first, up to 7.
        for (c, rows) in &groups {
            let own = fx.p.items_of(c).len().min(7);
            let personal = rows.iter().filter(|r| r.source == "buy-again").count();
            assert_eq!(personal, own, "buy-again rows of {c}");
        }
    }
}

#[test]
fn item_knn_recommends() {
    check_algorithm("item-knn", "item-knn");
}

#[test]
fn user_knn_recommends() {
    check_algorithm("user-knn", "user-knn");
}

#[test]
fn popularity_recommends() {
    check_algorithm("popularity", "popular");
}

#[test]
fn buy_again_recommends() {
    check_algorithm("buy-again", "buy-again");
}

// ---------------------------------------------------------------------------------------
// 2. Reasons (--explain)
// ---------------------------------------------------------------------------------------

/// Fits `algorithm`, writes recommendations with and without `--explain`, checks that the
/// reason column is the only difference and that popular rows give the right buyer count.
fn explained(fx: &Fx, algorithm: &str) -> Vec<Rec> {
    explained_with(fx, algorithm, &[])
}

/// [`explained`] with more fit flags.
fn explained_with(fx: &Fx, algorithm: &str, extra: &[&str]) -> Vec<Rec> {
    let mut args = vec!["--algorithm", algorithm];
    args.extend_from_slice(extra);
    fx.fit("model.cobuy", &args);
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "plain.csv"]);
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "explained.csv", "--explain"]);
    let plain = fx.recs("plain.csv", false);
    let recs = fx.recs("explained.csv", true);
    assert_eq!(plain.len(), recs.len(), "{algorithm}: --explain changes the number of rows");
    for (a, b) in plain.iter().zip(&recs) {
        assert_eq!(
            (&a.customer, a.rank, &a.item, a.score, &a.source),
            (&b.customer, b.rank, &b.item, b.score, &b.source),
            "{algorithm}: --explain changes a row"
        );
    }
    for r in recs.iter().filter(|r| r.source == "popular") {
        let want = format!("popular: bought by {} customers", fx.p.buyers_of(&r.item));
        assert_eq!(r.reason.as_deref(), Some(want.as_str()), "{algorithm}: reason of {r:?}");
    }
    recs
}

#[test]
fn explain_item_knn_names_the_customers_own_items() {
    let fx = Fx::new();
    let recs = explained(&fx, "item-knn");
    let mut checked = 0;
    for r in recs.iter().filter(|r| r.source == "item-knn") {
        let reason = r.reason.as_deref().unwrap_or_default();
        let list = reason
            .strip_prefix("also bought by customers who bought ")
            .unwrap_or_else(|| panic!("item-knn reason of {r:?}"));
        let items: Vec<&str> = list.split(", ").collect();
        assert!((1..=3).contains(&items.len()), "one to three items in {r:?}");
        assert_eq!(items.iter().collect::<BTreeSet<_>>().len(), items.len(), "an item twice in {r:?}");
        for i in items {
            assert!(fx.p.has_bought(&r.customer, i), "{r:?} names {i:?}, which {} did not buy", r.customer);
            assert_ne!(i, r.item, "{r:?} names the recommended item itself");
        }
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} item-knn rows");
}

/// `bought by N of the K most similar customers (A, B, C)` into (N, K, ids).
fn parse_user_reason(reason: &str) -> Option<(usize, usize, Vec<String>)> {
    let rest = reason.strip_prefix("bought by ")?;
    let (n, rest) = rest.split_once(" of the ")?;
    let (k, rest) = rest.split_once(" most similar customers (")?;
    let ids = rest.strip_suffix(')')?;
    Some((n.parse().ok()?, k.parse().ok()?, ids.split(", ").map(str::to_string).collect()))
}

/// The reasons of user-kNN against neighbours computed here: cosine over the BM25 weights
/// of the net counts, the 50 most similar customers by the documented tie rule.
#[test]
fn explain_user_knn_names_similar_customers_who_bought_the_item() {
    let fx = Fx::new();
    // BM25, not user-kNN's default (presence): presence ties so many similarities that
    // the oracle could decide few rankings. 50 neighbours, not the default 200, which here
    // takes nearly every customer who shares an item and leaves little to rank.
    let recs = explained_with(&fx, "user-knn", &["--weighting", "bm25", "--neighbors", "50"]);
    let w = fx.p.bm25();
    let sims = Purchases::cosines(&w);
    let index: HashMap<&str, usize> = fx.p.customers.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect();
    let twins = |a: usize, b: usize| w.row(a) == w.row(b);
    let (mut checked, mut undecidable) = (0, 0);
    for r in recs.iter().filter(|r| r.source == "user-knn") {
        let reason = r.reason.as_deref().unwrap_or_default();
        let (n, k, ids) = parse_user_reason(reason).unwrap_or_else(|| panic!("user-knn reason of {r:?}"));
        let c = index[r.customer.as_str()];
        let oracle = sims.row(c).to_vec();
        // Neighbours whose 50th place f32 rounding may give to either of two customers.
        let Some(mine) = top_k(&oracle, 50, TOL, twins) else {
            undecidable += 1;
            continue;
        };
        assert_eq!(k, mine.len(), "{r:?}: K is the number of neighbours");
        let who_bought: Vec<usize> =
            mine.iter().copied().filter(|&v| fx.p.has_bought(&fx.p.customers[v], &r.item)).collect();
        assert!(n >= 1, "{r:?}: scored by no neighbour");
        assert_eq!(n, who_bought.len(), "{r:?}: N is the number of neighbours who bought the item");
        // The three most similar of them, best first.
        let named: Vec<(usize, f64)> = ids.iter().map(|id| (index[id.as_str()], oracle[index[id.as_str()]])).collect();
        let candidates: Vec<f64> =
            (0..oracle.len()).map(|v| if who_bought.contains(&v) { oracle[v] } else { 0.0 }).collect();
        check_ranking(&named, &candidates, 3, TOL, twins).unwrap_or_else(|e| panic!("{r:?}: {e}"));
        assert!(!ids.contains(&r.customer), "{r:?}: the customer is their own neighbour");
        checked += 1;
    }
    assert!(checked > 1000 && undecidable < checked / 20, "{checked} user-knn rows checked, {undecidable} undecidable");
}

#[test]
fn explain_popularity_counts_buyers() {
    let fx = Fx::new();
    let recs = explained(&fx, "popularity");
    assert!(recs.iter().all(|r| r.source == "popular" && r.reason.is_some()));
}

/// Buy-again's reason says what its count counts: the net units of the quantity column, or
/// (without one, when each row counts 1) the purchase rows of the pair.
#[test]
fn explain_buy_again_gives_count_and_last_date() {
    let fx = Fx::new();
    let recs = explained(&fx, "buy-again");
    let units = |n: i64| if n == 1 { "1 unit".to_string() } else { format!("{n} units") };
    let mut checked = 0;
    for r in recs.iter().filter(|r| r.source == "buy-again") {
        let reason = r.reason.as_deref().unwrap_or_default();
        let key = (r.customer.clone(), r.item.clone());
        let want = format!("bought {} before, last on {}", units(fx.p.net[&key]), date_2023(fx.p.last[&key]));
        assert_eq!(reason, want, "reason of {r:?}");
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} buy-again rows");

    // Without --quantity-col every row is one purchase (returns included: nothing says so).
    fx.ok(&[
        "fit",
        "--purchases",
        "purchases.csv",
        "--model",
        "rows.cobuy",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--time-col",
        "time",
        "--algorithm",
        "buy-again",
    ]);
    fx.ok(&["recommend", "--model", "rows.cobuy", "--top", "7", "--out", "rows.csv", "--explain"]);
    let mut rows: HashMap<Pair, (i64, i64)> = HashMap::new();
    for line in &fx.p.lines {
        let f: Vec<&str> = line.split(',').collect();
        let e = rows.entry((f[0].to_string(), f[1].to_string())).or_insert((0, i64::MIN));
        *e = (e.0 + 1, e.1.max(seconds_2023(f[4])));
    }
    let mut checked = 0;
    for r in fx.recs("rows.csv", true).iter().filter(|r| r.source == "buy-again") {
        let (n, last) = rows[&(r.customer.clone(), r.item.clone())];
        let times = if n == 1 { "once".to_string() } else { format!("{n} times") };
        let want = format!("bought {times} before, last on {}", date_2023(last));
        assert_eq!(r.reason.as_deref(), Some(want.as_str()), "reason of {r:?}");
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} buy-again rows");
}

// ---------------------------------------------------------------------------------------
// 3. Shards
// ---------------------------------------------------------------------------------------

/// Runs `cmd` unsharded and as shards 1/3..3/3; the shards together hold exactly the
/// unsharded rows and no customer is in two shards.
fn check_shards(fx: &Fx, run: impl Fn(&str, &[&str]) -> Run) {
    assert_eq!(run("all.csv", &[]).code, 0);
    let all = fx.data_lines("all.csv");
    assert!(!all.is_empty());
    let mut union = Vec::new();
    let mut owner: HashMap<String, usize> = HashMap::new();
    for i in 1..=3 {
        let (shard, out) = (format!("{i}/3"), format!("shard{i}.csv"));
        let r = run(&out, &["--shard", &shard]);
        assert_eq!(r.code, 0, "--shard {shard}: {}", r.stderr);
        let header = fs::read_to_string(fx.path(&out)).expect("shard output");
        assert_eq!(header.lines().next(), fs::read_to_string(fx.path("all.csv")).unwrap().lines().next());
        let lines = fx.data_lines(&out);
        assert!(!lines.is_empty(), "shard {shard} is empty");
        let mut order: Vec<&str> = lines.iter().map(|l| l.split(',').next().unwrap_or_default()).collect();
        order.dedup();
        assert!(order.windows(2).all(|w| natural(w[0], w[1]).is_lt()), "shard {shard}: customers out of order");
        for l in &lines {
            let c = l.split(',').next().unwrap_or_default().to_string();
            let prev = owner.insert(c.clone(), i);
            assert!(prev.is_none() || prev == Some(i), "customer {c} in shards {prev:?} and {i}");
        }
        union.extend(lines);
    }
    assert_eq!(sorted(union), sorted(all), "the shards' rows differ from the unsharded rows");
}

#[test]
fn recommend_shards_partition_the_rows() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &["--algorithm", "user-knn"]);
    check_shards(&fx, |out, extra| {
        let mut args = vec!["--top", "5", "--explain"];
        args.extend_from_slice(extra);
        fx.recommend("model.cobuy", out, &args)
    });
}

#[test]
fn similar_customers_shards_partition_the_rows() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    check_shards(&fx, |out, extra| {
        let mut args = vec!["--top", "4"];
        args.extend_from_slice(extra);
        fx.similar("model.cobuy", out, &args)
    });
}

#[test]
fn bad_shards_are_usage_errors() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    for shard in ["0/3", "5/4", "1/0", "x", "1/"] {
        for cmd in ["recommend", "similar-customers"] {
            let out = format!("bad-{}.csv", shard.replace('/', "_"));
            let r = fx.run(&[cmd, "--model", "model.cobuy", "--out", &out, "--shard", shard]);
            assert_eq!(r.code, 2, "{cmd} --shard {shard}: {}", r.stderr);
            assert!(r.stderr.contains("--shard"), "{cmd} --shard {shard}: message {:?}", r.stderr);
            assert!(!fx.path(&out).exists(), "{cmd} --shard {shard} wrote {out}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 4. --customers FILE
// ---------------------------------------------------------------------------------------

#[test]
fn customers_file_with_only_unknown_ids_is_an_error() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    fx.write("nobody.txt", &id_file(&["nobody-1", "ghost", "99999999"]));
    let r = fx.recommend("model.cobuy", "recs.csv", &["--customers", "nobody.txt"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nobody.txt"), "the message names the file: {}", r.stderr);
    assert!(!fx.path("recs.csv").exists());
}

#[test]
fn customers_file_scores_the_known_ids_in_file_order() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "6", "--out", "all.csv"]);
    let all: HashMap<String, Vec<Rec>> = rec_groups(&fx.recs("all.csv", false)).into_iter().collect();

    let cs = &fx.p.customers;
    // Known ids out of the model's order, with unknown ones between them.
    let (a, b, c, d) = (&cs[200], &cs[3], &cs[cs.len() - 1], &cs[100]);
    fx.write("some.txt", &id_file(&[a, "nobody-1", b, c, "ghost-7", d]));
    let r = fx.recommend("model.cobuy", "some.csv", &["--top", "6", "--customers", "some.txt"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for unknown in ["nobody-1", "ghost-7"] {
        assert!(r.stderr.contains(unknown), "stderr does not name {unknown}:\n{}", r.stderr);
    }
    let groups = rec_groups(&fx.recs("some.csv", false));
    assert_eq!(customers_of(&groups), [a, b, c, d].map(String::clone), "customers in the file's order");
    for (cust, rows) in groups {
        let want: Vec<_> = all[&cust].iter().map(|r| (r.rank, r.item.clone(), r.score, r.source.clone())).collect();
        let got: Vec<_> = rows.iter().map(|r| (r.rank, r.item.clone(), r.score, r.source.clone())).collect();
        assert_eq!(got, want, "rows of {cust} differ from the full run");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Filters
// ---------------------------------------------------------------------------------------

#[test]
fn deny_list_items_never_appear() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    let popular = fx.p.most_bought();
    let denied: Vec<&str> = popular.iter().take(4).map(String::as_str).collect();
    fx.write("deny.txt", &id_file(&denied));
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "all.csv"]);
    let before = fx.recs("all.csv", false);
    assert!(before.iter().any(|r| denied.contains(&r.item.as_str())), "the denied items were recommended before");
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "recs.csv", "--deny", "deny.txt"]);
    let recs = fx.recs("recs.csv", false);
    for (c, rows) in rec_groups(&recs) {
        assert_eq!(rows.len(), 7, "rows of {c}");
        for r in rows {
            assert!(!denied.contains(&r.item.as_str()), "denied item recommended: {r:?}");
            assert!(!fx.p.has_bought(&c, &r.item), "bought item recommended: {r:?}");
        }
    }
}

#[test]
fn allow_list_restricts_the_catalogue() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    let popular = fx.p.most_bought();
    // A handful of items from the head, middle and tail of popularity, and one unknown id.
    let allowed: Vec<&str> = [1, 5, 12, 20, 33, 45].iter().map(|&k| popular[k].as_str()).collect();
    let mut file = allowed.clone();
    file.push("NO-SUCH-ITEM");
    fx.write("allow.txt", &id_file(&file));
    let r = fx.recommend("model.cobuy", "recs.csv", &["--top", "7", "--allow", "allow.txt"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("NO-SUCH-ITEM"), "the unknown item is named:\n{}", r.stderr);
    let recs = fx.recs("recs.csv", false);
    assert!(!recs.is_empty());
    for r in &recs {
        assert!(allowed.contains(&r.item.as_str()), "item outside the allow list: {r:?}");
        assert!(!fx.p.has_bought(&r.customer, &r.item), "bought item recommended: {r:?}");
    }
    // Everyone gets every allowed item they have no row of (there are fewer than 7): items
    // bought and items whose returns cancelled every purchase are both excluded.
    for (c, rows) in rec_groups(&recs) {
        let want = allowed.iter().filter(|i| !fx.p.net.contains_key(&(c.clone(), i.to_string()))).count();
        assert_eq!(rows.len(), want, "rows of {c}");
    }
}

#[test]
fn allow_list_without_a_known_item_is_an_error() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    fx.write("allow.txt", &id_file(&["NO-SUCH-ITEM", "NOR-THIS"]));
    let r = fx.recommend("model.cobuy", "recs.csv", &["--allow", "allow.txt"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("allow.txt"), "the message names the file: {}", r.stderr);
    assert!(!fx.path("recs.csv").exists());
}

#[test]
fn include_bought_recommends_bought_items() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "recs.csv", "--include-bought"]);
    let recs = fx.recs("recs.csv", false);
    let again = recs.iter().filter(|r| fx.p.has_bought(&r.customer, &r.item)).count();
    assert!(again > 0, "no bought item recommended with --include-bought");
    assert!(recs.iter().all(|r| r.source == "item-knn" || r.source == "popular"));
}

#[test]
fn repurchase_window_allows_only_old_purchases() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "recs.csv", "--repurchase-after-days", "30"]);
    let recs = fx.recs("recs.csv", false);
    let cutoff = fx.p.newest - 30 * 86_400;
    let mut again = 0;
    for r in &recs {
        if fx.p.has_bought(&r.customer, &r.item) {
            let last = fx.p.last[&(r.customer.clone(), r.item.clone())];
            assert!(
                last <= cutoff,
                "{r:?}: last bought {} (day {}), within 30 days of the newest purchase (day {})",
                date_2023(last),
                last / 86_400,
                fx.p.newest / 86_400
            );
            again += 1;
        }
    }
    assert!(again > 0, "no bought item came back after 30 days");
}

// ---------------------------------------------------------------------------------------
// 6. Usage errors
// ---------------------------------------------------------------------------------------

/// Asserts exit code 2 and that the error message contains every one of `want`.
fn assert_usage(r: &Run, what: &str, want: &[&str]) {
    assert_eq!(r.code, 2, "{what}: exit code; stderr:\n{}", r.stderr);
    for w in want {
        assert!(r.stderr.contains(w), "{what}: {w:?} not in the message:\n{}", r.stderr);
    }
}

#[test]
fn usage_errors_name_the_accepted_values() {
    let fx = Fx::new();
    let fit = |extra: &[&str]| {
        let mut args = vec!["fit", "--purchases", "purchases.csv", "--model", "bad.cobuy"];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(extra);
        let r = fx.run(&args);
        assert!(!fx.path("bad.cobuy").exists(), "fit {extra:?} wrote a model");
        r
    };
    assert_usage(
        &fit(&["--algorithm", "nope"]),
        "--algorithm nope",
        &["--algorithm", "nope", "item-knn, user-knn, popularity, buy-again"],
    );
    assert_usage(
        &fit(&["--similarity", "nope"]),
        "--similarity nope",
        &["--similarity", "nope", "cosine, jaccard, asymmetric-cosine, lift"],
    );
    assert_usage(&fit(&["--ties", "first"]), "--ties first", &["--ties", "first", "lowest-index, visit-order"]);
    assert_usage(&fit(&["--neighbors", "0"]), "--neighbors 0", &["neighbors", "between 1 and 100000"]);
    assert_usage(
        &fit(&["--alpha", "2", "--similarity", "asymmetric-cosine"]),
        "--alpha 2",
        &["alpha", "between 0 and 1"],
    );
    assert_usage(&fit(&["--shrinkage=-1"]), "--shrinkage=-1", &["shrinkage", ">= 0"]);

    fx.fit("model.cobuy", &[]);
    let r = fx.recommend("model.cobuy", "recs.csv", &["--top", "0"]);
    assert_usage(&r, "recommend --top 0", &["--top", "at least 1"]);
    let r = fx.similar("model.cobuy", "similar.csv", &["--top", "0"]);
    assert_usage(&r, "similar-customers --top 0", &["--top", "at least 1"]);
    let r = fx.similar("model.cobuy", "similar.csv", &["--similarity", "nope"]);
    assert_usage(&r, "similar-customers --similarity nope", &["cosine, jaccard, asymmetric-cosine, lift"]);
    let r = fx.similar("model.cobuy", "similar.csv", &["--shrinkage=-1"]);
    assert_usage(&r, "similar-customers --shrinkage=-1", &["shrinkage", ">= 0"]);
    assert!(!fx.path("recs.csv").exists() && !fx.path("similar.csv").exists());
}

#[test]
fn negative_shrinkage_as_a_separate_argument_names_the_range() {
    let fx = Fx::new();
    let mut args = vec!["fit", "--purchases", "purchases.csv", "--model", "bad.cobuy"];
    args.extend_from_slice(&COLUMNS);
    args.extend_from_slice(&["--shrinkage", "-1"]);
    assert_usage(&fx.run(&args), "fit --shrinkage -1", &["shrinkage", ">= 0"]);
    fx.fit("model.cobuy", &[]);
    let r = fx.similar("model.cobuy", "similar.csv", &["--shrinkage", "-1"]);
    assert_usage(&r, "similar-customers --shrinkage -1", &["shrinkage", ">= 0"]);
}

// ---------------------------------------------------------------------------------------
// 7. similar-customers
// ---------------------------------------------------------------------------------------

/// Items both customers have net purchases of.
fn shared_items(p: &Purchases, a: &str, b: &str) -> usize {
    p.items_of(a).intersection(&p.items_of(b)).count()
}

fn check_similar(fx: &Fx, rows: &[Nb], top: usize) -> Vec<(String, Vec<Nb>)> {
    let groups = by_customer(rows, |n| &n.customer, |n| n.rank);
    let order: Vec<String> = customers_of(&groups);
    assert!(order.windows(2).all(|w| natural(&w[0], &w[1]).is_lt()), "customers not in the model's order");
    let with_purchases = fx.p.customers.iter().filter(|c| !fx.p.items_of(c).is_empty()).count();
    assert_eq!(groups.len(), with_purchases, "every customer with purchases has neighbours");
    for (c, nbs) in &groups {
        assert!(nbs.len() <= top, "more than {top} neighbours for {c}");
        let distinct: BTreeSet<&str> = nbs.iter().map(|n| n.neighbour.as_str()).collect();
        assert_eq!(distinct.len(), nbs.len(), "a neighbour twice for {c}");
        for n in nbs {
            assert_ne!(&n.neighbour, c, "{c} is their own neighbour");
            assert!(n.sim > 0.0 && n.sim.is_finite(), "similarity of {n:?}");
            assert!(n.shared > 0, "no shared item: {n:?}");
            assert_eq!(n.shared, shared_items(&fx.p, c, &n.neighbour), "shared_items of {n:?}");
        }
        for w in nbs.windows(2) {
            assert!(w[0].sim >= w[1].sim, "similarity increases for {c}: {nbs:?}");
        }
    }
    groups
}

#[test]
fn similar_customers_cosine() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    fx.ok(&["similar-customers", "--model", "model.cobuy", "--top", "5", "--out", "similar.csv"]);
    let rows = fx.neighbours("similar.csv");
    let groups = check_similar(&fx, &rows, 5);
    assert!(groups.iter().filter(|g| g.1.len() == 5).count() > groups.len() / 2, "most customers have 5 neighbours");
    for n in &rows {
        assert!(n.sim <= 1.0 + 1e-5, "cosine above 1: {n:?}");
    }
}

#[test]
fn similar_customers_jaccard() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    let args = ["similar-customers", "--model", "model.cobuy", "--top", "5", "--out", "similar.csv"];
    fx.ok(&[&args[..], &["--similarity", "jaccard"]].concat());
    let rows = fx.neighbours("similar.csv");
    check_similar(&fx, &rows, 5);
    for n in &rows {
        let (na, nb) = (fx.p.items_of(&n.customer).len(), fx.p.items_of(&n.neighbour).len());
        let want = n.shared as f64 / (na + nb - n.shared) as f64;
        assert!((f64::from(n.sim) - want).abs() < 1e-5, "jaccard of {n:?}: want {want} ({na} and {nb} items)");
    }
}

// ---------------------------------------------------------------------------------------
// 8. Thread invariance
// ---------------------------------------------------------------------------------------

#[test]
fn user_knn_and_similar_customers_do_not_depend_on_threads() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &["--algorithm", "user-knn"]);
    for t in ["1", "4"] {
        let (recs, similar) = (format!("recs-{t}.csv"), format!("similar-{t}.csv"));
        fx.ok(&["--threads", t, "recommend", "--model", "model.cobuy", "--explain", "--top", "8", "--out", &recs]);
        fx.ok(&["--threads", t, "similar-customers", "--model", "model.cobuy", "--top", "8", "--out", &similar]);
    }
    assert!(fx.bytes("recs-1.csv") == fx.bytes("recs-4.csv"), "recommend: 1 and 4 threads differ");
    assert!(fx.bytes("similar-1.csv") == fx.bytes("similar-4.csv"), "similar-customers: 1 and 4 threads differ");
    assert!(fx.data_lines("recs-1.csv").len() > 1000);
}

// ---------------------------------------------------------------------------------------
// 9. Job files
// ---------------------------------------------------------------------------------------

#[test]
fn job_file_equals_fit_and_recommend_by_hand() {
    let fx = Fx::new();
    let popular = fx.p.most_bought();
    fs::create_dir(fx.path("job")).expect("job dir");
    fs::copy(fx.path("purchases.csv"), fx.path("job/purchases.csv")).expect("copy purchases");
    let deny = id_file(&[&popular[0], &popular[3]]);
    fx.write("job/deny.txt", &deny);
    fx.write("deny.txt", &deny);
    fx.write(
        "job/job.toml",
        r#"
threads = 2
summary = "out/summary.json"

[input]
purchases = "purchases.csv"
customer_col = "customer"
item_col = "item"
quantity_col = "quantity"
price_col = "price"
time_col = "time"

[fit]
model = "out/model.cobuy"
algorithm = "user-knn"
neighbors = 20
similarity = "jaccard"
shrinkage = 2.0
min_shared = 2

[recommend]
out = "out/recs.csv"
top = 6
explain = true
shard = "2/3"
repurchase_after_days = 30
deny = "deny.txt"
"#,
    );
    // Run from the scratch folder: the job's relative paths are relative to job/.
    fx.ok(&["run", "job/job.toml"]);

    fx.fit(
        "model.cobuy",
        &[
            "--algorithm",
            "user-knn",
            "--neighbors",
            "20",
            "--similarity",
            "jaccard",
            "--shrinkage",
            "2",
            "--min-shared",
            "2",
        ],
    );
    fx.ok(&[
        "--threads",
        "2",
        "recommend",
        "--model",
        "model.cobuy",
        "--out",
        "recs.csv",
        "--top",
        "6",
        "--explain",
        "--shard",
        "2/3",
        "--repurchase-after-days",
        "30",
        "--deny",
        "deny.txt",
    ]);
    let job = fx.bytes("job/out/recs.csv");
    assert!(job == fx.bytes("recs.csv"), "the job's recommendations differ from fit + recommend by hand");

    // Each of the less obvious settings changes the output, so the equality above shows
    // the job applied it: min_shared (fit) and repurchase_after_days (recommend).
    fx.fit(
        "loose.cobuy",
        &["--algorithm", "user-knn", "--neighbors", "20", "--similarity", "jaccard", "--shrinkage", "2"],
    );
    let rec = ["recommend", "--out", "other.csv", "--top", "6", "--explain", "--shard", "2/3", "--deny", "deny.txt"];
    fx.ok(&[&rec[..], &["--model", "loose.cobuy", "--repurchase-after-days", "30"]].concat());
    assert!(fx.bytes("other.csv") != job, "min_shared = 2 makes no difference; the comparison proves nothing");
    fx.ok(&[&rec[..], &["--model", "model.cobuy"]].concat());
    assert!(fx.bytes("other.csv") != job, "the repurchase window makes no difference; the comparison proves nothing");

    // The job really used its settings.
    let recs = fx.recs("recs.csv", true);
    assert!(recs.iter().any(|r| r.source == "user-knn"));
    for r in &recs {
        assert!(r.item != popular[0] && r.item != popular[3], "denied item: {r:?}");
        let reason = r.reason.as_deref().unwrap_or_default();
        if r.source == "user-knn" {
            let (_, k, _) = parse_user_reason(reason).unwrap_or_else(|| panic!("user-knn reason of {r:?}"));
            assert!(k <= 20, "more than 20 neighbours: {r:?}");
        }
    }
    let shards: BTreeSet<&str> = recs.iter().map(|r| r.customer.as_str()).collect();
    assert!(shards.len() < fx.p.customers.len() / 2, "the shard was not applied");
    let summary: serde_json::Value =
        serde_json::from_slice(&fx.bytes("job/out/summary.json")).expect("the summary is JSON");
    assert_eq!(summary["params"]["algorithm"], "user-knn", "summary: {summary}");
    assert_eq!(summary["batch"]["rows"], recs.len() as u64, "summary: {summary}");
}

#[test]
fn rough_edges_behave() {
    let fx = Fx::new();
    fx.fit("model.cobuy", &[]);
    // A deny list naming no item of the model denies nothing: a warning, not an error.
    fx.write("deny.txt", "NOT-AN-ITEM\n");
    let r = fx.recommend("model.cobuy", "a.csv", &["--top", "5", "--deny", "deny.txt"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("NOT-AN-ITEM"), "{}", r.stderr);
    assert_eq!(fx.bytes("a.csv"), {
        fx.ok(&["recommend", "--model", "model.cobuy", "--top", "5", "--out", "b.csv"]);
        fx.bytes("b.csv")
    });
    // --include-bought wins over a repurchase window: bought items may come back at once.
    let r =
        fx.recommend("model.cobuy", "e.csv", &["--top", "80", "--include-bought", "--repurchase-after-days", "100000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let recs = fx.recs("e.csv", false);
    assert!(recs.iter().any(|r| fx.p.has_bought(&r.customer, &r.item)), "no bought item came back");
}

/// An absurd `--top` is capped by what there is, not an allocation failure: every customer
/// gets every item anyone bought and they have no row of (their top 7 first, as with
/// `--top 7`), and every customer with purchases gets every other customer sharing an
/// item, by the cosine of their BM25 weights computed here.
#[test]
fn an_absurd_top_lists_everything_there_is() {
    const HUGE: &str = "1000000000000";
    let fx = Fx::new();
    fx.fit("model.cobuy", &["--algorithm", "item-knn"]);
    fx.ok(&["recommend", "--model", "model.cobuy", "--top", "7", "--out", "seven.csv"]);
    let r = fx.recommend("model.cobuy", "all.csv", &["--top", HUGE]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let seven: HashMap<String, Vec<Rec>> = rec_groups(&fx.recs("seven.csv", false)).into_iter().collect();
    let groups = rec_groups(&fx.recs("all.csv", false));
    assert_eq!(customers_of(&groups), fx.p.customers);
    for (c, rows) in &groups {
        let want: BTreeSet<&String> =
            fx.p.buyers.keys().filter(|i| !fx.p.net.contains_key(&(c.clone(), (*i).clone()))).collect();
        let got: BTreeSet<&String> = rows.iter().map(|r| &r.item).collect();
        assert_eq!((got.len(), &got), (rows.len(), &want), "items of {c}");
        let head: Vec<_> = rows.iter().take(7).map(|r| (&r.item, r.score, &r.source)).collect();
        let top: Vec<_> = seven[c].iter().map(|r| (&r.item, r.score, &r.source)).collect();
        assert_eq!(head, top, "the first 7 of {c}");
    }

    let w = fx.p.bm25();
    let sims = Purchases::cosines(&w);
    let index: HashMap<&str, usize> = fx.p.customers.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect();
    let r = fx.similar("model.cobuy", "similar.csv", &["--top", HUGE]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (c, nbs) in check_similar(&fx, &fx.neighbours("similar.csv"), usize::MAX) {
        let got: Vec<(usize, f64)> = nbs.iter().map(|n| (index[n.neighbour.as_str()], f64::from(n.sim))).collect();
        let oracle = sims.row(index[c.as_str()]).to_vec();
        check_ranking(&got, &oracle, usize::MAX, TOL, |a, b| w.row(a) == w.row(b))
            .unwrap_or_else(|e| panic!("neighbours of {c}: {e}"));
    }
}
