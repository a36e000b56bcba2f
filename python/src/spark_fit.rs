//! The Spark fit's stages for Python (`cobuy._spark_fit` drives them): conversions only.
//!
//! The driver reads the purchases and weighs them (`spark_prepare`: the CLI's reader and
//! `Model::distributed`), cuts the weighted rows into blocks of `sum_block` customers
//! (`SparkFit.block_rows`); executors map blocks (`spark_map`) and reduce item blocks
//! (`spark_reduce`); the driver combines the item statistics (`spark_combine`) and writes
//! the model from the item blocks' lists (`SparkFit.save`). Everything that crosses
//! machines is the documented bytes of `cobuy::algo::partial`. The GIL is released while
//! Rust works.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use cobuy::algo::Algorithm;
use cobuy::algo::partial::{self, CustomerBlock, ItemStats, NeighborBlock};
use cobuy::algo::similarity::SimilarityParams;
use cobuy::ingest;
use cobuy::model::{Distributed, FitInfo, FitParams, Model};

use crate::{ReadArgs, err};

/// A distributed item-kNN fit on the driver: the weighed purchases, until `save`.
#[pyclass(module = "cobuy._cobuy")]
struct SparkFit {
    dist: Mutex<Option<Distributed>>,
    customers: usize,
    items: usize,
    sum_block: usize,
    params: String,
}

impl SparkFit {
    fn with<T>(&self, f: impl FnOnce(&Distributed) -> PyResult<T>) -> PyResult<T> {
        let d = self.dist.lock().map_err(|_| err("the fit was interrupted"))?;
        f(d.as_ref().ok_or_else(|| err("the model was already saved"))?)
    }
}

#[pymethods]
impl SparkFit {
    /// Customer blocks: `ceil(customers / sum_block)`.
    fn blocks(&self) -> usize {
        self.customers.div_ceil(self.sum_block)
    }

    /// Items in the catalogue.
    fn items(&self) -> usize {
        self.items
    }

    /// The fit parameters as JSON (what `spark_reduce` and `spark_map` read).
    fn params_json(&self) -> String {
        self.params.clone()
    }

    /// Customer block `c`'s weighted rows (`CBR1` bytes): the map stage's input.
    fn block_rows<'py>(&self, py: Python<'py>, c: usize) -> PyResult<Bound<'py, PyBytes>> {
        if c >= self.blocks() {
            return Err(err(format!("customer block {c}: there are {} blocks", self.blocks())));
        }
        let (b, n) = (self.sum_block, self.customers);
        let bytes = self.with(|d| {
            Ok(py.allow_threads(|| CustomerBlock::encode(d.weighted(), c as u32, c * b..((c + 1) * b).min(n))))
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Writes the model file `cobuy fit` writes, from every item block's lists (`CBN1`
    /// bytes) in item-block order.
    fn save(&self, py: Python<'_>, blocks: Vec<Vec<u8>>, path: PathBuf) -> PyResult<()> {
        let dist = self.dist.lock().map_err(|_| err("the fit was interrupted"))?.take();
        let dist = dist.ok_or_else(|| err("the model was already saved"))?;
        py.allow_threads(|| {
            let blocks =
                blocks.iter().map(|b| NeighborBlock::from_bytes(b)).collect::<Result<Vec<_>, _>>().map_err(err)?;
            let model = dist.with_neighbors(partial::assemble(&blocks).map_err(err)?).map_err(err)?;
            model.save(&path).map_err(err)
        })
    }
}

/// Reads purchases as `cobuy fit` does and weighs them for item-kNN over blocks of
/// `sum_block` customers (`similarity`: the JSON of `SimilarityParams`, default cosine).
#[pyfunction]
#[pyo3(signature = (path, read, *, sum_block, source=None, neighbors=None, similarity=None))]
fn spark_prepare(
    py: Python<'_>,
    path: PathBuf,
    read: ReadArgs<'_>,
    sum_block: usize,
    source: Option<String>,
    neighbors: Option<usize>,
    similarity: Option<String>,
) -> PyResult<SparkFit> {
    let opts = read.options()?;
    let similarity: SimilarityParams = match similarity {
        Some(s) => serde_json::from_str(&s).map_err(|e| err(format!("similarity: {e}")))?,
        None => SimilarityParams::default(),
    };
    let algorithm = Algorithm::ItemKnn;
    let params = FitParams {
        algorithm,
        neighbors: neighbors.unwrap_or(algorithm.default_neighbors()),
        weighting: algorithm.default_weighting(&similarity.measure),
        similarity,
        sum_block: Some(sum_block),
        ..FitParams::default()
    };
    params.check().map_err(err)?;
    py.allow_threads(|| {
        let read = ingest::read_purchases(&path, &opts).map_err(err)?;
        let s = &read.summary;
        let info = FitInfo { source, ingest: Some(s.clone()), merge: s.merge, ..FitInfo::default() };
        let dist = Model::distributed(read.interactions, &params, info).map_err(err)?;
        let (customers, items) = dist.weighted().shape();
        let params = serde_json::to_string(dist.params()).map_err(err)?;
        Ok(SparkFit { dist: Mutex::new(Some(dist)), customers, items, sum_block, params })
    })
}

fn fit_params(json: &str) -> PyResult<FitParams> {
    let p: FitParams = serde_json::from_str(json).map_err(|e| err(format!("params: {e}")))?;
    p.check().map_err(err)?;
    Ok(p)
}

/// A block's item statistics and its pairs per item block, as bytes.
type Mapped<'py> = (Bound<'py, PyBytes>, Vec<(u32, Bound<'py, PyBytes>)>);

/// The map stage for one customer block (`CBR1` bytes of a catalogue of `items`): its item
/// statistics (`CBS1`) and, for every item block of `item_block` items with pairs, the
/// block's index and its pairs (`CBP1`).
#[pyfunction]
fn spark_map<'py>(
    py: Python<'py>,
    items: usize,
    rows: Vec<u8>,
    item_block: usize,
    params: &str,
) -> PyResult<Mapped<'py>> {
    let shared = partial::needs_shared(&fit_params(params)?.similarity);
    let (stats, pairs) = py.allow_threads(|| -> PyResult<_> {
        let block = CustomerBlock::from_bytes(items, &rows).map_err(err)?;
        let (stats, pairs) = block.map(item_block, shared);
        Ok((stats.to_bytes(), pairs.into_iter().map(|(b, p)| (b, p.to_bytes())).collect::<Vec<_>>()))
    })?;
    Ok((PyBytes::new(py, &stats), pairs.into_iter().map(|(b, p)| (b, PyBytes::new(py, &p))).collect()))
}

/// The customer blocks' item statistics (`CBS1`, in block order) combined (`CBI1`).
#[pyfunction]
fn spark_combine<'py>(py: Python<'py>, items: usize, parts: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = py.allow_threads(|| {
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        ItemStats::combine_bytes(items, &parts).map(|s| s.to_bytes()).map_err(err)
    })?;
    Ok(PyBytes::new(py, &bytes))
}

/// The reduce stage for item block `b` (of `item_block` items): its pairs (`CBP1`, in
/// customer-block order) and the combined statistics (`CBI1`) in, its lists (`CBN1`) out.
#[pyfunction]
fn spark_reduce<'py>(
    py: Python<'py>,
    b: usize,
    item_block: usize,
    parts: Vec<Vec<u8>>,
    stats: Vec<u8>,
    params: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let p = fit_params(params)?;
    let bytes = py.allow_threads(|| {
        let stats = ItemStats::from_bytes(&stats).map_err(err)?;
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        partial::reduce_bytes(b, item_block, &parts, &stats, p.neighbors, &p.similarity)
            .map(|n| n.to_bytes())
            .map_err(err)
    })?;
    Ok(PyBytes::new(py, &bytes))
}

/// Adds the Spark fit's class and functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SparkFit>()?;
    m.add_function(wrap_pyfunction!(spark_prepare, m)?)?;
    m.add_function(wrap_pyfunction!(spark_map, m)?)?;
    m.add_function(wrap_pyfunction!(spark_combine, m)?)?;
    m.add_function(wrap_pyfunction!(spark_reduce, m)?)?;
    Ok(())
}
