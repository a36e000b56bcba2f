//! Up-sell: what to offer a customer next in a category they already buy, and when.
//!
//! An *upgrade* is a directed pair of items of one category: B is at least `min_step`
//! dearer than A, or of a higher grade (a national brand after a private label, say) at no
//! lower price. [`UpgradeModel::learn`] walks each customer's purchases in time order and
//! counts each upgrade pair once per customer when B was bought after A within the window,
//! with the days from the last A before it to that B. A pair's count O is compared with the
//! count expected if B merely took its share of the category's later purchases: over the
//! N_A customers who bought A, each then buying k other items of its category,
//! E = Σ 1 - (1 - p_B)^k, with p_B the share of the category's later purchases that were B
//! (the correction of Amazon's item-to-item recommender). A path is kept when at least
//! `min_path_count` customers took it and its score, the excess (O - E) / √E or Dunning's signed
//! log-likelihood ratio, reaches `min_score`.
//!
//! Where customers are too few, a tier fallback speaks: each category's items fall into
//! price tiers (quantiles of the sold items' prices), and the *up rate* of a tier is the
//! share of the customers buying an item at that tier who later bought an upgrade of it
//! (shrunk towards every category's rate for that tier). A candidate's fallback probability
//! is the anchor tier's up rate times the candidate's share of the buyers of all the
//! anchor's upgrades; a path's probability is its count shrunk towards that:
//! (O + α p_fb) / (N_A + α). Rates are over every buyer of the anchor, so they include how
//! likely the customer is to buy in the category again at all.
//!
//! [`UpSell::offers`]: a customer's anchor in each category is their latest purchase there;
//! candidates are the anchor's upgrades they do not own, priced at most `price_cap` times
//! the dearest item they bought in the category; the score is the upgrade probability,
//! halved every `anchor_half_life` since the anchor purchase, blended geometrically with the
//! collaborative model's affinity a for the candidate (scaled to the customer's best, at
//! least [`AFFINITY_FLOOR`]): p^(1 - w) a^w. A product, not a sum, because the two answer
//! different questions (will this customer buy in the category again and step up from this
//! anchor; is this item to their taste) and an offer needs both: on the validation splits
//! of The Complete Journey and Online Retail it ranked better than (1 - w) p + w p a. Each
//! offer says when: the anchor's date plus the path's median delay, else the category's
//! median upgrade delay, else its median repurchase interval.
//!
//! Architecture invariant: per-customer partial counts are merged by sorting on full keys
//! and adding integers, so the model does not depend on the number of threads; scoring does
//! no I/O and cannot fail.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::batch::{BatchStats, put_display, write_field};
use crate::ids::{CustomerIdx, IdTable, ItemIdx};
use crate::ingest::PurchaseLog;
use crate::model::Model;
use crate::offers::catalog::{Catalog, CategoryIdx};
use crate::recommend::{Scorer, Scratch};
use crate::time::DAY;

/// How a pair's count is compared with its expected count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairMeasure {
    /// (O - E) / √E: how many standard deviations above chance.
    Excess,
    /// Dunning's log-likelihood ratio G², negative when the pair is rarer than chance.
    Llr,
}

impl std::str::FromStr for PairMeasure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "excess" => Ok(PairMeasure::Excess),
            "llr" => Ok(PairMeasure::Llr),
            other => Err(format!("unknown pair measure {other:?}; accepted: excess, llr")),
        }
    }
}

/// Up-sell parameters. Validate with [`UpsellParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpsellParams {
    /// B is an upgrade of A when at least this share dearer (0.01 = 1%; the default: any
    /// real step up, which is what a customer who trades up buys, scored better on the
    /// validation splits than 5% or 10%).
    pub min_step: f64,
    /// B counts only when bought at most this many days after A.
    pub window_days: u32,
    /// Customers who must have taken a path for it to be kept.
    pub min_path_count: u32,
    /// How a path's count is compared with chance.
    pub pair_measure: PairMeasure,
    /// Paths scoring below this are dropped (0: at least as often as chance).
    pub min_score: f64,
    /// Price tiers per category for the fallback, 2 to 20.
    pub tiers: u32,
    /// Pseudo-customers of shrinkage towards the fallback (α).
    pub smoothing: f64,
    /// Offers cost at most this multiple of the dearest item the customer bought in the
    /// category (0: no cap).
    pub price_cap: f64,
    /// Weight of the collaborative affinity in an offer's score, 0 to 1: the exponent w of
    /// p^(1 - w) a^w (0: probability alone; 1: affinity alone among the upgrades).
    pub affinity_weight: f64,
    /// Fallback candidates kept per anchor item, most bought first.
    pub fallback: usize,
    /// An offer's probability halves for every this many days since the anchor was bought,
    /// counted back from the newest purchase (0: anchors do not age).
    pub anchor_half_life: f64,
    /// Learn nothing from purchase order (for logs without times): offers come from the
    /// tiers alone, by popularity.
    pub tiers_only: bool,
}

impl Default for UpsellParams {
    fn default() -> Self {
        UpsellParams {
            min_step: 0.01,
            window_days: 365,
            min_path_count: 3,
            pair_measure: PairMeasure::Excess,
            min_score: 0.0,
            tiers: 4,
            smoothing: 10.0,
            price_cap: 4.0,
            affinity_weight: 0.65,
            fallback: 100,
            anchor_half_life: 120.0,
            tiers_only: false,
        }
    }
}

impl UpsellParams {
    /// Checks ranges; the message names the parameter (as the field, which is also the
    /// command-line flag with dashes).
    pub fn check(&self) -> Result<(), String> {
        let nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(format!("{name} must be a number >= 0, got {v}")) }
        };
        nonneg("min_step", self.min_step)?;
        nonneg("smoothing", self.smoothing)?;
        nonneg("price_cap", self.price_cap)?;
        nonneg("anchor_half_life", self.anchor_half_life)?;
        if self.window_days == 0 {
            return Err("window_days must be at least 1".into());
        }
        if self.min_path_count == 0 {
            return Err("min_path_count must be at least 1".into());
        }
        if !self.min_score.is_finite() {
            return Err(format!("min_score must be a number, got {}", self.min_score));
        }
        if !(2..=20).contains(&self.tiers) {
            return Err(format!("tiers must be from 2 to 20, got {}", self.tiers));
        }
        if self.price_cap > 0.0 && self.price_cap < 1.0 {
            return Err(format!(
                "price_cap is a multiple of the dearest price paid in the category: 0 (no cap) or at least 1, got {}",
                self.price_cap
            ));
        }
        if !(0.0..=1.0).contains(&self.affinity_weight) {
            return Err(format!("affinity_weight must be between 0 and 1, got {}", self.affinity_weight));
        }
        if self.fallback == 0 {
            return Err("fallback must be at least 1".into());
        }
        Ok(())
    }
}

/// What up-sell knows of each item: category, price and grade, indexed like the log's
/// items. Items without a category or a positive price take no part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFacts {
    category: Vec<Option<u32>>,
    price: Vec<Option<f64>>,
    grade: Vec<Option<u8>>,
    categories: usize,
}

/// How the catalogue matched the items.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FactsSummary {
    /// Items of the purchases.
    pub items: usize,
    /// Of those, not in the catalogue.
    pub not_in_catalog: Vec<u32>,
    /// In the catalogue without a category at the level.
    pub no_category: usize,
    /// In the catalogue without a price.
    pub no_price: usize,
    /// In the catalogue at a price of 0 (a negative price is a catalogue row error).
    pub zero_price: usize,
    /// With a brand not among the grades (when grades were given).
    pub ungraded: usize,
    /// Items with both a category and a positive price: the ones up-sell can use.
    pub usable: usize,
}

impl ItemFacts {
    /// Facts from parallel per-item arrays (`category` values are any group numbers);
    /// prices that are not positive and finite are dropped.
    pub fn new(category: Vec<Option<u32>>, price: Vec<Option<f64>>, grade: Vec<Option<u8>>) -> Self {
        assert!(category.len() == price.len() && price.len() == grade.len(), "one entry per item in each array");
        let price = price.into_iter().map(|p| p.filter(|p| p.is_finite() && *p > 0.0)).collect();
        let categories = category.iter().flatten().map(|&c| c as usize + 1).max().unwrap_or(0);
        ItemFacts { category, price, grade, categories }
    }

    /// Facts for `items` from a catalogue: the category at `level` (0 = top; `None`: each
    /// item's own, deepest category), the price, and the brand's position in `grades`
    /// (lowest first), when given.
    pub fn from_catalog(
        catalog: &Catalog,
        items: &IdTable,
        level: Option<usize>,
        grades: &[String],
    ) -> (ItemFacts, FactsSummary) {
        let aligned = catalog.align(items);
        let mut s = FactsSummary { items: items.len(), not_in_catalog: aligned.missing.clone(), ..Default::default() };
        let (mut category, mut price, mut grade) = (Vec::new(), Vec::new(), Vec::new());
        for c in &aligned.per_item {
            let Some(c) = *c else {
                category.push(None);
                price.push(None);
                grade.push(None);
                continue;
            };
            let it = catalog.item(c);
            let node = match level {
                Some(l) => it.category.get(l),
                None => it.category.last(),
            };
            s.no_category += usize::from(node.is_none());
            s.no_price += usize::from(it.price.is_none());
            s.zero_price += usize::from(it.price == Some(0.0));
            let g = if grades.is_empty() {
                None
            } else {
                let g = it.brand.and_then(|b| grades.iter().position(|x| x == b)).map(|g| g as u8);
                s.ungraded += usize::from(g.is_none());
                g
            };
            category.push(node.map(|n| n.0));
            price.push(it.price);
            grade.push(g);
        }
        let facts = ItemFacts::new(category, price, grade);
        s.usable = (0..facts.len()).filter(|&i| facts.usable(i as u32)).count();
        (facts, s)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.category.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.category.is_empty()
    }

    /// The item's category, price and grade.
    pub fn get(&self, i: u32) -> (Option<u32>, Option<f64>, Option<u8>) {
        let i = i as usize;
        (self.category[i], self.price[i], self.grade[i])
    }

    /// The item's price, when positive.
    pub fn price(&self, i: u32) -> Option<f64> {
        self.price[i as usize]
    }

    /// The item's category.
    pub fn category(&self, i: u32) -> Option<u32> {
        self.category[i as usize]
    }

    fn usable(&self, i: u32) -> bool {
        self.category[i as usize].is_some() && self.price[i as usize].is_some()
    }

    /// Whether `b` is an upgrade of `a`: same category, and at least `min_step` dearer, or
    /// of a higher grade at no lower price.
    pub fn is_upgrade(&self, a: u32, b: u32, min_step: f64) -> bool {
        let (ca, pa, ga) = self.get(a);
        let (cb, pb, gb) = self.get(b);
        match (ca, pa, cb, pb) {
            (Some(ca), Some(pa), Some(cb), Some(pb)) if ca == cb && a != b => {
                pb >= pa * (1.0 + min_step) || (pb >= pa && matches!((ga, gb), (Some(x), Some(y)) if y > x))
            }
            _ => false,
        }
    }
}

/// A customer's latest purchase in one category: what an up-sell offer builds on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    /// The category.
    pub category: u32,
    /// The latest item bought in it (the dearer of two bought at the same time; without
    /// times, the dearest).
    pub item: u32,
    /// When, if the purchases have times.
    pub time: Option<i64>,
    /// The dearest price the customer paid for an item of the category.
    pub max_price: f64,
}

/// The customer's anchor in each category they bought a usable item of, by category.
/// `items` sorted, `times` aligned with them.
pub fn anchors(facts: &ItemFacts, items: &[u32], times: Option<&[i64]>, out: &mut Vec<Anchor>) {
    out.clear();
    for (k, &i) in items.iter().enumerate() {
        let (Some(category), Some(price), _) = facts.get(i) else { continue };
        out.push(Anchor { category, item: i, time: times.map(|t| t[k]), max_price: price });
    }
    out.sort_by_key(|a| a.category);
    let key = |a: &Anchor, f: &ItemFacts| (a.time.unwrap_or(i64::MIN), f.price[a.item as usize].unwrap_or(0.0));
    let mut w = 0;
    for r in 0..out.len() {
        if w > 0 && out[w - 1].category == out[r].category {
            let (old, new) = (out[w - 1], out[r]);
            let max_price = old.max_price.max(new.max_price);
            let (ko, kn) = (key(&old, facts), key(&new, facts));
            // Later wins, then dearer; on a full tie the lower index (already in place).
            if kn.0 > ko.0 || (kn.0 == ko.0 && kn.1 > ko.1) {
                out[w - 1] = new;
            }
            out[w - 1].max_price = max_price;
        } else {
            out[w] = out[r];
            w += 1;
        }
    }
    out.truncate(w);
}

/// A learned upgrade path from an anchor item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpgradePath {
    /// The upgrade.
    pub to: ItemIdx,
    /// Customers who bought the anchor and later the upgrade (O).
    pub customers: u32,
    /// Customers who bought the anchor (N_A).
    pub anchor_customers: u32,
    /// Customers expected to take the path by chance (E).
    pub expected: f64,
    /// The path's score by the chosen measure.
    pub score: f64,
    /// Probability that a customer who bought the anchor later buys the upgrade, shrunk
    /// towards the tier fallback.
    pub probability: f64,
    /// Median days from the anchor to the upgrade.
    pub median_days: f32,
}

/// What learning saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LearnSummary {
    /// Purchase rows used (kept, bought, with a time, of a usable item).
    pub rows_used: u64,
    /// Purchase rows without a time (not ordered; still count as buyers).
    pub rows_without_time: u64,
    /// Purchase rows of items without a category or price.
    pub rows_without_facts: u64,
    /// Customers with a later purchase in a category they had bought before.
    pub customers_with_sequences: u64,
    /// Distinct (anchor, upgrade) pairs seen at least once.
    pub pairs_seen: u64,
    /// Paths kept (count and score thresholds met).
    pub paths: u64,
    /// Anchor items with at least one path.
    pub anchors_with_paths: u64,
}

/// Upgrade paths, tiers and delays learned from ordered purchases.
#[derive(Debug, Clone)]
pub struct UpgradeModel {
    params: UpsellParams,
    facts: ItemFacts,
    /// Price tier of each usable item within its category.
    tier: Vec<Option<u8>>,
    /// Customers who bought each item.
    buyers: Vec<u32>,
    /// Per category, its sold usable items, most buyers first (then index).
    popular_at: Vec<usize>,
    popular: Vec<u32>,
    /// Per anchor item, its paths, best score first.
    paths_at: Vec<usize>,
    paths: Vec<UpgradePath>,
    /// Per anchor item, its fallback candidates (item, probability), most bought first.
    fallback_at: Vec<usize>,
    fallback: Vec<(u32, f64)>,
    /// Per anchor item, the buyers of all its upgrades (the fallback's denominator).
    upgrade_buyers: Vec<u64>,
    /// Up rate per (category, tier), smoothed.
    up_rate: Vec<f64>,
    /// Per category, the median days of its upgrades and between its repurchases.
    upgrade_days: Vec<Option<f32>>,
    repurchase_days: Vec<Option<f32>>,
    /// What learning saw.
    pub summary: LearnSummary,
}

/// One customer's partial counts (summed over customers by sorting and adding).
#[derive(Default)]
struct Partial {
    buyers: Vec<u32>,
    /// (anchor, upgrade, days) once per customer.
    pairs: Vec<(u32, u32, u32)>,
    /// (anchor, k): the customer bought the anchor, then k other items of its category
    /// (k may be 0).
    follows: Vec<(u32, u32)>,
    /// Items bought after another of their category (once per customer).
    later: Vec<u32>,
    /// (category, anchor tier, upgraded afterwards) per customer and anchor.
    steps: Vec<(u32, u8, bool)>,
    /// (category, days between consecutive purchase days in it).
    gaps: Vec<(u32, u32)>,
    /// Per category: customers with a timed purchase in it.
    active: Vec<u32>,
    customers: u64,
    rows_used: u64,
    rows_without_time: u64,
    rows_without_facts: u64,
}

impl Partial {
    fn merge(mut self, mut o: Partial) -> Partial {
        self.buyers.append(&mut o.buyers);
        self.pairs.append(&mut o.pairs);
        self.follows.append(&mut o.follows);
        self.later.append(&mut o.later);
        self.steps.append(&mut o.steps);
        self.gaps.append(&mut o.gaps);
        self.active.append(&mut o.active);
        self.customers += o.customers;
        self.rows_used += o.rows_used;
        self.rows_without_time += o.rows_without_time;
        self.rows_without_facts += o.rows_without_facts;
        self
    }
}

/// How often each of `0..n` occurs in `v`.
fn count(v: &[u32], n: usize) -> Vec<u32> {
    let mut c = vec![0u32; n];
    for &x in v {
        c[x as usize] += 1;
    }
    c
}

/// Turns per-slot counts (in slots `1..`) into start offsets, in place.
fn offsets(at: &mut [usize]) {
    for k in 1..at.len() {
        at[k] += at[k - 1];
    }
}

/// Up rates per (category, tier): the share of customers who upgraded after buying in
/// that tier, shrunk towards the rate of the tier over all categories (1 everywhere when
/// only tiers are used).
fn up_rates(steps: &[(u32, u8, bool)], cats: usize, params: &UpsellParams) -> Vec<f64> {
    let t = params.tiers as usize;
    let (mut up, mut tot) = (vec![0u64; cats * t], vec![0u64; cats * t]);
    let (mut gup, mut gtot) = (vec![0u64; t], vec![0u64; t]);
    for &(c, tr, upgraded) in steps {
        let k = c as usize * t + tr as usize;
        tot[k] += 1;
        gtot[tr as usize] += 1;
        if upgraded {
            up[k] += 1;
            gup[tr as usize] += 1;
        }
    }
    let alpha = params.smoothing;
    (0..cats * t)
        .map(|k| {
            let g = if gtot[k % t] > 0 { gup[k % t] as f64 / gtot[k % t] as f64 } else { 0.0 };
            if params.tiers_only {
                1.0
            } else if tot[k] as f64 + alpha > 0.0 {
                (up[k] as f64 + alpha * g) / (tot[k] as f64 + alpha)
            } else {
                g
            }
        })
        .collect()
}

/// Per category, the sold usable items, most buyers first (then by index): the offsets
/// of each category's run and the runs.
fn popular_by_category(facts: &ItemFacts, buyers: &[u32], cats: usize) -> (Vec<usize>, Vec<u32>) {
    let mut by_cat: Vec<(u32, std::cmp::Reverse<u32>, u32)> = (0..buyers.len() as u32)
        .filter(|&i| facts.usable(i) && buyers[i as usize] > 0)
        .map(|i| (facts.category[i as usize].unwrap_or(0), std::cmp::Reverse(buyers[i as usize]), i))
        .collect();
    by_cat.sort_unstable();
    let mut popular_at = vec![0usize; cats + 1];
    for &(c, _, _) in &by_cat {
        popular_at[c as usize + 1] += 1;
    }
    offsets(&mut popular_at);
    (popular_at, by_cat.iter().map(|x| x.2).collect())
}

/// What the tier fallback's probabilities are computed from.
struct Fallback<'a> {
    facts: &'a ItemFacts,
    tier: &'a [Option<u8>],
    buyers: &'a [u32],
    up_rate: &'a [f64],
    /// Per anchor, the buyers of all its upgrades.
    upgrade_buyers: &'a [u64],
    tiers: usize,
}

impl Fallback<'_> {
    /// The fallback probability of upgrading from `a` to `b`: the anchor's up rate, split
    /// over its upgrades by their buyers.
    fn probability(&self, a: u32, b: u32) -> f64 {
        let (Some(c), ..) = self.facts.get(a) else { return 0.0 };
        let total = self.upgrade_buyers[a as usize];
        match self.tier[a as usize] {
            Some(tr) if total > 0 => {
                self.up_rate[c as usize * self.tiers + tr as usize] * f64::from(self.buyers[b as usize]) / total as f64
            }
            _ => 0.0,
        }
    }
}

/// Per sold anchor item, its upgrades among its category's sold items (most buyers first,
/// at most `params.fallback`) with their fallback probabilities: the buyers of all its
/// upgrades, and the lists as offsets and (item, probability) runs.
fn fallbacks(
    facts: &ItemFacts,
    tier: &[Option<u8>],
    buyers: &[u32],
    up_rate: &[f64],
    (popular_at, popular): (&[usize], &[u32]),
    params: &UpsellParams,
) -> (Vec<u64>, Vec<usize>, Vec<(u32, f64)>) {
    let per_anchor: Vec<(u64, Vec<u32>)> = (0..buyers.len() as u32)
        .into_par_iter()
        .map(|a| {
            let (Some(c), Some(_), _) = facts.get(a) else { return (0, Vec::new()) };
            if buyers[a as usize] == 0 {
                return (0, Vec::new());
            }
            let pool = &popular[popular_at[c as usize]..popular_at[c as usize + 1]];
            let mut total = 0u64;
            let mut list = Vec::new();
            for &b in pool {
                if facts.is_upgrade(a, b, params.min_step) {
                    total += u64::from(buyers[b as usize]);
                    if list.len() < params.fallback {
                        list.push(b);
                    }
                }
            }
            (total, list)
        })
        .collect();
    let upgrade_buyers: Vec<u64> = per_anchor.iter().map(|x| x.0).collect();
    let fb = Fallback { facts, tier, buyers, up_rate, upgrade_buyers: &upgrade_buyers, tiers: params.tiers as usize };
    let mut fallback_at = Vec::with_capacity(buyers.len() + 1);
    let mut fallback = Vec::new();
    fallback_at.push(0);
    for (a, (_, list)) in per_anchor.iter().enumerate() {
        fallback.extend(list.iter().map(|&b| (b, fb.probability(a as u32, b))));
        fallback_at.push(fallback.len());
    }
    (upgrade_buyers, fallback_at, fallback)
}

/// The scored upgrade paths (anchor, upgrade) counted at least `min_path_count` times and
/// scoring at least `min_score`, per anchor best score first: offsets per anchor and the
/// paths. Sorts `p.pairs` and `p.follows`; fills the summary's path counts.
fn learn_paths(
    p: &mut Partial,
    fb: &Fallback<'_>,
    items: usize,
    cats: usize,
    params: &UpsellParams,
    summary: &mut LearnSummary,
) -> (Vec<usize>, Vec<UpgradePath>) {
    let facts = fb.facts;
    let later = count(&p.later, items);
    let active = count(&p.active, cats);
    let mut later_total = vec![0u64; cats];
    for (c, &n) in facts.category.iter().zip(&later) {
        if let Some(c) = c {
            later_total[*c as usize] += u64::from(n);
        }
    }
    // Histograms of k per anchor.
    p.follows.par_sort_unstable();
    let mut hist_at = vec![0usize; items + 1];
    let mut hist: Vec<(u32, u32)> = Vec::new();
    for g in p.follows.chunk_by(|x, y| x == y) {
        hist_at[g[0].0 as usize + 1] += 1;
        hist.push((g[0].1, g.len() as u32));
    }
    offsets(&mut hist_at);

    p.pairs.par_sort_unstable();
    let alpha = params.smoothing;
    let mut paths_by_anchor: Vec<(u32, UpgradePath)> = Vec::new();
    let mut days: Vec<u32> = Vec::new();
    for g in p.pairs.chunk_by(|x, y| (x.0, x.1) == (y.0, y.1)) {
        summary.pairs_seen += 1;
        let (a, b) = (g[0].0, g[0].1);
        let o = g.len() as u32;
        if o < params.min_path_count || params.tiers_only {
            continue;
        }
        let c = facts.category[a as usize].unwrap_or(0) as usize;
        let h = &hist[hist_at[a as usize]..hist_at[a as usize + 1]];
        let n_a: u32 = h.iter().map(|x| x.1).sum();
        let p_b = if later_total[c] > 0 { f64::from(later[b as usize]) / later_total[c] as f64 } else { 0.0 };
        let expected: f64 = h.iter().map(|&(k, n)| f64::from(n) * (1.0 - (1.0 - p_b).powi(k as i32))).sum();
        let score = match params.pair_measure {
            PairMeasure::Excess => (f64::from(o) - expected) / expected.max(1e-9).sqrt(),
            PairMeasure::Llr => {
                let (o, n_a, l_b, n_c) =
                    (f64::from(o), f64::from(n_a), f64::from(later[b as usize]), f64::from(active[c]));
                signed_llr(o, (n_a - o).max(0.0), (l_b - o).max(0.0), (n_c - n_a - l_b + o).max(0.0))
            }
        };
        if score < params.min_score {
            continue;
        }
        days.clear();
        days.extend(g.iter().map(|x| x.2));
        let probability = (f64::from(o) + alpha * fb.probability(a, b)) / (f64::from(n_a) + alpha);
        paths_by_anchor.push((
            a,
            UpgradePath {
                to: ItemIdx(b),
                customers: o,
                anchor_customers: n_a,
                expected,
                score,
                probability,
                median_days: median(&days).unwrap_or(0.0),
            },
        ));
    }
    paths_by_anchor.sort_by(|x, y| x.0.cmp(&y.0).then(y.1.score.total_cmp(&x.1.score)).then(x.1.to.cmp(&y.1.to)));
    let mut paths_at = vec![0usize; items + 1];
    for (a, _) in &paths_by_anchor {
        paths_at[*a as usize + 1] += 1;
    }
    summary.anchors_with_paths = paths_at.iter().filter(|&&n| n > 0).count() as u64;
    offsets(&mut paths_at);
    summary.paths = paths_by_anchor.len() as u64;
    (paths_at, paths_by_anchor.into_iter().map(|x| x.1).collect())
}

/// The median of the values of each category's run in `v` ((category, value), sorted).
fn median_per_category(v: &[(u32, u32)], cats: usize) -> Vec<Option<f32>> {
    let mut out = vec![None; cats];
    for g in v.chunk_by(|x, y| x.0 == y.0) {
        let d: Vec<u32> = g.iter().map(|x| x.1).collect();
        out[g[0].0 as usize] = median(&d);
    }
    out
}

fn median(sorted: &[u32]) -> Option<f32> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f32),
        _ => Some((sorted[n / 2 - 1] as f32 + sorted[n / 2] as f32) / 2.0),
    }
}

/// x ln x, 0 at 0.
fn xlx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// Dunning's G² of a 2x2 table, signed: negative when a (row 1) is rarer than c (row 2).
fn signed_llr(a: f64, b: f64, c: f64, d: f64) -> f64 {
    let n = a + b + c + d;
    let g = 2.0 * (xlx(a) + xlx(b) + xlx(c) + xlx(d) + xlx(n) - xlx(a + b) - xlx(c + d) - xlx(a + c) - xlx(b + d));
    let g = g.max(0.0);
    if a * (c + d) >= c * (a + b) { g } else { -g }
}

impl UpgradeModel {
    /// Learns from the purchase rows of `log` marked in `keep` (one flag per row), with
    /// `facts` over the log's items (one entry per item: a programming error otherwise).
    pub fn learn(log: &PurchaseLog, keep: &[bool], facts: &ItemFacts, params: &UpsellParams) -> UpgradeModel {
        let items = log.items.len();
        assert_eq!(facts.len(), items, "item facts must have one entry per item of the log");
        let cats = facts.categories;
        // Rows bought, in (customer, time, item) order.
        let mut rows: Vec<(u32, i64, u32)> = log
            .rows
            .iter()
            .zip(keep)
            .filter(|(r, k)| **k && r.quantity > 0.0)
            .map(|(r, _)| (r.customer.0, r.time.unwrap_or(i64::MIN), r.item.0))
            .collect();
        rows.par_sort_unstable();
        let mut sold = vec![false; items];
        for r in &rows {
            sold[r.2 as usize] = true;
        }
        let tier = price_tiers(facts, &sold, params.tiers);
        let mut starts: Vec<usize> = Vec::new();
        for (k, r) in rows.iter().enumerate() {
            if k == 0 || rows[k - 1].0 != r.0 {
                starts.push(k);
            }
        }
        starts.push(rows.len());
        let window = i64::from(params.window_days) * DAY;
        let part = starts
            .par_windows(2)
            .fold(Partial::default, |mut p, w| {
                customer_sequences(&rows[w[0]..w[1]], facts, &tier, window, params, &mut p);
                p
            })
            .reduce(Partial::default, Partial::merge);
        Self::assemble(part, facts.clone(), tier, params, items, cats)
    }

    fn assemble(
        mut p: Partial,
        facts: ItemFacts,
        tier: Vec<Option<u8>>,
        params: &UpsellParams,
        items: usize,
        cats: usize,
    ) -> UpgradeModel {
        let buyers = count(&p.buyers, items);
        let up_rate = up_rates(&p.steps, cats, params);
        let (popular_at, popular) = popular_by_category(&facts, &buyers, cats);
        let (upgrade_buyers, fallback_at, fallback) =
            fallbacks(&facts, &tier, &buyers, &up_rate, (&popular_at, &popular), params);
        let fb = Fallback {
            facts: &facts,
            tier: &tier,
            buyers: &buyers,
            up_rate: &up_rate,
            upgrade_buyers: &upgrade_buyers,
            tiers: params.tiers as usize,
        };
        let mut summary = LearnSummary {
            rows_used: p.rows_used,
            rows_without_time: p.rows_without_time,
            rows_without_facts: p.rows_without_facts,
            customers_with_sequences: p.customers,
            ..LearnSummary::default()
        };
        let (paths_at, paths) = learn_paths(&mut p, &fb, items, cats, params, &mut summary);

        // Delays per category.
        let mut up_days: Vec<(u32, u32)> =
            p.pairs.iter().filter_map(|&(a, _, d)| facts.category[a as usize].map(|c| (c, d))).collect();
        up_days.sort_unstable();
        p.gaps.par_sort_unstable();
        UpgradeModel {
            params: *params,
            upgrade_days: median_per_category(&up_days, cats),
            repurchase_days: median_per_category(&p.gaps, cats),
            facts,
            tier,
            buyers,
            popular_at,
            popular,
            paths_at,
            paths,
            fallback_at,
            fallback,
            upgrade_buyers,
            up_rate,
            summary,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &UpsellParams {
        &self.params
    }

    /// The item facts learned over.
    pub fn facts(&self) -> &ItemFacts {
        &self.facts
    }

    /// The learned paths from an item, best score first.
    pub fn paths(&self, anchor: ItemIdx) -> &[UpgradePath] {
        let a = anchor.get();
        match (self.paths_at.get(a), self.paths_at.get(a + 1)) {
            (Some(&s), Some(&e)) => &self.paths[s..e],
            _ => &[],
        }
    }

    /// The item's price tier within its category (0 = cheapest).
    pub fn tier(&self, item: ItemIdx) -> Option<u8> {
        self.tier.get(item.get()).copied().flatten()
    }

    /// The share of customers who bought at the item's tier and later bought an upgrade
    /// in its category; `None` under `tiers_only`, where nothing is measured.
    pub fn up_rate(&self, item: ItemIdx) -> Option<f64> {
        if self.params.tiers_only {
            return None;
        }
        let c = self.facts.category(item.0)?;
        let tr = self.tier(item)?;
        Some(self.up_rate[c as usize * self.params.tiers as usize + tr as usize])
    }

    /// Buyers of each item in the learning rows.
    pub fn buyers(&self) -> &[u32] {
        &self.buyers
    }

    /// The fallback candidates of an anchor item: (upgrade, probability), most bought first.
    pub fn fallback(&self, anchor: ItemIdx) -> &[(u32, f64)] {
        let a = anchor.get();
        match (self.fallback_at.get(a), self.fallback_at.get(a + 1)) {
            (Some(&s), Some(&e)) => &self.fallback[s..e],
            _ => &[],
        }
    }

    /// Buyers of all the upgrades of an anchor item.
    pub fn upgrade_buyers(&self, anchor: ItemIdx) -> u64 {
        self.upgrade_buyers.get(anchor.get()).copied().unwrap_or(0)
    }

    /// Every upgrade of an anchor item with its probability and basis: the learned paths
    /// (best score first), then the fallback candidates without a path (most bought first).
    pub fn upgrades_of(&self, anchor: ItemIdx) -> impl Iterator<Item = (ItemIdx, f64, Basis)> + '_ {
        let paths = self.paths(anchor);
        let total = self.upgrade_buyers(anchor) as f64;
        let up_rate = self.up_rate(anchor);
        let learned = paths.iter().map(|p| (p.to, p.probability, Basis::Path(*p)));
        let fallback = self.fallback(anchor).iter().filter(move |(b, _)| !paths.iter().any(|p| p.to.0 == *b)).map(
            move |&(b, prob)| {
                let share = f64::from(self.buyers[b as usize]) / total.max(1.0);
                (ItemIdx(b), prob, Basis::Tier { up_rate, share })
            },
        );
        learned.chain(fallback)
    }

    /// When to offer an upgrade of an item of `category` bought at `time`: days after, and
    /// what the delay is based on (a learned path's median comes first).
    pub fn delay(&self, category: u32, path: Option<&UpgradePath>) -> Delay {
        if let Some(p) = path {
            return Delay::Path(p.median_days);
        }
        let c = category as usize;
        match (self.upgrade_days.get(c).copied().flatten(), self.repurchase_days.get(c).copied().flatten()) {
            (Some(d), _) => Delay::Category(d),
            (None, Some(d)) => Delay::Repurchase(d),
            (None, None) => Delay::Unknown,
        }
    }

    /// Baseline: per category the customer bought, the items dearer than their anchor,
    /// most bought first; all categories merged by buyers (then index).
    pub fn popular_upgrades(&self, items: &[u32], times: Option<&[i64]>, n: usize) -> Vec<u32> {
        self.baseline(
            items,
            times,
            n,
            |a, b| matches!((self.facts.price(a), self.facts.price(b)), (Some(pa), Some(pb)) if pb > pa),
        )
    }

    /// Baseline: per category the customer bought, the items one price tier above their
    /// anchor, most bought first; all categories merged by buyers (then index).
    pub fn next_tier(&self, items: &[u32], times: Option<&[i64]>, n: usize) -> Vec<u32> {
        self.baseline(
            items,
            times,
            n,
            |a, b| matches!((self.tier[a as usize], self.tier[b as usize]), (Some(x), Some(y)) if y == x + 1),
        )
    }

    fn baseline(&self, items: &[u32], times: Option<&[i64]>, n: usize, pick: impl Fn(u32, u32) -> bool) -> Vec<u32> {
        let mut anchors_v = Vec::new();
        anchors(&self.facts, items, times, &mut anchors_v);
        let mut cands: Vec<u32> = Vec::new();
        for an in &anchors_v {
            let c = an.category as usize;
            let pool = &self.popular[self.popular_at[c]..self.popular_at[c + 1]];
            cands
                .extend(pool.iter().copied().filter(|&b| pick(an.item, b) && items.binary_search(&b).is_err()).take(n));
        }
        cands.sort_unstable_by_key(|&b| (std::cmp::Reverse(self.buyers[b as usize]), b));
        cands.truncate(n);
        cands
    }
}

/// Price tiers: per category, boundaries at the quantiles of the sold usable items' prices;
/// an item's tier is the number of boundaries at or below its price.
fn price_tiers(facts: &ItemFacts, sold: &[bool], tiers: u32) -> Vec<Option<u8>> {
    let mut by_cat: Vec<(u32, f64)> = (0..facts.len() as u32)
        .filter(|&i| sold[i as usize] && facts.usable(i))
        .map(|i| (facts.category[i as usize].unwrap_or(0), facts.price[i as usize].unwrap_or(0.0)))
        .collect();
    by_cat.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
    let mut bounds: Vec<Vec<f64>> = vec![Vec::new(); facts.categories];
    for g in by_cat.chunk_by(|x, y| x.0 == y.0) {
        let n = g.len();
        let mut b: Vec<f64> = (1..tiers as usize).map(|q| g[q * n / tiers as usize].1).collect();
        b.dedup();
        // A boundary equal to the cheapest price would leave tier 0 empty.
        b.retain(|&x| x > g[0].1);
        bounds[g[0].0 as usize] = b;
    }
    (0..facts.len())
        .map(|i| {
            let (c, p) = (facts.category[i]?, facts.price[i]?);
            Some(bounds[c as usize].iter().filter(|&&b| b <= p).count() as u8)
        })
        .collect()
}

/// One customer's rows (time, then item order) into `p`.
fn customer_sequences(
    rows: &[(u32, i64, u32)],
    facts: &ItemFacts,
    tier: &[Option<u8>],
    window: i64,
    params: &UpsellParams,
    p: &mut Partial,
) {
    let mut distinct: Vec<u32> = rows.iter().map(|r| r.2).collect();
    distinct.sort_unstable();
    distinct.dedup();
    p.buyers.extend_from_slice(&distinct);
    // Usable timed events, by category then time.
    let mut events: Vec<(u32, i64, u32)> = Vec::new();
    for &(_, t, i) in rows {
        if t == i64::MIN {
            p.rows_without_time += 1;
        } else if let (Some(c), Some(_), _) = facts.get(i) {
            events.push((c, t, i));
        } else {
            p.rows_without_facts += 1;
        }
    }
    p.rows_used += events.len() as u64;
    if params.tiers_only {
        return;
    }
    events.sort_unstable();
    let mut any = false;
    let mut last: Vec<(u32, i64)> = Vec::new();
    let mut obs: Vec<(u32, u32, u32)> = Vec::new();
    for cat in events.chunk_by(|x, y| x.0 == y.0) {
        last.clear();
        obs.clear();
        let c = cat[0].0;
        let mut prev_day: Option<i64> = None;
        for group in cat.chunk_by(|x, y| x.1 == y.1) {
            let t = group[0].1;
            let day = t.div_euclid(DAY);
            if let Some(d) = prev_day.filter(|&d| d < day) {
                p.gaps.push((c, (day - d).min(i64::from(u32::MAX)) as u32));
            }
            prev_day = Some(day);
            for (k, e) in group.iter().enumerate() {
                if k > 0 && group[k - 1].2 == e.2 {
                    continue;
                }
                for &(a, ta) in &last {
                    if a != e.2 && t - ta <= window {
                        obs.push((a, e.2, ((t - ta) / DAY) as u32));
                    }
                }
            }
            for e in group {
                match last.iter_mut().find(|x| x.0 == e.2) {
                    Some(x) => x.1 = t,
                    None => last.push((e.2, t)),
                }
            }
        }
        p.active.push(c);
        // First observation of each pair (in time order), then per anchor.
        obs.sort_by_key(|x| (x.0, x.1));
        obs.dedup_by_key(|x| (x.0, x.1));
        // Items never followed by another of the category count as anchors with k = 0.
        for &(a, _) in &last {
            if obs.binary_search_by_key(&a, |x| x.0).is_err() {
                p.follows.push((a, 0));
                if let Some(tr) = tier[a as usize] {
                    p.steps.push((c, tr, false));
                }
            }
        }
        if obs.is_empty() {
            continue;
        }
        any = true;
        for g in obs.chunk_by(|x, y| x.0 == y.0) {
            let a = g[0].0;
            p.follows.push((a, g.len() as u32));
            let mut upgraded = false;
            for &(_, b, d) in g {
                if facts.is_upgrade(a, b, params.min_step) {
                    p.pairs.push((a, b, d));
                    upgraded = true;
                }
            }
            if let Some(tr) = tier[a as usize] {
                p.steps.push((c, tr, upgraded));
            }
        }
        let start = p.later.len();
        p.later.extend(obs.iter().map(|x| x.1));
        p.later[start..].sort_unstable();
        let mut w = start;
        for r in start..p.later.len() {
            if r == start || p.later[r] != p.later[w - 1] {
                p.later[w] = p.later[r];
                w += 1;
            }
        }
        p.later.truncate(w);
    }
    p.customers += u64::from(any);
}

/// What an offer's upgrade probability rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Basis {
    /// A learned path from the anchor.
    Path(UpgradePath),
    /// The tier fallback: the anchor tier's up rate, and the candidate's share of the buyers
    /// of all the anchor's upgrades.
    Tier {
        /// The up rate of the anchor's tier in its category (`None` under `tiers_only`).
        up_rate: Option<f64>,
        /// The candidate's share of the buyers of the anchor's upgrades.
        share: f64,
    },
}

/// What an offer's timing rests on (days after the anchor purchase).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    /// The path's median delay.
    Path(f32),
    /// The category's median upgrade delay.
    Category(f32),
    /// The category's median repurchase interval.
    Repurchase(f32),
    /// Nothing to go on.
    Unknown,
}

impl Delay {
    /// The whole days (a median of an even count may end in .5: rounded half up), if any.
    pub fn days(self) -> Option<i64> {
        match self {
            Delay::Path(d) | Delay::Category(d) | Delay::Repurchase(d) => Some(d.round() as i64),
            Delay::Unknown => None,
        }
    }
}

/// One up-sell offer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    /// The upgrade.
    pub item: ItemIdx,
    /// The ranking score: probability^(1 - w) x max(affinity, [`AFFINITY_FLOOR`])^w.
    pub score: f64,
    /// Probability that the customer buys it after the anchor.
    pub probability: f64,
    /// Collaborative affinity, scaled to the customer's best candidate (0 to 1).
    pub affinity: f64,
    /// The anchor.
    pub anchor: ItemIdx,
    /// When the anchor was bought.
    pub anchor_time: Option<i64>,
    /// When to make the offer: the anchor time plus the delay in whole days, at most
    /// [`crate::time::MAX`] (9999-12-31 23:59:59, the last time cobuy reads).
    pub offer_after: Option<i64>,
    /// What the probability rests on.
    pub basis: Basis,
    /// What the timing rests on.
    pub delay: Delay,
}

/// The anchor time plus `days`, clamped to the times cobuy reads back: an anchor bought on
/// 9999-12-31 (a placeholder date, most likely) would otherwise be offered in year 10000, a
/// date no CSV reader of `YYYY-MM-DD` (cobuy's own included) accepts.
fn offer_date(anchor: i64, days: i64) -> i64 {
    anchor.saturating_add(days.saturating_mul(DAY)).clamp(crate::time::MIN, crate::time::MAX)
}

/// The affinity an offer is scored with at the least: a candidate the collaborative model
/// does not favour (or cannot score) still ranks, below those it does, by its probability.
pub const AFFINITY_FLOOR: f64 = 0.01;

/// An offer's score: `probability^(1 - w) x max(affinity, AFFINITY_FLOOR)^w`.
pub fn blend(probability: f64, affinity: f64, w: f64) -> f64 {
    probability.powf(1.0 - w) * affinity.max(AFFINITY_FLOOR).powf(w)
}

/// Per-worker buffers for [`UpSell::offers`].
pub struct UpsellScratch {
    scratch: Scratch,
    anchors: Vec<Anchor>,
    cands: Vec<(u32, usize, f64, Basis)>,
    items: Vec<u32>,
    affinity: Vec<f32>,
}

/// Scores up-sell offers for the customers of one collaborative model.
pub struct UpSell<'a> {
    upgrades: &'a UpgradeModel,
    /// The model's reference time (its newest purchase within the bulk of the log): anchors are aged from it.
    newest: Option<i64>,
    scorer: Scorer<'a>,
}

impl<'a> UpSell<'a> {
    /// `upgrades` must be learned over the same items as the model's scorer.
    pub fn new(upgrades: &'a UpgradeModel, scorer: Scorer<'a>) -> Self {
        UpSell { upgrades, newest: scorer.data.decay_reference(), scorer }
    }

    /// Per-worker buffers.
    pub fn scratch(&self) -> UpsellScratch {
        UpsellScratch {
            scratch: self.scorer.scratch(),
            anchors: Vec::new(),
            cands: Vec::new(),
            items: Vec::new(),
            affinity: Vec::new(),
        }
    }

    /// 2^(-age / half-life) for an anchor bought at `time`: a customer who bought in a
    /// category lately is likelier to buy there again soon.
    fn recency(&self, time: Option<i64>) -> f64 {
        let half_life = self.upgrades.params.anchor_half_life;
        match (time, self.newest) {
            (Some(t), Some(newest)) if half_life > 0.0 => {
                (-((newest - t).max(0) as f64 / DAY as f64) / half_life).exp2()
            }
            _ => 1.0,
        }
    }

    /// The customer's best `n` offers, best first (ties by item index).
    pub fn offers(&self, c: CustomerIdx, n: usize, s: &mut UpsellScratch) -> Vec<Offer> {
        let q = self.scorer.query(c);
        let m = self.upgrades;
        let facts = &m.facts;
        anchors(facts, q.items, q.last_time, &mut s.anchors);
        s.cands.clear();
        let owned = |b: u32| q.items.binary_search(&b).is_ok() || q.seen.contains(&b);
        for (k, an) in s.anchors.iter().enumerate() {
            let cap = if m.params.price_cap > 0.0 { an.max_price * m.params.price_cap } else { f64::INFINITY };
            let ok = |b: u32| !owned(b) && self.scorer.allows(b) && facts.price(b).is_some_and(|p| p <= cap);
            for (b, prob, basis) in m.upgrades_of(ItemIdx(an.item)) {
                if ok(b.0) {
                    s.cands.push((b.0, k, prob, basis));
                }
            }
        }
        s.items.clear();
        s.items.extend(s.cands.iter().map(|x| x.0));
        let w = m.params.affinity_weight;
        if w > 0.0 && !s.items.is_empty() {
            self.scorer.affinity(&q, &s.items, &mut s.scratch, &mut s.affinity);
        } else {
            s.affinity.clear();
            s.affinity.resize(s.items.len(), 0.0);
        }
        let best = s.affinity.iter().copied().fold(0f32, f32::max);
        let mut offers: Vec<Offer> = s
            .cands
            .iter()
            .zip(&s.affinity)
            .map(|(&(b, k, prob, basis), &aff)| {
                let affinity = if best > 0.0 { f64::from(aff.max(0.0) / best) } else { 0.0 };
                let an = s.anchors[k];
                let prob = prob * self.recency(an.time);
                let delay = m.delay(an.category, if let Basis::Path(p) = &basis { Some(p) } else { None });
                Offer {
                    item: ItemIdx(b),
                    score: blend(prob, affinity, w),
                    probability: prob,
                    affinity,
                    anchor: ItemIdx(an.item),
                    anchor_time: an.time,
                    offer_after: an.time.zip(delay.days()).map(|(t, d)| offer_date(t, d)),
                    basis,
                    delay,
                }
            })
            .filter(|o| o.score > 0.0)
            .collect();
        offers.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        offers.truncate(n);
        offers
    }
}

/// The up-sell table's rows (`customer_id,rank,item_id,score,anchor_item_id,offer_after,reason`):
/// the CLI's file and the Python package's table, one writer.
pub struct UpsellRows<'a> {
    up: &'a UpSell<'a>,
    model: &'a Model,
    catalog: &'a Catalog,
    /// Every item's label ([`Catalog::label`]), made once rather than twice per offer.
    labels: Vec<String>,
    top: usize,
}

impl<'a> UpsellRows<'a> {
    /// `up` scores with `model`'s scorer; `catalog` names its items and categories.
    pub fn new(up: &'a UpSell<'a>, model: &'a Model, catalog: &'a Catalog, top: usize) -> Self {
        let labels = model.items().iter().map(|id| catalog.label(id)).collect();
        UpsellRows { up, model, catalog, labels, top }
    }

    /// The header line.
    pub const HEADER: &'static str = "customer_id,rank,item_id,score,anchor_item_id,offer_after,reason\n";

    /// Per-worker buffers for [`UpsellRows::append`].
    pub fn scratch(&self) -> (UpsellScratch, String) {
        (self.up.scratch(), String::new())
    }

    /// Appends customer `c`'s offers to `buf`, one row each, and counts them in `st`.
    pub fn append(
        &self,
        (s, reason): &mut (UpsellScratch, String),
        c: CustomerIdx,
        buf: &mut Vec<u8>,
        st: &mut BatchStats,
    ) {
        let (ids, facts) = (self.model.items(), self.up.upgrades.facts());
        let category_name =
            |i: ItemIdx| facts.category(i.0).map_or("its category", |c| self.catalog.category_name(CategoryIdx(c)));
        let offers = self.up.offers(c, self.top, s);
        st.customers += 1;
        st.rows += offers.len() as u64;
        st.short_customers += u64::from(offers.len() < self.top);
        for (rank, o) in offers.iter().enumerate() {
            write_field(buf, self.model.customers().id(c.0));
            buf.push(b',');
            put_display(buf, rank + 1);
            buf.push(b',');
            write_field(buf, ids.id(o.item.0));
            buf.push(b',');
            put_display(buf, format_args!("{:.6}", o.score));
            buf.push(b',');
            write_field(buf, ids.id(o.anchor.0));
            buf.push(b',');
            if let Some(t) = o.offer_after {
                buf.extend_from_slice(crate::time::date(t).as_bytes());
            }
            buf.push(b',');
            reason.clear();
            let (anchor, item) = (&self.labels[o.anchor.get()], &self.labels[o.item.get()]);
            write_reason(reason, anchor, item, &o.basis, o.delay, category_name(o.item));
            write_field(buf, reason);
            buf.push(b'\n');
        }
    }
}

/// Appends the readable reason of an upgrade from the item labelled `anchor` to the one
/// labelled `item` (labels as [`Catalog::label`] gives them): the up-sell offers' reason
/// column and `cobuy upgrades`' list.
pub fn write_reason(out: &mut String, anchor: &str, item: &str, basis: &Basis, delay: Delay, category: &str) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = match *basis {
        Basis::Path(p) => write!(
            out,
            "customers who bought {anchor} later upgraded to {item}: {} of {} ({:.0}%, {:.1} times chance)",
            p.customers,
            p.anchor_customers,
            100.0 * f64::from(p.customers) / f64::from(p.anchor_customers.max(1)),
            f64::from(p.customers) / p.expected.max(1e-9)
        ),
        Basis::Tier { up_rate: Some(rate), share } => write!(
            out,
            "a step up from {anchor} in {category}: {:.0}% of customers buying at that price later buy dearer there; {:.0}% of them choose {item}",
            100.0 * rate,
            100.0 * share
        ),
        Basis::Tier { up_rate: None, share } => write!(
            out,
            "a step up from {anchor} in {category}: {item} is {:.0}% of the purchases of its dearer items",
            100.0 * share
        ),
    };
    let days = delay.days().unwrap_or(0);
    let _ = match delay {
        Delay::Path(_) => write!(out, "; median {days} days"),
        Delay::Category(_) => write!(out, "; upgrades in {category} come after a median {days} days"),
        Delay::Repurchase(_) => write!(out, "; {category} is bought again every {days} days (median)"),
        Delay::Unknown => Ok(()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llr_is_signed_and_zero_at_independence() {
        assert!(signed_llr(10.0, 10.0, 10.0, 10.0).abs() < 1e-9);
        assert!(signed_llr(20.0, 5.0, 5.0, 20.0) > 0.0);
        assert!(signed_llr(5.0, 20.0, 20.0, 5.0) < 0.0);
    }

    #[test]
    fn anchors_take_the_latest_then_the_dearest() {
        let facts = ItemFacts::new(
            vec![Some(0), Some(0), Some(1), None, Some(0)],
            vec![Some(2.0), Some(5.0), Some(1.0), Some(9.0), Some(3.0)],
            vec![None; 5],
        );
        let mut out = Vec::new();
        anchors(&facts, &[0, 1, 2, 3, 4], Some(&[50, 10, 7, 99, 50]), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].category, out[0].item, out[0].time, out[0].max_price), (0, 4, Some(50), 5.0));
        assert_eq!((out[1].category, out[1].item), (1, 2));
    }

    #[test]
    fn upgrades_need_a_step_or_a_grade() {
        let facts = ItemFacts::new(
            vec![Some(0), Some(0), Some(0), Some(1)],
            vec![Some(1.0), Some(1.05), Some(1.2), Some(5.0)],
            vec![Some(0), Some(1), Some(0), Some(1)],
        );
        assert!(facts.is_upgrade(0, 2, 0.1));
        assert!(facts.is_upgrade(0, 1, 0.1), "a higher grade at a higher price");
        assert!(!facts.is_upgrade(1, 0, 0.1));
        assert!(!facts.is_upgrade(0, 3, 0.1), "another category");
        assert!(!facts.is_upgrade(0, 0, 0.0));
    }
}
