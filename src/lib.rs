//! cobuy: purchase histories in, recommendations for every customer out.
//!
//! The pipeline runs one way, one module per stage:
//! [`ingest`] (file to validated rows) → [`ids`] (external ids to dense indices) →
//! [`matrix`] (merged customer x item CSR and its weighting) → [`algo`] (the recommenders:
//! item-kNN, user-kNN, EASE, ALS, popularity, buy-again, and the top-k kernel they share) →
//! [`recommend`] (ranked items per customer, one filter policy, reasons) → [`batch`] (every
//! customer, in parallel, streamed to a file). [`model`] holds a fitted model and saves and
//! loads it. Beside the pipeline: [`offers`] (the catalogue, association rules, cross-sell
//! and up-sell), [`value`] (what each customer is worth, who is leaving: repeat-purchase and
//! spend models, tiers, RFM segments) and [`eval`] (split a log, measure recommenders, report).
//!
//! Fit, recommend, save and load:
//!
//! ```
//! use cobuy::ingest::{read_purchases, Columns, IngestOptions};
//! use cobuy::model::{FitInfo, FitParams, Model};
//!
//! # let dir = std::env::temp_dir().join(format!("cobuy-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("purchases.csv");
//! std::fs::write(&path, "customer,item,qty\nann,tea,2\nann,cups,1\nbob,tea,1\nbob,cups,3\ncid,tea,1\n").unwrap();
//!
//! let mut cols = Columns::new("customer", "item");
//! cols.quantity = Some("qty".into());
//! let read = read_purchases(&path, &IngestOptions::new(cols)).unwrap();
//! assert_eq!(read.summary.rows_read, 5);
//!
//! let model = Model::fit(read.interactions, &FitParams::default(), FitInfo::default()).unwrap();
//! let cid = model.customer("cid").unwrap();
//! let recs = model.recommend(cid, 1);
//! assert_eq!(model.item_id(recs[0].item), "cups"); // bought with tea by ann and bob
//!
//! model.save(dir.join("model.cobuy")).unwrap();
//! let again = Model::load(dir.join("model.cobuy")).unwrap();
//! assert_eq!(again.recommend(cid, 1), recs);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![warn(missing_docs)]

pub mod algo;
pub mod batch;
pub mod eval;
pub mod generate;
pub mod ids;
pub mod ingest;
pub mod matrix;
pub mod model;
pub mod offers;
pub mod output;
pub mod recommend;
pub mod time;
pub mod value;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
