//! `cobuy recommend`: a saved model in, each customer's recommendations out as CSV (also the
//! second step of `cobuy run`, whose `[recommend]` table takes the same keys).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde::{Deserialize, Serialize};

use cobuy::batch::{BatchOptions, BatchStats, write_recommendations};
use cobuy::model::Model;

use super::args::{BoughtArgs, CatalogArgs, FilterArgs, ValueArgs, set_threads};
use super::paths::Files;
use super::{Log, bad, customer_list, load_model, plural, write_batch};

/// Recommendations per customer, by default.
const TOP: usize = 10;

#[derive(Args, Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct RecommendCmd {
    /// The model file.
    #[arg(long)]
    #[serde(skip)]
    pub model: PathBuf,
    /// Recommendations per customer.
    #[arg(long, default_value_t = TOP)]
    #[serde(default = "RecommendCmd::top")]
    pub top: usize,
    /// Output CSV: customer_id,rank,item_id,score,source.
    #[arg(long)]
    pub out: PathBuf,
    /// Score only these customers (one id per line), in this order.
    #[arg(long)]
    #[serde(default)]
    pub customers: Option<PathBuf>,
    /// Score only shard I of N (1-based): a fixed hash partition of the customer ids.
    #[arg(long)]
    #[serde(default)]
    pub shard: Option<String>,
    /// Add a reason column.
    #[arg(long)]
    #[serde(default)]
    pub explain: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub bought: BoughtArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub value: ValueArgs,
}

impl RecommendCmd {
    /// `[recommend]` has a required key (`out`), so its `top` key reads the flag's default
    /// on its own.
    fn top() -> usize {
        TOP
    }

    /// Adds the files it reads (but the model) and writes.
    pub fn files(&self, files: Files) -> Files {
        self.filter
            .files(&self.catalog, files)
            .input("customer list", self.customers.as_deref())
            .input("customers file", self.value.customer_value.as_deref())
            .output("recommendations", Some(&self.out))
    }

    /// Makes its relative paths (the output, the customer, item and category lists and the
    /// catalogue) relative to `base`, a job file's folder.
    pub fn rebase(&mut self, base: &Path) {
        let rebase = |p: &mut PathBuf| super::rebase(base, p);
        rebase(&mut self.out);
        let f = &mut self.filter;
        for p in [
            &mut self.customers,
            &mut f.allow,
            &mut f.deny,
            &mut f.categories,
            &mut f.exclude_categories,
            &mut self.value.customer_value,
        ] {
            p.as_mut().map(rebase);
        }
        self.catalog.catalog.as_mut().map(rebase);
    }
}

/// Runs `cobuy recommend`.
pub fn run(cmd: &RecommendCmd, threads: usize, log: Log) -> Result<()> {
    set_threads(threads)?;
    cmd.value.check(false)?;
    cmd.files(Files::new().input("model", Some(&cmd.model))).check()?;
    let model = load_model(&cmd.model, log)?;
    recommend(&model, cmd, log).map(drop)
}

/// Scores the customers with `model` and writes their lists.
pub fn recommend(model: &Model, cmd: &RecommendCmd, log: Log) -> Result<BatchStats> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let customers = customer_list(model, cmd.customers.as_deref(), cmd.shard.as_deref(), log)?;
    let values = cmd.value.resolve(model.customers(), log)?;
    let customers = match &values {
        Some(v) => v.select(customers),
        None => customers,
    };
    let filter = cmd.filter.resolve(&cmd.bought, model, &cmd.catalog, &cmd.out, log)?;
    let columns = values.as_ref().map(|v| &v.columns);
    let opts = BatchOptions { top: cmd.top, filter: &filter, explain: cmd.explain, columns };
    let (stats, secs) = write_batch(&cmd.out, customers.len(), "scoring", log, |file, progress| {
        write_recommendations(model, &customers, &opts, file, progress)
    })?;
    log.info(format!(
        "wrote {} {} recommendations for {} to {} in {:.1}s ({:.0} customers/s); {} rows filled from popularity, {} got fewer than {}",
        stats.rows,
        model.params().algorithm.name(),
        plural(stats.customers, "customer"),
        cmd.out.display(),
        secs,
        stats.customers as f64 / secs.max(1e-9),
        stats.popular_rows,
        plural(stats.short_customers, "customer"),
        cmd.top
    ));
    Ok(stats)
}
