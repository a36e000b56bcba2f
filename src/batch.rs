//! Many customers in, one CSV out: every customer scored in parallel, in blocks, with
//! results streamed to a writer thread.
//!
//! Memory stays flat whatever the number of customers: at most [`BLOCKS_IN_FLIGHT`]
//! blocks of formatted rows exist at once. Rows come out in the order of the customer
//! list, and each customer's rows depend only on the model, so the file is byte-identical
//! for any number of threads.

use std::io::{self, Write};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use serde::Serialize;

use crate::ids::CustomerIdx;
use crate::model::Model;
use crate::recommend::{Scratch, Source};

/// Customers per block handed to the worker pool.
pub const BLOCK: usize = 4096;
/// Blocks formatted but not yet written, at most.
pub const BLOCKS_IN_FLIGHT: usize = 4;
/// Customers per parallel task inside a block.
const TASK: usize = 64;

/// The header of a recommendations file.
pub const HEADER: &str = "customer_id,rank,item_id,score,source\n";

/// What a batch run wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// Customers scored.
    pub customers: u64,
    /// Recommendation rows written.
    pub rows: u64,
    /// Rows filled in from popularity.
    pub popular_rows: u64,
    /// Customers who got fewer than the asked number (they have bought or seen almost
    /// everything bought by anyone).
    pub short_customers: u64,
}

/// Writes `id` as a CSV field, quoted only when it must be.
pub fn write_field(out: &mut Vec<u8>, id: &str) {
    if id.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) || id.starts_with(' ') || id.ends_with(' ') {
        out.push(b'"');
        out.extend_from_slice(id.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(id.as_bytes());
    }
}

/// Scores `customers` (in this order) and writes the header and `top` rows per customer
/// to `out`. `progress` gets the number of customers done after each block.
pub fn write_recommendations<W: Write + Send>(
    model: &Model,
    customers: &[CustomerIdx],
    top: usize,
    out: &mut W,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<BatchStats> {
    out.write_all(HEADER.as_bytes())?;
    let scorer = model.scorer();
    let items = model.items().len();
    let (tx, rx) = sync_channel::<Vec<Vec<u8>>>(BLOCKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> io::Result<()> {
            for block in rx {
                for part in block {
                    out.write_all(&part)?;
                }
            }
            Ok(())
        });
        let mut stats = BatchStats::default();
        for block in customers.chunks(BLOCK) {
            let parts: Vec<(Vec<u8>, BatchStats)> = block
                .par_chunks(TASK)
                .map_init(
                    || (Scratch::new(items), Vec::with_capacity(top)),
                    |(scratch, recs), chunk| {
                        let mut buf = Vec::with_capacity(chunk.len() * top * 32);
                        let mut st = BatchStats::default();
                        for &c in chunk {
                            scorer.recommend(c, top, scratch, recs);
                            st.customers += 1;
                            st.rows += recs.len() as u64;
                            st.short_customers += u64::from(recs.len() < top);
                            let id = model.customers().id(c.0);
                            for (rank, r) in recs.iter().enumerate() {
                                st.popular_rows += u64::from(r.source == Source::Popular);
                                write_field(&mut buf, id);
                                buf.extend_from_slice(format!(",{},", rank + 1).as_bytes());
                                write_field(&mut buf, model.item_id(r.item));
                                buf.extend_from_slice(format!(",{},{}\n", r.score, r.source.as_str()).as_bytes());
                            }
                        }
                        (buf, st)
                    },
                )
                .collect();
            let mut bufs = Vec::with_capacity(parts.len());
            for (buf, st) in parts {
                stats.customers += st.customers;
                stats.rows += st.rows;
                stats.popular_rows += st.popular_rows;
                stats.short_customers += st.short_customers;
                bufs.push(buf);
            }
            if tx.send(bufs).is_err() {
                break; // the writer failed; its error is returned below
            }
            progress(stats.customers);
        }
        drop(tx);
        writer.join().map_err(|_| io::Error::other("the writer thread panicked"))??;
        Ok(stats)
    })
}
