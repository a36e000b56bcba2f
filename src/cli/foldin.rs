//! `cobuy fold-in`: a saved model and purchase rows given now in, recommendations for the
//! customers of those rows out (scored from their rows, not from the model's history).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use cobuy::batch::BatchOptions;
use cobuy::ingest;

use super::args::{BoughtArgs, CatalogArgs, FilterArgs, InputArgs, ingest_options, set_threads};
use super::paths::Files;
use super::{Log, bad, load_model, plural, summary_lines, write_batch};

#[derive(Args, Clone, Debug)]
pub struct FoldInCmd {
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
    bought: BoughtArgs,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    catalog: CatalogArgs,
}

/// Runs `cobuy fold-in`.
pub fn run(cmd: &FoldInCmd, threads: usize, log: Log) -> Result<()> {
    set_threads(threads)?;
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let opts = ingest_options(&cmd.input, &cmd.out)?;
    let files = Files::new().input("model", Some(&cmd.model)).input("purchases", Some(&cmd.input.purchases));
    cmd.filter
        .files(&cmd.catalog, files)
        .output("recommendations", Some(&cmd.out))
        .output("rejects file", opts.rejects.as_deref())
        .check()?;
    let model = load_model(&cmd.model, log)?;
    let read = ingest::read_purchases(&cmd.input.purchases, &opts)?;
    for line in summary_lines(&read.summary, opts.rejects.as_deref()) {
        log.info(line);
    }
    let unknown = cobuy::batch::unknown_item_pairs(&model, &read.interactions);
    if unknown > 0 {
        log.info(format!(
            "{unknown} customer-item pairs name items the model does not know; they cannot inform scores"
        ));
    }
    let filter = cmd.filter.resolve(&cmd.bought, &model, &cmd.catalog, &cmd.out, log)?;
    let batch = BatchOptions { top: cmd.top, filter: &filter, explain: cmd.explain, columns: None };
    let (stats, secs) =
        write_batch(&cmd.out, read.interactions.customers().len(), "fold-in", log, |file, progress| {
            cobuy::batch::write_fold_in(&model, (&read.interactions, read.summary.counts), &batch, file, progress)
        })?;
    log.info(format!(
        "wrote {} recommendations for {} (fold-in) to {} in {secs:.1}s",
        stats.rows,
        plural(stats.customers, "customer"),
        cmd.out.display()
    ));
    Ok(())
}
