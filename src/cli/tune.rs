//! `cobuy tune JOB.toml`: search fit parameters on a validation split and write the best as
//! a job file that `cobuy run` takes.
//!
//! The job file is an eval job whose `[[space]]` tables list values to try per key (any
//! key of `cobuy fit`), instead of fixed `[[algorithm]]` tables. A grid tries every
//! combination of each space; `trials = N` draws N of them with `seed` instead.
//!
//! Two modes, by whether the job has a `[split]` table:
//! - benchmark (`[split]`): validation is carved from the split's training part, so the
//!   test part stays unseen; the best three are written as an eval job that measures them
//!   on the test part.
//! - production (no `[split]`): validation is carved from all the purchases as
//!   `algorithm = auto` carves it (`eval::select::carve`: the most recent window when times
//!   allow, else a random holdout of each customer's items), nothing is held back as test,
//!   the best is refitted on every row into `[tune] model`, and the best file is a fit job
//!   (`[input]`, `[fit]`, `[recommend]`) that refits the same model bytes. The tune job's own
//!   `[recommend]` table (a deny list, say) goes into the fit job as written.
//!
//! A deny list (`deny`: `[eval]`'s in benchmark mode, where the best eval job keeps it;
//! `[recommend]`'s in production mode, the items the fit job will never offer) takes the
//! rows of its items out of the log before validation is carved, as `cobuy eval --deny`
//! does: the candidates are trained and measured without them. The production refit
//! still fits every row, as `cobuy fit` with the same flags does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Deserialize;

use cobuy::eval::metrics::Metric;
use cobuy::eval::select::{self, MIN_WINDOW};
use cobuy::eval::split::SplitMethod;
use cobuy::eval::{self as ev, Prepared, Target};
use cobuy::generate::Rng;
use cobuy::ingest::{self, IngestOptions, Logged, PurchaseLog};
use cobuy::model::{FitInfo, FitParams};

use super::args::{
    CatalogArgs, EvalArgs, InputArgs, NamedFit, SplitArgs, UpsellArgs, check_catalog, fit_params, ingest_options,
    set_job_threads, split_method, targets,
};
use super::eval::check_output_file;
use super::paths::Files;
use super::recommend::RecommendCmd;
use super::{Log, bad, create_parent, read_job_text, summary_lines};

#[derive(Args, Clone, Debug)]
pub struct TuneCmd {
    /// The tune job file (TOML): `[input]`, `[tune]`, `[[space]]` tables, and `[split]`
    /// (with `[eval]`) to benchmark instead of tuning for production.
    job: PathBuf,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TuneJob {
    input: InputArgs,
    /// Benchmark mode: validate inside this split's training part. Without it, production
    /// mode: validate on all the purchases and refit the best on them.
    #[serde(default)]
    split: Option<SplitArgs>,
    /// Kept as written for the best job file (benchmark mode only).
    #[serde(default, rename = "eval")]
    eval: Option<EvalArgs>,
    tune: TuneArgs,
    /// Production mode: the fit job's `[recommend]` keys (filters, top, explain...), checked
    /// as `cobuy run` reads them and written as given.
    #[serde(default)]
    recommend: Option<toml::Table>,
    #[serde(rename = "space", default)]
    spaces: Vec<toml::Table>,
    #[serde(default)]
    threads: Option<usize>,
}

/// The `[tune]` table (a job file's only: it has no flags).
#[derive(Deserialize, Debug)]
#[serde(default, deny_unknown_fields)]
struct TuneArgs {
    /// new-items or all-items.
    target: String,
    /// The metric to maximise.
    metric: String,
    /// At this cut-off.
    k: usize,
    /// Draw this many combinations at random instead of trying them all.
    trials: Option<usize>,
    /// Seed of the draw.
    seed: u64,
    /// Where to write the best file (an eval job, or in production mode a fit job),
    /// relative to the job file (default: beside it, JOB.toml.best.toml).
    out: Option<PathBuf>,
    /// Production mode: where to save the best configuration refitted on all the purchases,
    /// relative to the job file (required without `[split]`).
    model: Option<PathBuf>,
    /// Production mode: the `[recommend] out` of the fit job written, relative to the job
    /// file (default: recommendations.csv beside the model).
    recommendations: Option<PathBuf>,
}

impl Default for TuneArgs {
    fn default() -> Self {
        Self {
            target: "new-items".into(),
            metric: "ndcg".into(),
            k: 10,
            trials: None,
            seed: 1,
            out: None,
            model: None,
            recommendations: None,
        }
    }
}

/// Where validation comes from and what the winner becomes.
enum Mode {
    /// `[split]`: validation inside the training part; the best three as an eval job.
    Benchmark(SplitMethod),
    /// No `[split]`: validation carved from every row as `algorithm = auto` carves it; the
    /// best refitted on every row and saved to `model` (resolved against the job file); the
    /// fit job gets `recommend` as its `[recommend]` table (paths relative to the job file).
    Production { model: PathBuf, recommend: Box<RecommendCmd>, table: toml::Table },
}

/// A candidate configuration: its label, its `[[space]]` keys, its checked parameters.
type Candidate = (String, toml::Table, FitParams);

/// What is maximised: a metric (at `[tune]`'s cut-off) on a target.
#[derive(Clone, Copy)]
struct Objective {
    metric: Metric,
    target: Target,
    k: usize,
}

/// Every combination of a space's values, as tables of single values.
fn combinations(space: &toml::Table) -> Vec<toml::Table> {
    let mut out = vec![toml::Table::new()];
    for (key, value) in space {
        let values = match value {
            toml::Value::Array(a) => a.clone(),
            v => vec![v.clone()],
        };
        out = out
            .into_iter()
            .flat_map(|t| {
                values.iter().map(move |v| {
                    let mut t = t.clone();
                    t.insert(key.clone(), v.clone());
                    t
                })
            })
            .collect();
    }
    out
}

/// A readable name for a combination: its keys and values.
fn label(t: &toml::Table) -> String {
    t.iter().map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"'))).collect::<Vec<_>>().join(" ")
}

/// Runs `cobuy tune`.
pub fn run(cmd: &TuneCmd, threads: usize, log: Log) -> Result<()> {
    let path = cmd.job.as_path();
    let text = read_job_text(path)?;
    let mut job: TuneJob = toml::from_str(&text).map_err(|e| super::job_error(path, &e))?;
    let base = path.parent().unwrap_or(Path::new(""));
    if job.input.purchases.is_relative() && job.input.purchases.as_os_str() != "-" {
        job.input.purchases = base.join(&job.input.purchases);
    }
    if let Some(r) = job.input.rejects.as_mut().filter(|r| r.is_relative()) {
        *r = base.join(&*r);
    }
    set_job_threads(threads, job.threads)?;
    let t = &job.tune;
    let target = targets(std::slice::from_ref(&t.target))?[0];
    if target == Target::Upgrades {
        // As `eval` refuses the upgrades target without a priced catalogue; a tune job has
        // no `[catalog]` table, so it never has one.
        check_catalog(&CatalogArgs::default(), &UpsellArgs::default(), "the upgrades target")
            .map_err(|e| bad(format!("{e}; tune does not read a catalogue: tune on new-items or all-items")))?;
    }
    let metric = Metric::parse(&t.metric).ok_or_else(|| bad(format!("[tune] metric: unknown {:?}", t.metric)))?;
    ev::check_ks(&[t.k]).map_err(|e| bad(e.to_string()))?;
    let mode = mode(path, &job, target)?;
    let deny = match &mode {
        Mode::Benchmark(_) => job.eval.as_ref().and_then(|e| e.deny.as_ref()).map(|p| base.join(p)),
        Mode::Production { recommend, .. } => recommend.filter.deny.clone(),
    };
    let configs = candidates(path, &job, target)?;
    let goal = Objective { metric, target, k: t.k };
    // Every output location is checked before the log is read. Rejected rows go beside the
    // model, as `cobuy fit` puts them, or beside the best file.
    let out = best_path(path, &job.tune);
    let (model, recommend) = match &mode {
        Mode::Production { model, recommend, .. } => (Some(model.as_path()), Some(recommend)),
        Mode::Benchmark(_) => (None, None),
    };
    let opts = ingest_options(&job.input, model.unwrap_or(&out))?;
    let files = Files::new()
        .input("tune job", Some(path))
        .input("purchases", Some(&job.input.purchases))
        .output("best job", Some(&out))
        .output("model", model)
        .output("rejects", opts.rejects.as_deref());
    match recommend {
        // Read and written by the fit job, not now: a missing list or a clash is better
        // found before the search.
        Some(r) => {
            check_readable(r)?;
            r.files(files)
        }
        None => files.input("deny list", deny.as_deref()),
    }
    .check()?;
    check_output_file(&out)?;
    if let Some(m) = model {
        check_output_file(m)?;
    }
    if let Some(r) = &opts.rejects {
        create_parent(r)?;
    }
    let read = read(&job, &opts, log)?;
    let filtered = deny.as_deref().map(|p| super::eval::without_denied(p, &read.log, log)).transpose()?;
    let plog = filtered.as_ref().map_or(&read.log, |f| &f.0);
    let (prepared, mut validation) = validation(plog, &mode, target, log)?;
    if let (Some((_, removed)), Some(path)) = (&filtered, &deny) {
        validation.push_str(&format!(
            "; without the deny list {}: {}",
            path.display(),
            super::eval::describe_removed(removed)
        ));
    }
    drop(filtered);
    let results = search(&prepared, job.tune.trials.is_some(), &configs, goal, log)?;
    drop(prepared);
    let best = Best { configs: &configs, results: &results, goal, validation: &validation };
    match &mode {
        Mode::Benchmark(_) => write_best(path, &text, &job.tune, &best, log),
        Mode::Production { model, table, .. } => {
            refit(read, &job.input, &configs[results[0].1].2, model, log)?;
            write_fit_job(path, &text, &job.tune, table, &best, log)
        }
    }
}

/// The mode, checked before anything is read: production mode needs `[tune] model` and
/// has no test part to measure (`[eval]`); benchmark mode never fits on the test part, so
/// it has no model to write.
fn mode(path: &Path, job: &TuneJob, target: Target) -> Result<Mode> {
    let t = &job.tune;
    let base = path.parent().unwrap_or(Path::new(""));
    match &job.split {
        Some(split) => {
            let production_only = [
                ("[tune] model", t.model.is_some()),
                ("[tune] recommendations", t.recommendations.is_some()),
                ("[recommend]", job.recommend.is_some()),
            ];
            if let Some((key, _)) = production_only.iter().find(|k| k.1) {
                return Err(bad(format!(
                    "{}: {key} is for production mode, which tunes on all the purchases: remove the \
                     [split] table to tune for production, or remove {key} to benchmark on the split's test part",
                    path.display()
                )));
            }
            Ok(Mode::Benchmark(split_method(split)?))
        }
        None => {
            if job.eval.is_some() {
                return Err(bad(format!(
                    "{}: [eval] describes measuring on a test part, and a tune job without [split] holds none back \
                     (production mode): remove [eval], or add a [split] table to benchmark",
                    path.display()
                )));
            }
            let model = t.model.as_ref().ok_or_else(|| {
                bad(format!(
                    "{}: give [tune] model, the file to save the best configuration to, refitted on all the \
                     purchases (a tune job without [split] tunes for production; add a [split] table to \
                     benchmark on a test part instead)",
                    path.display()
                ))
            })?;
            let table = fit_job_recommend(path, job, model, target)?;
            let mut recommend: RecommendCmd = toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e| bad(format!("{}: [recommend]: {e}", path.display())))?;
            recommend.rebase(base);
            Ok(Mode::Production { model: base.join(model), recommend: Box::new(recommend), table })
        }
    }
}

/// Opens the files the fit job's `[recommend]` step will read: one missing would fail the
/// nightly run, after the search.
fn check_readable(r: &RecommendCmd) -> Result<()> {
    let f = &r.filter;
    let lists = [
        ("customers", &r.customers),
        ("allow", &f.allow),
        ("deny", &f.deny),
        ("categories", &f.categories),
        ("exclude_categories", &f.exclude_categories),
        ("catalog", &r.catalog.catalog),
    ];
    for (key, path) in lists {
        if let Some(p) = path {
            std::fs::File::open(p).map_err(|e| bad(format!("[recommend] {key}: cannot read {}: {e}", p.display())))?;
        }
    }
    Ok(())
}

/// The fit job's `[recommend]` table: the tune job's, as written, with `out` (`[tune]
/// recommendations`, else recommendations.csv beside the model), `top` (`[tune] k`) and,
/// when tuned on all items, `include_bought` where it does not give them.
fn fit_job_recommend(path: &Path, job: &TuneJob, model: &Path, target: Target) -> Result<toml::Table> {
    let t = &job.tune;
    let mut table = job.recommend.clone().unwrap_or_default();
    if table.contains_key("out") && t.recommendations.is_some() {
        return Err(bad(format!(
            "{}: the fit job's recommendations are given twice, as [tune] recommendations and [recommend] out: \
             keep one",
            path.display()
        )));
    }
    let out = t.recommendations.clone().unwrap_or_else(|| model.with_file_name("recommendations.csv"));
    table.entry("out").or_insert_with(|| toml::Value::String(out.display().to_string()));
    table.entry("top").or_insert(toml::Value::Integer(t.k as i64));
    if target == Target::AllItems {
        table.entry("include_bought").or_insert(toml::Value::Boolean(true));
    }
    Ok(table)
}

/// Every candidate of the `[[space]]` tables (or a seeded draw of them), each checked
/// before the data is read.
fn candidates(path: &Path, job: &TuneJob, target: Target) -> Result<Vec<Candidate>> {
    let t = &job.tune;
    let mut candidates: Vec<(String, toml::Table)> = Vec::new();
    if job.spaces.iter().any(|s| s.is_empty()) {
        return Err(bad(format!("{}: a [[space]] table is empty; give the fit keys to try", path.display())));
    }
    for space in &job.spaces {
        for c in combinations(space) {
            candidates.push((label(&c), c));
        }
    }
    if candidates.is_empty() {
        return Err(bad(format!("{}: give at least one [[space]] table", path.display())));
    }
    if let Some(n) = t.trials {
        if n == 0 {
            return Err(bad("[tune] trials must be at least 1"));
        }
        // A seeded partial shuffle: the first n of a random permutation.
        let mut rng = Rng::new(t.seed, 0);
        for k in 0..n.min(candidates.len()) {
            let pick = k + rng.below((candidates.len() - k) as u64) as usize;
            candidates.swap(k, pick);
        }
        candidates.truncate(n);
    }
    let mut configs = Vec::new();
    for (name, table) in &candidates {
        let fit: NamedFit = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| bad(format!("{}: [[space]] {name}: {e}", path.display())))?;
        if fit.fit.algorithm == "auto" {
            return Err(bad(format!(
                "[[space]] {name}: give the algorithm (tune measures the values listed; algorithm = \"auto\" \
                 chooses by itself in fit and eval)"
            )));
        }
        let params = fit_params(&fit.fit, &fit.similarity).map_err(|e| bad(format!("[[space]] {name}: {e}")))?;
        if params.algorithm == cobuy::algo::Algorithm::BuyAgain && target == ev::Target::NewItems {
            return Err(bad(format!(
                "[[space]] {name}: buy-again recommends only bought items; tune it on target = \"all-items\""
            )));
        }
        configs.push((name.clone(), table.clone(), params));
    }
    Ok(configs)
}

/// Reads every row of the log, with their merge (the production refit fits on it).
fn read(job: &TuneJob, opts: &IngestOptions, log: Log) -> Result<Logged> {
    let start = Instant::now();
    // Ingest refuses a log without a purchase left (exit code 2).
    let read = ingest::read_log_with_progress(&job.input.purchases, opts, &mut |_| {})?;
    let s = &read.summary;
    log.info(format!("read {} rows in {:.1}s", s.rows_read, start.elapsed().as_secs_f64()));
    for line in summary_lines(s, opts.rejects.as_deref()) {
        log.info(line);
    }
    Ok(read)
}

/// The validation split of `mode`, and a sentence saying which it is and why; logs both,
/// and warns when it measures few customers.
fn validation(plog: &PurchaseLog, mode: &Mode, target: Target, log: Log) -> Result<(Prepared, String)> {
    let (prepared, sentence) = match mode {
        Mode::Benchmark(method) => {
            if matches!(method, SplitMethod::Time { .. }) && plog.rows.iter().all(|r| r.time.is_none()) {
                return Err(bad(
                    "the purchases have no times, so the time split of [split] cannot be made: give [split] \
                     method = \"random\" (validated on another random holdout inside its training part), or \
                     remove [split] to tune on all the purchases for production",
                ));
            }
            let prepared = ev::prepare(plog, method, true).map_err(|e| bad(e.to_string()))?;
            (prepared, benchmark_validation(method))
        }
        Mode::Production { .. } => {
            let all = vec![true; plog.rows.len()];
            let (p, sentence) =
                select::carve(plog, &all, target).map_err(|why| bad(format!("nothing to tune on: {why}")))?;
            (p, format!("{sentence}; nothing is held back as test"))
        }
    };
    let s = &prepared.summary;
    let unused = match mode {
        Mode::Benchmark(_) => format!(" (the {} test rows are not used)", s.unused_rows),
        Mode::Production { .. } => String::new(),
    };
    log.info(&sentence);
    // The customers of the target tuned on, as the sentence counts them; on new items, those
    // whose held-out items were all bought before are measured on all items only.
    let measured = if target == Target::AllItems { s.measured_all } else { s.measured_new };
    let besides = match target {
        Target::NewItems => format!(
            " ({} on all items: {} held out only items they had bought before)",
            s.measured_all,
            s.measured_all - s.measured_new
        ),
        _ => String::new(),
    };
    log.info(format!(
        "validation split: {} training rows, {} validation rows{unused}; {measured} customers measured on {}{besides}",
        s.train_rows,
        s.test_rows,
        target.name()
    ));
    if measured < MIN_WINDOW {
        log.info(format!(
            "warning: only {measured} customers are measured on {}: differences between configurations are mostly \
             noise (the report's standard errors say how much); a longer validation window or a random split \
             measures more",
            target.name()
        ));
    }
    Ok((prepared, sentence))
}

/// How benchmark mode carves validation from the training part of `method`
/// (`SplitMethod::validation_rows`).
fn benchmark_validation(method: &SplitMethod) -> String {
    match *method {
        SplitMethod::Time { .. } => {
            "validation on the window as long as the test part just before it, in the training part".to_string()
        }
        SplitMethod::Random { fraction, .. } => format!(
            "validation on a random {fraction} of each customer's items in the training part (another draw than \
             the test part's)"
        ),
        SplitMethod::LastBasket => "validation on each customer's last basket in the training part".to_string(),
    }
}

/// Measures every candidate on the validation split; returns (value, candidate) pairs,
/// best first, ties to the earlier candidate.
fn search(
    prepared: &Prepared,
    drawn: bool,
    configs: &[Candidate],
    Objective { metric, target, k }: Objective,
    log: Log,
) -> Result<Vec<(f64, usize)>> {
    log.info(format!(
        "trying {} configurations for {} {}@{k} on {}",
        configs.len(),
        if drawn { "a random draw of" } else { "all" },
        metric.name(),
        target.name()
    ));
    let mut results: Vec<(f64, usize)> = Vec::new();
    for (n, (name, _, params)) in configs.iter().enumerate() {
        let runs = prepared.evaluate(name, params, &[k], &[target]).map_err(|e| bad(e.to_string()))?;
        let value = runs.first().and_then(|r| r.table.get(metric, k)).unwrap_or(0.0);
        log.info(format!("[{}/{}] {name}: {:.4}", n + 1, configs.len(), value));
        results.push((value, n));
    }
    // Best first; ties go to the earlier configuration.
    results.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (best_value, best) = results[0];
    log.info(format!("best: {} with {} {:.4}", configs[best].0, metric.name(), best_value));
    log.info(format!("to fit it: cobuy fit ... {}", fit_flags(&configs[best].1)));
    Ok(results)
}

/// Fits `params` on every row and saves the model as `cobuy fit` does, so that the bytes
/// are those of `cobuy fit` with the same purchases and flags.
fn refit(read: Logged, input: &InputArgs, params: &FitParams, model: &Path, log: Log) -> Result<()> {
    let start = Instant::now();
    let s = read.summary;
    let info = FitInfo {
        source: Some(input.purchases.display().to_string()),
        merge: s.merge,
        ingest: Some(s),
        ..FitInfo::default()
    };
    let fitted = super::fit_model(read.interactions, params, info)?;
    log.info(format!(
        "refitted {} on all the purchases in {:.1}s",
        cobuy::model::describe(fitted.params()),
        start.elapsed().as_secs_f64()
    ));
    fitted.save(model)?;
    log.info(format!("wrote the model to {}", model.display()));
    Ok(())
}

/// The outcome of a search, for the best file.
struct Best<'a> {
    configs: &'a [Candidate],
    results: &'a [(f64, usize)],
    goal: Objective,
    /// How validation was carved.
    validation: &'a str,
}

impl Best<'_> {
    /// The best file's comment header: what was measured, on what, and the ten best scores.
    fn header(&self, path: &Path, shown: usize) -> String {
        let Objective { metric, target, k } = self.goal;
        let mut header = format!(
            "# Written by cobuy tune from {}: the best {shown} of {} configurations by {}@{k} on {}, on the \
             validation split\n# ({})\n",
            path.display(),
            self.configs.len(),
            metric.name(),
            target.name(),
            self.validation
        );
        for &(v, n) in self.results.iter().take(10) {
            header.push_str(&format!("#   {v:.4}  {}\n", self.configs[n].0));
        }
        header
    }

    /// The winner's `[[space]]` keys.
    fn keys(&self) -> &toml::Table {
        &self.configs[self.results[0].1].1
    }
}

/// Writes the best job: the input and split as given (on the test part this time), the
/// best configuration, and the runner-up configurations for comparison.
fn write_best(path: &Path, text: &str, t: &TuneArgs, best: &Best, log: Log) -> Result<()> {
    let mut doc = original_tables(path, text, &["input", "split", "eval", "threads"])?;
    if let Some(toml::Value::Table(split)) = doc.get_mut("split") {
        split.remove("validation");
    }
    if !doc.contains_key("eval") {
        let mut e = toml::Table::new();
        e.insert("out_dir".into(), toml::Value::String("eval".into()));
        doc.insert("eval".into(), toml::Value::Table(e));
    }
    let algorithms: Vec<toml::Value> = best
        .results
        .iter()
        .take(3)
        .map(|&(_, n)| {
            let mut t = best.configs[n].1.clone();
            t.insert("name".into(), toml::Value::String(best.configs[n].0.clone()));
            toml::Value::Table(t)
        })
        .collect();
    doc.insert("algorithm".into(), toml::Value::Array(algorithms));
    let mut header = best.header(path, best.configs.len().min(3));
    header.push_str(&format!("# To fit the best on all the purchases: cobuy fit {}\n", fit_flags(best.keys())));
    let out = write_job(path, t, &header, doc)?;
    log.info(format!(
        "wrote the best configurations to {} (run it with cobuy run: it measures on the test part)",
        out.display()
    ));
    Ok(())
}

/// Writes production mode's fit job: the input as given, the best configuration with the
/// model's path as `[fit]`, and `recommend` ([`fit_job_recommend`]) as `[recommend]`.
fn write_fit_job(path: &Path, text: &str, t: &TuneArgs, recommend: &toml::Table, best: &Best, log: Log) -> Result<()> {
    let mut doc = original_tables(path, text, &["input", "threads"])?;
    let model = t.model.as_deref().expect("production mode has a model");
    let path_value = |p: &Path| toml::Value::String(p.display().to_string());
    let mut fit = toml::Table::new();
    fit.insert("model".into(), path_value(model));
    fit.extend(best.keys().iter().filter(|(k, _)| *k != "name").map(|(k, v)| (k.clone(), v.clone())));
    doc.insert("fit".into(), toml::Value::Table(fit));
    doc.insert("recommend".into(), toml::Value::Table(recommend.clone()));
    let mut header = best.header(path, 1);
    header.push_str(&format!(
        "# Refitted on all the purchases into {}: cobuy run refits it (the same model bytes from the same \
         purchases) and writes each customer's recommendations ([recommend]).\n# As flags: cobuy fit {}\n",
        model.display(),
        fit_flags(best.keys())
    ));
    let out = write_job(path, t, &header, doc)?;
    log.info(format!(
        "wrote the best configuration as a fit job to {} (cobuy run refits and recommends)",
        out.display()
    ));
    Ok(())
}

/// The tables `keys` of the tune job, as written.
fn original_tables(path: &Path, text: &str, keys: &[&str]) -> Result<toml::Table> {
    let original: toml::Table = text.parse().map_err(|e| super::job_error(path, &e))?;
    Ok(keys.iter().filter_map(|&k| original.get(k).map(|v| (k.to_string(), v.clone()))).collect())
}

/// Writes `header` and `doc` to the best file atomically; returns its path. Paths in the
/// job are relative to the job file; written elsewhere, the best file gets them absolute
/// so that it reads and writes the same files.
fn write_job(path: &Path, t: &TuneArgs, header: &str, mut doc: toml::Table) -> Result<PathBuf> {
    let base = path.parent().unwrap_or(Path::new(""));
    let out = best_path(path, t);
    if out.parent().unwrap_or(Path::new("")) != base {
        rebase_paths(&mut doc, base);
    }
    let body = toml::to_string(&doc).map_err(|e| bad(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let mut f = cobuy::output::AtomicFile::create(&out)?;
        std::io::Write::write_all(&mut f, format!("{header}\n{body}").as_bytes())?;
        f.commit()
    };
    write().map_err(|e| bad(format!("{}: cannot write the best configurations: {e}", out.display())))?;
    Ok(out)
}

/// A configuration's `[[space]]` keys as `cobuy fit` flags: `--ease-lambda 100 --weighting binary`.
fn fit_flags(t: &toml::Table) -> String {
    t.iter()
        .map(|(k, v)| format!("--{} {}", k.replace('_', "-"), v.to_string().trim_matches('"')))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the best configurations go: `[tune] out`, relative to the job file, or beside
/// it, JOB.toml.best.toml.
fn best_path(path: &Path, t: &TuneArgs) -> PathBuf {
    match &t.out {
        Some(o) => path.parent().unwrap_or(Path::new("")).join(o),
        None => {
            let mut p = path.as_os_str().to_owned();
            p.push(".best.toml");
            PathBuf::from(p)
        }
    }
}

/// Makes the relative paths of an eval or fit job (input purchases and rejects, eval
/// out_dir, write_split and measure files, the model, `[recommend]`'s files) absolute,
/// taking them relative to `base`.
fn rebase_paths(doc: &mut toml::Table, base: &Path) {
    let fix = |p: &str| -> String {
        let path = Path::new(p);
        if path.is_relative() && p != "-" {
            std::path::absolute(base.join(path)).unwrap_or_else(|_| base.join(path)).display().to_string()
        } else {
            p.to_string()
        }
    };
    let tables = [
        ("input", &["purchases", "rejects"][..]),
        ("eval", &["out_dir", "write_split", "deny"][..]),
        ("fit", &["model"][..]),
        ("recommend", &["out", "customers", "allow", "deny", "categories", "exclude_categories", "catalog"][..]),
    ];
    for (table, keys) in tables {
        if let Some(toml::Value::Table(t)) = doc.get_mut(table) {
            for key in keys {
                if let Some(toml::Value::String(p)) = t.get_mut(*key) {
                    *p = fix(p);
                }
            }
        }
    }
    if let Some(toml::Value::Table(t)) = doc.get_mut("eval") {
        if let Some(toml::Value::Array(specs)) = t.get_mut("measure") {
            for spec in specs.iter_mut() {
                if let toml::Value::String(m) = spec {
                    if let Some((head, file)) = m.split_once('=') {
                        *m = format!("{head}={}", fix(file));
                    }
                }
            }
        }
    }
}
