//! A purchases file in, validated and merged purchase rows out (or a precise error).
//!
//! Reads CSV or TSV (`,` `\t` `;` `|`, sniffed when not given), plain or gzip, with or
//! without a header, columns chosen by header name or 1-based position (customer and item
//! columns may be left to be found by their well-known names, [`ColumnRef::Detect`], and
//! the summary says which were, [`ColumnsFound`]). Every data row
//! ends up in exactly one bucket of the [`IngestSummary`]: a purchase, a netted or
//! ignored return, a rating below `min_value` (kept as "seen"), a guest row (no customer
//! id), a zero-quantity row, or a rejected row. By default the first bad row stops the
//! read with `FILE:LINE: column NAME: reason`; with `skip_invalid` bad rows are counted by
//! reason and written to a rejects file instead.

mod chunks;
mod delimited;
mod log;
#[cfg(feature = "parquet")]
mod parquet;
mod source;

pub use chunks::DEFAULT_CHUNK_BYTES;

pub use delimited::SourceError;
pub(crate) use delimited::{
    Delimited, Fields, Records, RejectsFile, RowProblem, check_options, delimiter_name, display_name, row_error, shown,
    shown_number,
};
use log::LogBuilder;
pub use log::{CustomerLog, CustomerSample, LogRow, Purchase, PurchaseLog, read_customer_log};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::ids::{CustomerIdx, Interner, ItemIdx, id_hash};
use crate::matrix::{Interactions, InteractionsBuilder, MergeStats, TooManyIds};

/// The delimiter value that stands for `::` (MovieLens 1M and 10M `ratings.dat`): each
/// `::` in the file becomes this byte (ASCII unit separator) before the CSV reader sees it.
pub const DOUBLE_COLON: u8 = 0x1f;

/// A column, by header name or by 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    /// 1-based position.
    Position(usize),
    /// Header name (exact, or case-insensitive when that is unambiguous).
    Name(String),
    /// The customer or item column, found in the header by a well-known name of its role
    /// ([`CUSTOMER_NAMES`], [`ITEM_NAMES`]); no such name, or several, is an error naming
    /// the flag to give. Never a guess by position.
    Detect,
}

/// Header names (lower case, letters and digits only: `CustomerID`, `customer_id` and
/// `Customer ID` are all `customerid`) that name the customer column: UCI Online Retail,
/// The Complete Journey, Instacart, MovieLens, Retailrocket, Groceries and common exports.
pub const CUSTOMER_NAMES: &[&str] = &[
    "customerid",
    "customer",
    "customerno",
    "customernumber",
    "customerkey",
    "custid",
    "householdid",
    "householdkey",
    "userid",
    "user",
    "clientid",
    "client",
    "memberid",
    "membernumber",
    "accountid",
    "shopperid",
    "buyerid",
    "visitorid",
];

/// Header names (compared as [`CUSTOMER_NAMES`]) that name the item column.
pub const ITEM_NAMES: &[&str] = &[
    "stockcode",
    "productid",
    "product",
    "productcode",
    "productno",
    "itemid",
    "item",
    "itemcode",
    "itemno",
    "sku",
    "skuid",
    "articleid",
    "article",
    "articlecode",
    "movieid",
];

/// The columns found by their header names ([`ColumnRef::Detect`]) and the header's
/// columns nothing reads, so that a log can say what was used and what was not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnsFound {
    /// Role (`customer`, `item`), header name and 1-based position of each column found.
    pub found: Vec<(String, String, usize)>,
    /// The header's columns that no role reads.
    pub unread: Vec<String>,
}

impl FromStr for ColumnRef {
    type Err = String;

    /// All digits: a 1-based position; anything else: a header name.
    fn from_str(s: &str) -> Result<Self, String> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            match s.parse::<usize>() {
                Ok(p) if p >= 1 => Ok(ColumnRef::Position(p)),
                _ => Err(format!("column positions start at 1, got {s}")),
            }
        } else if s.trim().is_empty() {
            Err("a column name must not be empty".into())
        } else {
            Ok(ColumnRef::Name(s.to_string()))
        }
    }
}

impl From<&str> for ColumnRef {
    fn from(s: &str) -> Self {
        s.parse().unwrap_or_else(|_| ColumnRef::Name(s.to_string()))
    }
}

/// What to do with rows whose quantity is negative (returns, cancellations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Returns {
    /// Net them against the customer's purchases of the item (default).
    #[default]
    Net,
    /// Leave them out (counted).
    Ignore,
    /// Treat them as bad rows.
    Reject,
}

impl FromStr for Returns {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "net" => Ok(Returns::Net),
            "ignore" => Ok(Returns::Ignore),
            "reject" => Ok(Returns::Reject),
            _ => Err(format!("--returns takes ignore, net or reject, got {s:?}")),
        }
    }
}

/// Which columns hold what. Only customer and item are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// Customer id.
    pub customer: ColumnRef,
    /// Item id.
    pub item: ColumnRef,
    /// Quantity (negative: a return). Without it every row counts 1.
    #[serde(default)]
    pub quantity: Option<ColumnRef>,
    /// Unit price (amount = quantity x price).
    #[serde(default)]
    pub price: Option<ColumnRef>,
    /// Line amount (money for the whole row).
    #[serde(default)]
    pub amount: Option<ColumnRef>,
    /// Purchase time.
    #[serde(default)]
    pub time: Option<ColumnRef>,
    /// Basket or order id.
    #[serde(default)]
    pub basket: Option<ColumnRef>,
    /// Rating (with `min_value`, rows below it are "seen", not bought).
    #[serde(default)]
    pub rating: Option<ColumnRef>,
}

impl Columns {
    /// Customer and item columns, found in the header by their names.
    pub fn detect() -> Self {
        Columns::new(ColumnRef::Detect, ColumnRef::Detect)
    }

    /// Customer and item columns only.
    pub fn new(customer: impl Into<ColumnRef>, item: impl Into<ColumnRef>) -> Self {
        Columns {
            customer: customer.into(),
            item: item.into(),
            quantity: None,
            price: None,
            amount: None,
            time: None,
            basket: None,
            rating: None,
        }
    }

    /// The columns in validation order, with their role names.
    fn roles(&self) -> [(&'static str, Option<&ColumnRef>); 8] {
        [
            ("customer", Some(&self.customer)),
            ("item", Some(&self.item)),
            ("quantity", self.quantity.as_ref()),
            ("price", self.price.as_ref()),
            ("amount", self.amount.as_ref()),
            ("time", self.time.as_ref()),
            ("rating", self.rating.as_ref()),
            ("basket", self.basket.as_ref()),
        ]
    }
}

/// How to read a purchases file.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOptions {
    /// Column mapping.
    pub columns: Columns,
    /// Field delimiter; `None` sniffs it from the first line. [`DOUBLE_COLON`] reads
    /// `::`-separated files.
    pub delimiter: Option<u8>,
    /// Whether the first line is a header.
    pub has_header: bool,
    /// Negative quantities: net, ignore or reject.
    pub returns: Returns,
    /// Rows with a rating below this are "seen" but not bought. Needs a rating column.
    pub min_value: Option<f64>,
    /// Count and skip bad rows instead of stopping at the first.
    pub skip_invalid: bool,
    /// Where skipped rows go (CSV: line, column, reason, record). Only with `skip_invalid`.
    pub rejects: Option<PathBuf>,
    /// Bytes per chunk the file is cut into to be parsed on the worker threads
    /// ([`DEFAULT_CHUNK_BYTES`]); nothing read depends on it. Tests make it small to cut
    /// small files into many chunks.
    #[doc(hidden)]
    pub chunk_bytes: usize,
}

impl IngestOptions {
    /// Defaults: header, sniffed delimiter, returns netted, stop at the first bad row.
    pub fn new(columns: Columns) -> Self {
        IngestOptions {
            columns,
            delimiter: None,
            has_header: true,
            returns: Returns::Net,
            min_value: None,
            skip_invalid: false,
            rejects: None,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }

    /// Checks option combinations before any file is opened.
    pub fn check(&self) -> Result<(), IngestError> {
        let bad = |m: &str| Err(IngestError::Options(m.to_string()));
        if self.min_value.is_some() && self.columns.rating.is_none() {
            return bad("a minimum value needs a rating column (--rating-col)");
        }
        if self.min_value.is_some_and(|v| !v.is_finite()) {
            return bad("the minimum value must be a finite number");
        }
        if self.columns.roles()[2..].iter().any(|(_, c)| c == &Some(&ColumnRef::Detect)) {
            return bad("only the customer and item columns are found by their names");
        }
        if self.columns.price.is_some() && self.columns.amount.is_some() {
            return bad("give a unit price column or a line amount column, not both");
        }
        check_options(self.delimiter, self.rejects.is_some(), self.skip_invalid).or_else(bad)
    }
}

/// What a read did with every row.
///
/// Invariant: `rows_read` equals the sum of `purchase_rows`, `return_rows_netted`,
/// `return_rows_ignored`, `below_min_value_rows`, `guest_rows`, `zero_quantity_rows` and
/// `rejected_rows`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestSummary {
    /// Data rows (not counting the header).
    pub rows_read: u64,
    /// Rows kept as purchases.
    pub purchase_rows: u64,
    /// Return rows netted against purchases.
    pub return_rows_netted: u64,
    /// Return rows left out (`--returns ignore`).
    pub return_rows_ignored: u64,
    /// Rows rated below the minimum value: the item counts as seen, not bought.
    pub below_min_value_rows: u64,
    /// Rows without a customer id (guest checkouts): left out.
    pub guest_rows: u64,
    /// Rows with quantity zero: left out.
    pub zero_quantity_rows: u64,
    /// Rows rejected as invalid (only with `skip_invalid`).
    pub rejected_rows: u64,
    /// Rejected rows by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Purchase and return rows that merged into an earlier row of the same pair.
    pub merged_rows: u64,
    /// Distinct customers (with any kept row).
    pub customers: u64,
    /// Customers with at least one purchase left after netting.
    pub customers_with_purchases: u64,
    /// Distinct items.
    pub items: u64,
    /// Distinct basket ids, when a basket column was given.
    pub baskets: Option<u64>,
    /// Earliest and latest purchase time, when a time column was given.
    pub first_time: Option<i64>,
    /// See `first_time`.
    pub last_time: Option<i64>,
    /// Purchase rows dated far outside the bulk of the log ([`crate::time::Bulk`]): kept as
    /// purchases, but they do not move the time-decay reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_outliers: Option<TimeOutliers>,
    /// Pair-level outcome of merging.
    pub merge: MergeStats,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
    /// The delimiter used.
    pub delimiter: String,
    /// Columns found by their names, and the header's columns left unread (when a column
    /// was found so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns_found: Option<ColumnsFound>,
    /// What a pair's count counts, so that reasons can say it (`None` in models saved
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountUnit>,
}

/// What a (customer, item) pair's count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CountUnit {
    /// Units of the quantity column, returns netted.
    Units,
    /// Purchase rows: without a quantity column, each row counts 1.
    Rows,
}

/// Purchase rows dated outside the fences of the log's bulk of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeOutliers {
    /// Rows dated after the bulk.
    pub after: u64,
    /// Rows dated before the bulk.
    pub before: u64,
    /// The first such row's line and time.
    pub first_line: u64,
    /// See `first_line`.
    pub first_time: i64,
    /// The fences: times from `bulk_from` to `bulk_to` are not outliers.
    pub bulk_from: i64,
    /// See `bulk_from`.
    pub bulk_to: i64,
}

/// Purchase times counted per day with each day's first line and time, to find the
/// outliers of [`crate::time::Bulk`] once every row is read (memory: one entry per
/// distinct day; consecutive rows of one day cost no lookup).
#[derive(Default)]
struct DayCounts {
    days: rustc_hash::FxHashMap<i64, (u64, u64, i64)>,
    /// The current run of rows on one day: day, rows, first line, first time.
    run: Option<(i64, u64, u64, i64)>,
}

impl DayCounts {
    fn add(&mut self, t: i64, line: u64) {
        let day = t.div_euclid(crate::time::DAY);
        match &mut self.run {
            Some(r) if r.0 == day => r.1 += 1,
            _ => {
                self.flush();
                self.run = Some((day, 1, line, t));
            }
        }
    }

    fn flush(&mut self) {
        if let Some((day, n, line, t)) = self.run.take() {
            // Rows come in line order: an earlier run of the day keeps its first line.
            self.days.entry(day).or_insert((0, line, t)).0 += n;
        }
    }

    /// Adds the counts of rows that came after this one's (a later chunk's).
    fn absorb(&mut self, mut later: DayCounts) {
        self.flush();
        later.flush();
        for (day, (n, line, t)) in later.days {
            self.days.entry(day).or_insert((0, line, t)).0 += n;
        }
    }

    fn outliers(mut self) -> Option<TimeOutliers> {
        self.flush();
        let mut days: Vec<(i64, (u64, u64, i64))> = self.days.into_iter().collect();
        days.sort_unstable_by_key(|d| d.0);
        let hist: Vec<(i64, u64)> = days.iter().map(|d| (d.0, d.1.0)).collect();
        let bulk = crate::time::Bulk::of_days(&hist)?;
        let mut o = TimeOutliers {
            after: 0,
            before: 0,
            first_line: u64::MAX,
            first_time: 0,
            bulk_from: bulk.from,
            bulk_to: bulk.to,
        };
        for &(_, (n, line, t)) in days.iter().filter(|d| !bulk.contains(d.1.2)) {
            if t > bulk.to {
                o.after += n
            } else {
                o.before += n
            }
            if line < o.first_line {
                (o.first_line, o.first_time) = (line, t);
            }
        }
        (o.after + o.before > 0).then_some(o)
    }
}

/// Why a purchases file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Contradictory or out-of-range options.
    #[error("{0}")]
    Options(String),
    /// The file, its header or a row (the first bad one, when not skipping).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Every row was rejected or left out.
    #[error("{path}: no purchases left to fit: {rows} rows read, none kept as a purchase ({detail})")]
    NothingKept {
        /// The file.
        path: String,
        /// Rows read.
        rows: u64,
        /// Where they went.
        detail: String,
    },
    /// More distinct ids than `u32` indexes.
    #[error("{path}: {ids}")]
    TooManyIds {
        /// The file.
        path: String,
        /// Which ids.
        ids: crate::matrix::TooManyIds,
    },
}

impl IngestError {
    /// Whether the error is the machine's (a disk or the rejects file failing) rather than
    /// the input's.
    pub fn is_io(&self) -> bool {
        matches!(self, IngestError::Source(e) if e.is_io())
    }
}

/// The result of a read: merged interactions and the summary.
#[derive(Debug)]
pub struct Ingested {
    /// Merged purchases.
    pub interactions: Interactions,
    /// What happened to every row.
    pub summary: IngestSummary,
}

/// Progress of a read, reported every few thousand rows.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Data rows read so far.
    pub rows: u64,
    /// Bytes of the file consumed so far.
    pub bytes: u64,
    /// The file's size, when known.
    pub total_bytes: Option<u64>,
}

/// Resolved column positions (0-based) and display names.
struct Resolved {
    pos: [Option<usize>; 8],
    names: [String; 8],
    width: usize,
    /// When a column was found by its name.
    found: Option<ColumnsFound>,
}

const CUSTOMER: usize = 0;
const ITEM: usize = 1;
const QUANTITY: usize = 2;
const PRICE: usize = 3;
const AMOUNT: usize = 4;
const TIME: usize = 5;
const RATING: usize = 6;
const BASKET: usize = 7;

fn resolve(columns: &Columns, file: &Delimited) -> Result<Resolved, SourceError> {
    let mut pos = [None; 8];
    let mut names: [String; 8] = Default::default();
    let mut found = Vec::new();
    for (k, (role, col)) in columns.roles().into_iter().enumerate() {
        let Some(col) = col else { continue };
        let (p, name) = match (col, k) {
            (ColumnRef::Detect, CUSTOMER) => detect(role, "--customer-col", CUSTOMER_NAMES, CUSTOMER_EXAMPLES, file)?,
            (ColumnRef::Detect, ITEM) => detect(role, "--item-col", ITEM_NAMES, ITEM_EXAMPLES, file)?,
            _ => file.column(col)?,
        };
        if col == &ColumnRef::Detect {
            found.push((role.to_string(), name.clone(), p + 1));
        }
        names[k] = name;
        pos[k] = Some(p);
    }
    let width = pos.iter().flatten().max().map_or(0, |m| m + 1);
    let found = (!found.is_empty()).then(|| ColumnsFound {
        found,
        unread: file
            .header()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(i, _)| !pos.contains(&Some(*i)))
            .map(|(_, n)| n.clone())
            .collect(),
    });
    Ok(Resolved { pos, names, width, found })
}

/// A few of [`CUSTOMER_NAMES`] as a reader writes them, for messages.
const CUSTOMER_EXAMPLES: &str = "CustomerID, customer_id, household_id";
/// A few of [`ITEM_NAMES`] as a reader writes them, for messages.
pub(crate) const ITEM_EXAMPLES: &str = "StockCode, product_id, item_id, sku";

/// The `role` column: the one header column whose name, in lower case with letters and
/// digits only, is in `known` (`such_as` names a few). None, several, or no header: an
/// error naming `flag`, which chooses the column. Purchases and catalogues find theirs so.
pub(crate) fn detect(
    role: &str,
    flag: &str,
    known: &[&str],
    such_as: &str,
    file: &Delimited,
) -> Result<(usize, String), SourceError> {
    let error = |reason: String| SourceError::BadColumn { path: file.name().to_string(), column: role.into(), reason };
    let Some(h) = file.header() else {
        return Err(error(format!(
            "the file has no header to find the {role} column by name; give its position ({flag} N)"
        )));
    };
    let key =
        |s: &str| s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect::<String>();
    let candidates: Vec<usize> = (0..h.len()).filter(|&i| known.contains(&key(&h[i]).as_str())).collect();
    match candidates[..] {
        [p] => file.check_readable(p).map(|()| (p, h[p].clone())),
        [] => Err(error(format!(
            "no header column has a name cobuy knows for the {role} ids (such as {such_as}); give {flag} NAME or position; the header's columns are: {}",
            h.join(", ")
        ))),
        _ => {
            let names: Vec<String> = candidates.iter().map(|&i| format!("{} (column {})", h[i], i + 1)).collect();
            Err(error(format!(
                "several header columns could hold the {role} ids: {}; choose one with {flag} NAME",
                names.join(", ")
            )))
        }
    }
}

/// Reads a purchases file and merges its rows.
pub fn read_purchases(path: impl AsRef<Path>, opts: &IngestOptions) -> Result<Ingested, IngestError> {
    read_purchases_with_progress(path, opts, &mut |_| {})
}

/// [`read_purchases`], calling `progress` every 65,536 rows and at the end.
pub fn read_purchases_with_progress(
    path: impl AsRef<Path>,
    opts: &IngestOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Ingested, IngestError> {
    let path = path.as_ref();
    let mut builder = InteractionsBuilder::new();
    let (mut sum, _) = read_rows(path, opts, progress, &mut builder)?;
    let (interactions, merge) = builder.finish();
    sum.merge = merge;
    sum.merged_rows = merge.merged_rows;
    sum.customers = interactions.customers().len() as u64;
    sum.items = interactions.items().len() as u64;
    sum.customers_with_purchases = interactions.customers_with_purchases() as u64;
    if interactions.counts().nnz() == 0 {
        return Err(IngestError::NothingKept {
            path: display_name(path),
            rows: sum.rows_read,
            detail: summary_breakdown(&sum),
        });
    }
    Ok(Ingested { interactions, summary: sum })
}

/// Reads a purchases file into an unmerged [`PurchaseLog`] (for splitting it by time,
/// basket or at random), with the same validation and summary as [`read_purchases`]
/// (the merge figures are those of merging every row).
pub fn read_log(path: impl AsRef<Path>, opts: &IngestOptions) -> Result<(PurchaseLog, IngestSummary), IngestError> {
    let read = read_log_with_progress(path, opts, &mut |_| {})?;
    Ok((read.log, read.summary))
}

/// A log as [`read_log`] reads it, with the merge of all its rows that its summary counts
/// (so that a caller fitting on every row does not merge them again).
#[derive(Debug)]
pub struct Logged {
    /// Every accepted row.
    pub log: PurchaseLog,
    /// The merge of every row.
    pub interactions: Interactions,
    /// What happened to every row.
    pub summary: IngestSummary,
    /// `None` when `log` holds every accepted row; after [`read_log_sample_with_progress`],
    /// the customers with a purchase row in the file (`log` holds the rows of some of them).
    pub sampled_from: Option<u64>,
}

/// [`read_log`] with the merged rows, calling `progress` every 65,536 rows and at the end.
pub fn read_log_with_progress(
    path: impl AsRef<Path>,
    opts: &IngestOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Logged, IngestError> {
    read_into_log(path.as_ref(), opts, None, progress)
}

/// [`read_log_with_progress`] keeping unmerged only the rows of the customers `sample`
/// ranks lowest (at least the `max` lowest of those with a purchase row, all of them when
/// there are no more; see [`CustomerSample`]); the merge and the summary still cover every
/// row. For a search on a sample of a file too large to hold row by row.
pub fn read_log_sample_with_progress(
    path: impl AsRef<Path>,
    opts: &IngestOptions,
    sample: CustomerSample,
    progress: &mut dyn FnMut(Progress),
) -> Result<Logged, IngestError> {
    read_into_log(path.as_ref(), opts, Some(sample), progress)
}

fn read_into_log(
    path: &Path,
    opts: &IngestOptions,
    sample: Option<CustomerSample>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Logged, IngestError> {
    let mut sink = LogBuilder::new(sample);
    let (mut sum, baskets) = read_rows(path, opts, progress, &mut sink)?;
    let (log, merged, merge, sampled_from) = sink.finish(baskets);
    sum.customers = log.customers.len() as u64;
    sum.items = log.items.len() as u64;
    // Counted after netting, by the same merge as `read_purchases`: a customer whose
    // returns cancel every purchase has none left.
    sum.customers_with_purchases = merged.customers_with_purchases() as u64;
    sum.merge = merge;
    sum.merged_rows = merge.merged_rows;
    if sum.customers_with_purchases == 0 {
        return Err(IngestError::NothingKept {
            path: display_name(path),
            rows: sum.rows_read,
            detail: summary_breakdown(&sum),
        });
    }
    Ok(Logged { log, interactions: merged, summary: sum, sampled_from })
}

/// Where accepted rows go: a merging [`InteractionsBuilder`] or a [`LogBuilder`]. Rows
/// come by arrival index: each chunk's ids are interned first ([`RowSink::intern`]).
trait RowSink {
    /// The arrival indices of a chunk's customer and item ids (new ones added in order).
    fn intern(&mut self, customers: &Interner, items: &Interner) -> Result<(Vec<u32>, Vec<u32>), TooManyIds>;
    /// The customer and item ids so far, by arrival index.
    fn ids(&self) -> (&Interner, &Interner);
    fn bought(&mut self, row: Bought);
    fn seen(&mut self, customer: CustomerIdx, item: ItemIdx);
    /// Makes room for about `rows` accepted rows in all.
    fn reserve(&mut self, rows: usize);
}

/// An accepted purchase or return row.
struct Bought {
    customer: CustomerIdx,
    item: ItemIdx,
    quantity: f64,
    amount: Option<f64>,
    time: Option<i64>,
    /// Arrival index among the file's basket ids.
    basket: Option<u32>,
}

impl RowSink for InteractionsBuilder {
    fn intern(&mut self, customers: &Interner, items: &Interner) -> Result<(Vec<u32>, Vec<u32>), TooManyIds> {
        self.intern_all(customers, items)
    }
    fn ids(&self) -> (&Interner, &Interner) {
        self.interners()
    }
    fn bought(&mut self, r: Bought) {
        self.purchase_at(r.customer, r.item, r.quantity, r.amount, r.time)
    }
    fn seen(&mut self, customer: CustomerIdx, item: ItemIdx) {
        self.seen_at(customer, item)
    }
    fn reserve(&mut self, rows: usize) {
        self.reserve_rows(rows)
    }
}

/// No basket (in [`ChunkRow::basket`]).
const NO_BASKET: u32 = u32::MAX;

/// In a [`ChunkRow`], marks a chunk's own arrival index of an id; without it, the index is
/// the sink's, from the [`Known`] ids the chunk was read with.
const LOCAL: u64 = 1 << 32;

/// The sink's customer and item ids (by arrival index) as they were when a chunk was handed
/// out: a worker looks each id up here first, so the one thread that merges the chunks
/// interns only the ids that were new then. Refreshed when the sink's ids have grown by
/// half, so copying them costs a few times their size over a whole read.
#[derive(Clone, Default)]
struct Known {
    customers: Arc<Interner>,
    items: Arc<Interner>,
}

impl Known {
    fn refresh(&mut self, customers: &Interner, items: &Interner) {
        let stale = |known: &Interner, now: &Interner| now.len() > known.len() + known.len() / 2 + 1024;
        if stale(&self.customers, customers) {
            self.customers = Arc::new(customers.clone());
        }
        if stale(&self.items, items) {
            self.items = Arc::new(items.clone());
        }
    }
}

/// An accepted row of a chunk; customer and item as [`ChunkRows::resolve`] gives them
/// (the sink's arrival index, or [`LOCAL`] and the chunk's); quantity 0 marks a rating
/// below the minimum ("seen"). Amount and time, which most rows of most files lack, are in
/// the chunk's own columns ([`ChunkRows::amounts`], [`ChunkRows::times`]), so a row takes
/// 32 bytes, not 64: a row group of a million rows fills (and faults in) half the pages.
struct ChunkRow {
    customer: u64,
    item: u64,
    quantity: f64,
    basket: u32,
    /// [`HAS_AMOUNT`] and [`HAS_TIME`]: which of the chunk's columns hold a value of the row.
    has: u8,
}

/// In [`ChunkRow::has`]: the row's amount is the next of [`ChunkRows::amounts`].
const HAS_AMOUNT: u8 = 1;
/// In [`ChunkRow::has`]: the row's time is the next of [`ChunkRows::times`].
const HAS_TIME: u8 = 2;

/// What a worker makes of one chunk: its accepted rows over the [`Known`] ids and the
/// chunk's own id tables of the others (in first-appearance order, so that taking them chunk
/// by chunk interns every new id in the order the file first shows it, as interning every id
/// of the chunk would), its buckets, its rejects (encoded) and, when a row stops the read,
/// why.
#[derive(Default)]
struct ChunkRows {
    customers: Interner,
    items: Interner,
    baskets: Interner,
    rows: Vec<ChunkRow>,
    /// The amounts and times of the rows that have one, in row order.
    amounts: Vec<f64>,
    times: Vec<i64>,
    sum: IngestSummary,
    first_time: Option<i64>,
    last_time: Option<i64>,
    days: DayCounts,
    rejects: Vec<(u64, RowProblem, Vec<u8>)>,
    stop: Option<IngestError>,
    /// The chunk's bytes.
    bytes: usize,
}

impl ChunkRows {
    /// A chunk's arrival index of an id; `last` is the index it gave last, for ids that come
    /// in runs (a customer's rows, a basket's) and then cost a comparison, not a lookup.
    fn local(ids: &mut Interner, last: &mut u32, id: &str) -> Option<u32> {
        if *last != u32::MAX && ids.id(*last) == id {
            return Some(*last);
        }
        *last = ids.intern(id)?;
        Some(*last)
    }

    /// A chunk's customer or item for `id`: its index in `known`, else [`LOCAL`] and its
    /// arrival index among the chunk's `ids`; `last` is the one given last, as in
    /// [`ChunkRows::local`] (`u64::MAX` before any).
    /// With `recent`, an id found there is not looked up again.
    fn resolve(
        known: &Interner,
        ids: &mut Interner,
        last: &mut u64,
        recent: Option<&mut RecentIds>,
        id: &str,
    ) -> Option<u64> {
        if *last != u64::MAX {
            let text = if *last & LOCAL != 0 { ids.id(*last as u32) } else { known.id(*last as u32) };
            if text == id {
                return Some(*last);
            }
        }
        let hash = id_hash(id);
        let mut lookup = || {
            Some(match known.get_hashed(id, hash) {
                Some(i) => u64::from(i),
                None => LOCAL | u64::from(ids.intern_hashed(id, hash)?),
            })
        };
        *last = match recent {
            Some(recent) => recent.get(id, hash, lookup)?,
            None => lookup()?,
        };
        Some(*last)
    }
}

/// A chunk's short ids resolved lately ([`ChunkRows::resolve`]), by hash, each with its
/// bytes: a popular item is resolved here, in one slot that stays in the cache, instead of
/// by the misses of a lookup in the shared table (its bucket, the id's offsets, its text).
/// For items only: a customer's rows come in runs, which `last` already takes.
struct RecentIds(Vec<RecentId>);

/// A slot of [`RecentIds`]; `len == u32::MAX` when empty.
#[derive(Clone, Copy)]
struct RecentId {
    hash: u64,
    resolved: u64,
    len: u32,
    text: [u8; RecentIds::LONGEST],
}

impl RecentIds {
    /// Slots, by the top bits of an id's hash.
    const BITS: u32 = 13;
    /// Longer ids are always looked up.
    const LONGEST: usize = 12;

    fn new() -> Self {
        RecentIds(vec![RecentId { hash: 0, resolved: 0, len: u32::MAX, text: [0; Self::LONGEST] }; 1 << Self::BITS])
    }

    /// The resolved `id` (whose [`id_hash`] is `hash`): from its slot when there, else by
    /// `resolve`, kept in the slot.
    fn get(&mut self, id: &str, hash: u64, resolve: impl FnOnce() -> Option<u64>) -> Option<u64> {
        let bytes = id.as_bytes();
        if bytes.len() > Self::LONGEST {
            return resolve();
        }
        let slot = &mut self.0[(hash >> (64 - Self::BITS)) as usize];
        if slot.hash == hash && slot.len as usize == bytes.len() && slot.text[..bytes.len()] == *bytes {
            return Some(slot.resolved);
        }
        let resolved = resolve()?;
        slot.text[..bytes.len()].copy_from_slice(bytes);
        (slot.hash, slot.resolved, slot.len) = (hash, resolved, bytes.len() as u32);
        Some(resolved)
    }
}

/// A chunk's resolved ids ([`ChunkRows::resolve`]) by their keys ([`Fields::key`]).
#[derive(Default)]
struct KeyCache(Vec<u64>);

impl KeyCache {
    /// The id of `key`, resolved by `resolve` the first time; `resolve` alone without a key.
    fn get(&mut self, key: Option<usize>, resolve: impl FnOnce() -> Option<u64>) -> Option<u64> {
        let Some(key) = key else { return resolve() };
        if key >= self.0.len() {
            self.0.resize(key + 1, u64::MAX);
        }
        if self.0[key] == u64::MAX {
            self.0[key] = resolve()?;
        }
        Some(self.0[key])
    }
}

/// More ids than `u32` indexes (in a chunk: a file of billions of rows without newlines).
fn too_many(path: &str, what: &'static str) -> IngestError {
    IngestError::TooManyIds { path: path.to_string(), ids: TooManyIds(what) }
}

/// Validates the records of one chunk (on a worker thread).
#[allow(clippy::too_many_arguments)]
fn parse_chunk(
    recs: &mut Records,
    known: &Known,
    rows: Vec<ChunkRow>,
    cols: &Resolved,
    opts: &IngestOptions,
    name: &str,
    delimiter: u8,
    with_rejects: bool,
) -> ChunkRows {
    let mut out = ChunkRows { bytes: recs.len(), rows, ..ChunkRows::default() };
    let sum = &mut out.sum;
    let (mut last_customer, mut last_item, mut last_basket) = (u64::MAX, u64::MAX, u32::MAX);
    // Customer and item ids by their chunk keys (Parquet dictionary ids), resolved once.
    let (mut customer_keys, mut item_keys) = (KeyCache::default(), KeyCache::default());
    let mut recent_items = RecentIds::new();
    let (customer_pos, item_pos) = (cols.pos[CUSTOMER].unwrap_or(0), cols.pos[ITEM].unwrap_or(0));
    loop {
        let rec = match recs.next_fields() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => {
                out.stop = Some(e.into());
                break;
            }
        };
        let (line, record) = (rec.line, rec.fields);
        sum.rows_read += 1;
        let parsed = match rec.problem {
            Some(p) => Err(p),
            None => classify(record, cols, opts),
        };
        match parsed {
            Ok(Row::Guest) => sum.guest_rows += 1,
            Ok(Row::ZeroQuantity) => sum.zero_quantity_rows += 1,
            Ok(Row::IgnoredReturn) => sum.return_rows_ignored += 1,
            Ok(Row::Seen { customer, item }) => {
                sum.below_min_value_rows += 1;
                let customer = customer_keys.get(record.key(customer_pos), || {
                    ChunkRows::resolve(&known.customers, &mut out.customers, &mut last_customer, None, customer)
                });
                let item = item_keys.get(record.key(item_pos), || {
                    ChunkRows::resolve(&known.items, &mut out.items, &mut last_item, Some(&mut recent_items), item)
                });
                let (Some(customer), Some(item)) = (customer, item) else {
                    out.stop = Some(too_many(name, customer.map_or("customer", |_| "item")));
                    break;
                };
                out.rows.push(ChunkRow { customer, item, quantity: 0.0, basket: NO_BASKET, has: 0 });
            }
            Ok(Row::Bought { customer, item, quantity, amount, time, basket }) => {
                if quantity > 0.0 {
                    sum.purchase_rows += 1;
                    if let Some(t) = time {
                        out.first_time = Some(out.first_time.map_or(t, |f| f.min(t)));
                        out.last_time = Some(out.last_time.map_or(t, |l| l.max(t)));
                        out.days.add(t, line);
                    }
                } else {
                    sum.return_rows_netted += 1;
                }
                let customer = customer_keys.get(record.key(customer_pos), || {
                    ChunkRows::resolve(&known.customers, &mut out.customers, &mut last_customer, None, customer)
                });
                let item = item_keys.get(record.key(item_pos), || {
                    ChunkRows::resolve(&known.items, &mut out.items, &mut last_item, Some(&mut recent_items), item)
                });
                let basket =
                    basket.map_or(Some(NO_BASKET), |b| ChunkRows::local(&mut out.baskets, &mut last_basket, b));
                let (Some(customer), Some(item), Some(basket)) = (customer, item, basket) else {
                    let what = if customer.is_none() {
                        "customer"
                    } else if item.is_none() {
                        "item"
                    } else {
                        "basket"
                    };
                    out.stop = Some(too_many(name, what));
                    break;
                };
                let mut has = 0;
                if let Some(a) = amount {
                    out.amounts.push(a);
                    has |= HAS_AMOUNT;
                }
                if let Some(t) = time {
                    out.times.push(t);
                    has |= HAS_TIME;
                }
                out.rows.push(ChunkRow { customer, item, quantity, basket, has });
            }
            Err(p) if !opts.skip_invalid => {
                out.stop = Some(recs.row_error(name, line, p).into());
                break;
            }
            Err(p) => {
                sum.rejected_rows += 1;
                *sum.rejected_by_reason.entry(p.class.into()).or_default() += 1;
                if with_rejects {
                    out.rejects.push((line, p, record.encode(delimiter)));
                }
            }
        }
    }
    out
}

/// Reads and validates every row into `sink`; fills the row buckets, basket count and
/// time range of the summary. Chunks of the file are parsed on the worker threads and
/// taken here in file order, so the sink, the summary, the rejects file and the first
/// error are the same for any number of threads and any chunk size. Returns the basket
/// ids of the accepted purchase and return rows, in arrival order.
fn read_rows(
    path: &Path,
    opts: &IngestOptions,
    progress: &mut dyn FnMut(Progress),
    sink: &mut dyn RowSink,
) -> Result<(IngestSummary, Interner), IngestError> {
    opts.check()?;
    let mut file = Delimited::open(path, opts.delimiter, opts.has_header, opts.chunk_bytes)?;
    let mut cols = resolve(&opts.columns, &file)?;
    file.read_only(&cols.pos.iter().flatten().copied().collect::<Vec<_>>());
    let name = file.name().to_string();
    let mut rejects = match (&opts.rejects, opts.skip_invalid) {
        (Some(p), true) => Some(RejectsFile::create(p, file.delimiter)?),
        _ => None,
    };
    let mut sum = IngestSummary {
        gzip: file.gzip,
        delimiter: delimiter_name(file.delimiter),
        columns_found: cols.found.take(),
        counts: Some(if cols.pos[QUANTITY].is_some() { CountUnit::Units } else { CountUnit::Rows }),
        ..IngestSummary::default()
    };
    let mut baskets = Interner::default();
    let (mut first_time, mut last_time) = (i64::MAX, i64::MIN);
    let mut day_counts = DayCounts::default();
    let meter = file.meter();
    let (delimiter, with_rejects) = (file.delimiter, rejects.is_some());
    // Accepted rows and bytes so far, until the sink is told how many rows to expect.
    let mut expect = (!file.gzip).then_some(file.size()).flatten().map(|size| (size, 0usize, 0u64));
    let known = Mutex::new(Known::default());
    // The row buffers of merged chunks, handed to the next chunks: reused pages, not fresh
    // ones the kernel zeroes for every chunk (a row group's buffer is too large for the
    // allocator to keep when freed).
    let spare: Mutex<Vec<Vec<ChunkRow>>> = Mutex::new(Vec::new());
    let parse = |recs: &mut Records| {
        let known = known.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let rows = spare.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        parse_chunk(recs, &known, rows, &cols, opts, &name, delimiter, with_rejects)
    };
    let mut merge = |c: ChunkRows| -> Result<(), IngestError> {
        let too_many = |ids| IngestError::TooManyIds { path: name.clone(), ids };
        let (cmap, imap) = sink.intern(&c.customers, &c.items).map_err(too_many)?;
        let bmap = baskets.intern_all(&c.baskets).ok_or_else(|| too_many(TooManyIds("basket")))?;
        let index = |x: u64, map: &[u32]| if x & LOCAL != 0 { map[x as u32 as usize] } else { x as u32 };
        let (mut amounts, mut times) = (c.amounts.iter().copied(), c.times.iter().copied());
        for r in &c.rows {
            let (customer, item) = (CustomerIdx(index(r.customer, &cmap)), ItemIdx(index(r.item, &imap)));
            if r.quantity == 0.0 {
                sink.seen(customer, item);
            } else {
                let basket = (r.basket != NO_BASKET).then(|| bmap[r.basket as usize]);
                let amount = if r.has & HAS_AMOUNT != 0 { amounts.next() } else { None };
                let time = if r.has & HAS_TIME != 0 { times.next() } else { None };
                sink.bought(Bought { customer, item, quantity: r.quantity, amount, time, basket });
            }
        }
        let (customers, items) = sink.ids();
        known.lock().unwrap_or_else(PoisonError::into_inner).refresh(customers, items);
        if let Some((size, rows, bytes)) = expect.as_mut() {
            (*rows, *bytes) = (*rows + c.rows.len(), *bytes + c.bytes as u64);
            // Once a few chunks are in, at the rate they hold rows, with a margin.
            if *bytes >= (*size / 64).min(16 << 20) {
                sink.reserve((*rows as f64 * *size as f64 / *bytes as f64 * 1.05) as usize + 1024);
                expect = None;
            }
        }
        let before = sum.rows_read;
        let s = &c.sum;
        sum.rows_read += s.rows_read;
        sum.purchase_rows += s.purchase_rows;
        sum.return_rows_netted += s.return_rows_netted;
        sum.return_rows_ignored += s.return_rows_ignored;
        sum.below_min_value_rows += s.below_min_value_rows;
        sum.guest_rows += s.guest_rows;
        sum.zero_quantity_rows += s.zero_quantity_rows;
        sum.rejected_rows += s.rejected_rows;
        for (reason, n) in &s.rejected_by_reason {
            *sum.rejected_by_reason.entry(reason.clone()).or_default() += n;
        }
        first_time = first_time.min(c.first_time.unwrap_or(i64::MAX));
        last_time = last_time.max(c.last_time.unwrap_or(i64::MIN));
        day_counts.absorb(c.days);
        if let Some(r) = rejects.as_mut() {
            for (line, p, raw) in &c.rejects {
                r.write_encoded(*line, p, raw)?;
            }
        }
        if before >> 16 != sum.rows_read >> 16 {
            progress(meter.at(sum.rows_read));
        }
        let mut rows = c.rows;
        rows.clear();
        spare.lock().unwrap_or_else(PoisonError::into_inner).push(rows);
        c.stop.map_or(Ok(()), Err)
    };
    file.par_chunks(&parse, &mut merge)?;
    progress(meter.at(sum.rows_read));
    if let Some(r) = rejects {
        r.commit()?;
    }
    sum.baskets = cols.pos[BASKET].map(|_| baskets.len() as u64);
    if first_time <= last_time {
        (sum.first_time, sum.last_time) = (Some(first_time), Some(last_time));
    }
    sum.time_outliers = day_counts.outliers();
    Ok((sum, baskets))
}

/// "12 guest, 3 rejected, ..." for the buckets that are not empty.
pub fn summary_breakdown(s: &IngestSummary) -> String {
    let parts = [
        (s.purchase_rows, "purchases"),
        (s.return_rows_netted, "returns netted"),
        (s.return_rows_ignored, "returns ignored"),
        (s.below_min_value_rows, "below the minimum value"),
        (s.guest_rows, "without a customer id"),
        (s.zero_quantity_rows, "with quantity zero"),
        (s.rejected_rows, "rejected"),
    ];
    let v: Vec<String> = parts.iter().filter(|p| p.0 > 0).map(|(n, what)| format!("{n} {what}")).collect();
    if v.is_empty() { "no rows".into() } else { v.join(", ") }
}

enum Row<'a> {
    Guest,
    ZeroQuantity,
    IgnoredReturn,
    Seen {
        customer: &'a str,
        item: &'a str,
    },
    Bought {
        customer: &'a str,
        item: &'a str,
        quantity: f64,
        amount: Option<f64>,
        time: Option<i64>,
        basket: Option<&'a str>,
    },
}

/// Whether an id is empty or only whitespace: an id that starts with a visible ASCII
/// character (nearly all) is neither, without the Unicode-aware trim.
fn blank(id: &str) -> bool {
    !matches!(id.as_bytes().first(), Some(0x21..=0x7e)) && id.trim().is_empty()
}

/// Validates one record; fields are checked in a fixed order so the first problem
/// reported never depends on anything but the row.
fn classify<'a>(rec: &'a dyn Fields, cols: &Resolved, opts: &IngestOptions) -> Result<Row<'a>, RowProblem> {
    let problem =
        |k: usize, class: &'static str, reason: String| RowProblem { column: cols.names[k].clone(), class, reason };
    if rec.len() < cols.width {
        let k = (0..8).find(|&k| cols.pos[k].is_some_and(|p| p >= rec.len())).unwrap_or(0);
        return Err(problem(
            k,
            "missing field",
            format!("the row has {} fields, this column is field {}", rec.len(), cols.pos[k].unwrap_or(0) + 1),
        ));
    }
    let text = |k: usize| -> Result<Option<&'a str>, RowProblem> {
        let Some(p) = cols.pos[k] else { return Ok(None) };
        rec.text(p)
            .map(Some)
            .map_err(|e| problem(k, "invalid UTF-8", format!("invalid UTF-8 at byte {} of the field", e.valid_up_to())))
    };
    let number = |k: usize| -> Result<Option<f64>, RowProblem> {
        let Some(p) = cols.pos[k] else { return Ok(None) };
        if let Some(v) = rec.number(p) {
            return Ok(Some(v));
        }
        let t = text(k)?.unwrap_or_default().trim();
        if t.is_empty() {
            Err(problem(k, "empty number", "empty, expected a number".into()))
        } else {
            Err(problem(k, "invalid number", format!("{} is not a number", shown(t))))
        }
    };
    let customer = text(CUSTOMER)?.unwrap_or_default();
    if blank(customer) {
        return Ok(Row::Guest);
    }
    let item = text(ITEM)?.unwrap_or_default();
    if blank(item) {
        return Err(problem(ITEM, "empty item id", "the item id is empty".into()));
    }
    let quantity = number(QUANTITY)?.unwrap_or(1.0);
    if quantity == 0.0 {
        return Ok(Row::ZeroQuantity);
    }
    if !crate::matrix::QUANTITY_RANGE.contains(&quantity.abs()) {
        return Err(problem(
            QUANTITY,
            "quantity out of range",
            format!(
                "quantity {} is out of range (accepted: {} to {} in absolute value)",
                shown_number(quantity),
                crate::matrix::QUANTITY_RANGE.start(),
                crate::matrix::QUANTITY_RANGE.end()
            ),
        ));
    }
    if quantity < 0.0 {
        match opts.returns {
            Returns::Net => {}
            Returns::Ignore => return Ok(Row::IgnoredReturn),
            Returns::Reject => {
                return Err(problem(
                    QUANTITY,
                    "negative quantity",
                    format!(
                        "negative quantity {} (a return); --returns net or ignore accepts it",
                        shown_number(quantity)
                    ),
                ));
            }
        }
    }
    let price = number(PRICE)?;
    if let Some(p) = price.filter(|&p| p < 0.0) {
        return Err(problem(
            PRICE,
            "negative price",
            format!("price {} is negative; prices are 0 or more", shown_number(p)),
        ));
    }
    let amount = match (price, number(AMOUNT)?) {
        (Some(price), _) => Some(price * quantity),
        (None, Some(a)) if a * quantity < 0.0 => {
            return Err(problem(
                AMOUNT,
                "amount of the wrong sign",
                format!(
                    "amount {} has the opposite sign of the quantity {}; a purchase's amount is 0 or more, a return's 0 or less",
                    shown_number(a),
                    shown_number(quantity)
                ),
            ));
        }
        (None, amount) => amount,
    };
    let time = match cols.pos[TIME].map(|p| rec.time(p)) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            let t = text(TIME)?.unwrap_or_default();
            return Err(problem(
                TIME,
                "invalid time",
                format!(
                    "{} is not a date or time (accepted: unix seconds, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, RFC 3339)",
                    shown(t)
                ),
            ));
        }
    };
    let rating = number(RATING)?;
    let basket = text(BASKET)?;
    if let (Some(r), Some(min)) = (rating, opts.min_value) {
        if r < min {
            return Ok(Row::Seen { customer, item });
        }
    }
    Ok(Row::Bought { customer, item, quantity, amount, time, basket })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_give_each_id_its_own_resolution() {
        // Far more ids than slots, popular ones more often: slots are shared and replaced,
        // and long ids pass by them. `resolve` is the oracle: a wrong hit returns another's.
        let ids: Vec<String> =
            (0..50_000).map(|i| if i % 7 == 0 { format!("a-long-item-id-{i}") } else { format!("i{i}") }).collect();
        let mut recent = RecentIds::new();
        let mut x = 7u64;
        for _ in 0..400_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let k = ((x >> 33) as usize % ids.len()).min((x >> 13) as usize % ids.len());
            let id = &ids[k];
            assert_eq!(recent.get(id, id_hash(id), || Some(k as u64 * 3 + 1)), Some(k as u64 * 3 + 1), "{id}");
        }
    }
}
