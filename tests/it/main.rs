//! The integration tests, as one crate: each file here is a module, so the test build
//! links one binary against the library instead of one per file. Put new test files here
//! and declare them below, never directly in `tests/` (each file there is its own crate).
//!
//! All modules share one process. `ease_oracle` installs this binary's global allocator
//! (it records the largest allocation per thread, so other tests do not disturb it); no
//! test sets environment variables, the working directory or rayon's global pool.
//!
//! Proptest keeps each module's regression seeds in `tests/proptest-regressions/<module>.txt`
//! (its default path for a source file under a folder holding `main.rs`).
//!
//! Run one module: `cargo test --release --test it knn_oracle::`.

mod common;

mod als;
mod architecture;
mod auto;
mod batch_memory;
mod blend;
mod catalog;
mod cli_crosssell;
mod cli_customers;
mod cli_eval;
mod cli_ingest;
mod cli_recommend;
mod cli_upsell;
mod crosssell_formula;
mod decay;
mod determinism;
mod ease_oracle;
mod eval_deny;
mod eval_metrics;
mod eval_new_categories;
mod eval_split;
mod explain;
mod foldin;
mod generator;
mod help;
mod hostile;
mod hostile_eval;
mod ingest_chunks;
mod ingest_summary;
mod knn_oracle;
mod merge_oracle;
mod model_file;
mod model_values;
mod output_paths;
#[cfg(feature = "parquet")]
mod parquet;
mod quoting;
mod readme;
mod rules;
mod rules_oracle;
mod sum_block;
mod upsell;
mod value_cdnow;
mod value_churn;
mod value_holdout;
mod value_models;
mod value_offers;
mod value_oracle;
