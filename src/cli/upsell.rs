//! `cobuy up-sell` and `cobuy upgrades`: ordered purchases and a priced catalogue in,
//! upgrade offers per customer (with when to make them) or an item's upgrade paths out.
//!
//! The two commands share a file because they share every step but the last: both read the
//! catalogue and the purchases and learn the upgrade model the same way (`learn`), and
//! explain an upgrade in the same words (`reason`). The steps are public for the two other
//! users of the up-sell pipeline: the nightly job's `[upsell]` step ([`UpsellStep`], run
//! by `cobuy run`) and `cobuy eval`'s upgrades target, so that what is measured is what is
//! offered. The up-sell flags themselves are a shared group in `cli::args`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;

use cobuy::batch::BatchStats;
use cobuy::ids::ItemIdx;
use cobuy::ingest::{self, PurchaseLog};
use cobuy::matrix::{Interactions, MergeStats};
use cobuy::model::{FitInfo, Model};
use cobuy::offers::catalog::{Catalog, CategoryIdx};
use cobuy::offers::upsell::{Basis, Delay, ItemFacts, UpSell, UpgradeModel, UpsellParams, UpsellRows, write_reason};
use cobuy::output::TableFile;
use cobuy::recommend::Filter;

use super::args::{
    AffinityArgs, CatalogArgs, InputArgs, UpsellArgs, ValueArgs, check_catalog, ingest_options, set_threads,
};
use super::customers::Values;
use super::paths::Files;
use super::{Log, bad, create_parent, customers_of, plural, summary_lines, write_batch};

/// Reads the catalogue for up-sell, reporting its items without a usable price.
pub fn read_catalog(args: &CatalogArgs, skip_invalid: bool, out: &Path, log: Log) -> Result<Catalog> {
    let Some((catalog, s)) = args.read(skip_invalid, out, log)? else {
        return Err(bad("up-sell needs a catalogue"));
    };
    log.info(format!(
        "the catalogue has {} items without a price and {} priced 0: never offered, never an anchor",
        s.no_price, s.zero_price
    ));
    Ok(catalog)
}

/// The item facts for the log's items, with what did not match logged; an error when no
/// item is usable.
pub fn item_facts(catalog: &Catalog, plog: &PurchaseLog, upsell: &UpsellArgs, log: Log) -> Result<ItemFacts> {
    let (facts, s) = ItemFacts::from_catalog(catalog, &plog.items, upsell.level, &upsell.grades);
    if !s.not_in_catalog.is_empty() {
        let ids: Vec<&str> = s.not_in_catalog.iter().take(10).map(|&i| plog.items.id(i)).collect();
        log.info(format!(
            "{} bought items are not in the catalogue (unknown anchors, never offered): {}{}",
            s.not_in_catalog.len(),
            ids.join(", "),
            if s.not_in_catalog.len() > 10 { ", ..." } else { "" }
        ));
    }
    log.info(format!(
        "up-sell items: {} of {} bought items have a category{} and a positive price; {} have no category there, {} no price, {} a price of 0{}",
        s.usable,
        s.items,
        upsell.level.map_or(String::new(), |l| format!(" at level {l}")),
        s.no_category,
        s.no_price,
        s.zero_price,
        if upsell.grades.is_empty() { String::new() } else { format!(", {} a brand not among --grades", s.ungraded) }
    ));
    if s.usable == 0 {
        return Err(bad(format!(
            "no bought item has both a category{} and a positive price in the catalogue",
            upsell.level.map_or(String::new(), |l| format!(" at level {l}"))
        )));
    }
    Ok(facts)
}

/// Checks that the log can be ordered (or that the tier fallback was asked for).
pub fn check_times(plog: &PurchaseLog, params: &UpsellParams) -> Result<()> {
    if !params.tiers_only && !plog.rows.iter().any(|r| r.time.is_some()) {
        return Err(bad("the purchases have no times (--time-col), so the order of upgrades cannot be learned; \
             pass --tiers-only to offer the next price tiers by popularity instead"));
    }
    Ok(())
}

/// Logs what the learner saw.
pub fn log_learned(m: &UpgradeModel, seconds: f64, log: Log) {
    let s = &m.summary;
    log.info(format!(
        "learned {} upgrade paths from {} anchor items ({} pairs seen) over {} customers with ordered purchases in a category, from {} rows in {seconds:.1}s; not used: {} rows without a time, and {} timed rows of items without a category or price",
        s.paths,
        s.anchors_with_paths,
        s.pairs_seen,
        s.customers_with_sequences,
        s.rows_used,
        s.rows_without_time,
        s.rows_without_facts
    ));
}

/// Offers per customer, by default (`--top`, and `top` in a nightly job's `[upsell]`).
const TOP: usize = 5;

/// `cobuy up-sell` flags.
#[derive(Args, Debug)]
pub struct UpSellCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    catalog: CatalogArgs,
    #[command(flatten)]
    upsell: UpsellArgs,
    /// Offers per customer.
    #[arg(long, default_value_t = TOP)]
    top: usize,
    /// Score only these customers (one id per line).
    #[arg(long)]
    customers: Option<PathBuf>,
    /// Output CSV: customer_id,rank,item_id,score,anchor_item_id,offer_after,reason.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    affinity: AffinityArgs,
    #[command(flatten)]
    value: ValueArgs,
}

/// What `up-sell` and `upgrades` both read and learn.
struct Learned {
    plog: PurchaseLog,
    /// The merge of every row, and what merging did (for fitting on them).
    interactions: Interactions,
    merge: MergeStats,
    catalog: Catalog,
    upgrades: UpgradeModel,
}

/// Reads the purchases and learns the upgrades (the catalogue is read first, by the caller:
/// a nightly job reads it before it fits, so a bad catalogue stops it before any output).
fn learn(
    input: &InputArgs,
    catalog: Catalog,
    upsell: &UpsellArgs,
    params: &UpsellParams,
    out: &Path,
    log: Log,
) -> Result<Learned> {
    let start = Instant::now();
    let opts = ingest_options(input, out)?;
    log.info(format!("reading {}", input.purchases.display()));
    let ingest::Logged { log: plog, interactions, summary, .. } =
        ingest::read_log_with_progress(&input.purchases, &opts, &mut |_| {})?;
    log.info(format!("read {} rows in {:.1}s", summary.rows_read, start.elapsed().as_secs_f64()));
    for line in
        summary_lines(&summary, opts.rejects.as_deref()).into_iter().filter(|l| !l.contains("customer-item pairs"))
    {
        log.info(line);
    }
    check_times(&plog, params)?;
    let facts = item_facts(&catalog, &plog, upsell, log)?;
    let t = Instant::now();
    let keep = vec![true; plog.rows.len()];
    let upgrades = UpgradeModel::learn(&plog, &keep, &facts, params);
    log_learned(&upgrades, t.elapsed().as_secs_f64(), log);
    Ok(Learned { plog, interactions, merge: summary.merge, catalog, upgrades })
}

/// Runs `cobuy up-sell`.
pub fn run(cmd: &UpSellCmd, threads: usize, log: Log) -> Result<()> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let params = cmd.upsell.params()?;
    cmd.affinity.check()?;
    cmd.value.check(false)?;
    check_catalog(&cmd.catalog, &cmd.upsell, "up-sell")?;
    set_threads(threads)?;
    let opts = ingest_options(&cmd.input, &cmd.out)?;
    let files =
        Files::new().input("purchases", Some(&cmd.input.purchases)).input("customer list", cmd.customers.as_deref());
    let files = cmd.affinity.files(files).input("customers file", cmd.value.customer_value.as_deref());
    cmd.catalog
        .files(cmd.input.skip_invalid, &cmd.out, files)
        .output("up-sell offers", Some(&cmd.out))
        .output("rejects file", opts.rejects.as_deref())
        .check()?;
    let affinity = cmd.affinity.resolve(log)?;
    let catalog = read_catalog(&cmd.catalog, cmd.input.skip_invalid, &cmd.out, log)?;
    let Learned { plog, interactions, merge, catalog, upgrades } =
        learn(&cmd.input, catalog, &cmd.upsell, &params, &cmd.out, log)?;
    let model = affinity.model(&plog, interactions, FitInfo { merge, ..FitInfo::default() }, log)?;
    let values = cmd.value.resolve(model.customers(), log)?;
    write_offers(&model, &upgrades, &catalog, cmd.top, cmd.customers.as_deref(), values.as_ref(), &cmd.out, log)
        .map(drop)
}

/// Scores the customers (all, or those listed in `customers`, selected and ordered by their
/// `values` with those given) and streams their offers to `out`, written completely or not
/// at all; returns what was written.
#[allow(clippy::too_many_arguments)]
fn write_offers(
    model: &Model,
    upgrades: &UpgradeModel,
    catalog: &Catalog,
    top: usize,
    customers: Option<&Path>,
    values: Option<&Values>,
    out: &Path,
    log: Log,
) -> Result<BatchStats> {
    let filter = model.filter(&Filter::default())?;
    let up = UpSell::new(upgrades, model.scorer(&filter));
    let customers = customers_of(model, customers, log)?;
    let customers = match values {
        Some(v) => v.select(customers),
        None => customers,
    };
    let rows = UpsellRows::new(&up, model, catalog, top);
    let header = values.map_or_else(|| UpsellRows::HEADER.to_string(), |v| v.columns.header(UpsellRows::HEADER));
    let (stats, secs) = write_batch(out, customers.len(), "up-sell", log, |file, progress| {
        cobuy::batch::write_blocks(
            &customers,
            &header,
            file,
            progress,
            || rows.scratch(),
            |s, &c, buf, st| {
                let start = buf.len();
                rows.append(s, c, buf, st);
                if let Some(v) = values {
                    v.columns.append(c, buf, start);
                }
            },
        )
    })?;
    log.info(format!(
        "wrote {} up-sell offers for {} to {} in {:.1}s; {} got fewer than {} (no category with a dearer item to offer)",
        stats.rows,
        plural(stats.customers, "customer"),
        out.display(),
        secs,
        plural(stats.short_customers, "customer"),
        top
    ));
    Ok(stats)
}

/// The `[upsell]` table of a nightly job file: up-sell offers from the job's purchases and
/// model (its `[upsell.catalog]` table takes the `--catalog*` keys, `[upsell.settings]` the
/// up-sell settings).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct UpsellStep {
    /// Output CSV.
    pub out: PathBuf,
    /// Offers per customer.
    #[serde(default = "UpsellStep::top")]
    pub top: usize,
    /// Score only these customers (one id per line).
    #[serde(default)]
    pub customers: Option<PathBuf>,
    /// The catalogue.
    pub catalog: CatalogArgs,
    /// Up-sell settings (defaults as for the flags).
    #[serde(default)]
    pub settings: UpsellArgs,
}

impl UpsellStep {
    /// `[upsell]` has required keys, so its `top` key reads the `--top` flag's default on
    /// its own.
    fn top() -> usize {
        TOP
    }

    /// Checks what can be checked before the job reads anything.
    pub fn check(&self) -> Result<UpsellParams> {
        if self.top == 0 {
            return Err(bad("[upsell] top must be at least 1"));
        }
        check_catalog(&self.catalog, &self.settings, "[upsell]")?;
        self.settings.params()
    }

    /// Adds the files the step reads and writes (the job's purchases are the job's).
    pub fn files(&self, input: &InputArgs, files: Files) -> Result<Files> {
        let opts = ingest_options(input, &self.out)?;
        Ok(self
            .catalog
            .files(input.skip_invalid, &self.out, files.input("customer list", self.customers.as_deref()))
            .output("up-sell offers", Some(&self.out))
            .output("rejects file", opts.rejects.as_deref()))
    }

    /// Reads the step's catalogue: a nightly job does it before it fits, so that a bad
    /// catalogue stops the job before it writes anything.
    pub fn read_catalog(&self, input: &InputArgs, log: Log) -> Result<Catalog> {
        read_catalog(&self.catalog, input.skip_invalid, &self.out, log)
    }

    /// Learns the upgrades from the job's purchases and writes the offers, with the job's
    /// model for affinity and the catalogue read by [`UpsellStep::read_catalog`]; returns
    /// what was written (for the run summary).
    pub fn run(
        &self,
        input: &InputArgs,
        catalog: Catalog,
        model: &Model,
        values: Option<&Values>,
        log: Log,
    ) -> Result<BatchStats> {
        let params = self.check()?;
        let Learned { plog, catalog, upgrades, .. } = learn(input, catalog, &self.settings, &params, &self.out, log)?;
        if model.items() != &plog.items {
            // The same file under the same options gives the same items; say so if not.
            return Err(anyhow::anyhow!("the purchases changed while the job ran: the model's items differ"));
        }
        write_offers(model, &upgrades, &catalog, self.top, self.customers.as_deref(), values, &self.out, log)
    }
}

/// `cobuy upgrades` flags.
#[derive(Args, Debug)]
pub struct UpgradesCmd {
    /// Items whose upgrade paths to show (none: every item with a path).
    items: Vec<String>,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    catalog: CatalogArgs,
    #[command(flatten)]
    upsell: UpsellArgs,
    /// Paths per item.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Output CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `cobuy upgrades`.
pub fn upgrades(cmd: &UpgradesCmd, threads: usize, log: Log) -> Result<()> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let params = cmd.upsell.params()?;
    check_catalog(&cmd.catalog, &cmd.upsell, "upgrades")?;
    set_threads(threads)?;
    let out_base = cmd.out.clone().unwrap_or_else(|| PathBuf::from("upgrades"));
    let opts = ingest_options(&cmd.input, &out_base)?;
    let files = Files::new().input("purchases", Some(&cmd.input.purchases));
    cmd.catalog
        .files(cmd.input.skip_invalid, &out_base, files)
        .output("upgrade paths", cmd.out.as_deref())
        .output("rejects file", opts.rejects.as_deref())
        .check()?;
    let catalog = read_catalog(&cmd.catalog, cmd.input.skip_invalid, &out_base, log)?;
    let Learned { plog, catalog, upgrades, .. } = learn(&cmd.input, catalog, &cmd.upsell, &params, &out_base, log)?;
    let ids = &plog.items;
    let anchors: Vec<u32> = if cmd.items.is_empty() {
        // Every item with a learned path (with --tiers-only, every item with a step up).
        (0..ids.len() as u32)
            .filter(|&i| {
                let i = ItemIdx(i);
                !upgrades.paths(i).is_empty() || (params.tiers_only && !upgrades.fallback(i).is_empty())
            })
            .collect()
    } else {
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        for id in &cmd.items {
            match ids.index_of(id) {
                Some(i) => found.push(i),
                None => unknown.push(id.as_str()),
            }
        }
        if !unknown.is_empty() {
            log.info(format!("{} items were never bought and have no paths: {}", unknown.len(), unknown.join(", ")));
        }
        if found.is_empty() {
            return Err(bad("none of the items was bought in the purchases"));
        }
        found
    };
    let facts = upgrades.facts();
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record([
        "anchor_item_id",
        "rank",
        "item_id",
        "basis",
        "customers",
        "anchor_customers",
        "expected",
        "score",
        "probability",
        "median_days",
        "anchor_price",
        "price",
        "reason",
    ])?;
    for &a in &anchors {
        let anchor = ItemIdx(a);
        let category =
            facts.category(a).map_or("its category".to_string(), |c| catalog.category_name(CategoryIdx(c)).to_string());
        let price = |i: u32| facts.price(i).map_or(String::new(), |p| format!("{p:.2}"));
        for (rank, (b, prob, basis)) in upgrades.upgrades_of(anchor).take(cmd.top).enumerate() {
            let (kind, counts, delay) = match basis {
                Basis::Path(p) => (
                    "path",
                    [
                        p.customers.to_string(),
                        p.anchor_customers.to_string(),
                        format!("{:.3}", p.expected),
                        format!("{:.3}", p.score),
                    ],
                    Delay::Path(p.median_days),
                ),
                Basis::Tier { .. } => {
                    ("tier", Default::default(), facts.category(a).map_or(Delay::Unknown, |c| upgrades.delay(c, None)))
                }
            };
            let [customers, anchor_customers, expected, score] = &counts;
            let mut reason = String::new();
            let (from, to) = (catalog.label(ids.id(a)), catalog.label(ids.id(b.0)));
            write_reason(&mut reason, &from, &to, &basis, delay, &category);
            w.write_record([
                ids.id(a),
                &(rank + 1).to_string(),
                ids.id(b.0),
                kind,
                customers,
                anchor_customers,
                expected,
                score,
                &format!("{prob:.4}"),
                &delay.days().map_or(String::new(), |d| d.to_string()),
                &price(a),
                &price(b.0),
                &reason,
            ])?;
        }
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    match &cmd.out {
        Some(out) => {
            create_parent(out)?;
            let mut f = TableFile::create(out).with_context(|| format!("cannot create {}", out.display()))?;
            f.write_all(&bytes).and_then(|()| f.commit()).with_context(|| format!("cannot write {}", out.display()))?;
            log.info(format!("wrote the upgrade paths of {} items to {}", anchors.len(), out.display()));
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}
