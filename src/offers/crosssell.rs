//! A customer in, complementary items out: items in categories they have never bought, with
//! a reason a marketer can read.
//!
//! The default scoring ([`Scoring::NewCategories`]) offers only items of categories (at the
//! caller's level) the customer bought nothing of, and items with a category: whether an
//! item without one opens a new category nobody can say, and a list that promises new
//! categories should keep the promise (a hard filter beat every soft preference measured).
//! It scores in two stages, "will this customer enter category `c`" times "which item of
//! `c`", as a product of powers (a sum of logarithms, weights in [`NewCategoryWeights`]):
//!
//! - `P(c)`: a category-level EASE fitted on the customers x categories matrix (1 where the
//!   customer bought anything in the category), scored from the customer's categories
//!   (at least 1e-6);
//! - `entries(c) + 1`: how many customers bought in `c` for the first time within
//!   [`CrossSellParams::entry_window_days`] before the newest purchase: which categories
//!   customers are entering now (a season, a launch), which no co-occurrence shows;
//! - `share(j)`: the item's share of its category's buyers, each buyer weighted by
//!   `0.5^(age / half-life)` of their latest purchase of it (plus 0.001 on both sides);
//! - `newcomers(j)`: the item's share of its category's newcomers, the customers who
//!   bought it for the first time within the entry window (plus 1 on both sides): what
//!   customers new to an item pick, which for this target (customers new to the
//!   category) says more than what its regular buyers repeat;
//! - `cf(j) / max cf + 0.0001`: the model's own score, scaled by the customer's best new-
//!   category candidate (below 0 counts 0);
//! - `exp(lift)`, `lift` being `ln(l) / ln(best l)` for the strongest basket rule from one
//!   of the customer's items to the candidate (0 without one).
//!
//! The earlier [`Scoring::Mix`] ranks collaborative and basket-rule candidates of any
//! category: each scaled to 0..1 within the customer's candidates (collaborative scores by
//! the best one; lifts as `ln(lift) / ln(best lift)`, rules with a lift of 1 or less carrying
//! no evidence), mixed by `cf_weight`, and multiplied by a novelty factor
//! `1 / (1 + n)^novelty`, where `n` is the number of the customer's items in the
//! candidate's category. Ties break by item id in both.
//!
//! Architecture invariant: like every scorer, this does no I/O and cannot fail; one
//! customer's offers depend only on the model, the rules, the catalogue and the category
//! entries.

use rustc_hash::FxHashMap;

use crate::algo::ease::{Ease, EaseParams, EaseScratch};
use crate::batch::{BatchStats, put_display, write_csv_field};
use crate::ids::{CustomerIdx, IdTable, ItemIdx};
use crate::ingest::PurchaseLog;
use crate::matrix::Csr;
use crate::model::Model;
use crate::offers::catalog::{Alignment, Catalog, CategoryIdx};
use crate::offers::rules::Rule;
use crate::recommend::{Recommendation, ResolvedFilter, Scorer, Scratch, Source};
use crate::value::Wallet;

/// Which scoring ranks the offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scoring {
    /// Only categories new to the customer, in two stages (the module's overview).
    #[default]
    NewCategories,
    /// Collaborative and basket-rule candidates of any category, mixed by `cf_weight` and
    /// weighed by a soft novelty factor.
    Mix,
}

/// The exponents of the new-categories score's factors (see the module's overview),
/// chosen on validation windows carved from the training part of The Complete Journey
/// and UCI Online Retail (BENCHMARKS.md, "Cross-sell on its own target").
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewCategoryWeights {
    /// Of `P(c)`, the category-level EASE score.
    pub category: f64,
    /// Of `entries(c) + 1`, the customers entering the category lately.
    pub entries: f64,
    /// Of the item's share of its category's (recent) buyers.
    pub share: f64,
    /// Of the collaborative score.
    pub cf: f64,
    /// Of `exp(lift)`.
    pub lift: f64,
    /// Of the item's share of its category's newcomers (`newcomers(j)`).
    pub newcomers: f64,
}

impl Default for NewCategoryWeights {
    fn default() -> Self {
        NewCategoryWeights { category: 1.0, entries: 1.5, share: 1.0, cf: 1.0, lift: 1.0, newcomers: 0.5 }
    }
}

/// How candidates are weighed. Validate with [`CrossSellParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CrossSellParams {
    /// The scoring.
    pub scoring: Scoring,
    /// Mix: share of the score from collaborative filtering (the rest from basket lift),
    /// 0 to 1.
    pub cf_weight: f64,
    /// Mix: exponent of the novelty factor: 0 ignores categories; larger prefers unbought
    /// ones more strongly.
    pub novelty: f64,
    /// Mix: collaborative candidates considered per customer.
    pub candidates: usize,
    /// Rules kept per antecedent item (the strongest by lift).
    pub rules_per_item: usize,
    /// New categories: the factors' exponents.
    pub weights: NewCategoryWeights,
    /// New categories: the penalty of the category-level EASE.
    pub category_lambda: f32,
    /// New categories: how far back (days before the newest purchase) a first purchase
    /// in a category counts as entering it lately.
    pub entry_window_days: f64,
    /// New categories: the half-life (days) of a buyer's weight in an item's share.
    pub share_half_life_days: f64,
}

impl Default for CrossSellParams {
    fn default() -> Self {
        CrossSellParams {
            scoring: Scoring::NewCategories,
            cf_weight: 0.5,
            novelty: 1.0,
            candidates: 200,
            rules_per_item: 50,
            weights: NewCategoryWeights::default(),
            category_lambda: 100.0,
            entry_window_days: 30.0,
            share_half_life_days: 15.0,
        }
    }
}

impl CrossSellParams {
    /// Checks ranges; the message names the parameter.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.cf_weight) {
            return Err(format!("the collaborative weight must be between 0 and 1, got {}", self.cf_weight));
        }
        if !(self.novelty.is_finite() && self.novelty >= 0.0) {
            return Err(format!("the novelty exponent must be a number >= 0, got {}", self.novelty));
        }
        if self.candidates == 0 || self.rules_per_item == 0 {
            return Err("candidates and rules per item must be at least 1".into());
        }
        let w = &self.weights;
        if ![w.category, w.entries, w.share, w.cf, w.lift, w.newcomers].iter().all(|x| x.is_finite() && *x >= 0.0) {
            return Err(format!("the new-category weights must be numbers >= 0, got {w:?}"));
        }
        if !(self.category_lambda.is_finite() && self.category_lambda > 0.0) {
            return Err(format!("the category penalty must be a number > 0, got {}", self.category_lambda));
        }
        for (what, x) in [("entry window", self.entry_window_days), ("share half-life", self.share_half_life_days)] {
            if !(x.is_finite() && x > 0.0) {
                return Err(format!("the {what} must be a number of days > 0, got {x}"));
            }
        }
        Ok(())
    }
}

/// One offer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    /// The item.
    pub item: ItemIdx,
    /// The combined score.
    pub score: f64,
    /// Its category (the caller's group index), if known.
    pub category: Option<u32>,
    /// How many of the customer's items share that category.
    pub bought_in_category: u32,
    /// The strongest rule from one of the customer's items: (that item, confidence, lift).
    pub with: Option<(ItemIdx, f64, f64)>,
    /// The collaborative score, scaled to the customer's best (0 when none).
    pub cf: f64,
}

/// A candidate: item, collaborative score, strongest rule (antecedent, confidence, lift).
type Candidate = (u32, f64, Option<(ItemIdx, f64, f64)>);

/// Per category group, how many customers bought in it for the first time lately: what
/// the new-categories scoring learns from the purchase rows beside the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategoryEntries {
    counts: FxHashMap<u32, u32>,
    /// Per item, the customers whose first purchase of it falls in the window.
    items: FxHashMap<u32, u32>,
}

impl CategoryEntries {
    /// Counts, per category, the customers whose first purchase in it (over the rows
    /// `rows` marks, all when `None`) falls within `window_days` before `reference` (the
    /// model's newest purchase, [`crate::matrix::Interactions::decay_reference`]).
    /// `category[j]` is item `j`'s group. Without purchase times (or a reference) every
    /// customer who bought in the category counts: its breadth, not its trend.
    pub fn learn(
        log: &PurchaseLog,
        rows: Option<&[bool]>,
        category: &[Option<u32>],
        reference: Option<i64>,
        window_days: f64,
    ) -> Self {
        // First purchase per (customer, category) and per (customer, item) of a category.
        let mut first: FxHashMap<(u32, u32), i64> = FxHashMap::default();
        let mut first_item: FxHashMap<(u32, u32), i64> = FxHashMap::default();
        for (k, r) in log.rows.iter().enumerate() {
            if r.quantity <= 0.0 || rows.is_some_and(|m| !m.get(k).copied().unwrap_or(false)) {
                continue;
            }
            let Some(g) = category.get(r.item.get()).copied().flatten() else { continue };
            let t = r.time.unwrap_or(i64::MIN);
            for (map, key) in [(&mut first, g), (&mut first_item, r.item.0)] {
                let e = map.entry((r.customer.0, key)).or_insert(t);
                *e = (*e).min(t);
            }
        }
        let since = reference.map(|t| t.saturating_sub((window_days * 86_400.0) as i64));
        let lately = |map: FxHashMap<(u32, u32), i64>| {
            let mut counts: FxHashMap<u32, u32> = FxHashMap::default();
            for ((_, key), t) in map {
                if since.is_none_or(|s| t != i64::MIN && t >= s) {
                    *counts.entry(key).or_default() += 1;
                }
            }
            counts
        };
        CategoryEntries { counts: lately(first), items: lately(first_item) }
    }

    /// The customers who entered category group `g` lately.
    pub fn get(&self, g: u32) -> u32 {
        self.counts.get(&g).copied().unwrap_or(0)
    }

    /// The customers who bought item `j` (of a category) for the first time lately.
    pub fn item(&self, j: u32) -> u32 {
        self.items.get(&j).copied().unwrap_or(0)
    }
}

/// What the new-categories scoring knows about categories, over dense category numbers.
struct Categories {
    /// Per item, its dense category.
    of: Vec<Option<u32>>,
    /// The category-level EASE (`None` when it could not be fitted: a catalogue level
    /// with more categories than memory allows, then `breadth` stands in).
    ease: Option<Ease>,
    /// Per category, the share of customers who bought in it.
    breadth: Vec<f64>,
    /// Per category, `weights.entries * ln(entries + 1)`.
    entry_term: Vec<f64>,
    /// Per item, `weights.share * ln(share) + weights.newcomers * ln(newcomers)`.
    share_term: Vec<f64>,
}

impl Categories {
    fn new(model: &Model, category: &[Option<u32>], entries: &CategoryEntries, p: &CrossSellParams) -> Self {
        let mut groups: Vec<u32> = category.iter().flatten().copied().collect();
        groups.sort_unstable();
        groups.dedup();
        let of: Vec<Option<u32>> =
            category.iter().map(|g| g.and_then(|g| groups.binary_search(&g).ok()).map(|d| d as u32)).collect();
        let n = groups.len();
        let data = model.interactions();
        let counts = data.counts();
        let customers = counts.rows();
        let (mut indptr, mut indices) = (vec![0usize], Vec::new());
        let mut row = Vec::new();
        let mut breadth = vec![0.0; n];
        for c in 0..customers {
            let r = counts.indptr().outer_inds_sz(c);
            row.clear();
            row.extend(counts.indices()[r].iter().filter_map(|&j| of.get(j as usize).copied().flatten()));
            row.sort_unstable();
            row.dedup();
            for &g in &row {
                breadth[g as usize] += 1.0;
            }
            indices.extend_from_slice(&row);
            indptr.push(indices.len());
        }
        let with_purchases = data.customers_with_purchases().max(1) as f64;
        breadth.iter_mut().for_each(|b| *b /= with_purchases);
        let ones = vec![1f32; indices.len()];
        let ease = Csr::try_new((customers, n), indptr, indices, ones).ok().and_then(|x| {
            let params = EaseParams { lambda: p.category_lambda, ..EaseParams::default() };
            Ease::fit(&x, &params, crate::algo::ease::memory_budget()).ok()
        });
        // Buyers per item, each weighted by the age of their latest purchase of it.
        let reference = data.decay_reference();
        let mut buyers = vec![0.0f64; category.len()];
        let times = data.last_time();
        for (k, &j) in counts.indices().iter().enumerate() {
            let w = match (reference, times) {
                (Some(t0), Some(t)) => crate::matrix::decay_factor(t0, t[k], p.share_half_life_days),
                _ => 1.0,
            };
            if let Some(b) = buyers.get_mut(j as usize) {
                *b += w;
            }
        }
        let (mut total, mut newcomers) = (vec![0.0f64; n], vec![0.0f64; n]);
        for (j, g) in of.iter().enumerate() {
            if let Some(g) = g {
                total[*g as usize] += buyers[j];
                newcomers[*g as usize] += f64::from(entries.item(j as u32));
            }
        }
        let w = &p.weights;
        let share_term = of
            .iter()
            .enumerate()
            .map(|(j, g)| {
                g.map_or(0.0, |g| {
                    let g = g as usize;
                    let new = f64::from(entries.item(j as u32));
                    w.share * ((buyers[j] + 1e-3) / (total[g] + 1e-3)).ln()
                        + w.newcomers * ((new + 1.0) / (newcomers[g] + 1.0)).ln()
                })
            })
            .collect();
        let entry_term = groups.iter().map(|&g| p.weights.entries * f64::from(entries.get(g) + 1).ln()).collect();
        Categories { of, ease, breadth, entry_term, share_term }
    }
}

/// Scores offers for customers of one model.
pub struct CrossSell<'a> {
    scorer: Scorer<'a>,
    /// Per antecedent item: (consequent, confidence, lift), strongest lift first.
    outgoing: Vec<Vec<(u32, f64, f64)>>,
    /// Per item, its category group.
    category: Vec<Option<u32>>,
    /// For the new-categories scoring.
    categories: Option<Categories>,
    /// Items anyone bought (the others have no evidence).
    bought_by_anyone: Vec<bool>,
    params: CrossSellParams,
}

impl<'a> CrossSell<'a> {
    /// Builds the scorer. `rules` are over the model's items (same indices); `category`
    /// has one entry per model item; `entries` are learned from the rows the model was
    /// fitted on with the same categories ([`CategoryEntries::learn`]; the new-categories
    /// scoring only); `filter` is the model's resolved filter (its allow and deny lists,
    /// category restrictions included, say what may be offered; bought items never are).
    pub fn new(
        model: &'a Model,
        filter: &'a ResolvedFilter,
        rules: &[Rule],
        category: Vec<Option<u32>>,
        entries: &CategoryEntries,
        params: CrossSellParams,
    ) -> Self {
        let items = model.items().len();
        let mut outgoing: Vec<Vec<(u32, f64, f64)>> = vec![Vec::new(); items];
        for r in rules.iter().filter(|r| r.lift > 1.0) {
            if let Some(list) = outgoing.get_mut(r.antecedent.get()) {
                list.push((r.consequent.0, r.confidence, r.lift));
            }
        }
        for list in &mut outgoing {
            list.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
            list.truncate(params.rules_per_item);
        }
        let categories =
            (params.scoring == Scoring::NewCategories).then(|| Categories::new(model, &category, entries, &params));
        let bought_by_anyone = model.buyers().iter().map(|&b| b > 0).collect();
        CrossSell { scorer: model.scorer(filter), outgoing, category, categories, bought_by_anyone, params }
    }

    /// Per-worker buffers.
    pub fn scratch(&self) -> CrossSellScratch {
        let ease = self.categories.as_ref().and_then(|c| c.ease.as_ref());
        CrossSellScratch {
            scratch: self.scorer.scratch(),
            recs: Vec::new(),
            cands: Vec::new(),
            merged: Vec::new(),
            per_category: std::collections::HashMap::new(),
            items: Vec::new(),
            affinity: Vec::new(),
            had: Vec::new(),
            category_scores: vec![0.0; ease.map_or(0, Ease::items)],
            ease: ease.map(Ease::scratch).unwrap_or_default(),
            scored: Vec::new(),
        }
    }

    /// The customer's best `n` offers, best first, in `out` (cleared first).
    pub fn offers(&self, c: CustomerIdx, n: usize, s: &mut CrossSellScratch, out: &mut Vec<Offer>) {
        match &self.categories {
            Some(cats) => self.new_category_offers(cats, c, n, s, out),
            None => self.mixed_offers(c, n, s, out),
        }
    }

    /// The new-categories scoring (the module's overview).
    fn new_category_offers(
        &self,
        cats: &Categories,
        c: CustomerIdx,
        n: usize,
        s: &mut CrossSellScratch,
        out: &mut Vec<Offer>,
    ) {
        out.clear();
        let q = self.scorer.query(c);
        let w = &self.params.weights;
        // The customer's categories, and the category-level score of every category.
        s.had.clear();
        s.had.extend(q.items.iter().filter_map(|&j| cats.of.get(j as usize).copied().flatten()));
        s.had.sort_unstable();
        s.had.dedup();
        let category_term: &[f32] = match &cats.ease {
            Some(ease) => {
                // (The affinity buffer holds the category weights, all 1, until it is used.)
                s.affinity.clear();
                s.affinity.resize(s.had.len(), 1.0);
                ease.score(&s.had, &s.affinity, &mut s.category_scores, &mut s.ease);
                &s.category_scores
            }
            None => &[],
        };
        let p_category = |g: u32| -> f64 {
            let p = match category_term.get(g as usize) {
                Some(&x) => f64::from(x),
                None => cats.breadth[g as usize],
            };
            w.category * p.max(1e-6).ln()
        };
        // Candidates: bought by someone, in a category new to the customer, allowed, not
        // seen (bought items are in the customer's categories).
        s.items.clear();
        s.items.extend((0..cats.of.len() as u32).filter(|&j| {
            cats.of[j as usize].is_some_and(|g| s.had.binary_search(&g).is_err())
                && self.bought_by_anyone.get(j as usize).copied().unwrap_or(false)
                && self.scorer.allows(j)
                && !q.seen.contains(&j)
        }));
        if s.items.is_empty() {
            return;
        }
        self.scorer.affinity(&q, &s.items, &mut s.scratch, &mut s.affinity);
        let best_cf = s.affinity.iter().copied().fold(0f32, f32::max);
        let best_cf = if best_cf > 0.0 { f64::from(best_cf) } else { 1.0 };
        // The strongest rule from the customer's items to each candidate.
        s.cands.clear();
        for &i in q.items {
            for &(j, confidence, lift) in &self.outgoing[i as usize] {
                s.cands.push((j, 0.0, Some((ItemIdx(i), confidence, lift))));
            }
        }
        s.cands.sort_by_key(|c| c.0);
        s.merged.clear();
        for group in s.cands.chunk_by(|a, b| a.0 == b.0) {
            if s.items.binary_search(&group[0].0).is_ok() {
                let with = group
                    .iter()
                    .filter_map(|g| g.2)
                    .max_by(|a, b| a.2.total_cmp(&b.2).then(a.1.total_cmp(&b.1)).then(b.0.0.cmp(&a.0.0)));
                s.merged.push((group[0].0, 0.0, with));
            }
        }
        let best_lift = s.merged.iter().filter_map(|m| m.2).map(|r| r.2).fold(1.0, f64::max);
        let mut rules = s.merged.iter().peekable();
        s.scored.clear();
        for (&j, &cf) in s.items.iter().zip(&s.affinity) {
            let g = cats.of[j as usize].unwrap_or(0);
            let mut with = None;
            while let Some(r) = rules.peek() {
                if r.0 < j {
                    rules.next();
                } else {
                    if r.0 == j {
                        with = r.2;
                    }
                    break;
                }
            }
            let lift = match with {
                Some((_, _, l)) if best_lift > 1.0 => l.ln() / best_lift.ln(),
                _ => 0.0,
            };
            let cf = (f64::from(cf) / best_cf).max(0.0);
            let score = p_category(g)
                + cats.entry_term[g as usize]
                + cats.share_term[j as usize]
                + w.cf * (cf + 1e-4).ln()
                + w.lift * lift;
            s.scored.push((score, j, cf, with));
        }
        let by_score = |a: &Scored, b: &Scored| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if s.scored.len() > n {
            s.scored.select_nth_unstable_by(n, by_score);
            s.scored.truncate(n);
        }
        s.scored.sort_by(by_score);
        let top = s.scored.first().map_or(0.0, |x| x.0);
        out.extend(s.scored.iter().map(|&(score, j, cf, with)| Offer {
            item: ItemIdx(j),
            score: (score - top).exp(),
            category: self.category.get(j as usize).copied().flatten(),
            bought_in_category: 0,
            with,
            cf,
        }));
    }

    /// The mixed scoring ([`Scoring::Mix`]).
    fn mixed_offers(&self, c: CustomerIdx, n: usize, s: &mut CrossSellScratch, out: &mut Vec<Offer>) {
        let q = self.scorer.query(c);
        let CrossSellScratch { scratch, recs, cands, merged, per_category, .. } = s;
        self.scorer.recommend(&q, self.params.candidates, scratch, recs);
        let bought = q.items;
        // Candidates: (item, collaborative score, strongest rule).
        cands.clear();
        cands.extend(recs.iter().filter(|r| r.source != Source::Popular).map(|r| (r.item.0, f64::from(r.score), None)));
        for &i in bought {
            for &(j, confidence, lift) in &self.outgoing[i as usize] {
                if bought.binary_search(&j).is_err() && !q.seen.contains(&j) {
                    cands.push((j, 0.0, Some((ItemIdx(i), confidence, lift))));
                }
            }
        }
        // Merge per item: the collaborative score, and the rule with the highest lift
        // (then confidence, then the lower antecedent).
        cands.sort_by_key(|c| c.0);
        merged.clear();
        for group in cands.chunk_by(|a, b| a.0 == b.0) {
            let cf = group.iter().map(|g| g.1).fold(0.0, f64::max);
            let with = group
                .iter()
                .filter_map(|g| g.2)
                .max_by(|a, b| a.2.total_cmp(&b.2).then(a.1.total_cmp(&b.1)).then(b.0.0.cmp(&a.0.0)));
            merged.push((group[0].0, cf, with));
        }
        // Bought and seen items never come from the scorer nor from the rules above; items
        // the filter does not allow are dropped here.
        merged.retain(|m| self.scorer.allows(m.0));
        let best_cf = merged.iter().map(|m| m.1).fold(0.0, f64::max);
        let best_lift = merged.iter().filter_map(|m| m.2).map(|w| w.2).fold(1.0, f64::max);
        per_category.clear();
        for &i in bought {
            if let Some(Some(g)) = self.category.get(i as usize) {
                *per_category.entry(*g).or_default() += 1;
            }
        }
        let w = self.params.cf_weight;
        out.clear();
        out.extend(
            merged
                .iter()
                .map(|&(j, cf, with)| {
                    let cf = if best_cf > 0.0 { cf / best_cf } else { 0.0 };
                    let lift = match with {
                        Some((_, _, l)) if best_lift > 1.0 => l.ln() / best_lift.ln(),
                        _ => 0.0,
                    };
                    let category = self.category.get(j as usize).copied().flatten();
                    let had = category.and_then(|g| per_category.get(&g).copied()).unwrap_or(0);
                    let novelty = (1.0 / (1.0 + f64::from(had))).powf(self.params.novelty);
                    Offer {
                        item: ItemIdx(j),
                        score: (w * cf + (1.0 - w) * lift) * novelty,
                        category,
                        bought_in_category: had,
                        with,
                        cf,
                    }
                })
                .filter(|o| o.score > 0.0),
        );
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.0.cmp(&b.item.0)));
        out.truncate(n);
    }
}

/// Per-worker buffers of [`CrossSell::offers`], reused for every customer.
#[derive(Debug)]
pub struct CrossSellScratch {
    scratch: Scratch,
    recs: Vec<Recommendation>,
    cands: Vec<Candidate>,
    merged: Vec<Candidate>,
    /// The customer's items per category.
    per_category: std::collections::HashMap<u32, u32>,
    /// New categories: the candidates, their collaborative scores, the customer's
    /// categories, every category's score, the category model's buffers, the scored
    /// candidates.
    items: Vec<u32>,
    affinity: Vec<f32>,
    had: Vec<u32>,
    category_scores: Vec<f32>,
    ease: EaseScratch,
    scored: Vec<Scored>,
}

/// A scored candidate: score, item, scaled collaborative score, strongest rule.
type Scored = (f64, u32, f64, Option<(ItemIdx, f64, f64)>);

/// The cross-sell table's rows (`customer_id,rank,item_id,score,category,reason`, then
/// `wallet_gap` when asked): the CLI's file and the Python package's table, one writer.
pub struct OfferRows<'a> {
    cs: &'a CrossSell<'a>,
    model: &'a Model,
    catalog: &'a Catalog,
    /// Every item as a reader knows it: its catalogue name, or its id and finest category.
    labels: Vec<String>,
    top: usize,
    /// Share of wallet, over these customer ids.
    wallet: Option<(&'a Wallet, &'a IdTable)>,
}

impl<'a> OfferRows<'a> {
    /// `aligned`: the model's items in `catalog` ([`Catalog::align`]).
    pub fn new(cs: &'a CrossSell<'a>, model: &'a Model, catalog: &'a Catalog, aligned: &Alignment, top: usize) -> Self {
        let labels = (0..model.items().len())
            .map(|x| (model.items().id(x as u32), aligned.per_item.get(x).copied().flatten()))
            .map(|(id, c)| match c.map(|c| catalog.item(c)) {
                Some(item) => match (item.name, item.category.last()) {
                    (Some(name), _) if !name.is_empty() && name != id => format!("{name} ({id})"),
                    (_, Some(&node)) => format!("{id} ({})", catalog.category_name(node)),
                    _ => id.to_string(),
                },
                None => id.to_string(),
            })
            .collect();
        OfferRows { cs, model, catalog, labels, top, wallet: None }
    }

    /// Adds the `wallet_gap` column: `wallet` over the customers `ids`.
    pub fn with_wallet(self, wallet: &'a Wallet, ids: &'a IdTable) -> Self {
        OfferRows { wallet: Some((wallet, ids)), ..self }
    }

    /// The header line.
    pub fn header(&self) -> String {
        let wallet = if self.wallet.is_some() { ",wallet_gap" } else { "" };
        format!("customer_id,rank,item_id,score,category,reason{wallet}\n")
    }

    /// Per-worker buffers for [`OfferRows::append`].
    pub fn scratch(&self) -> OfferRowsScratch {
        OfferRowsScratch { scratch: self.cs.scratch(), offers: Vec::new(), reason: String::new() }
    }

    /// Appends customer `c`'s offers to `buf`, one row each (fields quoted as the `csv`
    /// crate quotes them, as they always were), and counts them in `st`.
    pub fn append(&self, s: &mut OfferRowsScratch, c: CustomerIdx, buf: &mut Vec<u8>, st: &mut BatchStats) {
        use std::fmt::Write as _;
        let (model, top) = (self.model, self.top);
        let OfferRowsScratch { scratch, offers, reason } = s;
        let in_wallet = self.wallet.and_then(|(w, ids)| Some((w, ids.index_of(model.customers().id(c.0))?)));
        self.cs.offers(c, top, scratch, offers);
        st.customers += 1;
        st.rows += offers.len() as u64;
        st.short_customers += u64::from(offers.len() < top);
        let id = model.customers().id(c.0);
        for (rank, o) in offers.iter().enumerate() {
            let cat = o.category.map(|g| self.catalog.category_name(CategoryIdx(g)));
            reason.clear();
            // Writing to a String cannot fail.
            let _ = match o.with {
                Some((x, confidence, _)) => write!(
                    reason,
                    "bought together with {} in {:.0}% of baskets containing it",
                    self.labels[x.get()],
                    confidence * 100.0
                ),
                None => write!(reason, "customers like you bought it"),
            };
            let _ = match (cat, o.bought_in_category) {
                (Some(name), 0) => write!(reason, "; new category for you: {name}"),
                (Some(name), n) => write!(reason, "; you bought {n} in {name}"),
                (None, _) => Ok(()),
            };
            write_csv_field(buf, id);
            buf.push(b',');
            put_display(buf, rank + 1);
            buf.push(b',');
            write_csv_field(buf, model.item_id(o.item));
            buf.push(b',');
            put_display(buf, format_args!("{:.6}", o.score));
            buf.push(b',');
            write_csv_field(buf, cat.unwrap_or(""));
            buf.push(b',');
            write_csv_field(buf, reason);
            if self.wallet.is_some() {
                buf.push(b',');
                let gap = in_wallet.zip(o.category).and_then(|((w, i), g)| w.gap(CustomerIdx(i), g));
                if let Some(g) = gap {
                    put_display(buf, format_args!("{:.2}", g.gap));
                }
            }
            buf.push(b'\n');
        }
    }
}

/// [`OfferRows`]' per-worker buffers.
pub struct OfferRowsScratch {
    scratch: CrossSellScratch,
    offers: Vec<Offer>,
    reason: String,
}
