//! The product catalog: the two public layouts (The Complete Journey products, Groceries
//! items), every bad-input case with its exact message and line, the rejects file, order
//! invariance, the category tree and alignment with a model's item table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use cobuy::ids::IdTable;
use cobuy::ingest::{ColumnRef, SourceError};
use cobuy::offers::catalog::{Catalog, CatalogColumns, CatalogError, CatalogOptions, CatalogSummary, CategoryIdx};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/catalog").join(name)
}

fn cj_options() -> CatalogOptions {
    let mut cols = CatalogColumns::new("product_id", ["department", "product_category", "product_type"]);
    cols.brand = Some("brand".into());
    CatalogOptions::new(cols)
}

fn groceries_options() -> CatalogOptions {
    CatalogOptions::new(CatalogColumns::new("labels", ["level1", "level2"]))
}

/// The columns of `invalid_rows.csv` and the inline files below.
fn shop_options() -> CatalogOptions {
    let mut cols = CatalogColumns::new("sku", ["path"]);
    cols.name = Some("name".into());
    cols.category_separator = Some(">".into());
    cols.price = Some("price".into());
    cols.brand = Some("brand".into());
    cols.launch = Some("launch".into());
    CatalogOptions::new(cols)
}

const SHOP_HEADER: &str = "sku,name,path,price,brand,launch\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

fn names(c: &Catalog, path: &[CategoryIdx]) -> Vec<String> {
    path.iter().map(|&n| c.category_name(n).to_string()).collect()
}

/// Every item and node, as text: two equal renderings mean equal catalogs to a reader.
fn render(c: &Catalog) -> String {
    let mut s = String::new();
    for i in 0..c.len() as u32 {
        let it = c.item(i);
        writeln!(s, "{i} {:?} {:?} {:?} {:?} {:?} {:?}", it.id, it.name, it.category, it.price, it.brand, it.launch)
            .unwrap();
    }
    for n in 0..c.category_count() as u32 {
        let n = CategoryIdx(n);
        writeln!(s, "node {n:?} {:?} parent {:?} depth {}", c.category_name(n), c.parent(n), c.depth(n)).unwrap();
    }
    s
}

// ---------------------------------------------------------------------------------------
// The two public layouts
// ---------------------------------------------------------------------------------------

#[test]
fn complete_journey_products_load() {
    let (c, sum) = Catalog::read(data("cj_products.csv"), &cj_options()).unwrap();
    let want = CatalogSummary {
        rows_read: 15,
        items: 15,
        no_price: 15,
        category_gaps: 1,
        categories_per_level: vec![7, 12, 13],
        brands: 2,
        delimiter: ",".into(),
        ..CatalogSummary::default()
    };
    assert_eq!(sum, want);
    assert_eq!(c.len(), 15);
    // Natural order: numeric ids by value.
    let ids: Vec<&str> = c.ids().iter().collect();
    assert_eq!(
        ids,
        [
            "25671", "26081", "26093", "26190", "90602", "828807", "843131", "918199", "1043166", "6533333", "6534178",
            "8068406", "12781759", "12810498", "13520835"
        ]
    );

    let cake = c.item(c.index_of("918199").unwrap());
    assert_eq!(names(&c, cake.category), ["GROCERY", "BAKED SWEET GOODS", "SNACK CAKE - SINGLE SERVE"]);
    assert_eq!((cake.brand, cake.price, cake.name, cake.launch), (Some("National"), None, None, None));
    let private = c.item(c.index_of("26093").unwrap());
    assert_eq!(private.brand, Some("Private"));
    assert_eq!(names(&c, private.category), ["PASTRY", "BREAD", "BREAD:ITALIAN/FRENCH"]);

    // A department without category or type; a type without a category stops at the gap.
    let misc = c.index_of("26081").unwrap();
    assert_eq!(names(&c, c.item(misc).category), ["MISCELLANEOUS"]);
    let apples = c.index_of("828807").unwrap();
    assert_eq!(names(&c, c.item(apples).category), ["MISCELLANEOUS"]);
    assert_eq!(c.category_of(apples, 0), c.category_of(misc, 0));
    assert_eq!(c.category_of(apples, 1), None);

    // Inner spaces are kept.
    let xmas = c.item(c.index_of("12781759").unwrap());
    assert_eq!(names(&c, xmas.category)[1], "CHRISTMAS  SEASONAL");
}

#[test]
fn groceries_items_load_and_keep_trailing_spaces() {
    let (c, sum) = Catalog::read(data("groceries_items.csv"), &groceries_options()).unwrap();
    assert_eq!((sum.rows_read, sum.items, sum.rejected_rows), (14, 14, 0));
    assert_eq!(sum.categories_per_level, [5, 9]);
    assert_eq!((sum.no_category, sum.category_gaps, sum.brands, sum.no_price), (0, 0, 0, 14));
    let ids: Vec<&str> = c.ids().iter().collect();
    assert_eq!(
        ids,
        [
            "bottled water",
            "canned beer",
            "cream cheese ",
            "curd",
            "frankfurter",
            "napkins",
            "packaged fruit/vegetables",
            "roll products ",
            "rolls/buns",
            "sausage",
            "soda",
            "tropical fruit",
            "whole milk",
            "yogurt"
        ]
    );
    for label in ["cream cheese ", "roll products "] {
        let i = c.index_of(label).unwrap();
        assert_eq!(c.item(i).id, label);
        assert_eq!(c.index_of(label.trim_end()), None);
    }
    let cheese = c.item(c.index_of("cream cheese ").unwrap());
    assert_eq!(names(&c, cheese.category), ["fresh products", "cheese"]);
    let sausage = c.item(c.index_of("sausage").unwrap());
    assert_eq!(names(&c, sausage.category), ["meat and sausage", "sausage"]);
    // A sub-category named like its category is its own node, one level down.
    let napkins = c.item(c.index_of("napkins").unwrap());
    assert_eq!(names(&c, napkins.category), ["perfumery", "perfumery"]);
    assert_ne!(napkins.category[0], napkins.category[1]);
    assert_eq!(c.parent(napkins.category[1]), Some(napkins.category[0]));
}

// ---------------------------------------------------------------------------------------
// The category tree
// ---------------------------------------------------------------------------------------

#[test]
fn category_tree_parents_depths_and_order() {
    let (c, _) = Catalog::read(data("cj_products.csv"), &cj_options()).unwrap();
    assert_eq!(c.category_count(), 7 + 12 + 13);
    let grocery = c.find_category(&["GROCERY"]).unwrap();
    let sweet = c.find_category(&["GROCERY", "BAKED SWEET GOODS"]).unwrap();
    let multi = c.find_category(&["GROCERY", "BAKED SWEET GOODS", "SNACK CAKE - MULTI PACK"]).unwrap();
    assert_eq!((c.depth(grocery), c.depth(sweet), c.depth(multi)), (0, 1, 2));
    assert_eq!((c.parent(grocery), c.parent(sweet), c.parent(multi)), (None, Some(grocery), Some(sweet)));
    assert_eq!(c.category_path(multi), [grocery, sweet, multi]);
    assert_eq!(c.category_name(sweet), "BAKED SWEET GOODS");
    assert_eq!(c.find_category(&["BAKED SWEET GOODS"]), None);
    assert_eq!(c.find_category(&[]), None);

    // One name under two departments: two nodes.
    let pastry_bread = c.find_category(&["PASTRY", "BREAD"]).unwrap();
    let nutrition_bread = c.find_category(&["NUTRITION", "BREAD"]).unwrap();
    assert_ne!(pastry_bread, nutrition_bread);
    assert_eq!(c.parent(pastry_bread), c.find_category(&["PASTRY"]));

    // Nodes are numbered in the natural order of their paths: a parent before its
    // children, and every node's path leads to it.
    let mut prev: Option<Vec<String>> = None;
    for n in (0..c.category_count() as u32).map(CategoryIdx) {
        let path = c.category_path(n);
        assert_eq!(path.last(), Some(&n));
        assert_eq!(path.len(), c.depth(n) + 1);
        if let Some(p) = c.parent(n) {
            assert!(p < n);
            assert_eq!(c.depth(p) + 1, c.depth(n));
            assert_eq!(&path[..path.len() - 1], c.category_path(p));
        }
        let texts = names(&c, path);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(c.find_category(&refs), Some(n));
        if let Some(prev) = prev {
            assert!(prev < texts, "{prev:?} before {texts:?}");
        }
        prev = Some(texts);
    }
    assert_eq!(c.category_name(CategoryIdx(0)), "DRUG GM");

    // Every item's category at each level.
    let i = c.index_of("843131").unwrap();
    assert_eq!(
        (c.category_of(i, 0), c.category_of(i, 1), c.category_of(i, 2)),
        (Some(grocery), Some(sweet), Some(multi))
    );
    assert_eq!(c.category_of(i, 3), None);
    assert_eq!(c.category_of(999, 0), None);
    assert!(c.get(999).is_none());
}

// ---------------------------------------------------------------------------------------
// Alignment with a model's items
// ---------------------------------------------------------------------------------------

#[test]
fn align_counts_matches_missing_and_catalog_only() {
    let (c, _) = Catalog::read(data("cj_products.csv"), &cj_options()).unwrap();
    let model = IdTable::from_sorted(&["99", "25671", "26081", "6534178", "13520835", "abc"]).unwrap();
    let a = c.align(&model);
    let at = |id: &str| c.index_of(id);
    assert_eq!(a.per_item, [None, at("25671"), at("26081"), at("6534178"), at("13520835"), None]);
    assert_eq!(a.per_item[1..5], [Some(0), Some(1), Some(10), Some(14)]);
    assert_eq!(a.missing, [0, 5]);
    assert_eq!((a.matched(), a.catalog_only), (4, 11));

    let empty = c.align(&IdTable::default());
    assert!(empty.per_item.is_empty() && empty.missing.is_empty());
    assert_eq!(empty.catalog_only, 15);

    let (g, _) = Catalog::read(data("groceries_items.csv"), &groceries_options()).unwrap();
    let model =
        IdTable::from_sorted(&["bottled water", "cream cheese", "cream cheese ", "whole milk", "zucchini"]).unwrap();
    let a = g.align(&model);
    assert_eq!(a.per_item, [Some(0), None, Some(2), Some(12), None]);
    assert_eq!(a.missing, [1, 4]);
    assert_eq!((a.matched(), a.catalog_only), (3, 11));

    // The whole catalog against its own ids.
    let a = g.align(g.ids());
    assert_eq!(a.per_item, (0..14).map(Some).collect::<Vec<_>>());
    assert_eq!((a.missing.len(), a.catalog_only), (0, 0));
}

// ---------------------------------------------------------------------------------------
// Order invariance
// ---------------------------------------------------------------------------------------

/// A 64-bit LCG for deterministic shuffles.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (((self.0 >> 32) * n as u64) >> 32) as usize
    }
}

fn shuffled(lines: &[String], seed: u64) -> Vec<String> {
    let mut v = lines.to_vec();
    let mut rng = Lcg(seed);
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

/// Reads `text` as given and with its data lines in several other orders.
fn assert_order_invariant(text: &str, opts: &CatalogOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let lines: Vec<String> = body.lines().map(String::from).collect();
    let (base, base_sum) = Catalog::read(write(dir.path(), "base.csv", text), opts).unwrap();
    let mut reversed = lines.clone();
    reversed.reverse();
    for (k, order) in [reversed, shuffled(&lines, 1), shuffled(&lines, 2), shuffled(&lines, 3)].iter().enumerate() {
        let p = write(dir.path(), &format!("order{k}.csv"), &format!("{header}\n{}\n", order.join("\n")));
        let (c, sum) = Catalog::read(&p, opts).unwrap();
        assert_eq!(render(&c), render(&base), "order {k}");
        assert!(c == base, "order {k}");
        assert_eq!(sum, base_sum, "order {k}");
    }
}

#[test]
fn shuffled_rows_give_the_same_catalog() {
    assert_order_invariant(&fs::read_to_string(data("cj_products.csv")).unwrap(), &cj_options());
    assert_order_invariant(&fs::read_to_string(data("groceries_items.csv")).unwrap(), &groceries_options());

    // A generated catalog with every attribute, numeric and textual names, empty levels.
    let mut rng = Lcg(42);
    let mut text = SHOP_HEADER.to_string();
    for i in 0..300 {
        let id = if i % 3 == 0 { format!("{}", 1000 - i) } else { format!("SKU-{i}") };
        let depth = rng.below(5);
        let path: Vec<String> =
            (0..depth).map(|l| ["x", "10", "9", "y z"][rng.below(4)].to_string() + &"'".repeat(l)).collect();
        let price = match rng.below(4) {
            0 => String::new(),
            1 => "0".into(),
            _ => format!("{}.{:02}", rng.below(50), rng.below(100)),
        };
        let brand = ["", "Private", "National", "10"][rng.below(4)];
        let launch = if rng.below(2) == 0 {
            String::new()
        } else {
            format!("2020-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
        };
        writeln!(text, "{id},Item {i},{},{price},{brand},{launch}", path.join(" > ")).unwrap();
    }
    assert_order_invariant(&text, &shop_options());
    let (c, sum) = Catalog::read(write(tempfile::tempdir().unwrap().path(), "g.csv", &text), &shop_options()).unwrap();
    assert_eq!(c.len(), 300);
    assert_eq!(sum.items, 300);
    assert!(sum.no_category > 0 && sum.zero_price > 0 && sum.no_price > 0);
    assert_eq!(sum.categories_per_level.len(), 4);
}

// ---------------------------------------------------------------------------------------
// Bad input: the first bad row stops the read with its line and column
// ---------------------------------------------------------------------------------------

/// Reads `header + A1 row + bad` and returns the error message, with the file's path
/// replaced by `P`.
/// The end of a bad row's error when bad rows are not skipped.
const SKIP: &str = " (--skip-invalid skips such rows, counted, into a rejects file)";

fn first_error(bad: &str, opts: &CatalogOptions) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "c.csv", &format!("{SHOP_HEADER}A1,Milk,Food > Dairy,1.00,Store,2020-01-01\n{bad}"));
    let e = Catalog::read(&p, opts).unwrap_err();
    e.to_string().replace(&p.display().to_string(), "P")
}

#[test]
fn each_bad_row_is_an_error_with_its_line_and_column() {
    let o = shop_options();
    let cases = [
        (",Nameless,Food,1,,\n", "P:3: column sku: the item id is empty"),
        ("   ,Nameless,Food,1,,\n", "P:3: column sku: the item id is empty"),
        ("A2,Cheese,Food,-2.5,,\n", "P:3: column price: price -2.5 is negative; prices are 0 or more"),
        ("A2,Cheese,Food,abc,,\n", "P:3: column price: \"abc\" is not a number"),
        ("A2,Cheese,Food,NaN,,\n", "P:3: column price: \"NaN\" is not a number"),
        ("A2,Cheese,Food,inf,,\n", "P:3: column price: \"inf\" is not a number"),
        ("A2,Cheese,Food,$3,,\n", "P:3: column price: \"$3\" is not a number"),
        (
            "A2,Cheese,Food,1,,31/12/2020\n",
            "P:3: column launch: \"31/12/2020\" is not a date or time (accepted: unix seconds, YYYY-MM-DD, \
             YYYY-MM-DD HH:MM:SS, RFC 3339)",
        ),
        (
            "A2,Cheese,Food,1,,2021-02-30\n",
            "P:3: column launch: \"2021-02-30\" is not a date or time (accepted: unix seconds, YYYY-MM-DD, \
             YYYY-MM-DD HH:MM:SS, RFC 3339)",
        ),
        (
            "A2,Deep,a > b > c > d > e,1,,\n",
            "P:3: column path: \"a > b > c > d > e\" has 5 category levels; a path has at most 4",
        ),
        ("A2,Deep,a > > > > e,1,,\n", "P:3: column path: \"a > > > > e\" has 5 category levels; a path has at most 4"),
        ("A2,Short\n", "P:3: column path: the row has 2 fields, this column is field 3"),
        ("A1,Milk again,Food,1,,\n", "P:3: item \"A1\" already given on line 2"),
        // Fields are checked before the item id is compared: a bad repeat reports its field.
        ("A1,Milk again,Food,-1,,\n", "P:3: column price: price -1 is negative; prices are 0 or more"),
        // Lines stay exact after a record over two lines and a blank line.
        ("\"A2\",\"Two\nlines\",Food,1,,\n\nA3,Cake,Food,x,,\n", "P:6: column price: \"x\" is not a number"),
        ("\"A2\",\"Two\nlines\",Food,1,,\nA1,Cake,Food,1,,\n", "P:5: item \"A1\" already given on line 2"),
        ("A2,Milk,Food,1,,\r\nA3,Cake,Food,x,,\r\n", "P:4: column price: \"x\" is not a number"),
    ];
    for (bad, want) in cases {
        // A bad row's error says how to skip such rows; a repeated item is another error.
        let want = if want.contains("already given") { want.to_string() } else { format!("{want}{SKIP}") };
        assert_eq!(first_error(bad, &o), want, "row {bad:?}");
    }

    // Invalid UTF-8, in the name.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("utf8.csv");
    fs::write(&p, [SHOP_HEADER.as_bytes(), b"A1,Caf\xe9,Food,1,,\n"].concat()).unwrap();
    let e = Catalog::read(&p, &o).unwrap_err().to_string();
    assert_eq!(e, format!("{}:2: column name: invalid UTF-8 at byte 3 of the field{SKIP}", p.display()));
}

#[test]
fn the_fixture_stops_at_its_first_bad_row() {
    let p = data("invalid_rows.csv");
    let e = Catalog::read(&p, &shop_options()).unwrap_err();
    assert!(matches!(e, CatalogError::Source(SourceError::Row { line: 3, .. })), "{e:?}");
    assert_eq!(e.to_string(), format!("{}:3: column sku: the item id is empty{SKIP}", p.display()));
}

#[test]
fn duplicate_item_error_names_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p =
        write(dir.path(), "dup.csv", "labels,level2,level1\nmilk,dairy,fresh\ncurd,dairy,fresh\n\nmilk,dairy,fresh\n");
    let e = Catalog::read(&p, &groceries_options()).unwrap_err();
    match &e {
        CatalogError::DuplicateItem { item, first_line, line, .. } => {
            assert_eq!((item.as_str(), *first_line, *line), ("milk", 2, 5));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.to_string(), format!("{}:5: item \"milk\" already given on line 2", p.display()));

    // Ids differ by a trailing space: two items.
    let p = write(dir.path(), "spaces.csv", "labels,level2,level1\nmilk,dairy,fresh\n\"milk \",dairy,fresh\n");
    let (c, _) = Catalog::read(&p, &groceries_options()).unwrap();
    assert_eq!(c.len(), 2);
}

#[test]
fn file_and_column_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = shop_options();
    let msg = |p: &Path, o: &CatalogOptions| {
        Catalog::read(p, o).unwrap_err().to_string().replace(&p.display().to_string(), "P")
    };
    assert_eq!(msg(&write(dir.path(), "empty.csv", ""), &o), "P: the file is empty");
    assert_eq!(msg(&write(dir.path(), "header.csv", SHOP_HEADER), &o), "P: the file has a header but no rows");
    assert!(msg(&dir.path().join("nope.csv"), &o).starts_with("P: cannot open: "));

    let p = write(dir.path(), "c.csv", "sku,name\nA1,Milk\n");
    assert_eq!(msg(&p, &o), "P:1: column path: not in the header; the header's columns are: sku, name");
    let mut by_pos = CatalogOptions::new(CatalogColumns::new(ColumnRef::Position(1), [ColumnRef::Position(5)]));
    assert_eq!(msg(&p, &by_pos), "P:1: column 5: the header has only 2 columns");
    by_pos.has_header = false;
    assert_eq!(msg(&p, &by_pos), format!("P:1: column #5: the row has 2 fields, this column is field 5{SKIP}"));
    let named = CatalogOptions { has_header: false, ..CatalogOptions::new(CatalogColumns::new("sku", ["name"])) };
    assert_eq!(
        msg(&p, &named),
        "P:1: column sku: columns can be named only when the file has a header; give its position (1, 2, ...)"
    );
    let p = write(dir.path(), "twice.csv", "Sku,SKU,cat\nA1,A1,x\n");
    assert_eq!(
        msg(&p, &CatalogOptions::new(CatalogColumns::new("sku", ["cat"]))),
        "P:1: column sku: ambiguous: matches Sku, SKU when case is ignored; give the exact name"
    );
    // An exact name picks its column; case is ignored when that is unambiguous. The two
    // id columns hold different ids, so the items show which column was read.
    let p = write(dir.path(), "twice.csv", "Sku,SKU,cat\nA1,B2,x\n");
    for (column, want) in [("Sku", "A1"), ("SKU", "B2")] {
        let (c, _) = Catalog::read(&p, &CatalogOptions::new(CatalogColumns::new(column, ["CAT"]))).unwrap();
        assert_eq!(c.ids().iter().collect::<Vec<_>>(), [want], "{column}");
        assert_eq!(names(&c, c.item(0).category), ["x"], "{column}");
    }

    let p = write(dir.path(), "quote.csv", &format!("{SHOP_HEADER}A1,\"open{}\n", "\nx".repeat(70)));
    assert_eq!(
        msg(&p, &o),
        "P:2: column -: a quoted field opened on this line runs over 71 lines; a closing quote is probably missing"
    );
}

#[test]
fn options_are_checked_before_the_file_is_opened() {
    let missing = Path::new("/nonexistent/catalog.csv");
    let err = |o: &CatalogOptions| Catalog::read(missing, o).unwrap_err().to_string();
    let five = CatalogOptions::new(CatalogColumns::new("id", ["a", "b", "c", "d", "e"]));
    assert!(matches!(five.check(), Err(CatalogError::TooManyLevels { given: 5 })));
    assert_eq!(err(&five), "5 category columns given; a category path has at most 4 levels");
    let none = CatalogOptions::new(CatalogColumns::new("id", Vec::<&str>::new()));
    assert_eq!(err(&none), "give one to four category columns, top level first");
    let mut two_split = CatalogOptions::new(CatalogColumns::new("id", ["a", "b"]));
    two_split.columns.category_separator = Some("/".into());
    assert_eq!(err(&two_split), "a category separator splits one category column; give one column, or no separator");
    let mut empty_sep = CatalogOptions::new(CatalogColumns::new("id", ["a"]));
    empty_sep.columns.category_separator = Some(String::new());
    assert_eq!(err(&empty_sep), "the category separator must not be empty");
    let mut rejects = shop_options();
    rejects.rejects = Some("r.csv".into());
    assert_eq!(err(&rejects), "a rejects file is written only when invalid rows are skipped (--skip-invalid)");
    let mut delim = shop_options();
    delim.delimiter = Some(b':');
    assert_eq!(err(&delim), "the delimiter must be one of , \\t ; | ::");
    assert!(shop_options().check().is_ok() && cj_options().check().is_ok());
}

// ---------------------------------------------------------------------------------------
// skip_invalid: counts and the rejects file
// ---------------------------------------------------------------------------------------

#[test]
fn skip_invalid_counts_every_row_and_writes_the_rejects_file() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.csv");
    let mut o = shop_options();
    o.skip_invalid = true;
    o.rejects = Some(rejects.clone());
    let (c, sum) = Catalog::read(data("invalid_rows.csv"), &o).unwrap();

    let by_reason: BTreeMap<String, u64> = [
        "duplicate item",
        "empty item id",
        "invalid launch date",
        "invalid price",
        "missing field",
        "negative price",
        "too many category levels",
    ]
    .into_iter()
    .map(|r| (r.to_string(), 1))
    .collect();
    let want = CatalogSummary {
        rows_read: 13,
        items: 6,
        rejected_rows: 7,
        rejected_by_reason: by_reason,
        zero_price: 1,
        no_price: 1,
        no_category: 1,
        category_gaps: 1,
        categories_per_level: vec![2, 3, 1],
        brands: 2,
        gzip: false,
        delimiter: ",".into(),
        item_col_found: None,
    };
    assert_eq!(sum, want);
    assert_eq!(sum.rows_read, sum.items + sum.rejected_rows);

    let rejected = fs::read_to_string(&rejects).unwrap();
    let want_rejects = "\
line,column,reason,record
3,sku,the item id is empty,\",No id,Food,1.00,,\"
4,price,price -2.5 is negative; prices are 0 or more,\"A2,Cheese,Food > Dairy > Cheese,-2.5,,\"
5,price,\"\"\"abc\"\" is not a number\",\"A3,Bread,Food > Bakery,abc,,\"
6,launch,\"\"\"31/12/2020\"\" is not a date or time (accepted: unix seconds, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, RFC 3339)\",\"A4,Cake,Food > Bakery > Cakes,3.00,,31/12/2020\"
7,path,\"\"\"a > b > c > d > e\"\" has 5 category levels; a path has at most 4\",\"A5,Deep,a > b > c > d > e,1,,\"
8,sku,\"item \"\"A1\"\" already given on line 2\",\"A1,Milk again,Food > Dairy > Milk,1.20,,\"
12,path,\"the row has 2 fields, this column is field 3\",\"A8,Short\"
";
    assert_eq!(rejected, want_rejects);
    // No temporary file is left beside it.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    // The kept rows: the first A1, and A3 from line 15 (its line-5 row was rejected).
    let ids: Vec<&str> = c.ids().iter().collect();
    // Natural order: ids that are not all digits sort bytewise.
    assert_eq!(ids, ["A1", "A10", "A3", "A6", "A7", "A9"]);
    let get = |id: &str| c.item(c.index_of(id).unwrap());
    let a1 = get("A1");
    assert_eq!((a1.name, a1.price, a1.brand), (Some("Milk 1L"), Some(1.10), Some("Store")));
    assert_eq!(a1.launch, cobuy::time::parse("2020-01-15"));
    assert_eq!(names(&c, a1.category), ["Food", "Dairy", "Milk"]);
    assert_eq!(get("A3").price, Some(2.10));
    let a6 = get("A6");
    assert_eq!((a6.category.len(), a6.price), (0, Some(0.0)));
    let a7 = get("A7");
    assert_eq!(
        (a7.name, a7.price, a7.brand, a7.launch),
        (Some("Multi\nline name"), None, Some("Brand X"), Some(1_600_000_000))
    );
    assert_eq!(names(&c, get("A9").category), ["Home", "Kitchen"]);
    assert_eq!(get("A9").brand, Some("Store"));
    assert_eq!(names(&c, get("A10").category), ["Home"]);
    assert_eq!(c.category_of(c.index_of("A7").unwrap(), 1), c.category_of(c.index_of("A9").unwrap(), 1));

    // Without a rejects file the counts are the same.
    o.rejects = None;
    assert_eq!(Catalog::read(data("invalid_rows.csv"), &o).unwrap().1, want);
}

#[test]
fn skip_invalid_with_nothing_kept_is_an_error_but_writes_the_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.csv", &format!("{SHOP_HEADER},x,Food,1,,\nA1,y,Food,-1,,\n"));
    let rejects = dir.path().join("r.csv");
    let mut o = shop_options();
    o.skip_invalid = true;
    o.rejects = Some(rejects.clone());
    let e = Catalog::read(&p, &o).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: no items left: 2 rows read, all rejected", p.display()));
    assert_eq!(fs::read_to_string(&rejects).unwrap().lines().count(), 3);
}

// ---------------------------------------------------------------------------------------
// Other shapes of file
// ---------------------------------------------------------------------------------------

#[test]
fn gzip_double_colon_and_headerless_files() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, plain_sum) = Catalog::read(data("cj_products.csv"), &cj_options()).unwrap();
    let gz = dir.path().join("products.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&fs::read(data("cj_products.csv")).unwrap()).unwrap();
    fs::write(&gz, enc.finish().unwrap()).unwrap();
    let (c, sum) = Catalog::read(&gz, &cj_options()).unwrap();
    assert!(c == plain);
    assert!(sum.gzip);
    assert_eq!(CatalogSummary { gzip: false, ..sum }, plain_sum);

    // `::`-separated, no header, the category split on `/`, price by position.
    let p = write(dir.path(), "items.dat", "10::Tea::Drinks/Hot::2.5\n9::Cups::Home::0\n");
    let mut cols = CatalogColumns::new("1", ["3"]);
    cols.name = Some("2".into());
    cols.price = Some("4".into());
    cols.category_separator = Some("/".into());
    let (c, sum) = Catalog::read(&p, &CatalogOptions { has_header: false, ..CatalogOptions::new(cols) }).unwrap();
    assert_eq!(sum.delimiter, "::");
    assert_eq!(c.ids().iter().collect::<Vec<_>>(), ["9", "10"]);
    let tea = c.item(1);
    assert_eq!((tea.name, tea.price), (Some("Tea"), Some(2.5)));
    assert_eq!(names(&c, tea.category), ["Drinks", "Hot"]);
    assert_eq!(sum.zero_price, 1);
}

#[test]
fn four_levels_from_columns_and_from_one_column_agree() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", "id,l1,l2,l3,l4\n1,A,B,C,D\n2,A,B,,\n3,A,,,D\n4,,,,\n");
    let b = write(dir.path(), "b.tsv", "id\tpath\n1\tA / B / C / D\n2\tA/B\n3\tA///D\n4\t\n");
    let (ca, sa) =
        Catalog::read(&a, &CatalogOptions::new(CatalogColumns::new("id", ["l1", "l2", "l3", "l4"]))).unwrap();
    let mut cols = CatalogColumns::new("id", ["path"]);
    cols.category_separator = Some("/".into());
    let (cb, sb) = Catalog::read(&b, &CatalogOptions::new(cols)).unwrap();
    assert!(ca == cb);
    assert_eq!(sa.categories_per_level, [1, 1, 1, 1]);
    assert_eq!((sa.no_category, sa.category_gaps), (1, 1));
    assert_eq!(CatalogSummary { delimiter: ",".into(), ..sb }, sa);
    assert_eq!(ca.category_of(0, 3).map(|n| ca.category_name(n)), Some("D"));
    assert_eq!(ca.depth(ca.category_of(0, 3).unwrap()), 3);
}

/// Without `--catalog-item-col`, the catalogue's item column is found as the purchases'
/// is, by a well-known item column name, and the log says which (never column 1 by
/// default); none or several such names is a usage error naming the flag (exit 2).
#[test]
fn the_catalogue_item_column_is_found_by_name_and_said_or_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two baskets hold a fruit and a drink; one holds two fruits.
    write(d, "p.csv", "customer,item,basket\na,apple,1\na,cola,1\nb,pear,2\nb,tea,2\nc,apple,3\nc,pear,3\n");
    let rules = |catalog: &str, extra: &[&str]| {
        let mut args = vec!["rules", "--purchases", "p.csv", "--basket-col", "basket", "--catalog", catalog];
        args.extend_from_slice(&["--catalog-category-cols", "group", "--level", "0", "--out", "r.csv"]);
        args.extend_from_slice(extra);
        let o = crate::common::run_cobuy(d, &args);
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // The id is the second column: read from the first, no id would match a purchase.
    write(d, "c.csv", "name,SKU,group\nApple,apple,fruit\nPear,pear,fruit\nCola,cola,drink\nTea,tea,drink\n");
    let (code, log) = rules("c.csv", &[]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("catalogue item ids: column SKU (column 2), found by its name (--catalog-item-col"), "{log}");
    // Over the 3 baskets: {fruit, drink}, {fruit, drink}, {fruit}.
    let text = fs::read_to_string(d.join("r.csv")).unwrap();
    let pairs: Vec<(&str, &str, &str)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[1], f[7])
        })
        .collect();
    assert_eq!(pairs, [("drink", "fruit", "2"), ("fruit", "drink", "2")], "{text}");
    // Given, the flag wins and nothing is said.
    let (code, log) = rules("c.csv", &["--catalog-item-col", "2"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("found by its name"), "{log}");

    for (header, want) in [
        ("labels,group", &["no header column has a name cobuy knows for the item ids", "labels, group"][..]),
        (
            "item_id,sku,group",
            &["several header columns could hold the item ids", "item_id (column 1), sku (column 2)"],
        ),
    ] {
        let width = header.split(',').count();
        let rows: String =
            ["apple", "pear"].iter().map(|i| format!("{}fruit\n", format!("{i},").repeat(width - 1))).collect();
        write(d, "bad.csv", &format!("{header}\n{rows}"));
        let (code, log) = rules("bad.csv", &[]);
        assert_eq!(code, Some(2), "{header}: {log}");
        assert!(log.contains("--catalog-item-col"), "{header}: {log}");
        for w in want {
            assert!(log.contains(w), "{header}: {w:?} missing from {log}");
        }
    }
}
