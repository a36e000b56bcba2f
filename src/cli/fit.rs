//! `cobuy fit`: purchases in, a fitted model file out (also the first step of `cobuy run`).

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use indicatif::ProgressBar;

use cobuy::ingest::{self, IngestSummary};
use cobuy::model::{FitInfo, Model};

use super::args::{InputArgs, ModelArgs, fit_params, ingest_options, set_threads};
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
    let model = super::fit_model(read.interactions, &params, info)?;
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
