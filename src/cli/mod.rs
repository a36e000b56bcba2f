//! Every `cobuy` command: the command line, the dispatch, and what the commands share.
//!
//! One file per command (`rules` holds `basket-complete` and `upsell` holds `upgrades`:
//! each pair reads and learns the same way); the flag groups several commands share, and
//! their resolution into the library's validated options, are in [`args`]. This module
//! holds the logging, the user-error type behind exit code 2, and the helpers of more than
//! one command (loading a model, reading id files, choosing and scoring customers in
//! batches, the ingest summary).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use cobuy::algo::ease::EaseError;
use cobuy::batch::BatchStats;
use cobuy::eval::select;
use cobuy::ids::{CustomerIdx, IdTable};
use cobuy::ingest::{self, IngestSummary, PurchaseLog};
use cobuy::matrix::Interactions;
use cobuy::model::{FitError, FitInfo, FitParams, FitSaveError, Model, ModelError, Selection, Tried};
use cobuy::output::TableFile;

use args::FitPlan;

pub mod args;
pub mod crosssell;
pub mod customers;
pub mod eval;
pub mod fit;
pub mod foldin;
pub mod generate;
pub mod inspect;
pub mod paths;
pub mod recommend;
pub mod rules;
pub mod run;
pub mod similar;
pub mod tune;
pub mod upsell;

#[derive(Parser)]
#[command(name = "cobuy", version, about = "Recommendations from retail purchase histories")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads (0: one per core).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    /// Print errors only.
    #[arg(long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Read purchases, fit a model (auto, the default, chooses among item-knn, user-knn, ease,
    /// als and popularity on the data; buy-again by name), save it.
    Fit(Box<fit::FitCmd>),
    /// Score customers with a saved model and write CSV.
    Recommend(Box<recommend::RecommendCmd>),
    /// Score customers from purchase rows given now (not in the model's history).
    FoldIn(Box<foldin::FoldInCmd>),
    /// The most similar customers of each customer, as CSV.
    SimilarCustomers(similar::SimilarCmd),
    /// Run a job file: fit, recommend, summary; or, with `[split]` and `[eval]` tables, an
    /// evaluation of each `[[algorithm]]`.
    Run(run::RunCmd),
    /// Write a seeded synthetic purchase log (CSV; gzip when FILE ends in .gz).
    Generate(generate::GenerateCmd),
    /// Split a purchase log, fit each algorithm on the training part, measure it on the
    /// test customers, write report.md, report.json and SVG charts.
    Eval(Box<eval::EvalCmd>),
    /// Search fit parameters on a validation split. With `[split]`: validated inside its
    /// training part, the best written as an eval job. Without: validated on all the
    /// purchases, the best refitted into a model and written as a fit job for `cobuy run`.
    Tune(tune::TuneCmd),
    /// Pairwise association rules (A -> B) from baskets, as CSV: support, confidence, lift,
    /// leverage, conviction.
    Rules(Box<rules::RulesCmd>),
    /// Frequently bought together: the best completions of given baskets.
    BasketComplete(Box<rules::CompleteCmd>),
    /// Cross-sell: complementary items per customer (collaborative affinity and basket
    /// lift, preferring categories they have not bought), with reasons.
    CrossSell(Box<crosssell::CrossSellCmd>),
    /// Up-sell: per customer, a dearer item in a category they buy, learned from the order
    /// of purchases, with when to offer it and why.
    UpSell(Box<upsell::UpSellCmd>),
    /// The learned upgrade paths of items (what customers buy next, dearer, in the same
    /// category), as CSV.
    Upgrades(Box<upsell::UpgradesCmd>),
    /// Show what a model holds and how it was fitted.
    Inspect(inspect::InspectCmd),
    /// Customer value: per customer, repeat purchases, P(alive), expected purchases and
    /// churn risk in a horizon (BG/NBD, MBG/NBD or Pareto/NBD), expected spend
    /// (Gamma-Gamma), lifetime value, value tier and RFM segment, as CSV.
    Customers(Box<customers::CustomersCmd>),
}

/// Where each command that reads purchases writes their bad rows under `--skip-invalid`
/// without `--rejects`: the flag is shared, its default follows what the command writes.
const REJECTS_BY_DEFAULT: [(&str, &str); 9] = [
    ("fit", "MODEL.rejects.csv"),
    ("fold-in", "OUT.rejects.csv"),
    ("eval", "OUT_DIR/model.rejects.csv"),
    ("rules", "OUT.rejects.csv"),
    ("basket-complete", "OUT.rejects.csv"),
    ("cross-sell", "OUT.rejects.csv"),
    ("up-sell", "OUT.rejects.csv"),
    ("upgrades", "OUT.rejects.csv; without --out, upgrades.rejects.csv"),
    ("customers", "OUT.rejects.csv"),
];

/// The command line, with the shared flag groups' help fitted to each command: where
/// `--rejects` goes by default, `eval --out-dir` required (a job file may give it as a
/// key instead), and the RP3beta and tie flags hidden from `similar-customers`, which cannot use them.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for (name, default) in REJECTS_BY_DEFAULT {
        cmd = cmd.mut_subcommand(name, |c| {
            c.mut_arg("rejects", |a| a.help(format!("Rejects file, with --skip-invalid (default: {default})")))
        });
    }
    cmd.mut_subcommand("eval", |c| c.mut_arg("out_dir", |a| a.required(true))).mut_subcommand(
        "similar-customers",
        |c| {
            c.mut_arg("rp3_alpha", |a| a.hide(true))
                .mut_arg("rp3_beta", |a| a.hide(true))
                .mut_arg("ties", |a| a.hide(true))
                .mut_arg("similarity", |a| a.help("cosine, jaccard, asymmetric-cosine or lift"))
        },
    )
}

/// Parses the command line (exits with clap's message and code 2 on a usage error).
pub fn parse() -> Cli {
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

/// Runs the command line's command.
///
/// First, before any other thread starts, SIGINT, SIGTERM and SIGHUP are routed to a
/// thread that removes the temporary files being written and exits with 128 + the signal.
/// A closed standard output (or any output pipe whose reader left) ends the command quietly
/// and successfully, as for any Unix filter.
pub fn run(cli: Cli, log: Log) -> Result<()> {
    cobuy::output::remove_temporaries_on_signals().context("cannot set up the signal handling")?;
    let threads = cli.threads;
    match dispatch(cli, threads, log) {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        result => result,
    }
}

/// Whether an error is a write to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(pipe)
            || c.downcast_ref::<csv::Error>().is_some_and(|c| matches!(c.kind(), csv::ErrorKind::Io(io) if pipe(io)))
            || c.downcast_ref::<serde_json::Error>().and_then(|j| j.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(cli: Cli, threads: usize, log: Log) -> Result<()> {
    match cli.command {
        Command::Fit(cmd) => fit::run(&cmd, threads, log),
        Command::Recommend(cmd) => recommend::run(&cmd, threads, log),
        Command::Run(cmd) => run::run(&cmd, threads, log),
        Command::FoldIn(cmd) => foldin::run(&cmd, threads, log),
        Command::SimilarCustomers(cmd) => similar::run(&cmd, threads, log),
        Command::Inspect(cmd) => inspect::run(&cmd),
        Command::Eval(cmd) => eval::run(&cmd, threads, log),
        Command::Tune(cmd) => tune::run(&cmd, threads, log),
        Command::Rules(cmd) => rules::rules(&cmd, threads, log),
        Command::CrossSell(cmd) => crosssell::run(&cmd, threads, log),
        Command::UpSell(cmd) => upsell::run(&cmd, threads, log),
        Command::Upgrades(cmd) => upsell::upgrades(&cmd, threads, log),
        Command::BasketComplete(cmd) => rules::complete(&cmd, threads, log),
        Command::Generate(cmd) => generate::run(&cmd, threads, log),
        Command::Customers(cmd) => customers::run(&cmd, threads, log),
    }
}

/// Amounts and rule measures printed without float noise; in the library, where the rules
/// file (`cobuy rules`, and the Python package's rules table) is written.
pub use cobuy::offers::rules::decimal;

/// `n` and the noun, plural unless `n` is 1: "1 customer", "3 customers".
pub fn plural(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// An error caused by the user's input or usage: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(String);

/// A user error (exit code 2) with this message.
pub fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// Log lines and progress bars on stderr.
#[derive(Clone, Copy)]
pub struct Log {
    pub quiet: bool,
    pub tty: bool,
}

impl Log {
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("cobuy: {}", msg.as_ref());
        }
    }

    /// A bar on a terminal; `None` otherwise (plain log lines are printed instead).
    pub fn bar(&self, len: Option<u64>, what: &str) -> Option<ProgressBar> {
        if self.quiet || !self.tty {
            return None;
        }
        let bar = match len {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {percent}% {elapsed} (eta {eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    }
}

/// Reads a job file's text (a missing or unreadable file is the user's error).
pub fn read_job_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| bad(format!("{}: cannot read the job file: {e}", path.display())))
}

/// A job file that does not parse, with the closest known key when a key is unknown
/// (`neighbours`: did you mean `neighbors`?). Known keys are the flags' names with `_` for
/// `-`, and those serde lists as expected.
pub fn job_error(path: &Path, e: &toml::de::Error) -> anyhow::Error {
    let msg = e.to_string();
    let msg = msg.trim_end();
    let unknown = msg.split("unknown field `").nth(1).and_then(|r| r.split('`').next());
    let expected = msg.split("expected").nth(1).unwrap_or("");
    let mut known: Vec<String> = expected.split('`').skip(1).step_by(2).map(String::from).collect();
    for sub in command().get_subcommands() {
        known.extend(sub.get_arguments().filter_map(|a| a.get_long()).map(|l| l.replace('-', "_")));
    }
    let closest = unknown
        .and_then(|u| known.iter().map(|k| (edit_distance(u, k), k)).filter(|(d, _)| *d <= (u.len() / 3).max(1)).min());
    match closest {
        Some((_, k)) => bad(format!("{}: {msg}\ndid you mean `{k}`?", path.display())),
        None => bad(format!("{}: {msg}", path.display())),
    }
}

/// Levenshtein distance between two keys (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Makes a relative path of a job file relative to the job file's folder `base` (`-`,
/// standard input, stays).
pub fn rebase(base: &Path, p: &mut PathBuf) {
    if p.is_relative() && p.as_os_str() != "-" {
        *p = base.join(&*p);
    }
}

/// Fits a model; an EASE too large for memory names the flag and job key that fix it.
pub fn fit_model(data: Interactions, params: &FitParams, info: FitInfo) -> Result<Model> {
    Model::fit(data, params, info).map_err(fit_error)
}

/// [`fit_model`], saving the model to `path` as it goes ([`Model::fit_and_save`]).
pub fn fit_and_save(
    data: Interactions,
    params: &FitParams,
    info: FitInfo,
    path: &Path,
    fitted: impl FnOnce(&Model),
) -> Result<Model> {
    Model::fit_and_save(data, params, info, path, fitted).map_err(|e| match e {
        FitSaveError::Fit(e) => fit_error(e),
        FitSaveError::Save(e) => e.into(),
    })
}

fn fit_error(e: FitError) -> anyhow::Error {
    match e {
        FitError::Ease(EaseError::TooLarge { max_items, .. }) if max_items > 0 => {
            bad(format!("{e} (--ease-items {max_items}, or ease_items = {max_items} in a job file)"))
        }
        e => e.into(),
    }
}

/// Fits `plan` on `interactions`, the merge of every row of the file: `auto` first chooses
/// on a validation split carved from the rows of `plog` (see `cobuy::eval::select`; only
/// those of a customer sample when `sampled_from` is set, see `ingest::Logged`) and says
/// in one line what it chose and what it skipped; the record goes into the model.
pub fn fit_on_log(
    plog: &PurchaseLog,
    sampled_from: Option<u64>,
    interactions: Interactions,
    plan: &FitPlan,
    mut info: FitInfo,
    log: Log,
) -> Result<Model> {
    let params = match plan {
        FitPlan::Fixed(p) => *p,
        FitPlan::Auto(auto) => {
            let start = Instant::now();
            let bar = log.bar(None, "choosing the algorithm");
            let mut progress = |t: &Tried| {
                if let Some(b) = &bar {
                    b.set_message(format!("choosing the algorithm: tried {}", t.label));
                }
            };
            let (params, selection) = match sampled_from {
                Some(n) => select::choose_sampled(plog, n, auto, &mut progress),
                None => select::choose(plog, None, auto, &mut progress),
            }
            .map_err(|e| bad(e.to_string()))?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            log.info(auto_line(&selection, start.elapsed().as_secs_f64()));
            info.selection = Some(selection);
            params
        }
    };
    fit_model(interactions, &params, info)
}

/// The one log line of an `auto` choice: what won and why, what was measured, what was
/// skipped and why (candidates skipped for the same reason together), and the validation
/// split (with its sample).
fn auto_line(s: &Selection, seconds: f64) -> String {
    let measured = s.tried.iter().filter(|t| t.score.is_some()).count();
    let mut reasons: Vec<(&str, Vec<&Tried>)> = Vec::new();
    for t in s.tried.iter().filter(|t| t.score.is_none()) {
        let note = t.note.as_deref().unwrap_or("not measured");
        match reasons.iter_mut().find(|(n, _)| *n == note) {
            Some((_, group)) => group.push(t),
            None => reasons.push((note, vec![t])),
        }
    }
    let skipped: String = reasons
        .iter()
        .map(|(note, group)| match group.as_slice() {
            [one] => format!("; skipped {} ({note})", one.label),
            _ => {
                let mut families: Vec<&str> = Vec::new();
                for name in group.iter().map(|t| t.params.algorithm.name()) {
                    if !families.contains(&name) {
                        families.push(name);
                    }
                }
                format!("; skipped {} {} candidates ({note})", group.len(), families.join(" and "))
            }
        })
        .collect();
    format!(
        "auto: {} ({measured} of {} candidates measured in {seconds:.1}s{skipped}; {}; cobuy inspect lists them)",
        s.reason,
        s.tried.len(),
        s.split
    )
}

/// Loads a model file; a missing one says how to make it.
pub fn load_model(path: &Path, log: Log) -> Result<Model> {
    let start = Instant::now();
    let model = Model::load(path).map_err(|e| match e {
        ModelError::Io { ref error, .. } if error.kind() == std::io::ErrorKind::NotFound => bad(format!(
            "{}: no such model file; fit one first: cobuy fit --purchases FILE --model {}",
            path.display(),
            path.display()
        )),
        ModelError::Io { .. } => bad(e.to_string()),
        other => bad(format!("{}: {other}", path.display())),
    })?;
    log.info(format!(
        "loaded {} ({} customers, {} items) in {:.1}s",
        path.display(),
        model.customers().len(),
        model.items().len(),
        start.elapsed().as_secs_f64()
    ));
    Ok(model)
}

pub fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).with_context(|| format!("cannot create the folder {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// The run summary as log lines: every row accounted for, and where the rejected rows
/// went (`rejects`, the file of `--skip-invalid`).
pub fn summary_lines(s: &IngestSummary, rejects: Option<&Path>) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(c) = &s.columns_found {
        let found: Vec<String> =
            c.found.iter().map(|(role, name, p)| format!("{role} = {name} (column {p})")).collect();
        let flags: Vec<String> = c.found.iter().map(|(role, _, _)| format!("--{role}-col")).collect();
        let mut line = format!("columns found by name: {} ({} to choose others)", found.join(", "), flags.join(", "));
        if !c.unread.is_empty() {
            line.push_str(&format!("; not read: {}", c.unread.join(", ")));
        }
        v.push(line);
    }
    v.push(format!("rows: {} read = {}", s.rows_read, ingest::summary_breakdown(s)));
    if !s.rejected_by_reason.is_empty() {
        let reasons: Vec<String> = s.rejected_by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
        let to = rejects.map_or(String::new(), |r| format!("; written to {}", r.display()));
        v.push(format!("rejected by reason: {}{to}", reasons.join(", ")));
    }
    let m = &s.merge;
    v.push(format!(
        "{} customer-item pairs ({} rows repeated a pair and were merged into it): {} purchases, {} netted to nothing by returns, {} seen only",
        m.pairs, s.merged_rows, m.purchase_pairs, m.netted_out_pairs, m.seen_only_pairs
    ));
    let mut last =
        format!("{} customers ({} with purchases left), {} items", s.customers, s.customers_with_purchases, s.items);
    if let Some(b) = s.baskets {
        last.push_str(&format!(", {b} baskets"));
    }
    if let (Some(a), Some(b)) = (s.first_time, s.last_time) {
        last.push_str(&format!(", purchases from {} to {}", cobuy::time::format(a), cobuy::time::format(b)));
    }
    v.push(last);
    if let Some(o) = &s.time_outliers {
        let (n, date) = (o.after + o.before, cobuy::time::date);
        v.push(format!(
            "warning: {n} purchase row{} dated far outside the bulk of the log ({} after {}, {} before {}), the first at line {} ({}): kept, but never the time-decay reference",
            if n == 1 { "" } else { "s" }, o.after, date(o.bulk_to), o.before, date(o.bulk_from), o.first_line, cobuy::time::format(o.first_time)
        ));
    }
    v
}

/// How many baskets rules count, against the basket ids the summary counts: a basket whose
/// rows are all returns (a cancellation) holds no item.
pub fn baskets_held(with_items: u64, ids: Option<u64>) -> String {
    match ids {
        Some(ids) if ids > with_items => {
            format!(
                "{with_items} baskets with a purchase (the other {} basket ids hold only returns or left-out rows)",
                ids - with_items
            )
        }
        _ => plural(with_items, "basket"),
    }
}

/// Baskets made of customers (no basket column): `n` customers with a purchase row, and
/// why `n` differs from the summary's customer counts, which the log prints just before.
/// Baskets hold purchase rows, so a customer whose returns cancelled every purchase still
/// has one, while one with only returns or left-out rows has none.
pub fn customer_baskets(n: u64, s: &IngestSummary) -> String {
    let mut text =
        format!("{} as baskets (no basket column: each customer with a purchase row is one", plural(n, "customer"));
    let without = s.customers.saturating_sub(n);
    if without > 0 {
        text.push_str(&format!("; the other {without} of the {} have only returns or left-out rows", s.customers));
    }
    let netted = n.saturating_sub(s.customers_with_purchases);
    if netted > 0 {
        text.push_str(&format!(
            "; {netted} of the {n} have no purchase left after returns (baskets do not net returns), hence {} with \
             purchases left",
            s.customers_with_purchases
        ));
    }
    text.push(')');
    text
}

/// The ids in a file, one per line (blank lines skipped), with their line numbers.
pub fn read_ids(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = fs::read_to_string(path).map_err(|e| bad(format!("{}: cannot read: {e}", path.display())))?;
    // A UTF-8 byte order mark (spreadsheet exports) is not part of the first id.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim_end_matches('\r').to_string()))
        .filter(|(_, id)| !id.trim().is_empty())
        .collect())
}

/// Looks ids from a file up in an id table (of `place`: "the model", "the purchases");
/// unknown ones are reported (not silently dropped) in one short line (their count and the
/// first few), and a file with no known id at all is an error.
pub fn lookup_ids(
    path: &Path,
    what: &str,
    (table, place): (&IdTable, &str),
    required: bool,
    log: Log,
) -> Result<Vec<u32>> {
    /// Unknown ids named in the log line; the rest are counted.
    const SHOWN: usize = 3;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let ids = read_ids(path)?;
    for (line, id) in &ids {
        match table.index_of(id) {
            Some(i) => known.push(i),
            None => unknown.push(format!("{id:?} (line {line})")),
        }
    }
    if known.is_empty() && required {
        return Err(bad(format!("{}: none of its {} {what} ids is in {place}", path.display(), ids.len())));
    }
    if !unknown.is_empty() {
        log.info(format!(
            "{}: {} of its {} {what} ids {} not in {place} and skipped: {}{}",
            path.display(),
            unknown.len(),
            ids.len(),
            if unknown.len() == 1 { "is" } else { "are" },
            unknown[..unknown.len().min(SHOWN)].join(", "),
            if unknown.len() > SHOWN { ", ..." } else { "" }
        ));
    }
    Ok(known)
}

/// Every customer of the model, or those listed in `file` (in its order).
pub fn customers_of(model: &Model, file: Option<&Path>, log: Log) -> Result<Vec<CustomerIdx>> {
    Ok(match file {
        None => (0..model.customers().len() as u32).map(CustomerIdx).collect(),
        Some(path) => {
            // A customer listed twice is scored once, where first listed.
            let listed = lookup_ids(path, "customer", (model.customers(), "the model"), true, log)?;
            let mut seen = vec![false; model.customers().len()];
            let (mut once, mut repeated) = (Vec::with_capacity(listed.len()), Vec::new());
            for c in listed {
                if std::mem::replace(&mut seen[c as usize], true) {
                    repeated.push(c);
                } else {
                    once.push(CustomerIdx(c));
                }
            }
            if let Some(&first) = repeated.first() {
                log.info(format!(
                    "{}: {} customer ids are listed more than once (the first: {:?}); each customer is scored once",
                    path.display(),
                    repeated.len(),
                    model.customers().id(first)
                ));
            }
            once
        }
    })
}

/// Parses `I/N` (1 <= I <= N) into a 0-based shard and a count.
fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let err = || bad(format!("--shard takes I/N with 1 <= I <= N, such as 1/4; got {s:?}"));
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let (i, n): (u32, u32) = (i.trim().parse().map_err(|_| err())?, n.trim().parse().map_err(|_| err())?);
    if n == 0 || i == 0 || i > n {
        return Err(err());
    }
    Ok((i - 1, n))
}

/// Customers to score: the model's order or the file's, then the shard's part of them.
pub fn customer_list(model: &Model, file: Option<&Path>, shard: Option<&str>, log: Log) -> Result<Vec<CustomerIdx>> {
    let shard = shard.map(parse_shard).transpose()?;
    Ok(customers_of(model, file, log)?
        .into_iter()
        .filter(|&c| shard.is_none_or(|(i, n)| cobuy::batch::shard_of(model.customers().id(c.0), n) == i))
        .collect())
}

/// Progress for `total` customers: a bar on a terminal, a log line every tenth otherwise.
pub fn customer_progress(log: Log, total: u64, what: &'static str) -> (Option<ProgressBar>, impl Fn(u64) + Sync) {
    let bar = log.bar(Some(total), what);
    let shown = bar.clone();
    let next_log = std::sync::atomic::AtomicU64::new(0);
    let report = move |done: u64| match &shown {
        Some(b) => b.set_position(done),
        None => {
            let step = (total / 10).max(1);
            if done >= next_log.load(std::sync::atomic::Ordering::Relaxed) && done < total {
                next_log.store(done + step, std::sync::atomic::Ordering::Relaxed);
                log.info(format!("{what}: {done} of {total} customers"));
            }
        }
    };
    (bar, report)
}

/// Writes a batch output atomically (creating its folder), with progress over `total`
/// customers. Returns what was written and the seconds it took.
pub fn write_batch(
    out: &Path,
    total: usize,
    what: &'static str,
    log: Log,
    write: impl FnOnce(&mut TableFile, &(dyn Fn(u64) + Sync)) -> std::io::Result<BatchStats>,
) -> Result<(BatchStats, f64)> {
    create_parent(out)?;
    let start = Instant::now();
    let (bar, progress) = customer_progress(log, total as u64, what);
    let mut file = TableFile::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let stats = write(&mut file, &progress)
        .and_then(|s| file.commit().map(|()| s))
        .with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok((stats, start.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auto_line_says_what_was_skipped_and_why_one_reason_at_a_time() {
        let tried = |label: &str, score: Option<f64>, note: Option<&str>| Tried {
            label: label.into(),
            params: FitParams::default(),
            score,
            note: note.map(String::from),
        };
        let mut s = Selection {
            split: "validation on the most recent tenth; on a sample of 5 of the 9 customers".into(),
            reason: "item-knn won".into(),
            tried: vec![
                tried("item-knn (a)", Some(0.1), None),
                tried("ease (b)", None, Some("not tried: too big")),
                tried("als (c)", None, Some("not tried: too slow")),
                tried("user-knn (d)", None, None),
                tried("ease (e)", None, Some("not tried: too big")),
                tried("ease (f)", Some(0.05), None),
                tried("ease (g)", None, Some("not tried: too big")),
            ],
            ..Selection::default()
        };
        for t in &mut s.tried {
            t.params.algorithm = t.label.split(' ').next().unwrap().parse().unwrap();
        }
        assert_eq!(
            auto_line(&s, 2.04),
            "auto: item-knn won (2 of 7 candidates measured in 2.0s; skipped 3 ease candidates (not tried: too big); \
             skipped als (c) (not tried: too slow); skipped user-knn (d) (not measured); validation on the most \
             recent tenth; on a sample of 5 of the 9 customers; cobuy inspect lists them)"
        );
    }

    /// Every command reading purchases says where its rejected rows go by default, not the
    /// shared flag's generic help: a new command must add its line to the table.
    #[test]
    fn every_rejects_flag_names_its_commands_default() {
        let cmd = super::command();
        let mut with_rejects = 0;
        for sub in cmd.get_subcommands() {
            if let Some(a) = sub.get_arguments().find(|a| a.get_id() == "rejects") {
                let help = a.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(help.contains(".rejects.csv)") && !help.contains("beside"), "{}: {help}", sub.get_name());
                with_rejects += 1;
            }
        }
        assert_eq!(with_rejects, super::REJECTS_BY_DEFAULT.len());
        cmd.debug_assert();
    }
}
