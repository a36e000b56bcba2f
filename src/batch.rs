//! Many customers in, one CSV out: every customer scored in parallel, in blocks, with
//! results streamed to a writer thread.
//!
//! Memory stays flat whatever the number of customers: at most [`BLOCKS_IN_FLIGHT`]
//! blocks of formatted rows exist at once. Rows come out in the order of the customer
//! list, and each customer's rows depend only on the model, so the file is byte-identical
//! for any number of threads.

pub use crate::output::fields::{put_fixed, write_csv_field, write_field};
use std::io::{self, Write};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use serde::Serialize;

use crate::algo::similarity::SimilarityParams;
use crate::ids::{CustomerIdx, ItemIdx};
use crate::ingest::CountUnit;
use crate::matrix::Interactions;
use crate::model::Model;
use crate::recommend::{Query, Reason, Recommendation, ResolvedFilter, Scorer, Scratch, Source};

/// Customers per block handed to the worker pool.
pub const BLOCK: usize = 4096;
/// Formatted blocks alive at once, at most: the one being written, those waiting for the
/// writer, and the one being formatted.
pub const BLOCKS_IN_FLIGHT: usize = 4;
/// Customers per parallel task inside a block.
const TASK: usize = 64;

/// The header of a recommendations file.
pub const HEADER: &str = "customer_id,rank,item_id,score,source\n";
/// The header with reasons (`--explain`).
pub const HEADER_EXPLAIN: &str = "customer_id,rank,item_id,score,source,reason\n";

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
    /// everything allowed).
    pub short_customers: u64,
}

impl BatchStats {
    fn add(&mut self, o: &BatchStats) {
        self.customers += o.customers;
        self.rows += o.rows;
        self.popular_rows += o.popular_rows;
        self.short_customers += o.short_customers;
    }
}

/// How to score a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions<'a> {
    /// Recommendations per customer.
    pub top: usize,
    /// Which items may be recommended.
    pub filter: &'a ResolvedFilter,
    /// Add a `reason` column.
    pub explain: bool,
    /// Columns appended to each customer's rows (the customer's value), if any.
    pub columns: Option<&'a CustomerColumns>,
}

/// Columns appended to every row of a customer, the same for each of their rows (their
/// tier, churn risk and lifetime value, say): the header's part and each customer's
/// cells, indexed by customer, each starting with a comma.
#[derive(Debug, Clone, Default)]
pub struct CustomerColumns {
    /// Appended to the header, such as `,tier,p_no_purchase`.
    pub header: String,
    /// Per customer index, such as `,top,0.250000`.
    pub cells: Vec<Vec<u8>>,
}

impl CustomerColumns {
    /// `base` (a header line ending in a line break) with the columns added.
    pub fn header(&self, base: &str) -> String {
        format!("{}{}\n", base.trim_end_matches('\n'), self.header)
    }

    /// Adds customer `c`'s cells to each row written to `buf` from `start`: before each
    /// line break outside quotes (a quoted field may hold one).
    pub fn append(&self, c: CustomerIdx, buf: &mut Vec<u8>, start: usize) {
        let cells = self.cells.get(c.get()).map_or(&[][..], Vec::as_slice);
        let rows = buf.split_off(start);
        let mut quoted = false;
        for &b in &rows {
            quoted ^= b == b'"';
            if b == b'\n' && !quoted {
                buf.extend_from_slice(cells);
            }
            buf.push(b);
        }
    }
}

/// Writes a score in its shortest round-trip form (`ryu`), in plain decimal notation for
/// the magnitudes scores have, and in exponent notation outside them.
pub fn write_score(out: &mut Vec<u8>, score: f32) {
    put_short(out, ryu::Buffer::new().format(score).as_bytes());
}

/// Appends `x` as `format!` prints it (`format_args!("{:.6}", x)` for a fixed number of
/// decimals), without the `String` in between.
pub fn put_display(out: &mut Vec<u8>, x: impl std::fmt::Display) {
    // Writing to memory cannot fail.
    let _ = write!(out, "{x}");
}

/// Appends `bytes`, copying short ones (the fields of a batch row are a few bytes each)
/// with two fixed-size moves instead of a call to `memcpy` per field: on ten million rows
/// the calls cost more than the bytes.
#[inline(always)]
pub(crate) fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if !(4..=32).contains(&n) {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(n);
    let len = out.len();
    // SAFETY: `reserve` made room for `n` more bytes after `len`; each copy below writes
    // inside `len..len + n` from inside `bytes` (two overlapping fixed-size windows that
    // together cover all `n` bytes), so every byte up to the new length is initialised.
    unsafe {
        let (src, dst) = (bytes.as_ptr(), out.as_mut_ptr().add(len));
        macro_rules! two {
            ($w:expr) => {{
                std::ptr::copy_nonoverlapping(src, dst, $w);
                std::ptr::copy_nonoverlapping(src.add(n - $w), dst.add(n - $w), $w);
            }};
        }
        if n >= 16 {
            two!(16)
        } else if n >= 8 {
            two!(8)
        } else {
            two!(4)
        }
        out.set_len(len + n);
    }
}

/// A reason as a sentence a person can read, counts in the unit of the model's purchases.
pub fn describe(model: &Model, reason: &Reason) -> String {
    describe_counted(model, reason, model.info().ingest.as_ref().and_then(|s| s.counts))
}

/// [`describe`] with counts in `unit` (`None`: unknown): a fold-in customer's counts are
/// those of the rows read then, which may count otherwise than the model's.
pub fn describe_counted(model: &Model, reason: &Reason, unit: Option<CountUnit>) -> String {
    let items = |v: &[ItemIdx]| v.iter().map(|&i| model.item_id(i)).collect::<Vec<_>>().join(", ");
    match reason {
        Reason::BoughtWith(v) => format!("also bought by customers who bought {}", items(v)),
        Reason::Resembles(v) if v.is_empty() => "fits the customer's overall purchase pattern".into(),
        Reason::Resembles(v) => format!("bought by the same kind of customers as {}", items(v)),
        Reason::SimilarCustomers { ids, buyers, of } => {
            let ids: Vec<&str> = ids.iter().map(|c| model.customers().id(c.0)).collect();
            format!("bought by {buyers} of the {of} most similar customers ({})", ids.join(", "))
        }
        Reason::Popular { buyers } => format!("popular: bought by {buyers} customers"),
        Reason::BoughtBefore { count, last } => {
            // The count is net units when the purchases had quantities, else purchase rows.
            let bought = match unit {
                Some(CountUnit::Units) => {
                    format!("bought {count} {} before", if *count == 1.0 { "unit" } else { "units" })
                }
                Some(CountUnit::Rows) if *count == 1.0 => "bought once before".to_string(),
                Some(CountUnit::Rows) => format!("bought {count} times before"),
                None => format!("bought before: {count} in all"),
            };
            match last {
                Some(t) => format!("{bought}, last on {}", crate::time::date(*t)),
                None => bought,
            }
        }
    }
}

/// The shard (0-based, of `n`) a customer id belongs to: a fixed hash of the id's bytes
/// (FNV-1a), so shards never depend on the model, the platform or the version.
pub fn shard_of(id: &str, n: u32) -> u32 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (h % u64::from(n.max(1))) as u32
}

/// Scores `customers` (in this order) and writes the header and up to `top` rows per
/// customer to `out`. `progress` gets the number of customers done after each block.
pub fn write_recommendations<W: Write + Send>(
    model: &Model,
    customers: &[CustomerIdx],
    opts: &BatchOptions<'_>,
    out: &mut W,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<BatchStats> {
    let rows = RowWriter::new(model, opts);
    let header = opts.columns.map_or_else(|| rows.header().to_string(), |c| c.header(rows.header()));
    write_blocks(
        customers,
        &header,
        out,
        progress,
        || rows.state(),
        |state, &c, buf, st| {
            let start = buf.len();
            rows.score(model.customers().id(c.0), &rows.scorer.query(c), state, buf, st);
            if let Some(cols) = opts.columns {
                cols.append(c, buf, start);
            }
        },
    )
}

/// Scores every customer of `new` (purchases read now, not in the model's history) by
/// fold-in, in `new`'s customer order; `unit` is what `new`'s counts count (its ingest
/// summary's `counts`), for the reasons. Items the model does not know cannot inform the
/// scores and are skipped; [`unknown_item_pairs`] counts them.
pub fn write_fold_in<W: Write + Send>(
    model: &Model,
    (new, unit): (&Interactions, Option<CountUnit>),
    opts: &BatchOptions<'_>,
    out: &mut W,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<BatchStats> {
    let rows = RowWriter { unit, ..RowWriter::new(model, opts) };
    let to_model: Vec<Option<u32>> = new.items().iter().map(|id| model.items().index_of(id)).collect();
    let customers: Vec<CustomerIdx> = (0..new.customers().len() as u32).map(CustomerIdx).collect();
    write_blocks(
        &customers,
        rows.header(),
        out,
        progress,
        // The fold-in row is refilled for each customer: its buffers are the worker's.
        || (rows.state(), model.fold_in(Vec::new(), Vec::new(), None, Vec::new())),
        |(state, f), &c, buf, st| {
            // Both id tables are in natural order, so mapped items stay sorted.
            let (items, counts) = new.purchases(c);
            let times = new.last_time().map(|t| &t[new.counts().indptr().outer_inds_sz(c.get())]);
            let mut ft = f.times.take().unwrap_or_default();
            f.items.clear();
            f.counts.clear();
            ft.clear();
            for (k, &j) in items.iter().enumerate() {
                if let Some(m) = to_model[j as usize] {
                    f.items.push(m);
                    f.counts.push(counts[k]);
                    if let Some(t) = times {
                        ft.push(t[k]);
                    }
                }
            }
            f.times = times.is_some().then_some(ft);
            f.seen.clear();
            f.seen.extend(new.seen_only(c).iter().filter_map(|&j| to_model[j as usize]));
            let id = new.customers().id(c.0);
            f.own = model.customers().index_of(id).map(CustomerIdx);
            model.weigh_fold_in(f);
            rows.score(id, &f.query(), state, buf, st);
        },
    )
}

/// Purchase pairs in `new` whose item the model does not know.
pub fn unknown_item_pairs(model: &Model, new: &Interactions) -> u64 {
    let known: Vec<bool> = new.items().iter().map(|id| model.items().index_of(id).is_some()).collect();
    new.counts().indices().iter().filter(|&&j| !known[j as usize]).count() as u64
}

/// What every recommendation row needs, prepared once per batch.
struct RowWriter<'a> {
    model: &'a Model,
    scorer: Scorer<'a>,
    top: usize,
    /// Every item id as a ready CSV field.
    items: Fields,
    explain: bool,
    /// What the scored rows' counts count, for the reasons.
    unit: Option<CountUnit>,
}

impl<'a> RowWriter<'a> {
    fn new(model: &'a Model, opts: &BatchOptions<'a>) -> Self {
        let items = Fields::new(model.items().iter());
        let unit = model.info().ingest.as_ref().and_then(|s| s.counts);
        RowWriter { model, scorer: model.scorer(opts.filter), top: opts.top, items, explain: opts.explain, unit }
    }

    fn header(&self) -> &'static str {
        if self.explain { HEADER_EXPLAIN } else { HEADER }
    }

    /// Per-worker state: scoring buffers and the list being filled.
    fn state(&self) -> (Scratch, Vec<Recommendation>) {
        (self.scorer.scratch(), Vec::with_capacity(self.top.min(self.model.items().len())))
    }

    /// Scores one customer, counts the result and writes its rows.
    fn score(
        &self,
        id: &str,
        q: &Query<'_>,
        (scratch, recs): &mut (Scratch, Vec<Recommendation>),
        buf: &mut Vec<u8>,
        st: &mut BatchStats,
    ) {
        self.scorer.recommend(q, self.top, scratch, recs);
        st.customers += 1;
        st.rows += recs.len() as u64;
        st.short_customers += u64::from(recs.len() < self.top);
        self.write(id, q, recs, scratch, buf, st);
    }

    /// Writes one customer's rows.
    fn write(
        &self,
        id: &str,
        q: &Query<'_>,
        recs: &[Recommendation],
        scratch: &Scratch,
        buf: &mut Vec<u8>,
        st: &mut BatchStats,
    ) {
        self.items.touch(recs.iter().map(|r| r.item.get()));
        let mut field = None;
        for (rank, r) in recs.iter().enumerate() {
            st.popular_rows += u64::from(r.source == Source::Popular);
            // The customer's field is formatted once, then copied within the buffer.
            let start = buf.len();
            match field.clone() {
                None => write_field(buf, id),
                Some(range) => buf.extend_from_within(range),
            }
            field.get_or_insert(start..buf.len());
            buf.push(b',');
            put_short(buf, itoa::Buffer::new().format(rank + 1).as_bytes());
            buf.push(b',');
            put_short(buf, self.items.get(r.item.get()));
            buf.push(b',');
            write_score(buf, r.score);
            buf.push(b',');
            put_short(buf, r.source.as_str().as_bytes());
            if self.explain {
                buf.push(b',');
                write_field(buf, &describe_counted(self.model, &self.scorer.explain(q, r, scratch), self.unit));
            }
            buf.push(b'\n');
        }
    }
}

/// Ids as ready CSV fields, packed in one array of fixed-width slots (a length byte, then
/// the field) when every field fits in 31 bytes: a row then reads one slot where a `Vec` per
/// id cost two dependent cache misses (its header, then its bytes on the heap), which took
/// a quarter of `recommend`'s time on a 100,000-item catalogue.
struct Fields {
    /// Slot width (8, 16 or 32 bytes), or 0 when the fields are in `long`.
    width: usize,
    slots: Vec<u8>,
    long: Vec<Vec<u8>>,
}

impl Fields {
    fn new<'i>(ids: impl Iterator<Item = &'i str>) -> Self {
        let long: Vec<Vec<u8>> = ids
            .map(|id| {
                let mut f = Vec::with_capacity(id.len());
                write_field(&mut f, id);
                f
            })
            .collect();
        let longest = long.iter().map(Vec::len).max().unwrap_or(0);
        let Some(width) = [8, 16, 32].into_iter().find(|&w| longest < w) else {
            return Fields { width: 0, slots: Vec::new(), long };
        };
        let mut slots = vec![0; width * long.len()];
        for (slot, f) in slots.chunks_exact_mut(width).zip(&long) {
            slot[0] = f.len() as u8;
            slot[1..=f.len()].copy_from_slice(f);
        }
        Fields { width, slots, long: Vec::new() }
    }

    /// Reads the slots of `items` ahead of their use: loads that do not wait for each
    /// other, so that their cache misses overlap instead of stalling one row at a time.
    #[inline(always)]
    fn touch(&self, items: impl Iterator<Item = usize>) {
        if self.width != 0 {
            std::hint::black_box(items.fold(0u8, |x, i| x ^ self.slots[i * self.width]));
        }
    }

    #[inline(always)]
    fn get(&self, i: usize) -> &[u8] {
        if self.width == 0 {
            return &self.long[i];
        }
        let slot = &self.slots[i * self.width..(i + 1) * self.width];
        &slot[1..=usize::from(slot[0])]
    }
}

/// The streaming machinery shared by every batch writer: `items` (customers, or
/// whatever a command lists) in blocks of [`BLOCK`], each block formatted in parallel in
/// tasks of [`TASK`] items with per-worker state from `init`, and sent in order to one
/// writer thread. `row` appends an item's rows to the buffer and counts them.
///
/// At most [`BLOCKS_IN_FLIGHT`] formatted blocks exist at once: the one the writer is
/// writing, those waiting in the channel, and the one being formatted (which waits, once
/// formatted, for room in the channel).
pub fn write_blocks<T, W, S, I, R>(
    items: &[T],
    header: &str,
    out: &mut W,
    progress: &(dyn Fn(u64) + Sync),
    init: I,
    row: R,
) -> io::Result<BatchStats>
where
    T: Sync,
    W: Write + Send,
    I: Fn() -> S + Sync + Send,
    R: Fn(&mut S, &T, &mut Vec<u8>, &mut BatchStats) + Sync + Send,
{
    const { assert!(BLOCKS_IN_FLIGHT >= 2, "the writer's block and the one being formatted") };
    out.write_all(header.as_bytes())?;
    let (tx, rx) = sync_channel::<Vec<Vec<u8>>>(BLOCKS_IN_FLIGHT - 2);
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
        for block in items.chunks(BLOCK) {
            let parts: Vec<(Vec<u8>, BatchStats)> = block
                .par_chunks(TASK)
                .map_init(&init, |state, chunk| {
                    let mut buf = Vec::with_capacity(chunk.len() * 256);
                    let mut st = BatchStats::default();
                    for x in chunk {
                        row(state, x, &mut buf, &mut st);
                    }
                    (buf, st)
                })
                .collect();
            let mut bufs = Vec::with_capacity(parts.len());
            for (buf, st) in parts {
                stats.add(&st);
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

/// The header of a similar-customers file.
pub const SIMILAR_HEADER: &str = "customer_id,rank,neighbor_id,similarity,shared_items\n";

/// Writes each customer's `k` most similar customers (in the order of `customers`):
/// `customer_id,rank,neighbor_id,similarity,shared_items`.
pub fn write_similar_customers<W: Write + Send>(
    model: &Model,
    customers: &[CustomerIdx],
    k: usize,
    params: SimilarityParams,
    out: &mut W,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<BatchStats> {
    let kernel = model.similar_customers_kernel(params);
    let ids = model.customers();
    write_blocks(
        customers,
        SIMILAR_HEADER,
        out,
        progress,
        || (kernel.scratch(), Vec::with_capacity(k.min(model.customers().len()))),
        |(scratch, neighbors), &c, buf, st| {
            kernel.row(c, k, scratch, neighbors);
            st.customers += 1;
            st.rows += neighbors.len() as u64;
            st.short_customers += u64::from(neighbors.len() < k);
            for (rank, n) in neighbors.iter().enumerate() {
                write_field(buf, ids.id(c.0));
                buf.push(b',');
                buf.extend_from_slice(itoa::Buffer::new().format(rank + 1).as_bytes());
                buf.push(b',');
                write_field(buf, ids.id(n.index));
                buf.push(b',');
                write_score(buf, n.sim);
                buf.push(b',');
                buf.extend_from_slice(itoa::Buffer::new().format(n.shared).as_bytes());
                buf.push(b'\n');
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A customer's cells go before each row's end, not before a line break inside a
    /// quoted field; rows written before `start` are left alone.
    #[test]
    fn customer_columns_end_each_row_outside_quotes() {
        let cols = CustomerColumns { header: ",tier".into(), cells: vec![b",top".to_vec(), b",bottom".to_vec()] };
        assert_eq!(cols.header("a,b\n"), "a,b,tier\n");
        let mut buf = b"x,1\n".to_vec();
        let start = buf.len();
        buf.extend_from_slice(b"c,\"two\nlines, \"\"q\"\"\"\nc,plain\n");
        cols.append(CustomerIdx(1), &mut buf, start);
        assert_eq!(buf, b"x,1\nc,\"two\nlines, \"\"q\"\"\",bottom\nc,plain,bottom\n");
    }

    /// The oracle is the `csv` crate's writer: quoting only where needed, or always for a
    /// field with edge spaces in `write_field`.
    #[test]
    fn fields_are_quoted_as_the_csv_crate_quotes_them() {
        let csv_line = |s: &str, style| {
            let mut w = csv::WriterBuilder::new().quote_style(style).from_writer(Vec::new());
            w.write_record([s, "x"]).unwrap();
            let line = w.into_inner().unwrap();
            let end = if matches!(style, csv::QuoteStyle::Always) { ",\"x\"\n" } else { ",x\n" };
            line.strip_suffix(end.as_bytes()).unwrap().to_vec()
        };
        for s in
            ["", "a", "a b", " a", "a ", " ", "a,b", "a\"b", "\"", "\"\"x\"", "a\nb", "a\rb", "é,\"ü\" ", "#a", "'a"]
        {
            let mut got = Vec::new();
            write_csv_field(&mut got, s);
            assert_eq!(got, csv_line(s, csv::QuoteStyle::Necessary), "write_csv_field({s:?})");
            let edge = s.starts_with(' ') || s.ends_with(' ');
            let style = if edge { csv::QuoteStyle::Always } else { csv::QuoteStyle::Necessary };
            got.clear();
            write_field(&mut got, s);
            assert_eq!(got, csv_line(s, style), "write_field({s:?})");
        }
    }

    /// Packed or not, each id reads back as the field `write_field` makes of it.
    #[test]
    fn fields_give_each_id_its_csv_field() {
        let short: Vec<String> = ["", "a", "i48971", "a,b", " x", "\"q\"", "exactly-30-bytes-long-id-here"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let long: Vec<String> = short.iter().cloned().chain(["an id longer than thirty-one bytes".into()]).collect();
        for (ids, packed) in [(&short, true), (&long, false)] {
            let fields = Fields::new(ids.iter().map(String::as_str));
            assert_eq!(fields.width != 0, packed);
            for (i, id) in ids.iter().enumerate() {
                let mut want = Vec::new();
                write_field(&mut want, id);
                assert_eq!(fields.get(i), &want[..], "{id:?}");
            }
        }
    }

    #[test]
    fn put_short_appends_exactly_the_bytes_at_every_length() {
        let src: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37).wrapping_add(11)).collect();
        for prefix in [0usize, 1, 7, 31] {
            for n in 0..=40 {
                let mut out: Vec<u8> = (0..prefix as u8).collect();
                out.shrink_to_fit();
                put_short(&mut out, &src[3..3 + n]);
                let mut want: Vec<u8> = (0..prefix as u8).collect();
                want.extend_from_slice(&src[3..3 + n]);
                assert_eq!(out, want, "prefix {prefix}, {n} bytes");
            }
        }
    }
}
