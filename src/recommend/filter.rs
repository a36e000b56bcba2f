//! The one policy for which items may be recommended to whom.

use crate::algo::Algorithm;
use crate::ids::ItemIdx;
use crate::matrix::Interactions;
use crate::time::DAY;

/// Which items may be recommended to whom.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    /// Recommend items the customer bought before (default: no). Buy-again always does.
    pub include_bought: bool,
    /// Allow a bought item again once this many days have passed since its last purchase.
    pub repurchase_after_days: Option<f64>,
    /// "Now" for repurchase windows (unix seconds); default: the newest purchase within the bulk of the log (`Interactions::decay_reference`).
    pub as_of: Option<i64>,
    /// Only these items (none: every item).
    pub allow: Option<Vec<ItemIdx>>,
    /// Never these items.
    pub deny: Vec<ItemIdx>,
}

impl Filter {
    /// Checks ranges and resolves the filter against a model's data.
    pub fn resolve(&self, data: &Interactions, algorithm: Algorithm) -> Result<ResolvedFilter, String> {
        let items = data.items().len();
        let mut banned = vec![self.allow.is_some(); items];
        for &ItemIdx(j) in self.allow.iter().flatten() {
            banned[j as usize] = false;
        }
        for &ItemIdx(j) in &self.deny {
            banned[j as usize] = true;
        }
        let repurchase = match self.repurchase_after_days {
            None => None,
            Some(d) if !(d.is_finite() && d >= 0.0) => {
                return Err(format!("the repurchase window must be a number of days >= 0, got {d}"));
            }
            Some(d) => {
                if data.last_time().is_none() {
                    return Err("a repurchase window needs purchase times: fit with a time column".into());
                }
                let now = self.as_of.or(data.decay_reference()).unwrap_or(0);
                Some(now.saturating_sub((d * DAY as f64).min(i64::MAX as f64) as i64))
            }
        };
        let include_bought = self.include_bought || algorithm == Algorithm::BuyAgain;
        Ok(ResolvedFilter { banned, include_bought, bought_before: repurchase })
    }
}

/// A [`Filter`] ready for scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedFilter {
    /// `banned[j]`: never recommend item `j`.
    pub(super) banned: Vec<bool>,
    pub(super) include_bought: bool,
    /// Bought items whose last purchase is at or before this time are allowed again
    /// (when bought items are otherwise excluded).
    pub(super) bought_before: Option<i64>,
}

impl ResolvedFilter {
    /// The default policy (exclude bought and seen items) for a catalogue of `items`.
    pub fn exclude_bought(items: usize) -> Self {
        ResolvedFilter { banned: vec![false; items], include_bought: false, bought_before: None }
    }
}
