//! Shared by the integration tests: a deterministic purchases generator and a runner for
//! the `cobuy` binary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use cobuy::matrix::Scheme;
use ndarray::{Array1, Array2, ArrayView1};

// ---------------------------------------------------------------------------------------
// Test data: a deterministic pseudo-random purchases file.
// ---------------------------------------------------------------------------------------

/// A 64-bit LCG (Knuth's MMIX constants); the high bits are used.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        f64::from(self.next_u32()) / 4_294_967_296.0
    }

    /// Zipf-ish rank in `0..n`: low ranks are much more likely.
    pub fn skewed(&mut self, n: u32) -> u32 {
        ((self.unit().powi(3) * f64::from(n)) as u32).min(n - 1)
    }
}

const CUSTOMERS: u32 = 300;
const ITEMS: u32 = 80;
const ROWS: usize = 3000;
const GROUPS: u32 = 5;

pub fn customer_id(c: u32) -> String {
    if c % 4 == 0 { format!("cust-{c:03}") } else { (12_000 + 3 * c).to_string() }
}

pub fn item_id(i: u32) -> String {
    if i % 3 == 0 { (20_000 + 7 * i).to_string() } else { format!("SKU-{i:03}") }
}

pub fn price(i: u32) -> String {
    let cents = (i * 373) % 2000 + 99;
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The header and `ROWS` data lines (each without its newline). Customers have a taste
/// group; items are drawn mostly from that group with Zipf-ish popularity, so item
/// neighbours are non-trivial. About 6% of the rows are returns.
pub fn purchase_lines(seed: u64) -> (String, Vec<String>) {
    let mut rng = Lcg(seed);
    let per_group = ITEMS / GROUPS;
    let mut bought: Vec<(u32, u32, i64)> = Vec::new();
    let mut lines = Vec::with_capacity(ROWS);
    while lines.len() < ROWS {
        let (c, i, q) = if !bought.is_empty() && rng.below(100) < 5 {
            // A return of an earlier purchase, in part or in full.
            let (c, i, q) = bought[rng.below(bought.len() as u32) as usize];
            (c, i, -(1 + i64::from(rng.below(q as u32))))
        } else if rng.below(100) < 1 {
            // A return of something never bought here.
            (rng.below(CUSTOMERS), rng.below(ITEMS), -1)
        } else {
            let c = rng.skewed(CUSTOMERS * 3) % CUSTOMERS;
            let group = (c * 7 + 3) % GROUPS;
            let i = if rng.below(10) < 7 {
                group * per_group + rng.skewed(per_group)
            } else {
                (rng.skewed(ITEMS) + 11 * group) % ITEMS
            };
            let q = 1 + i64::from(rng.below(4));
            bought.push((c, i, q));
            (c, i, q)
        };
        let time = format!(
            "2023-{:02}-{:02} {:02}:{:02}:{:02}",
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        );
        lines.push(format!("{},{},{q},{},{time}", customer_id(c), item_id(i), price(i)));
    }
    ("customer,item,quantity,price,time".to_string(), lines)
}

pub const SEED: u64 = 0x5eed_c0b0;

pub fn write_lines(path: &Path, header: &str, lines: &[String]) {
    let mut text = String::with_capacity(lines.len() * 48);
    writeln!(text, "{header}").unwrap();
    for l in lines {
        writeln!(text, "{l}").unwrap();
    }
    fs::write(path, text).unwrap();
}

/// The column flags of the generated purchases file.
pub const COLUMNS: [&str; 10] = [
    "--customer-col",
    "customer",
    "--item-col",
    "item",
    "--quantity-col",
    "quantity",
    "--price-col",
    "price",
    "--time-col",
    "time",
];

/// Runs `cobuy` in `dir` with `args`; does not check the exit status.
pub fn run_cobuy(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cobuy")).current_dir(dir).args(args).output().expect("cobuy runs")
}

/// The `rows: N read = ...` log line parsed into N and its buckets.
pub fn rows_summary(stderr: &str) -> (u64, BTreeMap<String, u64>) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("cobuy: rows: "))
        .unwrap_or_else(|| panic!("no `cobuy: rows:` line in stderr:\n{stderr}"));
    let (n, parts) = line.split_once(" read = ").unwrap_or_else(|| panic!("malformed rows line {line:?}"));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("malformed row count in {line:?}"));
    let mut buckets = BTreeMap::new();
    for part in parts.split(", ") {
        let (k, what) = part.split_once(' ').unwrap_or_else(|| panic!("malformed part {part:?} in {line:?}"));
        let k: u64 = k.parse().unwrap_or_else(|_| panic!("malformed count {part:?} in {line:?}"));
        assert!(buckets.insert(what.to_string(), k).is_none(), "bucket {what:?} twice in {line:?}");
    }
    (n, buckets)
}

// ---------------------------------------------------------------------------------------
// Oracles: ids, weights, similarities and rankings from their documented definitions,
// computed in f64 on dense matrices, never through the library.
// ---------------------------------------------------------------------------------------

/// Natural id order (the rule `cobuy::ids` documents): all-digit ids first, shorter first,
/// then bytewise; then every other id bytewise.
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (digits(a), digits(b)) {
        (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

/// What the weighting schemes know of the corpus (`cobuy::matrix::Scheme`'s docs):
/// customers with purchases N, buyers per item df, and those customers' mean total count.
pub struct Corpus {
    pub customers: f64,
    pub df: Vec<f64>,
    pub avg_len: f64,
}

impl Corpus {
    /// Of a dense customers x items matrix of net counts (0: not bought).
    pub fn of(counts: &Array2<f64>) -> Self {
        let lens: Vec<f64> = counts.rows().into_iter().map(|r| r.sum()).filter(|&l| l > 0.0).collect();
        let df = counts.columns().into_iter().map(|c| c.iter().filter(|&&x| x > 0.0).count() as f64).collect();
        let customers = lens.len() as f64;
        Corpus { customers, df, avg_len: lens.iter().sum::<f64>() / customers.max(1.0) }
    }

    /// One customer's weights from their net counts (a row over the items, 0: not bought),
    /// by the scheme's documented formula.
    pub fn weigh(&self, scheme: Scheme, counts: ArrayView1<f64>) -> Array1<f64> {
        let (n, len) = (self.customers, counts.sum());
        Array1::from_iter(counts.iter().enumerate().map(|(j, &c)| {
            let df = self.df.get(j).copied().unwrap_or(0.0);
            match scheme {
                _ if c <= 0.0 => 0.0,
                Scheme::Binary => 1.0,
                Scheme::Count => c,
                Scheme::Log => (1.0 + c).ln(),
                Scheme::TfIdf => c.sqrt() * (1.0 + (n / df.max(1.0)).ln()),
                Scheme::Bm25 { k1, b } => {
                    let (k1, b) = (f64::from(k1), f64::from(b));
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    idf * c * (k1 + 1.0) / (c + k1 * (1.0 - b + b * len / self.avg_len))
                }
            }
        }))
    }

    /// Every customer's weights.
    pub fn weigh_all(&self, scheme: Scheme, counts: &Array2<f64>) -> Array2<f64> {
        let mut w = Array2::zeros(counts.dim());
        for (r, row) in counts.rows().into_iter().enumerate() {
            w.row_mut(r).assign(&self.weigh(scheme, row));
        }
        w
    }
}

/// Time decay's documented factor: a purchase `age_days` old counts `0.5^(age / half-life)`.
pub fn decay(age_days: f64, half_life_days: f64) -> f64 {
    0.5f64.powf(age_days.max(0.0) / half_life_days)
}

/// Whether two values agree to a relative `tol` (f32 storage and sums against f64).
pub fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Checks a ranked list against the definition. `got`: (index, value) in the code's order;
/// `oracle[j]`: candidate j's value by the definition (0 or less: not a candidate); at
/// most `k` kept. Kept values must match the oracle; the order is by value descending, then
/// index ascending (the documented tie rule), except that values within `tol` of each
/// other may come either way (f32 and f64 round differently), unless `twins(a, b)`: their
/// inputs are identical, so their values are equal bit for bit in any arithmetic and the
/// lower index must come first (and be kept first).
pub fn check_ranking(
    got: &[(usize, f64)],
    oracle: &[f64],
    k: usize,
    tol: f64,
    twins: impl Fn(usize, usize) -> bool,
) -> Result<(), String> {
    let candidates = oracle.iter().filter(|&&v| v > 0.0).count();
    if got.len() != k.min(candidates) {
        return Err(format!(
            "{} kept; want {} ({candidates} candidates, k {k}): {got:?}",
            got.len(),
            k.min(candidates)
        ));
    }
    let mut kept = vec![false; oracle.len()];
    for &(j, v) in got {
        if j >= oracle.len() || std::mem::replace(&mut kept[j], true) {
            return Err(format!("{j} out of range or kept twice: {got:?}"));
        }
        if !(oracle[j] > 0.0 && near(v, oracle[j], tol)) {
            return Err(format!("{j}: value {v}, by the definition {}", oracle[j]));
        }
    }
    // Whether `a` must come (and be kept) before `b`.
    let before =
        |a: usize, b: usize| (oracle[a] > oracle[b] && !near(oracle[a], oracle[b], tol)) || (a < b && twins(a, b));
    for (p, &(x, _)) in got.iter().enumerate() {
        if let Some(&(y, _)) = got[p + 1..].iter().find(|&&(y, _)| before(y, x)) {
            return Err(format!("{y} ({}) ranked after {x} ({}): {got:?}", oracle[y], oracle[x]));
        }
    }
    for y in (0..oracle.len()).filter(|&y| oracle[y] > 0.0 && !kept[y]) {
        if let Some(&(x, _)) = got.iter().find(|&&(x, _)| before(y, x)) {
            return Err(format!("{y} ({}) left out, {x} ({}) kept: {got:?}", oracle[y], oracle[x]));
        }
    }
    Ok(())
}

/// The definition's own top `k` (values above 0, by value descending, then index
/// ascending), or `None` when the cut at `k` separates near-equal values (within `tol`)
/// that are not twins: f32 rounding may then keep either, and what depends on the
/// choice cannot be predicted.
pub fn top_k(oracle: &[f64], k: usize, tol: f64, twins: impl Fn(usize, usize) -> bool) -> Option<Vec<usize>> {
    let mut c: Vec<usize> = (0..oracle.len()).filter(|&j| oracle[j] > 0.0).collect();
    c.sort_by(|&a, &b| oracle[b].total_cmp(&oracle[a]).then(a.cmp(&b)));
    if c.len() > k {
        let (kept, out) = c.split_at(k);
        if kept.iter().any(|&x| out.iter().any(|&y| near(oracle[x], oracle[y], tol) && !twins(x, y))) {
            return None;
        }
        c.truncate(k);
    }
    Some(c)
}

/// `YYYY-MM-DD` of days since 1970-01-01 (Howard Hinnant's civil_from_days), written
/// independently of `cobuy::time`.
pub fn civil(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
