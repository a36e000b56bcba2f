//! A product catalog: per item its name, category path, price, brand or tier and launch
//! date (for cross-sell and up-sell), read from a CSV file (or a precise error).
//!
//! Files are opened like purchase files ([`crate::ingest`]): plain or gzip (by magic
//! bytes), `-` for standard input, the delimiter (`,` `\t` `;` `|` `::`) sniffed when not
//! given, columns by header name or 1-based position. The category path has one to
//! [`MAX_LEVELS`] levels, top level first, given either as several columns (The Complete
//! Journey: department, product category, product type) or as one column split by a
//! separator (`Food > Dairy > Milk`).
//!
//! Rules, row by row, fields checked in a fixed order (item, name, category, price,
//! brand, launch), then the item id against the items already kept:
//!
//! - the item id is required and kept exactly as written (spaces included), like the
//!   item ids of purchase files, so the two match byte for byte;
//! - the name is kept exactly; an empty name is no name;
//! - category level names and the brand are trimmed; an empty brand is no brand;
//! - the path is the leading non-empty levels: an empty category is allowed (counted as
//!   `no_category`), and a path with an empty level before a non-empty one stops at the
//!   gap (counted as `category_gaps`: The Complete Journey has products with a type but
//!   no category); more than four levels is a bad row;
//! - the price is a number `>= 0` (zero allowed, counted); an empty price is no price;
//! - the launch date takes the formats of [`crate::time::parse`]; empty is no date;
//! - an item id given twice is an error naming both lines.
//!
//! By default the first bad row stops the read with `FILE:LINE: column NAME: reason`;
//! with `skip_invalid` bad rows (and later duplicates: the first row of an item is kept)
//! are counted by reason and written to a rejects file (`line,column,reason,record`, the
//! format of purchase rejects). Every data row lands in one bucket: `rows_read = items +
//! rejected_rows`.
//!
//! The result does not depend on the order of the rows: items are indexed in natural id
//! order (as in [`crate::ids`]), and each distinct category path prefix is one node,
//! numbered in the natural order of the paths (level by level), so a parent comes before
//! its children.
//!
//! ```
//! use cobuy::offers::catalog::{Catalog, CatalogColumns, CatalogOptions};
//!
//! # let dir = std::env::temp_dir().join(format!("cobuy-catalog-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("catalog.csv");
//! std::fs::write(&path, "sku,path,price\nB2,Food > Dairy > Milk,1.10\nA1,Food > Dairy,0.99\nC3,,\n").unwrap();
//!
//! let mut cols = CatalogColumns::new("sku", ["path"]);
//! cols.category_separator = Some(">".into());
//! cols.price = Some("price".into());
//! let (catalog, summary) = Catalog::read(&path, &CatalogOptions::new(cols)).unwrap();
//! assert_eq!((summary.items, summary.no_category, summary.categories_per_level.clone()), (3, 1, vec![1, 1, 1]));
//!
//! let milk = catalog.item(catalog.index_of("B2").unwrap());
//! let names: Vec<&str> = milk.category.iter().map(|&n| catalog.category_name(n)).collect();
//! assert_eq!(names, ["Food", "Dairy", "Milk"]);
//! assert_eq!(catalog.parent(milk.category[2]), Some(milk.category[1]));
//! assert_eq!(milk.price, Some(1.10));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::ids::{IdTable, natural_cmp};
use crate::ingest::{
    ColumnRef, Delimited, ITEM_EXAMPLES, ITEM_NAMES, RejectsFile, RowProblem, SourceError, check_options,
    delimiter_name, detect, row_error, shown, shown_number,
};

/// The most levels a category path may have.
pub const MAX_LEVELS: usize = 4;

/// A category node: one distinct path prefix (`Food`, `Food > Dairy`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CategoryIdx(pub u32);

impl CategoryIdx {
    /// The index as a `usize`, for slicing.
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// Which columns of a catalog file hold what. Only the item and the category are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogColumns {
    /// Item id (matches the item ids of purchase files exactly); [`ColumnRef::Detect`]
    /// finds it by a well-known item column name, as purchases' is found.
    pub item: ColumnRef,
    /// Display name.
    #[serde(default)]
    pub name: Option<ColumnRef>,
    /// One to four category columns, top level first; or one column and a separator.
    pub category: Vec<ColumnRef>,
    /// Splits the one category column into levels (such as `>` or `/`).
    #[serde(default)]
    pub category_separator: Option<String>,
    /// Price (a number, 0 or more).
    #[serde(default)]
    pub price: Option<ColumnRef>,
    /// Brand or tier (text, such as `National` / `Private`).
    #[serde(default)]
    pub brand: Option<ColumnRef>,
    /// Launch date (the formats of [`crate::time::parse`]).
    #[serde(default)]
    pub launch: Option<ColumnRef>,
}

impl CatalogColumns {
    /// The item column and the category columns (top level first); nothing else.
    pub fn new<C: Into<ColumnRef>>(item: impl Into<ColumnRef>, category: impl IntoIterator<Item = C>) -> Self {
        CatalogColumns {
            item: item.into(),
            name: None,
            category: category.into_iter().map(Into::into).collect(),
            category_separator: None,
            price: None,
            brand: None,
            launch: None,
        }
    }
}

/// How to read a catalog file.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogOptions {
    /// Column mapping.
    pub columns: CatalogColumns,
    /// Field delimiter; `None` sniffs it from the first line. [`DOUBLE_COLON`](crate::ingest::DOUBLE_COLON) reads
    /// `::`-separated files.
    pub delimiter: Option<u8>,
    /// Whether the first line is a header.
    pub has_header: bool,
    /// Count and skip bad rows (and later duplicates) instead of stopping at the first.
    pub skip_invalid: bool,
    /// Where skipped rows go (CSV: line, column, reason, record). Only with `skip_invalid`.
    pub rejects: Option<PathBuf>,
}

impl CatalogOptions {
    /// Defaults: header, sniffed delimiter, stop at the first bad row.
    pub fn new(columns: CatalogColumns) -> Self {
        CatalogOptions { columns, delimiter: None, has_header: true, skip_invalid: false, rejects: None }
    }

    /// Checks option combinations before any file is opened.
    pub fn check(&self) -> Result<(), CatalogError> {
        let bad = |m: &str| Err(CatalogError::Options(m.to_string()));
        let c = &self.columns;
        if c.category.is_empty() {
            return bad("give one to four category columns, top level first");
        }
        if c.category.len() > MAX_LEVELS {
            return Err(CatalogError::TooManyLevels { given: c.category.len() });
        }
        if let Some(sep) = &c.category_separator {
            if sep.is_empty() {
                return bad("the category separator must not be empty");
            }
            if c.category.len() > 1 {
                return bad("a category separator splits one category column; give one column, or no separator");
            }
        }
        check_options(self.delimiter, self.rejects.is_some(), self.skip_invalid).or_else(bad)
    }
}

/// What a read did with every row.
///
/// Invariant: `rows_read = items + rejected_rows`. `zero_price`, `no_price`,
/// `no_category` and `category_gaps` count kept items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogSummary {
    /// Data rows (not counting the header).
    pub rows_read: u64,
    /// Rows kept as items.
    pub items: u64,
    /// Rows rejected as invalid or as a repeated item id (only with `skip_invalid`).
    pub rejected_rows: u64,
    /// Rejected rows by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Items priced 0.
    pub zero_price: u64,
    /// Items without a price (an empty field, or no price column).
    pub no_price: u64,
    /// Items without a category.
    pub no_category: u64,
    /// Items whose path had an empty level before a non-empty one: the path stops at the gap.
    pub category_gaps: u64,
    /// Distinct category nodes at each level, top level first (as many entries as the
    /// deepest path has levels).
    pub categories_per_level: Vec<usize>,
    /// Distinct brands.
    pub brands: usize,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
    /// The delimiter used.
    pub delimiter: String,
    /// The item id column's header name and 1-based position, when it was found by its
    /// name ([`ColumnRef::Detect`], a well-known item column name of [`ITEM_NAMES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_col_found: Option<(String, usize)>,
}

/// Why a catalog file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Contradictory or out-of-range options.
    #[error("{0}")]
    Options(String),
    /// More category columns than a path has levels.
    #[error("{given} category columns given; a category path has at most {MAX_LEVELS} levels")]
    TooManyLevels {
        /// Columns given.
        given: usize,
    },
    /// The file, its header or a row (the first bad one, when not skipping).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An item id given on two rows (when not skipping).
    #[error("{path}:{line}: item {item:?} already given on line {first_line}")]
    DuplicateItem {
        /// The file.
        path: String,
        /// The item id.
        item: String,
        /// Line of the row that was kept.
        first_line: u64,
        /// Line of the repeat.
        line: u64,
    },
    /// Every row was rejected.
    #[error("{path}: no items left: {rows} rows read, all rejected")]
    NothingKept {
        /// The file.
        path: String,
        /// Rows read.
        rows: u64,
    },
    /// More distinct items or category nodes than `u32` indexes.
    #[error("{path}: more than {} distinct {what}", u32::MAX - 1)]
    TooMany {
        /// The file.
        path: String,
        /// "items" or "category paths".
        what: &'static str,
    },
}

impl CatalogError {
    /// Whether the error is the machine's (a disk or the rejects file failing) rather than
    /// the input's.
    pub fn is_io(&self) -> bool {
        matches!(self, CatalogError::Source(e) if e.is_io())
    }
}

/// One catalog item, borrowed from the [`Catalog`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatalogItem<'a> {
    /// Item id, exactly as in the file.
    pub id: &'a str,
    /// Display name.
    pub name: Option<&'a str>,
    /// Category path, top level first (empty when the item has no category); the last
    /// node is the item's own category, and each node's parent is the one before it.
    pub category: &'a [CategoryIdx],
    /// Price (0 or more).
    pub price: Option<f64>,
    /// Brand or tier.
    pub brand: Option<&'a str>,
    /// Launch date, unix seconds (UTC).
    pub launch: Option<i64>,
}

/// A model's item table mapped onto a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alignment {
    /// Per model item (by index), its catalog index, `None` when the catalog lacks it.
    pub per_item: Vec<Option<u32>>,
    /// Model items the catalog lacks (model indices, ascending).
    pub missing: Vec<u32>,
    /// Catalog items the model does not know.
    pub catalog_only: usize,
}

impl Alignment {
    /// Model items found in the catalog.
    pub fn matched(&self) -> usize {
        self.per_item.len() - self.missing.len()
    }
}

/// A category node: its name, its parent and its whole path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    name: Box<str>,
    /// Level (0 = top).
    depth: u8,
    /// `path[..=depth]`: the nodes from the top level down to this one.
    path: [CategoryIdx; MAX_LEVELS],
}

/// Items in natural id order with their attributes, and the category tree.
///
/// Methods taking a [`CategoryIdx`] expect a node of this catalog and panic on any other,
/// like slice indexing; file input never panics.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    ids: IdTable,
    names: Vec<Option<Box<str>>>,
    /// The item's own (deepest) category node.
    categories: Vec<Option<CategoryIdx>>,
    prices: Vec<Option<f64>>,
    brands: Vec<Option<u32>>,
    launches: Vec<Option<i64>>,
    /// Distinct brands in natural order.
    brand_names: Vec<Box<str>>,
    /// Category nodes in natural order of their paths.
    nodes: Vec<Node>,
}

impl Catalog {
    /// Reads a catalog file.
    pub fn read(path: impl AsRef<Path>, opts: &CatalogOptions) -> Result<(Catalog, CatalogSummary), CatalogError> {
        read(path.as_ref(), opts)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the catalog holds no items.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The item ids, in index (natural) order.
    pub fn ids(&self) -> &IdTable {
        &self.ids
    }

    /// An item as a reader knows it, for reasons: `NAME (ID)` when the catalogue names it
    /// (by something other than its id), else the id.
    pub fn label(&self, item_id: &str) -> String {
        match self.index_of(item_id).and_then(|c| self.get(c)).and_then(|item| item.name) {
            Some(name) if !name.is_empty() && name != item_id => format!("{name} ({item_id})"),
            _ => item_id.to_string(),
        }
    }

    /// The index of an item id (exact match).
    pub fn index_of(&self, item_id: &str) -> Option<u32> {
        self.ids.index_of(item_id)
    }

    /// The item at an index.
    ///
    /// # Panics
    ///
    /// When `idx` is not below [`Catalog::len`]; [`Catalog::get`] does not panic.
    pub fn item(&self, idx: u32) -> CatalogItem<'_> {
        match self.get(idx) {
            Some(item) => item,
            None => panic!("catalog index {idx} out of range (the catalog has {} items)", self.len()),
        }
    }

    /// The item at an index, `None` when out of range.
    pub fn get(&self, idx: u32) -> Option<CatalogItem<'_>> {
        let i = idx as usize;
        if i >= self.len() {
            return None;
        }
        Some(CatalogItem {
            id: self.ids.id(idx),
            name: self.names[i].as_deref(),
            category: self.categories[i].map_or(&[][..], |n| self.category_path(n)),
            price: self.prices[i],
            brand: self.brands[i].map(|b| &*self.brand_names[b as usize]),
            launch: self.launches[i],
        })
    }

    /// Number of category nodes (distinct path prefixes).
    pub fn category_count(&self) -> usize {
        self.nodes.len()
    }

    /// A node's own name (its last level).
    ///
    /// # Panics
    ///
    /// When `node` is not a node of this catalog.
    pub fn category_name(&self, node: CategoryIdx) -> &str {
        &self.nodes[node.get()].name
    }

    /// A node's parent; `None` for a top-level node.
    pub fn parent(&self, node: CategoryIdx) -> Option<CategoryIdx> {
        let n = &self.nodes[node.get()];
        (n.depth > 0).then(|| n.path[n.depth as usize - 1])
    }

    /// A node's level: 0 for a top-level node (a department), 1 for its children, ...
    pub fn depth(&self, node: CategoryIdx) -> usize {
        self.nodes[node.get()].depth as usize
    }

    /// The nodes from the top level down to `node` (inclusive).
    pub fn category_path(&self, node: CategoryIdx) -> &[CategoryIdx] {
        let n = &self.nodes[node.get()];
        &n.path[..=n.depth as usize]
    }

    /// The node of a path of names, top level first (`None` when no item has it).
    pub fn find_category(&self, names: &[&str]) -> Option<CategoryIdx> {
        if names.is_empty() || names.len() > MAX_LEVELS {
            return None;
        }
        let cmp = |node: &Node| {
            let path = &node.path[..=node.depth as usize];
            for (p, name) in path.iter().zip(names) {
                match natural_cmp(&self.nodes[p.get()].name, name) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            path.len().cmp(&names.len())
        };
        self.nodes.binary_search_by(cmp).ok().map(|i| CategoryIdx(i as u32))
    }

    /// The item's category at a level (0 = top); `None` when its path is shorter.
    pub fn category_of(&self, idx: u32, level: usize) -> Option<CategoryIdx> {
        let node = (*self.categories.get(idx as usize)?)?;
        self.category_path(node).get(level).copied()
    }

    /// Maps a model's item table onto the catalog: per model item, its catalog index
    /// (`None` when missing), the missing model items, and the number of catalog items
    /// the model does not know. Both tables are in natural order, so this is one merge.
    pub fn align(&self, items: &IdTable) -> Alignment {
        let mut per_item = Vec::with_capacity(items.len());
        let mut missing = Vec::new();
        let (mut j, mut matched) = (0u32, 0usize);
        let len = self.len() as u32;
        for (i, id) in items.iter().enumerate() {
            while j < len && natural_cmp(self.ids.id(j), id) == Ordering::Less {
                j += 1;
            }
            if j < len && self.ids.id(j) == id {
                per_item.push(Some(j));
                matched += 1;
                j += 1;
            } else {
                per_item.push(None);
                missing.push(i as u32);
            }
        }
        Alignment { per_item, missing, catalog_only: self.len() - matched }
    }
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// A resolved column: 0-based position and display name.
#[derive(Debug, Clone)]
struct Col {
    pos: usize,
    name: String,
}

struct Resolved {
    item: Col,
    name: Option<Col>,
    category: Vec<Col>,
    price: Option<Col>,
    brand: Option<Col>,
    launch: Option<Col>,
    width: usize,
}

impl Resolved {
    /// Every column, in validation order.
    fn in_order(&self) -> impl Iterator<Item = &Col> {
        std::iter::once(&self.item)
            .chain(&self.name)
            .chain(&self.category)
            .chain(&self.price)
            .chain(&self.brand)
            .chain(&self.launch)
    }
}

fn resolve(c: &CatalogColumns, file: &Delimited) -> Result<Resolved, SourceError> {
    let one = |c: &ColumnRef| file.column(c).map(|(pos, name)| Col { pos, name });
    let opt = |c: &Option<ColumnRef>| c.as_ref().map(one).transpose();
    let item = match c.item {
        ColumnRef::Detect => detect("item", "--catalog-item-col", ITEM_NAMES, ITEM_EXAMPLES, file)
            .map(|(pos, name)| Col { pos, name })?,
        _ => one(&c.item)?,
    };
    let mut r = Resolved {
        item,
        name: opt(&c.name)?,
        category: c.category.iter().map(one).collect::<Result<_, _>>()?,
        price: opt(&c.price)?,
        brand: opt(&c.brand)?,
        launch: opt(&c.launch)?,
        width: 0,
    };
    r.width = r.in_order().map(|c| c.pos + 1).max().unwrap_or(0);
    Ok(r)
}

/// A valid row, borrowed from its record.
struct Parsed<'a> {
    item: &'a str,
    name: Option<&'a str>,
    levels: [&'a str; MAX_LEVELS],
    depth: usize,
    gap: bool,
    price: Option<f64>,
    brand: Option<&'a str>,
    launch: Option<i64>,
}

fn problem(col: &Col, class: &'static str, reason: String) -> RowProblem {
    RowProblem { column: col.name.clone(), class, reason }
}

fn text<'a>(rec: &'a csv::ByteRecord, col: &Col) -> Result<&'a str, RowProblem> {
    let bytes = rec.get(col.pos).unwrap_or_default();
    std::str::from_utf8(bytes)
        .map_err(|e| problem(col, "invalid UTF-8", format!("invalid UTF-8 at byte {} of the field", e.valid_up_to())))
}

/// Validates one record; fields are checked in a fixed order so the first problem
/// reported never depends on anything but the row.
fn parse<'a>(rec: &'a csv::ByteRecord, cols: &Resolved, sep: Option<&str>) -> Result<Parsed<'a>, RowProblem> {
    if rec.len() < cols.width {
        if let Some(col) = cols.in_order().find(|c| c.pos >= rec.len()) {
            return Err(problem(
                col,
                "missing field",
                format!("the row has {} fields, this column is field {}", rec.len(), col.pos + 1),
            ));
        }
    }
    let item = text(rec, &cols.item)?;
    if item.trim().is_empty() {
        return Err(problem(&cols.item, "empty item id", "the item id is empty".into()));
    }
    let name = match &cols.name {
        Some(c) => Some(text(rec, c)?).filter(|n| !n.trim().is_empty()),
        None => None,
    };

    // Category: the levels up to the last non-empty one; the path is the leading non-empty ones.
    let mut levels = [""; MAX_LEVELS];
    let mut used = 0; // levels up to and including the last non-empty one
    let mut depth = 0; // leading non-empty levels
    let mut gap = false;
    let mut push = |k: usize, level: &'a str| {
        if level.is_empty() {
            return;
        }
        if k < MAX_LEVELS {
            levels[k] = level;
        }
        if depth == k {
            depth += 1;
        } else {
            gap = true;
        }
        used = k + 1;
    };
    match sep {
        Some(sep) => {
            let col = &cols.category[0];
            let t = text(rec, col)?;
            for (k, level) in t.split(sep).enumerate() {
                push(k, level.trim());
            }
            if used > MAX_LEVELS {
                return Err(problem(
                    col,
                    "too many category levels",
                    format!("{} has {used} category levels; a path has at most {MAX_LEVELS}", shown(t)),
                ));
            }
        }
        None => {
            for (k, col) in cols.category.iter().enumerate() {
                push(k, text(rec, col)?.trim());
            }
        }
    }
    let depth = depth.min(MAX_LEVELS);

    let price = match &cols.price {
        None => None,
        Some(c) => {
            let t = text(rec, c)?.trim();
            match t.parse::<f64>() {
                _ if t.is_empty() => None,
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v + 0.0), // -0 becomes 0
                Ok(v) if v.is_finite() => {
                    return Err(problem(
                        c,
                        "negative price",
                        format!("price {} is negative; prices are 0 or more", shown_number(v)),
                    ));
                }
                _ => return Err(problem(c, "invalid price", format!("{} is not a number", shown(t)))),
            }
        }
    };
    let brand = match &cols.brand {
        Some(c) => Some(text(rec, c)?.trim()).filter(|b| !b.is_empty()),
        None => None,
    };
    let launch = match &cols.launch {
        None => None,
        Some(c) => {
            let t = text(rec, c)?;
            if t.trim().is_empty() {
                None
            } else {
                Some(crate::time::parse(t).ok_or_else(|| {
                    problem(
                        c,
                        "invalid launch date",
                        format!(
                            "{} is not a date or time (accepted: unix seconds, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, RFC 3339)",
                            shown(t)
                        ),
                    )
                })?)
            }
        }
    };
    Ok(Parsed { item, name, levels, depth, gap, price, brand, launch })
}

/// A kept row, in arrival order.
struct RawItem {
    id: Box<str>,
    line: u64,
    name: Option<Box<str>>,
    node: Option<u32>,
    price: Option<f64>,
    brand: Option<u32>,
    launch: Option<i64>,
}

/// A category node in arrival order; a parent always arrives before its children.
struct RawNode {
    name: Box<str>,
    parent: Option<u32>,
    children: FxHashMap<Box<str>, u32>,
}

/// Collects kept rows, interning category paths and brands in arrival order.
#[derive(Default)]
struct Builder {
    items: Vec<RawItem>,
    /// Item id to its row in `items`.
    lookup: FxHashMap<Box<str>, u32>,
    nodes: Vec<RawNode>,
    roots: FxHashMap<Box<str>, u32>,
    brands: Vec<Box<str>>,
    brand_lookup: FxHashMap<Box<str>, u32>,
}

/// `None` when `len` more ids would not fit `u32` indices (with `u32::MAX` kept free).
fn next_index(len: usize) -> Option<u32> {
    u32::try_from(len).ok().filter(|&i| i < u32::MAX)
}

impl Builder {
    /// The line of the kept row with this item id.
    fn kept_line(&self, id: &str) -> Option<u64> {
        self.lookup.get(id).map(|&k| self.items[k as usize].line)
    }

    fn node(&mut self, parent: Option<u32>, name: &str) -> Option<u32> {
        let next = next_index(self.nodes.len())?;
        let map = match parent {
            None => &mut self.roots,
            Some(p) => &mut self.nodes[p as usize].children,
        };
        if let Some(&n) = map.get(name) {
            return Some(n);
        }
        map.insert(name.into(), next);
        self.nodes.push(RawNode { name: name.into(), parent, children: FxHashMap::default() });
        Some(next)
    }

    fn brand(&mut self, name: &str) -> Option<u32> {
        if let Some(&b) = self.brand_lookup.get(name) {
            return Some(b);
        }
        let next = next_index(self.brands.len())?;
        self.brands.push(name.into());
        self.brand_lookup.insert(name.into(), next);
        Some(next)
    }

    /// Adds a row whose item id is new. `Err` names what overflowed.
    fn add(&mut self, row: &Parsed<'_>, line: u64) -> Result<(), &'static str> {
        let k = next_index(self.items.len()).ok_or("items")?;
        let mut node = None;
        for level in &row.levels[..row.depth] {
            node = Some(self.node(node, level).ok_or("category paths")?);
        }
        let brand = match row.brand {
            Some(b) => Some(self.brand(b).ok_or("brands")?),
            None => None,
        };
        self.lookup.insert(row.item.into(), k);
        self.items.push(RawItem {
            id: row.item.into(),
            line,
            name: row.name.map(Into::into),
            node,
            price: row.price,
            brand,
            launch: row.launch,
        });
        Ok(())
    }

    /// Sorts items, nodes and brands into natural order.
    fn finish(self) -> Option<Catalog> {
        let Builder { items, nodes: raw_nodes, brands: raw_brands, .. } = self;

        // Nodes: by their paths of names, level by level (a prefix first).
        let names_of = |mut n: u32| {
            let mut path = [""; MAX_LEVELS];
            let mut len = 0;
            loop {
                let node = &raw_nodes[n as usize];
                path[len] = &*node.name;
                len += 1;
                match node.parent {
                    Some(p) if len < MAX_LEVELS => n = p,
                    _ => break,
                }
            }
            path[..len].reverse();
            (path, len)
        };
        let paths: Vec<([&str; MAX_LEVELS], usize)> = (0..raw_nodes.len() as u32).map(names_of).collect();
        let mut order: Vec<u32> = (0..raw_nodes.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let ((pa, la), (pb, lb)) = (&paths[a as usize], &paths[b as usize]);
            pa[..*la]
                .iter()
                .zip(&pb[..*lb])
                .map(|(x, y)| natural_cmp(x, y))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| la.cmp(lb))
        });
        let node_remap = invert(&order);
        let mut nodes: Vec<Node> = Vec::with_capacity(raw_nodes.len());
        for &old in &order {
            let raw = &raw_nodes[old as usize];
            let mut path = [CategoryIdx(0); MAX_LEVELS];
            let depth = match raw.parent {
                // A parent sorts before its children, so it is already in `nodes`.
                Some(p) => {
                    let parent = nodes.get(node_remap[p as usize] as usize)?;
                    let d = parent.depth as usize + 1;
                    path[..d].copy_from_slice(&parent.path[..d]);
                    d
                }
                None => 0,
            };
            path[depth] = CategoryIdx(node_remap[old as usize]);
            nodes.push(Node { name: raw.name.clone(), depth: depth as u8, path });
        }

        let mut brand_order: Vec<u32> = (0..raw_brands.len() as u32).collect();
        brand_order.sort_unstable_by(|&a, &b| natural_cmp(&raw_brands[a as usize], &raw_brands[b as usize]));
        let brand_remap = invert(&brand_order);
        let brand_names = brand_order.iter().map(|&b| raw_brands[b as usize].clone()).collect();

        let mut item_order: Vec<u32> = (0..items.len() as u32).collect();
        item_order.sort_unstable_by(|&a, &b| natural_cmp(&items[a as usize].id, &items[b as usize].id));
        let ids = IdTable::from_sorted(&item_order.iter().map(|&k| &*items[k as usize].id).collect::<Vec<&str>>())?;
        let sorted = || item_order.iter().map(|&k| &items[k as usize]);
        Some(Catalog {
            ids,
            names: sorted().map(|it| it.name.clone()).collect(),
            categories: sorted().map(|it| it.node.map(|n| CategoryIdx(node_remap[n as usize]))).collect(),
            prices: sorted().map(|it| it.price).collect(),
            brands: sorted().map(|it| it.brand.map(|b| brand_remap[b as usize])).collect(),
            launches: sorted().map(|it| it.launch).collect(),
            brand_names,
            nodes,
        })
    }
}

/// `remap[old] = new` for `order[new] = old`.
fn invert(order: &[u32]) -> Vec<u32> {
    let mut remap = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old as usize] = new as u32;
    }
    remap
}

fn read(path: &Path, opts: &CatalogOptions) -> Result<(Catalog, CatalogSummary), CatalogError> {
    opts.check()?;
    let mut file = Delimited::open(path, opts.delimiter, opts.has_header, crate::ingest::DEFAULT_CHUNK_BYTES)?;
    let cols = resolve(&opts.columns, &file)?;
    let name = file.name().to_string();
    let sep = opts.columns.category_separator.as_deref();
    let mut rejects = match (&opts.rejects, opts.skip_invalid) {
        (Some(p), true) => Some(RejectsFile::create(p, file.delimiter)?),
        _ => None,
    };
    let item_col_found = (opts.columns.item == ColumnRef::Detect).then(|| (cols.item.name.clone(), cols.item.pos + 1));
    let mut sum = CatalogSummary {
        gzip: file.gzip,
        delimiter: delimiter_name(file.delimiter),
        item_col_found,
        ..CatalogSummary::default()
    };
    let mut builder = Builder::default();
    while let Some(rec) = file.next_record()? {
        let (line, record) = (rec.line, rec.fields);
        sum.rows_read += 1;
        let parsed = match rec.problem {
            Some(p) => Err(p),
            None => parse(record, &cols, sep),
        };
        let rejected = match parsed {
            Ok(row) => match builder.kept_line(row.item) {
                None => {
                    builder.add(&row, line).map_err(|what| CatalogError::TooMany { path: name.clone(), what })?;
                    sum.items += 1;
                    match row.price {
                        None => sum.no_price += 1,
                        Some(0.0) => sum.zero_price += 1,
                        Some(_) => {}
                    }
                    sum.no_category += u64::from(row.depth == 0);
                    sum.category_gaps += u64::from(row.gap);
                    None
                }
                Some(first_line) if !opts.skip_invalid => {
                    return Err(CatalogError::DuplicateItem {
                        path: name.clone(),
                        item: row.item.into(),
                        first_line,
                        line,
                    });
                }
                Some(first_line) => Some(problem(
                    &cols.item,
                    "duplicate item",
                    format!("item {} already given on line {first_line}", shown(row.item)),
                )),
            },
            Err(p) if !opts.skip_invalid => return Err(row_error(&name, line, p).into()),
            Err(p) => Some(p),
        };
        if let Some(p) = rejected {
            sum.rejected_rows += 1;
            *sum.rejected_by_reason.entry(p.class.into()).or_default() += 1;
            if let Some(r) = rejects.as_mut() {
                r.write(line, &p, record)?;
            }
        }
    }
    if let Some(r) = rejects {
        r.commit()?;
    }
    if sum.items == 0 {
        return Err(CatalogError::NothingKept { path: name.clone(), rows: sum.rows_read });
    }
    let catalog = builder.finish().ok_or(CatalogError::TooMany { path: name, what: "items" })?;
    let mut per_level = vec![0usize; MAX_LEVELS];
    for n in &catalog.nodes {
        per_level[n.depth as usize] += 1;
    }
    per_level.truncate(per_level.iter().rposition(|&c| c > 0).map_or(0, |p| p + 1));
    sum.categories_per_level = per_level;
    sum.brands = catalog.brand_names.len();
    Ok((catalog, sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::DOUBLE_COLON;

    fn col(pos: usize, name: &str) -> Col {
        Col { pos, name: name.into() }
    }

    /// Columns `id, path, price`, the path split by `sep` when given.
    fn cols(levels: usize) -> Resolved {
        Resolved {
            item: col(0, "id"),
            name: None,
            category: (0..levels).map(|k| col(1 + k, &format!("l{k}"))).collect(),
            price: Some(col(1 + levels, "price")),
            brand: None,
            launch: None,
            width: 2 + levels,
        }
    }

    /// The path joined by `>`, and whether it stopped at a gap.
    fn levels(p: &Parsed<'_>) -> (String, bool) {
        (p.levels[..p.depth].join(">"), p.gap)
    }

    #[test]
    fn a_path_is_its_leading_non_empty_levels() {
        let split = |text: &str| {
            let rec = csv::ByteRecord::from(vec!["x", text, "1"]);
            parse(&rec, &cols(1), Some(">")).map(|p| levels(&p)).map_err(|p| p.reason)
        };
        assert_eq!(split(" a > b "), Ok(("a>b".into(), false)));
        assert_eq!(split("a>b>"), Ok(("a>b".into(), false)));
        assert_eq!(split("a>>c"), Ok(("a".into(), true)));
        assert_eq!(split(">b"), Ok(("".into(), true)));
        assert_eq!(split(" "), Ok(("".into(), false)));
        assert_eq!(split("a>b>c>d> > "), Ok(("a>b>c>d".into(), false)));
        assert_eq!(split("a>b>c>d>e"), Err("\"a>b>c>d>e\" has 5 category levels; a path has at most 4".into()));
        // A separator of several characters.
        let rec = csv::ByteRecord::from(vec!["x", "a :: b", "1"]);
        assert_eq!(levels(&parse(&rec, &cols(1), Some("::")).ok().unwrap()), ("a>b".into(), false));

        let columns = |fields: Vec<&str>| {
            let rec = csv::ByteRecord::from(fields);
            parse(&rec, &cols(4), None).map(|p| levels(&p)).map_err(|p| p.reason)
        };
        assert_eq!(columns(vec!["x", "a", " b", "", "", "1"]), Ok(("a>b".into(), false)));
        assert_eq!(columns(vec!["x", "a", "", "c", "", "1"]), Ok(("a".into(), true)));
        assert_eq!(columns(vec!["x", "", "", "", "d", "1"]), Ok(("".into(), true)));
    }

    #[test]
    fn prices_are_finite_and_not_negative() {
        let price = |text: &str| {
            let rec = csv::ByteRecord::from(vec!["x", "a", text]);
            parse(&rec, &cols(1), None).map(|p| p.price).map_err(|p| (p.class, p.reason))
        };
        assert_eq!(price(" 2.50 "), Ok(Some(2.5)));
        assert_eq!(price("0"), Ok(Some(0.0)));
        assert!(price("-0").unwrap().unwrap().is_sign_positive());
        assert_eq!(price("1e3"), Ok(Some(1000.0)));
        assert_eq!(price(""), Ok(None));
        assert_eq!(price("-0.01"), Err(("negative price", "price -0.01 is negative; prices are 0 or more".into())));
        assert_eq!(price("1,5"), Err(("invalid price", "\"1,5\" is not a number".into())));
        assert_eq!(price("-inf"), Err(("invalid price", "\"-inf\" is not a number".into())));
    }

    #[test]
    fn nodes_and_brands_sort_naturally_whatever_the_arrival_order() {
        let rows: [(&str, &[&str], Option<&str>); 6] = [
            ("b", &["10", "x"], Some("z")),
            ("a", &["9"], Some("10")),
            ("c", &["10", "9"], Some("9")),
            ("d", &["b", "a", "c", "d"], None),
            ("e", &["10"], Some("z")),
            ("f", &[], None),
        ];
        let build = |order: &[usize]| {
            let mut b = Builder::default();
            for &k in order {
                let (id, path, brand) = rows[k];
                let mut levels = [""; MAX_LEVELS];
                levels[..path.len()].copy_from_slice(path);
                let p = Parsed {
                    item: id,
                    name: None,
                    levels,
                    depth: path.len(),
                    gap: false,
                    price: None,
                    brand,
                    launch: None,
                };
                b.add(&p, k as u64 + 2).unwrap();
            }
            b.finish().unwrap()
        };
        let c = build(&[0, 1, 2, 3, 4, 5]);
        assert!(build(&[5, 4, 3, 2, 1, 0]) == c);
        assert!(build(&[3, 0, 5, 1, 4, 2]) == c);
        let nodes: Vec<String> = (0..c.category_count() as u32)
            .map(|n| {
                let path: Vec<&str> = c.category_path(CategoryIdx(n)).iter().map(|&p| c.category_name(p)).collect();
                path.join(">")
            })
            .collect();
        assert_eq!(nodes, ["9", "10", "10>9", "10>x", "b", "b>a", "b>a>c", "b>a>c>d"]);
        assert_eq!(c.brand_names, ["9".into(), "10".into(), "z".into()]);
        assert_eq!(c.find_category(&["10", "9"]), Some(CategoryIdx(2)));
        assert_eq!(c.find_category(&["b", "a", "c", "d"]), Some(CategoryIdx(7)));
        assert_eq!(c.find_category(&["b", "a", "c", "d", "e"]), None);
        assert_eq!(c.find_category(&["9", "10"]), None);
        let f = c.item(c.index_of("f").unwrap());
        assert_eq!((f.category, f.brand), (&[][..], None));
        assert_eq!(c.item(c.index_of("c").unwrap()).brand, Some("9"));
    }

    #[test]
    fn options_check() {
        let ok = CatalogOptions::new(CatalogColumns::new("id", ["a", "b", "c", "d"]));
        assert!(ok.check().is_ok());
        let mut one = CatalogOptions::new(CatalogColumns::new("id", ["path"]));
        one.columns.category_separator = Some(" / ".into());
        one.delimiter = Some(DOUBLE_COLON);
        assert!(one.check().is_ok());
        one.skip_invalid = true;
        one.rejects = Some("r.csv".into());
        assert!(one.check().is_ok());
        let five = CatalogOptions::new(CatalogColumns::new("id", ["a", "b", "c", "d", "e"]));
        assert!(matches!(five.check(), Err(CatalogError::TooManyLevels { given: 5 })));
    }

    #[test]
    fn columns_deserialize_from_a_job_file() {
        let c: CatalogColumns =
            toml::from_str("item = \"product_id\"\ncategory = [\"department\", 6]\nbrand = \"brand\"\n").unwrap();
        assert_eq!(c.category, [ColumnRef::Name("department".into()), ColumnRef::Position(6)]);
        assert_eq!((c.brand, c.price), (Some(ColumnRef::Name("brand".into())), None));
        assert!(toml::from_str::<CatalogColumns>("item = \"a\"\ncategory = [\"b\"]\nsize = \"c\"\n").is_err());
    }
}
