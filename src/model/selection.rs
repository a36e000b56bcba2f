//! What `algorithm = auto` tried and why it chose what it did, stored in the model so that
//! `cobuy inspect` can show it long after the fit log is gone.

use serde::{Deserialize, Serialize};

use super::FitParams;
use crate::algo::Algorithm;
use crate::algo::als::{AlsParams, RELATIVE_REGULARIZATION};
use crate::algo::similarity::Measure;
use crate::matrix::Scheme;

/// The record of an automatic choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// How the validation rows were carved from the purchases, and why that way.
    pub split: String,
    /// What was maximised, for example "NDCG@10 on new items".
    pub objective: String,
    /// Customers measured on the validation rows.
    pub customers: u64,
    /// Every candidate, in the order tried.
    pub tried: Vec<Tried>,
    /// The chosen candidate (an index into `tried`); `None` when nothing could be measured
    /// and the default was taken unmeasured.
    pub chosen: Option<usize>,
    /// Why, in one sentence.
    pub reason: String,
}

/// One candidate and its validation score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tried {
    /// The parameters, as [`describe`] shows them.
    pub label: String,
    /// The parameters.
    pub params: FitParams,
    /// The objective on the validation rows; `None` when it could not be fitted.
    pub score: Option<f64>,
    /// Why it was not measured, if it was not.
    pub note: Option<String>,
}

/// The parameters that matter for `p`'s algorithm, in a few words: "ease (binary,
/// 180-day half-life, lambda 300)".
pub fn describe(p: &FitParams) -> String {
    let w = &p.weighting;
    let mut parts = vec![match w.scheme {
        Scheme::Binary => "binary".to_string(),
        Scheme::Count => "counts".to_string(),
        Scheme::Log => "log counts".to_string(),
        Scheme::Bm25 { k1, b } => format!("bm25 k1 {k1} b {b}"),
        Scheme::TfIdf => "tf-idf".to_string(),
    }];
    if let Some(h) = w.half_life_days {
        parts.push(format!("{h}-day half-life"));
    }
    let shrinkage = (p.similarity.shrinkage > 0.0).then(|| format!("shrinkage {}", p.similarity.shrinkage));
    match p.algorithm {
        Algorithm::ItemKnn => {
            parts.push(format!("{} neighbours", p.neighbors));
            parts.push(match p.similarity.measure {
                Measure::Rp3Beta { alpha, beta } => format!("rp3beta alpha {alpha} beta {beta}"),
                m => format!("{} similarity", m.name()),
            });
            parts.extend(shrinkage);
            parts.extend(p.sum_block.map(|b| format!("sums over blocks of {b} customers")));
        }
        Algorithm::UserKnn => {
            parts.push(format!("{} neighbours", p.neighbors));
            parts.extend(shrinkage);
        }
        Algorithm::Ease => parts.push(format!("lambda {}", p.ease.lambda)),
        Algorithm::Als => parts.push(format!(
            "{} factors, regularisation {}, {} iterations",
            p.als.factors,
            regularization(&p.als),
            p.als.iterations
        )),
        Algorithm::Popularity | Algorithm::BuyAgain => {}
    }
    if p.buy_again_weight > 0.0 {
        parts.push(format!("buy-again weight {}", p.buy_again_weight));
    }
    format!("{} ({})", p.algorithm.name(), parts.join(", "))
}

/// ALS's penalty: the number, or for a relative one (not yet fitted) "auto", "auto x 0.1"
/// for a tenth of the default, and so on.
fn regularization(p: &AlsParams) -> String {
    if !p.relative {
        return p.regularization.to_string();
    }
    if p.regularization == RELATIVE_REGULARIZATION {
        return "auto".to_string();
    }
    // On the shortest decimal forms, so that a tenth of 2 reads 0.1, not 0.099999994.
    let short = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::from(x));
    format!("auto x {}", short(p.regularization) / short(RELATIVE_REGULARIZATION))
}
