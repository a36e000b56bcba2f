//! A customer in, complementary items out: what they have not bought, preferring the
//! categories they have not bought (or rarely buy), with a reason a marketer can read.
//!
//! Two kinds of evidence are combined. Collaborative filtering (the model's own scorer)
//! says which items customers like this one buy. Basket rules say which items are bought
//! together with what this customer bought: for each candidate, the strongest rule from one
//! of their items, by lift. Each is scaled to 0..1 within the customer's candidates
//! (collaborative scores by the best one; lifts as `ln(lift) / ln(best lift)`, rules with a
//! lift of 1 or less carrying no evidence), mixed by `cf_weight`, and multiplied by a
//! novelty factor `1 / (1 + n)^novelty`, where `n` is the number of the customer's items in
//! the candidate's category. Ties break by item id.
//!
//! Architecture invariant: like every scorer, this does no I/O and cannot fail; one
//! customer's offers depend only on the model, the rules and the catalogue.

use crate::ids::{CustomerIdx, ItemIdx};
use crate::model::Model;
use crate::offers::rules::Rule;
use crate::recommend::{Recommendation, ResolvedFilter, Scorer, Scratch, Source};

/// How candidates are weighed. Validate with [`CrossSellParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CrossSellParams {
    /// Share of the score from collaborative filtering (the rest from basket lift), 0 to 1.
    pub cf_weight: f64,
    /// Exponent of the novelty factor: 0 ignores categories; larger prefers unbought ones
    /// more strongly.
    pub novelty: f64,
    /// Collaborative candidates considered per customer.
    pub candidates: usize,
    /// Rules kept per antecedent item (the strongest by lift).
    pub rules_per_item: usize,
}

impl Default for CrossSellParams {
    fn default() -> Self {
        CrossSellParams { cf_weight: 0.5, novelty: 1.0, candidates: 200, rules_per_item: 50 }
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

/// Scores offers for customers of one model.
pub struct CrossSell<'a> {
    scorer: Scorer<'a>,
    /// Per antecedent item: (consequent, confidence, lift), strongest lift first.
    outgoing: Vec<Vec<(u32, f64, f64)>>,
    /// Per item, its category group.
    category: Vec<Option<u32>>,
    params: CrossSellParams,
}

impl<'a> CrossSell<'a> {
    /// Builds the scorer. `rules` are over the model's items (same indices); `category`
    /// has one entry per model item; `filter` is the model's resolved filter (its allow and
    /// deny lists, category restrictions included, say what may be offered; bought items
    /// never are).
    pub fn new(
        model: &'a Model,
        filter: &'a ResolvedFilter,
        rules: &[Rule],
        category: Vec<Option<u32>>,
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
        CrossSell { scorer: model.scorer(filter), outgoing, category, params }
    }

    /// Per-worker buffers.
    pub fn scratch(&self) -> CrossSellScratch {
        CrossSellScratch {
            scratch: self.scorer.scratch(),
            recs: Vec::new(),
            cands: Vec::new(),
            merged: Vec::new(),
            per_category: std::collections::HashMap::new(),
        }
    }

    /// The customer's best `n` offers, best first, in `out` (cleared first).
    pub fn offers(&self, c: CustomerIdx, n: usize, s: &mut CrossSellScratch, out: &mut Vec<Offer>) {
        let q = self.scorer.query(c);
        let CrossSellScratch { scratch, recs, cands, merged, per_category } = s;
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
}
