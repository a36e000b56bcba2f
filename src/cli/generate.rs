//! `cobuy generate`: a seeded synthetic purchase log out (CSV; gzip when the file name ends
//! in `.gz`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use cobuy::generate::GenerateParams;
use cobuy::output::AtomicFile;

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
    /// Purchase rows.
    #[arg(long)]
    purchases: u64,
    /// Random seed: same seed, same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `cobuy generate`.
pub fn run(cmd: &GenerateCmd, threads: usize, log: Log) -> Result<()> {
    set_threads(threads)?;
    let out = &cmd.out;
    let params = GenerateParams::new(cmd.customers, cmd.items, cmd.purchases, cmd.seed);
    params.check().map_err(bad)?;
    Files::new().output("purchases", Some(out)).check()?;
    create_parent(out)?;
    let start = Instant::now();
    let mut file = AtomicFile::create(out).with_context(|| format!("cannot create {}", out.display()))?;
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
