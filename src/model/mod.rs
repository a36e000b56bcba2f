//! A fitted model: everything needed to score, and its file.
//!
//! [`Model::fit`] takes merged [`Interactions`] and validated [`FitParams`], weights the
//! matrix and computes each item's neighbours. [`Model::save`] writes the file atomically;
//! [`Model::load`] reads it back, verifying checksums and every structural invariant, so a
//! damaged file is an error, never a panic or a wrong answer. The weighted matrix is not
//! stored: it is recomputed from the raw counts and the (resolved) parameters at load.

mod format;
mod selection;

use std::borrow::Cow;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use format::{FORMAT_VERSION, OLDEST_READABLE};
use format::{Sections, Writer, decode, decode_ids, decode_ptr, encode_ids, raw, raw_ptr};
pub use selection::{Selection, Tried, describe};

use crate::algo::als::{Als, AlsParams, AlsParts};
use crate::algo::baseline::{buyers, popularity_order, repeat_rates};
use crate::algo::ease::{Ease, EaseError, EaseParams, EaseParts, EaseSolution};
use crate::algo::similarity::{Measure, Neighbor, RowStats, SimilarityParams, TopK};
use crate::algo::user_knn::{CustomerKernel, UserKnn};
use crate::algo::{self, Algorithm, FitSpec, Latent, Recommender};
use crate::ids::{CustomerIdx, IdTable, ItemIdx};
use crate::ingest::IngestSummary;
use crate::matrix::{Csr, Interactions, MergeStats, RowSets, WeightStats, Weighting, check_rows, transpose};
use crate::output::AtomicFile;
use crate::recommend::{Filter, FoldIn, Recommendation, ResolvedFilter, Scorer};

/// Why a model file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be opened, read or written.
    #[error("{path}: {error}")]
    Io {
        /// The model file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file does not start with the model magic bytes.
    #[error("not a cobuy model file (wrong magic bytes)")]
    NotAModel,
    /// The file ends early.
    #[error("the model file is truncated: {found} bytes{}", expected.map(|e| format!(", expected {e}")).unwrap_or_default())]
    Truncated {
        /// Length recorded in the footer, when it survived.
        expected: Option<u64>,
        /// Actual length.
        found: u64,
    },
    /// A checksum or structural check failed.
    #[error("the model file is corrupt: {0}")]
    Corrupt(String),
    /// Written by a newer cobuy.
    #[error(
        "the model file has format version {found}, newer than this cobuy reads ({supported}); upgrade cobuy or refit"
    )]
    NewerFormat {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// Written by a cobuy too old for this build.
    #[error("the model file has format version {found}, older than this cobuy reads ({oldest}); refit the model")]
    OlderFormat {
        /// Version in the file.
        found: u32,
        /// Oldest version this build reads.
        oldest: u32,
    },
}

/// Why [`Model::fit_and_save`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FitSaveError {
    /// The fit failed (nothing was saved).
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The file could not be written (the destination is left as it was).
    #[error(transparent)]
    Save(#[from] ModelError),
}

/// A parameter outside its valid range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid parameter: {0}")]
pub struct ParamError(pub String);

/// Why a model could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// A parameter outside its valid range, or one the data cannot serve (a decaying
    /// weighting without purchase times).
    #[error(transparent)]
    Params(#[from] ParamError),
    /// EASE's dense matrix would not fit the memory budget, or could not be allocated:
    /// [`EaseError::TooLarge`] says how many items would.
    #[error("invalid parameter: {0}")]
    Ease(#[from] EaseError),
}

impl FitError {
    /// What is wrong, without the "invalid parameter" prefix.
    pub fn reason(&self) -> String {
        match self {
            FitError::Params(p) => p.0.clone(),
            FitError::Ease(e) => e.to_string(),
        }
    }
}

/// What to fit. Validate with [`FitParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitParams {
    /// The recommender.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Neighbours: kept per item (item-kNN) or used per customer (user-kNN).
    pub neighbors: usize,
    /// How raw counts become weights.
    pub weighting: Weighting,
    /// How neighbours are measured (item-kNN and user-kNN).
    #[serde(default)]
    pub similarity: SimilarityParams,
    /// Where bought items may be recommended (repeat purchases; `include_bought`, or a
    /// repurchase window), add the customer's own buy-again score, scaled so that their
    /// strongest repeat counts this many times their strongest collaborative score: the
    /// blend of a collaborative model with buy-again that repeat purchases need. The
    /// customer's own items are then offered as buy-again. 0: off. Every algorithm but
    /// popularity and buy-again.
    #[serde(default)]
    pub buy_again_weight: f32,
    /// ALS: factors, regularisation, confidence, iterations, seed.
    #[serde(default)]
    pub als: AlsParams,
    /// EASE: penalty, item limit, side.
    #[serde(default)]
    pub ease: EaseParams,
    /// Item-kNN: customers per summation block. Every sum the fit makes over customers is
    /// made within blocks of this many, then the blocks' sums in block order, so that a fit
    /// split over machines by blocks ([`crate::algo::partial`], Spark) writes the same bytes
    /// however the blocks are spread. `None`: one sum (the fastest kernel). Stored only when
    /// there is more than one block: a block holding every customer is the single sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_block: Option<usize>,
}

impl Default for FitParams {
    fn default() -> Self {
        FitParams {
            algorithm: Algorithm::ItemKnn,
            neighbors: 50,
            weighting: Weighting::default(),
            similarity: SimilarityParams::default(),
            buy_again_weight: 0.0,
            als: AlsParams::default(),
            ease: EaseParams::default(),
            sum_block: None,
        }
    }
}

impl FitParams {
    /// Checks every parameter once, before any kernel runs.
    pub fn check(&self) -> Result<(), ParamError> {
        if self.neighbors == 0 || self.neighbors > 100_000 {
            return Err(ParamError(format!("neighbors must be between 1 and 100000, got {}", self.neighbors)));
        }
        self.weighting.check().map_err(ParamError)?;
        if !(self.buy_again_weight.is_finite() && self.buy_again_weight >= 0.0) {
            return Err(ParamError(format!(
                "the buy-again weight must be a number >= 0, got {}",
                self.buy_again_weight
            )));
        }
        if self.algorithm == Algorithm::Als {
            self.als.check().map_err(|e| ParamError(format!("als: {e}")))?;
        }
        if self.algorithm == Algorithm::Ease {
            self.ease.check().map_err(ParamError)?;
        }
        if let Some(b) = self.sum_block {
            if b == 0 {
                return Err(ParamError("sum_block (--sum-block) must be at least 1 customer".into()));
            }
            if self.algorithm != Algorithm::ItemKnn {
                return Err(ParamError(format!(
                    "sum_block (--sum-block) applies to item-knn, not {}",
                    self.algorithm.name()
                )));
            }
            if self.weighting.half_life_days.is_some() {
                return Err(ParamError("sum_block (--sum-block) does not support time decay".into()));
            }
            algo::partial::check(&self.similarity).map_err(ParamError)?;
        }
        if matches!(self.similarity.measure, Measure::Rp3Beta { .. }) && self.algorithm != Algorithm::ItemKnn {
            return Err(ParamError(format!(
                "the rp3beta similarity is item-item: use it with item-knn, not {}",
                self.algorithm.name()
            )));
        }
        self.similarity.check().map_err(ParamError)
    }
}

/// How a model was fitted: shown by `cobuy inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitInfo {
    /// The purchases file, as given.
    pub source: Option<String>,
    /// What ingest read, kept and rejected.
    pub ingest: Option<IngestSummary>,
    /// What merging did.
    pub merge: MergeStats,
    /// What `algorithm = auto` tried and chose (absent when the algorithm was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    cobuy_version: String,
    algorithm: String,
    params: FitParams,
    info: FitInfo,
}

/// A fitted model.
#[derive(Debug, Clone)]
pub struct Model {
    data: Interactions,
    params: FitParams,
    info: FitInfo,
    stats: WeightStats,
    weighted: Csr,
    /// Item neighbours (item-kNN; empty otherwise).
    neighbors: Csr,
    buyers: Vec<u32>,
    popular: Vec<u32>,
    /// Per item, the smoothed share of its buyers who bought it more than once: how much a
    /// past purchase predicts another (buy-again).
    repeat: Vec<f32>,
    /// The dense parameters of a latent model.
    latent: Option<Latent>,
    /// The weighted matrix's transpose and row statistics (with undecayed lengths), for
    /// customer similarity; built on first use.
    by_item: std::sync::OnceLock<(Csr, RowStats)>,
    /// [`reference`], found once at fit and at load (it scans every purchase time: 7 ms on
    /// the bundled data), so that making a [`Model::scorer`] costs nothing.
    reference: Option<i64>,
    /// The format version of the file the model was read from; this build's when fitted.
    format_version: u32,
}

impl Model {
    /// Weights the matrix and, for item-kNN, finds every item's top-k neighbours (in
    /// parallel on the current rayon pool). A decaying weighting's reference time is fixed here,
    /// and so is ALS's relative regularization (on the weighted matrix).
    /// Buy-again's default weighting (counts, 60-day half-life) ranks by counts alone when the
    /// purchases have no times; any other decay without times is an error.
    pub fn fit(data: Interactions, params: &FitParams, info: FitInfo) -> Result<Model, FitError> {
        Model::fit_beside(data, params, info, |_, _, _| ()).map(|(model, ())| model)
    }

    /// [`Model::fit`], running `beside` on another thread while the kernel runs, with the
    /// purchases, the resolved parameters and the fit's record.
    fn fit_beside<T: Send>(
        data: Interactions,
        params: &FitParams,
        info: FitInfo,
        beside: impl FnOnce(&Interactions, &FitParams, &FitInfo) -> T + Send,
    ) -> Result<(Model, T), FitError> {
        params.check()?;
        let mut params = *params;
        let buy_again = Algorithm::BuyAgain;
        if params.algorithm == buy_again
            && params.weighting == buy_again.default_weighting(&params.similarity.measure)
            && data.last_time().is_none()
        {
            params.weighting.half_life_days = None;
        }
        params.weighting = params.weighting.resolve(&data).map_err(ParamError)?;
        let sum_block = params.sum_block;
        params.sum_block = sum_block.filter(|&b| b < data.customers().len());
        let stats = params.weighting.stats_blocked(&data, params.sum_block);
        let weighted = params.weighting.apply(&data, &stats);
        let undecayed = match params.weighting.undecayed() {
            Some(plain) if params.algorithm == Algorithm::ItemKnn => Some(plain.apply(&data, &stats)),
            _ => None,
        };
        if params.algorithm == Algorithm::Als {
            // Stored resolved: `inspect` and fold-in see the penalty the factors were fitted with.
            params.als = params.als.resolve(&weighted);
        }
        let spec = FitSpec {
            algorithm: params.algorithm,
            neighbors: params.neighbors,
            similarity: params.similarity,
            als: &params.als,
            ease: &params.ease,
            sum_block,
        };
        let (fitted, side) = std::thread::scope(|scope| {
            let side = scope.spawn(|| beside(&data, &params, &info));
            let fitted = algo::fit(&weighted, undecayed.as_ref(), spec);
            (fitted, side.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        let algo::Fitted { neighbors, latent } = fitted.map_err(|e| ParamError(e.to_string()))?;
        Ok((Model::assemble(data, params, info, stats, weighted, neighbors, latent), side))
    }

    fn assemble(
        data: Interactions,
        params: FitParams,
        info: FitInfo,
        stats: WeightStats,
        weighted: Csr,
        neighbors: Csr,
        latent: Option<Latent>,
    ) -> Model {
        let buyers = buyers(&weighted);
        let popular = popularity_order(&buyers);
        let reference = reference(&params, &data);
        let repeat = repeat_rates(&data, &buyers, reference);
        Model {
            data,
            params,
            info,
            stats,
            weighted,
            neighbors,
            buyers,
            popular,
            repeat,
            latent,
            by_item: Default::default(),
            reference,
            format_version: FORMAT_VERSION,
        }
    }

    /// The merged purchase data the model was fitted on.
    pub fn interactions(&self) -> &Interactions {
        &self.data
    }

    /// The parameters, with the reference time (and ALS's relative regularization) resolved.
    pub fn params(&self) -> &FitParams {
        &self.params
    }

    /// The format version of the file the model was read from (this build's,
    /// [`FORMAT_VERSION`], for a model fitted here): what `cobuy inspect` shows.
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// How the model was fitted.
    pub fn info(&self) -> &FitInfo {
        &self.info
    }

    /// The weighted customer x item matrix.
    pub fn weighted(&self) -> &Csr {
        &self.weighted
    }

    /// Each item's top-k neighbours (items x items, under the fitted similarity measure;
    /// empty unless the algorithm is item-kNN).
    pub fn neighbors(&self) -> &Csr {
        &self.neighbors
    }

    /// All bought items, most buyers first.
    pub fn popular(&self) -> &[u32] {
        &self.popular
    }

    /// Customer ids.
    pub fn customers(&self) -> &IdTable {
        self.data.customers()
    }

    /// Item ids.
    pub fn items(&self) -> &IdTable {
        self.data.items()
    }

    /// Buyers per item.
    pub fn buyers(&self) -> &[u32] {
        &self.buyers
    }

    fn customer_kernel(&self, params: SimilarityParams) -> CustomerKernel<'_> {
        let (by_item, stats) = self.by_item.get_or_init(|| {
            let stats = match self.params.weighting.undecayed() {
                Some(_) => {
                    RowStats::with_norms(&self.weighted, self.params.weighting.undecayed_norm2(&self.data, &self.stats))
                }
                None => RowStats::of(&self.weighted),
            };
            (transpose(&self.weighted), stats)
        });
        let kernel = TopK::new(&self.weighted, by_item, stats, params);
        CustomerKernel::new(kernel, &self.weighted, &self.data, &self.params.weighting, &self.stats)
    }

    /// Resolves a filter against this model (ids checked, windows fixed).
    pub fn filter(&self, filter: &Filter) -> Result<ResolvedFilter, ParamError> {
        filter.resolve(&self.data, self.params.algorithm).map_err(ParamError)
    }

    /// The scorer over this model's arrays, with a resolved filter.
    pub fn scorer<'a>(&'a self, filter: &'a ResolvedFilter) -> Scorer<'a> {
        let recommender = match (self.params.algorithm, &self.latent) {
            (Algorithm::ItemKnn, _) => Recommender::ItemKnn(&self.neighbors),
            (Algorithm::UserKnn, _) => Recommender::UserKnn(UserKnn {
                customers: self.customer_kernel(self.params.similarity),
                k: self.params.neighbors,
            }),
            (Algorithm::BuyAgain, _) => Recommender::BuyAgain(&self.repeat),
            (Algorithm::Als, Some(Latent::Als(als))) => Recommender::Als(als),
            (Algorithm::Ease, Some(Latent::Ease(ease))) => Recommender::Ease(ease),
            // A fitted or decoded latent model always holds its parameters.
            (Algorithm::Popularity | Algorithm::Als | Algorithm::Ease, _) => Recommender::Popularity,
        };
        Scorer {
            recommender,
            customers: self.data.customers().len(),
            items: self.weighted.cols(),
            popular: &self.popular,
            buyers: &self.buyers,
            repeat: &self.repeat,
            buy_again_weight: self.params.buy_again_weight,
            again_decay: self.again_decay(),
            weighted: &self.weighted,
            data: &self.data,
            filter,
        }
    }

    /// The buy-again blend's decay: buy-again's default half-life, counted back from
    /// [`reference`].
    fn again_decay(&self) -> Option<(f64, i64)> {
        let h = Algorithm::BuyAgain.default_weighting(&Measure::Cosine).half_life_days?;
        Some((h, self.reference?))
    }

    /// Top `n` items for a known customer, best first, under the default filter. For
    /// many customers, reuse a scratch through [`Model::scorer`] or use [`crate::batch`].
    pub fn recommend(&self, customer: CustomerIdx, n: usize) -> Vec<Recommendation> {
        let filter = ResolvedFilter::exclude_bought(self.items().len());
        let scorer = self.scorer(&filter);
        let mut out = Vec::with_capacity(n.min(self.items().len()));
        scorer.recommend(&scorer.query(customer), n, &mut scorer.scratch(), &mut out);
        out
    }

    /// Weighs the purchases of someone not in the model (fold-in) exactly as the model's
    /// own customers were weighed. `items` must be sorted and distinct; `times` aligned.
    pub fn fold_in(&self, items: Vec<u32>, counts: Vec<f32>, times: Option<Vec<i64>>, seen: Vec<u32>) -> FoldIn {
        let mut f = FoldIn { items, weights: Vec::new(), counts, times, seen, own: None };
        self.weigh_fold_in(&mut f);
        f
    }

    /// Weighs a fold-in row again after its purchases were refilled in place (a batch
    /// worker reuses one row's buffers for every customer).
    pub(crate) fn weigh_fold_in(&self, f: &mut FoldIn) {
        self.params.weighting.weigh_row(&self.stats, &f.items, &f.counts, f.times.as_deref(), &mut f.weights);
    }

    /// Top `n` items for someone not in the model, from the items they bought (fold-in;
    /// unknown item ids are ignored, repeated ones count once).
    pub fn recommend_for_items(&self, bought: &[&str], n: usize) -> Vec<Recommendation> {
        let mut items: Vec<u32> = bought.iter().filter_map(|id| self.items().index_of(id)).collect();
        items.sort_unstable();
        items.dedup();
        let counts = vec![1.0; items.len()];
        let f = self.fold_in(items, counts, None, Vec::new());
        let filter = ResolvedFilter::exclude_bought(self.items().len());
        let scorer = self.scorer(&filter);
        let mut out = Vec::with_capacity(n.min(self.items().len()));
        scorer.recommend(&f.query(), n, &mut scorer.scratch(), &mut out);
        out
    }

    /// The `k` customers most similar to `customer` under `params` (measured on the
    /// weighted matrix; under time decay, only the others' purchases decay: see
    /// [`Weighting`]), best first, with the number of items each shares.
    pub fn similar_customers(&self, customer: CustomerIdx, k: usize, params: SimilarityParams) -> Vec<Neighbor> {
        let kernel = self.similar_customers_kernel(params);
        let mut out = Vec::with_capacity(k.min(self.customers().len()));
        kernel.row(customer, k, &mut kernel.scratch(), &mut out);
        out
    }

    /// A similarity kernel over customers, for many queries (see [`crate::batch`]).
    pub(crate) fn similar_customers_kernel(&self, params: SimilarityParams) -> CustomerKernel<'_> {
        self.customer_kernel(params).counting_shared()
    }

    /// The index of a customer, by external id (`None` when the model does not know them).
    pub fn customer(&self, id: &str) -> Option<CustomerIdx> {
        self.data.customer(id)
    }

    /// The index of an item, by external id.
    pub fn item(&self, id: &str) -> Option<ItemIdx> {
        self.data.item(id)
    }

    /// The external id of a customer.
    pub fn customer_id(&self, customer: CustomerIdx) -> &str {
        self.customers().id(customer.0)
    }

    /// The external id of an item.
    pub fn item_id(&self, item: ItemIdx) -> &str {
        self.items().id(item.0)
    }

    /// Serialises the model (deterministic: same model, same bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (head, tail) = (head_sections(&self.data, &self.params, &self.info), tail_sections(self));
        let size = head.iter().chain(&tail).map(|(_, p)| 16 + p.len()).sum::<usize>();
        let out = Vec::with_capacity(format::HEADER_LEN + size + format::FOOTER_LEN);
        let written = write_sections(Writer::start(out, (head.len() + tail.len()) as u32), &head)
            .and_then(|w| write_sections(Ok(w), &tail))
            .and_then(Writer::finish);
        written.expect("writing to memory cannot fail")
    }

    /// Reads a model from bytes, verifying everything.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let s = Sections::parse(bytes)?;
        debug_assert!(s.version <= FORMAT_VERSION);
        let corrupt = ModelError::Corrupt;
        let meta: Meta = serde_json::from_slice(s.get(b"META")?).map_err(|e| corrupt(format!("section META: {e}")))?;
        meta.params.check().map_err(|e| corrupt(e.to_string()))?;
        let customers = decode_ids(b"CIDS", s.get(b"CIDS")?)?;
        let items = decode_ids(b"IIDS", s.get(b"IIDS")?)?;
        let last_time = s.optional(b"PTIM").map(|b| decode(b"PTIM", b)).transpose()?;
        let amount = s.optional(b"PAMT").map(|b| decode(b"PAMT", b)).transpose()?;
        let seen_only =
            RowSets { indptr: decode_ptr(b"SPTR", s.get(b"SPTR")?)?, indices: decode(b"SIDX", s.get(b"SIDX")?)? };
        let n_items = items.len();
        let data = Interactions::from_parts(
            customers,
            items,
            (
                decode_ptr(b"PPTR", s.get(b"PPTR")?)?,
                decode(b"PIDX", s.get(b"PIDX")?)?,
                decode(b"PVAL", s.get(b"PVAL")?)?,
            ),
            last_time,
            amount,
            seen_only,
        )
        .map_err(|e| corrupt(format!("purchases: {e}")))?;
        check_decoded(&data, meta.info.ingest.as_ref()).map_err(corrupt)?;
        let (nptr, nidx, nval): (Vec<usize>, Vec<u32>, Vec<f32>) = (
            decode_ptr(b"NPTR", s.get(b"NPTR")?)?,
            decode(b"NIDX", s.get(b"NIDX")?)?,
            decode(b"NVAL", s.get(b"NVAL")?)?,
        );
        check_rows(&nptr, &nidx, (n_items, n_items)).map_err(|e| corrupt(format!("neighbours: {e}")))?;
        if nval.len() != nidx.len() || nval.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(corrupt("neighbours: similarities are missing or not positive".into()));
        }
        if nptr.windows(2).enumerate().any(|(i, w)| nidx[w[0]..w[1]].binary_search(&(i as u32)).is_ok()) {
            return Err(corrupt("neighbours: an item is its own neighbour".into()));
        }
        let neighbors = Csr::new((n_items, n_items), nptr, nidx, nval);
        let latent = match meta.params.algorithm {
            Algorithm::Als => Some(Latent::Als(
                Als::from_parts(AlsParts {
                    params: meta.params.als,
                    users: data.customers().len(),
                    items: n_items,
                    user_factors: decode(b"AUSR", s.get(b"AUSR")?)?,
                    item_factors: decode(b"AITM", s.get(b"AITM")?)?,
                })
                .map_err(|e| corrupt(format!("ALS factors: {e}")))?,
            )),
            Algorithm::Ease => {
                let solution = match s.optional(b"EBIT") {
                    Some(b) => EaseSolution::Items { b: decode(b"EBIT", b)? },
                    None => EaseSolution::Customers {
                        m_upper: decode(b"EMUP", s.get(b"EMUP")?)?,
                        diag_p: decode(b"EDGP", s.get(b"EDGP")?)?,
                        indptr: decode_ptr(b"EXPT", s.get(b"EXPT")?)?,
                        indices: decode(b"EXIX", s.get(b"EXIX")?)?,
                        data: decode(b"EXVL", s.get(b"EXVL")?)?,
                    },
                };
                let kept = decode(b"EKEP", s.get(b"EKEP")?)?;
                let parts = EaseParts { params: meta.params.ease, items: n_items, kept, solution };
                Some(Latent::Ease(Ease::from_parts(parts).map_err(|e| corrupt(format!("EASE: {e}")))?))
            }
            _ => None,
        };
        let stats = meta.params.weighting.stats_blocked(&data, meta.params.sum_block);
        let weighted = meta.params.weighting.apply(&data, &stats);
        let mut model = Model::assemble(data, meta.params, meta.info, stats, weighted, neighbors, latent);
        model.format_version = s.version;
        Ok(model)
    }

    /// Weighs the purchases as [`Model::fit`] does with these parameters (item-kNN with
    /// `sum_block` given), for a fit whose neighbours are computed elsewhere by
    /// [`crate::algo::partial`] over blocks of [`Distributed::sum_block`] customers of
    /// [`Distributed::weighted`]; [`Distributed::with_neighbors`] then gives the model
    /// [`Model::fit`] would have, the same bytes.
    pub fn distributed(data: Interactions, params: &FitParams, info: FitInfo) -> Result<Distributed, FitError> {
        params.check()?;
        let Some(block) = params.sum_block.filter(|_| params.algorithm == Algorithm::ItemKnn) else {
            return Err(ParamError("a distributed fit is item-knn with sum_block given".into()).into());
        };
        let mut params = *params;
        params.weighting = params.weighting.resolve(&data).map_err(ParamError)?;
        params.sum_block = Some(block).filter(|&b| b < data.customers().len());
        let stats = params.weighting.stats_blocked(&data, params.sum_block);
        let weighted = params.weighting.apply(&data, &stats);
        Ok(Distributed { data, params, info, stats, weighted, block })
    }

    /// Writes the model atomically (temporary name in the same folder, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        let mut f = AtomicFile::create(path).map_err(io_error(path))?;
        self.write_rest(&mut f, None).and_then(|()| f.commit()).map_err(io_error(path))
    }

    /// Fits as [`Model::fit`] does and saves the model to `path` as [`Model::save`] does (the
    /// same bytes), but writes the sections the kernel does not compute (the purchases: most
    /// of an item-kNN file) on another thread while the kernel runs, and syncs them to the
    /// disk there, so that after the fit only the neighbours are left to write and sync.
    /// `fitted` runs between the fit and the rest of the save (to report the fit). The file
    /// appears complete or not at all, as with [`Model::save`].
    pub fn fit_and_save(
        data: Interactions,
        params: &FitParams,
        info: FitInfo,
        path: &Path,
        fitted: impl FnOnce(&Model),
    ) -> Result<Model, FitSaveError> {
        let mut f = AtomicFile::create(path).map_err(io_error(path))?;
        // Early only into a file that is replaced on commit (a failed fit leaves nothing
        // behind) and when the number of the fit's sections is known before it.
        let early = tail_len(params.algorithm).filter(|_| f.is_atomic());
        let file = &mut f;
        let (model, head) = Model::fit_beside(data, params, info, |data, params, info| {
            let tail = early?;
            lowest_priority();
            let head = head_sections(data, params, info);
            let written = write_sections(Writer::start(&mut *file, (head.len() + tail) as u32), &head)
                .map(Writer::pause)
                .and_then(|(file, n)| file.sync_data().map(|()| (n, tail)));
            Some(written)
        })?;
        fitted(&model);
        let head = head.transpose().map_err(io_error(path))?;
        model.write_rest(&mut f, head).and_then(|()| f.commit()).map_err(io_error(path))?;
        Ok(model)
    }

    /// Writes the model's file to `out`: all of it, or, after the head sections
    /// (`Some((bytes written, sections after them))`), the rest.
    fn write_rest(&self, out: &mut AtomicFile, head: Option<(u64, usize)>) -> std::io::Result<()> {
        let tail = tail_sections(self);
        let w = match head {
            Some((written, count)) => {
                // `tail_len` counts, before the fit, the sections the fit gives.
                assert_eq!(count, tail.len(), "the header announced the fit's sections");
                Ok(Writer::resume(out, written))
            }
            None => {
                let head = head_sections(&self.data, &self.params, &self.info);
                write_sections(Writer::start(out, (head.len() + tail.len()) as u32), &head)
            }
        };
        write_sections(w, &tail).and_then(Writer::finish).map(drop)
    }

    /// Reads and verifies a model file.
    pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        let path = path.as_ref();
        Model::from_bytes(&read_file(path).map_err(io_error(path))?)
    }
}

/// Gives the calling thread the lowest scheduling priority (on Linux a thread's nice value
/// is its own). The early save copies the purchases into the page cache, which on a virtual
/// machine can take a second of CPU; at equal priority that second is taken from the
/// kernel's threads on a machine with as many cores as they are. At the lowest, it uses what
/// the kernel leaves idle and finishes after it.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; failure leaves its priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
}

/// Purchases weighed for a fit whose neighbours come from elsewhere ([`Model::distributed`]).
#[derive(Debug)]
pub struct Distributed {
    data: Interactions,
    params: FitParams,
    info: FitInfo,
    stats: WeightStats,
    weighted: Csr,
    block: usize,
}

impl Distributed {
    /// The weighted customer x item matrix whose blocks of customers the map stage reads.
    pub fn weighted(&self) -> &Csr {
        &self.weighted
    }

    /// Customers per summation block, as given.
    pub fn sum_block(&self) -> usize {
        self.block
    }

    /// The resolved parameters (as the model will store them).
    pub fn params(&self) -> &FitParams {
        &self.params
    }

    /// The model, with the neighbours [`crate::algo::partial::assemble`] gave (items x
    /// items, as the fit's own). An error when their shape is not the catalogue's.
    pub fn with_neighbors(self, neighbors: Csr) -> Result<Model, FitError> {
        let items = self.weighted.cols();
        if neighbors.shape() != (items, items) {
            let (r, c) = neighbors.shape();
            return Err(ParamError(format!("the neighbours are {r} x {c}, not {items} x {items} items")).into());
        }
        let Distributed { data, params, info, stats, weighted, .. } = self;
        Ok(Model::assemble(data, params, info, stats, weighted, neighbors, None))
    }
}

/// A model file's section: its tag and its stored bytes.
type Section<'a> = (&'static [u8; 4], Cow<'a, [u8]>);

/// The sections that do not depend on the fit's kernel (parameters, fit record, purchases),
/// in file order: a file is these, then [`tail_sections`].
fn head_sections<'a>(d: &'a Interactions, params: &FitParams, info: &FitInfo) -> Vec<Section<'a>> {
    let meta = Meta {
        cobuy_version: env!("CARGO_PKG_VERSION").into(),
        algorithm: params.algorithm.name().into(),
        params: *params,
        info: info.clone(),
    };
    let mut s: Vec<Section<'a>> = vec![
        (b"META", Cow::Owned(serde_json::to_vec_pretty(&meta).expect("meta serialises"))),
        (b"CIDS", Cow::Owned(encode_ids(&d.customers))),
        (b"IIDS", Cow::Owned(encode_ids(&d.items))),
        (b"PPTR", ptr_bytes(d.counts.proper_indptr())),
        (b"PIDX", raw(d.counts.indices())),
        (b"PVAL", raw(d.counts.data())),
    ];
    if let Some(t) = &d.last_time {
        s.push((b"PTIM", raw(t)));
    }
    if let Some(a) = &d.amount {
        s.push((b"PAMT", raw(a)));
    }
    s.push((b"SPTR", raw_ptr(&d.seen_only.indptr)));
    s.push((b"SIDX", raw(&d.seen_only.indices)));
    s
}

/// The sections the fit computes, in file order ([`tail_len`] counts them before the fit).
fn tail_sections(m: &Model) -> Vec<Section<'_>> {
    let owned = |b: Cow<'_, [u8]>| Cow::Owned(b.into_owned());
    let mut s: Vec<Section<'_>> = vec![
        (b"NPTR", ptr_bytes(m.neighbors.proper_indptr())),
        (b"NIDX", raw(m.neighbors.indices())),
        (b"NVAL", raw(m.neighbors.data())),
    ];
    match &m.latent {
        Some(Latent::Als(als)) => {
            s.push((b"AUSR", raw(als.user_matrix())));
            s.push((b"AITM", raw(als.item_matrix())));
        }
        Some(Latent::Ease(ease)) => {
            let p = ease.to_parts();
            s.push((b"EKEP", owned(raw(&p.kept))));
            match &p.solution {
                EaseSolution::Items { b } => s.push((b"EBIT", owned(raw(b)))),
                EaseSolution::Customers { m_upper, diag_p, indptr, indices, data } => {
                    s.push((b"EMUP", owned(raw(m_upper))));
                    s.push((b"EDGP", owned(raw(diag_p))));
                    s.push((b"EXPT", owned(raw_ptr(indptr))));
                    s.push((b"EXIX", owned(raw(indices))));
                    s.push((b"EXVL", owned(raw(data))));
                }
            }
        }
        None => {}
    }
    s
}

/// How many sections [`tail_sections`] gives for a model of `algorithm`, when that is known
/// before the fit (EASE's depend on the solution it finds).
fn tail_len(algorithm: Algorithm) -> Option<usize> {
    match algorithm {
        Algorithm::Ease => None,
        Algorithm::Als => Some(5),
        _ => Some(3),
    }
}

/// Row pointers' stored bytes, borrowed where the pointers are.
fn ptr_bytes(ptr: Cow<'_, [usize]>) -> Cow<'_, [u8]> {
    match ptr {
        Cow::Borrowed(p) => raw_ptr(p),
        Cow::Owned(p) => Cow::Owned(raw_ptr(&p).into_owned()),
    }
}

fn write_sections<W: std::io::Write>(
    w: std::io::Result<Writer<W>>,
    sections: &[Section<'_>],
) -> std::io::Result<Writer<W>> {
    let mut w = w?;
    for (tag, payload) in sections {
        w.section(tag, payload)?;
    }
    Ok(w)
}

/// A file's bytes, as [`std::fs::read`] gives them; a regular file is read by all the
/// threads at once, in parts (the copies out of the page cache, and the page faults of the
/// buffer, were a third of loading a large model).
#[cfg(unix)]
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use rayon::prelude::*;
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    const PART: usize = 8 << 20;
    if !meta.is_file() || len < 2 * PART {
        return std::fs::read(path);
    }
    let mut bytes = vec![0u8; len];
    let read =
        bytes.par_chunks_mut(PART).enumerate().try_for_each(|(k, part)| file.read_exact_at(part, (k * PART) as u64));
    // A file that changed length while it was read is read again as a whole (the checks
    // then judge what it holds).
    let mut probe = [0u8; 1];
    match read.and_then(|()| file.read_at(&mut probe, len as u64)) {
        Ok(0) => Ok(bytes),
        Ok(_) => std::fs::read(path),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => std::fs::read(path),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ModelError + '_ {
    move |error| ModelError::Io { path: path.display().to_string(), error }
}

/// The value checks the decoded purchases need beyond their structure (which
/// [`Interactions::from_parts`] checks), so that a file whose checksums pass but whose
/// values no fit could produce is an error, never an overflow or a wrong answer: purchase
/// times within [`crate::time::MIN`]..=[`crate::time::MAX`] (or none), so that the ages
/// decay and repurchase windows compute never overflow; no pair both bought and seen
/// only; and an ingest summary whose buckets add up to the rows read (as `inspect` prints
/// them). Amounts are not checked: nothing scores with them, and ingest may store an
/// infinite one (a huge price).
fn check_decoded(data: &Interactions, ingest: Option<&IngestSummary>) -> Result<(), String> {
    let in_range = |t: i64| t == i64::MIN || (crate::time::MIN..=crate::time::MAX).contains(&t);
    if let Some(t) = data.last_time().and_then(|t| t.iter().find(|&&t| !in_range(t))) {
        return Err(format!("purchases: a purchase time ({t}) is outside the years 0000 to 9999"));
    }
    for c in (0..data.customers().len() as u32).map(CustomerIdx) {
        let (bought, seen) = (data.purchases(c).0, data.seen_only(c));
        if seen.iter().any(|j| bought.binary_search(j).is_ok()) {
            return Err("purchases: a customer-item pair is both bought and seen only".into());
        }
    }
    if let Some(s) = ingest {
        let buckets = [
            s.purchase_rows,
            s.return_rows_netted,
            s.return_rows_ignored,
            s.below_min_value_rows,
            s.guest_rows,
            s.zero_quantity_rows,
            s.rejected_rows,
        ];
        let sum = buckets.iter().try_fold(0u64, |a, &b| a.checked_add(b));
        let outliers = s.time_outliers.map(|o| o.after.checked_add(o.before));
        if sum != Some(s.rows_read) || outliers.is_some_and(|n| n.is_none_or(|n| n > s.purchase_rows)) {
            return Err("META: the ingest summary's row counts do not add up".into());
        }
    }
    Ok(())
}

/// The "now" of buy-again's recency and season: the model's decay reference, or the
/// data's when the model does not decay.
fn reference(params: &FitParams, data: &Interactions) -> Option<i64> {
    params.weighting.reference_time.or_else(|| data.decay_reference())
}
