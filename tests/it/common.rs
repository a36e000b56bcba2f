//! Shared by the integration tests: a deterministic purchases generator and a runner for
//! the `cobuy` binary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

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
