//! `cobuy similar-customers`: a saved model in, each customer's most similar customers out
//! as CSV.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use cobuy::algo::similarity::Measure;

use super::args::{SimilarityArgs, set_threads, similarity_params};
use super::paths::Files;
use super::{Log, bad, customer_list, load_model, plural, write_batch};

#[derive(Args, Clone, Debug)]
pub struct SimilarCmd {
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

/// Runs `cobuy similar-customers`.
pub fn run(cmd: &SimilarCmd, threads: usize, log: Log) -> Result<()> {
    set_threads(threads)?;
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let d = SimilarityArgs::default();
    if (cmd.similarity.rp3_alpha, cmd.similarity.rp3_beta) != (d.rp3_alpha, d.rp3_beta) {
        return Err(bad("--rp3-alpha and --rp3-beta are item-kNN's (cobuy fit); similar customers do not use them"));
    }
    if cmd.similarity.ties != d.ties {
        // Visit order reproduces a heap kernel over items (implicit's), where the item itself
        // takes a slot; over customers it reproduces nothing.
        return Err(bad("--ties is item-kNN's (cobuy fit); similar customers keep the lowest-index ties"));
    }
    Files::new()
        .input("model", Some(&cmd.model))
        .input("customer list", cmd.customers.as_deref())
        .output("similar customers", Some(&cmd.out))
        .check()?;
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
        "wrote {} neighbours ({}) for {} to {} in {:.1}s ({:.0} customers/s)",
        stats.rows,
        params.measure.name(),
        plural(stats.customers, "customer"),
        cmd.out.display(),
        secs,
        stats.customers as f64 / secs.max(1e-9)
    ));
    Ok(())
}
