//! Customer value: "here is a purchase log, tell me what each customer is worth and who is
//! leaving".
//!
//! The stages, one module each: [`summary`] (per customer: repeat purchases `x`, recency
//! `t_x`, age `T`, spend), [`fit`] (BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma by maximum
//! likelihood over the distinct `(x, t_x, T)` rows, with standard errors and boundary
//! solutions named) and [`score`] (P(alive), expected purchases, churn risk, expected spend,
//! lifetime value, tiers, RFM segments). The likelihoods live in [`bgnbd`], [`pareto`] and
//! [`gamma`]; the special functions and the optimiser beside them.
//!
//! ```
//! use cobuy::value::{fit, Distinct, Model};
//! // CDNOW's published single-customer figure (Fader, Hardie & Lee 2005).
//! let m = fit::Purchases {
//!     model: Model::BgNbd,
//!     params: [0.2426, 4.4136, 0.7929, 2.4259],
//!     log_likelihood: 0.0, std_errors: [None; 4], boundary: [None; 4], customers: 1.0, iterations: 0,
//! };
//! assert!((m.expected(26.0, 30.857, 31.0, 52.0) - 25.757).abs() < 5e-3);
//! # let _ = Distinct::default();
//! ```

pub mod bgnbd;
pub mod churn;
pub mod fit;
pub mod gamma;
pub mod holdout;
pub mod optim;
pub mod pareto;
pub mod report;
pub mod score;
pub mod special;
pub mod summary;
pub mod table;
pub mod wallet;

pub use churn::{ChurnChoice, ChurnScore};
pub use fit::{Distinct, Model, Purchases, SpendFit, fit as fit_model, fit_spend};
pub use report::{Section, ValueReport};
pub use score::{CustomerScore, ScoreOptions, Tier, TierBasis, TierBy, score};
pub use summary::{CustomerSummary, Occasion, SummaryOptions, SummaryStats, summarize};
pub use table::CustomerTable;
pub use wallet::{Gap, Wallet, WalletParams};

/// Why customer value could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// The purchases have no times.
    #[error("the purchases have no times: customer value needs a purchase time column (--time-col)")]
    NoTimes,
    /// No purchase rows (or none up to the end of the observation).
    #[error("no purchases to summarise")]
    NoPurchases,
    /// Nobody bought twice: no repeat-purchase model can be fitted.
    #[error(
        "no customer bought more than once (on more than one day or basket): the repeat-purchase models cannot be fitted"
    )]
    NoRepeatPurchases,
    /// Fewer than two customers with repeat purchases of positive value.
    #[error("the spend model needs at least two customers with repeat purchases of positive value")]
    NoRepeatSpend,
    /// The likelihood is not finite at the starting values.
    #[error("{model}: the likelihood is not finite at the starting values")]
    BadStart {
        /// The model.
        model: String,
    },
    /// The optimiser did not converge.
    #[error("{model} did not converge in {iterations} iterations (largest gradient component {gradient:.3e})")]
    NotConverged {
        /// The model.
        model: String,
        /// Iterations taken.
        iterations: usize,
        /// The largest free gradient component at the end.
        gradient: f64,
    },
    /// A bad option.
    #[error("{0}")]
    Options(String),
}

/// One model's fit, or why it failed.
pub type Attempt = (Model, Result<Purchases, ValueError>);

/// The models `fit_best` tries: every model (Pareto/NBD's hypergeometric function is evaluated
/// near `z = 1` by the connection formula, so no part of its search is slow).
pub const AUTO: [Model; 3] = Model::ALL;

/// The one rule that picks the repeat-purchase model, for the customers file, its
/// holdout check and `cobuy eval`: the model named, or with `auto` the best calibration
/// log-likelihood ([`fit_best`]). Said in the log and the reports.
pub fn choice_rule(named: Option<Model>) -> &'static str {
    if named.is_some() { "the model named" } else { "auto: the best log-likelihood of the three" }
}

/// The (repeat purchases, mean repeat spend) pairs Gamma-Gamma is fitted on: the customers
/// with repeat spend.
pub fn spend_pairs(summaries: &[CustomerSummary]) -> Vec<(f64, f64)> {
    summaries.iter().filter(|s| s.spend_n > 0).map(|s| (f64::from(s.spend_n), s.spend_mean)).collect()
}

/// The [`AUTO`] models fitted, and the best by likelihood (the first on a tie): the models
/// have four parameters each, so the likelihoods compare directly. Models that fail are
/// returned with their errors; an error only when all fail.
pub fn fit_best(d: &Distinct) -> Result<(Purchases, Vec<Attempt>), ValueError> {
    let all: Vec<Attempt> = AUTO.iter().map(|&m| (m, fit_model(m, d))).collect();
    let best = all
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .fold(None::<&Purchases>, |b, f| match b {
            Some(b) if b.log_likelihood >= f.log_likelihood => Some(b),
            _ => Some(f),
        })
        .cloned();
    match best {
        Some(b) => Ok((b, all)),
        None => Err(all.into_iter().next().and_then(|(_, r)| r.err()).unwrap_or(ValueError::NoRepeatPurchases)),
    }
}
