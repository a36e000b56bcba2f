//! A purchase log in, each row marked training or test out.
//!
//! Three ways, as the literature on honest offline evaluation asks: a global time cutoff
//! (nothing from the future leaks into training), each customer's last basket, and a
//! seeded random share of each customer's items. A validation split is the same method
//! applied again to the training part, so parameters are tuned without ever seeing the
//! test rows. Every rule depends only on the rows' values and ids, never on their order
//! in the file.

use serde::{Deserialize, Serialize};

use crate::ingest::{LogRow, PurchaseLog};

/// How a log is split into training and test rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum SplitMethod {
    /// Rows at or after the cutoff are test. The validation split ends where the test
    /// part starts and is as long as the test part.
    Time {
        /// Where the test part starts.
        cutoff: Cutoff,
    },
    /// Each customer's last basket is test: the basket with the latest purchase (ties: the
    /// basket id last in natural order), or, without a basket column, every row at the
    /// customer's latest purchase time. Customers with one basket stay in training.
    LastBasket,
    /// A seeded share of each customer's items is test (all rows of a held-out
    /// customer-item pair), decided by a hash of the seed and the two ids.
    Random {
        /// The share of pairs held out, between 0 and 1 (exclusive).
        fraction: f64,
        /// Any number: the same seed holds out the same pairs.
        seed: u64,
    },
}

/// Where a time split's test part starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cutoff {
    /// At this time (unix seconds).
    At(i64),
    /// So that this share of the timed rows (0 to 1, exclusive) falls at or after it.
    LastShare(f64),
}

/// Why a log cannot be split as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// The method needs a column the file does not have.
    #[error("the {method} split needs {needs}; give it with {flag}")]
    MissingColumn {
        /// The method.
        method: &'static str,
        /// What it needs.
        needs: &'static str,
        /// The flag that gives it.
        flag: &'static str,
    },
    /// A parameter is out of range.
    #[error("{0}")]
    Param(String),
    /// The cutoff leaves one part empty.
    #[error("the cutoff {cutoff} is {side} the purchases ({first} to {last}): one part would be empty")]
    CutoffOutside {
        /// The cutoff, formatted.
        cutoff: String,
        /// "before" or "after".
        side: &'static str,
        /// First purchase time, formatted.
        first: String,
        /// Last purchase time, formatted.
        last: String,
    },
}

impl SplitMethod {
    /// The method's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            SplitMethod::Time { .. } => "time",
            SplitMethod::LastBasket => "last-basket",
            SplitMethod::Random { .. } => "random",
        }
    }

    /// Checks parameter ranges.
    pub fn check(&self) -> Result<(), SplitError> {
        let share = |x: f64, what: &str| {
            if x > 0.0 && x < 1.0 {
                Ok(())
            } else {
                Err(SplitError::Param(format!("{what} must be between 0 and 1 (exclusive), got {x}")))
            }
        };
        match *self {
            SplitMethod::Time { cutoff: Cutoff::LastShare(f) } => share(f, "the test share of a time split"),
            SplitMethod::Random { fraction, .. } => share(fraction, "the test fraction of a random split"),
            _ => Ok(()),
        }
    }

    /// Marks the rows `among` selects (all rows when `None`): `true` for test. Rows not
    /// selected are `false` and play no part.
    pub fn test_rows(&self, log: &PurchaseLog, among: Option<&[bool]>) -> Result<Vec<bool>, SplitError> {
        self.check()?;
        let selected = |k: usize| among.is_none_or(|m| m[k]);
        let rows = &log.rows;
        match *self {
            SplitMethod::Time { cutoff } => {
                let at = self.cutoff_time(log, cutoff, among)?;
                Ok(rows.iter().enumerate().map(|(k, r)| selected(k) && r.time.is_some_and(|t| t >= at)).collect())
            }
            SplitMethod::LastBasket => {
                if log.baskets.is_none() && rows.iter().all(|r| r.time.is_none()) {
                    return Err(SplitError::MissingColumn {
                        method: "last-basket",
                        needs: "a basket or a time column",
                        flag: "--basket-col or --time-col",
                    });
                }
                // Per customer, the latest (time, basket) key among purchases.
                let key = |r: &LogRow| (r.time.unwrap_or(i64::MIN), r.basket.map_or(-1, i64::from));
                let mut last: Vec<Option<(i64, i64)>> = vec![None; log.customers.len()];
                let mut baskets: Vec<Option<(i64, i64)>> = vec![None; log.customers.len()];
                let mut several = vec![false; log.customers.len()];
                // The latest time of each basket: a basket's rows may carry different times.
                let basket_time = basket_times(log);
                let basket_key = |r: &LogRow| match (r.basket, &basket_time) {
                    (Some(b), Some(t)) => (t[b as usize], i64::from(b)),
                    _ => key(r),
                };
                for (k, r) in rows.iter().enumerate() {
                    if !selected(k) || r.quantity <= 0.0 {
                        continue;
                    }
                    let c = r.customer.get();
                    let bk = basket_key(r);
                    match baskets[c] {
                        Some(prev) if prev != bk => several[c] = true,
                        _ => {}
                    }
                    baskets[c] = Some(bk);
                    last[c] = last[c].max(Some(bk));
                }
                Ok(rows
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        let c = r.customer.get();
                        selected(k) && several[c] && last[c] == Some(basket_key(r))
                    })
                    .collect())
            }
            SplitMethod::Random { fraction, seed } => {
                let threshold = (fraction * u64::MAX as f64) as u64;
                Ok(rows
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        let h = pair_hash(seed, log.customers.id(r.customer.0), log.items.id(r.item.0));
                        selected(k) && h < threshold
                    })
                    .collect())
            }
        }
    }

    /// The validation split: the same method over the training rows of `test` (rows
    /// marked `false`). Returns the validation test rows; the validation training rows
    /// are those neither in `test` nor in the result.
    pub fn validation_rows(&self, log: &PurchaseLog, test: &[bool]) -> Result<Vec<bool>, SplitError> {
        let train: Vec<bool> = test.iter().map(|&t| !t).collect();
        let method = match *self {
            // The window of the same length just before the test part.
            SplitMethod::Time { cutoff } => {
                let at = self.cutoff_time(log, cutoff, None)?;
                let last = log.time_range().map_or(at, |r| r.1);
                SplitMethod::Time { cutoff: Cutoff::At(at - (last - at).max(1)) }
            }
            // A different seed: the held-out pairs of the two splits are independent draws.
            SplitMethod::Random { fraction, seed } => {
                SplitMethod::Random { fraction, seed: seed ^ 0x9e37_79b9_7f4a_7c15 }
            }
            m => m,
        };
        method.test_rows(log, Some(&train))
    }

    /// Where a time split's test part starts in `log` (a share resolved to its time);
    /// `None` for the other splits, or when the cutoff falls outside the log.
    pub fn test_from(&self, log: &PurchaseLog) -> Option<i64> {
        match *self {
            SplitMethod::Time { cutoff } => self.cutoff_time(log, cutoff, None).ok(),
            _ => None,
        }
    }

    /// Where a time split's test part starts among the rows `among` marks.
    pub(crate) fn cutoff_time(
        &self,
        log: &PurchaseLog,
        cutoff: Cutoff,
        among: Option<&[bool]>,
    ) -> Result<i64, SplitError> {
        let mut times: Vec<i64> = log
            .rows
            .iter()
            .enumerate()
            .filter(|&(k, r)| among.is_none_or(|m| m[k]) && r.quantity > 0.0)
            .filter_map(|(_, r)| r.time)
            .collect();
        if times.is_empty() {
            return Err(SplitError::MissingColumn { method: "time", needs: "purchase times", flag: "--time-col" });
        }
        times.sort_unstable();
        let (first, last) = (times[0], times[times.len() - 1]);
        let at = match cutoff {
            Cutoff::At(t) => t,
            Cutoff::LastShare(f) => {
                let k = ((1.0 - f) * times.len() as f64).floor() as usize;
                times[k.min(times.len() - 1)]
            }
        };
        let side = if at <= first {
            Some("before")
        } else if at > last {
            Some("after")
        } else {
            None
        };
        match side {
            Some(side) => Err(SplitError::CutoffOutside {
                cutoff: crate::time::format(at),
                side,
                first: crate::time::format(first),
                last: crate::time::format(last),
            }),
            None => Ok(at),
        }
    }
}

/// Each basket's latest purchase time, when the log has baskets and times.
fn basket_times(log: &PurchaseLog) -> Option<Vec<i64>> {
    let baskets = log.baskets.as_ref()?;
    let mut t = vec![i64::MIN; baskets.len()];
    for r in &log.rows {
        if let (Some(b), Some(time)) = (r.basket, r.time) {
            t[b as usize] = t[b as usize].max(time);
        }
    }
    Some(t)
}

/// FNV-1a over the seed and both ids (separated so "ab"+"c" differs from "a"+"bc"),
/// then a final mix so that nearby seeds give unrelated draws.
fn pair_hash(seed: u64, customer: &str, item: &str) -> u64 {
    hash_parts(seed, &[customer.as_bytes(), &[0xff], item.as_bytes()])
}

/// A seeded hash of one id, uniform over `u64`: who is in a sample of customers.
pub(crate) fn id_hash(seed: u64, id: &str) -> u64 {
    hash_parts(seed, &[id.as_bytes()])
}

fn hash_parts(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&seed.to_le_bytes());
    for p in parts {
        eat(p);
    }
    // splitmix64's finaliser.
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
