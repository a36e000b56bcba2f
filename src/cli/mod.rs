//! Subcommands too large for main.rs.

pub mod crosssell;
pub mod eval;
pub mod rules;
pub mod tune;
pub mod upsell;
