//! Cross-sell, up-sell and customer value: `cobuy cross-sell` and `cobuy up-sell` scoring
//! affinity with a fitted model (as their `--model FILE` does), and `cobuy customers`, each
//! as the bytes of the CLI's CSV.
//!
//! The steps are the CLI's library calls in the CLI's order (src/cli/crosssell.rs,
//! upsell.rs, customers.rs). The CLI writes its rows in the binary crate, out of reach of
//! this one, so the rows are written here the same way; python/tests compares the bytes
//! with the CLI's on the bundled data.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use cobuy::batch::write_blocks;
use cobuy::ingest::{self, ColumnRef, IngestOptions};
use cobuy::model::Model;
use cobuy::offers::catalog::{Catalog, CatalogColumns, CatalogOptions, CatalogSummary};
use cobuy::offers::crosssell::{CategoryEntries, CrossSell, CrossSellParams, OfferRows, Scoring};
use cobuy::offers::rules::{Baskets, RuleParams};
use cobuy::offers::upsell::{ItemFacts, PairMeasure, UpSell, UpgradeModel, UpsellParams, UpsellRows};
use cobuy::recommend::Filter;
use cobuy::time::{self, DAY};
use cobuy::value::{self, CustomerTable, Distinct, Occasion, ScoreOptions, SummaryOptions, TierBy};
use cobuy::value::{Model as ValueModel, ValueError};

use crate::{PyModel, ReadArgs, column, err};

/// Registers the functions of this file in the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cross_sell_csv, m)?)?;
    m.add_function(wrap_pyfunction!(up_sell_csv, m)?)?;
    m.add_function(wrap_pyfunction!(customer_value_csv, m)?)?;
    Ok(())
}

/// How to read the catalogue: the CLI's `--catalog*` flags, as a dict with every key (the
/// Python package's `Catalog` fills it). Columns are names, or 1-based positions as ints.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct CatalogArgs<'py> {
    path: PathBuf,
    item_col: Option<Bound<'py, PyAny>>,
    category_cols: Vec<Bound<'py, PyAny>>,
    separator: Option<String>,
    name_col: Option<Bound<'py, PyAny>>,
    price_col: Option<Bound<'py, PyAny>>,
    brand_col: Option<Bound<'py, PyAny>>,
}

impl CatalogArgs<'_> {
    fn options(&self) -> PyResult<CatalogOptions> {
        if self.category_cols.is_empty() {
            return Err(err("the catalogue needs category_cols (one to four columns, top level first)"));
        }
        let category = self
            .category_cols
            .iter()
            .map(|c| column(Some(c), "category_cols")?.ok_or_else(|| err("category_cols: give column names")))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(CatalogOptions::new(CatalogColumns {
            item: column(self.item_col.as_ref(), "item_col")?.unwrap_or(ColumnRef::Detect),
            name: column(self.name_col.as_ref(), "name_col")?,
            category,
            category_separator: self.separator.clone(),
            price: column(self.price_col.as_ref(), "price_col")?,
            brand: column(self.brand_col.as_ref(), "brand_col")?,
            launch: None,
        }))
    }
}

fn read_catalog(path: &Path, opts: &CatalogOptions) -> PyResult<(Catalog, CatalogSummary)> {
    Catalog::read(path, opts).map_err(err)
}

/// Reads the purchases an offer is made from, as the CLI does, and checks that `model` was
/// fitted from them (the same customers and items), as `--model` is checked.
fn read_for(model: &Model, path: &Path, opts: &IngestOptions) -> PyResult<ingest::Logged> {
    let read = ingest::read_log_with_progress(path, opts, &mut |_| {}).map_err(err)?;
    if model.items() != &read.log.items || model.customers() != &read.log.customers {
        return Err(err(format!(
            "the model was fitted from other purchases ({} customers and {} items; these have {} and {}): fit it on \
             these purchases",
            model.customers().len(),
            model.items().len(),
            read.log.customers.len(),
            read.log.items.len()
        )));
    }
    Ok(read)
}

/// `cobuy cross-sell --model`'s CSV (no item or value filters, no wallet), as bytes:
/// complementary offers by category for these customers (all when `None`), scored with
/// `model`'s affinity over the purchases at `path`, which it was fitted from.
#[pyfunction]
#[pyo3(signature = (model, path, read, catalog, *, customers=None, top=10, level=None, scoring="new-categories",
    cf_weight=0.5, novelty=1.0, min_support=0.0005, min_count=5))]
#[allow(clippy::too_many_arguments)]
fn cross_sell_csv<'py>(
    py: Python<'py>,
    model: &PyModel,
    path: PathBuf,
    read: ReadArgs<'_>,
    catalog: CatalogArgs<'_>,
    customers: Option<Vec<String>>,
    top: usize,
    level: Option<usize>,
    scoring: &str,
    cf_weight: f64,
    novelty: f64,
    min_support: f64,
    min_count: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    PyModel::check_top(top)?;
    let scoring = match scoring {
        "new-categories" => Scoring::NewCategories,
        "mix" => Scoring::Mix,
        other => return Err(err(format!("scoring takes new-categories or mix, got {other:?}"))),
    };
    let params = CrossSellParams { scoring, cf_weight, novelty, ..CrossSellParams::default() };
    params.check().map_err(err)?;
    let rule_params = RuleParams { min_support, min_count: min_count.max(1), ..RuleParams::default() };
    rule_params.check().map_err(err)?;
    let (opts, catalog_opts, catalog_path) = (read.options()?, catalog.options()?, catalog.path.clone());
    let cs_of = model.customers(customers)?;
    let m = model.model();
    let csv = py.allow_threads(|| -> PyResult<Vec<u8>> {
        let (catalog, summary) = read_catalog(&catalog_path, &catalog_opts)?;
        // As `--level`'s default: 1, or 0 in a one-level catalogue.
        let level = level.unwrap_or(summary.categories_per_level.len().clamp(1, 2) - 1);
        let plog = read_for(m, &path, &opts)?.log;
        let (baskets, _) = Baskets::from_log(&plog).map_err(err)?;
        let rules = baskets.rules(&rule_params);
        let aligned = catalog.align(m.items());
        let category: Vec<Option<u32>> =
            aligned.per_item.iter().map(|c| c.and_then(|c| catalog.category_of(c, level)).map(|g| g.0)).collect();
        if category.iter().all(Option::is_none) {
            return Err(err(format!(
                "no bought item has a category at level {level} in the catalogue; try a smaller level"
            )));
        }
        let filter = m.filter(&Filter::default()).map_err(err)?;
        let reference = m.interactions().decay_reference();
        let entries = CategoryEntries::learn(&plog, None, &category, reference, params.entry_window_days);
        let cs = CrossSell::new(m, &filter, &rules, category, &entries, params);
        let rows = OfferRows::new(&cs, m, &catalog, &aligned, top);
        let mut out = Vec::new();
        write_blocks(
            &cs_of,
            &rows.header(),
            &mut out,
            &|_| {},
            || rows.scratch(),
            |s, &c, buf, st| rows.append(s, c, buf, st),
        )
        .map_err(err)?;
        Ok(out)
    })?;
    Ok(PyBytes::new(py, &csv))
}

/// `cobuy up-sell --model`'s CSV (no value filters), as bytes: dearer items of the
/// categories each customer bought, with when to offer them, scored with `model`'s affinity
/// over the purchases at `path`, which it was fitted from. The settings are the up-sell
/// flags' (`min_step` is `--min-step`, and so on), with their defaults.
#[pyfunction]
#[pyo3(signature = (model, path, read, catalog, *, customers=None, top=5, level=None, grades=Vec::new(),
    min_step=0.01, window_days=365, min_path_count=3, pair_measure="excess", min_score=0.0, tiers=4,
    smoothing=10.0, price_cap=4.0, anchor_half_life=120.0, affinity_weight=0.65, tiers_only=false))]
#[allow(clippy::too_many_arguments)]
fn up_sell_csv<'py>(
    py: Python<'py>,
    model: &PyModel,
    path: PathBuf,
    read: ReadArgs<'_>,
    catalog: CatalogArgs<'_>,
    customers: Option<Vec<String>>,
    top: usize,
    level: Option<usize>,
    grades: Vec<String>,
    min_step: f64,
    window_days: u32,
    min_path_count: u32,
    pair_measure: &str,
    min_score: f64,
    tiers: u32,
    smoothing: f64,
    price_cap: f64,
    anchor_half_life: f64,
    affinity_weight: f64,
    tiers_only: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    PyModel::check_top(top)?;
    let pair_measure: PairMeasure = pair_measure.parse().map_err(|e: String| err(format!("pair_measure: {e}")))?;
    let params = UpsellParams {
        min_step,
        window_days,
        min_path_count,
        pair_measure,
        min_score,
        tiers,
        smoothing,
        price_cap,
        affinity_weight,
        anchor_half_life,
        tiers_only,
        ..UpsellParams::default()
    };
    // The library's message names the field: the keyword here.
    params.check().map_err(err)?;
    if catalog.price_col.as_ref().is_none_or(|c| c.is_none()) {
        return Err(err("up-sell needs item prices: the catalogue's price column (price_col)"));
    }
    if !grades.is_empty() && catalog.brand_col.as_ref().is_none_or(|c| c.is_none()) {
        return Err(err("grades needs the catalogue's brand column (brand_col)"));
    }
    let (opts, catalog_opts, catalog_path) = (read.options()?, catalog.options()?, catalog.path.clone());
    let cs_of = model.customers(customers)?;
    let m = model.model();
    let csv = py.allow_threads(|| -> PyResult<Vec<u8>> {
        let (catalog, _) = read_catalog(&catalog_path, &catalog_opts)?;
        let plog = read_for(m, &path, &opts)?.log;
        if !params.tiers_only && !plog.rows.iter().any(|r| r.time.is_some()) {
            return Err(err("the purchases have no times (time_col), so the order of upgrades cannot be learned; \
                 pass tiers_only=True to offer the next price tiers by popularity instead"));
        }
        let (facts, s) = ItemFacts::from_catalog(&catalog, &plog.items, level, &grades);
        if s.usable == 0 {
            return Err(err(format!(
                "no bought item has both a category{} and a positive price in the catalogue",
                level.map_or(String::new(), |l| format!(" at level {l}"))
            )));
        }
        let upgrades = UpgradeModel::learn(&plog, &vec![true; plog.rows.len()], &facts, &params);
        let filter = m.filter(&Filter::default()).map_err(err)?;
        let up = UpSell::new(&upgrades, m.scorer(&filter));
        let rows = UpsellRows::new(&up, m, &catalog, top);
        let mut out = Vec::new();
        write_blocks(
            &cs_of,
            UpsellRows::HEADER,
            &mut out,
            &|_| {},
            || rows.scratch(),
            |s, &c, buf, st| rows.append(s, c, buf, st),
        )
        .map_err(err)?;
        Ok(out)
    })?;
    Ok(PyBytes::new(py, &csv))
}

/// `cobuy customers`' CSV (no report, wallet or holdout), as bytes: per customer, the
/// summaries, P(alive), expected purchases, churn risk, expected spend, lifetime value, tier
/// and RFM segment, from the purchases at `path`. The settings are the flags', with their
/// defaults (`model="auto"`: the repeat-purchase model with the best likelihood).
#[pyfunction]
#[pyo3(signature = (path, read, *, model="auto", unit="week", horizon=None, discount=0.1, until=None,
    tier_by="value"))]
#[allow(clippy::too_many_arguments)]
fn customer_value_csv<'py>(
    py: Python<'py>,
    path: PathBuf,
    read: ReadArgs<'_>,
    model: &str,
    unit: &str,
    horizon: Option<f64>,
    discount: f64,
    until: Option<String>,
    tier_by: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let day = DAY as f64;
    let (unit_seconds, year) = match unit {
        "day" | "days" => (day, 365.0),
        "week" | "weeks" => (7.0 * day, 52.0),
        "month" | "months" => (30.4375 * day, 12.0),
        _ => return Err(err(format!("unit takes day, week or month, got {unit:?}"))),
    };
    let tier_by = match tier_by {
        "value" => TierBy::Value,
        "revenue" => TierBy::Revenue,
        other => return Err(err(format!("tier_by takes value or revenue, got {other:?}"))),
    };
    let mut score_opts =
        ScoreOptions { horizon: horizon.unwrap_or(year), unit_seconds, discount, tier_by, churn: Default::default() };
    score_opts.check().map_err(err)?;
    let model: Option<ValueModel> = match model {
        "auto" => None,
        m => Some(m.parse().map_err(|e: String| err(format!("model: {e}, or auto")))?),
    };
    let until_time = match &until {
        None => None,
        Some(s) => Some(time::parse(s).ok_or_else(|| err(format!("until: not a date or time: {s:?}")))?),
    };
    let unit_name = unit.trim_end_matches('s');
    let mut opts = read.options()?;
    let Some(time_col) = opts.columns.time.clone() else {
        return Err(err("customer value needs purchase times: give the time column (time_col)"));
    };
    // No item column: customer value does not need one, so the time column stands in.
    if read.item_col.as_ref().is_none_or(|c| c.is_none()) {
        opts.columns.item = time_col;
    }
    let csv = py.allow_threads(|| -> PyResult<Vec<u8>> {
        let (plog, _) = ingest::read_log(&path, &opts).map_err(err)?;
        let occasion = if opts.columns.basket.is_some() { Occasion::Basket } else { Occasion::Day };
        let summary_opts = SummaryOptions { occasion, unit_seconds, until: until_time };
        // As `cobuy customers`: the churn score chosen on an inner split of the purchases.
        let rows = value::summary::purchases(&plog);
        score_opts.churn =
            value::churn::choose(plog.customers.len(), &rows, plog.baskets.is_some(), &summary_opts, model).score;
        drop(rows);
        let (summaries, st) = value::summarize(&plog, &summary_opts).map_err(|e| match e {
            ValueError::NoPurchases if until.is_some() => {
                err(format!("no purchases up to {}", until.as_deref().unwrap_or("")))
            }
            e => err(e),
        })?;
        let ids = plog.customers;
        // As `cobuy customers`: a named model must fit (nobody buying twice leaves it out);
        // auto leaves it out when none fits.
        let d = Distinct::new(summaries.iter().map(|s| [s.x, s.t_x, s.t]).collect());
        let purchases = match model {
            Some(m) => match value::fit_model(m, &d) {
                Ok(f) => Some(f),
                Err(ValueError::NoRepeatPurchases) => None,
                Err(e) => return Err(err(e)),
            },
            None => value::fit_best(&d).ok().map(|(best, _)| best),
        };
        let spend = if st.has_amounts { value::fit_spend(&value::spend_pairs(&summaries)).ok() } else { None };
        let (scores, _) =
            value::score(&summaries, purchases.as_ref(), spend.as_ref(), st.has_amounts, &score_opts).map_err(err)?;
        let table = CustomerTable { ids: &ids, summaries: &summaries, scores: &scores, amounts: st.has_amounts };
        let order: Vec<usize> = (0..summaries.len()).collect();
        let mut out = Vec::new();
        write_blocks(
            &order,
            &table.header(occasion, unit_name),
            &mut out,
            &|_| {},
            || (),
            |_, &i, buf, st| {
                table.row(i, buf);
                st.customers += 1;
                st.rows += 1;
            },
        )
        .map_err(err)?;
        Ok(out)
    })?;
    Ok(PyBytes::new(py, &csv))
}
