//! Ranked lists and held-out purchases in, ranking metrics at several cut-offs out.
//!
//! Relevance is binary: an item is relevant when the customer bought it in the test
//! period. For a cut-off `k`, only the first `min(k, len(ranked))` recommended items
//! count, and `hits@k` is how many of them are relevant. A customer's values are added
//! to plain f64 sums in the order [`MetricsAccumulator::add`] is called and divided once
//! at the end, so callers that add customers in a fixed order (e.g. index order, after a
//! parallel scoring pass) get identical results for any number of threads. Squares are
//! summed beside the values, so each mean comes with its standard error in the same pass.
//!
//! ```
//! use cobuy::eval::metrics::{Metric, MetricsAccumulator};
//!
//! let mut acc = MetricsAccumulator::new(&[1, 3], 30, vec![0.0; 30]);
//! acc.add(&[5, 1, 9], &[1, 9, 20], None);
//! let table = acc.finish();
//! assert_eq!(table.get(Metric::Precision, 1), Some(0.0));
//! assert_eq!(table.get(Metric::Recall, 3), Some(2.0 / 3.0));
//! ```

use serde::Serialize;

/// One ranking metric. Each is computed per customer at a cut-off `k` and averaged over
/// customers; all lie between 0 and 1, higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Metric {
    /// Precision@k = `hits@k / k`. The divisor is `k` even when fewer than `k` items were
    /// recommended: a short list is not rewarded for being short.
    Precision,
    /// Recall@k = `hits@k / |relevant|`: the share of the customer's test purchases found.
    Recall,
    /// NDCG@k = `DCG@k / IDCG@k`, with `DCG@k` = the sum, over ranks `r <= k` holding a
    /// relevant item, of `1 / log2(r + 1)`, and `IDCG@k` = the same sum for a perfect list,
    /// `sum over r = 1..min(k, |relevant|)` of `1 / log2(r + 1)`: hits near the top count
    /// more.
    Ndcg,
    /// MAP@k, average precision averaged over customers: AP@k = `(1 / min(k, |relevant|))`
    /// times the sum, over ranks `r <= k` holding a relevant item, of Precision@r.
    Map,
    /// HitRate@k = 1 when `hits@k > 0`, else 0: the share of customers with at least one
    /// good recommendation.
    HitRate,
    /// MRR@k (mean reciprocal rank) = `1 / r` for the rank `r` of the first relevant item
    /// within the first `k`, else 0.
    Mrr,
    /// RevenueRecall@k = the test-period revenue of the relevant items in the first `k`
    /// divided by the revenue of all relevant items: recall weighted by what the customer
    /// spent. Averaged only over customers given with a positive total revenue; the metric
    /// is absent from a table when there are none.
    RevenueRecall,
}

impl Metric {
    /// Every metric, in the order tables and reports list them.
    pub const ALL: [Metric; 7] = [
        Metric::Precision,
        Metric::Recall,
        Metric::Ndcg,
        Metric::Map,
        Metric::HitRate,
        Metric::Mrr,
        Metric::RevenueRecall,
    ];

    /// The name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Ndcg => "ndcg",
            Metric::Map => "map",
            Metric::HitRate => "hit_rate",
            Metric::Mrr => "mrr",
            Metric::RevenueRecall => "revenue_recall",
        }
    }

    /// The metric of a [`name`](Metric::name); `hit-rate` and `revenue-recall` are accepted
    /// too, the command line's usual spelling.
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "hit-rate" => Some(Metric::HitRate),
            "revenue-recall" => Some(Metric::RevenueRecall),
            _ => Metric::ALL.into_iter().find(|m| m.name() == s),
        }
    }

    /// The position of the metric's sum in [`MetricsAccumulator::sums`].
    fn slot(self) -> usize {
        self as usize
    }
}

/// Metrics with one sum per customer (every metric but revenue recall, whose customers
/// are a subset).
const PER_CUSTOMER: usize = 6;

/// Accumulates metrics over customers, at several cut-offs `k`.
#[derive(Debug, Clone)]
pub struct MetricsAccumulator {
    /// Cut-offs, ascending, unique, each >= 1.
    ks: Vec<usize>,
    items: usize,
    popularity: Vec<f64>,
    customers: usize,
    /// Per cut-off, the sums of the per-customer metrics, indexed by [`Metric::slot`].
    sums: Vec<[f64; PER_CUSTOMER]>,
    /// Per cut-off, the sums of their squares, for the standard errors.
    squares: Vec<[f64; PER_CUSTOMER]>,
    /// Per cut-off, the sum of revenue recall over `revenue_customers`, and of its square.
    revenue: Vec<f64>,
    revenue_squares: Vec<f64>,
    revenue_customers: usize,
    /// Per item, the index of the smallest cut-off at which it was recommended to anyone
    /// (`u32::MAX`: never): coverage at every cut-off from one array.
    first_cut: Vec<u32>,
    /// Per cut-off, the sum of popularity over the recommended slots and their number.
    popularity_sum: Vec<f64>,
    slots: Vec<u64>,
    /// `discount[p] = 1 / log2(p + 2)`, the DCG weight of rank `p + 1`, grown on demand.
    discount: Vec<f64>,
    /// `ideal[m]` = the sum of the first `m` discounts (IDCG for `m` relevant items).
    ideal: Vec<f64>,
    /// Each customer added with [`MetricsAccumulator::add_for`] and their NDCG at each cut-off.
    per_customer: PerCustomer,
    /// The customer being added is kept in `per_customer`.
    keeping: bool,
}

/// A customer's running totals over the ranks walked so far.
#[derive(Default)]
struct Running {
    /// Ranks walked.
    ranks: usize,
    hits: usize,
    dcg: f64,
    /// Sum of Precision@r over the hit ranks `r`.
    precision_at_hits: f64,
    first_hit: usize,
    revenue_hit: f64,
    popularity: f64,
}

impl MetricsAccumulator {
    /// An empty accumulator. `ks`: the cut-offs (validated by the caller: non-empty, each
    /// at least 1; they are sorted and deduplicated here, and a 0 is dropped); `items`: the
    /// catalogue size, for coverage; `popularity[item]`: the fraction of training customers
    /// who bought the item, for the mean popularity of what is recommended (items beyond
    /// its end count as 0).
    pub fn new(ks: &[usize], items: usize, popularity: Vec<f64>) -> Self {
        let mut ks: Vec<usize> = ks.iter().copied().filter(|&k| k > 0).collect();
        ks.sort_unstable();
        ks.dedup();
        let n = ks.len();
        MetricsAccumulator {
            ks,
            items,
            popularity,
            customers: 0,
            sums: vec![[0.0; PER_CUSTOMER]; n],
            squares: vec![[0.0; PER_CUSTOMER]; n],
            revenue: vec![0.0; n],
            revenue_squares: vec![0.0; n],
            revenue_customers: 0,
            first_cut: vec![u32::MAX; items],
            popularity_sum: vec![0.0; n],
            slots: vec![0; n],
            discount: Vec::new(),
            ideal: vec![0.0],
            per_customer: PerCustomer { customers: Vec::new(), ndcg: vec![Vec::new(); n] },
            keeping: false,
        }
    }

    /// [`add`](MetricsAccumulator::add), keeping the customer's NDCG at each cut-off under
    /// `customer` (when counted), so that two runs can be compared customer by customer
    /// ([`MetricTable::paired_ndcg`]).
    pub fn add_for(&mut self, customer: u32, ranked: &[u32], relevant: &[u32], revenue: Option<&[f64]>) {
        let before = self.customers;
        self.keeping = true;
        self.add(ranked, relevant, revenue);
        self.keeping = false;
        if self.customers > before {
            self.per_customer.customers.push(customer);
        }
    }

    /// Adds one customer. `ranked`: the recommended item indices, best first (no
    /// duplicates; may be shorter than the largest cut-off); `relevant`: the customer's
    /// held-out items, sorted ascending and unique; `revenue`: optionally, the test-period
    /// value of each relevant item (aligned with `relevant`), for revenue recall.
    ///
    /// A customer with no relevant items is not counted (recall would be undefined): the
    /// caller should skip them. A revenue slice of another length than `relevant`, or whose
    /// total is not a positive finite number, leaves the customer out of revenue recall
    /// only; negative or non-finite values count as 0. Items at or beyond the catalogue
    /// size count for the ranking metrics but not for coverage.
    ///
    /// Cost: O(min(len(ranked), max k) * log |relevant| + |relevant|), no allocation
    /// beyond growing a discount table to the longest list seen.
    pub fn add(&mut self, ranked: &[u32], relevant: &[u32], revenue: Option<&[f64]>) {
        let Some(&max_k) = self.ks.last() else { return };
        if relevant.is_empty() {
            return;
        }
        self.customers += 1;
        let revenue = revenue.filter(|v| v.len() == relevant.len());
        let revenue_total = revenue.map_or(0.0, |v| v.iter().map(|&x| clean(x)).sum::<f64>());
        let revenue_counted = revenue_total.is_finite() && revenue_total > 0.0;
        if revenue_counted {
            self.revenue_customers += 1;
        }

        let ranked = &ranked[..ranked.len().min(max_k)];
        self.grow_tables(ranked.len().max(relevant.len().min(max_k)));

        let mut run = Running::default();
        let mut cut = 0; // ks[cut] is the smallest cut-off >= the current rank
        for &item in ranked {
            let r = run.ranks + 1;
            if let Ok(at) = relevant.binary_search(&item) {
                run.hits += 1;
                run.dcg += self.discount[run.ranks];
                run.precision_at_hits += run.hits as f64 / r as f64;
                if run.first_hit == 0 {
                    run.first_hit = r;
                }
                if let Some(v) = revenue {
                    run.revenue_hit += clean(v[at]);
                }
            }
            run.popularity += self.popularity.get(item as usize).copied().unwrap_or(0.0);
            if let Some(first) = self.first_cut.get_mut(item as usize) {
                *first = (*first).min(cut as u32);
            }
            run.ranks = r;
            if r == self.ks[cut] {
                self.record(cut, &run, relevant.len(), revenue_counted.then_some(revenue_total));
                cut += 1;
            }
        }
        // Cut-offs beyond a short list see the same totals.
        for c in cut..self.ks.len() {
            self.record(c, &run, relevant.len(), revenue_counted.then_some(revenue_total));
        }
    }

    /// Grows the discount and ideal-DCG tables to cover `n` ranks.
    fn grow_tables(&mut self, n: usize) {
        while self.discount.len() < n {
            let d = 1.0 / ((self.discount.len() + 2) as f64).log2();
            self.discount.push(d);
            let last = self.ideal[self.ideal.len() - 1];
            self.ideal.push(last + d);
        }
    }

    /// Adds one customer's values at cut-off index `c`.
    fn record(&mut self, c: usize, run: &Running, relevant: usize, revenue_total: Option<f64>) {
        let k = self.ks[c];
        let ideal_hits = k.min(relevant);
        let hits = run.hits as f64;
        let mut values = [0.0; PER_CUSTOMER];
        values[Metric::Precision.slot()] = hits / k as f64;
        values[Metric::Recall.slot()] = hits / relevant as f64;
        values[Metric::Ndcg.slot()] = run.dcg / self.ideal[ideal_hits];
        values[Metric::Map.slot()] = run.precision_at_hits / ideal_hits as f64;
        values[Metric::HitRate.slot()] = if run.hits > 0 { 1.0 } else { 0.0 };
        values[Metric::Mrr.slot()] = if run.first_hit > 0 { 1.0 / run.first_hit as f64 } else { 0.0 };
        if self.keeping {
            self.per_customer.ndcg[c].push(values[Metric::Ndcg.slot()]);
        }
        for ((s, q), v) in self.sums[c].iter_mut().zip(&mut self.squares[c]).zip(values) {
            *s += v;
            *q += v * v;
        }
        if let Some(total) = revenue_total {
            // The hit revenue is summed in rank order, the total in item order: rounding
            // could push a full hit a hair above 1.
            let v = (run.revenue_hit / total).min(1.0);
            self.revenue[c] += v;
            self.revenue_squares[c] += v * v;
        }
        self.popularity_sum[c] += run.popularity;
        self.slots[c] += run.ranks as u64;
    }

    /// The means over the customers added so far (0 for every metric when there were none),
    /// and their standard errors (where at least two customers count).
    pub fn finish(&self) -> MetricTable {
        let mean = |sum: f64, n: usize| if n == 0 { 0.0 } else { sum / n as f64 };
        let mut values = Vec::with_capacity(Metric::ALL.len());
        let mut std_errors = Vec::with_capacity(Metric::ALL.len());
        for m in Metric::ALL {
            let (n, sums, squares): (usize, Vec<f64>, Vec<f64>) = if m == Metric::RevenueRecall {
                (self.revenue_customers, self.revenue.clone(), self.revenue_squares.clone())
            } else {
                let at = |t: &[[f64; PER_CUSTOMER]]| t.iter().map(|s| s[m.slot()]).collect();
                (self.customers, at(&self.sums), at(&self.squares))
            };
            if m == Metric::RevenueRecall && n == 0 {
                continue;
            }
            values.push((m, sums.iter().map(|&s| mean(s, n)).collect()));
            if n >= 2 {
                std_errors.push((m, sums.iter().zip(&squares).map(|(&s, &q)| std_error(s, q, n)).collect()));
            }
        }
        let mut newly_covered = vec![0usize; self.ks.len()];
        for &c in &self.first_cut {
            if let Some(n) = newly_covered.get_mut(c as usize) {
                *n += 1;
            }
        }
        let mut covered = 0;
        let coverage = newly_covered
            .iter()
            .map(|&n| {
                covered += n;
                mean(covered as f64, self.items)
            })
            .collect();
        let mean_popularity = self.popularity_sum.iter().zip(&self.slots).map(|(&s, &n)| mean(s, n as usize)).collect();
        MetricTable {
            customers: self.customers,
            revenue_customers: self.revenue_customers,
            ks: self.ks.clone(),
            values,
            std_errors,
            coverage,
            mean_popularity,
            per_customer: self.per_customer.clone(),
        }
    }
}

/// Each customer's NDCG at each cut-off, for the customers added with
/// [`MetricsAccumulator::add_for`]: what a paired comparison of two runs needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerCustomer {
    /// The customers, in the order they were added.
    pub customers: Vec<u32>,
    /// Per cut-off (the table's `ks` order), each customer's NDCG@k, aligned with
    /// `customers`.
    pub ndcg: Vec<Vec<f64>>,
}

/// The mean of per-customer differences between two runs and its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Paired {
    /// Customers paired.
    pub customers: usize,
    /// The mean difference (first run minus second).
    pub difference: f64,
    /// The interval's lower bound: the mean - 1.96 standard errors of the differences.
    pub low: f64,
    /// Its upper bound: the mean + 1.96 standard errors.
    pub high: f64,
}

/// The paired difference `a - b` of two runs' values on the same customers (aligned), with
/// a 95% interval by the normal approximation: mean ± 1.96 × the sample standard deviation
/// of the differences / √n. With hundreds of customers the mean is close to normal even
/// though each difference is far from it; pairing removes what the customers have in
/// common (how easy they are), so the interval is much narrower than the two runs' own
/// standard errors suggest. Sums run in customer order, so the result does not depend on
/// the thread count. `None` for fewer than two customers or slices of unequal length.
pub fn paired(a: &[f64], b: &[f64]) -> Option<Paired> {
    let n = a.len();
    if n < 2 || b.len() != n {
        return None;
    }
    let mean = a.iter().zip(b).map(|(x, y)| x - y).sum::<f64>() / n as f64;
    // Two-pass variance: differences lie in [-1, 1] and may be nearly all alike.
    let variance = a.iter().zip(b).map(|(x, y)| (x - y - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    let half = 1.96 * (variance / n as f64).sqrt();
    Some(Paired { customers: n, difference: mean, low: mean - half, high: mean + half })
}

/// The standard error of a mean of `n >= 2` values from their sum and the sum of their
/// squares: the sample standard deviation over `sqrt(n)`. The values lie in [0, 1], so the
/// one-pass variance is off by a few units in the last place of 1 per customer at worst,
/// far below the 4 decimals a report shows; rounding below 0 is clamped.
fn std_error(sum: f64, squares: f64, n: usize) -> f64 {
    let n = n as f64;
    let variance = ((squares - sum * sum / n) / (n - 1.0)).max(0.0);
    (variance / n).sqrt()
}

/// A revenue value as counted: negative and non-finite values are 0.
fn clean(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

/// Mean metrics over customers, at each cut-off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricTable {
    /// Customers added.
    pub customers: usize,
    /// Of those, the customers revenue recall is averaged over (a positive total revenue).
    pub revenue_customers: usize,
    /// The cut-offs, ascending.
    pub ks: Vec<usize>,
    /// Every metric in [`Metric::ALL`] order, one mean per cut-off; revenue recall is
    /// absent when no customer had revenue.
    pub values: Vec<(Metric, Vec<f64>)>,
    /// The standard error of each mean in `values` (sample standard deviation over
    /// customers / sqrt(customers)), so that a difference can be judged; a metric averaged
    /// over fewer than two customers has none. Runs measured on the same customers are
    /// paired: a difference between them is usually surer than these errors suggest.
    pub std_errors: Vec<(Metric, Vec<f64>)>,
    /// Per cut-off, the share of the catalogue recommended to anyone in their first `k`.
    pub coverage: Vec<f64>,
    /// Per cut-off, the mean popularity (share of training customers who bought the item)
    /// over every recommended slot at rank `<= k`; 0 when nothing was recommended.
    pub mean_popularity: Vec<f64>,
    /// Each customer's NDCG, when they were added with [`MetricsAccumulator::add_for`]
    /// (not written to reports: [`paired`] differences are).
    #[serde(skip)]
    pub per_customer: PerCustomer,
}

impl MetricTable {
    /// The mean of `m` at cut-off `k`, if the table has both.
    pub fn get(&self, m: Metric, k: usize) -> Option<f64> {
        let at = self.ks.iter().position(|&x| x == k)?;
        self.values.iter().find(|(x, _)| *x == m)?.1.get(at).copied()
    }

    /// Each customer's NDCG@k over `over` (customers sorted ascending: the target's
    /// measured set), 0 for a customer this table did not measure; `None` when the table
    /// lacks the cut-off or did not keep every customer's values.
    pub fn ndcg_over(&self, k: usize, over: &[u32]) -> Option<Vec<f64>> {
        let at = self.ks.iter().position(|&x| x == k)?;
        let p = &self.per_customer;
        let values = p.ndcg.get(at)?;
        if p.customers.len() != self.customers || values.len() != self.customers {
            return None;
        }
        let mut by_customer: Vec<(u32, f64)> = p.customers.iter().copied().zip(values.iter().copied()).collect();
        by_customer.sort_unstable_by_key(|x| x.0);
        Some(
            over.iter()
                .map(|c| by_customer.binary_search_by_key(c, |x| x.0).map_or(0.0, |i| by_customer[i].1))
                .collect(),
        )
    }

    /// The standard error of the mean of `m` at cut-off `k`, if the table has one.
    pub fn std_error(&self, m: Metric, k: usize) -> Option<f64> {
        let at = self.ks.iter().position(|&x| x == k)?;
        self.std_errors.iter().find(|(x, _)| *x == m)?.1.get(at).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn check(t: &MetricTable, m: Metric, expected: &[f64]) {
        for (&k, &e) in t.ks.iter().zip(expected) {
            let got = t.get(m, k).unwrap();
            assert!(close(got, e), "{}@{k}: got {got}, expected {e}", m.name());
        }
    }

    #[test]
    fn names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.name()), Some(m));
        }
        assert_eq!(Metric::parse("hit-rate"), Some(Metric::HitRate));
        assert_eq!(Metric::parse("revenue-recall"), Some(Metric::RevenueRecall));
        assert_eq!(Metric::parse("NDCG"), None);
        assert_eq!(Metric::parse(""), None);
    }

    /// ranked [5, 1, 9], relevant [1, 9, 20] with revenue [10, 30, 60]; hits at ranks 2
    /// (item 1) and 3 (item 9). With d(r) = 1 / log2(r + 1): d(1) = 1, d(2) = 0.6309298,
    /// d(3) = 0.5.
    ///
    /// | k | hits | P   | R   | NDCG                         | MAP                 | HR | MRR | RevR |
    /// |---|------|-----|-----|------------------------------|---------------------|----|-----|------|
    /// | 1 | 0    | 0   | 0   | 0                            | 0                   | 0  | 0   | 0    |
    /// | 2 | 1    | 1/2 | 1/3 | d2 / (1 + d2) = 0.386853     | (1/2) / 2 = 0.25    | 1  | 1/2 | 0.1  |
    /// | 3 | 2    | 2/3 | 2/3 | (d2 + d3) / (1 + d2 + d3)    | (1/2 + 2/3) / 3     | 1  | 1/2 | 0.4  |
    /// | 5 | 2    | 2/5 | 2/3 | same as k = 3 (IDCG over 3)  | same as k = 3       | 1  | 1/2 | 0.4  |
    #[test]
    fn one_customer_by_hand() {
        let mut pop = vec![0.0; 30];
        pop[5] = 0.5;
        pop[1] = 0.2;
        pop[9] = 0.1;
        let mut acc = MetricsAccumulator::new(&[5, 2, 1, 3, 2], 30, pop);
        acc.add(&[5, 1, 9], &[1, 9, 20], Some(&[10.0, 30.0, 60.0]));
        let t = acc.finish();
        assert_eq!(t.customers, 1);
        assert_eq!(t.ks, vec![1, 2, 3, 5]);
        let d2 = 1.0 / 3f64.log2();
        let ndcg3 = (d2 + 0.5) / (1.0 + d2 + 0.5);
        assert!((d2 / (1.0 + d2) - 0.386853).abs() < 1e-6);
        assert!((ndcg3 - 0.530721).abs() < 1e-6);
        check(&t, Metric::Precision, &[0.0, 0.5, 2.0 / 3.0, 0.4]);
        check(&t, Metric::Recall, &[0.0, 1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0]);
        check(&t, Metric::Ndcg, &[0.0, d2 / (1.0 + d2), ndcg3, ndcg3]);
        let ap3 = (0.5 + 2.0 / 3.0) / 3.0;
        check(&t, Metric::Map, &[0.0, 0.25, ap3, ap3]);
        check(&t, Metric::HitRate, &[0.0, 1.0, 1.0, 1.0]);
        check(&t, Metric::Mrr, &[0.0, 0.5, 0.5, 0.5]);
        check(&t, Metric::RevenueRecall, &[0.0, 0.1, 0.4, 0.4]);
        let expected_coverage = [1.0 / 30.0, 2.0 / 30.0, 3.0 / 30.0, 3.0 / 30.0];
        assert!(t.coverage.iter().zip(expected_coverage).all(|(&a, b)| close(a, b)), "{:?}", t.coverage);
        let expected_popularity = [0.5, 0.35, 0.8 / 3.0, 0.8 / 3.0];
        assert!(t.mean_popularity.iter().zip(expected_popularity).all(|(&a, b)| close(a, b)));
    }

    /// A second customer with a hit at rank 1 and zero revenue: every mean but revenue
    /// recall is over both customers, revenue recall stays the first customer's.
    #[test]
    fn means_over_customers() {
        let mut acc = MetricsAccumulator::new(&[1, 2], 30, vec![0.0; 30]);
        acc.add(&[5, 1, 9], &[1, 9, 20], Some(&[10.0, 30.0, 60.0]));
        acc.add(&[20], &[20], Some(&[0.0]));
        let t = acc.finish();
        assert_eq!(t.customers, 2);
        // P@1: (0 + 1) / 2; P@2: (1/2 + 1/2) / 2 (the second list is short, k still divides).
        check(&t, Metric::Precision, &[0.5, 0.5]);
        check(&t, Metric::Recall, &[0.5, (1.0 / 3.0 + 1.0) / 2.0]);
        check(&t, Metric::Mrr, &[0.5, 0.75]);
        check(&t, Metric::Map, &[0.5, (0.25 + 1.0) / 2.0]);
        check(&t, Metric::RevenueRecall, &[0.0, 0.1]);
        // Top 1: items 5 and 20; top 2 adds item 1.
        assert_eq!(t.coverage, vec![2.0 / 30.0, 3.0 / 30.0]);
    }

    /// Three customers; per-customer values worked out by hand, then the sample standard
    /// deviation over sqrt(3) (two customers for revenue recall).
    ///
    /// | customer | ranked | relevant | P@1 | P@2 | HR@2 | MRR@2 | RevR@1 |
    /// |----------|--------|----------|-----|-----|------|-------|--------|
    /// | A        | 1, 2   | 1        | 1   | 1/2 | 1    | 1     | 1      |
    /// | B        | 3, 1   | 1        | 0   | 1/2 | 1    | 1/2   | -      |
    /// | C        | 3, 4   | 1, 2     | 0   | 0   | 0    | 0     | 0      |
    #[test]
    fn standard_errors_by_hand() {
        let mut acc = MetricsAccumulator::new(&[1, 2], 5, vec![0.0; 5]);
        acc.add(&[1, 2], &[1], Some(&[5.0]));
        acc.add(&[3, 1], &[1], None);
        acc.add(&[3, 4], &[1, 2], Some(&[1.0, 1.0]));
        let t = acc.finish();
        assert_eq!((t.customers, t.revenue_customers), (3, 2));
        let se = |m, k| t.std_error(m, k).unwrap();
        // P@1: mean 1/3, squared deviations 4/9 + 1/9 + 1/9 = 2/3, variance 1/3, SE 1/3.
        assert!(close(se(Metric::Precision, 1), 1.0 / 3.0));
        // P@2: mean 1/3, squared deviations 1/36 + 1/36 + 1/9 = 1/6, variance 1/12, SE 1/6.
        assert!(close(se(Metric::Precision, 2), 1.0 / 6.0));
        // HR@2: mean 2/3, squared deviations 1/9 + 1/9 + 4/9, variance 1/3, SE 1/3.
        assert!(close(se(Metric::HitRate, 2), 1.0 / 3.0));
        // MRR@2: mean 1/2, squared deviations 1/4 + 0 + 1/4, variance 1/4, SE 1/(2 sqrt 3).
        assert!(close(se(Metric::Mrr, 2), 0.5 / 3f64.sqrt()));
        // RevR@1 over A and C: values 1 and 0, variance 1/2, SE 1/2.
        assert!(close(se(Metric::RevenueRecall, 1), 0.5));
        // Every customer alike: no spread.
        let mut same = MetricsAccumulator::new(&[1], 5, vec![]);
        for _ in 0..4 {
            same.add(&[1], &[1], None);
        }
        assert_eq!(same.finish().std_error(Metric::Ndcg, 1), Some(0.0));
    }

    /// One customer gives means but no spread to measure.
    #[test]
    fn no_standard_error_below_two_customers() {
        let mut acc = MetricsAccumulator::new(&[1], 5, vec![]);
        acc.add(&[1], &[1], Some(&[1.0]));
        acc.add(&[1], &[1], None);
        let t = acc.finish();
        assert!(t.std_error(Metric::Ndcg, 1).is_some());
        assert_eq!(t.get(Metric::RevenueRecall, 1), Some(1.0));
        assert_eq!(t.std_error(Metric::RevenueRecall, 1), None);
        let empty = MetricsAccumulator::new(&[1], 5, vec![]).finish();
        assert!(empty.std_errors.is_empty());
    }

    /// Differences 0.5, 0, 0.5 - 1 = -0.5 and 1: mean 0.25, sample variance
    /// (0.0625 + 0.0625 + 0.5625 + 0.5625) / 3 = 5/12, interval 0.25 ± 1.96 √(5/48).
    #[test]
    fn paired_difference_by_hand() {
        let p = paired(&[1.0, 0.5, 0.5, 1.0], &[0.5, 0.5, 1.0, 0.0]).unwrap();
        assert_eq!(p.customers, 4);
        assert!(close(p.difference, 0.25));
        let half = 1.96 * (5.0f64 / 48.0).sqrt();
        assert!(close(p.low, 0.25 - half) && close(p.high, 0.25 + half), "{p:?}");
        assert_eq!(paired(&[1.0], &[0.0]), None);
        assert_eq!(paired(&[1.0, 0.0], &[0.0]), None);
        // The same values: no difference and no spread.
        let same = paired(&[0.3, 0.7], &[0.3, 0.7]).unwrap();
        assert_eq!((same.difference, same.low, same.high), (0.0, 0.0, 0.0));
    }

    /// Values kept per customer; a customer of the measured set the table never saw counts
    /// 0; a table filled without customers keeps none.
    #[test]
    fn ndcg_by_customer_over_a_measured_set() {
        let mut acc = MetricsAccumulator::new(&[1, 2], 10, vec![]);
        acc.add_for(7, &[2, 1], &[1], None); // rank 2: 1 / log2(3)
        acc.add_for(3, &[1], &[1], None); // rank 1: 1
        acc.add_for(5, &[1], &[], None); // nothing relevant: not counted
        let t = acc.finish();
        assert_eq!(t.per_customer.customers, vec![7, 3]);
        let d2 = 1.0 / 3f64.log2();
        assert_eq!(t.ndcg_over(1, &[3, 4, 7]), Some(vec![1.0, 0.0, 0.0]));
        let at2 = t.ndcg_over(2, &[3, 4, 7]).unwrap();
        assert!(close(at2[0], 1.0) && at2[1] == 0.0 && close(at2[2], d2), "{at2:?}");
        assert_eq!(t.ndcg_over(5, &[3]), None);
        let mut anonymous = MetricsAccumulator::new(&[1], 10, vec![]);
        anonymous.add(&[1], &[1], None);
        assert_eq!(anonymous.finish().ndcg_over(1, &[0]), None);
    }

    #[test]
    fn revenue_recall_is_omitted_without_revenue() {
        let mut acc = MetricsAccumulator::new(&[3], 10, vec![]);
        acc.add(&[1, 2], &[2], None);
        acc.add(&[1, 2], &[2, 3], Some(&[1.0])); // wrong length: ignored
        acc.add(&[1, 2], &[2], Some(&[-4.0])); // no positive revenue
        let t = acc.finish();
        assert_eq!(t.customers, 3);
        assert!(t.values.iter().all(|(m, _)| *m != Metric::RevenueRecall));
        assert_eq!(t.get(Metric::RevenueRecall, 3), None);
        assert_eq!(t.mean_popularity, vec![0.0]);
    }

    #[test]
    fn odd_input_does_not_panic() {
        let empty = MetricsAccumulator::new(&[10], 0, vec![]).finish();
        assert_eq!(empty.customers, 0);
        assert_eq!(empty.get(Metric::Ndcg, 10), Some(0.0));
        assert_eq!(empty.coverage, vec![0.0]);

        let mut acc = MetricsAccumulator::new(&[0, 2], 3, vec![1.0; 3]);
        acc.add(&[], &[1], Some(&[f64::NAN]));
        acc.add(&[7, 1], &[1, 7], Some(&[f64::INFINITY, 2.0])); // item 7 is beyond the catalogue
        acc.add(&[1], &[], None); // not counted
        let t = acc.finish();
        assert_eq!(t.ks, vec![2]);
        assert_eq!(t.customers, 2);
        assert_eq!(t.get(Metric::Recall, 2), Some(0.5));
        assert_eq!(t.get(Metric::RevenueRecall, 2), Some(1.0));
        assert_eq!(t.coverage, vec![1.0 / 3.0]);
        assert_eq!(t.mean_popularity, vec![0.5]);
        assert!(t.values.iter().flat_map(|(_, v)| v).all(|v| v.is_finite()));

        let mut none = MetricsAccumulator::new(&[], 3, vec![]);
        none.add(&[1], &[1], None);
        assert!(none.finish().ks.is_empty());
    }
}
