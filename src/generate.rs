//! Seeded synthetic purchase logs, for scale benchmarks and tests.
//!
//! Items have Zipf popularity (exponent `zipf_s`) and belong to taste clusters; customers
//! have lognormal activity (`activity_sigma`) and one to three favourite clusters, so the
//! data has the co-purchase structure neighbourhood methods feed on. Purchases come in
//! baskets (a customer, a time, one to a dozen lines) with a quantity and the item's price.
//!
//! Same parameters, same bytes: every customer draws from its own generator seeded by
//! `(seed, customer)`, and customers are written in order, whatever the thread count.

use std::io::{self, Write};

use rayon::prelude::*;

/// SplitMix64: tiny, fast, good enough for synthetic data, and fully specified.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `stream` under `seed` (independent streams for different values).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

/// What to generate. Check with [`GenerateParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Customers (those drawing no purchase do not appear).
    pub customers: u64,
    /// Items in the catalogue.
    pub items: u64,
    /// Purchase rows, exactly.
    pub purchases: u64,
    /// Random seed.
    pub seed: u64,
    /// Zipf exponent of item popularity.
    pub zipf_s: f64,
    /// Standard deviation of log customer activity.
    pub activity_sigma: f64,
    /// Start of the purchase window (unix seconds) and its length in days.
    pub start: i64,
    /// Length of the purchase window in days.
    pub days: u32,
}

impl GenerateParams {
    /// Defaults: Zipf 0.8, lognormal sigma 1, the year 2023.
    pub fn new(customers: u64, items: u64, purchases: u64, seed: u64) -> Self {
        GenerateParams {
            customers,
            items,
            purchases,
            seed,
            zipf_s: 0.8,
            activity_sigma: 1.0,
            start: 1_672_531_200,
            days: 365,
        }
    }

    /// Checks ranges; the message names the parameter.
    pub fn check(&self) -> Result<(), String> {
        if self.customers == 0 || self.customers > u64::from(u32::MAX) {
            return Err(format!("customers must be between 1 and {}, got {}", u32::MAX, self.customers));
        }
        if self.items == 0 || self.items > u64::from(u32::MAX) {
            return Err(format!("items must be between 1 and {}, got {}", u32::MAX, self.items));
        }
        if self.purchases == 0 {
            return Err("purchases must be at least 1".into());
        }
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !ok(self.zipf_s) || !ok(self.activity_sigma) {
            return Err("the Zipf exponent and the activity sigma must be finite and not negative".into());
        }
        if self.days == 0 {
            return Err("the window must be at least one day".into());
        }
        Ok(())
    }
}

/// Taste clusters: items `c, c + k, c + 2k, ...` form cluster `c`, so every cluster mixes
/// popular and rare items.
fn clusters(items: u64) -> u64 {
    (items / 100).clamp(1, 1000)
}

/// Inverse-CDF sampler over ranks `0..n` with weight `1 / (rank + 1)^s`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|r| {
                acc += (r as f64).powf(-s);
                acc
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= acc);
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        (self.cdf.partition_point(|&c| c < u) as u64).min(self.cdf.len() as u64 - 1)
    }
}

/// Rows per customer: proportional to lognormal activity, rounded by largest remainder
/// so that the total is exactly `purchases`. In u64: one customer may have more than
/// `u32::MAX` rows.
fn rows_per_customer(p: &GenerateParams) -> Vec<u64> {
    let mut rng = Rng::new(p.seed, u64::MAX);
    let w: Vec<f64> = (0..p.customers).map(|_| (p.activity_sigma * rng.normal()).exp()).collect();
    let total: f64 = w.iter().sum();
    let exact: Vec<f64> = w.iter().map(|x| x / total * p.purchases as f64).collect();
    let mut rows: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let given: u64 = rows.iter().sum();
    let mut order: Vec<u32> = (0..p.customers as u32).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (exact[a as usize].fract(), exact[b as usize].fract());
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &c in order.iter().cycle().take(p.purchases.saturating_sub(given) as usize) {
        rows[c as usize] += 1;
    }
    rows
}

/// Customers per parallel block (bounds memory: one block of text at a time).
const BLOCK: usize = 8192;

/// Writes the header `customer_id,item_id,basket_id,quantity,price,timestamp` and exactly
/// `purchases` rows. Returns the number of rows written.
pub fn generate(p: &GenerateParams, out: &mut impl Write) -> io::Result<u64> {
    p.check().map_err(io::Error::other)?;
    let rows = rows_per_customer(p);
    let zipf = Zipf::new(p.items, p.zipf_s);
    let k = clusters(p.items);
    let per_cluster = p.items.div_ceil(k);
    let cluster_zipf = Zipf::new(per_cluster, p.zipf_s);
    let price = |item: u64| {
        let mut r = Rng::new(p.seed ^ 0x5052_4943, item);
        (2.0 + 0.8 * r.normal()).exp().clamp(0.1, 5000.0)
    };
    out.write_all(b"customer_id,item_id,basket_id,quantity,price,timestamp\n")?;
    let mut written = 0u64;
    for (b, block) in rows.chunks(BLOCK).enumerate() {
        let texts: Vec<Vec<u8>> = block
            .par_iter()
            .enumerate()
            .map(|(i, &n)| {
                let c = (b * BLOCK + i) as u64;
                let mut rng = Rng::new(p.seed, c);
                let favourites: Vec<u64> = (0..1 + rng.below(3)).map(|_| rng.below(k)).collect();
                let mut text = Vec::with_capacity(n.min(1 << 16) as usize * 48);
                let mut left = n;
                let mut basket = 0u64;
                while left > 0 {
                    let size = (1 + rng.below(12)).min(left);
                    let t = p.start + rng.below(u64::from(p.days) * 86_400) as i64;
                    let stamp = crate::time::format(t);
                    for _ in 0..size {
                        let item = if rng.unit() < 0.5 {
                            zipf.sample(&mut rng)
                        } else {
                            let cl = favourites[rng.below(favourites.len() as u64) as usize];
                            (cl + k * cluster_zipf.sample(&mut rng)).min(p.items - 1)
                        };
                        let q = 1 + rng.below(3) * rng.below(2);
                        let _ = writeln!(text, "c{c},i{item},c{c}-b{basket},{q},{:.2},{stamp}", price(item));
                    }
                    left -= size;
                    basket += 1;
                }
                text
            })
            .collect();
        for t in texts {
            out.write_all(&t)?;
        }
        written += block.iter().sum::<u64>();
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_row_count_and_same_bytes_for_the_same_seed() {
        let p = GenerateParams::new(500, 300, 7_777, 9);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert_eq!(generate(&p, &mut a).unwrap(), 7_777);
        generate(&p, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|&&c| c == b'\n').count(), 7_778);
        let mut c = Vec::new();
        generate(&GenerateParams { seed: 10, ..p }, &mut c).unwrap();
        assert_ne!(a, c);
    }

    /// Past `u32::MAX` rows for one customer the counts neither cap nor wrap (only the
    /// counts are computed here, not the rows).
    #[test]
    fn rows_per_customer_add_up_past_u32() {
        for (customers, purchases) in [(1, u64::from(u32::MAX) + 6), (3, 3 * (1 << 32) + 7)] {
            let rows = rows_per_customer(&GenerateParams::new(customers, 10, purchases, 4));
            assert_eq!(rows.iter().sum::<u64>(), purchases, "{customers} customers");
            assert!(rows.iter().any(|&r| r > u64::from(u32::MAX)), "{rows:?}");
        }
    }

    #[test]
    fn popularity_is_skewed() {
        let p = GenerateParams::new(2_000, 1_000, 50_000, 1);
        let mut out = Vec::new();
        generate(&p, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let top = text.lines().skip(1).filter(|l| l.split(',').nth(1) == Some("i0")).count();
        let tail = text.lines().skip(1).filter(|l| l.split(',').nth(1) == Some("i999")).count();
        assert!(top > 20 * tail.max(1), "i0 {top} vs i999 {tail}");
    }

    #[test]
    fn rejects_out_of_range_parameters() {
        assert!(GenerateParams::new(0, 1, 1, 0).check().is_err());
        assert!(GenerateParams::new(1, 0, 1, 0).check().is_err());
        assert!(GenerateParams::new(1, 1, 0, 0).check().is_err());
        assert!(GenerateParams { zipf_s: f64::NAN, ..GenerateParams::new(1, 1, 1, 0) }.check().is_err());
    }
}
