//! Evaluation: split a purchase log, fit on the training part, score the test customers
//! against every item, measure, report.
//!
//! [`split`] marks rows training or test; [`prepare`] builds the training interactions
//! and each test customer's held-out items; [`Prepared::evaluate`] fits one configuration
//! and measures it on two targets: the held-out items the customer had not bought before
//! (what collaborative filtering is for) and every held-out item (repeat purchases count,
//! where "buy again" is hard to beat). Rankings are over the whole catalogue, never over
//! sampled negatives. Customers without training purchases (cold) are left out and
//! counted. [`metrics`] defines and accumulates the measures; [`report`] writes them.
//!
//! Architecture invariant: the numbers depend only on the log and the parameters, never
//! on the number of threads (lists are scored in parallel and measured in customer
//! order).

pub mod metrics;
pub mod report;
pub mod select;
pub mod split;

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::algo::Algorithm;
use crate::ids::{CustomerIdx, IdTable, ItemIdx};
use crate::ingest::PurchaseLog;
use crate::matrix::Interactions;
use crate::model::{FitInfo, FitParams, Model};
use crate::offers::upsell::ItemFacts;
use crate::recommend::{Filter, Recommendation};

use metrics::{MetricTable, MetricsAccumulator};
use report::RunReport;
use split::{SplitError, SplitMethod};

/// What counts as a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Held-out items the customer had not bought in training; bought items are never
    /// recommended.
    NewItems,
    /// Every held-out item, repeat purchases included; bought items may be recommended.
    AllItems,
    /// Held-out items not bought in training, in a category the customer bought in
    /// training, and dearer than their latest training purchase there (their up-sell
    /// anchor); set by [`Prepared::mark_upgrades`].
    Upgrades,
    /// Held-out items in a category (at a chosen level) the customer bought nothing of in
    /// training: what cross-sell is for; set by [`Prepared::mark_new_categories`]. Items
    /// without a category are never positives (nobody can say whether they are new).
    NewCategories,
}

impl Target {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Target::NewItems => "new-items",
            Target::AllItems => "all-items",
            Target::Upgrades => "upgrades",
            Target::NewCategories => "new-categories",
        }
    }
}

/// Why an evaluation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The split is impossible.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// A parameter is out of range.
    #[error("{0}")]
    Param(String),
    /// The split leaves no customer to measure.
    #[error("the split leaves no test customer with purchases in both parts ({0})")]
    NoTestCustomers(String),
}

/// What the split produced, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitSummary {
    /// The split, as given.
    pub method: String,
    /// Whether this is the validation split (the test part never used).
    pub validation: bool,
    /// Rows in the training part.
    pub train_rows: u64,
    /// Rows in the test part.
    pub test_rows: u64,
    /// Rows in neither (the test part, under a validation split).
    pub unused_rows: u64,
    /// Customers with training purchases.
    pub train_customers: u64,
    /// Customers with test purchases.
    pub test_customers: u64,
    /// Of those, customers without training purchases: left out (nothing to go on).
    pub cold_customers: u64,
    /// Customers measured on all items.
    pub measured_all: u64,
    /// Customers measured on new items (those with a held-out item not bought before).
    pub measured_new: u64,
    /// Held-out (customer, item) pairs of measured customers.
    pub test_pairs: u64,
    /// Of those, pairs not bought in training.
    pub new_test_pairs: u64,
    /// Held-out pairs whose item nobody bought in training (no recommender can find it).
    pub unknown_item_pairs: u64,
    /// Customers measured on upgrades (after [`Prepared::mark_upgrades`]).
    pub measured_upgrades: u64,
    /// Held-out pairs that are upgrades.
    pub upgrade_pairs: u64,
    /// Customers measured on new categories (after [`Prepared::mark_new_categories`]).
    pub measured_new_categories: u64,
    /// Held-out pairs in a category new to the customer.
    pub new_category_pairs: u64,
}

/// A split ready to measure recommenders on.
#[derive(Debug)]
pub struct Prepared {
    train: Interactions,
    /// Which rows of the log are training rows.
    train_rows: Vec<bool>,
    /// Per measured customer: held-out items (sorted) and what was spent on each.
    test: Vec<Held>,
    /// Per item: the share of training customers who bought it.
    popularity: Vec<f64>,
    has_revenue: bool,
    /// What the split produced.
    pub summary: SplitSummary,
}

#[derive(Debug)]
struct Held {
    customer: CustomerIdx,
    items: Vec<u32>,
    revenue: Vec<f64>,
    /// `new[k]`: `items[k]` was not bought in training.
    new: Vec<bool>,
    /// `upgrade[k]`: `items[k]` is an up-sell of the customer's anchor in its category.
    upgrade: Vec<bool>,
    /// `novel[k]`: `items[k]` is in a category the customer bought nothing of in training.
    novel: Vec<bool>,
}

/// What [`without_items`] took out of a log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Denied items that had rows (gone with them).
    pub items: u64,
    /// Their rows (purchases, returns and seen marks alike).
    pub rows: u64,
    /// Customers who had rows of denied items only (gone with them).
    pub customers: u64,
}

/// The log without any row of the items `deny` marks (one flag per item; postage, fees,
/// anything that is not a product), as if those rows had never been in the file: the
/// denied items' ids go, and those of customers and baskets left without a row; the others
/// keep their natural order. Evaluating on it trains and measures without them (a denied item is
/// never a positive nor recommended), and so does everything else that reads the log (the
/// splits `auto` carves, the upgrades target, the split written out). Filtering inside the
/// split instead would leave the denied items in the id tables and shift a share split's
/// cut-off by their rows.
pub fn without_items(log: &PurchaseLog, deny: &[bool]) -> (PurchaseLog, Removed) {
    let denied = |r: &crate::ingest::LogRow| deny.get(r.item.get()).copied().unwrap_or(false);
    // A customer or basket goes when it had rows and all of them were denied (one without
    // rows stays, as it would in the file without those rows); a denied item always goes.
    // `seen`/`kept`: it has a row, a kept row.
    let mark = |n: usize, of: &dyn Fn(&crate::ingest::LogRow) -> Option<usize>| {
        let (mut seen, mut kept) = (vec![false; n], vec![false; n]);
        for r in &log.rows {
            if let Some(i) = of(r) {
                seen[i] = true;
                kept[i] |= !denied(r);
            }
        }
        let gone = seen.iter().zip(&kept).filter(|(s, k)| **s && !**k).count() as u64;
        (seen.iter().zip(&kept).map(|(s, k)| *k || !*s).collect::<Vec<bool>>(), gone)
    };
    let items_gone = mark(log.items.len(), &|r| Some(r.item.get())).1;
    let items: Vec<bool> = (0..log.items.len()).map(|j| !deny.get(j).copied().unwrap_or(false)).collect();
    let (customers, customers_gone) = mark(log.customers.len(), &|r| Some(r.customer.get()));
    let baskets = mark(log.baskets.as_ref().map_or(0, IdTable::len), &|r| r.basket.map(|b| b as usize)).0;
    // The kept ids, in their (natural) order, and each old index's new one.
    let subset = |table: &IdTable, keep: &[bool]| -> (IdTable, Vec<u32>) {
        let kept: Vec<&str> = table.iter().zip(keep).filter(|(_, k)| **k).map(|(id, _)| id).collect();
        let mut next = 0u32;
        let index = keep
            .iter()
            .map(|&k| {
                next += u32::from(k);
                next.wrapping_sub(1)
            })
            .collect();
        // A subset of a table in natural order is in natural order.
        (IdTable::from_sorted(&kept).unwrap_or_default(), index)
    };
    let (item_table, item_index) = subset(&log.items, &items);
    let (customer_table, customer_index) = subset(&log.customers, &customers);
    let baskets_table = log.baskets.as_ref().map(|t| subset(t, &baskets));
    let rows = log
        .rows
        .iter()
        .filter(|r| !denied(r))
        .map(|r| crate::ingest::LogRow {
            customer: CustomerIdx(customer_index[r.customer.get()]),
            item: ItemIdx(item_index[r.item.get()]),
            basket: r.basket.zip(baskets_table.as_ref()).map(|(b, (_, index))| index[b as usize]),
            ..*r
        })
        .collect::<Vec<_>>();
    let removed = Removed { items: items_gone, rows: (log.rows.len() - rows.len()) as u64, customers: customers_gone };
    let log =
        PurchaseLog { customers: customer_table, items: item_table, baskets: baskets_table.map(|(t, _)| t), rows };
    (log, removed)
}

/// Splits `log` and builds the training part and the test customers' held-out items;
/// `validation`: split the training part again and hold out from it instead.
pub fn prepare(log: &PurchaseLog, method: &SplitMethod, validation: bool) -> Result<Prepared, EvalError> {
    let test = method.test_rows(log, None)?;
    if validation {
        let val = method.validation_rows(log, &test)?;
        build(log, method, val, test, true)
    } else {
        let unused = vec![false; test.len()];
        build(log, method, test, unused, false)
    }
}

/// Splits only the rows `among` marks (the others play no part): how `algorithm = auto`
/// carves its validation rows from the rows it was given.
pub fn prepare_within(log: &PurchaseLog, among: &[bool], method: &SplitMethod) -> Result<Prepared, EvalError> {
    let test = method.test_rows(log, Some(among))?;
    let unused = among.iter().map(|&a| !a).collect();
    build(log, method, test, unused, true)
}

/// The split's parts: `test` rows held out, `unused` rows in neither part.
fn build(
    log: &PurchaseLog,
    method: &SplitMethod,
    test: Vec<bool>,
    unused: Vec<bool>,
    validation: bool,
) -> Result<Prepared, EvalError> {
    let in_train: Vec<bool> = test.iter().zip(&unused).map(|(&t, &u)| !t && !u).collect();
    let (train, _) = log.interactions(&in_train);
    let mut summary = SplitSummary {
        method: method.name().into(),
        validation,
        train_rows: in_train.iter().filter(|&&t| t).count() as u64,
        test_rows: test.iter().filter(|&&t| t).count() as u64,
        unused_rows: unused.iter().filter(|&&u| u).count() as u64,
        train_customers: train.customers_with_purchases() as u64,
        ..SplitSummary::default()
    };

    // Held-out purchases per customer: (customer, item, amount), merged per pair.
    let mut held: Vec<(u32, u32, f64)> = log
        .rows
        .iter()
        .zip(&test)
        .filter(|(r, t)| **t && r.quantity > 0.0)
        .map(|(r, _)| (r.customer.0, r.item.0, r.amount.unwrap_or(0.0)))
        .collect();
    held.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
    let has_revenue = log.rows.iter().any(|r| r.amount.is_some());
    let buyers = crate::algo::baseline::buyers(train.counts());
    let mut customers = Vec::new();
    for rows in held.chunk_by(|a, b| a.0 == b.0) {
        let c = CustomerIdx(rows[0].0);
        summary.test_customers += 1;
        let (bought, _) = train.purchases(c);
        if bought.is_empty() {
            summary.cold_customers += 1;
            continue;
        }
        let mut h = Held {
            customer: c,
            items: Vec::new(),
            revenue: Vec::new(),
            new: Vec::new(),
            upgrade: Vec::new(),
            novel: Vec::new(),
        };
        for pair in rows.chunk_by(|a, b| a.1 == b.1) {
            let j = pair[0].1;
            h.items.push(j);
            h.revenue.push(pair.iter().map(|p| p.2).sum());
            h.new.push(bought.binary_search(&j).is_err());
            h.upgrade.push(false);
            h.novel.push(false);
            summary.unknown_item_pairs += u64::from(buyers[j as usize] == 0);
        }
        summary.test_pairs += h.items.len() as u64;
        let new = h.new.iter().filter(|&&n| n).count() as u64;
        summary.new_test_pairs += new;
        summary.measured_new += u64::from(new > 0);
        customers.push(h);
    }
    summary.measured_all = customers.len() as u64;
    if customers.is_empty() {
        return Err(EvalError::NoTestCustomers(format!(
            "{} training rows, {} test rows, {} test customers of whom {} have no training purchases",
            summary.train_rows, summary.test_rows, summary.test_customers, summary.cold_customers
        )));
    }
    let with_purchases = (train.customers_with_purchases() as f64).max(1.0);
    let popularity = buyers.iter().map(|&b| f64::from(b) / with_purchases).collect();
    Ok(Prepared { train, train_rows: in_train, test: customers, popularity, has_revenue, summary })
}

impl Prepared {
    /// The training interactions.
    pub fn train(&self) -> &Interactions {
        &self.train
    }

    /// Which rows of the log are training rows.
    pub fn train_rows(&self) -> &[bool] {
        &self.train_rows
    }

    /// The measured customers, in index order.
    pub fn customers(&self) -> impl ExactSizeIterator<Item = CustomerIdx> + '_ {
        self.test.iter().map(|h| h.customer)
    }

    /// Marks the held-out items that are upgrades (see [`Target::Upgrades`]) by `facts`
    /// over the log's items, and counts them in the summary.
    pub fn mark_upgrades(&mut self, facts: &ItemFacts) {
        let mut anchors = Vec::new();
        let (mut customers, mut pairs) = (0, 0);
        for h in &mut self.test {
            let (items, _) = self.train.purchases(h.customer);
            crate::offers::upsell::anchors(facts, items, self.train.purchase_times(h.customer), &mut anchors);
            for (k, &j) in h.items.iter().enumerate() {
                let (category, price, _) = facts.get(j);
                h.upgrade[k] = h.new[k]
                    && match (category, price) {
                        (Some(c), Some(p)) => anchors
                            .binary_search_by_key(&c, |a| a.category)
                            .is_ok_and(|i| facts.price(anchors[i].item).is_some_and(|pa| p > pa)),
                        _ => false,
                    };
            }
            let n = h.upgrade.iter().filter(|&&u| u).count() as u64;
            pairs += n;
            customers += u64::from(n > 0);
        }
        self.summary.measured_upgrades = customers;
        self.summary.upgrade_pairs = pairs;
    }

    /// Marks the held-out items in a category the customer bought nothing of in training
    /// (see [`Target::NewCategories`]): `category[j]` is item `j`'s category over the log's
    /// items (`None`: none known). Counts them in the summary.
    pub fn mark_new_categories(&mut self, category: &[Option<u32>]) {
        let of = |j: u32| category.get(j as usize).copied().flatten();
        let (mut customers, mut pairs) = (0, 0);
        let mut had: Vec<u32> = Vec::new();
        for h in &mut self.test {
            had.clear();
            had.extend(self.train.purchases(h.customer).0.iter().filter_map(|&j| of(j)));
            had.sort_unstable();
            for (k, &j) in h.items.iter().enumerate() {
                // (An item bought in training is in one of the customer's categories.)
                h.novel[k] = of(j).is_some_and(|g| had.binary_search(&g).is_err());
            }
            let n = h.novel.iter().filter(|&&u| u).count() as u64;
            pairs += n;
            customers += u64::from(n > 0);
        }
        self.summary.measured_new_categories = customers;
        self.summary.new_category_pairs = pairs;
    }

    /// Fits `params` on the training part.
    pub fn fit(&self, params: &FitParams) -> Result<Model, EvalError> {
        Model::fit(self.train.clone(), params, FitInfo::default()).map_err(|e| EvalError::Param(e.reason()))
    }

    /// Fits `params` on the training part and measures it on each target at each cut-off
    /// in `ks`. Buy-again recommends only bought items, so it is not measured on new items
    /// or upgrades.
    pub fn evaluate(
        &self,
        label: &str,
        params: &FitParams,
        ks: &[usize],
        targets: &[Target],
    ) -> Result<Vec<RunReport>, EvalError> {
        check_ks(ks)?;
        let t0 = Instant::now();
        let model = self.fit(params)?;
        self.evaluate_model(label, &model, t0.elapsed().as_secs_f64(), ks, targets)
    }

    /// Measures a model fitted on the training part (see [`Prepared::evaluate`]).
    pub fn evaluate_model(
        &self,
        label: &str,
        model: &Model,
        fit_seconds: f64,
        ks: &[usize],
        targets: &[Target],
    ) -> Result<Vec<RunReport>, EvalError> {
        check_ks(ks)?;
        let mut runs = Vec::new();
        for &target in targets {
            if target != Target::AllItems && model.params().algorithm == Algorithm::BuyAgain {
                continue;
            }
            let filter = Filter { include_bought: target == Target::AllItems, ..Filter::default() };
            let filter = model.filter(&filter).map_err(|e| EvalError::Param(e.0))?;
            let scorer = model.scorer(&filter);
            let n = ks.iter().copied().max().unwrap_or(0);
            let t1 = Instant::now();
            let lists: Vec<Vec<u32>> = self
                .test
                .par_iter()
                .map_init(
                    || (scorer.scratch(), Vec::<Recommendation>::new()),
                    |(s, out), h| {
                        scorer.recommend(&scorer.query(h.customer), n, s, out);
                        out.iter().map(|r| r.item.0).collect()
                    },
                )
                .collect();
            let score_seconds = t1.elapsed().as_secs_f64();
            let table = self.measure(target, ks, |k| &lists[k]);
            runs.push(RunReport {
                algorithm: label.into(),
                target: target.name().into(),
                params: Some(*model.params()),
                selection: None,
                baseline: model.params().algorithm == Algorithm::Popularity
                    && matches!(target, Target::NewItems | Target::AllItems),
                fit_seconds,
                score_seconds,
                table,
            });
        }
        Ok(runs)
    }

    /// Measures ready-made ranked lists (for example another tool's output) on `target`:
    /// `list(customer)` is the customer's items, best first.
    pub fn measure_lists<'a>(
        &self,
        target: Target,
        ks: &[usize],
        list: impl Fn(CustomerIdx) -> &'a [u32],
    ) -> Result<MetricTable, EvalError> {
        check_ks(ks)?;
        Ok(self.measure(target, ks, |k| list(self.test[k].customer)))
    }

    /// Measures one list per measured customer, in the order of [`Prepared::customers`].
    pub fn measure_in_order(&self, target: Target, ks: &[usize], lists: &[Vec<u32>]) -> Result<MetricTable, EvalError> {
        check_ks(ks)?;
        if lists.len() != self.test.len() {
            return Err(EvalError::Param(format!(
                "{} lists for {} measured customers: give one per customer",
                lists.len(),
                self.test.len()
            )));
        }
        Ok(self.measure(target, ks, |k| &lists[k]))
    }

    fn measure<'l>(&self, target: Target, ks: &[usize], list: impl Fn(usize) -> &'l [u32]) -> MetricTable {
        let mut acc = MetricsAccumulator::new(ks, self.train.items().len(), self.popularity.clone());
        let (mut items, mut revenue) = (Vec::new(), Vec::new());
        for (k, h) in self.test.iter().enumerate() {
            items.clear();
            revenue.clear();
            for (x, (&j, &r)) in h.items.iter().zip(&h.revenue).enumerate() {
                let hit = match target {
                    Target::AllItems => true,
                    Target::NewItems => h.new[x],
                    Target::Upgrades => h.upgrade[x],
                    Target::NewCategories => h.novel[x],
                };
                if hit {
                    items.push(j);
                    revenue.push(r);
                }
            }
            if items.is_empty() {
                continue;
            }
            acc.add_for(h.customer.0, list(k), &items, self.has_revenue.then_some(&revenue[..]));
        }
        acc.finish()
    }
}

/// Cut-offs must be given, each from 1 to 1,000.
pub fn check_ks(ks: &[usize]) -> Result<(), EvalError> {
    if ks.is_empty() || ks.iter().any(|&k| !(1..=1000).contains(&k)) {
        return Err(EvalError::Param(format!("cut-offs k must be between 1 and 1000, got {ks:?}")));
    }
    Ok(())
}
