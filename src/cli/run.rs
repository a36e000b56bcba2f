//! `cobuy run JOB.toml`: the nightly job (fit, recommend, optional up-sell, a JSON summary),
//! or, for a job file with `[split]` or `[eval]` tables, an evaluation (`cli::eval`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use cobuy::batch::BatchStats;
use cobuy::ingest::IngestSummary;
use cobuy::model::FitParams;
use cobuy::output::AtomicFile;

use super::args::{InputArgs, ModelArgs, ValueArgs, set_job_threads};
use super::customers::CustomersStep;
use super::recommend::{RecommendCmd, recommend};
use super::upsell::UpsellStep;
use super::{Log, create_parent, fit::fit, read_job_text, rebase};

#[derive(Args, Clone, Debug)]
pub struct RunCmd {
    /// The job file (TOML).
    job: PathBuf,
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
    upsell: Option<UpsellStep>,
    /// Customer value from the same purchases, written first: the offers then carry each
    /// customer's tier, churn risk and lifetime value, and `[recommend]`'s `order` and
    /// `only_tier` read it.
    #[serde(default)]
    customers: Option<CustomersStep>,
    /// JSON summary of the run.
    #[serde(default)]
    summary: Option<PathBuf>,
    /// Worker threads (the --threads flag wins).
    #[serde(default)]
    threads: Option<usize>,
}

/// Runs `cobuy run`.
pub fn run(cmd: &RunCmd, threads: usize, log: Log) -> Result<()> {
    let path = cmd.job.as_path();
    let text = read_job_text(path)?;
    if let Ok(table) = text.parse::<toml::Table>() {
        if table.contains_key("split") || table.contains_key("eval") {
            return super::eval::run_job(path, threads, log);
        }
    }
    let mut job = read_job(path, &text)?;
    set_job_threads(threads, job.threads)?;
    let mut files = job.recommend.files(super::fit::files(&job.input, &job.fit)?.input("job file", Some(path)));
    if let Some(u) = &job.upsell {
        files = u.files(&job.input, files)?;
    }
    if let Some(c) = &job.customers {
        files = c.files(files);
    }
    files.output("run summary", job.summary.as_deref()).check()?;

    let start = Instant::now();
    log.info(format!("running {}", path.display()));
    let upsell_catalog = job.upsell.as_ref().map(|u| u.read_catalog(&job.input, log)).transpose()?;
    let customers = match &job.customers {
        Some(c) => {
            let n = c.run(&job.input, log)?;
            // The step's file feeds the offers (it was checked as an output, not an input).
            job.recommend.value.customer_value.get_or_insert_with(|| c.out.clone());
            Some(CustomersSummary { file: c.out.display().to_string(), customers: n })
        }
        None => None,
    };
    let (model, ingest) = fit(&job.input, &job.fit, log)?;
    let batch = recommend(&model, &job.recommend, log)?;
    let upsell = match (&job.upsell, upsell_catalog) {
        (Some(u), Some(catalog)) => {
            let value =
                ValueArgs { customer_value: job.customers.as_ref().map(|c| c.out.clone()), ..ValueArgs::default() };
            let values = value.resolve(model.customers(), log)?;
            let batch = u.run(&job.input, catalog, &model, values.as_ref(), log)?;
            Some(UpsellSummary { offers: u.out.display().to_string(), batch })
        }
        _ => None,
    };
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
            #[serde(skip_serializing_if = "Option::is_none")]
            upsell: Option<UpsellSummary>,
            #[serde(skip_serializing_if = "Option::is_none")]
            customers: Option<CustomersSummary>,
        }
        let s = Summary {
            job: path.display().to_string(),
            ingest: &ingest,
            params: model.params(),
            neighbor_pairs: model.neighbors().nnz(),
            model: job.fit.model.display().to_string(),
            recommendations: job.recommend.out.display().to_string(),
            batch,
            upsell,
            customers,
        };
        create_parent(p)?;
        let mut f = AtomicFile::create(p).with_context(|| format!("cannot create {}", p.display()))?;
        serde_json::to_writer_pretty(&mut f, &s)
            .map_err(std::io::Error::from)
            .and_then(|()| std::io::Write::write_all(&mut f, b"\n"))
            .and_then(|()| f.commit())
            .with_context(|| format!("cannot write {}", p.display()))?;
        log.info(format!("wrote the run summary to {}", p.display()));
    }
    log.info(format!("job done in {:.1}s", start.elapsed().as_secs_f64()));
    Ok(())
}

/// The run summary's up-sell section: the offers file and what was written to it.
#[derive(Serialize)]
struct UpsellSummary {
    offers: String,
    batch: BatchStats,
}

/// The run summary's customers section: the customers file and its customers.
#[derive(Serialize)]
struct CustomersSummary {
    file: String,
    customers: u64,
}

/// Parses a nightly job, its paths made relative to the job file's folder and its
/// `[upsell]` step checked, before anything is read.
fn read_job(path: &Path, text: &str) -> Result<Job> {
    let mut job: Job = toml::from_str(text).map_err(|e| super::job_error(path, &e))?;
    let base = path.parent().unwrap_or(Path::new(""));
    let rebase = |p: &mut PathBuf| rebase(base, p);
    rebase(&mut job.input.purchases);
    job.input.rejects.as_mut().map(rebase);
    rebase(&mut job.fit.model);
    job.recommend.rebase(base);
    job.summary.as_mut().map(rebase);
    if let Some(u) = &mut job.upsell {
        rebase(&mut u.out);
        u.customers.as_mut().map(rebase);
        u.catalog.catalog.as_mut().map(rebase);
        u.check()?;
    }
    if let Some(c) = &mut job.customers {
        c.rebase(base);
        c.check()?;
    }
    job.recommend.value.check(job.customers.is_some())?;
    job.recommend.model = job.fit.model.clone();
    Ok(job)
}
