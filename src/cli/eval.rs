//! `cobuy eval`: flags or an eval job file in, report.md, report.json and charts out.
//!
//! An evaluation runs in steps: everything the user gave is checked first ([`plan`]), then
//! the log is read and split ([`read_and_split`], with the upgrades target's catalogue and
//! upgrade model when asked for), every configuration and outside list is measured
//! ([`measure`]), and the report is written ([`write_report`]). The upgrades target measures
//! `cobuy up-sell`, so it reads and learns through that command's steps (`cli::upsell`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use cobuy::eval::metrics::Metric;
use cobuy::eval::report::{self, EvalReport, RunReport, Setting};
use cobuy::eval::select::{self, AutoParams};
use cobuy::eval::split::{Cutoff, SplitMethod};
use cobuy::eval::{self as ev, Prepared, Target};
use cobuy::ingest::{self, IngestSummary, PurchaseLog};
use cobuy::model::{FitParams, Selection};
use cobuy::offers::catalog::CategoryIdx;
use cobuy::offers::crosssell::CategoryEntries;
use cobuy::offers::rules::{Baskets, RuleParams};
use cobuy::offers::upsell::{UpgradeModel, UpsellParams};
use cobuy::output::AtomicFile;
use cobuy::time::{self, DAY};
use cobuy::value::{self, Occasion, Section, SummaryOptions};

use super::args::{
    CatalogArgs, CrossSellEvalArgs, EvalArgs, FilterArgs, FitArgs, FitPlan, InputArgs, NamedFit, SimilarityArgs,
    SplitArgs, UpsellArgs, check_catalog, fit_plan, ingest_options, set_job_threads, set_threads, split_method,
    targets,
};
use super::paths::Files;
use super::upsell::{check_times, item_facts, log_learned, read_catalog};
use super::{Log, bad, create_parent, read_job_text, rebase, summary_lines};

/// `cobuy eval` flags, for one configuration; several go in an eval job file, run by
/// `cobuy run`.
#[derive(Args, Debug)]
pub struct EvalCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    split: SplitArgs,
    #[command(flatten)]
    out: EvalArgs,
    /// A name for the configuration given by the fit flags (default: the algorithm).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    fit: FitArgs,
    #[command(flatten)]
    similarity: SimilarityArgs,
    #[command(flatten)]
    catalog: CatalogArgs,
    #[command(flatten)]
    upsell: UpsellArgs,
    #[command(flatten)]
    cross_sell: CrossSellEvalArgs,
}

/// An eval job file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct EvalJob {
    input: InputArgs,
    split: SplitArgs,
    eval: EvalArgs,
    #[serde(rename = "algorithm", default)]
    algorithms: Vec<NamedFit>,
    #[serde(default)]
    threads: Option<usize>,
    /// The catalogue (`[catalog]`: the `--catalog*` flags' keys) and the up-sell settings
    /// (`[upsell]`), for the upgrades target.
    #[serde(default)]
    catalog: Option<CatalogArgs>,
    #[serde(default)]
    upsell: Option<UpsellArgs>,
    /// The new-categories target's settings (`[cross_sell]`).
    #[serde(default)]
    cross_sell: Option<CrossSellEvalArgs>,
}

/// An eval job's `auto` chooses for each target it measures: a fixed `auto_target` would
/// be ignored, so it is refused.
fn check_no_auto_target(fit: &super::args::FitArgs) -> Result<()> {
    if fit.auto_target != super::args::FitArgs::default().auto_target {
        return Err(bad("auto_target: in an eval job, auto chooses for each target measured; remove the key"));
    }
    Ok(())
}

/// Runs `cobuy eval`.
pub fn run(cmd: &EvalCmd, threads: usize, log: Log) -> Result<()> {
    let job = EvalJob {
        input: cmd.input.clone(),
        split: cmd.split.clone(),
        eval: cmd.out.clone(),
        algorithms: vec![NamedFit { name: cmd.name.clone(), fit: cmd.fit.clone(), similarity: cmd.similarity.clone() }],
        threads: None,
        catalog: Some(cmd.catalog.clone()),
        upsell: Some(cmd.upsell.clone()),
        cross_sell: Some(cmd.cross_sell.clone()),
    };
    set_threads(threads)?;
    evaluate(&job, log)
}

/// Runs an eval job file (`cobuy run` sends job files with a `[split]` or `[eval]` table
/// here).
pub fn run_job(path: &Path, threads: usize, log: Log) -> Result<()> {
    let job = read_job(path)?;
    set_job_threads(threads, job.threads)?;
    log.info(format!("running {}", path.display()));
    evaluate(&job, log)
}

fn read_job(path: &Path) -> Result<EvalJob> {
    let text = read_job_text(path)?;
    let mut job: EvalJob = toml::from_str(&text).map_err(|e| super::job_error(path, &e))?;
    let base = path.parent().unwrap_or(Path::new(""));
    let rebase = |p: &mut PathBuf| rebase(base, p);
    rebase(&mut job.input.purchases);
    job.input.rejects.as_mut().map(rebase);
    job.eval.out_dir.as_mut().map(rebase);
    job.eval.write_split.as_mut().map(rebase);
    job.eval.deny.as_mut().map(rebase);
    if let Some(c) = &mut job.catalog {
        c.catalog.as_mut().map(rebase);
    }
    for m in &mut job.eval.measure {
        if let Some((head, file)) = m.split_once('=') {
            let mut p = PathBuf::from(file);
            rebase(&mut p);
            *m = format!("{head}={}", p.display());
        }
    }
    let value_only = !job.eval.targets.is_empty() && job.eval.targets.iter().all(|t| t.trim() == CUSTOMER_VALUE);
    if job.algorithms.is_empty() && job.eval.measure.is_empty() && !value_only {
        return Err(bad(format!("{}: no [[algorithm]] table and nothing to --measure", path.display())));
    }
    Ok(job)
}

fn metric(name: &str) -> Result<Metric> {
    Metric::parse(name.trim()).ok_or_else(|| {
        let all: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        bad(format!("--charts: unknown metric {name:?}; accepted: {}", all.join(", ")))
    })
}

/// An external list to measure: label, target, file.
struct External {
    name: String,
    target: Target,
    file: PathBuf,
}

fn external(spec: &str) -> Result<External> {
    let err = || bad(format!("--measure takes NAME:TARGET=FILE (TARGET new-items or all-items), got {spec:?}"));
    // Split at the target's `:` and the `=` after it, so that names may hold `=` (K=100).
    let (name, rest) = spec.rsplit_once(':').ok_or_else(err)?;
    let (target, file) = rest.split_once('=').ok_or_else(err)?;
    if name.is_empty() || file.is_empty() {
        return Err(err());
    }
    let target = targets(&[target.into()])
        .map_err(|_| bad(format!("--measure {spec:?}: unknown target {target:?}; accepted: new-items, all-items")))?[0];
    Ok(External { name: name.into(), target, file: file.into() })
}

/// What an eval job asks for, checked before the (possibly long) read.
struct Plan {
    method: SplitMethod,
    targets: Vec<Target>,
    charts: Vec<Metric>,
    externals: Vec<External>,
    /// Each configuration's name and fit parameters.
    configs: Vec<(String, FitPlan)>,
    out_dir: PathBuf,
    /// For the upgrades target: the catalogue, the up-sell settings and their parameters.
    upsell: Option<(CatalogArgs, UpsellArgs, UpsellParams)>,
    /// For the new-categories target: the catalogue and the category level.
    cross_sell: Option<(CatalogArgs, Option<usize>)>,
    /// The customer-value target (`targets` holds the ranking targets only).
    value: bool,
}

/// The data an evaluation measures on.
struct Data {
    summary: IngestSummary,
    /// The log, for `auto` configurations (which split their training rows again).
    plog: PurchaseLog,
    /// The deny list and what it took out of the log.
    removed: Option<(PathBuf, ev::Removed)>,
    prepared: Prepared,
    /// The upgrade model learned from the training rows, for the upgrades target.
    upgrades: Option<UpgradeModel>,
    /// For the new-categories target: each item's category and the training baskets' rules.
    novelty: Option<Novelty>,
}

/// What the new-categories target measures with.
struct Novelty {
    /// Per item of the log, its category at the chosen level.
    category: Vec<Option<u32>>,
    rules: Vec<cobuy::offers::rules::Rule>,
    /// The customers entering each category lately, in the training rows.
    entries: CategoryEntries,
}

fn evaluate(job: &EvalJob, log: Log) -> Result<()> {
    let plan = plan(job)?;
    check_outputs(job, &plan)?;
    let start = Instant::now();
    let title = "cobuy eval".to_string();
    if plan.targets.is_empty() {
        // Customer value alone: no recommender is fitted, nothing is split into lists.
        let (plog, summary, removed) = read_purchases(job, &plan, start, log)?;
        let (section, line) = customer_value(job, &plan, &plog, log)?;
        let mut setup = read_setup(job, &summary, removed.as_ref());
        setup.push(("split".into(), describe_split(&plan.method, &plog, false).into()));
        setup.push(line);
        return write_report(&plan, EvalReport { title, setup, runs: Vec::new(), sections: vec![section] }, start, log);
    }
    let data = read_and_split(job, &plan, start, log)?;
    let runs = measure(job, &plan, &data, log)?;
    let mut setup = setup(job, &plan, &data);
    let mut sections = Vec::new();
    if plan.value {
        let (section, line) = customer_value(job, &plan, &data.plog, log)?;
        setup.push(line);
        sections.push(section);
    }
    write_report(&plan, EvalReport { title, setup, runs, sections }, start, log)
}

/// The target that measures `cobuy customers`' models rather than ranked lists.
const CUSTOMER_VALUE: &str = "customer-value";

/// Checks everything the user gave before the (possibly long) read.
fn plan(job: &EvalJob) -> Result<Plan> {
    let method = split_method(&job.split)?;
    ev::check_ks(&job.eval.k).map_err(|e| bad(e.to_string()))?;
    let value = job.eval.targets.iter().any(|t| t.trim() == CUSTOMER_VALUE);
    let ranked: Vec<String> = job.eval.targets.iter().filter(|t| t.trim() != CUSTOMER_VALUE).cloned().collect();
    let targets = if value && ranked.is_empty() { Vec::new() } else { targets(&ranked)? };
    if value {
        if !matches!(method, SplitMethod::Time { .. }) {
            return Err(bad(
                "the customer-value target needs a time split (--split time, with --cutoff or --test-share)",
            ));
        }
        if job.split.validation {
            return Err(bad("the customer-value target measures on the test part: remove --validation"));
        }
        if job.input.time_col.is_none() {
            return Err(bad("the customer-value target needs purchase times (--time-col)"));
        }
    }
    let charts = job.eval.charts.iter().map(|c| metric(c)).collect::<Result<Vec<_>>>()?;
    let externals = job.eval.measure.iter().map(|m| external(m)).collect::<Result<Vec<_>>>()?;
    let configs = job
        .algorithms
        .iter()
        .map(|a| {
            let plan = check_no_auto_target(&a.fit).and_then(|()| fit_plan(&a.fit, &a.similarity));
            let plan = plan.map_err(|e| match &a.name {
                Some(n) => bad(format!("[[algorithm]] {n:?}: {e}")),
                None => e,
            })?;
            let name = a.name.clone().unwrap_or_else(|| plan.name().to_string());
            Ok((name, plan))
        })
        .collect::<Result<Vec<_>>>()?;
    // A configuration is measured on every target; an outside list on its own one.
    let mut names: Vec<(&str, Option<Target>)> = configs
        .iter()
        .map(|c| (c.0.as_str(), None))
        .chain(externals.iter().map(|e| (&*e.name, Some(e.target))))
        .collect();
    names.sort_unstable_by_key(|n| (n.0, n.1.map(Target::name)));
    if let Some(w) = names.windows(2).find(|w| w[0].0 == w[1].0 && (w[0].1.is_none() || w[0].1 == w[1].1)) {
        return Err(bad(format!("two configurations are named {:?}; give each its own name", w[0].0)));
    }
    let out_dir = job.eval.out_dir.clone().ok_or_else(|| bad("give --out-dir (or out_dir in [eval])"))?;
    if configs.iter().all(|(_, p)| p.only_bought()) && externals.is_empty() && targets == [Target::NewItems] {
        return Err(bad("buy-again recommends only bought items: measure it on --targets all-items"));
    }
    let upsell = if targets.contains(&Target::Upgrades) {
        let catalog = job.catalog.clone().unwrap_or_default();
        let args = job.upsell.clone().unwrap_or_default();
        check_catalog(&catalog, &args, "the upgrades target")?;
        let params = args.params()?;
        Some((catalog, args, params))
    } else {
        None
    };
    let cross_sell = if targets.contains(&Target::NewCategories) {
        let catalog = job.catalog.clone().unwrap_or_default();
        if catalog.catalog.is_none() || catalog.catalog_category_cols.is_empty() {
            return Err(bad(
                "the new-categories target needs a catalogue with categories: --catalog FILE --catalog-item-col ID \
                 --catalog-category-cols A,B",
            ));
        }
        Some((catalog, job.cross_sell.as_ref().and_then(|c| c.level)))
    } else {
        None
    };
    Ok(Plan { method, targets, charts, externals, configs, out_dir, upsell, cross_sell, value })
}

/// Creates the output folders (as `fit` creates its model's folder) and checks that every
/// output file can be written, before the (possibly long) read: the report, the charts
/// and, if asked, the split.
fn check_outputs(job: &EvalJob, plan: &Plan) -> Result<()> {
    let mut reports = vec!["report.md".to_string(), "report.json".into()];
    reports.extend(plan.charts.iter().map(|m| format!("{}.svg", m.name())));
    if plan.value {
        reports.extend(value::holdout::HoldoutReport::CHARTS.iter().map(|c| c.to_string()));
    }
    // No output may be an input (the purchases, the catalogue, a measured list).
    let split_dir = job.eval.write_split.as_deref();
    let mut files = Files::new()
        .input("purchases", Some(&job.input.purchases))
        .input("catalogue", job.catalog.as_ref().and_then(|c| c.catalog.as_deref()))
        .input("deny list", job.eval.deny.as_deref())
        .output("rejects", job.input.rejects.as_deref());
    for x in &plan.externals {
        files = files.input("measured list", Some(&x.file));
    }
    for f in &reports {
        files = files.output("report", Some(&plan.out_dir.join(f)));
    }
    for f in ["train.csv", "test.csv"] {
        files = files.output("split", split_dir.map(|d| d.join(f)).as_deref());
    }
    files.check()?;
    check_output_dir(&plan.out_dir, &reports)?;
    if let Some(dir) = &job.eval.write_split {
        check_output_dir(dir, &["train.csv".into(), "test.csv".into()])?;
    }
    Ok(())
}

/// Creates `dir` if it is missing and checks that each of `files` can be written in it.
fn check_output_dir(dir: &Path, files: &[String]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create the folder {}", dir.display()))?;
    for f in files {
        check_output_file(&dir.join(f))?;
    }
    Ok(())
}

/// Checks, before anything is read, that `path` can be written: its folder (created if
/// missing, as every command does) takes a new file, and nothing but a file is there.
pub(super) fn check_output_file(path: &Path) -> Result<()> {
    create_parent(path)?;
    if path.is_dir() {
        return Err(bad(format!("{}: is a folder; give a file name to write", path.display())));
    }
    // The temporary file of the real write, removed when dropped.
    AtomicFile::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads the log, splits it (and, for the upgrades target, reads the catalogue and learns
/// the upgrades) and writes the split if asked.
fn read_and_split(job: &EvalJob, plan: &Plan, start: Instant, log: Log) -> Result<Data> {
    let (plog, summary, removed) = read_purchases(job, plan, start, log)?;
    let mut prepared = ev::prepare(&plog, &plan.method, job.split.validation).map_err(|e| bad(e.to_string()))?;
    let upgrades = match &plan.upsell {
        Some((catalog, args, params)) => {
            Some(upgrade_target(&plog, &mut prepared, catalog, args, params, &plan.out_dir, log)?)
        }
        None => None,
    };
    let novelty = match &plan.cross_sell {
        Some((catalog, level)) => Some(novelty_target(&plog, &mut prepared, catalog, *level, &plan.out_dir, log)?),
        None => None,
    };
    let s = &prepared.summary;
    log.info(format!(
        "{} split{}: {} training rows, {} test rows{}; {} test customers, {} of them cold (no training purchases, left out); measured: {} on all items ({} pairs), {} on new items ({} pairs); {} held-out pairs name items nobody bought in training",
        s.method,
        if s.validation { " (validation)" } else { "" },
        s.train_rows,
        s.test_rows,
        if s.validation { format!(", {} test-part rows unused", s.unused_rows) } else { String::new() },
        s.test_customers,
        s.cold_customers,
        s.measured_all,
        s.test_pairs,
        s.measured_new,
        s.new_test_pairs,
        s.unknown_item_pairs
    ));
    if let Some(dir) = &job.eval.write_split {
        write_split(&plog, &plan.method, job.split.validation, dir, log)?;
    }
    Ok(Data { summary, plog, removed, prepared, upgrades, novelty })
}

/// The log read, its summary, and what a deny list took out.
type Purchases = (PurchaseLog, IngestSummary, Option<(PathBuf, ev::Removed)>);

/// Reads the purchases, and takes the deny list's items out. Measuring customer value
/// alone, no item column is needed: the time column stands in, as for `cobuy customers`.
fn read_purchases(job: &EvalJob, plan: &Plan, start: Instant, log: Log) -> Result<Purchases> {
    let mut opts = ingest_options(&job.input, &plan.out_dir.join("model"))?;
    let stand_in = plan.targets.is_empty() && job.input.item_col.is_none();
    if stand_in {
        if let Some(t) = opts.columns.time.clone() {
            opts.columns.item = t;
        }
    }
    if let Some(r) = &opts.rejects {
        create_parent(r)?;
    }
    log.info(format!("reading {}", job.input.purchases.display()));
    let (plog, summary) = ingest::read_log(&job.input.purchases, &opts)?;
    log.info(format!("read {} rows in {:.1}s", summary.rows_read, start.elapsed().as_secs_f64()));
    for line in
        summary_lines(&summary, opts.rejects.as_deref()).into_iter().filter(|l| !l.contains("customer-item pairs"))
    {
        // Times standing in for items are not items.
        if !(stand_in && line.contains(" customers (")) {
            log.info(line);
        }
    }
    let (plog, removed) = match job.eval.deny.as_deref() {
        None => (plog, None),
        Some(path) => {
            let (filtered, removed) = without_denied(path, &plog, log)?;
            (filtered, Some((path.to_path_buf(), removed)))
        }
    };
    Ok((plog, summary, removed))
}

/// The customer-value target: `cobuy customers`' models measured on the time split, as its
/// `--until --holdout-until` check (`value::holdout::measure`): calibration to the end of
/// the day before the test part's first day, holdout from there to the log's last purchase;
/// weeks, occasions as `cobuy customers` counts them, the model by its one rule and the
/// churn score by its (`value::churn`, on the calibration alone). Also the setup's line.
fn customer_value(job: &EvalJob, plan: &Plan, plog: &PurchaseLog, log: Log) -> Result<(Section, (String, Setting))> {
    let cutoff = plan
        .method
        .test_from(plog)
        .ok_or_else(|| bad("the customer-value target: the time split's cutoff is outside the purchases' times"))?;
    let cal_end = cutoff.div_euclid(DAY) * DAY - 1;
    let hold_end = plog.rows.iter().filter(|r| r.quantity > 0.0).filter_map(|r| r.time).max().unwrap_or(cal_end);
    if hold_end.div_euclid(DAY) <= cal_end.div_euclid(DAY) {
        return Err(bad("the customer-value target: no purchase after the cutoff's day to measure on"));
    }
    let occasion = if job.input.basket_col.is_some() { Occasion::Basket } else { Occasion::Day };
    let opts = SummaryOptions { occasion, unit_seconds: 7.0 * DAY as f64, until: Some(cal_end) };
    let t0 = Instant::now();
    let report = value::holdout::measure(plog, &opts, hold_end, None, "week")
        .map_err(|e| bad(format!("the customer-value target: {e}")))?;
    let chosen = report.chosen().ok_or_else(|| bad("the customer-value target: no model could be fitted"))?;
    let default = report.churn_default.unwrap_or(chosen.churn_p_no_purchase);
    log.info(format!(
        "customer value: {} ({}) predicts {:.1} holdout repeat purchases against {:.0} ({:+.1}%); churn risk {}: AUC {:.3}, top-decile lift {:.2} (P(no purchase) {:.3}, {:.2}; fewest expected purchases {:.3}, {:.2}; hiatus {:.3}, {:.2}) in {:.1}s",
        chosen.model,
        report.chosen_rule,
        chosen.purchases.predicted_total,
        chosen.purchases.actual_total,
        100.0 * chosen.purchases.total_error,
        report.churn_choice.as_ref().map_or("", |c| c.rule.as_str()),
        default.auc,
        default.top_decile_lift,
        chosen.churn_p_no_purchase.auc,
        chosen.churn_p_no_purchase.top_decile_lift,
        chosen.churn_expected.auc,
        chosen.churn_expected.top_decile_lift,
        report.churn_hiatus.auc,
        report.churn_hiatus.top_decile_lift,
        t0.elapsed().as_secs_f64()
    ));
    let line = format!(
        "calibration to {}, holdout to {} ({} weeks); a purchase is a distinct {}; model: {}",
        time::date(cal_end),
        time::date(hold_end),
        report.horizon,
        if occasion == Occasion::Day { "day" } else { "basket" },
        report.chosen_rule
    );
    Ok((report.section(), ("customer value".into(), line.into())))
}

/// The log without the rows of the items on the deny list `path` (read as `recommend
/// --deny` reads it), with what went, said in the log. The filter runs before the split,
/// so a denied item is neither trained on, recommended nor found.
pub(super) fn without_denied(path: &Path, plog: &PurchaseLog, log: Log) -> Result<(PurchaseLog, ev::Removed)> {
    let list = FilterArgs { deny: Some(path.into()), ..FilterArgs::default() };
    let (_, deny) = list.lists_in((&plog.items, "the purchases"), None, log)?;
    let mut denied = vec![false; plog.items.len()];
    for j in deny {
        denied[j.get()] = true;
    }
    let (plog, removed) = ev::without_items(plog, &denied);
    log.info(format!("{}: {}", path.display(), describe_removed(&removed)));
    if plog.rows.is_empty() {
        return Err(bad(format!("{}: the deny list leaves no purchase to measure on", path.display())));
    }
    Ok((plog, removed))
}

/// What a deny list took out, in words.
pub(super) fn describe_removed(r: &ev::Removed) -> String {
    format!(
        "{} rows of {} denied items removed before the split ({} customers bought nothing else)",
        r.rows, r.items, r.customers
    )
}

/// Measures the up-sell baselines, every configuration (with up-sell on top of it, for the
/// upgrades target) and every outside list.
fn measure(job: &EvalJob, plan: &Plan, data: &Data, log: Log) -> Result<Vec<RunReport>> {
    let (prepared, ks) = (&data.prepared, &job.eval.k);
    let mut runs: Vec<RunReport> = Vec::new();
    if let Some(m) = &data.upgrades {
        runs.extend(upsell_baselines(prepared, m, ks)?);
    }
    if let Some(n) = &data.novelty {
        runs.push(novelty_popularity(prepared, n, ks)?);
    }
    for (name, fit) in &plan.configs {
        // `auto` chooses on the training rows alone, for each target its own model (new
        // items for upgrades).
        // Each group: the parameters, auto's record, the seconds it took to choose, the targets.
        let groups: Vec<(FitParams, Option<Selection>, f64, Vec<Target>)> = match fit {
            FitPlan::Fixed(p) => vec![(*p, None, 0.0, plan.targets.clone())],
            FitPlan::Auto(auto) => plan
                .targets
                .iter()
                .map(|&t| {
                    let target = if t == Target::AllItems { t } else { Target::NewItems };
                    let auto = AutoParams { target, ..auto.clone() };
                    let t0 = Instant::now();
                    let (params, sel) = select::choose(&data.plog, Some(prepared.train_rows()), &auto, &mut |_| {})
                        .map_err(|e| bad(e.to_string()))?;
                    log.info(format!("{name} on {}: {}; {}", t.name(), sel.reason, sel.split));
                    Ok((params, Some(sel), t0.elapsed().as_secs_f64(), vec![t]))
                })
                .collect::<Result<_>>()?,
        };
        let mut got = Vec::new();
        let mut fitted = None;
        for (params, selection, choosing, targets) in groups {
            let t0 = Instant::now();
            let model = prepared.fit(&params).map_err(|e| bad(e.to_string()))?;
            // auto's fit time is what `cobuy fit` would take: choosing, then fitting.
            let fit_seconds = choosing + t0.elapsed().as_secs_f64();
            let mut runs =
                prepared.evaluate_model(name, &model, fit_seconds, ks, &targets).map_err(|e| bad(e.to_string()))?;
            for r in &mut runs {
                r.selection.clone_from(&selection);
            }
            got.extend(runs);
            if targets.iter().any(|&t| t != Target::AllItems) || fitted.is_none() {
                fitted = Some((model, selection));
            }
        }
        let (model, selection) = fitted.expect("at least one target");
        if let Some(m) = &data.upgrades {
            // The run records the model up-sell takes its affinity from.
            let mut run = upsell_run(prepared, m, &model, &format!("up-sell + {name}"), ks)?;
            run.params = Some(*model.params());
            run.selection.clone_from(&selection);
            got.push(run);
        }
        if let Some(n) = &data.novelty {
            for mut run in novelty_runs(prepared, n, &model, name, ks)? {
                run.params = Some(*model.params());
                run.selection.clone_from(&selection);
                got.push(run);
            }
        }
        for r in &got {
            let k = ks.iter().copied().find(|&k| k >= 10).unwrap_or(ks[0]);
            log.info(format!(
                "{name} on {}: NDCG@{k} {:.4}, recall@{k} {:.4} (fit {:.1}s, score {:.1}s)",
                r.target,
                r.table.get(Metric::Ndcg, k).unwrap_or(0.0),
                r.table.get(Metric::Recall, k).unwrap_or(0.0),
                r.fit_seconds,
                r.score_seconds
            ));
        }
        runs.extend(got);
    }
    for e in &plan.externals {
        let (lists, stats) = read_lists(&e.file, prepared)?;
        log.info(format!(
            "{}: {} rows for {} customers read from {}; {} rows name a customer or item the log does not have",
            e.name,
            stats.0,
            stats.1,
            e.file.display(),
            stats.2
        ));
        let empty: Vec<u32> = Vec::new();
        let table = prepared
            .measure_lists(e.target, ks, |c| lists.get(&c.0).unwrap_or(&empty))
            .map_err(|e| bad(e.to_string()))?;
        runs.push(RunReport {
            algorithm: e.name.clone(),
            target: e.target.name().into(),
            params: None,
            selection: None,
            baseline: false,
            fit_seconds: 0.0,
            score_seconds: 0.0,
            table,
        });
    }
    Ok(runs)
}

/// The setup table's first lines: the purchases, their rows and the deny list.
fn read_setup(
    job: &EvalJob,
    summary: &IngestSummary,
    removed: Option<&(PathBuf, ev::Removed)>,
) -> Vec<(String, Setting)> {
    let mut setup: Vec<(String, Setting)> = vec![
        ("purchases".to_string(), job.input.purchases.display().to_string().into()),
        ("rows".into(), format!("{} read, {}", summary.rows_read, ingest::summary_breakdown(summary)).into()),
    ];
    if let Some((path, r)) = removed {
        setup.push(("deny list".into(), format!("{}: {}", path.display(), describe_removed(r)).into()));
    }
    setup
}

/// The report's setup table: the data, the split and what was measured.
fn setup(job: &EvalJob, plan: &Plan, data: &Data) -> Vec<(String, Setting)> {
    let s = &data.prepared.summary;
    let mut setup = read_setup(job, &data.summary, data.removed.as_ref());
    setup.extend([
        ("split".into(), describe_split(&plan.method, &data.plog, job.split.validation).into()),
        ("training rows".into(), s.train_rows.into()),
        ("test rows".into(), s.test_rows.into()),
        ("test-part rows left unused".into(), s.unused_rows.into()),
        ("test customers".into(), format!("{} ({} cold, left out)", s.test_customers, s.cold_customers).into()),
        (
            "measured customers".into(),
            format!(
                "all items {}, new items {}{}{}",
                s.measured_all,
                s.measured_new,
                if data.upgrades.is_some() { format!(", upgrades {}", s.measured_upgrades) } else { String::new() },
                if data.novelty.is_some() {
                    format!(", new categories {}", s.measured_new_categories)
                } else {
                    String::new()
                }
            )
            .into(),
        ),
        (
            "held-out pairs".into(),
            format!(
                "{} ({} new; {} of items nobody bought in training)",
                s.test_pairs, s.new_test_pairs, s.unknown_item_pairs
            )
            .into(),
        ),
    ]);
    if let Some(m) = &data.upgrades {
        setup.push((
            "upgrades".into(),
            format!(
                "{} held-out pairs: items not bought in training, in a category the customer bought in training, dearer than their latest purchase there; {} upgrade paths learned from the training rows",
                s.upgrade_pairs, m.summary.paths
            )
            .into(),
        ));
    }
    if data.novelty.is_some() {
        setup.push((
            "new categories".into(),
            format!(
                "{} held-out pairs: items not bought in training, in a category the customer bought nothing of in training (items without a category never count)",
                s.new_category_pairs
            )
            .into(),
        ));
    }
    setup.push(("ranking".into(), "over every item of the log; no sampled negatives".into()));
    setup
}

/// Writes report.md, report.json and the charts, and prints the Markdown report unless
/// quiet.
fn write_report(plan: &Plan, rep: EvalReport, start: Instant, log: Log) -> Result<()> {
    let out_dir = &plan.out_dir;
    write_text(&out_dir.join("report.md"), &report::markdown(&rep))?;
    write_text(&out_dir.join("report.json"), &report::json(&rep))?;
    // Ranking charts only when something was ranked.
    let mut charts = rep.sections.iter().map(|s| s.charts.len()).sum::<usize>();
    if !rep.runs.is_empty() {
        charts += plan.charts.len();
        for m in &plan.charts {
            write_text(&out_dir.join(format!("{}.svg", m.name())), &report::svg(&rep, *m))?;
        }
    }
    for (name, svg) in rep.sections.iter().flat_map(|s| &s.charts) {
        write_text(&out_dir.join(name), svg)?;
    }
    log.info(format!(
        "wrote report.md, report.json and {} chart(s) to {} in {:.1}s",
        charts,
        out_dir.display(),
        start.elapsed().as_secs_f64()
    ));
    if !log.quiet {
        print!("{}", report::markdown(&rep));
    }
    Ok(())
}

/// The split in words; a share's cutoff as the time it resolves to on `plog`.
fn describe_split(m: &SplitMethod, plog: &PurchaseLog, validation: bool) -> String {
    let base = match m {
        SplitMethod::Time { cutoff: Cutoff::At(t) } => format!("time: test from {}", cobuy::time::format(*t)),
        SplitMethod::Time { cutoff: Cutoff::LastShare(f) } => match m.test_from(plog) {
            Some(t) => format!("time: the last {f} of purchases are test, from {}", cobuy::time::format(t)),
            None => format!("time: the last {f} of purchases are test"),
        },
        SplitMethod::LastBasket => "last basket of each customer".into(),
        SplitMethod::Random { fraction, seed } => format!("random: {fraction} of each customer's items, seed {seed}"),
    };
    if validation { format!("{base}; validation split (carved from the training part)") } else { base }
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut f = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    f.commit().with_context(|| format!("cannot write {}", path.display()))
}

/// Ranked lists by customer index, and (rows read, customers, rows with unknown ids).
type Lists = (FxHashMap<u32, Vec<u32>>, (u64, u64, u64));

/// Reads ranked lists (customer_id, item_id, rank columns, by header name) keyed by
/// customer index.
fn read_lists(path: &Path, p: &Prepared) -> Result<Lists> {
    let name = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new().from_path(path).map_err(|e| bad(format!("{name}: cannot read: {e}")))?;
    let header = rdr.headers().map_err(|e| bad(format!("{name}: {e}")))?.clone();
    let col = |c: &str| {
        header.iter().position(|h| h == c).ok_or_else(|| {
            bad(format!("{name}: no column {c:?}; the header is {}", header.iter().collect::<Vec<_>>().join(",")))
        })
    };
    let (cc, ic, rc) = (col("customer_id")?, col("item_id")?, col("rank")?);
    let mut rows: Vec<(u32, u32, u32)> = Vec::new();
    let (mut read, mut unknown) = (0u64, 0u64);
    let (customers, items) = (p.train().customers(), p.train().items());
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(format!("{name}: {e}")))?;
        let line = n + 2;
        read += 1;
        let rank: u32 = rec
            .get(rc)
            .and_then(|r| r.trim().parse().ok())
            .ok_or_else(|| bad(format!("{name}:{line}: column rank: not a whole number")))?;
        match (rec.get(cc).and_then(|c| customers.index_of(c)), rec.get(ic).and_then(|i| items.index_of(i))) {
            (Some(c), Some(i)) => rows.push((c, rank, i)),
            _ => unknown += 1,
        }
    }
    rows.sort_unstable();
    let mut lists: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for (c, _, i) in rows {
        let l = lists.entry(c).or_default();
        if !l.contains(&i) {
            l.push(i);
        }
    }
    let n = lists.len() as u64;
    Ok((lists, (read, n, unknown)))
}

/// Writes train.csv and test.csv (customer_id,item_id,quantity,time,basket_id) so that
/// other tools can fit and score on exactly this split.
fn write_split(plog: &PurchaseLog, method: &SplitMethod, validation: bool, dir: &Path, log: Log) -> Result<()> {
    let mut test = method.test_rows(plog, None).map_err(|e| bad(e.to_string()))?;
    let mut unused = vec![false; test.len()];
    if validation {
        let val = method.validation_rows(plog, &test).map_err(|e| bad(e.to_string()))?;
        unused = std::mem::replace(&mut test, val);
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create the folder {}", dir.display()))?;
    for (file, want_test) in [("train.csv", false), ("test.csv", true)] {
        let path = dir.join(file);
        let mut f = AtomicFile::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = csv::Writer::from_writer(&mut f);
        w.write_record(["customer_id", "item_id", "quantity", "amount", "time", "basket_id"])?;
        let mut rows = 0u64;
        for (k, r) in plog.rows.iter().enumerate() {
            if unused[k] || test[k] != want_test {
                continue;
            }
            rows += 1;
            let amount = r.amount.map(super::decimal).unwrap_or_default();
            let time = r.time.map(|t| t.to_string()).unwrap_or_default();
            let basket = match (r.basket, &plog.baskets) {
                (Some(b), Some(t)) => t.id(b).to_string(),
                _ => String::new(),
            };
            w.write_record([
                plog.customers.id(r.customer.0),
                plog.items.id(r.item.0),
                &r.quantity.to_string(),
                &amount,
                &time,
                &basket,
            ])?;
        }
        w.flush()?;
        drop(w);
        f.commit().with_context(|| format!("cannot write {}", path.display()))?;
        log.info(format!("wrote {rows} rows to {}", path.display()));
    }
    Ok(())
}

/// Reads the catalogue, marks the upgrade target's held-out pairs and learns the upgrade
/// model from the training rows.
fn upgrade_target(
    plog: &PurchaseLog,
    prepared: &mut Prepared,
    catalog: &CatalogArgs,
    args: &UpsellArgs,
    params: &UpsellParams,
    out_dir: &Path,
    log: Log,
) -> Result<UpgradeModel> {
    check_times(plog, params)?;
    let catalog = read_catalog(catalog, false, &out_dir.join("catalog"), log)?;
    let facts = item_facts(&catalog, plog, args, log)?;
    prepared.mark_upgrades(&facts);
    let s = &prepared.summary;
    log.info(format!(
        "upgrades: {} held-out pairs of {} customers are dearer items in a category they bought in training",
        s.upgrade_pairs, s.measured_upgrades
    ));
    if s.measured_upgrades == 0 {
        return Err(bad("no test customer bought a dearer item in a category they had bought: nothing to measure"));
    }
    let t = Instant::now();
    let m = UpgradeModel::learn(plog, prepared.train_rows(), &facts, params);
    log_learned(&m, t.elapsed().as_secs_f64(), log);
    Ok(m)
}

/// Measures per-customer lists (in the order of `prepared.customers()`) on `target`;
/// `baseline`: they are one of the target's baselines.
fn lists_report(
    prepared: &Prepared,
    target: Target,
    (label, baseline): (&str, bool),
    lists: &[Vec<u32>],
    ks: &[usize],
    seconds: f64,
) -> Result<RunReport> {
    let table = prepared.measure_in_order(target, ks, lists).map_err(|e| bad(e.to_string()))?;
    Ok(RunReport {
        algorithm: label.into(),
        target: target.name().into(),
        params: None,
        selection: None,
        baseline,
        fit_seconds: 0.0,
        score_seconds: seconds,
        table,
    })
}

/// The two baselines: the most bought dearer items, and the items one price tier up.
fn upsell_baselines(prepared: &Prepared, m: &UpgradeModel, ks: &[usize]) -> Result<Vec<RunReport>> {
    use rayon::prelude::*;
    let n = ks.iter().copied().max().unwrap_or(10);
    let customers: Vec<cobuy::ids::CustomerIdx> = prepared.customers().collect();
    let train = prepared.train();
    let mut runs = Vec::new();
    for (label, next) in [("popular-upgrade", false), ("next-tier", true)] {
        let t = Instant::now();
        let lists: Vec<Vec<u32>> = customers
            .par_iter()
            .map(|&c| {
                let (items, _) = train.purchases(c);
                let times = train.purchase_times(c);
                if next { m.next_tier(items, times, n) } else { m.popular_upgrades(items, times, n) }
            })
            .collect();
        runs.push(lists_report(prepared, Target::Upgrades, (label, true), &lists, ks, t.elapsed().as_secs_f64())?);
    }
    Ok(runs)
}

/// Up-sell with `model` for affinity.
fn upsell_run(
    prepared: &Prepared,
    m: &UpgradeModel,
    model: &cobuy::model::Model,
    label: &str,
    ks: &[usize],
) -> Result<RunReport> {
    use rayon::prelude::*;
    let n = ks.iter().copied().max().unwrap_or(10);
    let filter = model.filter(&cobuy::recommend::Filter::default()).map_err(|e| bad(e.to_string()))?;
    let up = cobuy::offers::upsell::UpSell::new(m, model.scorer(&filter));
    let customers: Vec<cobuy::ids::CustomerIdx> = prepared.customers().collect();
    let t = Instant::now();
    let lists: Vec<Vec<u32>> = customers
        .par_iter()
        .map_init(|| up.scratch(), |s, &c| up.offers(c, n, s).iter().map(|o| o.item.0).collect())
        .collect();
    lists_report(prepared, Target::Upgrades, (label, false), &lists, ks, t.elapsed().as_secs_f64())
}

/// Reads the catalogue, marks the new-categories target's held-out pairs and learns the
/// basket rules of the training rows (cross-sell's second kind of evidence).
fn novelty_target(
    plog: &PurchaseLog,
    prepared: &mut Prepared,
    catalog: &CatalogArgs,
    level: Option<usize>,
    out_dir: &Path,
    log: Log,
) -> Result<Novelty> {
    let (catalog, _) = catalog
        .read(false, &out_dir.join("catalog"), log)?
        .ok_or_else(|| bad("the new-categories target needs a catalogue"))?;
    let deepest = (0..catalog.category_count() as u32).map(|n| catalog.depth(CategoryIdx(n))).max().unwrap_or(0);
    let level = level.unwrap_or(deepest);
    if level > deepest {
        return Err(bad(format!("--new-category-level {level}: the catalogue's deepest level is {deepest}")));
    }
    let aligned = catalog.align(&plog.items);
    let category: Vec<Option<u32>> =
        aligned.per_item.iter().map(|c| c.and_then(|c| catalog.category_of(c, level)).map(|g| g.0)).collect();
    prepared.mark_new_categories(&category);
    let s = &prepared.summary;
    log.info(format!(
        "new categories (level {level}): {} held-out pairs of {} customers are in a category they bought nothing of in \
         training; {} of the log's {} items have no category there",
        s.new_category_pairs,
        s.measured_new_categories,
        category.iter().filter(|c| c.is_none()).count(),
        category.len()
    ));
    if s.measured_new_categories == 0 {
        return Err(bad("no test customer bought in a category new to them: nothing to measure"));
    }
    let train = PurchaseLog {
        rows: plog.rows.iter().zip(prepared.train_rows()).filter(|(_, t)| **t).map(|(r, _)| *r).collect(),
        ..plog.clone()
    };
    let (baskets, _) = Baskets::from_log(&train).map_err(|e| bad(e.to_string()))?;
    let rules = baskets.rules(&cross_sell_rule_params());
    let window = cobuy::offers::crosssell::CrossSellParams::default().entry_window_days;
    let reference = prepared.train().decay_reference();
    let entries = CategoryEntries::learn(plog, Some(prepared.train_rows()), &category, reference, window);
    Ok(Novelty { category, rules, entries })
}

/// The basket rules `cobuy cross-sell` uses by default.
fn cross_sell_rule_params() -> RuleParams {
    RuleParams { min_support: 0.0005, min_count: 5, ..RuleParams::default() }
}

/// The customer's training categories, sorted.
fn categories_of(items: &[u32], category: &[Option<u32>], out: &mut Vec<u32>) {
    out.clear();
    out.extend(items.iter().filter_map(|&j| category[j as usize]));
    out.sort_unstable();
    out.dedup();
}

/// Whether item `j` is in a category outside `had` (a hard filter: no category, no).
fn in_new_category(j: u32, category: &[Option<u32>], had: &[u32]) -> bool {
    category[j as usize].is_some_and(|g| had.binary_search(&g).is_err())
}

/// The baseline an analyst writes first: the most bought items, kept only in categories the
/// customer bought nothing of.
fn novelty_popularity(prepared: &Prepared, n: &Novelty, ks: &[usize]) -> Result<RunReport> {
    use rayon::prelude::*;
    let top = ks.iter().copied().max().unwrap_or(10);
    let train = prepared.train();
    let mut buyers = vec![0u32; train.items().len()];
    train.counts().indices().iter().for_each(|&j| buyers[j as usize] += 1);
    let mut popular: Vec<u32> = (0..buyers.len() as u32).filter(|&j| buyers[j as usize] > 0).collect();
    popular.sort_by_key(|&j| (std::cmp::Reverse(buyers[j as usize]), j));
    let customers: Vec<cobuy::ids::CustomerIdx> = prepared.customers().collect();
    let t = Instant::now();
    let lists: Vec<Vec<u32>> = customers
        .par_iter()
        .map_init(Vec::new, |had, &c| {
            categories_of(train.purchases(c).0, &n.category, had);
            popular.iter().copied().filter(|&j| in_new_category(j, &n.category, had)).take(top).collect()
        })
        .collect();
    lists_report(
        prepared,
        Target::NewCategories,
        ("popularity, new categories only", true),
        &lists,
        ks,
        t.elapsed().as_secs_f64(),
    )
}

/// Candidates of the collaborative model the hard-filtered baseline keeps from.
const FILTER_CANDIDATES: usize = 300;

/// On new categories, for one configuration's model: the model's own top
/// [`FILTER_CANDIDATES`] kept only in categories the customer bought nothing of (a hard
/// filter), and cross-sell's offers at its defaults.
fn novelty_runs(
    prepared: &Prepared,
    n: &Novelty,
    model: &cobuy::model::Model,
    name: &str,
    ks: &[usize],
) -> Result<Vec<RunReport>> {
    use cobuy::offers::crosssell::{CrossSell, CrossSellParams};
    use rayon::prelude::*;
    let top = ks.iter().copied().max().unwrap_or(10);
    let filter = model.filter(&cobuy::recommend::Filter::default()).map_err(|e| bad(e.to_string()))?;
    let scorer = model.scorer(&filter);
    let customers: Vec<cobuy::ids::CustomerIdx> = prepared.customers().collect();
    let t = Instant::now();
    let lists: Vec<Vec<u32>> = customers
        .par_iter()
        .map_init(
            || (scorer.scratch(), Vec::new(), Vec::new()),
            |(s, out, had), &c| {
                let q = scorer.query(c);
                scorer.recommend(&q, FILTER_CANDIDATES, s, out);
                categories_of(q.items, &n.category, had);
                out.iter()
                    .filter(|r| r.source != cobuy::recommend::Source::Popular)
                    .map(|r| r.item.0)
                    .filter(|&j| in_new_category(j, &n.category, had))
                    .take(top)
                    .collect()
            },
        )
        .collect();
    let filtered = lists_report(
        prepared,
        Target::NewCategories,
        (&format!("{name}, new categories only"), true),
        &lists,
        ks,
        t.elapsed().as_secs_f64(),
    )?;
    let cs = CrossSell::new(model, &filter, &n.rules, n.category.clone(), &n.entries, CrossSellParams::default());
    let t = Instant::now();
    let lists: Vec<Vec<u32>> = customers
        .par_iter()
        .map_init(
            || (cs.scratch(), Vec::new()),
            |(s, out), &c| {
                cs.offers(c, top, s, out);
                out.iter().map(|o| o.item.0).collect()
            },
        )
        .collect();
    let offers = lists_report(
        prepared,
        Target::NewCategories,
        (&format!("cross-sell + {name}"), false),
        &lists,
        ks,
        t.elapsed().as_secs_f64(),
    )?;
    Ok(vec![filtered, offers])
}
