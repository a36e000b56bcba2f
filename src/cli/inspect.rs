//! `cobuy inspect`: what a model file holds and how it was fitted, as text or JSON.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use cobuy::algo::Algorithm;
use cobuy::matrix::Scheme;

use super::{Log, load_model, plural, summary_lines};

#[derive(Args, Clone, Debug)]
pub struct InspectCmd {
    /// The model file.
    model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `cobuy inspect`.
pub fn run(cmd: &InspectCmd) -> Result<()> {
    let (path, json) = (cmd.model.as_path(), cmd.json);
    let model = load_model(path, Log { quiet: true, tty: false })?;
    let d = model.interactions();
    let info = model.info();
    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let top: Vec<(&str, u32)> =
        model.popular().iter().take(10).map(|&j| (model.items().id(j), model.buyers()[j as usize])).collect();
    if json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "bytes": size,
            "format_version": model.format_version(),
            "algorithm": model.params().algorithm.name(),
            "params": model.params(),
            "info": info,
            "customers": d.customers().len(),
            "customers_with_purchases": d.customers_with_purchases(),
            "items": d.items().len(),
            "purchase_pairs": d.counts().nnz(),
            "seen_only_pairs": d.seen_only_pairs(),
            "neighbor_pairs": model.neighbors().nnz(),
            "most_bought": top.iter().map(|(id, n)| serde_json::json!({"item_id": id, "customers": n})).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&v)? + "\n";
        return print(&text);
    }
    let mut out = String::new();
    let p = model.params();
    writeln!(out, "model       {} ({} bytes, format version {})", path.display(), size, model.format_version())?;
    writeln!(out, "algorithm   {}", cobuy::model::describe(p))?;
    if matches!(p.algorithm, Algorithm::ItemKnn | Algorithm::UserKnn) {
        let sim = &p.similarity;
        writeln!(
            out,
            "similarity  {} (shrinkage {}, at least {} shared, ties {})",
            sim.measure.name(),
            sim.shrinkage,
            sim.min_shared,
            sim.ties.name()
        )?;
    }
    let w = &p.weighting;
    let mut weighting = match w.scheme {
        Scheme::Binary => "binary".to_string(),
        Scheme::Count => "count".into(),
        Scheme::Log => "log(1 + count)".into(),
        Scheme::Bm25 { k1, b } => format!("BM25 (k1 {k1}, b {b})"),
        Scheme::TfIdf => "TF-IDF".into(),
    };
    if let (Some(h), Some(t)) = (w.half_life_days, w.reference_time) {
        weighting.push_str(&format!(", time decay: half-life {h} days back from {}", cobuy::time::format(t)));
    }
    writeln!(out, "weighting   {weighting}")?;
    writeln!(out, "fitted from {}", info.source.as_deref().unwrap_or("(rows given through the library)"))?;
    writeln!(
        out,
        "customers   {} ({} with purchases)\nitems       {}\npurchases   {} customer-item pairs; {} seen without a purchase \
         left (returns netted to nothing, or rated below the minimum): never recommended",
        d.customers().len(),
        d.customers_with_purchases(),
        d.items().len(),
        d.counts().nnz(),
        plural(d.seen_only_pairs() as u64, "pair"),
    )?;
    // Only item-kNN keeps item neighbours; "0 item pairs" on another model reads as a fault.
    if p.algorithm == Algorithm::ItemKnn {
        writeln!(out, "neighbours  {} item pairs", model.neighbors().nnz())?;
    }
    if let Some(s) = &info.ingest {
        for line in summary_lines(s, None) {
            writeln!(out, "ingest      {line}")?;
        }
    }
    let top: Vec<String> = top.iter().map(|(id, n)| format!("{id} ({n})")).collect();
    writeln!(out, "most bought {}", top.join(", "))?;
    if let Some(sel) = &info.selection {
        writeln!(out, "chosen by   auto: {}", sel.reason)?;
        writeln!(out, "            {}; objective {}", sel.split, sel.objective)?;
        for (k, t) in sel.tried.iter().enumerate() {
            let mark = if sel.chosen == Some(k) { "*" } else { " " };
            let score = t.score.map_or_else(|| "     -".to_string(), |s| format!("{s:.4}"));
            let note = t.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            writeln!(out, "          {mark} {score}  {}{note}", t.label)?;
        }
    }
    print(&out)
}

/// Writes to standard output (a closed one is a quiet end: `cli::run`).
fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, text.as_bytes())?;
    std::io::Write::flush(&mut stdout)?;
    Ok(())
}
