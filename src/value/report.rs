//! The customer-value report: who holds the revenue (the Pareto curve, with the 80/20 point
//! marked), the RFM segments and value tiers by size and revenue share, as Markdown, JSON
//! and hand-written SVG charts. Every number is formatted with fixed decimals and every
//! sum runs in customer-index order, so the bytes depend only on the scores.
//!
//! Further sections (a calibration/holdout check of the models, say) plug in as
//! [`Section`]s: each brings its own Markdown, JSON and charts, appended after the
//! report's own.

use std::fmt::Write as _;

use serde::Serialize;

use super::score::{CustomerScore, SEGMENTS, Tier, TierBasis};
use super::summary::CustomerSummary;

/// Points of the Pareto curve: 0%, 1%, ..., 100% of the customers.
const CURVE_POINTS: usize = 100;

/// What ranks customers on the Pareto curve and sums in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Past revenue (positive amounts).
    Revenue,
    /// Purchase occasions, when the log has no amounts (or none above 0).
    Purchases,
}

impl Measure {
    /// An amount with two decimals, or a count of purchases.
    fn format(self, v: f64) -> String {
        match self {
            Measure::Revenue => amount(v),
            Measure::Purchases => format!("{v:.0}"),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Measure::Revenue => "revenue",
            Measure::Purchases => "purchases",
        }
    }
}

/// One row of the segment or tier table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Segment or tier name.
    pub name: &'static str,
    /// Customers in it.
    pub customers: u64,
    /// Their share of all customers, 0 to 1.
    pub customer_share: f64,
    /// Their revenue (or purchases).
    pub total: f64,
    /// Its share of the whole, 0 to 1.
    pub share: f64,
    /// Their summed lifetime value, where the models give one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_value: Option<f64>,
}

/// A section another stage adds to the report: its Markdown (from its own `##` heading),
/// its JSON value (under `sections.<key>`) and its charts (file name, SVG text).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The JSON key.
    pub key: String,
    /// Markdown, starting with its `##` heading.
    pub markdown: String,
    /// The section's JSON.
    pub json: serde_json::Value,
    /// Charts: (file name such as `holdout.svg`, SVG text).
    pub charts: Vec<(String, String)>,
}

/// The report's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueReport {
    /// Customers in it.
    pub customers: u64,
    /// What the curve ranks by.
    pub measure: Measure,
    /// The measure summed over everyone.
    pub total: f64,
    /// The Pareto curve: share of the measure held by the top 0%, 1%, ..., 100% of
    /// customers (101 values).
    pub curve: Vec<f64>,
    /// Share held by the top 20% of customers.
    pub top_20_share: f64,
    /// The 80/20 point: the smallest share of customers (the top ones) holding at least
    /// 80% of the measure, and how many they are.
    pub share_for_80: f64,
    /// See `share_for_80`.
    pub customers_for_80: u64,
    /// What ranked the tiers.
    pub tier_basis: TierBasis,
    /// Segments in [`SEGMENTS`] order (empty ones included).
    pub segments: Vec<Group>,
    /// Tiers, top first.
    pub tiers: Vec<Group>,
    /// Lines about the models (parameters and log-likelihoods), shown as they are.
    pub models: Vec<String>,
    /// Sections added by other stages.
    #[serde(skip)]
    pub sections: Vec<Section>,
}

impl ValueReport {
    /// The report over `summaries` and their `scores` (same order). The measure is
    /// revenue when there are amounts and some are above 0, else purchases.
    pub fn new(
        summaries: &[CustomerSummary],
        scores: &[CustomerScore],
        has_amounts: bool,
        tier_basis: TierBasis,
        models: Vec<String>,
    ) -> Self {
        let by_revenue = has_amounts && summaries.iter().any(|s| s.revenue > 0.0);
        let measure = if by_revenue { Measure::Revenue } else { Measure::Purchases };
        let value: Vec<f64> =
            summaries.iter().map(|s| if by_revenue { s.revenue.max(0.0) } else { s.x + 1.0 }).collect();
        let n = value.len();
        let total: f64 = value.iter().sum();
        let mut sorted = value.clone();
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        // cum[k]: the top k customers' sum.
        let mut cum = Vec::with_capacity(n + 1);
        cum.push(0.0);
        for v in &sorted {
            cum.push(cum[cum.len() - 1] + v);
        }
        let share = |k: usize| if total > 0.0 { (cum[k] / total).min(1.0) } else { 0.0 };
        let top = |p: f64| ((p * n as f64).round() as usize).min(n);
        let curve = (0..=CURVE_POINTS).map(|p| share(top(p as f64 / CURVE_POINTS as f64))).collect();
        let k80 = (0..=n).find(|&k| total > 0.0 && cum[k] >= 0.8 * total).unwrap_or(n);
        let group = |name: &'static str, of: &dyn Fn(usize) -> bool| {
            let (mut customers, mut sum, mut clv, mut any_clv) = (0u64, 0.0, 0.0, false);
            for i in (0..n).filter(|&i| of(i)) {
                customers += 1;
                sum += value[i];
                if let Some(v) = scores[i].clv {
                    clv += v;
                    any_clv = true;
                }
            }
            Group {
                name,
                customers,
                customer_share: if n > 0 { customers as f64 / n as f64 } else { 0.0 },
                total: sum,
                share: if total > 0.0 { sum / total } else { 0.0 },
                lifetime_value: any_clv.then_some(clv),
            }
        };
        let segments = SEGMENTS.iter().map(|&name| group(name, &|i| scores[i].segment == name)).collect();
        let tiers = [Tier::Top, Tier::Middle, Tier::Bottom]
            .into_iter()
            .map(|t| group(t.name(), &|i| scores[i].tier == t))
            .collect();
        ValueReport {
            customers: n as u64,
            measure,
            total,
            curve,
            top_20_share: share(top(0.2)),
            share_for_80: if n > 0 { k80 as f64 / n as f64 } else { 0.0 },
            customers_for_80: k80 as u64,
            tier_basis,
            segments,
            tiers,
            models,
            sections: Vec::new(),
        }
    }

    /// report.md.
    pub fn markdown(&self) -> String {
        let noun = self.measure.noun();
        let mut out = String::from("# Customer value\n\n");
        let _ = writeln!(
            out,
            "{} customers; {noun} {}.{}\n",
            self.customers,
            self.measure.format(self.total),
            if self.measure == Measure::Purchases {
                " No amounts (or none above 0): customers are ranked by purchases."
            } else {
                ""
            }
        );
        out.push_str("## Who holds the ");
        out.push_str(noun);
        out.push_str("\n\n");
        let _ = writeln!(
            out,
            "The top 20% of customers hold {} of the {noun}; {} of the customers ({}) hold 80% of it.\n",
            pct(self.top_20_share),
            pct(self.share_for_80),
            self.customers_for_80
        );
        out.push_str("![Pareto curve](pareto.svg)\n\n| top customers | share of ");
        out.push_str(noun);
        out.push_str(" |\n|---:|---:|\n");
        for p in [1, 5, 10, 20, 30, 50, 80, 100] {
            let _ = writeln!(out, "| {p}% | {} |", pct(self.curve[p]));
        }
        out.push('\n');
        let clv = self.tiers.iter().any(|g| g.lifetime_value.is_some());
        let table = |out: &mut String, title: &str, column: &str, note: &str, chart: &str, groups: &[Group]| {
            let _ = writeln!(out, "## {title}\n\n{note}![{title}]({chart})\n");
            let _ = write!(out, "| {column} | customers | share | {noun} | share of {noun} |");
            out.push_str(if clv {
                " lifetime value |\n|---|---:|---:|---:|---:|---:|\n"
            } else {
                "\n|---|---:|---:|---:|---:|\n"
            });
            for g in groups {
                let _ = write!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    g.name,
                    g.customers,
                    pct(g.customer_share),
                    self.measure.format(g.total),
                    pct(g.share)
                );
                if clv {
                    let _ = write!(out, " {} |", g.lifetime_value.map_or(String::new(), amount));
                }
                out.push('\n');
            }
            out.push('\n');
        };
        let note = "RFM segments: recency, frequency and monetary fifths of the customers.\n\n";
        table(&mut out, "Segments", "segment", note, "segments.svg", &self.segments);
        let note = format!("Top 20%, middle 60%, bottom 20% by {}.\n\n", self.tier_basis.describe());
        table(&mut out, "Tiers", "tier", &note, "tiers.svg", &self.tiers);
        if !self.models.is_empty() {
            out.push_str("## Models\n\n");
            for m in &self.models {
                let _ = writeln!(out, "- {m}");
            }
            out.push('\n');
        }
        for s in &self.sections {
            out.push_str(s.markdown.trim_end());
            out.push_str("\n\n");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    }

    /// report.json: the figures, and each added section under `sections`.
    pub fn json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("plain data serialises");
        if !self.sections.is_empty() {
            let sections: serde_json::Map<String, serde_json::Value> =
                self.sections.iter().map(|s| (s.key.clone(), s.json.clone())).collect();
            v["sections"] = serde_json::Value::Object(sections);
        }
        let mut s = serde_json::to_string_pretty(&v).expect("plain data serialises");
        s.push('\n');
        s
    }

    /// Every chart: (file name, SVG text), the report's own then the sections'.
    pub fn charts(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("pareto.svg".to_string(), self.pareto_svg()),
            ("segments.svg".to_string(), bars("Segments", self.measure, &self.segments)),
            ("tiers.svg".to_string(), bars("Tiers", self.measure, &self.tiers)),
        ];
        out.extend(self.sections.iter().flat_map(|s| s.charts.iter().cloned()));
        out
    }

    /// The Pareto curve: share of the measure against share of customers, the diagonal of
    /// an even spread, and the 80/20 point marked.
    fn pareto_svg(&self) -> String {
        let (w, h, left, top, size) = (480.0, 420.0, 60.0, 40.0, 320.0);
        let x = |f: f64| left + f * size;
        let y = |f: f64| top + (1.0 - f) * size;
        let mut s = svg_open(w, h);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Share of {} by the top customers</text>"#,
            px(w / 2.0),
            self.measure.noun()
        );
        for k in 0..=5 {
            let f = k as f64 / 5.0;
            let _ = writeln!(
                s,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}%</text><text x="{}" y="{}" text-anchor="middle">{}%</text>"##,
                px(x(0.0)),
                px(y(f)),
                px(x(1.0)),
                px(y(f)),
                px(x(0.0) - 6.0),
                px(y(f) + 4.0),
                k * 20,
                px(x(f)),
                px(y(0.0) + 18.0),
                k * 20
            );
        }
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
            px(x(0.0)),
            px(y(1.0)),
            px(size),
            px(size),
            px(x(0.0)),
            px(y(0.0)),
            px(x(1.0)),
            px(y(1.0))
        );
        let points: Vec<String> = self
            .curve
            .iter()
            .enumerate()
            .map(|(p, &v)| format!("{},{}", px(x(p as f64 / CURVE_POINTS as f64)), px(y(v))))
            .collect();
        let _ =
            writeln!(s, r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##, points.join(" "));
        let (cx, cy) = (x(self.share_for_80), y(0.8));
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#d62728" stroke-dasharray="2 3"/><circle cx="{}" cy="{}" r="4" fill="#d62728"/><text x="{}" y="{}">{} of customers: 80%</text>"##,
            px(cx),
            px(y(0.0)),
            px(cx),
            px(cy),
            px(cx),
            px(cy),
            px(cx + 8.0),
            px(cy + 16.0),
            pct(self.share_for_80)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">share of customers (top first)</text>"#,
            px(x(0.5)),
            px(y(0.0) + 40.0)
        );
        s.push_str("</svg>\n");
        s
    }
}

/// Share of customers and share of the measure per group, as paired horizontal bars.
fn bars(title: &str, measure: Measure, groups: &[Group]) -> String {
    let (left, bar_w, row_h) = (140.0, 300.0, 30.0);
    let h = 70.0 + row_h * groups.len() as f64;
    let mut s = svg_open(left + bar_w + 80.0, h);
    let _ = writeln!(
        s,
        r##"<text x="10" y="22" font-size="14">{title}: share of customers and of {}</text><rect x="10" y="34" width="10" height="10" fill="#aec7e8"/><text x="24" y="43">customers</text><rect x="100" y="34" width="10" height="10" fill="#1f77b4"/><text x="114" y="43">{}</text>"##,
        measure.noun(),
        measure.noun()
    );
    for (k, g) in groups.iter().enumerate() {
        let y0 = 56.0 + row_h * k as f64;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{}" width="{}" height="11" fill="#aec7e8"/><rect x="{left}" y="{}" width="{}" height="11" fill="#1f77b4"/><text x="{}" y="{}">{} / {}</text>"##,
            px(left - 8.0),
            px(y0 + 15.0),
            g.name,
            px(y0),
            px(g.customer_share * bar_w),
            px(y0 + 12.0),
            px(g.share * bar_w),
            px(left + bar_w + 6.0),
            px(y0 + 15.0),
            pct(g.customer_share),
            pct(g.share)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn svg_open(w: f64, h: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
        px(w),
        px(h)
    )
}

/// A coordinate with one decimal: the same bytes every time.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// A share as a percentage with one decimal.
fn pct(f: f64) -> String {
    format!("{:.1}%", 100.0 * f)
}

/// An amount with two decimals.
fn amount(v: f64) -> String {
    format!("{v:.2}")
}

/// Line colours: the first for the actual figure or the heuristic, then one per model.
const COLORS: [&str; 6] = ["#333333", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];

/// One line of a [`LineChart`].
pub(crate) struct Series {
    /// The legend's text.
    pub name: String,
    /// (x, y) points, x ascending.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub color: usize,
    /// Drawn dashed.
    pub dashed: bool,
}

/// A chart of lines from 0 on both axes (a holdout's tracking plot, ROC curves).
pub(crate) struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Draw y = x (ROC's chance line); the axes then run to 1.
    pub diagonal: bool,
    /// A vertical line at x with its label (the end of calibration).
    pub marker: Option<(f64, String)>,
}

/// The axis' end: the smallest of 1, 2, 2.5, 5 times a power of ten at or above `v`.
fn nice(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * p).find(|&c| c >= v * (1.0 - 1e-12)).unwrap_or(10.0 * p)
}

/// A tick label: whole numbers without decimals, else up to two.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// Draws a [`LineChart`] as SVG, the legend under the plot.
pub(crate) fn line_chart(c: &LineChart) -> String {
    let (left, top, pw, ph) = (70.0, 40.0, 400.0, 300.0);
    let w = left + pw + 30.0;
    let h = top + ph + 60.0 + 18.0 * c.series.len() as f64;
    let all = c.series.iter().flat_map(|s| s.points.iter());
    let (x_max, y_max) = if c.diagonal {
        (1.0, 1.0)
    } else {
        let (xm, ym) = all.fold((0.0f64, 0.0f64), |(a, b), p| (a.max(p.0), b.max(p.1)));
        (xm.max(f64::MIN_POSITIVE), nice(ym))
    };
    let x = |v: f64| left + v / x_max * pw;
    let y = |v: f64| top + (1.0 - v / y_max) * ph;
    let mut s = svg_open(w, h);
    let _ = writeln!(s, r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#, px(w / 2.0), c.title);
    for k in 0..=5 {
        let f = k as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="middle">{}</text>"##,
            px(x(0.0)),
            px(y(f * y_max)),
            px(x(x_max)),
            px(y(f * y_max)),
            px(x(0.0) - 6.0),
            px(y(f * y_max) + 4.0),
            tick(f * y_max),
            px(x(f * x_max)),
            px(y(0.0) + 18.0),
            tick(f * x_max)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"##,
        px(left),
        px(top),
        px(pw),
        px(ph),
        px(x(x_max / 2.0)),
        px(y(0.0) + 38.0),
        c.x_label,
        px(top + ph / 2.0),
        px(top + ph / 2.0),
        c.y_label
    );
    if c.diagonal {
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
            px(x(0.0)),
            px(y(0.0)),
            px(x(1.0)),
            px(y(1.0))
        );
    }
    if let Some((at, label)) = &c.marker {
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#999" stroke-dasharray="2 3"/><text x="{3}" y="{4}">{5}</text>"##,
            px(x(*at)),
            px(y(0.0)),
            px(y(y_max)),
            px(x(*at) + 4.0),
            px(top + 14.0),
            label
        );
    }
    for (k, l) in c.series.iter().enumerate() {
        let color = COLORS[l.color % COLORS.len()];
        let dash = if l.dashed { r#" stroke-dasharray="6 3""# } else { "" };
        let points: Vec<String> = l.points.iter().map(|p| format!("{},{}", px(x(p.0)), px(y(p.1)))).collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + ph + 56.0 + 18.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            px(left),
            px(ly - 4.0),
            px(left + 24.0),
            px(ly - 4.0),
            px(left + 30.0),
            px(ly),
            l.name
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Horizontal bars of top-decile lifts, with 1 (no better than chance) and the most any
/// ranking can reach marked.
pub(crate) fn lift_chart(title: &str, bars: &[(String, f64)], max: f64) -> String {
    let (left, bar_w, row_h) = (200.0, 260.0, 24.0);
    let end = nice(max.max(bars.iter().map(|b| b.1).fold(1.0, f64::max)));
    let h = 80.0 + row_h * bars.len() as f64;
    let mut s = svg_open(left + bar_w + 70.0, h);
    let at = |v: f64| left + v / end * bar_w;
    let _ = writeln!(s, r#"<text x="10" y="22" font-size="14">{title}</text>"#);
    for (k, (name, v)) in bars.iter().enumerate() {
        let y0 = 40.0 + row_h * k as f64;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{name}</text><rect x="{left}" y="{}" width="{}" height="14" fill="{}"/><text x="{}" y="{}">{:.2}</text>"##,
            px(left - 8.0),
            px(y0 + 11.0),
            px(y0),
            px(at(*v) - left),
            if k == 0 { COLORS[0] } else { COLORS[1] },
            px(at(*v) + 4.0),
            px(y0 + 11.0),
            v
        );
    }
    let bottom = 40.0 + row_h * bars.len() as f64;
    for (v, label, color) in [(1.0, "1 (chance)", "#999"), (max, "most possible", "#d62728")] {
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="34" x2="{0}" y2="{1}" stroke="{2}" stroke-dasharray="3 3"/><text x="{0}" y="{3}" text-anchor="middle">{4} {5:.2}</text>"##,
            px(at(v)),
            px(bottom),
            color,
            px(bottom + if v == 1.0 { 14.0 } else { 28.0 }),
            label,
            v
        );
    }
    s.push_str("</svg>\n");
    s
}
