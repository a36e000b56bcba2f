//! `cobuy cross-sell`: purchases and a catalogue in, complementary offers per customer out.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use cobuy::batch::write_blocks;
use cobuy::ingest;
use cobuy::model::{FitInfo, Model};
use cobuy::offers::catalog::{Alignment, Catalog};
use cobuy::offers::crosssell::{CategoryEntries, CrossSell, CrossSellParams, OfferRows, Scoring};
use cobuy::offers::rules::{Baskets, RuleParams};
use cobuy::recommend::Filter;
use cobuy::value::{Wallet, WalletParams};

use super::args::{AffinityArgs, CatalogArgs, FilterArgs, InputArgs, ValueArgs, ingest_options, set_threads};
use super::paths::Files;
use super::{Log, bad, customers_of, plural, summary_lines, write_batch};

/// `cobuy cross-sell` flags.
#[derive(Args, Debug)]
pub struct CrossSellCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Category level that counts as "a category" (0: the top level; default: 1, or the
    /// catalogue's only level when it has one).
    #[arg(long)]
    level: Option<usize>,
    /// new-categories: only categories the customer never bought, scored in two stages
    /// (which category, then which item); mix: any category, collaborative and basket
    /// evidence mixed by --cf-weight and weighed by --novelty.
    #[arg(long, value_enum, default_value_t = ScoringArg::NewCategories)]
    scoring: ScoringArg,
    /// With --scoring mix: share of the score from collaborative filtering; the rest from
    /// basket lift.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    cf_weight: f64,
    /// With --scoring mix: preference for categories the customer has not bought: 0 none,
    /// 1 the default.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    novelty: f64,
    /// Minimum support of the basket rules used.
    #[arg(long, default_value_t = 0.0005)]
    min_support: f64,
    /// Minimum number of baskets holding both items of a rule.
    #[arg(long, default_value_t = 5)]
    min_count: u64,
    #[command(flatten)]
    filter: FilterArgs,
    /// Offers per customer.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Score only these customers (one id per line).
    #[arg(long)]
    customers: Option<PathBuf>,
    /// Output CSV: customer_id,rank,item_id,score,category,reason.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    affinity: AffinityArgs,
    /// Add a wallet_gap column: how much less than the median of their value band the
    /// customer spends in the offer's category, where most of the band buys there (empty:
    /// no gap). Needs amounts. Scores are unchanged.
    #[arg(long)]
    wallet: bool,
    #[command(flatten)]
    value: ValueArgs,
}

/// `--scoring`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ScoringArg {
    NewCategories,
    Mix,
}

/// Runs `cobuy cross-sell`.
pub fn run(cmd: &CrossSellCmd, threads: usize, log: Log) -> Result<()> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let scoring = match cmd.scoring {
        ScoringArg::NewCategories => Scoring::NewCategories,
        ScoringArg::Mix => Scoring::Mix,
    };
    let params =
        CrossSellParams { scoring, cf_weight: cmd.cf_weight, novelty: cmd.novelty, ..CrossSellParams::default() };
    params.check().map_err(bad)?;
    cmd.affinity.check()?;
    cmd.value.check(false)?;
    let rule_params =
        RuleParams { min_support: cmd.min_support, min_count: cmd.min_count.max(1), ..RuleParams::default() };
    rule_params.check().map_err(bad)?;
    if cmd.catalog.catalog.is_none() {
        return Err(bad(
            "cross-sell needs a catalogue to tell categories apart: --catalog FILE --catalog-item-col C --catalog-category-cols A,B",
        ));
    }
    set_threads(threads)?;
    let opts = ingest_options(&cmd.input, &cmd.out)?;
    let files =
        Files::new().input("purchases", Some(&cmd.input.purchases)).input("customer list", cmd.customers.as_deref());
    let files = cmd
        .affinity
        .files(cmd.filter.files(&cmd.catalog, files))
        .input("customers file", cmd.value.customer_value.as_deref());
    cmd.catalog
        .files(cmd.input.skip_invalid, &cmd.out, files)
        .output("cross-sell offers", Some(&cmd.out))
        .output("rejects file", opts.rejects.as_deref())
        .check()?;
    let affinity = cmd.affinity.resolve(log)?;
    let Some((catalog, catalog_summary)) = cmd.catalog.read(cmd.input.skip_invalid, &cmd.out, log)? else {
        return Err(bad("cross-sell needs a catalogue"));
    };
    let level = offer_level(cmd.level, catalog_summary.categories_per_level.len(), log);

    let start = Instant::now();
    log.info(format!("reading {}", cmd.input.purchases.display()));
    let ingest::Logged { log: plog, interactions, summary, .. } =
        ingest::read_log_with_progress(&cmd.input.purchases, &opts, &mut |_| {})?;
    log.info(format!("read {} rows in {:.1}s", summary.rows_read, start.elapsed().as_secs_f64()));
    for line in
        summary_lines(&summary, opts.rejects.as_deref()).into_iter().filter(|l| !l.contains("customer-item pairs"))
    {
        log.info(line);
    }
    let info = FitInfo { merge: summary.merge, ..FitInfo::default() };
    let model = affinity.model(&plog, interactions, info, log)?;
    let (baskets, st) = Baskets::from_log(&plog).map_err(|e| bad(e.to_string()))?;
    let rules = baskets.rules(&rule_params);
    log.info(format!(
        "{} basket rules from {} (pairs in at least {} of them)",
        rules.len(),
        if baskets.from_basket_ids() {
            super::baskets_held(st.baskets, summary.baskets)
        } else {
            super::customer_baskets(st.baskets, &summary)
        },
        rule_params.min_pair_count(baskets.len() as u64)
    ));

    let aligned = catalog.align(model.items());
    let category = offer_categories(&catalog, level, &model, &aligned, log)?;
    let (allow, deny) = cmd.filter.lists(model.items(), Some(&catalog), log)?;
    let filter = model.filter(&Filter { allow, deny, ..Filter::default() })?;
    let reference = model.interactions().decay_reference();
    let entries = CategoryEntries::learn(&plog, None, &category, reference, params.entry_window_days);
    let cs = CrossSell::new(&model, &filter, &rules, category, &entries, params);
    let customers = customers_of(&model, cmd.customers.as_deref(), log)?;
    let values = cmd.value.resolve(model.customers(), log)?;
    let customers = match &values {
        Some(v) => v.select(customers),
        None => customers,
    };
    let wallet = if cmd.wallet { Some(wallet_of(&plog, &catalog, level)?) } else { None };
    let mut rows = OfferRows::new(&cs, &model, &catalog, &aligned, cmd.top);
    if let Some(wallet) = &wallet {
        rows = rows.with_wallet(wallet, &plog.customers);
    }
    let header = values.as_ref().map_or_else(|| rows.header(), |v| v.columns.header(&rows.header()));
    let (_, secs) = write_batch(&cmd.out, customers.len(), "cross-sell", log, |file, progress| {
        write_blocks(
            &customers,
            &header,
            file,
            progress,
            || rows.scratch(),
            |s, &c, buf, st| {
                let start = buf.len();
                rows.append(s, c, buf, st);
                if let Some(v) = &values {
                    v.columns.append(c, buf, start);
                }
            },
        )
    })?;
    log.info(format!(
        "wrote cross-sell offers for {} to {} in {secs:.1}s",
        plural(customers.len() as u64, "customer"),
        cmd.out.display()
    ));
    Ok(())
}

/// The category level of the offers: `--level`, else 1, or 0 in a one-level catalogue
/// (`levels` deep), said in the log.
pub(super) fn offer_level(level: Option<usize>, levels: usize, log: Log) -> usize {
    level.unwrap_or_else(|| {
        let chosen = levels.clamp(1, 2) - 1;
        log.info(format!(
            "categories at level {chosen} of the catalogue's {levels} (0 is the top; --level chooses another)"
        ));
        chosen
    })
}

/// Each model item's category at `level` (`aligned` maps items to the catalogue).
fn offer_categories(
    catalog: &Catalog,
    level: usize,
    model: &Model,
    aligned: &Alignment,
    log: Log,
) -> Result<Vec<Option<u32>>> {
    if !aligned.missing.is_empty() {
        let ids: Vec<&str> = aligned.missing.iter().take(10).map(|&i| model.items().id(i)).collect();
        log.info(format!(
            "{} bought items are not in the catalogue (no category: offered only by --scoring mix, unless denied): {}{}",
            aligned.missing.len(),
            ids.join(", "),
            if aligned.missing.len() > 10 { ", ..." } else { "" }
        ));
    }
    let category: Vec<Option<u32>> =
        aligned.per_item.iter().map(|c| c.and_then(|c| catalog.category_of(c, level)).map(|g| g.0)).collect();
    if category.iter().all(Option::is_none) {
        return Err(bad(format!(
            "no bought item has a category at level {level} in the catalogue; try a smaller --level"
        )));
    }
    Ok(category)
}

/// Share of wallet over the purchases' customers and categories at `level` (the offers').
fn wallet_of(plog: &ingest::PurchaseLog, catalog: &Catalog, level: usize) -> Result<Wallet> {
    let per_item = catalog.align(&plog.items).per_item;
    let category: Vec<Option<u32>> =
        per_item.iter().map(|c| c.and_then(|c| catalog.category_of(c, level)).map(|g| g.0)).collect();
    Wallet::new(plog, &category, catalog.category_count(), &|_| true, WalletParams::default())
        .map_err(|e| bad(format!("--wallet: {e}")))
}
