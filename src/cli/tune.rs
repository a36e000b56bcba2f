//! `cobuy tune JOB.toml`: search fit parameters on the validation split, never the test
//! split, and write the best as an eval job file.
//!
//! The job file is an eval job whose `[[space]]` tables list values to try per key (any
//! key of `cobuy fit`), instead of fixed `[[algorithm]]` tables. A grid tries every
//! combination of each space; `trials = N` draws N of them with `seed` instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Deserialize;

use cobuy::eval::metrics::Metric;
use cobuy::eval::split::SplitMethod;
use cobuy::eval::{self as ev, Target};
use cobuy::generate::Rng;
use cobuy::ingest;
use cobuy::model::FitParams;

use super::args::{
    CatalogArgs, EvalArgs, InputArgs, NamedFit, SplitArgs, UpsellArgs, check_catalog, fit_params, ingest_options,
    set_job_threads, split_method, targets,
};
use super::eval::check_output_file;
use super::paths::Files;
use super::{Log, bad, create_parent, read_job_text};

#[derive(Args, Clone, Debug)]
pub struct TuneCmd {
    /// The tune job file (TOML): an eval job with `[tune]` and `[[space]]` tables.
    job: PathBuf,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TuneJob {
    input: InputArgs,
    split: SplitArgs,
    /// Kept as written for the best job file.
    #[serde(default, rename = "eval")]
    _eval: Option<EvalArgs>,
    tune: TuneArgs,
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
    /// Where to write the best configurations as an eval job file, relative to the job file
    /// (default: beside it, JOB.toml.best.toml).
    out: Option<PathBuf>,
}

impl Default for TuneArgs {
    fn default() -> Self {
        Self { target: "new-items".into(), metric: "ndcg".into(), k: 10, trials: None, seed: 1, out: None }
    }
}

/// A candidate configuration: its label, its `[[space]]` keys, its checked parameters.
type Candidate = (String, toml::Table, FitParams);

/// What is maximised: a metric (at `[tune]`'s cut-off) on a target.
#[derive(Clone, Copy)]
struct Objective {
    metric: Metric,
    target: Target,
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
    let mut job: TuneJob = toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", path.display())))?;
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
    let method = split_method(&job.split)?;
    let configs = candidates(path, &job, target)?;
    let goal = Objective { metric, target };
    // Every output location is checked before the log is read.
    let out = best_path(path, &job.tune);
    Files::new()
        .input("tune job", Some(path))
        .input("purchases", Some(&job.input.purchases))
        .output("best job", Some(&out))
        .output("rejects", job.input.rejects.as_deref())
        .check()?;
    check_output_file(&out)?;
    if let Some(r) = &job.input.rejects {
        create_parent(r)?;
    }
    let results = search(&job, &method, &configs, goal, log)?;
    write_best(path, &text, &job.tune, &configs, &results, goal, log)
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

/// Reads the log, measures every candidate on the validation split; returns (value,
/// candidate) pairs, best first, ties to the earlier candidate.
fn search(
    job: &TuneJob,
    method: &SplitMethod,
    configs: &[Candidate],
    goal: Objective,
    log: Log,
) -> Result<Vec<(f64, usize)>> {
    let (t, Objective { metric, target }) = (&job.tune, goal);
    let start = Instant::now();
    let out_dir = std::env::temp_dir();
    let opts = ingest_options(&job.input, &out_dir.join("cobuy-tune"))?;
    let (plog, summary) = ingest::read_log(&job.input.purchases, &opts)?;
    log.info(format!("read {} rows in {:.1}s", summary.rows_read, start.elapsed().as_secs_f64()));
    let prepared = ev::prepare(&plog, method, true).map_err(|e| bad(e.to_string()))?;
    let s = &prepared.summary;
    log.info(format!(
        "validation split: {} training rows, {} validation rows (the {} test rows are not used); {} customers measured",
        s.train_rows, s.test_rows, s.unused_rows, s.measured_all
    ));
    let measured = if target == Target::AllItems { s.measured_all } else { s.measured_new };
    if measured < cobuy::eval::select::MIN_WINDOW {
        log.info(format!(
            "warning: only {measured} customers are measured on {}: differences between configurations are mostly \
             noise (the report's standard errors say how much); a longer validation window or a random split \
             measures more",
            target.name()
        ));
    }
    log.info(format!(
        "trying {} configurations for {} {}@{} on {}",
        configs.len(),
        if t.trials.is_some() { "a random draw of" } else { "all" },
        metric.name(),
        t.k,
        target.name()
    ));

    let mut results: Vec<(f64, usize)> = Vec::new();
    for (n, (name, _, params)) in configs.iter().enumerate() {
        let runs = prepared.evaluate(name, params, &[t.k], &[target]).map_err(|e| bad(e.to_string()))?;
        let value = runs.first().and_then(|r| r.table.get(metric, t.k)).unwrap_or(0.0);
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

/// Writes the best job: the input and split as given (on the test part this time), the
/// best configuration, and the runner-up configurations for comparison.
fn write_best(
    path: &Path,
    text: &str,
    t: &TuneArgs,
    configs: &[Candidate],
    results: &[(f64, usize)],
    Objective { metric, target }: Objective,
    log: Log,
) -> Result<()> {
    let base = path.parent().unwrap_or(Path::new(""));
    let mut doc = toml::Table::new();
    let original: toml::Table = text.parse().map_err(|e| bad(format!("{}: {e}", path.display())))?;
    for key in ["input", "split", "eval", "threads"] {
        if let Some(v) = original.get(key) {
            doc.insert(key.into(), v.clone());
        }
    }
    if let Some(toml::Value::Table(split)) = doc.get_mut("split") {
        split.remove("validation");
    }
    if !doc.contains_key("eval") {
        let mut e = toml::Table::new();
        e.insert("out_dir".into(), toml::Value::String("eval".into()));
        doc.insert("eval".into(), toml::Value::Table(e));
    }
    let algorithms: Vec<toml::Value> = results
        .iter()
        .take(3)
        .map(|&(_, n)| {
            let mut t = configs[n].1.clone();
            t.insert("name".into(), toml::Value::String(configs[n].0.clone()));
            toml::Value::Table(t)
        })
        .collect();
    doc.insert("algorithm".into(), toml::Value::Array(algorithms));
    let mut header = format!(
        "# Written by cobuy tune from {}: the best {} of {} configurations by {}@{} on {}, on the validation split\n",
        path.display(),
        configs.len().min(3),
        configs.len(),
        metric.name(),
        t.k,
        target.name()
    );
    for &(v, n) in results.iter().take(10) {
        header.push_str(&format!("#   {v:.4}  {}\n", configs[n].0));
    }
    header.push_str(&format!(
        "# To fit the best on all the purchases: cobuy fit {}\n",
        fit_flags(&configs[results[0].1].1)
    ));
    let out = best_path(path, t);
    // Paths in the job are relative to the job file; written elsewhere, the best file gets
    // them absolute so that it reads the same files.
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
    log.info(format!(
        "wrote the best configurations to {} (run it with cobuy run: it measures on the test part)",
        out.display()
    ));
    Ok(())
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

/// Makes the relative paths of an eval job (input purchases and rejects, eval out_dir,
/// write_split and measure files) absolute, taking them relative to `base`.
fn rebase_paths(doc: &mut toml::Table, base: &Path) {
    let fix = |p: &str| -> String {
        let path = Path::new(p);
        if path.is_relative() && p != "-" {
            std::path::absolute(base.join(path)).unwrap_or_else(|_| base.join(path)).display().to_string()
        } else {
            p.to_string()
        }
    };
    for (table, keys) in [("input", &["purchases", "rejects"][..]), ("eval", &["out_dir", "write_split"][..])] {
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
