//! The `cobuy` command line: parse, dispatch, and map errors to exit codes.
//!
//! The commands are in `cli/` (one file each; the shared flag groups in `cli/args.rs`).
//! Exit codes: 0 ok, 2 bad input or usage, 1 internal error.

use std::io::IsTerminal;
use std::process::ExitCode;

use cobuy::ingest::IngestError;
use cobuy::model::{FitError, ModelError, ParamError};
use cobuy::offers::catalog::CatalogError;

mod cli;

fn main() -> ExitCode {
    let cli = cli::parse();
    let log = cli::Log { quiet: cli.quiet, tty: std::io::stderr().is_terminal() };
    match cli::run(cli, log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cobuy: error: {e:#}");
            ExitCode::from(if is_user_error(&e) { 2 } else { 1 })
        }
    }
}

/// Whether an error is the user's (bad input or usage: exit code 2) rather than the
/// machine's (a file that cannot be read or written, an internal error: exit code 1).
fn is_user_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<cli::BadInput>().is_some()
        || e.downcast_ref::<IngestError>().is_some_and(|i| !i.is_io())
        || e.downcast_ref::<ParamError>().is_some()
        || e.downcast_ref::<FitError>().is_some()
        || e.downcast_ref::<CatalogError>().is_some_and(|c| !c.is_io())
        || e.downcast_ref::<ModelError>().is_some_and(|m| !matches!(m, ModelError::Io { .. }))
}
