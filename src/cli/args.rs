//! The flag groups that several commands share, parsed once and resolved into the library's
//! validated options.
//!
//! Each group is a plain struct that clap fills from flags and serde from a job file's table
//! (low-level arguments: strings and numbers as the user wrote them). Beside each group is
//! the function that resolves it into the library's checked option struct (high-level
//! arguments: `ingest_options`, `fit_params`, `similarity_params`, `FilterArgs::resolve`,
//! `CatalogArgs::read`, `UpsellArgs::params`, `split_method`, `targets`), so a flag and the
//! job-file key of the same name always mean the same thing.
//!
//! One default per parameter: it is written once, in the flag's `default_value`. A group
//! whose every key may be left out is `#[serde(default)]` and its `Default` is what clap
//! makes of no flags at all ([`flag_defaults`]), so a missing key and a missing flag cannot
//! drift apart. `[input]` has a required key (`purchases`), so serde cannot default it as a
//! whole; its defaulted key reads the same constant as its flag.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use cobuy::algo::similarity::{Measure, SimilarityParams, Ties};
use cobuy::eval::Target;
use cobuy::eval::select::{self, AutoParams, Pins};
use cobuy::eval::split::{Cutoff, SplitMethod};
use cobuy::ids::{IdTable, ItemIdx};
use cobuy::ingest::{self, ColumnRef, Columns, IngestOptions, PurchaseLog, Returns};
use cobuy::matrix::{Interactions, Scheme, Weighting};
use cobuy::model::{FitInfo, FitParams, Model};
use cobuy::offers::catalog::{Catalog, CatalogColumns, CatalogOptions, CatalogSummary};
use cobuy::offers::upsell::{PairMeasure, UpsellParams};
use cobuy::recommend::{Filter, ResolvedFilter};

use super::paths::{Files, catalog_rejects_beside, rejects_beside};
use super::{Log, bad, create_parent, load_model, lookup_ids, read_ids};

/// What clap makes of no flags at all: the defaults of a group whose every flag has one.
/// Serde fills a job file's missing keys from it, so both read the one `default_value`.
pub(super) fn flag_defaults<T: Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    let matches = cmd.try_get_matches_from(std::iter::empty::<String>());
    // Fails only if a group gains a flag without a default: a programming error, caught by
    // the tests below, never by user input.
    matches.and_then(|m| T::from_arg_matches(&m)).expect("every flag of the group has a default")
}

// ---------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------

/// The most worker threads `--threads` (or a job's `threads`) may ask for: more than any
/// machine cobuy runs on has cores, and a fixed number, so a job file valid on one machine
/// is valid on all. Each thread costs start-up time and a stack: 10,000 took minutes.
pub const MAX_THREADS: usize = 1024;

/// Starts the worker threads (0: one per core).
pub fn set_threads(n: usize) -> Result<()> {
    if n > MAX_THREADS {
        return Err(bad(format!(
            "--threads {n}: at most {MAX_THREADS} worker threads (0, the default, is one per core)"
        )));
    }
    rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("cannot start the worker threads")
}

/// Starts the worker threads of a job file: the `--threads` flag wins over the job's
/// `threads` key.
pub fn set_job_threads(flag: usize, job: Option<usize>) -> Result<()> {
    set_threads(if flag > 0 { flag } else { job.unwrap_or(0) })
}

// ---------------------------------------------------------------------------------------
// Input: the purchases file and its columns
// ---------------------------------------------------------------------------------------

const RETURNS: &str = "net";

/// How to read the purchases file (flags, or the `[input]` table of a job file).
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct InputArgs {
    /// Purchases file: CSV or TSV, plain or gzip; `-` reads standard input.
    #[arg(long)]
    pub purchases: PathBuf,
    /// Customer id column: header name or 1-based position (default: the header column
    /// with a well-known name, such as CustomerID, customer_id, household_id or user_id;
    /// none or several is an error).
    #[arg(long)]
    #[serde(default)]
    pub customer_col: Option<String>,
    /// Item id column: header name or 1-based position (default: the header column with a
    /// well-known name, such as StockCode, product_id, item_id or sku).
    #[arg(long)]
    #[serde(default)]
    pub item_col: Option<String>,
    /// Purchase time column (unix seconds, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, RFC 3339).
    #[arg(long)]
    #[serde(default)]
    pub time_col: Option<String>,
    /// Quantity column (negative quantities are returns).
    #[arg(long)]
    #[serde(default)]
    pub quantity_col: Option<String>,
    /// Basket or order id column.
    #[arg(long)]
    #[serde(default)]
    pub basket_col: Option<String>,
    /// Unit price column (amount = quantity x price).
    #[arg(long)]
    #[serde(default)]
    pub price_col: Option<String>,
    /// Line amount column (instead of a unit price).
    #[arg(long)]
    #[serde(default)]
    pub amount_col: Option<String>,
    /// Rating column.
    #[arg(long)]
    #[serde(default)]
    pub rating_col: Option<String>,
    /// Field delimiter: , \t ; | or :: (default: sniffed from the first line).
    #[arg(long)]
    #[serde(default)]
    pub delimiter: Option<String>,
    /// The file has no header line.
    #[arg(long)]
    #[serde(default)]
    pub no_header: bool,
    /// Rows rated below this are seen, not bought (needs --rating-col).
    #[arg(long, allow_negative_numbers = true)]
    #[serde(default)]
    pub min_value: Option<f64>,
    /// Negative quantities: net (default), ignore or reject.
    #[arg(long, default_value = RETURNS)]
    #[serde(default = "InputArgs::returns")]
    pub returns: String,
    /// Skip bad rows (counted, and written to the rejects file) instead of stopping.
    #[arg(long)]
    #[serde(default)]
    pub skip_invalid: bool,
    /// Rejects file, with --skip-invalid (default: beside the command's output, with
    /// .rejects.csv added).
    #[arg(long)]
    #[serde(default)]
    pub rejects: Option<PathBuf>,
}

impl InputArgs {
    fn returns() -> String {
        RETURNS.into()
    }
}

/// A column flag's value: a header name or a 1-based position.
fn column(s: &str, flag: &str) -> Result<ColumnRef> {
    s.parse().map_err(|e| bad(format!("{flag}: {e}")))
}

/// The checked ingest options; with `--skip-invalid` and no `--rejects`, bad rows go to
/// `MODEL_PATH.rejects.csv`.
pub fn ingest_options(a: &InputArgs, model_path: &Path) -> Result<IngestOptions> {
    let opt = |c: &Option<String>, flag| c.as_deref().map(|s| column(s, flag)).transpose();
    // Not given: found by name in the header, and logged (never a guess by position).
    let required = |c: &Option<String>, flag| c.as_deref().map_or(Ok(ColumnRef::Detect), |s| column(s, flag));
    let columns = Columns {
        customer: required(&a.customer_col, "--customer-col")?,
        item: required(&a.item_col, "--item-col")?,
        quantity: opt(&a.quantity_col, "--quantity-col")?,
        price: opt(&a.price_col, "--price-col")?,
        amount: opt(&a.amount_col, "--amount-col")?,
        time: opt(&a.time_col, "--time-col")?,
        basket: opt(&a.basket_col, "--basket-col")?,
        rating: opt(&a.rating_col, "--rating-col")?,
    };
    let delimiter = match a.delimiter.as_deref() {
        None => None,
        Some("," | "comma") => Some(b','),
        Some("\t" | "\\t" | "tab" | "TAB") => Some(b'\t'),
        Some(";" | "semicolon") => Some(b';'),
        Some("|" | "pipe") => Some(b'|'),
        Some("::") => Some(ingest::DOUBLE_COLON),
        Some(other) => return Err(bad(format!("--delimiter takes , \\t ; | or ::, got {other:?}"))),
    };
    let rejects = match (&a.rejects, a.skip_invalid) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(rejects_beside(model_path)),
        (None, false) => None,
    };
    let opts = IngestOptions {
        columns,
        delimiter,
        has_header: !a.no_header,
        returns: a.returns.parse::<Returns>().map_err(bad)?,
        min_value: a.min_value,
        skip_invalid: a.skip_invalid,
        rejects,
        chunk_bytes: ingest::DEFAULT_CHUNK_BYTES,
    };
    opts.check()?;
    Ok(opts)
}

// ---------------------------------------------------------------------------------------
// Model: what to fit and how
// ---------------------------------------------------------------------------------------

/// Model parameters (flags, or the `[fit]` table of a job file).
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ModelArgs {
    /// Where to write the model.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    #[serde(flatten)]
    pub fit: FitArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub similarity: SimilarityArgs,
}

/// What to fit and how, with [`SimilarityArgs`] (also each `[[algorithm]]` of an eval
/// job). Not flattened twice: serde's unknown-key check fails through nested flattening.
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(default)]
pub struct FitArgs {
    /// auto (choose and tune on a validation split of the data), item-knn, user-knn,
    /// popularity, buy-again, als or ease.
    #[arg(long, default_value = "auto")]
    pub algorithm: String,
    /// Neighbours kept per item (item-knn; default 50) or used per customer (user-knn;
    /// default 200).
    #[arg(long)]
    pub neighbors: Option<usize>,
    /// auto (per algorithm: bm25 for item-knn, binary for user-knn, rp3beta and popularity,
    /// log for als and ease, count with a 60-day half-life for buy-again), binary, count,
    /// log, bm25, tfidf, or decay (binary with time decay).
    #[arg(long, default_value = "auto")]
    pub weighting: String,
    /// BM25 k1.
    #[arg(long, default_value_t = 1.2, allow_negative_numbers = true)]
    pub bm25_k1: f32,
    /// BM25 b.
    #[arg(long, default_value_t = 0.75, allow_negative_numbers = true)]
    pub bm25_b: f32,
    /// Time decay half-life in days, on top of any weighting (decay alone: 90).
    #[arg(long, allow_negative_numbers = true)]
    pub half_life_days: Option<f64>,
    /// Where bought items may be recommended, add the customer's own buy-again score at this
    /// weight relative to the collaborative scores (0: off; not for popularity, buy-again).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub buy_again_weight: f32,
    /// auto: what the lists will be used for: new-items (the default filter: bought items
    /// are never offered) or all-items (lists given with --include-bought or a repurchase
    /// window, where bought items compete; auto then tries blends with buy-again). In an
    /// eval job, auto chooses for each target measured instead.
    #[arg(long, default_value = "new-items")]
    pub auto_target: String,
    /// als: latent factors per customer and item.
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// als: L2 regularisation of the factors: auto (twice the data's scale, the square root
    /// of the confidence mass of the item a typical purchase is of; the number is in the
    /// model) or a number.
    #[arg(long, default_value = "auto", allow_negative_numbers = true)]
    pub regularization: Regularization,
    /// als: confidence of a bought pair, 1 + alpha x weight.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub als_alpha: f32,
    /// als: alternating iterations.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// als: conjugate-gradient steps per row and iteration.
    #[arg(long, default_value_t = 3)]
    pub cg_steps: usize,
    /// als: seed of the initial factors.
    #[arg(long, default_value_t = 42)]
    pub als_seed: u64,
    /// ease: the L2 penalty lambda.
    #[arg(long, default_value_t = 500.0, allow_negative_numbers = true)]
    pub ease_lambda: f32,
    /// ease: keep only this many most bought items (0: all).
    #[arg(long, default_value_t = 0)]
    pub ease_items: usize,
    /// Decay reference date (default: the newest purchase).
    #[arg(long)]
    pub reference_date: Option<String>,
    /// item-knn: sum over blocks of this many customers, then the blocks' sums in order, as
    /// a fit spread over machines by blocks (Spark) does, so that both write the same model
    /// bytes (default: one sum, the fastest kernel; a block holding every customer gives its
    /// bytes too). Not with time decay or rp3beta.
    #[arg(long)]
    pub sum_block: Option<usize>,
}

impl Default for FitArgs {
    fn default() -> Self {
        flag_defaults()
    }
}

/// ALS's `--regularization` (or `regularization` key): `auto`, scaled to the data when the
/// model is fitted, or the penalty itself. A job file may give either a number or "auto".
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regularization {
    /// [`cobuy::algo::als::RELATIVE_REGULARIZATION`] times the data's scale.
    Auto,
    /// This penalty (checked with the other ALS parameters).
    Fixed(f32),
}

impl std::str::FromStr for Regularization {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Regularization::Auto),
            t => t.parse().map(Regularization::Fixed).map_err(|_| format!("takes auto or a number, got {s:?}")),
        }
    }
}

impl std::fmt::Display for Regularization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Regularization::Auto => f.write_str("auto"),
            Regularization::Fixed(r) => write!(f, "{r}"),
        }
    }
}

impl Serialize for Regularization {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Regularization::Auto => s.serialize_str("auto"),
            Regularization::Fixed(r) => s.serialize_f32(*r),
        }
    }
}

impl<'de> Deserialize<'de> for Regularization {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f32),
            Word(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Number(r)) => Ok(Regularization::Fixed(r)),
            Ok(Raw::Word(w)) => w.parse().map_err(serde::de::Error::custom),
            Err(_) => Err(serde::de::Error::custom("takes auto or a number")),
        }
    }
}

/// What fitting does: fit these parameters, or choose them on the data first.
#[derive(Debug, Clone, PartialEq)]
pub enum FitPlan {
    /// An algorithm was given.
    Fixed(FitParams),
    /// `algorithm = auto`: the search varies what the user did not set.
    Auto(AutoParams),
}

impl FitPlan {
    /// The algorithm's name, or "auto".
    pub fn name(&self) -> &'static str {
        match self {
            FitPlan::Fixed(p) => p.algorithm.name(),
            FitPlan::Auto(_) => "auto",
        }
    }

    /// Recommends only bought items (buy-again).
    pub fn only_bought(&self) -> bool {
        matches!(self, FitPlan::Fixed(p) if p.algorithm == cobuy::algo::Algorithm::BuyAgain)
    }
}

/// The checked fit plan: `algorithm = auto` (the default) with what the user fixed, or
/// the given algorithm's parameters.
pub fn fit_plan(m: &FitArgs, similarity: &SimilarityArgs) -> Result<FitPlan> {
    if m.algorithm != "auto" {
        return fit_params(m, similarity).map(FitPlan::Fixed);
    }
    if m.sum_block.is_some() {
        return Err(bad("--sum-block applies to --algorithm item-knn, not auto"));
    }
    // The other flags are checked as item-kNN's, the choice when nothing can be measured.
    let base = fit_params(&FitArgs { algorithm: "item-knn".into(), ..m.clone() }, similarity)?;
    let (d, ds) = (FitArgs::default(), SimilarityArgs::default());
    let pins = Pins {
        weighting: m.weighting != d.weighting || m.bm25_k1 != d.bm25_k1 || m.bm25_b != d.bm25_b,
        half_life: m.half_life_days.is_some() || m.weighting == "decay" || m.reference_date.is_some(),
        neighbors: m.neighbors.is_some(),
        similarity: similarity.similarity != ds.similarity
            || similarity.alpha != ds.alpha
            || similarity.rp3_alpha != ds.rp3_alpha
            || similarity.rp3_beta != ds.rp3_beta,
        ease_lambda: m.ease_lambda != d.ease_lambda,
        als: m.factors != d.factors || m.regularization != d.regularization,
        buy_again_weight: m.buy_again_weight != d.buy_again_weight,
    };
    let target = match m.auto_target.as_str() {
        "new-items" => Target::NewItems,
        "all-items" => Target::AllItems,
        other => return Err(bad(format!("--auto-target: unknown {other:?}; accepted: new-items, all-items"))),
    };
    Ok(FitPlan::Auto(AutoParams {
        base,
        pins,
        target,
        max_customers: select::MAX_CUSTOMERS,
        budget: select::Budget::default(),
    }))
}

/// The checked fit parameters of a given algorithm: its weighting (`auto` resolved per
/// algorithm) and its similarity.
pub fn fit_params(m: &FitArgs, similarity: &SimilarityArgs) -> Result<FitParams> {
    let algorithm: cobuy::algo::Algorithm = m
        .algorithm
        .parse()
        .map_err(|e: String| bad(format!("--algorithm: {}", e.replace("accepted: ", "accepted: auto, "))))?;
    let similarity = similarity_params(similarity)?;
    let auto = algorithm.default_weighting(&similarity.measure);
    let scheme = match m.weighting.as_str() {
        "auto" => match auto.scheme {
            Scheme::Bm25 { .. } => Scheme::Bm25 { k1: m.bm25_k1, b: m.bm25_b },
            other => other,
        },
        "binary" | "decay" => Scheme::Binary,
        "count" => Scheme::Count,
        "log" => Scheme::Log,
        "bm25" => Scheme::Bm25 { k1: m.bm25_k1, b: m.bm25_b },
        "tfidf" | "tf-idf" => Scheme::TfIdf,
        other => {
            return Err(bad(format!(
                "--weighting takes auto, binary, count, log, bm25, tfidf or decay, got {other:?}"
            )));
        }
    };
    let half_life_days = m
        .half_life_days
        .or((m.weighting == "decay").then_some(90.0))
        .or(auto.half_life_days.filter(|_| m.weighting == "auto"));
    let reference_time = match &m.reference_date {
        None => None,
        Some(d) => Some(cobuy::time::parse(d).ok_or_else(|| bad(format!("--reference-date: {d:?} is not a date")))?),
    };
    if reference_time.is_some() && half_life_days.is_none() {
        return Err(bad("--reference-date applies to time decay: give --half-life-days too"));
    }
    let params = FitParams {
        algorithm,
        neighbors: m.neighbors.unwrap_or(algorithm.default_neighbors()),
        weighting: Weighting { scheme, half_life_days, reference_time },
        similarity,
        buy_again_weight: m.buy_again_weight,
        als: cobuy::algo::als::AlsParams {
            factors: m.factors,
            regularization: match m.regularization {
                Regularization::Auto => cobuy::algo::als::RELATIVE_REGULARIZATION,
                Regularization::Fixed(r) => r,
            },
            relative: m.regularization == Regularization::Auto,
            alpha: m.als_alpha,
            iterations: m.iterations,
            cg_steps: m.cg_steps,
            seed: m.als_seed,
        },
        ease: cobuy::algo::ease::EaseParams { lambda: m.ease_lambda, max_items: m.ease_items, ..Default::default() },
        sum_block: m.sum_block,
    };
    params.check()?;
    Ok(params)
}

/// How neighbours are measured (fit flags; also `similar-customers`).
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(default)]
pub struct SimilarityArgs {
    /// cosine, jaccard, asymmetric-cosine, lift or rp3beta (item-knn only).
    #[arg(long, default_value = "cosine")]
    pub similarity: String,
    /// Asymmetric cosine alpha (0.5 is cosine).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub alpha: f32,
    /// RP3beta: exponent on the walk's transition probabilities.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub rp3_alpha: f32,
    /// RP3beta: popularity penalty exponent.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub rp3_beta: f32,
    /// Shrinkage: similarities times shared / (shared + S).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub shrinkage: f32,
    /// Minimum number of shared items (or customers) for a neighbour.
    #[arg(long, default_value_t = 0)]
    pub min_shared: u32,
    /// Ties at the k-th neighbour: lowest-index, or visit-order to reproduce a row-by-row
    /// heap kernel such as implicit's (a heap of k + 1, the item itself among them; slower).
    #[arg(long, default_value = "lowest-index")]
    pub ties: String,
}

impl Default for SimilarityArgs {
    fn default() -> Self {
        flag_defaults()
    }
}

/// The checked similarity: measure, shrinkage, overlap and tie rule.
pub fn similarity_params(a: &SimilarityArgs) -> Result<SimilarityParams> {
    let measure = match a.similarity.as_str() {
        "cosine" => Measure::Cosine,
        "jaccard" => Measure::Jaccard,
        "asymmetric-cosine" => Measure::AsymmetricCosine { alpha: a.alpha },
        "lift" => Measure::Lift,
        "rp3beta" => Measure::Rp3Beta { alpha: a.rp3_alpha, beta: a.rp3_beta },
        other => {
            return Err(bad(format!(
                "--similarity: unknown measure {other:?}; accepted: cosine, jaccard, asymmetric-cosine, lift, rp3beta"
            )));
        }
    };
    let ties = match a.ties.as_str() {
        "lowest-index" => Ties::LowestIndex,
        "visit-order" => Ties::VisitOrder,
        other => return Err(bad(format!("--ties: unknown rule {other:?}; accepted: lowest-index, visit-order"))),
    };
    let p = SimilarityParams { measure, shrinkage: a.shrinkage, min_shared: a.min_shared, ties };
    p.check().map_err(bad)?;
    Ok(p)
}

/// One configuration of an eval job (`[[algorithm]]`) or of a tune space (`[[space]]`): the
/// fit keys, with a name.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct NamedFit {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub fit: FitArgs,
    #[serde(flatten)]
    pub similarity: SimilarityArgs,
}

// ---------------------------------------------------------------------------------------
// Affinity: the collaborative model of an offer command
// ---------------------------------------------------------------------------------------

/// The collaborative model an offer command (`cross-sell`, `up-sell`) scores with: one
/// saved by `cobuy fit` from the same purchases, or one fitted here with the fit options.
#[derive(Args, Debug)]
pub struct AffinityArgs {
    /// A model saved by `cobuy fit` from the same purchases, used instead of fitting one
    /// here (then the fit options do not apply).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub fit: FitArgs,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
}

/// An offer command's model: saved (loaded before the purchases are read), or to be fitted.
pub enum Affinity {
    Saved(Box<Model>, PathBuf),
    Fit(FitPlan),
}

impl AffinityArgs {
    /// Adds the saved model it reads.
    pub fn files(&self, files: Files) -> Files {
        files.input("model", self.model.as_deref())
    }

    /// Checks the flags: the fit options, or, beside a saved model, that none is given
    /// (they would silently not apply). Reads nothing.
    pub fn check(&self) -> Result<()> {
        let Some(path) = &self.model else { return fit_plan(&self.fit, &self.similarity).map(drop) };
        let json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| anyhow::anyhow!(e));
        if json(serde_json::to_value(&self.fit))? != json(serde_json::to_value(FitArgs::default()))?
            || json(serde_json::to_value(&self.similarity))? != json(serde_json::to_value(SimilarityArgs::default()))?
        {
            return Err(bad(format!(
                "--model {}: that model is already fitted, so the fit options (--algorithm, --weighting, ...) would not \
                 apply; leave them out, or leave --model out to fit a model here",
                path.display()
            )));
        }
        Ok(())
    }

    /// The checked fit plan, or the saved model, loaded (call it after the files are
    /// checked and before the purchases are read: a bad model file stops at once).
    pub fn resolve(&self, log: Log) -> Result<Affinity> {
        self.check()?;
        Ok(match &self.model {
            None => Affinity::Fit(fit_plan(&self.fit, &self.similarity)?),
            Some(path) => Affinity::Saved(Box::new(load_model(path, log)?), path.clone()),
        })
    }
}

impl Affinity {
    /// The model over `plog`'s customers and items, said in the log: the saved one, which
    /// must have been fitted from the same purchases (the same ids), or the plan fitted on
    /// `interactions` (the merge of `plog`).
    pub fn model(self, plog: &PurchaseLog, interactions: Interactions, info: FitInfo, log: Log) -> Result<Model> {
        match self {
            Affinity::Fit(plan) => {
                let start = Instant::now();
                let model = super::fit_on_log(plog, None, interactions, &plan, info, log)?;
                log.info(format!(
                    "affinity: fitted {} in {:.1}s",
                    cobuy::model::describe(model.params()),
                    start.elapsed().as_secs_f64()
                ));
                Ok(model)
            }
            Affinity::Saved(model, path) => {
                if model.items() != &plog.items || model.customers() != &plog.customers {
                    return Err(bad(format!(
                        "--model {}: fitted from other purchases ({} customers and {} items; these have {} and {}); \
                         refit it from these with cobuy fit, or leave --model out to fit one here",
                        path.display(),
                        model.customers().len(),
                        model.items().len(),
                        plog.customers.len(),
                        plog.items.len()
                    )));
                }
                log.info(format!("affinity: {}, {}", path.display(), cobuy::model::describe(model.params())));
                Ok(*model)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Filter: which items may be recommended
// ---------------------------------------------------------------------------------------

/// Which items may be offered at all: item lists and category lists (`recommend`,
/// `fold-in`, `cross-sell`; the same keys in a job's `[recommend]`).
#[derive(Args, Deserialize, Serialize, Clone, Debug, Default)]
#[serde(default)]
pub struct FilterArgs {
    /// Only recommend these items (file: one item id per line).
    #[arg(long)]
    pub allow: Option<PathBuf>,
    /// Never recommend these items (file: one item id per line).
    #[arg(long)]
    pub deny: Option<PathBuf>,
    /// Only recommend items in these categories (file: one category name per line, any
    /// level; needs --catalog).
    #[arg(long)]
    pub categories: Option<PathBuf>,
    /// Never recommend items in these categories (file: one name per line; needs --catalog).
    #[arg(long)]
    pub exclude_categories: Option<PathBuf>,
}

/// The items a [`FilterArgs`] allows (`None`: all) and denies, as model indices.
pub type ItemLists = (Option<Vec<ItemIdx>>, Vec<ItemIdx>);

impl FilterArgs {
    /// Adds the lists it reads (and the catalogue, when a category list needs it).
    pub fn files(&self, catalog: &CatalogArgs, files: Files) -> Files {
        files
            .input("allow list", self.allow.as_deref())
            .input("deny list", self.deny.as_deref())
            .input("category list", self.categories.as_deref())
            .input("category list", self.exclude_categories.as_deref())
            .input("catalogue", catalog.catalog.as_deref().filter(|_| self.needs_catalog()))
    }

    /// Whether a category list asks for the catalogue.
    pub fn needs_catalog(&self) -> bool {
        self.categories.is_some() || self.exclude_categories.is_some()
    }

    /// The allowed and denied items of a model's `items`: item lists looked up, category
    /// lists through `catalog` (which they need). An allow list naming no known item would
    /// leave nothing to offer: an error; a deny list naming none denies nothing: a warning.
    pub fn lists(&self, items: &IdTable, catalog: Option<&Catalog>, log: Log) -> Result<ItemLists> {
        self.lists_in((items, "the model"), catalog, log)
    }

    /// [`FilterArgs::lists`] over the items of `place` (said in the warnings).
    pub fn lists_in(&self, items: (&IdTable, &str), catalog: Option<&Catalog>, log: Log) -> Result<ItemLists> {
        let ids = |p: &Option<PathBuf>, what, required| -> Result<Option<Vec<ItemIdx>>> {
            p.as_deref()
                .map(|p| Ok(lookup_ids(p, what, items, required, log)?.into_iter().map(ItemIdx).collect()))
                .transpose()
        };
        let items = items.0;
        let mut allow = ids(&self.allow, "item", true)?;
        let mut deny = ids(&self.deny, "item", false)?.unwrap_or_default();
        if self.needs_catalog() {
            let catalog = catalog.ok_or_else(|| {
                bad("--categories and --exclude-categories need --catalog FILE (with --catalog-category-cols)")
            })?;
            let (only, not) = category_filter(catalog, items, &self.categories, &self.exclude_categories, log)?;
            if let Some(only) = only {
                // Both lists: an item must be on each.
                allow = Some(match allow {
                    None => only,
                    Some(a) => a.into_iter().filter(|i| only.contains(i)).collect(),
                });
            }
            deny.extend(not);
        }
        Ok((allow, deny))
    }

    /// The model's filter for `recommend` and `fold-in`: these lists (the catalogue read
    /// only when a category list needs it) and `bought`'s rule for bought items.
    pub fn resolve(
        &self,
        bought: &BoughtArgs,
        model: &Model,
        catalog: &CatalogArgs,
        out: &Path,
        log: Log,
    ) -> Result<ResolvedFilter> {
        let read = if self.needs_catalog() { catalog.read(false, out, log)? } else { None };
        let (allow, deny) = self.lists(model.items(), read.as_ref().map(|(c, _)| c), log)?;
        let as_of = match &bought.as_of {
            None => None,
            Some(d) => Some(cobuy::time::parse(d).ok_or_else(|| bad(format!("--as-of: {d:?} is not a date")))?),
        };
        let w = model.params().buy_again_weight;
        if w > 0.0 && !bought.include_bought && bought.repurchase_after_days.is_none() {
            log.info(format!(
                "warning: the model's buy-again weight ({w}) changes nothing here: bought items are excluded; give \
                 --include-bought or --repurchase-after-days to offer them again"
            ));
        }
        let filter = Filter {
            include_bought: bought.include_bought,
            repurchase_after_days: bought.repurchase_after_days,
            as_of,
            allow,
            deny,
        };
        Ok(model.filter(&filter)?)
    }
}

/// Whether bought items may be recommended again (`recommend`, `fold-in`; cross-sell
/// offers only what a customer has not bought).
#[derive(Args, Deserialize, Serialize, Clone, Debug, Default)]
#[serde(default)]
pub struct BoughtArgs {
    /// Also recommend items the customer already bought.
    #[arg(long)]
    pub include_bought: bool,
    /// Allow a bought item again this many days after its last purchase.
    #[arg(long, allow_negative_numbers = true)]
    pub repurchase_after_days: Option<f64>,
    /// "Now" for repurchase windows (default: the newest purchase).
    #[arg(long)]
    pub as_of: Option<String>,
}

/// The customer's value beside the offers (`recommend`, `cross-sell`, `up-sell`, and the
/// nightly job's `[recommend]` table, fed by its `[customers]` step).
#[derive(Args, Deserialize, Serialize, Clone, Debug, Default)]
#[serde(default)]
pub struct ValueArgs {
    /// A customers file written by `cobuy customers`: every row gets the customer's tier,
    /// churn risk (churn_risk) and lifetime value.
    #[arg(long)]
    pub customer_value: Option<PathBuf>,
    /// Order the customers by churn-risk or value (lifetime value), highest first, those
    /// without one last (needs --customer-value; default: the usual order).
    #[arg(long)]
    pub order: Option<String>,
    /// Only customers of these tiers: top, middle, bottom, comma-separated (needs
    /// --customer-value).
    #[arg(long, value_delimiter = ',')]
    pub only_tier: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------------------

/// How to read a product catalogue (`--catalog` and its column flags; the same keys in a
/// job file's `[recommend]` table).
#[derive(Args, Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct CatalogArgs {
    /// Product catalogue: CSV with an item id and one to four category levels.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Catalogue item id column (name or 1-based position; default: the header column with
    /// a well-known item name, such as item_id, product_id or StockCode, said in the log).
    #[arg(long)]
    pub catalog_item_col: Option<String>,
    /// Catalogue category columns, top level first, comma-separated (or one column with
    /// --catalog-separator).
    #[arg(long, value_delimiter = ',')]
    pub catalog_category_cols: Vec<String>,
    /// Splits the one category column into levels (such as ">").
    #[arg(long)]
    pub catalog_separator: Option<String>,
    /// Catalogue name column.
    #[arg(long)]
    pub catalog_name_col: Option<String>,
    /// Catalogue price column.
    #[arg(long)]
    pub catalog_price_col: Option<String>,
    /// Catalogue brand or tier column.
    #[arg(long)]
    pub catalog_brand_col: Option<String>,
}

impl Default for CatalogArgs {
    fn default() -> Self {
        flag_defaults()
    }
}

impl CatalogArgs {
    /// Adds the catalogue and, with `skip_invalid`, its rejects file beside `out`.
    pub fn files(&self, skip_invalid: bool, out: &Path, files: Files) -> Files {
        let rejects = self.catalog.as_ref().filter(|_| skip_invalid).map(|_| catalog_rejects_beside(out));
        files.input("catalogue", self.catalog.as_deref()).output("catalogue rejects file", rejects.as_deref())
    }

    /// Reads the catalogue, if one was given, logging its summary. With `skip_invalid` (the
    /// command's `--skip-invalid`), bad catalogue rows are counted and written to
    /// `OUT.catalog-rejects.csv` beside the command's output instead of stopping the run.
    pub fn read(&self, skip_invalid: bool, out: &Path, log: Log) -> Result<Option<(Catalog, CatalogSummary)>> {
        let Some(path) = &self.catalog else { return Ok(None) };
        let col = |s: &str, flag: &str| s.parse::<ColumnRef>().map_err(|e| bad(format!("{flag}: {e}")));
        let opt = |s: &Option<String>, flag: &str| s.as_deref().map(|s| col(s, flag)).transpose();
        if self.catalog_category_cols.is_empty() {
            return Err(bad("--catalog needs --catalog-category-cols (one to four columns, top level first)"));
        }
        let columns = CatalogColumns {
            item: self.catalog_item_col.as_deref().map_or(Ok(ColumnRef::Detect), |c| col(c, "--catalog-item-col"))?,
            name: opt(&self.catalog_name_col, "--catalog-name-col")?,
            category: self
                .catalog_category_cols
                .iter()
                .map(|c| col(c, "--catalog-category-cols"))
                .collect::<Result<Vec<_>>>()?,
            category_separator: self.catalog_separator.clone(),
            price: opt(&self.catalog_price_col, "--catalog-price-col")?,
            brand: opt(&self.catalog_brand_col, "--catalog-brand-col")?,
            launch: None,
        };
        let start = Instant::now();
        let mut opts = CatalogOptions::new(columns);
        if skip_invalid {
            let rejects = catalog_rejects_beside(out);
            create_parent(&rejects)?;
            (opts.skip_invalid, opts.rejects) = (true, Some(rejects));
        }
        let (catalog, s) = Catalog::read(path, &opts)?;
        if let Some((name, position)) = &s.item_col_found {
            log.info(format!(
                "catalogue item ids: column {name} (column {position}), found by its name (--catalog-item-col to \
                 choose another)"
            ));
        }
        log.info(format!(
            "read the catalogue {}: {} rows, {} items, categories per level {:?} in {:.1}s",
            path.display(),
            s.rows_read,
            s.items,
            s.categories_per_level,
            start.elapsed().as_secs_f64()
        ));
        if s.rejected_rows > 0 {
            let reasons: Vec<String> = s.rejected_by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
            log.info(format!(
                "{} catalogue rows rejected ({}), written to {}",
                s.rejected_rows,
                reasons.join(", "),
                opts.rejects.as_deref().map_or(String::new(), |p| p.display().to_string())
            ));
        }
        Ok(Some((catalog, s)))
    }
}

/// The items of `items` in the categories named in `only` (one name per line, any level;
/// `None` when no file) and those in the categories named in `not`. Names matching no
/// item's category are reported; an `only` list matching none is an error.
pub fn category_filter(
    catalog: &Catalog,
    items: &IdTable,
    only: &Option<PathBuf>,
    not: &Option<PathBuf>,
    log: Log,
) -> Result<(Option<Vec<ItemIdx>>, Vec<ItemIdx>)> {
    let aligned = catalog.align(items);
    let names = |path: &Option<PathBuf>| -> Result<Option<Vec<String>>> {
        path.as_deref().map(|p| Ok(read_ids(p)?.into_iter().map(|(_, s)| s).collect())).transpose()
    };
    let in_any = |item: Option<u32>, list: &[String]| {
        item.is_some_and(|c| {
            catalog.item(c).category.iter().any(|&n| list.iter().any(|l| l == catalog.category_name(n)))
        })
    };
    let mut lists = Vec::new();
    for (flag, path) in [("--categories", only), ("--exclude-categories", not)] {
        let list = names(path)?;
        if let Some(list) = &list {
            let unknown: Vec<&String> = list
                .iter()
                .filter(|n| !aligned.per_item.iter().any(|&c| in_any(c, std::slice::from_ref(*n))))
                .collect();
            if !unknown.is_empty() {
                log.info(format!("{flag}: {} names match no item's category: {unknown:?}", unknown.len()));
            }
        }
        let matched: Vec<ItemIdx> = list
            .as_ref()
            .map(|l| {
                (0..aligned.per_item.len())
                    .filter(|&i| in_any(aligned.per_item[i], l))
                    .map(|i| ItemIdx(i as u32))
                    .collect()
            })
            .unwrap_or_default();
        lists.push((list.is_some(), matched));
    }
    let (_, deny) = lists.pop().unwrap_or_default();
    let (allow_given, allow) = lists.pop().unwrap_or_default();
    if allow_given && allow.is_empty() {
        return Err(bad("--categories: none of the categories holds an item of the purchases"));
    }
    Ok((allow_given.then_some(allow), deny))
}

// ---------------------------------------------------------------------------------------
// Cross-sell settings of an evaluation
// ---------------------------------------------------------------------------------------

/// The new-categories target's settings (flags, or the `[cross_sell]` table of an eval job).
#[derive(Args, Deserialize, Debug, Clone, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CrossSellEvalArgs {
    /// new-categories target: the category level that counts as "a category" (0: the top
    /// level; default: the catalogue's deepest).
    #[arg(id = "new_category_level", long = "new-category-level")]
    #[serde(rename = "level")]
    pub level: Option<usize>,
}

// ---------------------------------------------------------------------------------------
// Up-sell settings
// ---------------------------------------------------------------------------------------

/// Up-sell settings (flags, or the `[upsell]` table of an eval job).
#[derive(Args, Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct UpsellArgs {
    /// Category level within which upgrades are sought (0: the top level; default: each
    /// item's own, deepest category).
    #[arg(long)]
    pub level: Option<usize>,
    /// Brand grades, lowest first (such as Private,National): a higher grade at no lower
    /// price is an upgrade. Needs --catalog-brand-col.
    #[arg(long, value_delimiter = ',')]
    pub grades: Vec<String>,
    /// An upgrade is at least this share dearer (0.01 = 1%).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub min_step: f64,
    /// The later item must be bought within this many days.
    #[arg(long, default_value_t = 365)]
    pub window_days: u32,
    /// Customers who must have taken an upgrade path for it to be kept.
    #[arg(long = "min-path-count", default_value_t = 3)]
    pub min_path_count: u32,
    /// How a path's count is compared with chance: excess or llr.
    #[arg(long, default_value = "excess")]
    pub pair_measure: String,
    /// Paths scoring below this are dropped (0: taken at least as often as chance).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub min_score: f64,
    /// Price tiers per category for the fallback.
    #[arg(long, default_value_t = 4)]
    pub tiers: u32,
    /// Shrinkage of a path's rate towards the tier fallback, in customers.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub smoothing: f64,
    /// Offers cost at most this multiple of the dearest item the customer bought in the
    /// category (0: no cap).
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    pub price_cap: f64,
    /// An offer's weight halves for every this many days since the anchor purchase, counted
    /// back from the newest purchase (0: no ageing).
    #[arg(long, default_value_t = 120.0, allow_negative_numbers = true)]
    pub anchor_half_life: f64,
    /// Weight of collaborative affinity in an offer's score (0 to 1): the score is
    /// probability^(1 - w) x affinity^w.
    #[arg(long = "affinity-weight", default_value_t = 0.65, allow_negative_numbers = true)]
    pub affinity_weight: f64,
    /// Offer by price tiers and popularity alone, learning nothing from purchase order (for
    /// purchases without times).
    #[arg(long)]
    pub tiers_only: bool,
}

impl Default for UpsellArgs {
    fn default() -> Self {
        flag_defaults()
    }
}

impl UpsellArgs {
    /// The validated library parameters.
    pub fn params(&self) -> Result<UpsellParams> {
        let measure: PairMeasure =
            self.pair_measure.parse().map_err(|e: String| bad(format!("--pair-measure: {e}")))?;
        let p = UpsellParams {
            min_step: self.min_step,
            window_days: self.window_days,
            min_path_count: self.min_path_count,
            pair_measure: measure,
            min_score: self.min_score,
            tiers: self.tiers,
            smoothing: self.smoothing,
            price_cap: self.price_cap,
            affinity_weight: self.affinity_weight,
            anchor_half_life: self.anchor_half_life,
            tiers_only: self.tiers_only,
            ..UpsellParams::default()
        };
        // The library names the field; the flag is the field with dashes.
        p.check().map_err(|e| match e.split_once(' ') {
            Some((field, rest)) => bad(format!("--{} {rest}", field.replace('_', "-"))),
            None => bad(e),
        })?;
        Ok(p)
    }
}

/// Checks that the catalogue flags can give prices and categories, before anything is read.
pub fn check_catalog(catalog: &CatalogArgs, upsell: &UpsellArgs, what: &str) -> Result<()> {
    let need = "--catalog FILE --catalog-item-col ID --catalog-category-cols A,B --catalog-price-col PRICE";
    if catalog.catalog.is_none() {
        return Err(bad(format!("{what} needs a catalogue with a category and a price per item: {need}")));
    }
    if catalog.catalog_price_col.is_none() {
        return Err(bad(format!(
            "{what} needs item prices: the catalogue's price column (--catalog-price-col PRICE); with {need}"
        )));
    }
    if !upsell.grades.is_empty() && catalog.catalog_brand_col.is_none() {
        return Err(bad("--grades needs the catalogue's brand column: --catalog-brand-col BRAND"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Evaluation: split and targets (`eval`, `tune`)
// ---------------------------------------------------------------------------------------

/// How to split (flags, or the `[split]` table).
#[derive(Args, Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct SplitArgs {
    /// time, last-basket or random.
    #[arg(long = "split", default_value = "time")]
    pub method: String,
    /// Time split: the test part starts here (a date or time).
    #[arg(long)]
    pub cutoff: Option<String>,
    /// Time split: the last share of purchases (0 to 1) that is test, instead of --cutoff
    /// (default 0.1 when neither is given).
    #[arg(long)]
    pub test_share: Option<f64>,
    /// Random split: the share of each customer's items held out (default 0.2).
    #[arg(long)]
    pub fraction: Option<f64>,
    /// Random split: the seed (default 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Measure on the validation split (carved from the training part) instead of the test
    /// part: for choosing parameters without looking at the test part.
    #[arg(long)]
    pub validation: bool,
}

impl Default for SplitArgs {
    fn default() -> Self {
        flag_defaults()
    }
}

/// The checked split method. A setting the chosen method does not use is refused rather
/// than silently ignored.
pub fn split_method(a: &SplitArgs) -> Result<SplitMethod> {
    let given = [
        ("--cutoff", "cutoff", a.cutoff.is_some(), "time"),
        ("--test-share", "test_share", a.test_share.is_some(), "time"),
        ("--fraction", "fraction", a.fraction.is_some(), "random"),
        ("--seed", "seed", a.seed.is_some(), "random"),
    ];
    if let Some((flag, key, _, wants)) =
        given.iter().find(|g| g.2 && g.3 != a.method && KNOWN_SPLITS.contains(&&*a.method))
    {
        return Err(bad(format!(
            "{flag} ({key} in [split]) is a setting of the {wants} split, not of the {} split: remove it, or give --split {wants}",
            a.method
        )));
    }
    let m = match a.method.as_str() {
        "time" => {
            let cutoff = match (&a.cutoff, a.test_share) {
                (Some(_), Some(_)) => return Err(bad("give --cutoff or --test-share, not both")),
                (Some(c), None) => Cutoff::At(
                    cobuy::time::parse(c).ok_or_else(|| bad(format!("--cutoff: {c:?} is not a date or time")))?,
                ),
                (None, Some(f)) => Cutoff::LastShare(f),
                (None, None) => Cutoff::LastShare(0.1),
            };
            SplitMethod::Time { cutoff }
        }
        "last-basket" => SplitMethod::LastBasket,
        "random" => SplitMethod::Random { fraction: a.fraction.unwrap_or(0.2), seed: a.seed.unwrap_or(1) },
        other => return Err(bad(format!("--split: unknown method {other:?}; accepted: time, last-basket, random"))),
    };
    m.check().map_err(|e| bad(e.to_string()))?;
    Ok(m)
}

/// The split methods `--split` accepts.
const KNOWN_SPLITS: [&str; 3] = ["time", "last-basket", "random"];

/// What to measure and where to write it (flags, or the `[eval]` table).
#[derive(Args, Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct EvalArgs {
    /// Cut-offs, comma-separated.
    #[arg(long = "k", default_value = "5,10,20", value_delimiter = ',')]
    pub k: Vec<usize>,
    /// Targets, comma-separated: new-items (not bought in training), all-items, upgrades
    /// (dearer items in a category bought before; needs a priced --catalog), new-categories,
    /// customer-value (cobuy customers' models on a time split: holdout purchases, churn,
    /// lifetime value; needs --time-col).
    #[arg(long, default_value = "new-items,all-items", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Metrics to chart, comma-separated (one SVG each).
    #[arg(long, default_value = "ndcg,recall", value_delimiter = ',')]
    pub charts: Vec<String>,
    /// Folder for report.md, report.json and the charts (required).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Also measure another tool's recommendations: NAME:TARGET=FILE, with FILE a CSV
    /// holding customer_id, item_id and rank columns (repeatable).
    #[arg(long = "measure")]
    pub measure: Vec<String>,
    /// Write the split's training and test rows as CSV into this folder (for other tools).
    #[arg(long)]
    pub write_split: Option<PathBuf>,
    /// Leave these items out (file: one item id per line, as recommend's --deny): their
    /// rows are removed before the split, so they are neither trained on, recommended nor
    /// counted as found.
    #[arg(long)]
    pub deny: Option<PathBuf>,
}

impl Default for EvalArgs {
    fn default() -> Self {
        flag_defaults()
    }
}

/// The checked targets, each once, in the order given.
pub fn targets(names: &[String]) -> Result<Vec<Target>> {
    let mut v = Vec::new();
    for n in names {
        let t = match n.trim() {
            "new-items" | "new" => Target::NewItems,
            "all-items" | "all" => Target::AllItems,
            "upgrades" => Target::Upgrades,
            "new-categories" => Target::NewCategories,
            other => {
                return Err(bad(format!(
                    "--targets: unknown target {other:?}; accepted: new-items, all-items, upgrades, new-categories, customer-value"
                )));
            }
        };
        if !v.contains(&t) {
            v.push(t);
        }
    }
    if v.is_empty() {
        return Err(bad("--targets: give one or more of new-items, all-items, upgrades"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Neighbours default per algorithm (user-kNN 200, item-kNN 50); a given number is kept
    /// for either, and pins auto's search.
    #[test]
    fn neighbours_default_per_algorithm() {
        let neighbours = |algorithm: &str, given: Option<usize>| {
            let m = FitArgs { algorithm: algorithm.into(), neighbors: given, ..FitArgs::default() };
            fit_params(&m, &SimilarityArgs::default()).unwrap().neighbors
        };
        assert_eq!(neighbours("user-knn", None), 200);
        assert_eq!(neighbours("item-knn", None), 50);
        assert_eq!(neighbours("user-knn", Some(30)), 30);
        assert_eq!(neighbours("item-knn", Some(30)), 30);
        let pins = |given: Option<usize>| match fit_plan(
            &FitArgs { neighbors: given, ..FitArgs::default() },
            &SimilarityArgs::default(),
        ) {
            Ok(FitPlan::Auto(a)) => a.pins.neighbors,
            other => panic!("{other:?}"),
        };
        assert!(!pins(None) && pins(Some(50)), "a given 50 is pinned too");
    }

    /// ALS's penalty in a job file: a number (integer or not) is the penalty, "auto" the
    /// default; anything else is an error that names what it takes.
    #[test]
    fn regularization_takes_a_number_or_auto() {
        let r = |t: &str| toml::from_str::<FitArgs>(t).map(|f| f.regularization).map_err(|e| e.to_string());
        assert_eq!(r("regularization = 3"), Ok(Regularization::Fixed(3.0)));
        assert_eq!(r("regularization = 0.05"), Ok(Regularization::Fixed(0.05)));
        assert_eq!(r("regularization = \"auto\""), Ok(Regularization::Auto));
        for bad in ["regularization = \"lots\"", "regularization = true"] {
            let e = r(bad).unwrap_err();
            assert!(e.contains("auto or a number"), "{bad}: {e}");
        }
        // The flag and the key print alike (tune turns keys into flags).
        assert_eq!(Regularization::Fixed(0.05).to_string().parse(), Ok(Regularization::Fixed(0.05)));
        assert_eq!(Regularization::Auto.to_string(), "auto");
    }

    /// The defaults a job file gets for a missing key are the flags' defaults, as they were
    /// when each key had its own serde default function.
    #[test]
    fn job_file_defaults_are_the_flag_defaults() {
        let fit: FitArgs = toml::from_str("").unwrap();
        assert_eq!(
            (fit.algorithm.as_str(), fit.neighbors, fit.weighting.as_str(), fit.bm25_k1, fit.bm25_b),
            ("auto", None, "auto", 1.2, 0.75)
        );
        assert_eq!(
            (fit.half_life_days, fit.buy_again_weight, fit.factors, fit.regularization),
            (None, 0.0, 64, Regularization::Auto)
        );
        assert_eq!((fit.als_alpha, fit.iterations, fit.cg_steps, fit.als_seed), (1.0, 15, 3, 42));
        assert_eq!((fit.ease_lambda, fit.ease_items, fit.reference_date), (500.0, 0, None));
        let s: SimilarityArgs = toml::from_str("").unwrap();
        assert_eq!(
            (s.similarity.as_str(), s.alpha, s.rp3_alpha, s.rp3_beta, s.shrinkage, s.min_shared, s.ties.as_str()),
            ("cosine", 0.5, 0.5, 0.5, 0.0, 0, "lowest-index")
        );
        let c: CatalogArgs = toml::from_str("").unwrap();
        assert_eq!((c.catalog, c.catalog_item_col.as_deref(), c.catalog_category_cols.len()), (None, None, 0));
        let u: UpsellArgs = toml::from_str("").unwrap();
        assert_eq!((u.level, u.grades.len(), u.min_step, u.window_days, u.min_path_count), (None, 0, 0.01, 365, 3));
        assert_eq!((u.pair_measure.as_str(), u.min_score, u.tiers, u.smoothing), ("excess", 0.0, 4, 10.0));
        assert_eq!((u.price_cap, u.anchor_half_life, u.affinity_weight, u.tiers_only), (4.0, 120.0, 0.65, false));
        let s: SplitArgs = toml::from_str("").unwrap();
        assert_eq!((s.method.as_str(), s.cutoff, s.test_share, s.fraction, s.seed), ("time", None, None, None, None));
        let e: EvalArgs = toml::from_str("").unwrap();
        assert_eq!(
            (e.k, e.targets, e.charts),
            (vec![5, 10, 20], vec!["new-items".into(), "all-items".into()], vec!["ndcg".to_string(), "recall".into()])
        );
        let i: InputArgs = toml::from_str("purchases = \"p.csv\"").unwrap();
        assert_eq!((i.customer_col, i.item_col, i.returns.as_str()), (None, None, "net"));
        assert!(toml::from_str::<InputArgs>("").is_err(), "purchases stays required");
    }
}
