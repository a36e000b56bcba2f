//! `cobuy fit`: purchases in, a fitted model file out (also the first step of `cobuy run`).

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use indicatif::ProgressBar;

use cobuy::eval::select;
use cobuy::ingest::{self, IngestSummary, Ingested, Logged};
use cobuy::model::FitParams;
use cobuy::model::{FitInfo, Model};

use super::args::{FitPlan, InputArgs, ModelArgs, fit_plan, ingest_options, set_threads};
use super::paths::Files;
use super::{Log, create_parent, summary_lines};

#[derive(Args, Clone, Debug)]
pub struct FitCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `cobuy fit`.
pub fn run(cmd: &FitCmd, threads: usize, log: Log) -> Result<()> {
    set_threads(threads)?;
    files(&cmd.input, &cmd.model)?.check()?;
    fit(&cmd.input, &cmd.model, log).map(drop)
}

/// The files `fit` reads and writes: the purchases, the model and the rejects file.
pub fn files(input: &InputArgs, margs: &ModelArgs) -> Result<Files> {
    let opts = ingest_options(input, &margs.model)?;
    Ok(Files::new()
        .input("purchases", Some(&input.purchases))
        .output("model", Some(&margs.model))
        .output("rejects file", opts.rejects.as_deref()))
}

/// Reads the purchases, fits the model and saves it; returns the model and what was read.
pub fn fit(input: &InputArgs, margs: &ModelArgs, log: Log) -> Result<(Model, IngestSummary)> {
    let opts = ingest_options(input, &margs.model)?;
    let plan = fit_plan(&margs.fit, &margs.similarity)?;
    create_parent(&margs.model)?;
    if let Some(r) = &opts.rejects {
        create_parent(r)?;
    }
    let start = Instant::now();
    log.info(format!("reading {}", input.purchases.display()));
    let mut bar: Option<ProgressBar> = None;
    let mut progress = |p: ingest::Progress| {
        let b = bar.get_or_insert_with(|| log.bar(p.total_bytes, "reading").unwrap_or_else(ProgressBar::hidden));
        b.set_position(p.bytes);
    };
    // `auto` splits the purchases by time, so it keeps the rows of the customers it may
    // search on (a sample on large files); a given algorithm needs only the merged pairs.
    let read = match &plan {
        FitPlan::Fixed(params) => {
            Read::Merged(ingest::read_purchases_with_progress(&input.purchases, &opts, &mut progress)?, params)
        }
        FitPlan::Auto(auto) => {
            let sample = select::reading_sample(auto);
            Read::Log(ingest::read_log_sample_with_progress(&input.purchases, &opts, sample, &mut progress)?)
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let s = match &read {
        Read::Merged(r, _) => &r.summary,
        Read::Log(r) => &r.summary,
    };
    log.info(format!("read {} rows in {:.1}s", s.rows_read, start.elapsed().as_secs_f64()));
    let info = FitInfo {
        source: Some(input.purchases.display().to_string()),
        ingest: Some(s.clone()),
        merge: s.merge,
        ..FitInfo::default()
    };
    let start = Instant::now();
    let rejects = opts.rejects.as_deref();
    let fitted = |model: &Model| {
        if let FitPlan::Fixed(p) = &plan {
            if p.weighting.half_life_days.is_some() && model.params().weighting.half_life_days.is_none() {
                log.info("the purchases have no times: buy-again ranks by counts, without its default time decay");
            }
        }
        for line in summary_lines(model.info().ingest.as_ref().unwrap_or(&IngestSummary::default()), rejects) {
            log.info(line);
        }
        log.info(format!("fitted {} in {:.1}s", cobuy::model::describe(model.params()), start.elapsed().as_secs_f64()));
    };
    // A given algorithm's file is written while it is fitted (see `Model::fit_and_save`).
    let model = match read {
        Read::Merged(r, params) => super::fit_and_save(r.interactions, params, info, &margs.model, fitted)?,
        Read::Log(r) => {
            let model = super::fit_on_log(&r.log, r.sampled_from, r.interactions, &plan, info, log)?;
            fitted(&model);
            model.save(&margs.model)?;
            model
        }
    };
    log.info(format!("wrote the model to {}", margs.model.display()));
    let summary = model.info().ingest.clone().unwrap_or_default();
    Ok((model, summary))
}

/// What was read: merged pairs for a given algorithm, every row for `auto`.
enum Read<'p> {
    Merged(Ingested, &'p FitParams),
    Log(Logged),
}
