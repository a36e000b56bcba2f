//! `cobuy customers`: per-customer value from a purchase log. Summaries (repeat purchases,
//! recency, age, spend), the repeat-purchase models fitted by maximum likelihood (the best
//! by likelihood unless one is named) and Gamma-Gamma for spend, then per customer:
//! P(alive), expected purchases, churn risk, expected spend, lifetime value, tier and RFM
//! segment, as CSV. The fitted parameters, log-likelihoods and standard errors go to the log;
//! optionally a report (Markdown, JSON, SVG) and the share-of-wallet gaps per category.
//!
//! The customers file is also read back here ([`values`]): the offers carry its tier, churn
//! risk and lifetime value, and batch scoring selects and orders customers by them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;

use std::io::Write as _;

use cobuy::batch::{CustomerColumns, write_blocks, write_csv_field};
use cobuy::ids::{CustomerIdx, IdTable};
use cobuy::ingest;
use cobuy::offers::catalog::{Catalog, CategoryIdx};
use cobuy::output::{AtomicFile, TableFile};
use cobuy::time::{self, DAY};
use cobuy::value::{
    self, CustomerSummary, Distinct, Model, Occasion, Purchases, ScoreOptions, SpendFit, SummaryOptions, Tier, TierBy,
    ValueError, ValueReport, Wallet, WalletParams, fit::Fitted,
};

use super::args::{CatalogArgs, InputArgs, ValueArgs, flag_defaults, ingest_options, set_threads};
use super::paths::Files;
use super::{Log, bad, create_parent, plural, summary_lines};

/// How to score customers (`cobuy customers` flags; the `[customers.settings]` table of a
/// nightly job).
#[derive(Args, Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct ValueSettings {
    /// Repeat-purchase model: auto (bg-nbd, mbg-nbd and pareto-nbd fitted, the best
    /// log-likelihood kept), bg-nbd, mbg-nbd or pareto-nbd.
    #[arg(long, default_value = "auto")]
    model: String,
    /// Time unit of recency, age and the horizon: day, week or month (30.4375 days).
    #[arg(long, default_value = "week")]
    unit: String,
    /// Horizon of expected purchases, churn risk and lifetime value, in time units
    /// (default: a year, 365 days, 52 weeks or 12 months).
    #[arg(long, allow_negative_numbers = true)]
    horizon: Option<f64>,
    /// Yearly discount rate of lifetime value, 0 to 1 (0.1 is 10% a year).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    discount: f64,
    /// Only purchases up to this date (YYYY-MM-DD, or a time): the observation ends there,
    /// for checks against what came after.
    #[arg(long)]
    until: Option<String>,
    /// What ranks the tiers (top 20%, middle, bottom 20%): value (lifetime value) or
    /// revenue (past).
    #[arg(long, default_value = "value")]
    tier_by: String,
}

impl Default for ValueSettings {
    fn default() -> Self {
        flag_defaults()
    }
}

/// The settings resolved.
struct Resolved {
    score: ScoreOptions,
    model: Option<Model>,
    until: Option<i64>,
    unit_name: String,
}

impl ValueSettings {
    /// Checks and resolves the settings, before anything is read.
    fn resolve(&self) -> Result<Resolved> {
        let (unit_seconds, year) = unit(&self.unit)?;
        let score = ScoreOptions {
            horizon: self.horizon.unwrap_or(year),
            unit_seconds,
            discount: self.discount,
            tier_by: match self.tier_by.as_str() {
                "value" => TierBy::Value,
                "revenue" => TierBy::Revenue,
                other => return Err(bad(format!("--tier-by takes value or revenue, got {other:?}"))),
            },
            // Chosen on the purchases once they are read (`value::churn::choose`).
            churn: value::ChurnScore::default(),
        };
        score.check().map_err(|e| bad(e.to_string()))?;
        let model: Option<Model> = match self.model.as_str() {
            "auto" => None,
            m => Some(m.parse().map_err(|e: String| bad(format!("--model: {e}, or auto")))?),
        };
        let until = match &self.until {
            None => None,
            Some(s) => Some(time::parse(s).ok_or_else(|| bad(format!("--until: not a date or time: {s:?}")))?),
        };
        Ok(Resolved { score, model, until, unit_name: self.unit.trim_end_matches('s').to_string() })
    }
}

/// `cobuy customers` flags.
#[derive(Args, Debug)]
pub struct CustomersCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    settings: ValueSettings,
    /// Also write a report to this folder: report.md, report.json, and charts (pareto.svg,
    /// segments.svg, tiers.svg).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write share-of-wallet gaps to this CSV: customers and categories where their
    /// value band mostly buys and they spend under half the band's median (needs amounts,
    /// --item-col and a catalogue).
    #[arg(long)]
    wallet: Option<PathBuf>,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Category level of the wallet (0: the top level; default: 1, or the catalogue's only
    /// level when it has one).
    #[arg(long)]
    level: Option<usize>,
    /// With --until: measure the models on the purchases after it up to this date (the
    /// holdout): purchases predicted against actual, churn ranking against the hiatus
    /// heuristic, lifetime value's ranking of the holdout revenue; written to
    /// --holdout-report, and as a section with charts of --report.
    #[arg(long, requires = "until")]
    holdout_until: Option<String>,
    /// The holdout report (with --holdout-until): JSON when the name ends in .json, else Markdown.
    #[arg(long, requires = "holdout_until")]
    holdout_report: Option<PathBuf>,
    /// Output CSV, one line per customer (`-`: standard output).
    #[arg(long)]
    out: PathBuf,
}

/// The `[customers]` table of a nightly job: the customers file (and a report) from the
/// job's purchases, written before the offers, which then carry each customer's value.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CustomersStep {
    /// The customers CSV.
    pub out: PathBuf,
    /// The report's folder.
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// Settings (defaults as for the flags).
    #[serde(default)]
    pub settings: ValueSettings,
}

impl CustomersStep {
    /// Checks the settings before the job reads anything.
    pub fn check(&self) -> Result<()> {
        self.settings.resolve().map(drop)
    }

    /// Adds the files the step writes.
    pub fn files(&self, files: Files) -> Files {
        report_files(self.report.as_deref(), files.output("customers file", Some(&self.out)))
    }

    /// Makes its paths relative to `base`, a job file's folder.
    pub fn rebase(&mut self, base: &Path) {
        super::rebase(base, &mut self.out);
        if let Some(r) = &mut self.report {
            super::rebase(base, r);
        }
    }

    /// Reads the job's purchases and writes the customers file (and report); returns the
    /// number of customers.
    pub fn run(&self, input: &InputArgs, log: Log) -> Result<u64> {
        customers(input, &self.settings, &self.out, self.report.as_deref(), None, None, log)
    }
}

/// The report's own files under `dir`.
const REPORT_FILES: [&str; 5] = ["report.md", "report.json", "pareto.svg", "segments.svg", "tiers.svg"];

/// Adds the report's files (when there is a report folder).
fn report_files(dir: Option<&Path>, mut files: Files) -> Files {
    if let Some(d) = dir {
        for f in REPORT_FILES {
            files = files.output("report", Some(&d.join(f)));
        }
    }
    files
}

/// Seconds per unit, and the default horizon (a year) in it.
fn unit(name: &str) -> Result<(f64, f64)> {
    let day = DAY as f64;
    match name {
        "day" | "days" => Ok((day, 365.0)),
        "week" | "weeks" => Ok((7.0 * day, 52.0)),
        "month" | "months" => Ok((30.4375 * day, 12.0)),
        _ => Err(bad(format!("--unit takes day, week or month, got {name:?}"))),
    }
}

/// Runs `cobuy customers`.
pub fn run(cmd: &CustomersCmd, threads: usize, log: Log) -> Result<()> {
    let until = cmd.settings.resolve()?.until;
    let holdout = match &cmd.holdout_until {
        Some(s) => {
            let h = time::parse(s).ok_or_else(|| bad(format!("--holdout-until: not a date or time: {s:?}")))?;
            if until.is_some_and(|u| h.div_euclid(DAY) <= u.div_euclid(DAY)) {
                return Err(bad("--holdout-until must be a later day than --until"));
            }
            if cmd.report.is_none() && cmd.holdout_report.is_none() {
                return Err(bad("--holdout-until needs somewhere to write: --report DIR or --holdout-report FILE"));
            }
            Some(Holdout { until: h, report: cmd.holdout_report.as_deref() })
        }
        None => None,
    };
    let opts = ingest_options(&cmd.input, &cmd.out)?;
    if cmd.wallet.is_some() {
        if cmd.catalog.catalog.is_none() {
            return Err(bad(
                "--wallet needs a catalogue to tell categories apart: --catalog FILE --catalog-category-cols A,B",
            ));
        }
        if cmd.input.item_col.is_none() {
            return Err(bad("--wallet needs the item column (--item-col)"));
        }
    }
    let files = Files::new()
        .input("purchases", Some(&cmd.input.purchases))
        .output("customers file", Some(&cmd.out))
        .output("rejects file", opts.rejects.as_deref())
        .output("wallet file", cmd.wallet.as_deref())
        .output("holdout report", cmd.holdout_report.as_deref());
    let files = if cmd.wallet.is_some() { cmd.catalog.files(cmd.input.skip_invalid, &cmd.out, files) } else { files };
    let files = report_files(cmd.report.as_deref(), files);
    let files = match (&cmd.report, &holdout) {
        (Some(d), Some(_)) => {
            value::holdout::HoldoutReport::CHARTS.iter().fold(files, |f, c| f.output("report", Some(&d.join(c))))
        }
        _ => files,
    };
    files.check()?;
    set_threads(threads)?;
    let wallet = match &cmd.wallet {
        Some(path) => {
            let Some((catalog, s)) = cmd.catalog.read(cmd.input.skip_invalid, &cmd.out, log)? else {
                return Err(bad("--wallet needs a catalogue"));
            };
            let level = super::crosssell::offer_level(cmd.level, s.categories_per_level.len(), log);
            Some(WalletOut { path, catalog, level })
        }
        None => None,
    };
    customers(&cmd.input, &cmd.settings, &cmd.out, cmd.report.as_deref(), wallet, holdout, log).map(drop)
}

/// What was read of the purchases file.
enum Read {
    /// Every accepted row, for the wallet and the holdout.
    Log(ingest::PurchaseLog),
    /// The purchase rows alone.
    Purchases(ingest::CustomerLog),
}

/// The end of the holdout (after `--until`) and where its report goes.
struct Holdout<'a> {
    until: i64,
    report: Option<&'a Path>,
}

/// Where the wallet gaps go, and the catalogue and level that make the categories.
struct WalletOut<'a> {
    path: &'a Path,
    catalog: Catalog,
    level: usize,
}

/// Reads the purchases, scores every customer and writes the customers file, and the
/// report and wallet when asked (the files checked by the caller); returns the number of
/// customers written.
fn customers(
    input: &InputArgs,
    settings: &ValueSettings,
    out: &Path,
    report: Option<&Path>,
    wallet: Option<WalletOut>,
    holdout: Option<Holdout>,
    log: Log,
) -> Result<u64> {
    let Resolved { score: mut score_opts, model, until, unit_name } = settings.resolve()?;
    let unit_seconds = score_opts.unit_seconds;
    let mut opts = ingest_options(input, out)?;
    let Some(time_col) = opts.columns.time.clone() else {
        return Err(bad("customer value needs purchase times: give the time column (--time-col)"));
    };
    // No item column: customer value does not need one, so the time column stands in.
    let own_items = input.item_col.is_some();
    if !own_items {
        opts.columns.item = time_col;
    }
    if let Some(r) = &opts.rejects {
        create_parent(r)?;
    }
    let start = Instant::now();
    log.info(format!("reading {}", input.purchases.display()));
    // The wallet needs the items and the holdout the rows after --until: the whole log. Else
    // the purchase rows alone, 24 bytes each.
    let (mut read, summary) = if wallet.is_none() && holdout.is_none() {
        let (l, s) = ingest::read_customer_log(&input.purchases, &opts)?;
        (Read::Purchases(l), s)
    } else {
        let (l, s) = ingest::read_log(&input.purchases, &opts)?;
        (Read::Log(l), s)
    };
    log.info(format!("read {} rows in {:.1}s", summary.rows_read, start.elapsed().as_secs_f64()));
    for line in summary_lines(&summary, opts.rejects.as_deref()) {
        if line.contains("customer-item pairs") || (!own_items && line.contains(" customers (")) {
            continue;
        }
        log.info(line);
    }
    let occasion = if opts.columns.basket.is_some() { Occasion::Basket } else { Occasion::Day };
    let start = Instant::now();
    let summary_opts = SummaryOptions { occasion, unit_seconds, until };
    // A whole log's timed purchase rows, made once for the churn choice and the holdout.
    let log_rows = match &read {
        Read::Log(plog) => value::summary::purchases(plog),
        Read::Purchases(_) => Vec::new(),
    };
    // Chosen while the rows are here; said after the models.
    let churn = match &read {
        Read::Log(plog) => {
            value::churn::choose(plog.customers.len(), &log_rows, plog.baskets.is_some(), &summary_opts, model)
        }
        Read::Purchases(l) => {
            value::churn::choose(l.customers.len(), &l.purchases, l.has_baskets, &summary_opts, model)
        }
    };
    let summarized = match &mut read {
        Read::Log(plog) => value::summarize(plog, &summary_opts),
        Read::Purchases(l) => value::summary::summarize_log(l, &summary_opts),
    };
    let (summaries, st) = summarized.map_err(|e| match e {
        ValueError::NoPurchases if until.is_some() => {
            bad(format!("no purchases up to {}", settings.until.as_deref().unwrap_or("")))
        }
        e => bad(e.to_string()),
    })?;
    if let (Some(w), Read::Log(plog)) = (&wallet, &read) {
        write_wallet(plog, &summary_opts, w, log)?;
    }
    let holdout = match (until, &holdout, &read) {
        (Some(u), Some(h), Read::Log(plog)) => {
            let (actuals, horizon) = value::holdout::actuals(
                plog.customers.len(),
                &log_rows,
                &summaries,
                occasion,
                u,
                h.until,
                unit_seconds,
            );
            Some((actuals, horizon, h.report))
        }
        _ => None,
    };
    score_opts.churn = churn.score;
    // Only the ids are needed from here on: the rows go.
    drop(log_rows);
    let customers = match read {
        Read::Log(plog) => plog.customers,
        Read::Purchases(l) => l.customers,
    };
    log.info(format!(
        "{} summarised in {:.1}s: a purchase is a distinct {} ({} {}), times in {unit_name}s{}",
        plural(st.customers, "customer"),
        start.elapsed().as_secs_f64(),
        if occasion == Occasion::Day { "day" } else { "basket" },
        plural(st.repeat_customers, "customer"),
        if st.repeat_customers == 1 { "buys again" } else { "buy again" },
        until.map_or(String::new(), |u| format!(", observed to {}", time::date(u))),
    ));
    let mut left_out = Vec::new();
    for (n, what) in [
        (st.after_until_rows, "after --until"),
        (st.return_rows, "returns (negative quantity)"),
        (st.customers_without_purchases, "customers with no purchase kept"),
    ] {
        if n > 0 {
            left_out.push(format!("{n} {what}"));
        }
    }
    if !left_out.is_empty() {
        log.info(format!("left out: {}", left_out.join(", ")));
    }
    if !st.has_amounts {
        log.info("no amount or price column (--amount-col, --price-col): spend, revenue, lifetime value and RFM's M are left out");
    } else if st.nonpositive_amount_rows > 0 {
        log.info(format!(
            "{} purchase rows with an amount of 0 or less: counted as purchases, left out of spend",
            st.nonpositive_amount_rows
        ));
    }
    let mut described = Vec::new();
    let (purchases, fitted) = fit_purchases(&summaries, model, &mut described, log)?;
    if purchases.is_some() {
        log.info(format!("churn risk: {}", churn.rule));
    }
    let spend = if st.has_amounts { fit_spend(&summaries, &mut described, log) } else { None };
    let holdout = match holdout {
        Some((actuals, horizon, path)) => {
            let chosen = purchases.as_ref().and_then(|p| fitted.iter().position(|f| f.model == p.model));
            let chosen = chosen.map(|i| (i, value::choice_rule(model)));
            let report = value::holdout::evaluate(
                &summaries,
                &actuals,
                &fitted,
                chosen,
                Some(&churn),
                spend.as_ref(),
                horizon,
                &unit_name,
            );
            write_holdout(&report, path, log)?;
            Some(report)
        }
        None => None,
    };
    let start = Instant::now();
    let (scores, basis) = value::score(&summaries, purchases.as_ref(), spend.as_ref(), st.has_amounts, &score_opts)
        .map_err(|e| bad(e.to_string()))?;
    let no_spend = scores.iter().filter(|s| s.expected.is_some() && s.expected_spend.is_none()).count();
    if spend.is_some() && no_spend > 0 {
        log.info(format!(
            "{} without an expected spend: the spend model's population mean is infinite (q <= 1) and they have no repeat spend of their own",
            plural(no_spend as u64, "customer")
        ));
    }
    log.info(format!(
        "scored in {:.1}s: horizon {} {unit_name}s, discount {}/year; tiers by {}",
        start.elapsed().as_secs_f64(),
        score_opts.horizon,
        score_opts.discount,
        basis.describe()
    ));
    create_parent(out)?;
    let mut f = TableFile::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let table =
        value::CustomerTable { ids: &customers, summaries: &summaries, scores: &scores, amounts: st.has_amounts };
    let header = table.header(occasion, &unit_name);
    let order: Vec<usize> = (0..summaries.len()).collect();
    let stats = write_blocks(
        &order,
        &header,
        &mut f,
        &|_| {},
        || (),
        |_, &i, buf, st| {
            table.row(i, buf);
            st.customers += 1;
            st.rows += 1;
        },
    )
    .with_context(|| format!("cannot write {}", out.display()))?;
    f.commit().with_context(|| format!("cannot write {}", out.display()))?;
    log.info(format!("wrote {} to {}", plural(stats.rows, "customer"), out.display()));
    if let Some(dir) = report {
        let mut rep = ValueReport::new(&summaries, &scores, st.has_amounts, basis, described);
        rep.sections.extend(holdout.map(|h| h.section()));
        write_report(&rep, dir, log)?;
    }
    Ok(stats.rows)
}

/// Writes the holdout report (JSON when the name ends in .json, else Markdown) and logs its
/// figures.
fn write_holdout(report: &value::holdout::HoldoutReport, path: Option<&Path>, log: Log) -> Result<()> {
    for m in &report.models {
        log.info(format!(
            "holdout, {}{}: {:.1} repeat purchases predicted, {:.0} made ({:+.1}%); churn AUC {:.3}, top-decile lift {:.2} by P(no purchase), {:.3} and {:.2} by fewest expected purchases",
            m.model,
            if m.chosen { format!(" (the customers file's model: {})", report.chosen_rule) } else { String::new() },
            m.purchases.predicted_total,
            m.purchases.actual_total,
            100.0 * m.purchases.total_error,
            m.churn_p_no_purchase.auc,
            m.churn_p_no_purchase.top_decile_lift,
            m.churn_expected.auc,
            m.churn_expected.top_decile_lift
        ));
    }
    if let (Some(c), Some(d)) = (&report.churn_choice, &report.churn_default) {
        log.info(format!(
            "holdout, the customers file's churn_risk: churn AUC {:.3}, top-decile lift {:.2} ({})",
            d.auc, d.top_decile_lift, c.rule
        ));
    }
    log.info(format!(
        "holdout, hiatus heuristic: churn AUC {:.3}, top-decile lift {:.2} (at most {:.2})",
        report.churn_hiatus.auc,
        report.churn_hiatus.top_decile_lift,
        report.max_lift()
    ));
    let Some(path) = path else { return Ok(()) };
    let text = if path.extension().is_some_and(|e| e == "json") { report.to_json() } else { report.to_markdown() };
    create_parent(path)?;
    let mut f = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.commit())
        .with_context(|| format!("cannot write {}", path.display()))?;
    log.info(format!("holdout report written to {}", path.display()));
    Ok(())
}

/// Writes report.md, report.json and the charts to `dir`.
fn write_report(rep: &ValueReport, dir: &Path, log: Log) -> Result<()> {
    let mut files = vec![("report.md".to_string(), rep.markdown()), ("report.json".to_string(), rep.json())];
    files.extend(rep.charts());
    for (name, text) in &files {
        let path = dir.join(name);
        create_parent(&path)?;
        let mut f = AtomicFile::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.commit())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    log.info(format!(
        "report: the top 20% of customers hold {:.1}% of the {}; wrote report.md, report.json and {} charts to {}",
        100.0 * rep.top_20_share,
        if rep.measure == value::report::Measure::Revenue { "revenue" } else { "purchases" },
        files.len() - 2,
        dir.display()
    ));
    Ok(())
}

/// Computes the share-of-wallet gaps and writes them, customer by customer (log order), the
/// largest gap first.
fn write_wallet(plog: &ingest::PurchaseLog, summary_opts: &SummaryOptions, w: &WalletOut, log: Log) -> Result<()> {
    let aligned = w.catalog.align(&plog.items);
    let category: Vec<Option<u32>> =
        aligned.per_item.iter().map(|c| c.and_then(|c| w.catalog.category_of(c, w.level)).map(|g| g.0)).collect();
    if category.iter().all(Option::is_none) {
        return Err(bad(format!(
            "--wallet: no bought item has a category at level {} in the catalogue; try a smaller --level",
            w.level
        )));
    }
    let kept = value::summary::kept(summary_opts);
    let wallet = Wallet::new(plog, &category, w.catalog.category_count(), &kept, WalletParams::default())
        .map_err(|e| bad(format!("--wallet: {e}")))?;
    let s = &wallet.stats;
    log.info(format!(
        "wallet: {} purchase rows with an amount above 0 ({} of items without a category at level {}: in the bands' revenue only), {} without one left out; {} value bands by revenue",
        s.rows,
        s.rows_without_category,
        w.level,
        s.rows_without_amount,
        wallet.bands().len()
    ));
    let customers: Vec<CustomerIdx> =
        (0..plog.customers.len() as u32).map(CustomerIdx).filter(|&c| wallet.band(c).is_some()).collect();
    create_parent(w.path)?;
    let mut f = AtomicFile::create(w.path).with_context(|| format!("cannot create {}", w.path.display()))?;
    let bands = wallet.bands();
    let stats = write_blocks(
        &customers,
        "customer,category,band,spend,peer_share,peer_median_spend,gap,reason\n",
        &mut f,
        &|_| {},
        || (Vec::new(), String::new()),
        |(gaps, reason), &c, buf, st| {
            wallet.gaps(c, gaps);
            st.customers += 1;
            st.rows += gaps.len() as u64;
            for g in gaps.iter() {
                let name = w.catalog.category_name(CategoryIdx(g.category));
                let b = bands[usize::from(g.band)];
                reason.clear();
                use std::fmt::Write as _;
                let _ = write!(
                    reason,
                    "{:.0}% of customers in your value band ({} of {}: revenue {:.2} to {:.2}) buy {name}, spending a median {:.2} there; you spent {:.2}: probably bought elsewhere",
                    100.0 * g.peer_share,
                    g.band + 1,
                    bands.len(),
                    b.low,
                    b.high,
                    g.peer_median,
                    g.spend
                );
                write_csv_field(buf, plog.customers.id(c.0));
                buf.push(b',');
                write_csv_field(buf, name);
                let _ = write!(
                    buf,
                    ",{},{:.2},{:.4},{:.2},{:.2},",
                    g.band + 1,
                    g.spend,
                    g.peer_share,
                    g.peer_median,
                    g.gap
                );
                write_csv_field(buf, reason);
                buf.push(b'\n');
            }
        },
    )
    .with_context(|| format!("cannot write {}", w.path.display()))?;
    f.commit().with_context(|| format!("cannot write {}", w.path.display()))?;
    log.info(format!(
        "wrote {} wallet gaps for {} to {}",
        stats.rows,
        plural(customers.len() as u64, "customer"),
        w.path.display()
    ));
    Ok(())
}

/// A model's parameters in one line: `r = 0.2426 (se 0.0126), ...; log-likelihood -9582.43`.
fn describe<const N: usize, M: std::fmt::Display>(f: &Fitted<N, M>, names: [&str; N]) -> String {
    let params: Vec<String> = (0..N)
        .map(|k| match (f.boundary[k], f.std_errors[k]) {
            (Some(-1), _) => format!("{} = 0 (at the boundary)", names[k]),
            (Some(_), _) => format!("{} = infinity (at the boundary)", names[k]),
            (None, Some(se)) => format!("{} = {:.6} (se {:.6})", names[k], f.params[k], se),
            (None, None) => format!("{} = {:.6} (no se: the Hessian is not positive definite)", names[k], f.params[k]),
        })
        .collect();
    format!(
        "{}: {}; log-likelihood {:.4} over {} customers, {} iterations",
        f.model,
        params.join(", "),
        f.log_likelihood,
        f.customers,
        f.iterations
    )
}

/// The repeat-purchase model: the one named, or every one and the best by likelihood.
/// Nobody buying twice, or (auto) no model converging: none, a stated fallback; a named
/// model that fails: an error. Also every model fitted (for the holdout report).
fn fit_purchases(
    summaries: &[CustomerSummary],
    model: Option<Model>,
    described: &mut Vec<String>,
    log: Log,
) -> Result<(Option<Purchases>, Vec<Purchases>)> {
    let mut fitted = Vec::new();
    let mut say = |line: String| {
        log.info(&line);
        described.push(line);
    };
    let d = Distinct::new(summaries.iter().map(|s| [s.x, s.t_x, s.t]).collect());
    let start = Instant::now();
    let result = match model {
        Some(m) => value::fit_model(m, &d).inspect(|f| {
            say(describe(f, m.param_names()));
            fitted.push(f.clone());
        }),
        None => value::fit_best(&d).map(|(best, all)| {
            for (m, r) in &all {
                match r {
                    Ok(f) => {
                        say(describe(f, m.param_names()));
                        fitted.push(f.clone());
                    }
                    Err(e) => say(format!("{m}: not fitted: {e}")),
                }
            }
            say(format!("model: {} (the best log-likelihood)", best.model));
            best
        }),
    };
    match result {
        Ok(f) => {
            log.info(format!(
                "fitted on {} distinct (frequency, recency, age) rows in {:.1}s",
                d.rows.len(),
                start.elapsed().as_secs_f64()
            ));
            Ok((Some(f), fitted))
        }
        Err(e) if model.is_none() && e != ValueError::NoRepeatPurchases => {
            log.info(format!("no repeat-purchase model could be fitted ({e}): P(alive), expected purchases, churn risk and lifetime value are left empty"));
            Ok((None, fitted))
        }
        Err(ValueError::NoRepeatPurchases) => {
            log.info("no customer bought twice: no repeat-purchase model can be fitted; P(alive), expected purchases, churn risk and lifetime value are left empty");
            Ok((None, fitted))
        }
        Err(e) => Err(anyhow::anyhow!(e)),
    }
}

/// Gamma-Gamma on the customers with repeat spend; none (stated) when it cannot be fitted.
fn fit_spend(summaries: &[CustomerSummary], described: &mut Vec<String>, log: Log) -> Option<SpendFit> {
    let pairs: Vec<(f64, f64)> =
        summaries.iter().filter(|s| s.spend_n > 0).map(|s| (f64::from(s.spend_n), s.spend_mean)).collect();
    match value::fit_spend(&pairs) {
        Ok(f) => {
            let line = describe(&f, ["p", "q", "gamma"]);
            log.info(&line);
            described.push(line);
            Some(f)
        }
        Err(e) => {
            log.info(format!("gamma-gamma: not fitted: {e}; expected spend and lifetime value are left empty"));
            None
        }
    }
}

/// The customers file read back for the offers: each model customer's cells (tier, churn
/// risk, lifetime value) and what selects and orders them.
pub struct Values {
    /// The columns every offer row of a customer gets.
    pub columns: CustomerColumns,
    tier: Vec<Option<Tier>>,
    risk: Vec<Option<f64>>,
    clv: Vec<Option<f64>>,
    order: Option<Order>,
    only: BTreeSet<&'static str>,
}

/// `--order`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    ChurnRisk,
    Value,
}

impl ValueArgs {
    /// Checks the flags before anything is read; `fed`: a job step provides the file.
    pub fn check(&self, fed: bool) -> Result<()> {
        self.parsed(fed).map(drop)
    }

    fn parsed(&self, fed: bool) -> Result<(Option<Order>, BTreeSet<&'static str>)> {
        let order = match self.order.as_deref() {
            None => None,
            Some("churn-risk") => Some(Order::ChurnRisk),
            Some("value") => Some(Order::Value),
            Some(o) => return Err(bad(format!("--order takes churn-risk or value, got {o:?}"))),
        };
        let mut only = BTreeSet::new();
        for t in &self.only_tier {
            let tier = [Tier::Top, Tier::Middle, Tier::Bottom].into_iter().find(|x| x.name() == t.trim());
            only.insert(tier.ok_or_else(|| bad(format!("--only-tier takes top, middle or bottom, got {t:?}")))?.name());
        }
        if (order.is_some() || !only.is_empty()) && self.customer_value.is_none() && !fed {
            return Err(bad(
                "--order and --only-tier need the customers file (--customer-value FILE, from cobuy customers)",
            ));
        }
        Ok((order, only))
    }

    /// Reads the customers file, if one was given, for the customers of `ids` (a model's).
    pub fn resolve(&self, ids: &IdTable, log: Log) -> Result<Option<Values>> {
        let (order, only) = self.parsed(false)?;
        let Some(path) = &self.customer_value else { return Ok(None) };
        values(path, ids, order, only, log).map(Some)
    }
}

impl Values {
    /// `customers` with only the chosen tiers, ordered as asked (ties and customers without
    /// a value keep their order; those without one go last).
    pub fn select(&self, mut customers: Vec<CustomerIdx>) -> Vec<CustomerIdx> {
        if !self.only.is_empty() {
            customers.retain(|c| self.tier[c.get()].is_some_and(|t| self.only.contains(t.name())));
        }
        let key = match self.order {
            Some(Order::ChurnRisk) => &self.risk,
            Some(Order::Value) => &self.clv,
            None => return customers,
        };
        customers.sort_by(|a, b| match (key[a.get()], key[b.get()]) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (x, y) => y.is_some().cmp(&x.is_some()),
        });
        customers
    }
}

/// Reads a customers file written by `cobuy customers` (columns by name), checking every
/// value; an error when it names none of `ids` or a customer twice.
fn values(path: &Path, ids: &IdTable, order: Option<Order>, only: BTreeSet<&'static str>, log: Log) -> Result<Values> {
    let name = path.display();
    let mut rdr = csv::ReaderBuilder::new().from_path(path).map_err(|e| bad(format!("{name}: cannot read: {e}")))?;
    let header = rdr.headers().map_err(|e| bad(format!("{name}: {e}")))?.clone();
    let col = |c: &str| header.iter().position(|h| h == c);
    let need = |c: &str| {
        col(c).ok_or_else(|| bad(format!("{name}: not a customers file written by cobuy customers: no {c} column")))
    };
    // The churn risk; files written before it had a column of its own: P(no purchase).
    let (cc, tc) = (need("customer")?, need("tier")?);
    let rc = col("churn_risk").map_or_else(|| need("p_no_purchase"), Ok)?;
    let vc = col("lifetime_value");
    if order == Some(Order::Value) && vc.is_none() {
        return Err(bad(format!("{name}: --order value needs a lifetime_value column (amounts in the purchases)")));
    }
    let n = ids.len();
    let (mut tier, mut risk, mut clv) = (vec![None; n], vec![None; n], vec![None; n]);
    let mut seen = vec![false; n];
    let (mut rows, mut unknown) = (0u64, 0u64);
    for (k, rec) in rdr.records().enumerate() {
        let line = k + 2;
        let rec = rec.map_err(|e| bad(format!("{name}: line {line}: {e}")))?;
        let field = |c: usize| rec.get(c).unwrap_or("");
        rows += 1;
        let t = [Tier::Top, Tier::Middle, Tier::Bottom]
            .into_iter()
            .find(|t| t.name() == field(tc))
            .ok_or_else(|| bad(format!("{name}: line {line}: tier {:?} is not top, middle or bottom", field(tc))))?;
        let number = |c: usize, what: &str, max: f64| -> Result<Option<f64>> {
            match field(c) {
                "" => Ok(None),
                s => s.parse::<f64>().ok().filter(|v| (0.0..=max).contains(v)).map(Some).ok_or_else(|| {
                    let range = if max == 1.0 { "from 0 to 1" } else { "of 0 or more" };
                    bad(format!("{name}: line {line}: {what} {s:?} is not a number {range}"))
                }),
            }
        };
        let r = number(rc, &header[rc], 1.0)?;
        let v = vc.map(|c| number(c, "lifetime_value", f64::MAX)).transpose()?.flatten();
        let Some(i) = ids.index_of(field(cc)) else {
            unknown += 1;
            continue;
        };
        if std::mem::replace(&mut seen[i as usize], true) {
            return Err(bad(format!("{name}: line {line}: customer {:?} is listed twice", field(cc))));
        }
        (tier[i as usize], risk[i as usize], clv[i as usize]) = (Some(t), r, v);
    }
    let matched = rows - unknown;
    if matched == 0 {
        return Err(bad(format!(
            "{name}: none of its {rows} customers is among the {} customers scored: a customers file of other purchases?",
            n
        )));
    }
    let missing = n as u64 - matched;
    log.info(format!(
        "customer value from {name}: {matched} of {n} customers{}{}",
        if missing > 0 { format!("; {missing} not in it get empty value columns") } else { String::new() },
        if unknown > 0 { format!("; {unknown} of its customers are not scored here") } else { String::new() },
    ));
    let mut header = String::from(",tier,churn_risk");
    if vc.is_some() {
        header.push_str(",lifetime_value");
    }
    let cells = (0..n)
        .map(|i| {
            let mut cell = Vec::new();
            let _ = write!(cell, ",{}", tier[i].map_or("", Tier::name));
            let _ = write!(cell, ",{}", risk[i].map_or(String::new(), |r| format!("{r:.6}")));
            if vc.is_some() {
                let _ = write!(cell, ",{}", clv[i].map_or(String::new(), |v| format!("{v:.2}")));
            }
            cell
        })
        .collect();
    Ok(Values { columns: CustomerColumns { header, cells }, tier, risk, clv, order, only })
}
