//! Ids that need CSV quoting (commas, double quotes, line breaks, edge spaces) survive a
//! round trip: written as a standard CSV, fitted, and read back by the `csv` crate from
//! every output that names them (recommendations with reasons, similar customers, up-sell
//! offers), they are exactly the ids given, each where it belongs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::run_cobuy;

const CUSTOMERS: [&str; 9] =
    ["two\nlines", "a,b", "say \"hi\"", " lead", "trail ", "\"q\"", "plain", " both, \"x\" ", "end,"];
/// Items with their price: dearer along the list.
const ITEMS: [(&str, &str); 7] = [
    ("line\r\nbreak", "3"),
    (" mouse", "5"),
    ("cable ", "9"),
    ("x,y,z", "20"),
    ("\"best\" pick", "45"),
    ("plain-item", "99"),
    ("tv, 55\"", "400"),
];

/// Writes records as a standard CSV, every field quoted.
fn write_csv(path: &Path, rows: &[Vec<String>]) {
    let mut w = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_path(path).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

/// An output CSV, parsed: its header and records.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    (header, r.records().map(|x| x.unwrap().iter().map(String::from).collect()).collect())
}

/// Customer `c` buys three or four items, the cheaper ones first, a day apart.
fn bought(c: usize) -> Vec<usize> {
    let mut items: Vec<usize> = (0..ITEMS.len()).filter(|&i| (c + i) % 3 != 0 || i == c % 2).collect();
    items.truncate(3 + c % 2);
    items
}

struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = vec![["customer", "item", "quantity", "time"].map(String::from).to_vec()];
        for (c, id) in CUSTOMERS.iter().enumerate() {
            for (day, &i) in bought(c).iter().enumerate() {
                let time = format!("2024-03-{:02} 10:00:00", 1 + c + 3 * day);
                rows.push(vec![id.to_string(), ITEMS[i].0.to_string(), "1".into(), time]);
            }
        }
        write_csv(&dir.path().join("p.csv"), &rows);
        let mut catalog = vec![["item", "category", "price"].map(String::from).to_vec()];
        catalog.extend(ITEMS.iter().map(|(id, price)| vec![id.to_string(), "gadgets".into(), price.to_string()]));
        write_csv(&dir.path().join("catalog.csv"), &catalog);
        Fx { dir }
    }

    fn ok(&self, args: &[&str]) {
        let o = run_cobuy(self.dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }

    fn read(&self, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
        read_csv(&self.dir.path().join(name))
    }

    fn fit(&self, algorithm: &str) {
        let cols =
            ["--customer-col", "customer", "--item-col", "item", "--quantity-col", "quantity", "--time-col", "time"];
        self.ok(&[&["fit", "--purchases", "p.csv", "--model", "m.cobuy", "--algorithm", algorithm][..], &cols].concat());
    }
}

fn customer_set() -> BTreeSet<String> {
    CUSTOMERS.iter().map(|s| s.to_string()).collect()
}

fn item_set() -> BTreeSet<String> {
    ITEMS.iter().map(|s| s.0.to_string()).collect()
}

/// Whether `list` is one to three distinct ids of `ids` joined by ", ".
fn is_id_list(list: &str, ids: &BTreeSet<String>) -> bool {
    let ids: Vec<&String> = ids.iter().collect();
    let mut lists = Vec::new();
    for a in &ids {
        lists.push(a.to_string());
        for b in ids.iter().filter(|b| b != &a) {
            lists.push(format!("{a}, {b}"));
            for c in ids.iter().filter(|c| c != &a && c != &b) {
                lists.push(format!("{a}, {b}, {c}"));
            }
        }
    }
    lists.iter().any(|l| l == list)
}

#[test]
fn recommendations_and_reasons_give_back_the_exact_ids() {
    let fx = Fx::new();
    let owned: BTreeMap<String, BTreeSet<String>> = CUSTOMERS
        .iter()
        .enumerate()
        .map(|(c, id)| (id.to_string(), bought(c).iter().map(|&i| ITEMS[i].0.to_string()).collect()))
        .collect();
    for (algorithm, prefix, suffix, named) in [
        ("item-knn", "also bought by customers who bought ", "", item_set()),
        ("user-knn", "most similar customers (", ")", customer_set()),
    ] {
        fx.fit(algorithm);
        fx.ok(&["recommend", "--model", "m.cobuy", "--top", "2", "--explain", "--out", "recs.csv"]);
        let (header, rows) = fx.read("recs.csv");
        assert_eq!(header, ["customer_id", "rank", "item_id", "score", "source", "reason"]);
        let who: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
        assert_eq!(who, customer_set(), "{algorithm}: every customer, by their exact id");
        assert_eq!(rows.len(), 2 * CUSTOMERS.len(), "{algorithm}");
        let mut personal = 0;
        for r in &rows {
            assert!(item_set().contains(&r[2]), "{algorithm}: item {:?} is not an id given", r[2]);
            assert!(!owned[&r[0]].contains(&r[2]), "{algorithm}: {:?} already bought {:?}", r[0], r[2]);
            if r[4] == algorithm {
                personal += 1;
                let list = r[5].split_once(prefix).and_then(|(_, l)| l.strip_suffix(suffix));
                assert!(list.is_some_and(|l| is_id_list(l, &named)), "{algorithm}: reason {:?}", r[5]);
            }
        }
        assert!(personal > 0, "{algorithm}: no reason names an id");
    }

    fx.ok(&["similar-customers", "--model", "m.cobuy", "--top", "3", "--out", "similar.csv"]);
    let (header, rows) = fx.read("similar.csv");
    assert_eq!(header, ["customer_id", "rank", "neighbor_id", "similarity", "shared_items"]);
    assert_eq!(rows.iter().map(|r| r[0].clone()).collect::<BTreeSet<_>>(), customer_set());
    for r in &rows {
        assert!(customer_set().contains(&r[2]) && r[2] != r[0], "neighbour {:?} of {:?}", r[2], r[0]);
        let shared = owned[&r[0]].intersection(&owned[&r[2]]).count();
        assert_eq!(r[4], shared.to_string(), "{r:?}");
    }
}

#[test]
fn up_sell_offers_give_back_the_exact_ids() {
    let fx = Fx::new();
    fx.ok(&[
        "up-sell",
        "--purchases",
        "p.csv",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--time-col",
        "time",
        "--catalog",
        "catalog.csv",
        "--catalog-item-col",
        "item",
        "--catalog-category-cols",
        "category",
        "--catalog-price-col",
        "price",
        "--price-cap",
        "0",
        "--out",
        "offers.csv",
    ]);
    let (header, rows) = fx.read("offers.csv");
    assert_eq!(header, ["customer_id", "rank", "item_id", "score", "anchor_item_id", "offer_after", "reason"]);
    assert!(!rows.is_empty());
    let price: BTreeMap<&str, f64> = ITEMS.iter().map(|(id, p)| (*id, p.parse().unwrap())).collect();
    for r in &rows {
        assert!(customer_set().contains(&r[0]), "customer {:?} is not an id given", r[0]);
        let c = CUSTOMERS.iter().position(|id| *id == r[0]).unwrap();
        let mine: Vec<&str> = bought(c).iter().map(|&i| ITEMS[i].0).collect();
        assert!(price.contains_key(r[2].as_str()) && !mine.contains(&r[2].as_str()), "item {:?} for {:?}", r[2], r[0]);
        // The anchor is the customer's latest purchase: their dearest item, by the data.
        assert_eq!(r[4], *mine.last().unwrap(), "anchor of {r:?}");
        assert!(price[r[2].as_str()] > price[r[4].as_str()], "{r:?}");
    }
}
