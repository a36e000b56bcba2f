//! `cobuy rules` (pairwise association rules as CSV) and `cobuy basket-complete`
//! (frequently bought together, for given baskets).
//!
//! The two commands share a file because they share their input: both read the purchases
//! into baskets the same way (`read_baskets`), and differ only in what they ask of them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use cobuy::batch::{put_display, write_blocks, write_csv_field};
use cobuy::ids::ItemIdx;
use cobuy::ingest;
use cobuy::offers::rules::{Baskets, RuleParams, decimal};
use cobuy::output::TableFile;

use super::args::{CatalogArgs, InputArgs, ingest_options, set_threads};
use super::paths::Files;
use super::{Log, bad, create_parent, plural, summary_lines};

/// `cobuy rules` flags.
#[derive(Args, Debug)]
pub struct RulesCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// With --catalog: rules between categories at this level (0: the top level) instead of
    /// items.
    #[arg(long)]
    level: Option<usize>,
    /// Minimum support of a pair: the share of baskets holding both, 0 to 1.
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    min_support: f64,
    /// Minimum confidence, 0 to 1.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    min_confidence: f64,
    /// Minimum lift (0 or more).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    min_lift: f64,
    /// Minimum number of baskets holding both items.
    #[arg(long, default_value_t = 1)]
    min_count: u64,
    /// Output CSV: antecedent,consequent,support,confidence,lift,leverage,conviction,count,
    /// antecedent_count,consequent_count.
    #[arg(long)]
    out: PathBuf,
}

/// `cobuy basket-complete` flags.
#[derive(Args, Debug)]
pub struct CompleteCmd {
    #[command(flatten)]
    input: InputArgs,
    /// The basket to complete: item ids, comma-separated.
    #[arg(long, conflicts_with = "baskets")]
    items: Option<String>,
    /// Baskets to complete: a CSV with header basket_id,item_id, one line per item.
    #[arg(long)]
    baskets: Option<PathBuf>,
    /// With --catalog (and --catalog-category-cols, --catalog-name-col): reasons name the
    /// items, `NAME (ID)`.
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Completions per basket.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Baskets that must hold the whole antecedent (items are dropped from it until enough
    /// do), and the completion with it.
    #[arg(long, default_value_t = 5)]
    min_count: u32,
    /// Output CSV: basket_id,rank,item_id,confidence,lift,count,baskets,antecedent,reason.
    #[arg(long)]
    out: PathBuf,
}

fn read_baskets(input: &InputArgs, out: &Path, log: Log) -> Result<Baskets> {
    let opts = ingest_options(input, out)?;
    if let Some(r) = &opts.rejects {
        create_parent(r)?;
    }
    let start = Instant::now();
    log.info(format!("reading {}", input.purchases.display()));
    let (plog, summary) = ingest::read_log(&input.purchases, &opts)?;
    log.info(format!("read {} rows in {:.1}s", summary.rows_read, start.elapsed().as_secs_f64()));
    for line in
        summary_lines(&summary, opts.rejects.as_deref()).into_iter().filter(|l| !l.contains("customer-item pairs"))
    {
        log.info(line);
    }
    let (baskets, st) = Baskets::from_log(&plog).map_err(|e| bad(e.to_string()))?;
    if baskets.from_basket_ids() {
        log.info(format!("{}, {} basket-item lines", super::baskets_held(st.baskets, summary.baskets), st.lines));
        if st.rows_without_basket > 0 {
            log.info(format!("{} purchase rows have no basket id: grouped by customer", st.rows_without_basket));
        }
    } else {
        log.info(format!("{}, {} basket-item lines", super::customer_baskets(st.baskets, &summary), st.lines));
    }
    Ok(baskets)
}

/// Runs `cobuy rules`.
pub fn rules(cmd: &RulesCmd, threads: usize, log: Log) -> Result<()> {
    let params = RuleParams {
        min_support: cmd.min_support,
        min_confidence: cmd.min_confidence,
        min_lift: cmd.min_lift,
        min_count: cmd.min_count,
    };
    params.check().map_err(bad)?;
    if cmd.min_count == 0 {
        return Err(bad("--min-count must be at least 1"));
    }
    if cmd.level.is_some() != cmd.catalog.catalog.is_some() {
        return Err(bad("category rules need both --catalog (with its column flags) and --level"));
    }
    set_threads(threads)?;
    let opts = ingest_options(&cmd.input, &cmd.out)?;
    let files = Files::new().input("purchases", Some(&cmd.input.purchases));
    cmd.catalog
        .files(cmd.input.skip_invalid, &cmd.out, files)
        .output("rules", Some(&cmd.out))
        .output("rejects file", opts.rejects.as_deref())
        .check()?;
    let catalog = cmd.catalog.read(cmd.input.skip_invalid, &cmd.out, log)?;
    let mut baskets = read_baskets(&cmd.input, &cmd.out, log)?;
    if let (Some((catalog, _)), Some(level)) = (&catalog, cmd.level) {
        baskets = by_category(&baskets, catalog, level, log)?;
    }
    let start = Instant::now();
    let rules = baskets.rules(&params);
    let need = params.min_pair_count(baskets.len() as u64);
    log.info(format!(
        "{} rules from pairs in at least {need} of {} baskets in {:.1}s",
        rules.len(),
        baskets.len(),
        start.elapsed().as_secs_f64()
    ));
    create_parent(&cmd.out)?;
    let mut f = TableFile::create(&cmd.out).with_context(|| format!("cannot create {}", cmd.out.display()))?;
    cobuy::offers::rules::write_csv(&mut f, &baskets, &rules)
        .with_context(|| format!("cannot write {}", cmd.out.display()))?;
    f.commit().with_context(|| format!("cannot write {}", cmd.out.display()))?;
    log.info(format!("wrote {} rules to {}", rules.len(), cmd.out.display()));
    Ok(())
}

/// The baskets with each item replaced by its category path at `level` ("dept > aisle");
/// items without one are left out, and counted.
fn by_category(
    baskets: &Baskets,
    catalog: &cobuy::offers::catalog::Catalog,
    level: usize,
    log: Log,
) -> Result<Baskets> {
    let aligned = catalog.align(baskets.items());
    let mut names = cobuy::ids::Interner::default();
    let mut arrival: Vec<Option<u32>> = Vec::with_capacity(aligned.per_item.len());
    for c in &aligned.per_item {
        let node = c.and_then(|c| catalog.category_of(c, level));
        arrival.push(node.map(|node| {
            let path: Vec<&str> = catalog.category_path(node).iter().map(|&n| catalog.category_name(n)).collect();
            names.intern(&path.join(" > ")).unwrap_or(0)
        }));
    }
    let without = arrival.iter().filter(|a| a.is_none()).count();
    let (table, remap) = names.finish();
    if table.is_empty() {
        return Err(bad(format!("no item has a category at level {level} in the catalogue; try a smaller --level")));
    }
    log.info(format!(
        "rules between {} categories at level {level}; {without} items have no category there ({} not in the catalogue) and are left out",
        table.len(),
        aligned.missing.len()
    ));
    let group_of: Vec<Option<u32>> = arrival.into_iter().map(|a| a.map(|a| remap[a as usize])).collect();
    Ok(baskets.grouped(&group_of, table))
}

/// Runs `cobuy basket-complete`.
pub fn complete(cmd: &CompleteCmd, threads: usize, log: Log) -> Result<()> {
    if cmd.top == 0 {
        return Err(bad("--top must be at least 1"));
    }
    let opts = ingest_options(&cmd.input, &cmd.out)?;
    let files = Files::new().input("purchases", Some(&cmd.input.purchases));
    cmd.catalog
        .files(cmd.input.skip_invalid, &cmd.out, files)
        .input("baskets file", cmd.baskets.as_deref())
        .output("completions", Some(&cmd.out))
        .output("rejects file", opts.rejects.as_deref())
        .check()?;
    // The baskets to complete, by id, each with its item ids (and their lines, for messages).
    let wanted: Wanted = match (&cmd.items, &cmd.baskets) {
        (Some(list), None) => {
            let items: Vec<(String, String)> = list
                .split(',')
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
                .map(|s| (s, "--items".to_string()))
                .collect();
            if items.is_empty() {
                return Err(bad("--items: give at least one item id"));
            }
            vec![("basket".to_string(), items)]
        }
        (None, Some(path)) => read_wanted(path)?,
        _ => return Err(bad("give the basket to complete with --items A,B or --baskets FILE")),
    };
    set_threads(threads)?;
    let catalog = cmd.catalog.read(cmd.input.skip_invalid, &cmd.out, log)?;
    let baskets = read_baskets(&cmd.input, &cmd.out, log)?;
    let ids = baskets.items();
    // How reasons name an item: by the catalogue's name and id, else by id.
    let named: Vec<String> = match &catalog {
        Some((c, _)) => ids.iter().map(|id| c.label(id)).collect(),
        None => Vec::new(),
    };
    let label = |i: ItemIdx| named.get(i.0 as usize).map_or(ids.id(i.0), String::as_str);
    // Each basket's known items; the unknown ones are reported, and a basket with none is
    // left out.
    let mut unknown = Vec::new();
    let mut known: Vec<(&str, Vec<ItemIdx>)> = Vec::with_capacity(wanted.len());
    for (basket, items) in &wanted {
        let mut found = Vec::new();
        for (id, at) in items {
            match ids.index_of(id) {
                Some(i) => found.push(ItemIdx(i)),
                None => unknown.push(format!("{at}: {id:?}")),
            }
        }
        if !found.is_empty() {
            known.push((basket, found));
        }
    }
    if !unknown.is_empty() {
        log.info(format!(
            "{} item ids are not in the purchases and are skipped: {}{}",
            unknown.len(),
            unknown.iter().take(10).cloned().collect::<Vec<_>>().join(", "),
            if unknown.len() > 10 { ", ..." } else { "" }
        ));
    }
    if known.is_empty() {
        return Err(bad("none of the items to complete is in the purchases"));
    }
    let header = "basket_id,rank,item_id,confidence,lift,count,baskets,antecedent,reason\n";
    create_parent(&cmd.out)?;
    let mut f = TableFile::create(&cmd.out).with_context(|| format!("cannot create {}", cmd.out.display()))?;
    // No progress: a basket file is small next to a customer list.
    let written = write_blocks(
        &known,
        header,
        &mut f,
        &|_| {},
        || (String::new(), String::new(), String::new()),
        |(antecedent, holding, why), (basket, items), buf, st| {
            let c = baskets.complete(items, cmd.top, cmd.min_count);
            st.customers += 1;
            st.rows += c.items.len() as u64;
            // The antecedent, joined by spaces for its column and by "and" for the reason.
            antecedent.clear();
            holding.clear();
            for (k, i) in c.antecedent.iter().enumerate() {
                antecedent.push_str(if k > 0 { " " } else { "" });
                holding.push_str(if k > 0 { " and " } else { "" });
                antecedent.push_str(ids.id(i.0));
                holding.push_str(label(*i));
            }
            for (rank, item) in c.items.iter().enumerate() {
                write_csv_field(buf, basket);
                buf.push(b',');
                put_display(buf, rank + 1);
                buf.push(b',');
                write_csv_field(buf, ids.id(item.item.0));
                buf.push(b',');
                put_display(buf, decimal(item.confidence));
                buf.push(b',');
                put_display(buf, decimal(item.lift));
                buf.push(b',');
                put_display(buf, item.count);
                buf.push(b',');
                put_display(buf, c.baskets);
                buf.push(b',');
                write_csv_field(buf, antecedent);
                buf.push(b',');
                why.clear();
                // Writing to a String cannot fail.
                let _ = write!(
                    why,
                    "in {:.0}% of the {} holding {holding}",
                    item.confidence * 100.0,
                    plural(c.baskets, "basket")
                );
                write_csv_field(buf, why);
                buf.push(b'\n');
            }
        },
    );
    let stats = written
        .and_then(|st| f.commit().map(|()| st))
        .with_context(|| format!("cannot write {}", cmd.out.display()))?;
    log.info(format!(
        "wrote {} for {} to {}",
        plural(stats.rows, "completion"),
        plural(wanted.len() as u64, "basket"),
        cmd.out.display()
    ));
    Ok(())
}

/// Baskets to complete: each basket id with its (item id, where it was given) pairs.
type Wanted = Vec<(String, Vec<(String, String)>)>;

/// Reads `basket_id,item_id` lines, grouped by basket in order of first appearance.
fn read_wanted(path: &Path) -> Result<Wanted> {
    let name = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new().from_path(path).map_err(|e| bad(format!("{name}: cannot read: {e}")))?;
    let header = rdr.headers().map_err(|e| bad(format!("{name}: {e}")))?.clone();
    let col = |c: &str| {
        header.iter().position(|h| h == c).ok_or_else(|| {
            bad(format!("{name}: no column {c:?}; the header is {}", header.iter().collect::<Vec<_>>().join(",")))
        })
    };
    let (bc, ic) = (col("basket_id")?, col("item_id")?);
    let mut out: Wanted = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (n, rec) in rdr.records().enumerate() {
        let line = n + 2;
        let rec = rec.map_err(|e| bad(format!("{name}:{line}: {e}")))?;
        let (Some(b), Some(i)) = (rec.get(bc), rec.get(ic)) else {
            return Err(bad(format!("{name}:{line}: too few fields")));
        };
        if i.is_empty() {
            return Err(bad(format!("{name}:{line}: column item_id: empty")));
        }
        let k = *index.entry(b.to_string()).or_insert_with(|| {
            out.push((b.to_string(), Vec::new()));
            out.len() - 1
        });
        out[k].1.push((i.to_string(), format!("{name}:{line}")));
    }
    if out.is_empty() {
        return Err(bad(format!("{name}: no baskets to complete")));
    }
    Ok(out)
}
