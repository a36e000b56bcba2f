//! Evaluation results in, a Markdown summary, a JSON document or an SVG chart out.
//!
//! Runs are grouped by target (what was held out: e.g. next purchases, new items) in the
//! order targets first appear; algorithms keep their order and their colour throughout.
//! Every output is a pure function of the report, so the same report gives the same
//! bytes. Nothing here panics, whatever the strings and numbers: names are escaped for
//! the format, missing values are shown as `-` (Markdown) or left out (chart), and
//! non-finite values become `null` in JSON.
//!
//! Each mean is shown with its standard error, and each run with the full parameters it
//! was fitted with (and, for `algorithm = auto`, why they were chosen): a reader can judge
//! a difference and rerun a configuration from the report alone.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::metrics::{Metric, MetricTable, Paired, paired};
use crate::model::{FitParams, Selection, describe};

/// An evaluation: how it was set up and what each algorithm scored.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// A heading, e.g. the dataset's name.
    pub title: String,
    /// The settings shared by every run (split, seed, cut-offs...), as key and value.
    pub setup: Vec<(String, Setting)>,
    /// One entry per algorithm and target.
    pub runs: Vec<RunReport>,
    /// Sections measured otherwise, after the runs (the customer-value target's holdout:
    /// its Markdown, its JSON under `sections.<key>`, its charts).
    #[serde(skip)]
    pub sections: Vec<crate::value::Section>,
}

/// A setting's value: a count stays a number in JSON, anything else is text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Setting {
    /// A count, such as the training rows.
    Count(u64),
    /// Words, or numbers with words around them.
    Text(String),
}

impl From<u64> for Setting {
    fn from(n: u64) -> Self {
        Setting::Count(n)
    }
}

impl From<String> for Setting {
    fn from(s: String) -> Self {
        Setting::Text(s)
    }
}

impl From<&str> for Setting {
    fn from(s: &str) -> Self {
        Setting::Text(s.into())
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::Count(n) => write!(f, "{n}"),
            Setting::Text(s) => f.write_str(s),
        }
    }
}

/// One algorithm measured on one target.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The algorithm's name, with its parameters if several variants run.
    pub algorithm: String,
    /// What the test set holds; runs with the same target are compared side by side.
    pub target: String,
    /// The parameters of the fitted model, resolved (`None` for lists measured from
    /// outside and for baselines that fit nothing).
    pub params: Option<FitParams>,
    /// When the configuration was `algorithm = auto`: what it tried and why it chose
    /// `params`.
    pub selection: Option<Selection>,
    /// A baseline of its target, what an analyst writes in an afternoon (popularity; on
    /// new categories, the hard-filtered lists; on upgrades, the most bought dearer items
    /// and the next tier): every other run of the target is compared with the best of
    /// them, customer by customer.
    pub baseline: bool,
    /// Seconds spent fitting.
    pub fit_seconds: f64,
    /// Seconds spent scoring the test customers.
    pub score_seconds: f64,
    /// The measurements.
    pub table: MetricTable,
}

/// The targets in the order they first appear, each with its runs in report order.
fn by_target(r: &EvalReport) -> Vec<(&str, Vec<&RunReport>)> {
    let mut groups: Vec<(&str, Vec<&RunReport>)> = Vec::new();
    for run in &r.runs {
        match groups.iter_mut().find(|(t, _)| *t == run.target) {
            Some((_, runs)) => runs.push(run),
            None => groups.push((&run.target, vec![run])),
        }
    }
    groups
}

/// The union of the runs' cut-offs, ascending.
fn union_ks(runs: &[&RunReport]) -> Vec<usize> {
    let mut ks: Vec<usize> = runs.iter().flat_map(|r| r.table.ks.iter().copied()).collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// A table's per-cut-off value of a series, if it has one for `k`.
fn at_k(table: &MetricTable, series: &[f64], k: usize) -> Option<f64> {
    table.ks.iter().position(|&x| x == k).and_then(|i| series.get(i).copied())
}

/// A table's values of `m`, one per cut-off, if it has the metric.
fn series(t: &MetricTable, m: Metric) -> Option<&[f64]> {
    t.values.iter().find(|(x, _)| *x == m).map(|(_, v)| v.as_slice())
}

/// The column heading of a metric: short, as ranking tables usually print them.
fn short(m: Metric) -> &'static str {
    match m {
        Metric::Precision => "P",
        Metric::Recall => "R",
        Metric::Ndcg => "NDCG",
        Metric::Map => "MAP",
        Metric::HitRate => "HR",
        Metric::Mrr => "MRR",
        Metric::RevenueRecall => "RevR",
    }
}

/// The metric's name in a chart's title.
fn long(m: Metric) -> &'static str {
    match m {
        Metric::Precision => "Precision",
        Metric::Recall => "Recall",
        Metric::Ndcg => "NDCG",
        Metric::Map => "MAP",
        Metric::HitRate => "Hit rate",
        Metric::Mrr => "MRR",
        Metric::RevenueRecall => "Revenue recall",
    }
}

/// One run's paired difference in NDCG@k against its target's best baseline at `k`.
#[derive(Debug, Clone, PartialEq)]
struct Comparison<'a> {
    k: usize,
    /// The best baseline's name and mean NDCG@k.
    baseline: &'a str,
    baseline_mean: f64,
    paired: Paired,
}

/// Per run (report order), its paired differences in NDCG against the best baseline of
/// its target at each cut-off: the baseline run (`baseline`) with the highest mean NDCG@k,
/// the first on a tie. The pairs are over the target's measured set, the union of its
/// runs' customers (every run of a target is measured on all of them, so a customer a run
/// did not measure counts 0 for it; customers of other targets never count). The best
/// baseline itself, and runs whose per-customer values were not kept, get none.
fn comparisons(r: &EvalReport) -> Vec<Vec<Comparison<'_>>> {
    let mut out = vec![Vec::new(); r.runs.len()];
    for (target, runs) in by_target(r) {
        let members: Vec<usize> = (0..r.runs.len()).filter(|&i| r.runs[i].target == target).collect();
        let mut over: Vec<u32> = runs.iter().flat_map(|run| run.table.per_customer.customers.iter().copied()).collect();
        over.sort_unstable();
        over.dedup();
        for k in union_ks(&runs) {
            let ndcg = |i: usize| r.runs[i].table.get(Metric::Ndcg, k).filter(|v| v.is_finite());
            let Some(best) = members
                .iter()
                .copied()
                .filter(|&i| r.runs[i].baseline && ndcg(i).is_some())
                .reduce(|a, b| if ndcg(b) > ndcg(a) { b } else { a })
            else {
                continue;
            };
            let Some(base) = r.runs[best].table.ndcg_over(k, &over) else { continue };
            for &i in members.iter().filter(|&&i| i != best) {
                let diff = r.runs[i].table.ndcg_over(k, &over).and_then(|v| paired(&v, &base));
                if let (Some(paired), Some(baseline_mean)) = (diff, ndcg(best)) {
                    out[i].push(Comparison { k, baseline: &r.runs[best].algorithm, baseline_mean, paired });
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

/// One column of a target's table.
#[derive(Clone, Copy)]
enum Column {
    Metric(Metric, usize),
    Coverage(usize),
    Popularity(usize),
}

impl Column {
    fn heading(self) -> String {
        match self {
            Column::Metric(m, k) => format!("{}@{k}", short(m)),
            Column::Coverage(k) => format!("coverage@{k}"),
            Column::Popularity(k) => format!("popularity@{k}"),
        }
    }

    fn value(self, t: &MetricTable) -> Option<f64> {
        match self {
            Column::Metric(m, k) => t.get(m, k),
            Column::Coverage(k) => at_k(t, &t.coverage, k),
            Column::Popularity(k) => at_k(t, &t.mean_popularity, k),
        }
    }

    /// The standard error of the value, for the metrics (means over customers).
    fn std_error(self, t: &MetricTable) -> Option<f64> {
        match self {
            Column::Metric(m, k) => t.std_error(m, k),
            Column::Coverage(_) | Column::Popularity(_) => None,
        }
    }
}

/// Text made safe for a Markdown table cell or heading: pipes escaped, HTML
/// characters as entities, line breaks as spaces.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The report as Markdown: the title, a table of the setup, then one table per target
/// with a row per algorithm and, at each shown cut-off, each metric any run has (the mean
/// and ± its standard error), then coverage and mean popularity at each shown cut-off,
/// customers and timings; under it, a line saying what ± means and each run's parameters
/// in a few words. Up to three cut-offs are shown; of more, the smallest, the median and
/// the largest (a note names the others, which the JSON report has). Numbers have 4
/// decimals; the best mean of each metric column is in bold (every tied one, and only when
/// at least two runs have a value).
pub fn markdown(r: &EvalReport) -> String {
    let mut out = runs_markdown(r);
    for s in &r.sections {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(s.markdown.trim_end());
        out.push('\n');
    }
    out
}

/// The title, the setup and the runs' tables.
fn runs_markdown(r: &EvalReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md_escape(&r.title));
    if !r.setup.is_empty() {
        out.push_str("| setting | value |\n|---|---|\n");
        for (k, v) in &r.setup {
            let _ = writeln!(out, "| {} | {} |", md_escape(k), md_escape(&v.to_string()));
        }
        out.push('\n');
    }
    if r.runs.is_empty() {
        if r.sections.is_empty() {
            out.push_str("No runs.\n");
        }
        return out;
    }
    let compared = comparisons(r);
    for (target, runs) in by_target(r) {
        let _ = writeln!(out, "## {}\n", if target.is_empty() { "(no target)".to_string() } else { md_escape(target) });
        let all_ks = union_ks(&runs);
        let ks = shown_ks(&all_ks);
        let metrics: Vec<Metric> = Metric::ALL
            .into_iter()
            .filter(|&m| runs.iter().any(|run| run.table.values.iter().any(|(x, _)| *x == m)))
            .collect();
        let mut columns: Vec<Column> = Vec::new();
        for &k in &ks {
            columns.extend(metrics.iter().map(|&m| Column::Metric(m, k)));
        }
        columns.extend(ks.iter().map(|&k| Column::Coverage(k)));
        columns.extend(ks.iter().map(|&k| Column::Popularity(k)));

        // Cells, column by column, so each metric column can mark its best.
        let cells: Vec<Vec<String>> = columns
            .iter()
            .map(|&c| {
                let values: Vec<Option<f64>> = runs.iter().map(|run| c.value(&run.table)).collect();
                let errors = runs.iter().map(|run| c.std_error(&run.table));
                let best = match c {
                    Column::Metric(..) if values.iter().flatten().count() >= 2 => {
                        values.iter().flatten().copied().filter(|v| v.is_finite()).reduce(f64::max)
                    }
                    _ => None,
                };
                let best = best.map(|b| format!("{b:.4}"));
                values
                    .iter()
                    .zip(errors)
                    .map(|(v, e)| match v {
                        None => "-".to_string(),
                        Some(v) => {
                            let s = format!("{v:.4}");
                            let s = if best.as_deref() == Some(s.as_str()) { format!("**{s}**") } else { s };
                            match e {
                                Some(e) => format!("{s} ±{e:.4}"),
                                None => s,
                            }
                        }
                    })
                    .collect()
            })
            .collect();

        out.push_str("| algorithm |");
        for c in &columns {
            let _ = write!(out, " {} |", c.heading());
        }
        out.push_str(" customers | fit s | score s |\n|---|");
        out.push_str(&"---:|".repeat(columns.len() + 3));
        out.push('\n');
        for (i, run) in runs.iter().enumerate() {
            let _ = write!(out, "| {} |", md_escape(&run.algorithm));
            for col in &cells {
                let _ = write!(out, " {} |", col[i]);
            }
            let _ = writeln!(out, " {} | {:.4} | {:.4} |", run.table.customers, run.fit_seconds, run.score_seconds);
        }
        out.push('\n');
        if runs.iter().any(|run| !run.table.std_errors.is_empty()) {
            out.push_str(
                "± is the standard error of the mean over the customers measured (sample standard deviation / \
                 √customers); the runs of a target are measured on the same customers, so a difference between \
                 two of them is usually surer than their errors suggest.\n",
            );
        }
        let cmps: Vec<&[Comparison]> = runs
            .iter()
            .map(|run| r.runs.iter().position(|x| std::ptr::eq(x, *run)).map_or(&[][..], |i| &compared[i][..]))
            .collect();
        paired_table(&mut out, &runs, &cmps, &ks);
        if ks.len() < all_ks.len() {
            let left_out: Vec<String> = all_ks.iter().filter(|k| !ks.contains(k)).map(|k| k.to_string()).collect();
            let _ = writeln!(out, "\nCut-offs {} are left out here; the JSON report has them.", left_out.join(", "));
        }
        parameters(&mut out, &runs);
        out.push('\n');
    }
    out
}

/// The paired differences of a target's runs against its best baseline, at the shown
/// cut-offs: a line naming the baseline at each, then a row per run that has one.
fn paired_table(out: &mut String, runs: &[&RunReport], cmps: &[&[Comparison]], ks: &[usize]) {
    let ks: Vec<usize> = ks.iter().copied().filter(|&k| cmps.iter().any(|cmp| cmp.iter().any(|c| c.k == k))).collect();
    if ks.is_empty() {
        return;
    }
    let named: Vec<String> = ks
        .iter()
        .filter_map(|&k| {
            let c = cmps.iter().find_map(|cmp| cmp.iter().find(|c| c.k == k))?;
            Some(format!("NDCG@{k}: {} ({:.4})", md_escape(c.baseline), c.baseline_mean))
        })
        .collect();
    let customers = cmps.iter().find_map(|cmp| cmp.first()).map_or(0, |c| c.paired.customers);
    let _ = writeln!(
        out,
        "\nPaired differences against the best baseline ({}), over the {customers} customers measured: the mean of \
         each customer's difference and its 95% interval (normal approximation: ± 1.96 standard deviations of the \
         differences / √customers); × is the ratio of the means.\n",
        named.join("; ")
    );
    out.push_str("| algorithm |");
    for k in &ks {
        let _ = write!(out, " ΔNDCG@{k} | 95% interval | ×@{k} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(3 * ks.len()));
    out.push('\n');
    for (run, cmp) in runs.iter().zip(cmps) {
        if cmp.is_empty() {
            continue;
        }
        let _ = write!(out, "| {} |", md_escape(&run.algorithm));
        for &k in &ks {
            match cmp.iter().find(|c| c.k == k) {
                Some(c) => {
                    let p = c.paired;
                    let ratio =
                        run.table.get(Metric::Ndcg, k).filter(|_| c.baseline_mean > 0.0).map(|v| v / c.baseline_mean);
                    let ratio = ratio.map_or("-".to_string(), |x| format!("{x:.2}"));
                    let _ = write!(out, " {:+.4} | [{:+.4}, {:+.4}] | {ratio} |", p.difference, p.low, p.high);
                }
                None => out.push_str(" - | - | - |"),
            }
        }
        out.push('\n');
    }
}

/// A line per run that was fitted: its parameters in a few words and, for `auto`, why
/// they were chosen (the JSON report has every parameter).
fn parameters(out: &mut String, runs: &[&RunReport]) {
    let fitted: Vec<(&RunReport, &FitParams)> = runs.iter().filter_map(|r| Some((*r, r.params.as_ref()?))).collect();
    if fitted.is_empty() {
        return;
    }
    out.push_str("\nParameters (all of them in report.json):\n\n");
    for (run, p) in fitted {
        let name = md_escape(&run.algorithm);
        let params = describe(p);
        let _ = match &run.selection {
            // The reason names the parameters it chose: not twice on one line.
            Some(s) if s.reason.starts_with(&params) => {
                writeln!(out, "- {name}, chosen by auto: {} ({})", md_escape(&s.reason), md_escape(&s.split))
            }
            Some(s) => writeln!(
                out,
                "- {name}: {}; chosen by auto: {} ({})",
                md_escape(&params),
                md_escape(&s.reason),
                md_escape(&s.split)
            ),
            None => writeln!(out, "- {name}: {}", md_escape(&params)),
        };
    }
}

/// The cut-offs a Markdown table shows: all of up to three, else the smallest, the
/// median and the largest, so a table stays about 30 columns wide.
fn shown_ks(ks: &[usize]) -> Vec<usize> {
    match ks {
        [] | [_] | [_, _] | [_, _, _] => ks.to_vec(),
        [first, .., last] => vec![*first, ks[(ks.len() - 1) / 2], *last],
    }
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

/// Key-value pairs as a JSON object, in their order.
struct Pairs<'a>(&'a [(String, Setting)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A series as `{"k": value, ...}`, cut-offs ascending.
struct ByK<'a> {
    ks: &'a [usize],
    values: &'a [f64],
}

impl Serialize for ByK<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.ks.len().min(self.values.len());
        let mut map = s.serialize_map(Some(n))?;
        for (k, v) in self.ks.iter().zip(self.values) {
            map.serialize_entry(&k.to_string(), v)?;
        }
        map.end()
    }
}

/// Per-metric series (a table's means or standard errors) as `{"ndcg": {"10": value,
/// ...}, ...}`, in [`Metric::ALL`] order.
struct Metrics<'a> {
    ks: &'a [usize],
    series: &'a [(Metric, Vec<f64>)],
}

impl Serialize for Metrics<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let present: Vec<&(Metric, Vec<f64>)> =
            Metric::ALL.iter().filter_map(|m| self.series.iter().find(|(x, _)| x == m)).collect();
        let mut map = s.serialize_map(Some(present.len()))?;
        for (m, values) in present {
            map.serialize_entry(m.name(), &ByK { ks: self.ks, values })?;
        }
        map.end()
    }
}

/// What `auto` tried and why it chose, without each candidate's full parameters (the
/// chosen ones are the run's `params`).
#[derive(Serialize)]
struct JsonSelection<'a> {
    reason: &'a str,
    split: &'a str,
    objective: &'a str,
    customers: u64,
    /// Each candidate's parameters in a few words, its score and why it has none.
    tried: Vec<JsonTried<'a>>,
    /// The index of the chosen candidate in `tried`; `null` when nothing was measured.
    chosen: Option<usize>,
}

#[derive(Serialize)]
struct JsonTried<'a> {
    label: &'a str,
    score: Option<f64>,
    note: Option<&'a str>,
}

impl<'a> JsonSelection<'a> {
    fn new(s: &'a Selection) -> Self {
        JsonSelection {
            reason: &s.reason,
            split: &s.split,
            objective: &s.objective,
            customers: s.customers,
            tried: s
                .tried
                .iter()
                .map(|t| JsonTried { label: &t.label, score: t.score, note: t.note.as_deref() })
                .collect(),
            chosen: s.chosen,
        }
    }
}

/// A run's paired differences as `{"10": {"baseline": ..., "baseline_ndcg": ...,
/// "customers": ..., "difference": ..., "low": ..., "high": ...}, ...}`, cut-offs ascending.
struct PairedByK<'a>(&'a [Comparison<'a>]);

impl Serialize for PairedByK<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct One<'b> {
            baseline: &'b str,
            baseline_ndcg: f64,
            customers: usize,
            difference: f64,
            low: f64,
            high: f64,
        }
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for c in self.0 {
            let p = c.paired;
            let one = One {
                baseline: c.baseline,
                baseline_ndcg: c.baseline_mean,
                customers: p.customers,
                difference: p.difference,
                low: p.low,
                high: p.high,
            };
            map.serialize_entry(&c.k.to_string(), &one)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    title: &'a str,
    setup: Pairs<'a>,
    runs: Vec<JsonRun<'a>>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    sections: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    algorithm: &'a str,
    target: &'a str,
    params: Option<&'a FitParams>,
    selection: Option<JsonSelection<'a>>,
    fit_seconds: f64,
    score_seconds: f64,
    customers: usize,
    revenue_customers: usize,
    ks: &'a [usize],
    baseline: bool,
    metrics: Metrics<'a>,
    std_errors: Metrics<'a>,
    paired_ndcg: Option<PairedByK<'a>>,
    coverage: ByK<'a>,
    mean_popularity: ByK<'a>,
}

/// The report as pretty-printed JSON with a fixed key order: `title`, `setup` (an object,
/// keys in the report's order, counts as numbers), `runs`, each with `algorithm`,
/// `target`, `params` (every fit parameter, as `cobuy inspect --json` shows them; `null`
/// for outside lists and baselines), `selection` (for `auto`: `reason`, `split`,
/// `objective`, `customers`, `tried` as `label`, `score`, `note`, and `chosen`; else
/// `null`), `fit_seconds`, `score_seconds`, `customers`, `revenue_customers`, `ks`,
/// `baseline` (whether the run is one of its target's baselines), `metrics` (the means:
/// `{"ndcg": {"10": 0.0412, ...}, ...}`, metrics in [`Metric::ALL`] order, cut-offs
/// ascending), `std_errors` (their standard errors, the same shape; a metric over fewer
/// than two customers is left out), `paired_ndcg` (the paired difference in NDCG against
/// the target's best baseline at each cut-off, with its 95% interval: `{"10":
/// {"baseline", "baseline_ndcg", "customers", "difference", "low", "high"}}`; `null` for
/// the best baseline and when the target has none), `coverage` and `mean_popularity`
/// (`{"10": ..., ...}`). Non-finite numbers are written as `null`.
pub fn json(r: &EvalReport) -> String {
    let compared = comparisons(r);
    let doc = JsonReport {
        title: &r.title,
        setup: Pairs(&r.setup),
        runs: r
            .runs
            .iter()
            .zip(&compared)
            .map(|(run, cmp)| JsonRun {
                algorithm: &run.algorithm,
                target: &run.target,
                params: run.params.as_ref(),
                selection: run.selection.as_ref().map(JsonSelection::new),
                fit_seconds: run.fit_seconds,
                score_seconds: run.score_seconds,
                customers: run.table.customers,
                revenue_customers: run.table.revenue_customers,
                ks: &run.table.ks,
                baseline: run.baseline,
                metrics: Metrics { ks: &run.table.ks, series: &run.table.values },
                std_errors: Metrics { ks: &run.table.ks, series: &run.table.std_errors },
                paired_ndcg: (!cmp.is_empty()).then_some(PairedByK(cmp)),
                coverage: ByK { ks: &run.table.ks, values: &run.table.coverage },
                mean_popularity: ByK { ks: &run.table.ks, values: &run.table.mean_popularity },
            })
            .collect(),
        sections: r.sections.iter().map(|s| (s.key.clone(), s.json.clone())).collect(),
    };
    // Cannot fail: every map key is a string and every value a plain number, string or
    // derived struct of them.
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------------------

/// Line colours, one per algorithm in order of first appearance (Tableau 10).
const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const WIDTH: f64 = 900.0;
const TITLE_H: f64 = 40.0;
const PANEL_H: f64 = 300.0;
const LEGEND_ROW: f64 = 20.0;
/// Plot area inside a panel: room for the panel title, the tick labels and the axis labels.
const PAD_LEFT: f64 = 62.0;
const PAD_RIGHT: f64 = 14.0;
const PAD_TOP: f64 = 26.0;
const PAD_BOTTOM: f64 = 44.0;
/// Space between the plot's edges and the first and last cut-off.
const X_INSET: f64 = 16.0;

/// Text made safe for XML content and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and line breaks are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with one decimal: enough for a screen, and the same bytes every time.
fn px(x: f64) -> String {
    format!("{x:.1}")
}

/// The y axis for values up to `max`: (top of the axis, step between ticks, ticks above 0,
/// decimals for the tick labels). The step is 1, 2, 2.5 or 5 times a power of ten, giving
/// about five ticks; an axis with nothing positive to show runs from 0 to 1.
fn y_axis(max: f64) -> (f64, f64, usize, usize) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.2, 5, 1);
    }
    let raw = max / 5.0;
    let base = 10f64.powi(raw.log10().floor() as i32);
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().find(|&m| m * base >= raw * (1.0 - 1e-9)).unwrap_or(10.0);
    let step = nice * base;
    let ticks = ((max / step) * (1.0 - 1e-9)).ceil().max(1.0) as usize;
    let decimals = (0..=17).find(|&d| {
        let scaled = step * 10f64.powi(d);
        (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
    });
    (step * ticks as f64, step, ticks, decimals.unwrap_or(17) as usize)
}

/// One panel of a chart: where it sits, its cut-offs and its y axis.
struct Frame {
    x0: f64,
    left: f64,
    right: f64,
    upper: f64,
    lower: f64,
    ks: Vec<usize>,
    /// Top of the y axis, tick step, tick count, decimals of the tick labels.
    axis: (f64, f64, usize, usize),
}

impl Frame {
    fn new(x0: f64, width: f64, ks: Vec<usize>, axis: (f64, f64, usize, usize)) -> Self {
        let (left, right) = (x0 + PAD_LEFT, x0 + width - PAD_RIGHT);
        let (upper, lower) = (TITLE_H + PAD_TOP, TITLE_H + PANEL_H - PAD_BOTTOM);
        Frame { x0, left, right, upper, lower, ks, axis }
    }

    /// The x of the `i`-th cut-off (evenly spaced).
    fn x_of(&self, i: usize) -> f64 {
        let (left, right, n) = (self.left, self.right, self.ks.len());
        if n <= 1 {
            (left + right) / 2.0
        } else {
            left + X_INSET + i as f64 * (right - left - 2.0 * X_INSET) / (n - 1) as f64
        }
    }

    fn y_of(&self, v: f64) -> f64 {
        self.lower - (v / self.axis.0).clamp(0.0, 1.0) * (self.lower - self.upper)
    }

    /// The panel's title, gridlines, ticks and axis labels.
    fn axes(&self, out: &mut String, target: &str, metric: Metric) {
        let (left, right, upper, lower) = (self.left, self.right, self.upper, self.lower);
        let (_, step, ticks, decimals) = self.axis;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
            px((left + right) / 2.0),
            px(TITLE_H + 14.0),
            xml_escape(target)
        );
        // Gridlines and y tick labels.
        for t in 0..=ticks {
            let v = step * t as f64;
            let y = px(self.y_of(v));
            let _ = writeln!(
                out,
                r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="1"/>"##,
                px(left),
                px(right),
                if t == 0 { "#333333" } else { "#e0e0e0" }
            );
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{v:.decimals$}</text>"#,
                px(left - 6.0),
                px(self.y_of(v) + 4.0)
            );
        }
        let _ = writeln!(
            out,
            r##"<line x1="{l}" y1="{}" x2="{l}" y2="{}" stroke="#333333" stroke-width="1"/>"##,
            px(upper),
            px(lower),
            l = px(left)
        );
        // x ticks and labels.
        for (i, k) in self.ks.iter().enumerate() {
            let x = px(self.x_of(i));
            let _ = writeln!(
                out,
                r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#333333" stroke-width="1"/>"##,
                px(lower),
                px(lower + 4.0)
            );
            let _ = writeln!(out, r#"<text x="{x}" y="{}" text-anchor="middle">{k}</text>"#, px(lower + 17.0));
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">k</text>"#,
            px((left + right) / 2.0),
            px(lower + 36.0)
        );
        let (ly_x, ly_y) = (px(self.x0 + 16.0), px((upper + lower) / 2.0));
        let _ = writeln!(
            out,
            r#"<text x="{ly_x}" y="{ly_y}" text-anchor="middle" transform="rotate(-90 {ly_x} {ly_y})">{}</text>"#,
            long(metric)
        );
    }

    /// One run's line, with point markers (empty when the run lacks the metric).
    fn line(&self, out: &mut String, run: &RunReport, metric: Metric, c: &str) {
        let points: Vec<(f64, f64)> = match series(&run.table, metric) {
            Some(values) => run
                .table
                .ks
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_finite())
                .filter_map(|(k, &v)| self.ks.iter().position(|x| x == k).map(|i| (self.x_of(i), self.y_of(v))))
                .collect(),
            None => Vec::new(),
        };
        let list: Vec<String> = points.iter().map(|&(x, y)| format!("{},{}", px(x), px(y))).collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"><title>{}</title></polyline>"#,
            list.join(" "),
            xml_escape(&run.algorithm)
        );
        for (x, y) in points {
            let _ = writeln!(out, r#"<circle cx="{}" cy="{}" r="3" fill="{c}"/>"#, px(x), px(y));
        }
    }
}

/// A line chart of `metric` against the cut-off `k`, as a self-contained SVG about 900 px
/// wide: one panel per target side by side, each with a y axis from 0 to its own rounded
/// maximum; cut-offs evenly spaced (categorical); one coloured line
/// with point markers per algorithm, the same colour in every panel; a legend below. Runs
/// without the metric (revenue recall without revenue) keep an empty line.
pub fn svg(r: &EvalReport, metric: Metric) -> String {
    let groups = by_target(r);
    let mut algorithms: Vec<&str> = Vec::new();
    for run in &r.runs {
        if !algorithms.contains(&run.algorithm.as_str()) {
            algorithms.push(&run.algorithm);
        }
    }
    let colour = |name: &str| PALETTE[algorithms.iter().position(|a| *a == name).unwrap_or(0) % PALETTE.len()];
    // Each panel has its own y axis: targets differ by an order of magnitude (repeat
    // purchases are easy to predict), and a shared axis flattens the harder one.
    let axis_of = |runs: &[&RunReport]| {
        let max = runs
            .iter()
            .filter_map(|run| series(&run.table, metric))
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        y_axis(max)
    };

    // The legend, laid out first: its rows set the height.
    let mut legend = Vec::new(); // (x, row, name)
    let (mut x, mut row) = (20.0, 0usize);
    for name in &algorithms {
        let w = 26.0 + 7.0 * name.chars().count() as f64 + 18.0;
        if x + w > WIDTH - 20.0 && x > 20.0 {
            x = 20.0;
            row += 1;
        }
        legend.push((x, row, *name));
        x += w;
    }
    let rows = if algorithms.is_empty() { 0 } else { row + 1 };
    let height = TITLE_H + PANEL_H + 10.0 + rows as f64 * LEGEND_ROW + 10.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = px(WIDTH),
        h = px(height)
    );
    let _ = writeln!(out, r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##, px(WIDTH), px(height));
    let title =
        if r.title.is_empty() { format!("{}@k", long(metric)) } else { format!("{}: {}@k", r.title, long(metric)) };
    let _ = writeln!(
        out,
        r#"<text x="{}" y="26" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        px(WIDTH / 2.0),
        xml_escape(&title)
    );

    if groups.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666666">no runs</text>"##,
            px(WIDTH / 2.0),
            px(TITLE_H + PANEL_H / 2.0)
        );
    }
    let panel_w = WIDTH / groups.len().max(1) as f64;
    for (p, (target, runs)) in groups.iter().enumerate() {
        let frame = Frame::new(p as f64 * panel_w, panel_w, union_ks(runs), axis_of(runs));
        let _ = writeln!(out, r#"<g class="panel">"#);
        frame.axes(&mut out, target, metric);
        for run in runs {
            frame.line(&mut out, run, metric, colour(&run.algorithm));
        }
        let _ = writeln!(out, "</g>");
    }

    let _ = writeln!(out, r#"<g class="legend">"#);
    for (x, row, name) in legend {
        let y = TITLE_H + PANEL_H + 10.0 + row as f64 * LEGEND_ROW + LEGEND_ROW / 2.0;
        let c = colour(name);
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{c}" stroke-width="2"/>"#,
            px(x),
            px(x + 20.0),
            y = px(y)
        );
        let _ = writeln!(out, r#"<circle cx="{}" cy="{}" r="3" fill="{c}"/>"#, px(x + 10.0), px(y));
        let _ = writeln!(out, r#"<text x="{}" y="{}">{}</text>"#, px(x + 26.0), px(y + 4.0), xml_escape(name));
    }
    let _ = writeln!(out, "</g>");
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::MetricsAccumulator;

    /// One customer per entry of `hits_at`, each with one relevant item at that 0-based rank.
    fn customers(ks: &[usize], hits_at: &[usize]) -> MetricTable {
        let mut acc = MetricsAccumulator::new(ks, 10, vec![0.1; 10]);
        let ranked: Vec<u32> = (0..10).collect();
        for &at in hits_at {
            acc.add(&ranked, &[at as u32], Some(&[5.0]));
        }
        acc.finish()
    }

    /// Customers `0..`, customer `c` with one relevant item at 0-based rank `hits_at[c]`
    /// (`None`: not measured by this run), kept per customer.
    fn by_customer(ks: &[usize], hits_at: &[Option<usize>]) -> MetricTable {
        let mut acc = MetricsAccumulator::new(ks, 10, vec![0.1; 10]);
        let ranked: Vec<u32> = (0..10).collect();
        for (c, at) in hits_at.iter().enumerate() {
            if let Some(at) = at {
                acc.add_for(c as u32, &ranked, &[*at as u32], None);
            }
        }
        acc.finish()
    }

    /// The best baseline is chosen at each cut-off (B at 1, A at 3); the runs' differences
    /// against it are the mean per-customer differences, with a customer a run did not
    /// measure counting 0 (C lacks customer 3); another target's runs play no part.
    #[test]
    fn paired_differences_against_the_best_baseline_at_each_cut_off() {
        let d = |r: usize| 1.0 / ((r + 1) as f64).log2(); // DCG of a hit at 1-based rank r
        let ks = [1, 3];
        let a = by_customer(&ks, &[Some(1), Some(1), Some(2), Some(1)]); // @1: 0; @3: all hit
        let b = by_customer(&ks, &[Some(0), Some(5), Some(5), Some(5)]); // @1: 1/4; @3: 1/4
        let c = by_customer(&ks, &[Some(0), Some(0), Some(9), None]);
        let other = by_customer(&ks, &[Some(0); 6]);
        let mut rep = report();
        rep.runs = vec![
            RunReport { baseline: true, ..run("A", "t", a) },
            RunReport { baseline: true, ..run("B", "t", b) },
            run("C", "t", c),
            RunReport { baseline: true, ..run("X", "u", other) },
        ];
        let v: serde_json::Value = serde_json::from_str(&json(&rep)).unwrap();
        let at = |run: usize, k: &str| v["runs"][run]["paired_ndcg"][k].clone();
        // C against B at 1: differences 0, 1, 0, 0.
        let (mean, variance) = (0.25, (0.75f64.powi(2) + 0.25f64.powi(2) * 3.0) / 3.0);
        let half = 1.96 * (variance / 4.0).sqrt();
        assert_eq!(at(2, "1")["baseline"], "B");
        assert!((at(2, "1")["difference"].as_f64().unwrap() - mean).abs() < 1e-12);
        assert!((at(2, "1")["high"].as_f64().unwrap() - (mean + half)).abs() < 1e-12);
        // C against A at 3: differences 1 - d2, 1 - d2, 0 - d3, 0 - d2.
        let diffs = [1.0 - d(2), 1.0 - d(2), -d(3), -d(2)];
        let mean = diffs.iter().sum::<f64>() / 4.0;
        assert_eq!(at(2, "3")["baseline"], "A");
        assert!((at(2, "3")["difference"].as_f64().unwrap() - mean).abs() < 1e-12);
        assert_eq!(at(2, "3")["customers"], 4);
        // A has a difference where B is best, and none where it is best itself.
        assert_eq!(at(0, "1")["baseline"], "B");
        assert!(at(0, "3").is_null() && at(1, "1").is_null());
        assert!(v["runs"][3]["paired_ndcg"].is_null(), "X is the only baseline of its target");
        let md = markdown(&rep);
        assert!(md.contains("Paired differences against the best baseline (NDCG@1: B (0.2500); NDCG@3: A ("), "{md}");
        assert!(md.contains("| C | +0.2500 | ["), "{md}");
    }

    fn table(ks: &[usize], hit_at: usize) -> MetricTable {
        customers(ks, &[hit_at])
    }

    fn run(algorithm: &str, target: &str, t: MetricTable) -> RunReport {
        RunReport {
            algorithm: algorithm.into(),
            target: target.into(),
            params: None,
            selection: None,
            baseline: false,
            fit_seconds: 1.5,
            score_seconds: 0.25,
            table: t,
        }
    }

    fn report() -> EvalReport {
        EvalReport {
            title: "Retail <test>".into(),
            setup: vec![("split".into(), "last 20% | by time".into()), ("seed".into(), 7.into())],
            runs: vec![
                run("item-knn", "next", table(&[1, 5, 10], 0)),
                run("pop<&\">", "next", table(&[1, 5, 10], 3)),
                run("item-knn", "new", table(&[1, 5, 10], 7)),
                run("pop<&\">", "new", table(&[1, 5, 10], 9)),
            ],
            sections: vec![],
        }
    }

    /// Two customers per run, so that every metric has a standard error; item-knn fitted
    /// with 30 neighbours, and an `auto` run with its record.
    fn measured() -> EvalReport {
        // A penalty that f32 cannot hold exactly: it must be written shortest.
        let als = crate::algo::als::AlsParams { regularization: 0.01, relative: false, ..Default::default() };
        let knn = FitParams { neighbors: 30, als, ..FitParams::default() };
        let ease = FitParams { algorithm: crate::algo::Algorithm::Ease, ..FitParams::default() };
        let mut runs = vec![
            // P@1 per customer: 1 and 0 (mean 1/2, sample sd sqrt(1/2), SE 1/2).
            RunReport { params: Some(knn), ..run("item-knn", "next", customers(&[1, 5], &[0, 3])) },
            // P@1: 0 and 0 (SE 0); P@5: 1/5 and 1/5.
            run("fixed|list", "next", customers(&[1, 5], &[3, 4])),
            RunReport { params: Some(ease), ..run("auto", "next", customers(&[1, 5], &[1, 2])) },
        ];
        runs[2].selection = Some(Selection {
            split: "validation on the last tenth".into(),
            objective: "NDCG@10 on new items".into(),
            customers: 12,
            tried: vec![crate::model::Tried { label: describe(&ease), params: ease, score: Some(0.25), note: None }],
            chosen: Some(0),
            reason: format!("{} scored 0.2500 NDCG@10 on new items", describe(&ease)),
        });
        EvalReport { title: "t".into(), setup: vec![], runs, sections: vec![] }
    }

    fn count(s: &str, pat: &str) -> usize {
        s.matches(pat).count()
    }

    #[test]
    fn svg_is_well_formed_and_escaped() {
        let r = report();
        for m in Metric::ALL {
            let s = svg(&r, m);
            assert_eq!(s, svg(&r, m), "deterministic");
            assert!(s.starts_with("<svg ") && s.ends_with("</svg>\n"));
            for tag in ["svg", "g", "text", "polyline"] {
                let open = count(&s, &format!("<{tag} ")) + count(&s, &format!("<{tag}>"));
                assert_eq!(open, count(&s, &format!("</{tag}>")), "{tag} in {}", m.name());
            }
            // Two targets x two algorithms.
            assert_eq!(count(&s, "<polyline "), 4);
            assert_eq!(count(&s, r#"<g class="panel">"#), 2);
            assert!(s.contains("pop&lt;&amp;&quot;&gt;"));
            assert!(s.contains("Retail &lt;test&gt;"));
            assert!(!s.contains("pop<") && !s.contains("<test>"));
            assert!(!s.contains("NaN") && !s.contains("inf"));
        }
        assert!(svg(&r, Metric::Ndcg).contains("NDCG@k"));
    }

    #[test]
    fn svg_handles_odd_input() {
        let empty = EvalReport { title: String::new(), setup: vec![], runs: vec![], sections: vec![] };
        let s = svg(&empty, Metric::Recall);
        assert!(s.contains("no runs") && s.ends_with("</svg>\n"));
        assert_eq!(count(&s, "<polyline"), 0);

        // A single k, all values 0 and a metric missing from the table.
        let mut acc = MetricsAccumulator::new(&[3], 4, vec![]);
        acc.add(&[0], &[1], None);
        let zero =
            EvalReport { title: "z".into(), setup: vec![], runs: vec![run("a", "t", acc.finish())], sections: vec![] };
        for m in Metric::ALL {
            let s = svg(&zero, m);
            assert_eq!(count(&s, "<polyline"), 1);
            assert_eq!(count(&s, "<text"), count(&s, "</text>"));
        }
        assert!(svg(&zero, Metric::RevenueRecall).contains(r#"points="""#));
    }

    #[test]
    fn y_axis_is_rounded() {
        assert_eq!(y_axis(0.0), (1.0, 0.2, 5, 1));
        assert_eq!(y_axis(f64::NAN), (1.0, 0.2, 5, 1));
        let (top, step, ticks, decimals) = y_axis(0.0412);
        assert!((top - 0.05).abs() < 1e-12 && (step - 0.01).abs() < 1e-12 && ticks == 5 && decimals == 2);
        let (top, step, ticks, decimals) = y_axis(1.0);
        assert!((top - 1.0).abs() < 1e-12 && (step - 0.2).abs() < 1e-12 && ticks == 5 && decimals == 1);
        let (top, _, _, decimals) = y_axis(0.11);
        assert!((top - 0.125).abs() < 1e-12 && decimals == 3, "{top} {decimals}");
    }

    #[test]
    fn markdown_marks_the_best_and_escapes() {
        let md = markdown(&report());
        assert!(md.starts_with("# Retail &lt;test&gt;\n"));
        assert!(md.contains("| split | last 20% \\| by time |"));
        assert!(md.contains("## next\n") && md.contains("## new\n"));
        assert!(md.contains("| pop&lt;&amp;\"&gt; |"));
        assert!(md.contains("| algorithm | P@1 | R@1 | NDCG@1 |"));
        assert!(md.contains("RevR@10 | coverage@1 |"));
        assert!(md.contains("| customers | fit s | score s |"));
        // In "next", item-knn hits at rank 1: P@1 = 1 is the best.
        assert!(md.contains("| item-knn | **1.0000** |"));
        assert!(md.contains("| 1 | 1.5000 | 0.2500 |"));
        // Every row has as many cells as the header.
        let rows = ["| algorithm", "| item", "| pop", "|---|---:"];
        for line in md.lines().filter(|l| rows.iter().any(|r| l.starts_with(r))) {
            // A leading pipe, the algorithm, 7 metrics and coverage and popularity at each of
            // 3 cut-offs, customers, fit and score time.
            assert_eq!(line.matches('|').count() - line.matches("\\|").count(), 2 + 9 * 3 + 3, "{line}");
        }

        let mut many = report();
        many.runs[0].table = table(&[1, 5, 10, 20, 50], 0);
        let md = markdown(&many);
        // "next" has cut-offs 1, 5, 10, 20, 50 (shows 1, 10, 50); "new" has 1, 5, 10 (all shown).
        let next = &md[md.find("## next").unwrap()..md.find("## new").unwrap()];
        assert!(next.contains("| MRR@1 |") && next.contains("| MRR@10 |") && next.contains("| MRR@50 |"), "{next}");
        assert!(!next.contains("@5 |") && !next.contains("@20 |"));
        assert!(next.contains("Cut-offs 5, 20 are left out here"));
        assert_eq!(md.matches("left out").count(), 1);
        assert_eq!(shown_ks(&[1, 5, 10, 20, 50, 100]), vec![1, 10, 100]);

        let empty = markdown(&EvalReport { title: "t".into(), setup: vec![], runs: vec![], sections: vec![] });
        assert_eq!(empty, "# t\n\nNo runs.\n");
        // One customer per run: no spread, no ±, no note; nothing fitted, no parameters.
        assert!(!md.contains('±') && !md.contains("Parameters"));
    }

    #[test]
    fn markdown_shows_standard_errors_and_parameters() {
        let md = markdown(&measured());
        // The best mean in bold, its standard error beside it; the coverage has none.
        assert!(md.contains("| item-knn | **0.5000** ±0.5000 |"), "{md}");
        assert!(md.contains("| fixed\\|list | 0.0000 ±0.0000 |"), "{md}");
        // P@5 of the fixed list: 1/5 for both customers, the best (tied with nobody else).
        let fixed = md.lines().find(|l| l.starts_with("| fixed")).unwrap();
        let cells: Vec<&str> = fixed.split(" | ").collect();
        assert_eq!(cells[8], "**0.2000** ±0.0000", "{fixed}");
        assert!(fixed.ends_with("| 0.1000 | 0.5000 | 0.1000 | 0.1000 | 2 | 1.5000 | 0.2500 |"), "{fixed}");
        assert_eq!(md.matches("± is the standard error of the mean").count(), 1);
        // Parameters: a line per fitted run, none for the outside list; auto's names what
        // it chose once, with its reason and split.
        assert!(md.contains("- item-knn: item-knn (bm25 k1 1.2 b 0.75, 30 neighbours, cosine similarity)\n"), "{md}");
        assert!(!md.contains("- fixed"));
        assert!(
            md.contains(
                "- auto, chosen by auto: ease (bm25 k1 1.2 b 0.75, lambda 500) scored 0.2500 NDCG@10 on new items \
                 (validation on the last tenth)\n"
            ),
            "{md}"
        );
        // A reason that does not start with the parameters gets them first.
        let mut other = measured();
        other.runs[2].selection.as_mut().unwrap().reason = "nothing to measure on".into();
        assert!(markdown(&other).contains(
            "- auto: ease (bm25 k1 1.2 b 0.75, lambda 500); chosen by auto: nothing to measure on (validation on"
        ));
    }

    #[test]
    fn json_has_a_stable_shape() {
        let j = json(&report());
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        // Counts are numbers, words are strings.
        assert_eq!(v["setup"]["seed"], 7);
        assert_eq!(v["setup"]["split"], "last 20% | by time");
        assert_eq!(v["runs"][0]["metrics"]["precision"]["1"], 1.0);
        assert_eq!(v["runs"][1]["algorithm"], "pop<&\">");
        assert_eq!(v["runs"][0]["coverage"]["10"], 1.0);
        // One customer: no standard errors; nothing fitted: no parameters.
        assert_eq!(v["runs"][0]["std_errors"], serde_json::json!({}));
        assert!(v["runs"][0]["params"].is_null() && v["runs"][0]["selection"].is_null());
        // Keys in a fixed order: the run's configuration, then its measurements; metrics as
        // listed, cut-offs ascending (not "10" before "5").
        let run0 = &j[j.find("\"runs\"").unwrap()..];
        let at: Vec<usize> = [
            "algorithm",
            "target",
            "params",
            "selection",
            "fit_seconds",
            "score_seconds",
            "customers",
            "revenue_customers",
            "ks",
            "baseline",
            "metrics",
            "std_errors",
            "paired_ndcg",
            "coverage",
            "mean_popularity",
        ]
        .iter()
        .map(|k| run0.find(&format!("\"{k}\":")).unwrap())
        .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{run0}");
        let p = |s: &str| j.find(s).unwrap();
        assert!(p("\"precision\"") < p("\"recall\"") && p("\"recall\"") < p("\"ndcg\""));
        assert!(p("\"1\":") < p("\"5\":") && p("\"5\":") < p("\"10\":"));
        assert_eq!(j, json(&report()));

        // Standard errors beside the means, the same shape; parameters in full, as
        // `cobuy inspect --json` writes them; auto's record without each candidate's params.
        let m = measured();
        let v: serde_json::Value = serde_json::from_str(&json(&m)).unwrap();
        let knn = &v["runs"][0];
        assert_eq!(knn["metrics"]["precision"]["1"], 0.5);
        assert!((knn["std_errors"]["precision"]["1"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        let names = |x: &serde_json::Value| x.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&knn["std_errors"]), names(&knn["metrics"]));
        assert_eq!(names(&knn["std_errors"]["ndcg"]), ["1", "5"]);
        assert_eq!(knn["revenue_customers"], 2);
        let params: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&m.runs[0].params).unwrap()).unwrap();
        assert_eq!(knn["params"], params);
        assert_eq!(knn["params"]["als"]["regularization"], 0.01, "f32 written shortest, not widened");
        assert_eq!(knn["params"]["neighbors"], 30);
        assert_eq!(knn["params"]["weighting"]["scheme"]["scheme"], "bm25");
        let sel = &v["runs"][2]["selection"];
        assert_eq!(v["runs"][2]["params"]["algorithm"], "ease");
        assert_eq!(sel["reason"], m.runs[2].selection.as_ref().unwrap().reason.as_str());
        assert_eq!(sel["split"], "validation on the last tenth");
        assert_eq!(sel["objective"], "NDCG@10 on new items");
        assert_eq!(sel["customers"], 12);
        assert_eq!(sel["chosen"], 0);
        assert_eq!(
            sel["tried"],
            serde_json::json!([{"label": describe(&m.runs[2].params.unwrap()), "score": 0.25, "note": null}])
        );

        let mut nan = report();
        nan.runs[0].fit_seconds = f64::NAN;
        let v: serde_json::Value = serde_json::from_str(&json(&nan)).unwrap();
        assert!(v["runs"][0]["fit_seconds"].is_null());
    }
}
