//! Baskets in, association rules and basket completions out.
//!
//! Every purchase row with a basket id marks its item as in that basket (customers stand in
//! for baskets when the file has none). Pair counts come from the same row-by-row product as
//! the similarity kernels: for each item, walk the baskets holding it and count the other
//! items there, in a dense per-worker counter; items in fewer baskets than the minimum count
//! cannot be in a frequent pair and are skipped (the apriori property), so bestsellers cost
//! only what their frequent partners cost. Nothing is held per pair but the pairs kept.
//!
//! Measures follow the usual definitions (those of mlxtend and arules), from integer counts
//! in f64: for a rule A -> B over N baskets, support = n(AB) / N, confidence = n(AB) / n(A),
//! lift = confidence / (n(B) / N), leverage = support - (n(A) / N)(n(B) / N), conviction =
//! (1 - n(B) / N) / (1 - confidence), infinite when the confidence is 1.
//!
//! Architecture invariant: the rules depend only on the baskets (each item's row is counted
//! by one worker; output sorted by antecedent, then consequent, in natural id order).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{IdTable, ItemIdx};
use crate::ingest::PurchaseLog;
use crate::matrix::{Csr, MAX_ROWS, TooManyRows, check_rows_fit, transpose};

/// Baskets x items, each cell 1 where the basket holds the item.
///
/// Invariant: at most [`MAX_ROWS`] baskets (checked when they are built), so basket indices
/// and every count of baskets fit a `u32`.
#[derive(Debug, Clone)]
pub struct Baskets {
    /// Baskets x items.
    by_basket: Csr,
    /// Items x baskets.
    by_item: Csr,
    /// The items' ids.
    items: IdTable,
    /// Whether baskets are real baskets (a basket column) or customers.
    from_basket_ids: bool,
}

impl Baskets {
    /// The baskets of a purchase log: purchase rows (quantity above 0) grouped by basket id,
    /// or by customer when the log has no basket ids. Rows without a basket in a log that
    /// has them are grouped by customer too (counted in [`BasketStats::rows_without_basket`]).
    /// Fails beyond [`MAX_ROWS`] baskets (basket ids and customers without one add up).
    pub fn from_log(log: &PurchaseLog) -> Result<(Baskets, BasketStats), TooManyRows> {
        Self::from_log_within(log, MAX_ROWS)
    }

    /// [`Baskets::from_log`] with the most baskets as a parameter (tests take a small one).
    fn from_log_within(log: &PurchaseLog, max_baskets: usize) -> Result<(Baskets, BasketStats), TooManyRows> {
        let from_basket_ids = log.baskets.is_some();
        let mut stats = BasketStats::default();
        // Key: a basket index, or customers' indices after every basket.
        let mut cells: Vec<(u64, u32)> = Vec::with_capacity(log.rows.len());
        for r in &log.rows {
            if r.quantity <= 0.0 {
                continue;
            }
            stats.rows += 1;
            let key = match r.basket {
                Some(b) => u64::from(b),
                None => {
                    stats.rows_without_basket += u64::from(from_basket_ids);
                    let base = log.baskets.as_ref().map_or(0, |b| b.len() as u64);
                    base + u64::from(r.customer.0)
                }
            };
            cells.push((key, r.item.0));
        }
        cells.par_sort_unstable();
        cells.dedup();
        // Renumber the baskets that hold anything, in key order.
        let mut indptr = vec![0usize];
        let mut indices = Vec::with_capacity(cells.len());
        for group in cells.chunk_by(|a, b| a.0 == b.0) {
            indices.extend(group.iter().map(|c| c.1));
            indptr.push(indices.len());
        }
        check_rows_fit("baskets", indptr.len() - 1, max_baskets)?;
        stats.baskets = (indptr.len() - 1) as u64;
        stats.lines = indices.len() as u64;
        let n = indices.len();
        let by_basket = Csr::new((indptr.len() - 1, log.items.len()), indptr, indices, vec![1.0; n]);
        let by_item = transpose(&by_basket);
        Ok((Baskets { by_basket, by_item, items: log.items.clone(), from_basket_ids }, stats))
    }

    /// The same baskets with each item replaced by its group (for example its category at
    /// some level); items without a group (`None`) are left out. `names` are the groups' ids.
    pub fn grouped(&self, group_of: &[Option<u32>], names: IdTable) -> Baskets {
        let mut indptr = vec![0usize];
        let mut indices = Vec::new();
        let mut row = Vec::new();
        for b in self.by_basket.outer_iterator() {
            row.clear();
            row.extend(b.indices().iter().filter_map(|&j| group_of.get(j as usize).copied().flatten()));
            row.sort_unstable();
            row.dedup();
            indices.extend_from_slice(&row);
            indptr.push(indices.len());
        }
        let n = indices.len();
        let by_basket = Csr::new((indptr.len() - 1, names.len()), indptr, indices, vec![1.0; n]);
        let by_item = transpose(&by_basket);
        Baskets { by_basket, by_item, items: names, from_basket_ids: self.from_basket_ids }
    }

    /// Number of baskets.
    pub fn len(&self) -> usize {
        self.by_basket.rows()
    }

    /// Whether there are no baskets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items' (or groups') ids.
    pub fn items(&self) -> &IdTable {
        &self.items
    }

    /// Whether the baskets came from basket ids (`false`: one per customer).
    pub fn from_basket_ids(&self) -> bool {
        self.from_basket_ids
    }

    /// Baskets holding each item (at most [`MAX_ROWS`]: the count fits).
    pub fn item_counts(&self) -> Vec<u32> {
        self.by_item.proper_indptr().windows(2).map(|w| (w[1] - w[0]) as u32).collect()
    }

    /// Every pairwise rule meeting `p`, sorted by antecedent then consequent (natural id
    /// order). Runs in parallel on the current rayon pool.
    pub fn rules(&self, p: &RuleParams) -> Vec<Rule> {
        let n = self.len() as u64;
        if n == 0 {
            return Vec::new();
        }
        let min_count = p.min_pair_count(n);
        let counts = self.item_counts();
        let frequent: Vec<bool> = counts.iter().map(|&c| u64::from(c) >= min_count).collect();
        let items: Vec<u32> = (0..counts.len() as u32).filter(|&i| frequent[i as usize]).collect();
        let (bptr, bidx) = (self.by_basket.indptr(), self.by_basket.indices());
        let (iptr, iidx) = (self.by_item.indptr(), self.by_item.indices());
        let per_item: Vec<Vec<Rule>> = items
            .par_iter()
            .map_init(
                || (vec![0u32; counts.len()], Vec::<u32>::new()),
                |(acc, touched), &a| {
                    for &b in &iidx[iptr.outer_inds_sz(a as usize)] {
                        for &j in &bidx[bptr.outer_inds_sz(b as usize)] {
                            if j != a && frequent[j as usize] {
                                let c = &mut acc[j as usize];
                                if *c == 0 {
                                    touched.push(j);
                                }
                                *c += 1;
                            }
                        }
                    }
                    touched.sort_unstable();
                    let mut out = Vec::new();
                    for &b in touched.iter() {
                        let both = std::mem::take(&mut acc[b as usize]);
                        if u64::from(both) >= min_count {
                            let r = Rule::new(ItemIdx(a), ItemIdx(b), counts[a as usize], counts[b as usize], both, n);
                            if p.admits(&r) {
                                out.push(r);
                            }
                        }
                    }
                    touched.clear();
                    out
                },
            )
            .collect();
        per_item.into_iter().flatten().collect()
    }

    /// The best completions of a basket: items not in it, ranked by the confidence of the
    /// rule (basket items) -> item over the baskets holding all of them (then lift, then id).
    /// When fewer than `min_count` baskets hold them all, the item whose removal keeps the
    /// most baskets is dropped from the antecedent until enough do; the antecedent used is
    /// returned with the completions. Unknown items are ignored.
    pub fn complete(&self, basket: &[ItemIdx], k: usize, min_count: u32) -> Completion {
        let n = self.len() as u64;
        let mut antecedent: Vec<u32> =
            basket.iter().map(|i| i.0).filter(|&i| (i as usize) < self.items.len()).collect();
        antecedent.sort_unstable();
        antecedent.dedup();
        let min_count = min_count.max(1);
        let mut holding = self.holding_all(&antecedent);
        while holding.len() < min_count as usize && antecedent.len() > 1 {
            // Drop the item whose removal leaves the most baskets holding the rest.
            let best = (0..antecedent.len())
                .map(|drop| {
                    let rest: Vec<u32> =
                        antecedent.iter().enumerate().filter(|&(x, _)| x != drop).map(|(_, &i)| i).collect();
                    (self.holding_all(&rest).len(), std::cmp::Reverse(drop))
                })
                .max()
                .map(|(_, std::cmp::Reverse(d))| d)
                .unwrap_or(0);
            antecedent.remove(best);
            holding = self.holding_all(&antecedent);
        }
        let counts = self.item_counts();
        let mut acc = vec![0u32; self.items.len()];
        let (bptr, bidx) = (self.by_basket.indptr(), self.by_basket.indices());
        for &b in &holding {
            for &j in &bidx[bptr.outer_inds_sz(b as usize)] {
                acc[j as usize] += 1;
            }
        }
        let given = holding.len() as u64;
        let mut items: Vec<Completed> = acc
            .iter()
            .enumerate()
            .filter(|&(j, &c)| c > 0 && c >= min_count && basket.iter().all(|b| b.0 as usize != j))
            .map(|(j, &c)| {
                let confidence = f64::from(c) / given as f64;
                let support_b = f64::from(counts[j]) / n as f64;
                Completed { item: ItemIdx(j as u32), count: c, confidence, lift: confidence / support_b }
            })
            .collect();
        items.sort_by(|a, b| {
            b.confidence.total_cmp(&a.confidence).then(b.lift.total_cmp(&a.lift)).then(a.item.0.cmp(&b.item.0))
        });
        items.truncate(k);
        Completion { antecedent: antecedent.into_iter().map(ItemIdx).collect(), baskets: given, items }
    }

    /// Baskets holding every item of `items` (all baskets when empty), ascending.
    fn holding_all(&self, items: &[u32]) -> Vec<u32> {
        let (iptr, iidx) = (self.by_item.indptr(), self.by_item.indices());
        let mut lists: Vec<&[u32]> = items.iter().map(|&i| &iidx[iptr.outer_inds_sz(i as usize)]).collect();
        lists.sort_by_key(|l| l.len());
        let Some((first, rest)) = lists.split_first() else {
            return (0..self.len() as u32).collect();
        };
        first.iter().copied().filter(|b| rest.iter().all(|l| l.binary_search(b).is_ok())).collect()
    }
}

/// What went into the baskets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BasketStats {
    /// Purchase rows (quantity above 0) used.
    pub rows: u64,
    /// Of those, rows without a basket id in a log that has basket ids (grouped by customer).
    pub rows_without_basket: u64,
    /// Baskets holding at least one item.
    pub baskets: u64,
    /// Distinct (basket, item) cells.
    pub lines: u64,
}

/// Thresholds for [`Baskets::rules`]. Validate with [`RuleParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleParams {
    /// Minimum support of the pair (share of baskets holding both), 0 to 1.
    pub min_support: f64,
    /// Minimum confidence, 0 to 1.
    pub min_confidence: f64,
    /// Minimum lift, 0 or more.
    pub min_lift: f64,
    /// Minimum number of baskets holding both (at least 1).
    pub min_count: u64,
}

impl Default for RuleParams {
    fn default() -> Self {
        RuleParams { min_support: 0.001, min_confidence: 0.0, min_lift: 0.0, min_count: 1 }
    }
}

impl RuleParams {
    /// Checks ranges; the message names the parameter.
    pub fn check(&self) -> Result<(), String> {
        let unit = |x: f64, what: &str| {
            if (0.0..=1.0).contains(&x) { Ok(()) } else { Err(format!("{what} must be between 0 and 1, got {x}")) }
        };
        unit(self.min_support, "the minimum support")?;
        unit(self.min_confidence, "the minimum confidence")?;
        if !(self.min_lift.is_finite() && self.min_lift >= 0.0) {
            return Err(format!("the minimum lift must be a number >= 0, got {}", self.min_lift));
        }
        Ok(())
    }

    /// The fewest baskets a kept pair is in, over `n` baskets: the larger of `min_count`
    /// and the support threshold (rounded up, with a tolerance so that 0.001 x 10,000
    /// baskets asks for 10, not 11).
    pub fn min_pair_count(&self, n: u64) -> u64 {
        let by_support = (self.min_support * n as f64 - 1e-9).ceil().max(0.0) as u64;
        by_support.max(self.min_count).max(1)
    }

    fn admits(&self, r: &Rule) -> bool {
        r.confidence >= self.min_confidence && r.lift >= self.min_lift
    }
}

/// A pairwise rule A -> B and its measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    /// A.
    pub antecedent: ItemIdx,
    /// B.
    pub consequent: ItemIdx,
    /// Baskets holding A.
    pub antecedent_count: u32,
    /// Baskets holding B.
    pub consequent_count: u32,
    /// Baskets holding both.
    pub count: u32,
    /// n(AB) / N.
    pub support: f64,
    /// n(AB) / n(A).
    pub confidence: f64,
    /// confidence / (n(B) / N).
    pub lift: f64,
    /// support - (n(A) / N)(n(B) / N).
    pub leverage: f64,
    /// (1 - n(B) / N) / (1 - confidence); infinite when the confidence is 1.
    pub conviction: f64,
}

impl Rule {
    fn new(a: ItemIdx, b: ItemIdx, na: u32, nb: u32, both: u32, n: u64) -> Rule {
        let n = n as f64;
        let (sa, sb, s) = (f64::from(na) / n, f64::from(nb) / n, f64::from(both) / n);
        let confidence = s / sa;
        let conviction = if confidence >= 1.0 { f64::INFINITY } else { (1.0 - sb) / (1.0 - confidence) };
        Rule {
            antecedent: a,
            consequent: b,
            antecedent_count: na,
            consequent_count: nb,
            count: both,
            support: s,
            confidence,
            lift: confidence / sb,
            leverage: s - sa * sb,
            conviction,
        }
    }
}

/// The best completions of a basket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// The basket items the rules were conditioned on (all of them, unless too few baskets
    /// held them all).
    pub antecedent: Vec<ItemIdx>,
    /// Baskets holding the whole antecedent.
    pub baskets: u64,
    /// Completions, best first.
    pub items: Vec<Completed>,
}

/// One completion: the rule (antecedent) -> item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Completed {
    /// The item.
    pub item: ItemIdx,
    /// Baskets holding the antecedent and the item.
    pub count: u32,
    /// count / baskets holding the antecedent.
    pub confidence: f64,
    /// confidence / the item's support.
    pub lift: f64,
}

/// A value computed from decimals or counts in a few roundings (a quantity times a price; a
/// rule's confidence as the ratio of two supports, as mlxtend computes it), without their
/// float noise: rounded to 15 significant digits, which every decimal of up to 15 digits
/// survives, then printed in its shortest form (`15.3`, not `15.299999999999999`; `0.88`,
/// not `0.8799999999999999`).
pub fn decimal(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    format!("{x:.14e}").parse::<f64>().unwrap_or(x).to_string()
}

/// Writes `rules` as `cobuy rules` does: a header, then one CSV row per rule (items by id,
/// measures by [`decimal`]); the Python package's rules table is these bytes too.
pub fn write_csv<W: std::io::Write>(out: W, baskets: &Baskets, rules: &[Rule]) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "antecedent",
        "consequent",
        "support",
        "confidence",
        "lift",
        "leverage",
        "conviction",
        "count",
        "antecedent_count",
        "consequent_count",
    ])?;
    let ids = baskets.items();
    for r in rules {
        w.write_record([
            ids.id(r.antecedent.0),
            ids.id(r.consequent.0),
            &decimal(r.support),
            &decimal(r.confidence),
            &decimal(r.lift),
            &decimal(r.leverage),
            &decimal(r.conviction),
            &r.count.to_string(),
            &r.antecedent_count.to_string(),
            &r.consequent_count.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CustomerIdx, IdTable};
    use crate::ingest::LogRow;

    /// Amounts are printed as the decimals they come from; values no product of short
    /// decimals makes keep every digit they need.
    #[test]
    fn decimals_lose_the_float_noise_of_a_product_only() {
        assert_eq!((6.0 * 2.55f64).to_string(), "15.299999999999999", "the noise this removes");
        assert_eq!(decimal(6.0 * 2.55), "15.3");
        assert_eq!(decimal(3.0 * 0.1), "0.3");
        assert_eq!(decimal(12540.0 * 0.0), "0");
        assert_eq!(decimal(-2.0 * 1.1), "-2.2");
        assert_eq!(decimal(1.0 / 3.0), "0.333333333333333");
        assert_eq!(decimal(123456789.123), "123456789.123");
        assert_eq!(decimal(1e-20 * 3.0), "0.00000000000000000003");
        assert_eq!(decimal(f64::INFINITY), "inf");
    }

    /// Baskets are checked against the limit before anything is numbered in `u32`: two
    /// basket ids and a customer's rows without one make three baskets.
    #[test]
    fn baskets_beyond_the_limit_are_an_error_not_a_wrap() {
        let row = |customer: u32, item: u32, basket: Option<u32>| LogRow {
            customer: CustomerIdx(customer),
            item: ItemIdx(item),
            quantity: 1.0,
            amount: None,
            time: None,
            basket,
        };
        let log = PurchaseLog {
            customers: IdTable::from_sorted(&["a", "b"]).unwrap(),
            items: IdTable::from_sorted(&["x", "y"]).unwrap(),
            baskets: IdTable::from_sorted(&["1", "2"]),
            rows: vec![row(0, 0, Some(0)), row(0, 1, Some(1)), row(1, 0, None), row(1, 1, None)],
        };
        let (baskets, stats) = Baskets::from_log_within(&log, 3).unwrap();
        assert_eq!((baskets.len(), stats.baskets, stats.rows_without_basket), (3, 3, 2));
        let err = Baskets::from_log_within(&log, 2).unwrap_err();
        assert_eq!(err, TooManyRows { what: "baskets", rows: 3, max: 2 });
        assert_eq!(err.to_string(), "3 baskets: more than the 2 that 32-bit indices can number");
    }
}
