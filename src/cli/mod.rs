//! Subcommands too large for main.rs.

pub mod eval;
pub mod tune;
