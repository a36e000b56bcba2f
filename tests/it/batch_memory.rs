//! The batch pipeline (`batch::write_blocks`, behind every batch command): memory bounded
//! by `BLOCKS_IN_FLIGHT` formatted blocks whatever the number of customers, and rows in
//! list order whatever the number of threads.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use cobuy::batch::{BLOCK, BLOCKS_IN_FLIGHT, BatchStats, write_blocks};

/// Bytes of every row in the bound test: seven digits and a newline.
const ROW: usize = 8;

/// A writer slower than the workers: it sleeps on every write, keeps what it was given,
/// and counts the rows written so far (the header left aside).
struct SlowWriter<'a> {
    header: usize,
    bytes: Vec<u8>,
    rows_written: &'a AtomicUsize,
}

impl Write for SlowWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::thread::sleep(Duration::from_millis(1));
        self.bytes.extend_from_slice(buf);
        self.rows_written.store(self.bytes.len().saturating_sub(self.header) / ROW, SeqCst);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// With a slow writer the workers run ahead until the pipeline stops them. A block is
/// alive from its first row's formatting until the writer has written its last row, so
/// when the workers start block `b` while `d` blocks are written whole, blocks `d..=b`
/// are alive. Their number must never pass `BLOCKS_IN_FLIGHT`: a channel one block
/// longer, or unbounded, fails here (the workers would format all 12 blocks at once).
#[test]
fn formatted_blocks_alive_at_once_never_pass_blocks_in_flight() {
    let blocks = 3 * BLOCKS_IN_FLIGHT;
    let items: Vec<u32> = (0..(blocks * BLOCK) as u32).collect();
    let header = "n\n";
    let rows_written = AtomicUsize::new(0);
    let most_alive = AtomicUsize::new(0);
    let mut out = SlowWriter { header: header.len(), bytes: Vec::new(), rows_written: &rows_written };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let stats = pool
        .install(|| {
            write_blocks(
                &items,
                header,
                &mut out,
                &|_| {},
                || (),
                |(), &x, buf, st| {
                    let block = x as usize / BLOCK;
                    let written_whole = rows_written.load(SeqCst) / BLOCK;
                    most_alive.fetch_max(block + 1 - written_whole, SeqCst);
                    writeln!(buf, "{x:07}").unwrap();
                    st.customers += 1;
                    st.rows += 1;
                },
            )
        })
        .unwrap();
    let most = most_alive.load(SeqCst);
    assert!(most <= BLOCKS_IN_FLIGHT, "{most} formatted blocks alive at once; the bound is {BLOCKS_IN_FLIGHT}");
    // Every row arrived, in order, once.
    let want: String = std::iter::once(header.to_string()).chain(items.iter().map(|x| format!("{x:07}\n"))).collect();
    assert!(out.bytes == want.as_bytes(), "the rows are not the items in order");
    assert_eq!(stats.customers, items.len() as u64);
}

/// Rows come out in list order with the same bytes and counts for 1, 2 and 4 threads,
/// over blocks that end mid-task, with rows of uneven length and cost (so that tasks
/// finish out of order): checked against the rows formatted one item after another.
#[test]
fn rows_come_out_in_list_order_for_any_thread_count() {
    let items: Vec<u64> = (0..(2 * BLOCK + 77) as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40).collect();
    // Item x gets x % 4 rows, built in a per-worker buffer that must be cleared between
    // items.
    let rows_of = |x: u64| (0..x % 4).map(move |r| format!("{x},{r},{}\n", "y".repeat((x % 7) as usize)));
    let mut want = b"id,row,pad\n".to_vec();
    let mut want_stats = BatchStats::default();
    for &x in &items {
        for row in rows_of(x) {
            want.extend_from_slice(row.as_bytes());
            want_stats.rows += 1;
        }
        want_stats.customers += 1;
        want_stats.short_customers += u64::from(x % 4 < 3);
    }
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut out = Vec::new();
        let done = AtomicUsize::new(0);
        let stats = pool
            .install(|| {
                write_blocks(
                    &items,
                    "id,row,pad\n",
                    &mut out,
                    &|n| done.store(n as usize, SeqCst),
                    String::new,
                    |scratch, &x, buf, st| {
                        // Uneven work: some items spin a little.
                        let spin = (0..(x % 13) * 200).fold(x, |a, b| a.rotate_left(7) ^ b);
                        std::hint::black_box(spin);
                        scratch.clear();
                        rows_of(x).for_each(|row| scratch.push_str(&row));
                        buf.extend_from_slice(scratch.as_bytes());
                        st.customers += 1;
                        st.rows += x % 4;
                        st.short_customers += u64::from(x % 4 < 3);
                    },
                )
            })
            .unwrap();
        assert!(out == want, "{threads} threads: the rows differ from the serial order");
        assert_eq!(stats, want_stats, "{threads} threads");
        assert_eq!(done.load(SeqCst), items.len(), "{threads} threads: progress ends at every item");
    }
}
