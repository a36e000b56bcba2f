//! The `cobuy` command line: parsing and wiring only.
//!
//! Flags are parsed into raw structs (shared by the flags and the job file), resolved into
//! library options, and run. Exit codes: 0 ok, 2 bad input or usage, 1 internal error.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use cobuy::algo::similarity::{Measure, SimilarityParams, Ties};
use cobuy::batch::{BatchOptions, BatchStats, write_recommendations};
use cobuy::ids::{CustomerIdx, ItemIdx};
use cobuy::ingest::{self, ColumnRef, Columns, IngestError, IngestOptions, IngestSummary, Returns};
use cobuy::matrix::{Scheme, Weighting};
use cobuy::model::{FitError, FitInfo, FitParams, Model, ModelError, ParamError};
use cobuy::output::AtomicFile;
use cobuy::recommend::{Filter, ResolvedFilter};

mod cli;

#[derive(Parser)]
#[command(name = "cobuy", version, about = "Recommendations from retail purchase histories")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads (0: one per core).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    /// Print errors only.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Read purchases, fit a model (item-knn, user-knn, popularity, buy-again), save it.
    Fit(Box<FitCmd>),
    /// Score customers with a saved model and write CSV.
    Recommend(Box<RecommendCmd>),
    /// Score customers from purchase rows given now (not in the model's history).
    FoldIn(Box<FoldInCmd>),
    /// The most similar customers of each customer, as CSV.
    SimilarCustomers(SimilarCmd),
    /// Run a job file: fit, recommend, summary; or, with `[split]` and `[eval]` tables, an
    /// evaluation of each `[[algorithm]]`.
    Run {
        /// The job file (TOML).
        job: PathBuf,
    },
    /// Write a seeded synthetic purchase log (CSV; gzip when FILE ends in .gz).
    Generate {
        /// Customers.
        #[arg(long)]
        customers: u64,
        /// Items.
        #[arg(long)]
        items: u64,
        /// Purchase rows.
        #[arg(long)]
        purchases: u64,
        /// Random seed: same seed, same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Split a purchase log, fit each algorithm on the training part, measure it on the
    /// test customers, write report.md, report.json and SVG charts.
    Eval(Box<cli::eval::EvalCmd>),
    /// Search fit parameters on the validation split (never the test split); write the
    /// best as an eval job file.
    Tune {
        /// The tune job file (TOML): an eval job with `[tune]` and `[[space]]` tables.
        job: PathBuf,
    },
    /// Pairwise association rules (A -> B) from baskets, as CSV: support, confidence, lift,
    /// leverage, conviction.
    Rules(Box<cli::rules::RulesCmd>),
    /// Frequently bought together: the best completions of given baskets.
    BasketComplete(Box<cli::rules::CompleteCmd>),
    /// Cross-sell: complementary items per customer (collaborative affinity and basket
    /// lift, preferring categories they have not bought), with reasons.
    CrossSell(Box<cli::crosssell::CrossSellCmd>),
    /// Up-sell: per customer, a dearer item in a category they buy, learned from the order
    /// of purchases, with when to offer it and why.
    UpSell(Box<cli::upsell::UpSellCmd>),
    /// The learned upgrade paths of items (what customers buy next, dearer, in the same
    /// category), as CSV.
    Upgrades(Box<cli::upsell::UpgradesCmd>),
    /// Show what a model holds and how it was fitted.
    Inspect {
        /// The model file.
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// How to read the purchases file (flags, or the `[input]` table of a job file).
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct InputArgs {
    /// Purchases file: CSV or TSV, plain or gzip; `-` reads standard input.
    #[arg(long)]
    purchases: PathBuf,
    /// Customer id column: header name or 1-based position.
    #[arg(long, default_value = "1")]
    #[serde(default = "first_column")]
    customer_col: String,
    /// Item id column: header name or 1-based position.
    #[arg(long, default_value = "2")]
    #[serde(default = "second_column")]
    item_col: String,
    /// Purchase time column (unix seconds, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, RFC 3339).
    #[arg(long)]
    #[serde(default)]
    time_col: Option<String>,
    /// Quantity column (negative quantities are returns).
    #[arg(long)]
    #[serde(default)]
    quantity_col: Option<String>,
    /// Basket or order id column.
    #[arg(long)]
    #[serde(default)]
    basket_col: Option<String>,
    /// Unit price column (amount = quantity x price).
    #[arg(long)]
    #[serde(default)]
    price_col: Option<String>,
    /// Line amount column (instead of a unit price).
    #[arg(long)]
    #[serde(default)]
    amount_col: Option<String>,
    /// Rating column.
    #[arg(long)]
    #[serde(default)]
    rating_col: Option<String>,
    /// Field delimiter: , \t ; | or :: (default: sniffed from the first line).
    #[arg(long)]
    #[serde(default)]
    delimiter: Option<String>,
    /// The file has no header line.
    #[arg(long)]
    #[serde(default)]
    no_header: bool,
    /// Rows rated below this are seen, not bought (needs --rating-col).
    #[arg(long, allow_negative_numbers = true)]
    #[serde(default)]
    min_value: Option<f64>,
    /// Negative quantities: net (default), ignore or reject.
    #[arg(long, default_value = "net")]
    #[serde(default = "net")]
    returns: String,
    /// Skip bad rows (counted, and written to the rejects file) instead of stopping.
    #[arg(long)]
    #[serde(default)]
    skip_invalid: bool,
    /// Rejects file (default: MODEL.rejects.csv).
    #[arg(long)]
    #[serde(default)]
    rejects: Option<PathBuf>,
}

fn first_column() -> String {
    "1".into()
}
fn second_column() -> String {
    "2".into()
}
fn net() -> String {
    "net".into()
}

/// Model parameters (flags, or the `[fit]` table of a job file).
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct ModelArgs {
    /// Where to write the model.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    #[serde(flatten)]
    fit: FitArgs,
    #[command(flatten)]
    #[serde(flatten)]
    similarity: SimilarityArgs,
}

/// What to fit and how, with [`SimilarityArgs`] (also each `[[algorithm]]` of an eval
/// job). Not flattened twice: serde's unknown-key check fails through nested flattening.
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
struct FitArgs {
    /// item-knn, user-knn, popularity, buy-again, als or ease.
    #[arg(long, default_value = "item-knn")]
    #[serde(default = "item_knn")]
    algorithm: String,
    /// Neighbours kept per item (item-knn) or used per customer (user-knn).
    #[arg(long, default_value_t = 50)]
    #[serde(default = "fifty")]
    neighbors: usize,
    /// auto (per algorithm: bm25 for item-knn and user-knn, log for als and ease, count
    /// with a 60-day half-life for buy-again, binary for popularity), binary, count, log,
    /// bm25, tfidf, or decay (binary with time decay).
    #[arg(long, default_value = "auto")]
    #[serde(default = "auto")]
    weighting: String,
    /// BM25 k1.
    #[arg(long, default_value_t = 1.2, allow_negative_numbers = true)]
    #[serde(default = "k1")]
    bm25_k1: f32,
    /// BM25 b.
    #[arg(long, default_value_t = 0.75, allow_negative_numbers = true)]
    #[serde(default = "b")]
    bm25_b: f32,
    /// Time decay half-life in days, on top of any weighting (decay alone: 90).
    #[arg(long, allow_negative_numbers = true)]
    #[serde(default)]
    half_life_days: Option<f64>,
    /// item-knn, user-knn: where bought items may be recommended, add the customer's own
    /// buy-again score at this weight relative to the collaborative scores (0: off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    #[serde(default)]
    buy_again_weight: f32,
    /// als: latent factors per customer and item.
    #[arg(long, default_value_t = 64)]
    #[serde(default = "sixty_four")]
    factors: usize,
    /// als: L2 regularisation of the factors.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    #[serde(default = "hundredth")]
    regularization: f32,
    /// als: confidence of a bought pair, 1 + alpha x weight.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    #[serde(default = "one_f32")]
    als_alpha: f32,
    /// als: alternating iterations.
    #[arg(long, default_value_t = 15)]
    #[serde(default = "fifteen")]
    iterations: usize,
    /// als: conjugate-gradient steps per row and iteration.
    #[arg(long, default_value_t = 3)]
    #[serde(default = "three")]
    cg_steps: usize,
    /// als: seed of the initial factors.
    #[arg(long, default_value_t = 42)]
    #[serde(default = "forty_two")]
    als_seed: u64,
    /// ease: the L2 penalty lambda.
    #[arg(long, default_value_t = 500.0, allow_negative_numbers = true)]
    #[serde(default = "five_hundred")]
    ease_lambda: f32,
    /// ease: keep only this many most bought items (0: all).
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    ease_items: usize,
    /// Decay reference date (default: the newest purchase).
    #[arg(long)]
    #[serde(default)]
    reference_date: Option<String>,
}

fn fifty() -> usize {
    50
}
fn sixty_four() -> usize {
    64
}
fn hundredth() -> f32 {
    0.01
}
fn five_hundred() -> f32 {
    500.0
}
fn fifteen() -> usize {
    15
}
fn three() -> usize {
    3
}
fn forty_two() -> u64 {
    42
}
fn item_knn() -> String {
    "item-knn".into()
}
fn cosine() -> String {
    "cosine".into()
}
fn half() -> f32 {
    0.5
}
fn one_f32() -> f32 {
    1.0
}

/// How neighbours are measured (fit flags; also `similar-customers`).
#[derive(Args, Deserialize, Serialize, Clone, Debug)]
struct SimilarityArgs {
    /// cosine, jaccard, asymmetric-cosine, lift or rp3beta (item-knn only).
    #[arg(long, default_value = "cosine")]
    #[serde(default = "cosine")]
    similarity: String,
    /// Asymmetric cosine alpha (0.5 is cosine).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    #[serde(default = "half")]
    alpha: f32,
    /// RP3beta: exponent on the walk's transition probabilities.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    #[serde(default = "one_f32")]
    rp3_alpha: f32,
    /// RP3beta: popularity penalty exponent.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    #[serde(default = "half")]
    rp3_beta: f32,
    /// Shrinkage: similarities times shared / (shared + S).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    #[serde(default)]
    shrinkage: f32,
    /// Minimum number of shared items (or customers) for a neighbour.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    min_shared: u32,
    /// Ties at the k-th neighbour: lowest-index, or visit-order to reproduce a row-by-row
    /// heap kernel such as implicit's (a heap of k + 1, the item itself among them; slower).
    #[arg(long, default_value = "lowest-index")]
    #[serde(default = "lowest_index")]
    ties: String,
}
fn lowest_index() -> String {
    "lowest-index".into()
}

fn similarity_params(a: &SimilarityArgs) -> Result<SimilarityParams> {
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
fn auto() -> String {
    "auto".into()
}
fn k1() -> f32 {
    1.2
}
fn b() -> f32 {
    0.75
}

#[derive(Args, Clone, Debug)]
struct FitCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RecommendCmd {
    /// The model file.
    #[arg(long)]
    #[serde(skip)]
    model: PathBuf,
    /// Recommendations per customer.
    #[arg(long, default_value_t = 10)]
    #[serde(default = "ten")]
    top: usize,
    /// Output CSV: customer_id,rank,item_id,score,source.
    #[arg(long)]
    out: PathBuf,
    /// Score only these customers (one id per line), in this order.
    #[arg(long)]
    #[serde(default)]
    customers: Option<PathBuf>,
    /// Score only shard I of N (1-based): a fixed hash partition of the customer ids.
    #[arg(long)]
    #[serde(default)]
    shard: Option<String>,
    /// Add a reason column.
    #[arg(long)]
    #[serde(default)]
    explain: bool,
    #[command(flatten)]
    #[serde(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    #[serde(flatten)]
    catalog: cli::crosssell::CatalogArgs,
}

fn ten() -> usize {
    10
}

/// Which items may be recommended.
#[derive(Args, Deserialize, Serialize, Clone, Debug, Default)]
struct FilterArgs {
    /// Also recommend items the customer already bought.
    #[arg(long)]
    #[serde(default)]
    include_bought: bool,
    /// Allow a bought item again this many days after its last purchase.
    #[arg(long, allow_negative_numbers = true)]
    #[serde(default)]
    repurchase_after_days: Option<f64>,
    /// "Now" for repurchase windows (default: the newest purchase).
    #[arg(long)]
    #[serde(default)]
    as_of: Option<String>,
    /// Only recommend these items (file: one item id per line).
    #[arg(long)]
    #[serde(default)]
    allow: Option<PathBuf>,
    /// Never recommend these items (file: one item id per line).
    #[arg(long)]
    #[serde(default)]
    deny: Option<PathBuf>,
    /// Only recommend items in these categories (file: one category name per line, any
    /// level; needs --catalog).
    #[arg(long)]
    #[serde(default)]
    categories: Option<PathBuf>,
    /// Never recommend items in these categories (file: one name per line; needs --catalog).
    #[arg(long)]
    #[serde(default)]
    exclude_categories: Option<PathBuf>,
}

#[derive(Args, Clone, Debug)]
struct FoldInCmd {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    input: InputArgs,
    /// Recommendations per customer.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Output CSV: customer_id,rank,item_id,score,source.
    #[arg(long)]
    out: PathBuf,
    /// Add a reason column.
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    catalog: cli::crosssell::CatalogArgs,
}

#[derive(Args, Clone, Debug)]
struct SimilarCmd {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// Neighbours per customer.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Output CSV: customer_id,rank,neighbor_id,similarity,shared_items.
    #[arg(long)]
    out: PathBuf,
    /// Only these customers (one id per line), in this order.
    #[arg(long)]
    customers: Option<PathBuf>,
    /// Only shard I of N (1-based).
    #[arg(long)]
    shard: Option<String>,
    #[command(flatten)]
    similarity: SimilarityArgs,
}

/// A job file: `[input]`, `[fit]`, `[recommend]`, optional `summary`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Job {
    input: InputArgs,
    fit: ModelArgs,
    recommend: RecommendCmd,
    /// Up-sell offers from the same purchases and model.
    #[serde(default)]
    upsell: Option<cli::upsell::UpsellStep>,
    /// JSON summary of the run.
    #[serde(default)]
    summary: Option<PathBuf>,
    /// Worker threads (the --threads flag wins).
    #[serde(default)]
    threads: Option<usize>,
}

/// An error caused by the user's input or usage: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// Log lines and progress bars on stderr.
#[derive(Clone, Copy)]
struct Log {
    quiet: bool,
    tty: bool,
}

impl Log {
    fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("cobuy: {}", msg.as_ref());
        }
    }

    /// A bar on a terminal; `None` otherwise (plain log lines are printed instead).
    fn bar(&self, len: Option<u64>, what: &str) -> Option<ProgressBar> {
        if self.quiet || !self.tty {
            return None;
        }
        let bar = match len {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {percent}% {elapsed} (eta {eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = Log { quiet: cli.quiet, tty: std::io::stderr().is_terminal() };
    match run(cli, log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cobuy: error: {e:#}");
            let user = e.downcast_ref::<BadInput>().is_some()
                || e.downcast_ref::<IngestError>().is_some_and(|i| !i.is_io())
                || e.downcast_ref::<ParamError>().is_some()
                || e.downcast_ref::<FitError>().is_some()
                || e.downcast_ref::<cobuy::offers::catalog::CatalogError>().is_some_and(|c| !c.is_io())
                || e.downcast_ref::<ModelError>().is_some_and(|m| !matches!(m, ModelError::Io { .. }));
            ExitCode::from(if user { 2 } else { 1 })
        }
    }
}

fn set_threads(n: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("cannot start the worker threads")
}

fn run(cli: Cli, log: Log) -> Result<()> {
    match cli.command {
        Command::Fit(cmd) => {
            set_threads(cli.threads)?;
            fit(&cmd.input, &cmd.model, log).map(drop)
        }
        Command::Recommend(cmd) => {
            set_threads(cli.threads)?;
            let model = load_model(&cmd.model, log)?;
            recommend(&model, &cmd, log).map(drop)
        }
        Command::Run { job } => run_job(&job, cli.threads, log),
        Command::FoldIn(cmd) => {
            set_threads(cli.threads)?;
            fold_in(&cmd, log)
        }
        Command::SimilarCustomers(cmd) => {
            set_threads(cli.threads)?;
            similar_customers(&cmd, log)
        }
        Command::Inspect { model, json } => inspect(&model, json),
        Command::Eval(cmd) => cli::eval::run(&cmd, cli.threads, log),
        Command::Tune { job } => cli::tune::run(&job, cli.threads, log),
        Command::Rules(cmd) => cli::rules::rules(&cmd, cli.threads, log),
        Command::CrossSell(cmd) => cli::crosssell::run(&cmd, cli.threads, log),
        Command::UpSell(cmd) => cli::upsell::run(&cmd, cli.threads, log),
        Command::Upgrades(cmd) => cli::upsell::upgrades(&cmd, cli.threads, log),
        Command::BasketComplete(cmd) => cli::rules::complete(&cmd, cli.threads, log),
        Command::Generate { customers, items, purchases, seed, out } => {
            set_threads(cli.threads)?;
            let params = cobuy::generate::GenerateParams::new(customers, items, purchases, seed);
            params.check().map_err(bad)?;
            create_parent(&out)?;
            let start = Instant::now();
            let mut file = AtomicFile::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let rows = if out.extension().is_some_and(|e| e == "gz") {
                let mut gz = flate2::write::GzEncoder::new(&mut file, flate2::Compression::fast());
                let rows = cobuy::generate::generate(&params, &mut gz)?;
                gz.finish()?;
                rows
            } else {
                cobuy::generate::generate(&params, &mut file)?
            };
            file.commit().with_context(|| format!("cannot write {}", out.display()))?;
            log.info(format!(
                "wrote {rows} purchase rows to {} in {:.1}s",
                out.display(),
                start.elapsed().as_secs_f64()
            ));
            Ok(())
        }
    }
}

fn load_model(path: &Path, log: Log) -> Result<Model> {
    let start = Instant::now();
    let model = Model::load(path).map_err(|e| match e {
        ModelError::Io { .. } => bad(e.to_string()),
        other => bad(format!("{}: {other}", path.display())),
    })?;
    log.info(format!(
        "loaded {} ({} customers, {} items) in {:.1}s",
        path.display(),
        model.customers().len(),
        model.items().len(),
        start.elapsed().as_secs_f64()
    ));
    Ok(model)
}

fn column(s: &str, flag: &str) -> Result<ColumnRef> {
    s.parse().map_err(|e| bad(format!("{flag}: {e}")))
}

fn ingest_options(a: &InputArgs, model_path: &Path) -> Result<IngestOptions> {
    let opt = |c: &Option<String>, flag| c.as_deref().map(|s| column(s, flag)).transpose();
    let columns = Columns {
        customer: column(&a.customer_col, "--customer-col")?,
        item: column(&a.item_col, "--item-col")?,
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
        (None, true) => {
            let mut name = model_path.as_os_str().to_owned();
            name.push(".rejects.csv");
            Some(PathBuf::from(name))
        }
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
    };
    opts.check()?;
    Ok(opts)
}

fn fit_params(m: &FitArgs, similarity: &SimilarityArgs) -> Result<FitParams> {
    let algorithm: cobuy::algo::Algorithm =
        m.algorithm.parse().map_err(|e: String| bad(format!("--algorithm: {e}")))?;
    let auto = algorithm.default_weighting();
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
        neighbors: m.neighbors,
        weighting: Weighting { scheme, half_life_days, reference_time },
        similarity: similarity_params(similarity)?,
        buy_again_weight: m.buy_again_weight,
        als: cobuy::algo::als::AlsParams {
            factors: m.factors,
            regularization: m.regularization,
            alpha: m.als_alpha,
            iterations: m.iterations,
            cg_steps: m.cg_steps,
            seed: m.als_seed,
        },
        ease: cobuy::algo::ease::EaseParams { lambda: m.ease_lambda, max_items: m.ease_items, ..Default::default() },
    };
    params.check()?;
    Ok(params)
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).with_context(|| format!("cannot create the folder {}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn fit(input: &InputArgs, margs: &ModelArgs, log: Log) -> Result<(Model, IngestSummary)> {
    let opts = ingest_options(input, &margs.model)?;
    let params = fit_params(&margs.fit, &margs.similarity)?;
    create_parent(&margs.model)?;
    if let Some(r) = &opts.rejects {
        create_parent(r)?;
    }
    let start = Instant::now();
    log.info(format!("reading {}", input.purchases.display()));
    let mut bar: Option<ProgressBar> = None;
    let read = ingest::read_purchases_with_progress(&input.purchases, &opts, &mut |p| {
        let b = bar.get_or_insert_with(|| log.bar(p.total_bytes, "reading").unwrap_or_else(ProgressBar::hidden));
        b.set_position(p.bytes);
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let s = &read.summary;
    log.info(format!("read {} rows in {:.1}s", s.rows_read, start.elapsed().as_secs_f64()));
    for line in summary_lines(s) {
        log.info(line);
    }
    if let (true, Some(r)) = (s.rejected_rows > 0, &opts.rejects) {
        log.info(format!("rejected rows written to {}", r.display()));
    }

    let start = Instant::now();
    let info = FitInfo { source: Some(input.purchases.display().to_string()), ingest: Some(s.clone()), merge: s.merge };
    let summary = s.clone();
    let model = Model::fit(read.interactions, &params, info)?;
    log.info(format!(
        "fitted {} ({} neighbours, {} weighting) in {:.1}s: {} item neighbour pairs",
        params.algorithm.name(),
        params.neighbors,
        margs.fit.weighting,
        start.elapsed().as_secs_f64(),
        model.neighbors().nnz()
    ));
    model.save(&margs.model)?;
    log.info(format!("wrote the model to {}", margs.model.display()));
    Ok((model, summary))
}

/// The run summary as log lines: every row accounted for.
fn summary_lines(s: &IngestSummary) -> Vec<String> {
    let mut v = vec![format!("rows: {} read = {}", s.rows_read, ingest::summary_breakdown(s))];
    if !s.rejected_by_reason.is_empty() {
        let reasons: Vec<String> = s.rejected_by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
        v.push(format!("rejected by reason: {}", reasons.join(", ")));
    }
    let m = &s.merge;
    v.push(format!(
        "{} customer-item pairs ({} rows repeated a pair and were merged into it): {} purchases, {} netted to nothing by returns, {} seen only",
        m.pairs, s.merged_rows, m.purchase_pairs, m.netted_out_pairs, m.seen_only_pairs
    ));
    let mut last =
        format!("{} customers ({} with purchases left), {} items", s.customers, s.customers_with_purchases, s.items);
    if let Some(b) = s.baskets {
        last.push_str(&format!(", {b} baskets"));
    }
    if let (Some(a), Some(b)) = (s.first_time, s.last_time) {
        last.push_str(&format!(", purchases from {} to {}", cobuy::time::format(a), cobuy::time::format(b)));
    }
    v.push(last);
    v
}

/// The ids in a file, one per line (blank lines skipped), with their line numbers.
fn read_ids(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = fs::read_to_string(path).map_err(|e| bad(format!("{}: cannot read: {e}", path.display())))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim_end_matches('\r').to_string()))
        .filter(|(_, id)| !id.trim().is_empty())
        .collect())
}

/// Looks ids from a file up in an id table; unknown ones are reported (not silently
/// dropped), and a file with no known id at all is an error.
fn lookup_ids(path: &Path, what: &str, table: &cobuy::ids::IdTable, required: bool, log: Log) -> Result<Vec<u32>> {
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let ids = read_ids(path)?;
    for (line, id) in &ids {
        match table.index_of(id) {
            Some(i) => known.push(i),
            None => unknown.push(format!("{}:{line}: {id:?}", path.display())),
        }
    }
    if known.is_empty() && required {
        return Err(bad(format!("{}: none of its {} {what} ids is in the model", path.display(), ids.len())));
    }
    if !unknown.is_empty() {
        log.info(format!(
            "{} {what} ids in {} are not in the model and are skipped: {}{}",
            unknown.len(),
            path.display(),
            unknown.iter().take(10).cloned().collect::<Vec<_>>().join(", "),
            if unknown.len() > 10 { ", ..." } else { "" }
        ));
    }
    Ok(known)
}

/// Parses `I/N` (1 <= I <= N) into a 0-based shard and a count.
fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let err = || bad(format!("--shard takes I/N with 1 <= I <= N, such as 1/4; got {s:?}"));
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let (i, n): (u32, u32) = (i.trim().parse().map_err(|_| err())?, n.trim().parse().map_err(|_| err())?);
    if n == 0 || i == 0 || i > n {
        return Err(err());
    }
    Ok((i - 1, n))
}

/// Customers to score: the model's order or the file's, then the shard's part of them.
fn customer_list(model: &Model, file: Option<&Path>, shard: Option<&str>, log: Log) -> Result<Vec<CustomerIdx>> {
    let shard = shard.map(parse_shard).transpose()?;
    let all: Vec<u32> = match file {
        None => (0..model.customers().len() as u32).collect(),
        Some(path) => lookup_ids(path, "customer", model.customers(), true, log)?,
    };
    Ok(all
        .into_iter()
        .filter(|&c| shard.is_none_or(|(i, n)| cobuy::batch::shard_of(model.customers().id(c), n) == i))
        .map(CustomerIdx)
        .collect())
}

fn resolve_filter(
    model: &Model,
    f: &FilterArgs,
    catalog: &cli::crosssell::CatalogArgs,
    out: &Path,
    log: Log,
) -> Result<ResolvedFilter> {
    // An allow list naming no known item would leave nothing to recommend: an error. A
    // deny list naming none denies nothing: a warning (the unknown ids are listed).
    let items = |p: &Option<PathBuf>, required| -> Result<Option<Vec<ItemIdx>>> {
        p.as_deref()
            .map(|p| Ok(lookup_ids(p, "item", model.items(), required, log)?.into_iter().map(ItemIdx).collect()))
            .transpose()
    };
    let as_of = match &f.as_of {
        None => None,
        Some(d) => Some(cobuy::time::parse(d).ok_or_else(|| bad(format!("--as-of: {d:?} is not a date")))?),
    };
    let mut allow = items(&f.allow, true)?;
    let mut deny = items(&f.deny, false)?.unwrap_or_default();
    if f.categories.is_some() || f.exclude_categories.is_some() {
        let (cat, _) = catalog.read(false, out, log)?.ok_or_else(|| {
            bad("--categories and --exclude-categories need --catalog FILE (with --catalog-category-cols)")
        })?;
        let (only, not) =
            cli::crosssell::category_filter(&cat, model.items(), &f.categories, &f.exclude_categories, log)?;
        if let Some(only) = only {
            // Both lists: an item must be on each.
            allow = Some(match allow {
                None => only,
                Some(a) => a.into_iter().filter(|i| only.contains(i)).collect(),
            });
        }
        deny.extend(not);
    }
    let filter =
        Filter { include_bought: f.include_bought, repurchase_after_days: f.repurchase_after_days, as_of, allow, deny };
    Ok(model.filter(&filter)?)
}

/// Progress for `total` customers: a bar on a terminal, a log line every tenth otherwise.
fn customer_progress(log: Log, total: u64, what: &'static str) -> (Option<ProgressBar>, impl Fn(u64) + Sync) {
    let bar = log.bar(Some(total), what);
    let shown = bar.clone();
    let next_log = std::sync::atomic::AtomicU64::new(0);
    let report = move |done: u64| match &shown {
        Some(b) => b.set_position(done),
        None => {
            let step = (total / 10).max(1);
            if done >= next_log.load(std::sync::atomic::Ordering::Relaxed) && done < total {
                next_log.store(done + step, std::sync::atomic::Ordering::Relaxed);
                log.info(format!("{what}: {done} of {total} customers"));
            }
        }
    };
    (bar, report)
}

/// Writes a batch output atomically (creating its folder), with progress over `total`
/// customers. Returns what was written and the seconds it took.
fn write_batch(
    out: &Path,
    total: usize,
    what: &'static str,
    log: Log,
    write: impl FnOnce(&mut AtomicFile, &(dyn Fn(u64) + Sync)) -> std::io::Result<BatchStats>,
) -> Result<(BatchStats, f64)> {
    create_parent(out)?;
    let start = Instant::now();
    let (bar, progress) = customer_progress(log, total as u64, what);
    let mut file = AtomicFile::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let stats = write(&mut file, &progress)
        .and_then(|s| file.commit().map(|()| s))
        .with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok((stats, start.elapsed().as_secs_f64()))
}

fn recommend(model: &Model, cmd: &RecommendCmd, log: Log) -> Result<BatchStats> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let customers = customer_list(model, cmd.customers.as_deref(), cmd.shard.as_deref(), log)?;
    let filter = resolve_filter(model, &cmd.filter, &cmd.catalog, &cmd.out, log)?;
    let opts = BatchOptions { top: cmd.top, filter: &filter, explain: cmd.explain };
    let (stats, secs) = write_batch(&cmd.out, customers.len(), "scoring", log, |file, progress| {
        write_recommendations(model, &customers, &opts, file, progress)
    })?;
    log.info(format!(
        "wrote {} {} recommendations for {} customers to {} in {:.1}s ({:.0} customers/s); {} rows filled from popularity, {} customers got fewer than {}",
        stats.rows,
        model.params().algorithm.name(),
        stats.customers,
        cmd.out.display(),
        secs,
        stats.customers as f64 / secs.max(1e-9),
        stats.popular_rows,
        stats.short_customers,
        cmd.top
    ));
    Ok(stats)
}

fn fold_in(cmd: &FoldInCmd, log: Log) -> Result<()> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let model = load_model(&cmd.model, log)?;
    let opts = ingest_options(&cmd.input, &cmd.out)?;
    let read = ingest::read_purchases(&cmd.input.purchases, &opts)?;
    for line in summary_lines(&read.summary) {
        log.info(line);
    }
    let unknown = cobuy::batch::unknown_item_pairs(&model, &read.interactions);
    if unknown > 0 {
        log.info(format!(
            "{unknown} customer-item pairs name items the model does not know; they cannot inform scores"
        ));
    }
    let filter = resolve_filter(&model, &cmd.filter, &cmd.catalog, &cmd.out, log)?;
    let batch = BatchOptions { top: cmd.top, filter: &filter, explain: cmd.explain };
    let (stats, secs) =
        write_batch(&cmd.out, read.interactions.customers().len(), "fold-in", log, |file, progress| {
            cobuy::batch::write_fold_in(&model, &read.interactions, &batch, file, progress)
        })?;
    log.info(format!(
        "wrote {} recommendations for {} customers (fold-in) to {} in {secs:.1}s",
        stats.rows,
        stats.customers,
        cmd.out.display()
    ));
    Ok(())
}

fn similar_customers(cmd: &SimilarCmd, log: Log) -> Result<()> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let model = load_model(&cmd.model, log)?;
    let params = similarity_params(&cmd.similarity)?;
    if matches!(params.measure, Measure::Rp3Beta { .. }) {
        return Err(bad(
            "--similarity rp3beta is item-item; similar customers take cosine, jaccard, asymmetric-cosine or lift",
        ));
    }
    let customers = customer_list(&model, cmd.customers.as_deref(), cmd.shard.as_deref(), log)?;
    let (stats, secs) = write_batch(&cmd.out, customers.len(), "similar customers", log, |file, progress| {
        cobuy::batch::write_similar_customers(&model, &customers, cmd.top, params, file, progress)
    })?;
    log.info(format!(
        "wrote {} neighbours ({}) for {} customers to {} in {:.1}s ({:.0} customers/s)",
        stats.rows,
        params.measure.name(),
        stats.customers,
        cmd.out.display(),
        secs,
        stats.customers as f64 / secs.max(1e-9)
    ));
    Ok(())
}

fn run_job(path: &Path, threads: usize, log: Log) -> Result<()> {
    let text =
        fs::read_to_string(path).map_err(|e| bad(format!("{}: cannot read the job file: {e}", path.display())))?;
    if let Ok(table) = text.parse::<toml::Table>() {
        if table.contains_key("split") || table.contains_key("eval") {
            return cli::eval::run_job(path, threads, log);
        }
    }
    let mut job: Job = toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new(""));
    let rebase = |p: &mut PathBuf| {
        if p.is_relative() && p.as_os_str() != "-" {
            *p = base.join(&*p);
        }
    };
    rebase(&mut job.input.purchases);
    job.input.rejects.as_mut().map(rebase);
    rebase(&mut job.fit.model);
    rebase(&mut job.recommend.out);
    job.recommend.customers.as_mut().map(rebase);
    job.recommend.filter.allow.as_mut().map(rebase);
    job.recommend.filter.deny.as_mut().map(rebase);
    job.recommend.filter.categories.as_mut().map(rebase);
    job.recommend.filter.exclude_categories.as_mut().map(rebase);
    job.recommend.catalog.catalog.as_mut().map(rebase);
    job.summary.as_mut().map(rebase);
    if let Some(u) = &mut job.upsell {
        rebase(&mut u.out);
        u.customers.as_mut().map(rebase);
        u.catalog.catalog.as_mut().map(rebase);
        u.check()?;
    }
    job.recommend.model = job.fit.model.clone();
    set_threads(if threads > 0 { threads } else { job.threads.unwrap_or(0) })?;

    let start = Instant::now();
    log.info(format!("running {}", path.display()));
    let (model, ingest) = fit(&job.input, &job.fit, log)?;
    let batch = recommend(&model, &job.recommend, log)?;
    if let Some(u) = &job.upsell {
        u.run(&job.input, &model, log)?;
    }
    if let Some(p) = &job.summary {
        #[derive(Serialize)]
        struct Summary<'a> {
            job: String,
            ingest: &'a IngestSummary,
            params: &'a FitParams,
            neighbor_pairs: usize,
            model: String,
            recommendations: String,
            batch: BatchStats,
        }
        let s = Summary {
            job: path.display().to_string(),
            ingest: &ingest,
            params: model.params(),
            neighbor_pairs: model.neighbors().nnz(),
            model: job.fit.model.display().to_string(),
            recommendations: job.recommend.out.display().to_string(),
            batch,
        };
        create_parent(p)?;
        let mut f = AtomicFile::create(p)?;
        serde_json::to_writer_pretty(&mut f, &s)?;
        std::io::Write::write_all(&mut f, b"\n")?;
        f.commit()?;
        log.info(format!("wrote the run summary to {}", p.display()));
    }
    log.info(format!("job done in {:.1}s", start.elapsed().as_secs_f64()));
    Ok(())
}

fn inspect(path: &Path, json: bool) -> Result<()> {
    let model = load_model(path, Log { quiet: true, tty: false })?;
    let d = model.interactions();
    let info = model.info();
    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let top: Vec<(&str, u32)> =
        model.popular().iter().take(10).map(|&j| (model.items().id(j), model.buyers()[j as usize])).collect();
    if json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "bytes": size,
            "format_version": cobuy::model::FORMAT_VERSION,
            "algorithm": model.params().algorithm.name(),
            "params": model.params(),
            "info": info,
            "customers": d.customers().len(),
            "customers_with_purchases": d.customers_with_purchases(),
            "items": d.items().len(),
            "purchase_pairs": d.counts().nnz(),
            "seen_only_pairs": d.seen_only_pairs(),
            "neighbor_pairs": model.neighbors().nnz(),
            "most_bought": top.iter().map(|(id, n)| serde_json::json!({"item_id": id, "customers": n})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let p = model.params();
    println!("model       {} ({} bytes, format version {})", path.display(), size, cobuy::model::FORMAT_VERSION);
    let sim = &p.similarity;
    println!(
        "algorithm   {}, {} similarity (shrinkage {}, at least {} shared, ties {}), {} neighbours",
        p.algorithm.name(),
        sim.measure.name(),
        sim.shrinkage,
        sim.min_shared,
        sim.ties.name(),
        p.neighbors
    );
    let w = &p.weighting;
    let mut weighting = match w.scheme {
        Scheme::Binary => "binary".to_string(),
        Scheme::Count => "count".into(),
        Scheme::Log => "log(1 + count)".into(),
        Scheme::Bm25 { k1, b } => format!("BM25 (k1 {k1}, b {b})"),
        Scheme::TfIdf => "TF-IDF".into(),
    };
    if let (Some(h), Some(t)) = (w.half_life_days, w.reference_time) {
        weighting.push_str(&format!(", time decay: half-life {h} days back from {}", cobuy::time::format(t)));
    }
    println!("weighting   {weighting}");
    println!("fitted from {}", info.source.as_deref().unwrap_or("(rows given through the library)"));
    println!(
        "customers   {} ({} with purchases)\nitems       {}\npurchases   {} customer-item pairs, {} seen-only pairs\nneighbours  {} item pairs",
        d.customers().len(),
        d.customers_with_purchases(),
        d.items().len(),
        d.counts().nnz(),
        d.seen_only_pairs(),
        model.neighbors().nnz()
    );
    if let Some(s) = &info.ingest {
        for line in summary_lines(s) {
            println!("ingest      {line}");
        }
    }
    let top: Vec<String> = top.iter().map(|(id, n)| format!("{id} ({n})")).collect();
    println!("most bought {}", top.join(", "));
    Ok(())
}
