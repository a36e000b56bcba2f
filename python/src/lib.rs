//! `cobuy._cobuy`: the Python extension module, a thin layer over the cobuy library.
//!
//! Everything here converts arguments, calls the library and converts results; no
//! recommender logic lives here. Purchases are read by the library's own ingest (a path;
//! the Python package writes DataFrames, Arrow tables and scipy matrices to a temporary
//! Parquet file first), so rows, rejects, errors and model bytes are the CLI's. The
//! cobuy-style tables are the CSV bytes the CLI's batch writers produce, which the Python
//! package parses with pyarrow. The GIL is released whenever Rust works.

mod spark_fit;

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use cobuy::algo::Algorithm;
use cobuy::algo::similarity::SimilarityParams;
use cobuy::batch::{BatchOptions, write_recommendations, write_similar_customers};
use cobuy::eval::Target;
use cobuy::eval::select::{self, AutoParams, Budget, Pins};
use cobuy::ids::CustomerIdx;
use cobuy::ingest::{self, ColumnRef, Columns, IngestOptions};
use cobuy::model::{FitInfo, FitParams, Model, ModelError};
use cobuy::offers::rules::{Baskets, RuleParams, write_csv as write_rules};
use cobuy::recommend::{Filter, Recommendation, ResolvedFilter, Scorer, Scratch};

mod offers;

create_exception!(
    _cobuy,
    CobuyError,
    PyValueError,
    "Bad input (a file, a column, a parameter, an id, a model file): the message is the CLI's."
);

fn err(e: impl std::fmt::Display) -> PyErr {
    CobuyError::new_err(e.to_string())
}

/// The parameters the CLI resolves for `--algorithm NAME` (with `--neighbors` when given)
/// and no other fit flag: the algorithm's default weighting and neighbours.
fn params_for(algorithm: Algorithm, neighbors: Option<usize>) -> PyResult<FitParams> {
    let similarity = SimilarityParams::default();
    let params = FitParams {
        algorithm,
        neighbors: neighbors.unwrap_or(algorithm.default_neighbors()),
        weighting: algorithm.default_weighting(&similarity.measure),
        similarity,
        ..FitParams::default()
    };
    params.check().map_err(err)?;
    Ok(params)
}

/// A column argument: a header name, or a 1-based position given as an int.
fn column(value: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<ColumnRef>> {
    let Some(v) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    let text = match v.extract::<usize>() {
        Ok(n) => n.to_string(),
        Err(_) => {
            v.extract::<String>().map_err(|_| err(format!("{what}: give a column name or a 1-based position")))?
        }
    };
    text.parse::<ColumnRef>().map(Some).map_err(|e| err(format!("{what}: {e}")))
}

/// How to read the purchases: the CLI's input flags, as a dict with every key (the Python
/// package fills it). Columns are header names, or 1-based positions given as ints.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct ReadArgs<'py> {
    customer_col: Option<Bound<'py, PyAny>>,
    item_col: Option<Bound<'py, PyAny>>,
    quantity_col: Option<Bound<'py, PyAny>>,
    price_col: Option<Bound<'py, PyAny>>,
    amount_col: Option<Bound<'py, PyAny>>,
    time_col: Option<Bound<'py, PyAny>>,
    basket_col: Option<Bound<'py, PyAny>>,
    rating_col: Option<Bound<'py, PyAny>>,
    returns: String,
    min_value: Option<f64>,
    skip_invalid: bool,
    rejects: Option<PathBuf>,
}

impl ReadArgs<'_> {
    /// The checked ingest options (the customer and item columns found by name when not given).
    fn options(&self) -> PyResult<IngestOptions> {
        let columns = Columns {
            customer: column(self.customer_col.as_ref(), "customer_col")?.unwrap_or(ColumnRef::Detect),
            item: column(self.item_col.as_ref(), "item_col")?.unwrap_or(ColumnRef::Detect),
            quantity: column(self.quantity_col.as_ref(), "quantity_col")?,
            price: column(self.price_col.as_ref(), "price_col")?,
            amount: column(self.amount_col.as_ref(), "amount_col")?,
            time: column(self.time_col.as_ref(), "time_col")?,
            basket: column(self.basket_col.as_ref(), "basket_col")?,
            rating: column(self.rating_col.as_ref(), "rating_col")?,
        };
        let opts = IngestOptions {
            returns: self.returns.parse().map_err(|e| err(format!("returns: {e}")))?,
            min_value: self.min_value,
            skip_invalid: self.skip_invalid,
            rejects: self.rejects.clone(),
            ..IngestOptions::new(columns)
        };
        opts.check().map_err(err)?;
        Ok(opts)
    }
}

/// Reads purchases from `path` (CSV, TSV, gzip, Parquet file or folder) as `read` says and
/// fits a model as `cobuy fit` does (`algorithm="auto"`, the default, chooses on a
/// validation split of the data). `source` is recorded in the model as the CLI records the
/// purchases path.
#[pyfunction]
#[pyo3(signature = (path, read, *, source=None, algorithm="auto", neighbors=None))]
fn fit(
    py: Python<'_>,
    path: PathBuf,
    read: ReadArgs<'_>,
    source: Option<String>,
    algorithm: &str,
    neighbors: Option<usize>,
) -> PyResult<PyModel> {
    let opts = read.options()?;
    let fixed = match algorithm {
        "auto" => None,
        name => Some(
            name.parse::<Algorithm>()
                .map_err(|e| err(format!("algorithm: {}", e.replace("accepted: ", "accepted: auto, "))))?,
        ),
    };
    let model = py.allow_threads(|| -> PyResult<Model> {
        let info = |s: &ingest::IngestSummary| FitInfo {
            source: source.clone(),
            ingest: Some(s.clone()),
            merge: s.merge,
            ..FitInfo::default()
        };
        match fixed {
            Some(a) => {
                let params = params_for(a, neighbors)?;
                let read = ingest::read_purchases(&path, &opts).map_err(err)?;
                let info = info(&read.summary);
                Model::fit(read.interactions, &params, info).map_err(err)
            }
            None => {
                // As `cobuy fit --algorithm auto`: the other parameters checked as
                // item-kNN's, the search varying all but the neighbours when given.
                let auto = AutoParams {
                    base: params_for(Algorithm::ItemKnn, neighbors)?,
                    pins: Pins { neighbors: neighbors.is_some(), ..Pins::default() },
                    target: Target::NewItems,
                    max_customers: select::MAX_CUSTOMERS,
                    budget: Budget::default(),
                };
                let read =
                    ingest::read_log_sample_with_progress(&path, &opts, select::reading_sample(&auto), &mut |_| {})
                        .map_err(err)?;
                let (params, selection) = match read.sampled_from {
                    Some(n) => select::choose_sampled(&read.log, n, &auto, &mut |_| {}),
                    None => select::choose(&read.log, None, &auto, &mut |_| {}),
                }
                .map_err(err)?;
                let info = FitInfo { selection: Some(selection), ..info(&read.summary) };
                Model::fit(read.interactions, &params, info).map_err(err)
            }
        }
    })?;
    PyModel::new(model)
}

/// `cobuy rules`' CSV, as bytes: pairwise association rules of the baskets in the purchases
/// at `path` (customers stand for baskets without a basket column).
#[pyfunction]
#[pyo3(signature = (path, read, *, min_support=0.001, min_confidence=0.0, min_lift=0.0, min_count=1))]
fn rules_csv<'py>(
    py: Python<'py>,
    path: PathBuf,
    read: ReadArgs<'_>,
    min_support: f64,
    min_confidence: f64,
    min_lift: f64,
    min_count: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let params = RuleParams { min_support, min_confidence, min_lift, min_count };
    params.check().map_err(err)?;
    if min_count == 0 {
        return Err(err("min_count must be at least 1"));
    }
    let opts = read.options()?;
    let csv = py.allow_threads(|| -> PyResult<Vec<u8>> {
        let (plog, _) = ingest::read_log(&path, &opts).map_err(err)?;
        let (baskets, _) = Baskets::from_log(&plog).map_err(err)?;
        let mut out = Vec::new();
        write_rules(&mut out, &baskets, &baskets.rules(&params)).map_err(err)?;
        Ok(out)
    })?;
    Ok(PyBytes::new(py, &csv))
}

/// Loads a model file saved by `cobuy fit` (or [`PyModel::save`]).
#[pyfunction]
fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyModel> {
    let model = py.allow_threads(|| Model::load(&path)).map_err(|e| match e {
        // An I/O error names the file already; the others are named as `cobuy recommend` names them.
        ModelError::Io { .. } => err(e),
        other => err(format!("{}: {other}", path.display())),
    })?;
    PyModel::new(model)
}

/// A model from the bytes of a model file (shipped to Spark workers, say).
#[pyfunction]
fn from_bytes(py: Python<'_>, bytes: &[u8]) -> PyResult<PyModel> {
    PyModel::new(py.allow_threads(|| Model::from_bytes(bytes)).map_err(err)?)
}

/// A fitted model, the two filters a call may ask for, and a pool of scoring buffers (one
/// per thread that scores at once), so that a call for one customer allocates only its
/// result. A call makes its scorer: that costs nothing, as the model found its decay
/// reference when it was fitted or loaded.
#[pyclass(frozen, name = "Model", module = "cobuy._cobuy")]
struct PyModel {
    model: Model,
    /// The CLI's default: bought and seen items are never recommended.
    exclude_bought: ResolvedFilter,
    /// `--include-bought`.
    include_bought: ResolvedFilter,
    scratch: Mutex<Vec<Scratch>>,
}

impl PyModel {
    fn new(model: Model) -> PyResult<Self> {
        let exclude_bought = model.filter(&Filter::default()).map_err(err)?;
        let include_bought = model.filter(&Filter { include_bought: true, ..Filter::default() }).map_err(err)?;
        Ok(PyModel { model, exclude_bought, include_bought, scratch: Mutex::new(Vec::new()) })
    }

    fn model(&self) -> &Model {
        &self.model
    }

    fn filter(&self, include_bought: bool) -> &ResolvedFilter {
        if include_bought { &self.include_bought } else { &self.exclude_bought }
    }

    fn scorer(&self, include_bought: bool) -> Scorer<'_> {
        self.model.scorer(self.filter(include_bought))
    }

    fn customer(&self, id: &str) -> PyResult<CustomerIdx> {
        self.model().customer(id).ok_or_else(|| err(format!("customer {id:?} is not in the model")))
    }

    /// The customers to score: every one in the model's order, or these, in this order.
    fn customers(&self, ids: Option<Vec<String>>) -> PyResult<Vec<CustomerIdx>> {
        match ids {
            None => Ok((0..self.model().customers().len() as u32).map(CustomerIdx).collect()),
            Some(ids) => ids.iter().map(|id| self.customer(id)).collect(),
        }
    }

    fn check_top(top: usize) -> PyResult<()> {
        if top == 0 { Err(err("top must be at least 1")) } else { Ok(()) }
    }
}

#[pymethods]
impl PyModel {
    /// Top `n` items for one customer: (item indices into `item_ids()`, scores).
    #[pyo3(signature = (customer, n=10, include_bought=false))]
    fn recommend_one(
        &self,
        py: Python<'_>,
        customer: &str,
        n: usize,
        include_bought: bool,
    ) -> PyResult<(Vec<u32>, Vec<f32>)> {
        let c = self.customer(customer)?;
        Ok(py.allow_threads(|| {
            let scorer = self.scorer(include_bought);
            let mut scratch = self.scratch.lock().ok().and_then(|mut v| v.pop()).unwrap_or_else(|| scorer.scratch());
            let mut out: Vec<Recommendation> = Vec::with_capacity(n.min(self.model().items().len()));
            scorer.recommend(&scorer.query(c), n, &mut scratch, &mut out);
            if let Ok(mut pool) = self.scratch.lock() {
                pool.push(scratch);
            }
            (out.iter().map(|r| r.item.0).collect(), out.iter().map(|r| r.score).collect())
        }))
    }

    /// Seconds to score `customers` one after another in Rust alone, as `recommend_one`
    /// does (python/bench/overhead.py: a call's overhead is its time less this per customer).
    #[pyo3(signature = (customers, n=10))]
    fn _scoring_seconds(&self, py: Python<'_>, customers: Vec<String>, n: usize) -> PyResult<f64> {
        let cs = self.customers(Some(customers))?;
        Ok(py.allow_threads(|| {
            let scorer = self.scorer(false);
            let mut scratch = scorer.scratch();
            let mut out = Vec::with_capacity(n);
            let start = std::time::Instant::now();
            for &c in &cs {
                scorer.recommend(&scorer.query(c), n, &mut scratch, &mut out);
                std::hint::black_box(&out);
            }
            start.elapsed().as_secs_f64()
        }))
    }

    /// Top `n` items for each of `customers`, scored in parallel: (lengths as u32, item
    /// indices as u32, scores as f32), each the little-endian bytes of a flat array.
    #[pyo3(signature = (customers, n=10, include_bought=false))]
    fn recommend_many<'py>(
        &self,
        py: Python<'py>,
        customers: Vec<String>,
        n: usize,
        include_bought: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let cs = self.customers(Some(customers))?;
        let (lens, items, scores) = py.allow_threads(|| {
            let scorer = self.scorer(include_bought);
            let lists: Vec<Vec<Recommendation>> = cs
                .par_iter()
                .map_init(
                    || scorer.scratch(),
                    |s, &c| {
                        let mut out = Vec::with_capacity(n.min(self.model().items().len()));
                        scorer.recommend(&scorer.query(c), n, s, &mut out);
                        out
                    },
                )
                .collect();
            let mut lens = Vec::with_capacity(lists.len() * 4);
            let mut items = Vec::new();
            let mut scores = Vec::new();
            for l in &lists {
                lens.extend_from_slice(&(l.len() as u32).to_le_bytes());
                for r in l {
                    items.extend_from_slice(&r.item.0.to_le_bytes());
                    scores.extend_from_slice(&r.score.to_le_bytes());
                }
            }
            (lens, items, scores)
        });
        Ok((PyBytes::new(py, &lens), PyBytes::new(py, &items), PyBytes::new(py, &scores)))
    }

    /// `cobuy recommend`'s CSV for these customers (all when `None`), as bytes.
    #[pyo3(signature = (customers=None, top=10, explain=false, include_bought=false))]
    fn recommendations_csv<'py>(
        &self,
        py: Python<'py>,
        customers: Option<Vec<String>>,
        top: usize,
        explain: bool,
        include_bought: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Self::check_top(top)?;
        let cs = self.customers(customers)?;
        let csv = py.allow_threads(|| {
            let opts = BatchOptions { top, filter: self.filter(include_bought), explain, columns: None };
            let mut out = Vec::new();
            write_recommendations(self.model(), &cs, &opts, &mut out, &|_| {}).map(|_| out)
        });
        Ok(PyBytes::new(py, &csv.map_err(err)?))
    }

    /// The `k` customers most similar to one customer (cosine, as `cobuy
    /// similar-customers`): (customer indices into `customer_ids()`, similarities, shared
    /// items).
    #[pyo3(signature = (customer, k=10))]
    fn similar_one(&self, py: Python<'_>, customer: &str, k: usize) -> PyResult<(Vec<u32>, Vec<f32>, Vec<u32>)> {
        let c = self.customer(customer)?;
        let nb = py.allow_threads(|| self.model().similar_customers(c, k, SimilarityParams::default()));
        Ok((
            nb.iter().map(|n| n.index).collect(),
            nb.iter().map(|n| n.sim).collect(),
            nb.iter().map(|n| n.shared).collect(),
        ))
    }

    /// `cobuy similar-customers`'s CSV for these customers (all when `None`), as bytes.
    #[pyo3(signature = (customers=None, top=10))]
    fn similar_customers_csv<'py>(
        &self,
        py: Python<'py>,
        customers: Option<Vec<String>>,
        top: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Self::check_top(top)?;
        let cs = self.customers(customers)?;
        let csv = py.allow_threads(|| {
            let mut out = Vec::new();
            write_similar_customers(self.model(), &cs, top, SimilarityParams::default(), &mut out, &|_| {}).map(|_| out)
        });
        Ok(PyBytes::new(py, &csv.map_err(err)?))
    }

    /// Writes the model file `cobuy fit` writes (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.allow_threads(|| self.model().save(&path)).map_err(err)
    }

    /// The bytes of the model file.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.allow_threads(|| self.model().to_bytes());
        PyBytes::new(py, &bytes)
    }

    /// Customer ids, by index (natural order).
    fn customer_ids(&self) -> Vec<&str> {
        self.model().customers().iter().collect()
    }

    /// Item ids, by index (natural order).
    fn item_ids(&self) -> Vec<&str> {
        self.model().items().iter().collect()
    }

    /// The algorithm's name, such as `item-knn`.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.model().params().algorithm.name()
    }

    /// The fitted parameters as JSON (as `cobuy inspect` shows them).
    fn params_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model().params()).map_err(err)
    }

    /// What was read and chosen, as JSON.
    fn info_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model().info()).map_err(err)
    }

    /// One byte per id: 1 when the customer is in the model, else 0. The Spark scorer skips
    /// and counts unknown ids as `cobuy recommend --customers` does, without a Python set of
    /// every id in each worker.
    fn known<'py>(&self, py: Python<'py>, customers: Vec<String>) -> Bound<'py, PyBytes> {
        let mask: Vec<u8> =
            py.allow_threads(|| customers.iter().map(|id| u8::from(self.model().customer(id).is_some())).collect());
        PyBytes::new(py, &mask)
    }
}

#[pymodule]
fn _cobuy(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CobuyError", m.py().get_type::<CobuyError>())?;
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(rules_csv, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(from_bytes, m)?)?;
    offers::register(m)?;
    spark_fit::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
