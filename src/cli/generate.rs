//! `cobuy generate`: a seeded synthetic purchase log out (CSV; gzip when the file name ends
//! in `.gz`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use cobuy::generate::GenerateParams;
use cobuy::output::TableFile;

use super::args::set_threads;
use super::paths::Files;
use super::{Log, bad, create_parent};

#[derive(Args, Clone, Debug)]
pub struct GenerateCmd {
    /// Customers.
    #[arg(long)]
    customers: u64,
    /// Items.
    #[arg(long)]
    items: u64,
    /// Purchase rows to write (`--purchases` in older versions: every other command's
    /// `--purchases` is a file).
    #[arg(long = "rows", alias = "purchases")]
    rows: u64,
    /// Random seed: same seed, same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

/// Customers per block of the generator (`cobuy::generate`): a block's rows are held in
/// memory as text before they are written.
const BLOCK: u64 = 8192;
/// Bytes of CSV per generated row, at most (ids, basket, price and timestamp).
const ROW_BYTES: u64 = 64;
/// The most memory one block of rows may take on average.
const MAX_BLOCK_BYTES: u64 = 4 << 30;

/// Refuses, before any allocation, sizes whose blocks of rows would not fit in memory:
/// `purchases / customers` rows per customer, times the customers of a block.
fn check_size(cmd: &GenerateCmd) -> Result<()> {
    let block = u128::from(cmd.customers.min(BLOCK));
    let bytes = u128::from(cmd.rows) * block * u128::from(ROW_BYTES) / u128::from(cmd.customers.max(1));
    if bytes > u128::from(MAX_BLOCK_BYTES) {
        let most = u128::from(MAX_BLOCK_BYTES) * u128::from(cmd.customers) / (block * u128::from(ROW_BYTES));
        return Err(bad(format!(
            "--rows {} for {} customers: each block of {block} customers would hold about {} GiB of rows in memory \
             (the limit is {} GiB); give at most {most} rows, or more customers",
            cmd.rows,
            cmd.customers,
            bytes >> 30,
            MAX_BLOCK_BYTES >> 30
        )));
    }
    Ok(())
}

/// Runs `cobuy generate`.
pub fn run(cmd: &GenerateCmd, threads: usize, log: Log) -> Result<()> {
    set_threads(threads)?;
    let out = &cmd.out;
    let params = GenerateParams::new(cmd.customers, cmd.items, cmd.rows, cmd.seed);
    params.check().map_err(bad)?;
    check_size(cmd)?;
    Files::new().output("purchases", Some(out)).check()?;
    create_parent(out)?;
    let start = Instant::now();
    let mut file = TableFile::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let rows = if out.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(&mut file, flate2::Compression::fast());
        cobuy::generate::generate(&params, &mut gz).and_then(|rows| gz.finish().map(|_| rows))
    } else {
        cobuy::generate::generate(&params, &mut file)
    }
    .with_context(|| format!("cannot write {}", out.display()))?;
    file.commit().with_context(|| format!("cannot write {}", out.display()))?;
    log.info(format!("wrote {rows} purchase rows to {} in {:.1}s", out.display(), start.elapsed().as_secs_f64()));
    Ok(())
}
