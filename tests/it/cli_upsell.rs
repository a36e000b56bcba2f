//! `cobuy up-sell`, `cobuy upgrades` and the `upgrades` target of `cobuy eval`, end to end
//! on a small purchase log built here: twelve customers buy a basic TV and, weeks later, a
//! pro TV of the same category (the path the learner must find), a few buy the basic TV
//! and then a cheaper one, some only the basic TV, lately; a phone category with its own
//! small path and a free accessory (price 0); and 100 seeded customers shopping for snacks
//! in random order. Expected paths, delays and dates are computed here from the rows.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{Lcg, civil, run_cobuy};

// ---------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------
// The data
// ---------------------------------------------------------------------------------------

/// item, category, price, name, brand. `phone-case` is free (price 0); `gift-card` is
/// bought but not in the catalogue; `tv-wall` is in the catalogue, free and never bought.
const CATALOG: &str = "item,category,price,name,brand\n\
tv-mini,tv,80,Mini TV,Private\n\
tv-basic,tv,100,Basic TV,Private\n\
tv-mid,tv,150,Mid TV,National\n\
tv-pro,tv,250,Pro TV,National\n\
tv-lux,tv,900,Luxury TV,National\n\
tv-wall,tv,0,Wall mount,Private\n\
phone-a,phone,300,Phone A,National\n\
phone-b,phone,450,Phone B,National\n\
phone-case,phone,0,Phone case,Private\n\
snack-1,snacks,1.00,Crisps,Private\n\
snack-2,snacks,1.50,Nuts,Private\n\
snack-3,snacks,2.25,Pretzels,National\n\
snack-4,snacks,3.00,Chocolate,National\n\
snack-5,snacks,4.50,Truffles,National\n\
snack-6,snacks,7.00,Caviar crisps,National\n";

/// Days from the basic TV to the pro TV of the twelve upgraders: median 30.
const DELAYS: [i64; 12] = [38, 20, 30, 26, 40, 22, 34, 30, 24, 36, 28, 32];
const MEDIAN_DELAY: i64 = 30;
/// Days from phone A to phone B of its four upgraders: median 60.5, half a day.
const PHONE_DELAYS: [i64; 4] = [61, 59, 62, 60];

/// The day a late customer `a0{i+1}` (i < 3) bought phone A.
fn phone_day(i: usize) -> i64 {
    days_from_civil(2024, 8, 1) + i as i64
}

/// 2024-01-10, the first upgrader's basic TV.
fn base() -> i64 {
    days_from_civil(2024, 1, 10)
}

/// Upgrader `i`'s basic TV day and pro TV day.
fn upgrader_days(i: usize) -> (i64, i64) {
    let a = base() + 7 * i as i64;
    (a, a + DELAYS[i])
}

/// The day the late basic-TV-only customer `a0{i+1}` bought it.
fn late_day(i: usize) -> i64 {
    days_from_civil(2024, 9, 1) + i as i64
}

/// (customer, item, day) rows.
fn rows() -> Vec<(String, &'static str, i64)> {
    let mut r: Vec<(String, &'static str, i64)> = Vec::new();
    // Twelve upgraders: basic, then pro after DELAYS days; a free phone case with the TV.
    for i in 0..12 {
        let (a, b) = upgrader_days(i);
        let c = format!("u{:02}", i + 1);
        r.push((c.clone(), "tv-basic", a));
        r.push((c.clone(), "phone-case", a));
        r.push((c, "tv-pro", b));
    }
    // Three buy basic, then a cheaper TV (not an upgrade).
    for i in 0..3 {
        let a = base() + 3 * i as i64;
        r.push((format!("c{:02}", i + 1), "tv-basic", a));
        r.push((format!("c{:02}", i + 1), "tv-mini", a + 15));
    }
    // Six buy the mid TV, then the mini (a step down: later purchases that are not the pro).
    for i in 0..6 {
        let a = base() + 5 * i as i64;
        r.push((format!("d{:02}", i + 1), "tv-mid", a));
        r.push((format!("d{:02}", i + 1), "tv-mini", a + 25));
    }
    // Two buy only the luxury TV (dearer than 4x the basic: over the price cap).
    for i in 0..2 {
        r.push((format!("e{:02}", i + 1), "tv-lux", base() + 10 * i as i64));
    }
    // Four buy phone A, then phone B after 59 to 62 days (median 60.5); three go from B
    // down to A.
    for (i, delay) in PHONE_DELAYS.iter().enumerate() {
        let a = base() + 4 * i as i64;
        r.push((format!("p{:02}", i + 1), "phone-a", a));
        r.push((format!("p{:02}", i + 1), "phone-b", a + delay));
    }
    for i in 0..3 {
        let a = base() + 2 * i as i64;
        r.push((format!("q{:02}", i + 1), "phone-b", a));
        r.push((format!("q{:02}", i + 1), "phone-a", a + 30));
        r.push((format!("q{:02}", i + 1), "gift-card", a + 30));
    }
    // Five bought only the basic TV, lately; the first three a phone A (and case) before.
    for i in 0..5 {
        let c = format!("a{:02}", i + 1);
        if i < 3 {
            r.push((c.clone(), "phone-a", phone_day(i)));
            r.push((c.clone(), "phone-case", phone_day(i)));
        }
        r.push((c, "tv-basic", late_day(i)));
    }
    // 100 snack shoppers, seeded.
    let mut rng = Lcg(0x0005_0e11);
    let snacks = ["snack-1", "snack-2", "snack-3", "snack-4", "snack-5", "snack-6"];
    for c in 0..100 {
        let n = 2 + rng.below(4);
        for _ in 0..n {
            let item = snacks[rng.skewed(6) as usize];
            r.push((format!("s{c:03}"), item, base() + i64::from(rng.below(230))));
        }
    }
    r
}

/// The purchases CSV: customer,item,time,basket.
fn purchases_csv() -> String {
    let mut out = String::from("customer,item,time,basket\n");
    for (c, i, d) in rows() {
        out.push_str(&format!("{c},{i},{},{c}-{d}\n", civil(d)));
    }
    out
}

struct CatalogItem {
    category: String,
    price: f64,
}

fn catalog_items() -> BTreeMap<String, CatalogItem> {
    CATALOG
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), CatalogItem { category: f[1].to_string(), price: f[2].parse().unwrap() })
        })
        .collect()
}

/// Items bought per customer.
fn bought() -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut m: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (c, i, _) in rows() {
        m.entry(c).or_default().insert(i);
    }
    m
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

struct Fx {
    dir: tempfile::TempDir,
}

const HEADER: [&str; 7] = ["customer_id", "rank", "item_id", "score", "anchor_item_id", "offer_after", "reason"];

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("p.csv"), purchases_csv()).unwrap();
        fs::write(dir.path().join("catalog.csv"), CATALOG).unwrap();
        Fx { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        fs::write(self.dir.path().join(name), text).unwrap();
        self.path(name)
    }

    fn cobuy(&self, args: &[&str]) -> Output {
        run_cobuy(self.dir.path(), args)
    }

    /// `cmd` (up-sell or upgrades) with the purchases (times included unless `timed` is
    /// false), the whole catalogue, then `extra`.
    fn run(&self, cmd: &str, timed: bool, extra: &[&str]) -> Output {
        let mut args = vec![cmd, "--purchases", "p.csv", "--customer-col", "customer", "--item-col", "item"];
        if timed {
            args.extend(["--time-col", "time"]);
        }
        args.extend(["--basket-col", "basket"]);
        args.extend(CATALOG_FLAGS);
        args.extend_from_slice(extra);
        self.cobuy(&args)
    }

    fn ok(&self, cmd: &str, extra: &[&str]) -> Output {
        let o = self.run(cmd, true, extra);
        assert!(o.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        o
    }
}

const CATALOG_FLAGS: [&str; 10] = [
    "--catalog",
    "catalog.csv",
    "--catalog-item-col",
    "item",
    "--catalog-category-cols",
    "category",
    "--catalog-price-col",
    "price",
    "--catalog-name-col",
    "name",
];

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The rows of an up-sell output, header checked byte for byte.
fn offers(path: &str) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap();
    assert_eq!(text.lines().next(), Some(HEADER.join(",").as_str()), "header of {path}");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records().map(|x| x.unwrap().iter().map(String::from).collect()).collect()
}

/// Checks every offer: new to the customer, in its anchor's category, dearer than it by
/// at least the default 1% step, at most 4x the dearest item the customer bought in the
/// category, anchored on the customer's latest purchase there, ranks 1.. with
/// non-increasing scores; never a free item.
fn check_offers(got: &[Vec<String>], top: usize) {
    let cat = catalog_items();
    let have = bought();
    let mut latest: BTreeMap<(String, String), (i64, f64)> = BTreeMap::new();
    for (c, i, d) in rows() {
        let Some(it) = cat.get(i) else { continue };
        if it.price <= 0.0 {
            continue;
        }
        let e = latest.entry((c, it.category.clone())).or_insert((i64::MIN, 0.0));
        e.0 = e.0.max(d);
        e.1 = e.1.max(it.price);
    }
    let mut per_customer: BTreeMap<&str, Vec<(usize, f64)>> = BTreeMap::new();
    for r in got {
        let (c, item, anchor) = (&r[0], r[2].as_str(), r[4].as_str());
        assert!(!have[c].contains(item), "{c} already bought {item}: {r:?}");
        assert!(have[c].contains(anchor), "{c} never bought the anchor {anchor}: {r:?}");
        let (it, an) = (&cat[item], &cat[anchor]);
        assert_eq!(it.category, an.category, "offer in another category than its anchor: {r:?}");
        assert!(it.price > 0.0, "a free item offered: {r:?}");
        assert!(it.price >= an.price * 1.01, "not dearer than the anchor by 1%: {r:?}");
        let (day, max_price) = latest[&(c.clone(), an.category.clone())];
        assert!(it.price <= 4.0 * max_price, "over the price cap: {r:?}");
        let anchor_days: Vec<i64> = rows().iter().filter(|x| &x.0 == c && x.1 == anchor).map(|x| x.2).collect();
        assert!(anchor_days.contains(&day), "{anchor} is not {c}'s latest purchase in {}: {r:?}", an.category);
        assert!(!r[6].is_empty(), "no reason: {r:?}");
        per_customer.entry(c).or_default().push((r[1].parse().unwrap(), r[3].parse().unwrap()));
    }
    for (c, v) in per_customer {
        assert!(v.len() <= top, "{c}: {v:?}");
        assert!(v.iter().enumerate().all(|(k, x)| x.0 == k + 1), "{c}: ranks {v:?}");
        assert!(v.windows(2).all(|w| w[0].1 >= w[1].1) && v.iter().all(|x| x.1 > 0.0), "{c}: scores {v:?}");
    }
}

// ---------------------------------------------------------------------------------------
// up-sell
// ---------------------------------------------------------------------------------------

#[test]
fn up_sell_offers_the_learned_upgrade_with_when_and_why() {
    let fx = Fx::new();
    let out = fx.path("offers.csv");
    let o = fx.ok("up-sell", &["--out", &out, "--top", "3"]);
    let got = offers(&out);
    assert!(!got.is_empty());
    check_offers(&got, 3);

    // The late basic-TV-only customers without a phone: the pro TV first, on the basic TV,
    // offered the median 30 days after it.
    for i in [3, 4] {
        let c = format!("a{:02}", i + 1);
        let mine: Vec<&Vec<String>> = got.iter().filter(|r| r[0] == c).collect();
        assert!(!mine.is_empty(), "no offer for {c}");
        let r = mine[0];
        assert_eq!((r[1].as_str(), r[2].as_str(), r[4].as_str()), ("1", "tv-pro", "tv-basic"), "{c}: {r:?}");
        assert_eq!(r[5], civil(late_day(i) + MEDIAN_DELAY), "{c}: offer_after {r:?}");
        let reason = &r[6];
        assert!(
            reason.contains("Basic TV") && reason.contains("Pro TV") && reason.contains("later upgraded"),
            "{reason}"
        );
        assert!(reason.contains(&format!("median {MEDIAN_DELAY} days")), "{reason}");
        // 12 of the 20 customers who bought the basic TV took the path.
        assert!(reason.contains("12 of 20"), "{reason}");
        // The luxury TV (9x the basic) is over the default 4x price cap.
        assert!(mine.iter().all(|r| r[2] != "tv-lux"), "{mine:?}");
    }
    // Those with a phone A also get phone B (a learned path), anchored on phone A, some
    // 60.5 days after it.
    for i in 0..3 {
        let c = format!("a{:02}", i + 1);
        let r = got.iter().find(|r| r[0] == c && r[2] == "phone-b").unwrap_or_else(|| panic!("{c}: no phone B"));
        assert_eq!(r[4], "phone-a", "{r:?}");
        assert!(r[6].contains("later upgraded") && r[6].contains("4 of 10"), "{r:?}");
        let (early, late) = (civil(phone_day(i) + 60), civil(phone_day(i) + 61));
        assert!(r[5] == early || r[5] == late, "{r:?}: offer_after should be {early} or {late}");
    }
    // Customers whose every anchor is the dearest item sold in its category get nothing.
    for c in ["e01", "e02"] {
        assert!(got.iter().all(|r| r[0] != c), "{c} got an offer");
    }
    // The free phone case and the free wall mount are counted (both are in the catalogue;
    // the case is bought) and never offered.
    let log = err(&o);
    assert!(log.contains("1 a price of 0"), "{log}");
    assert!(got.iter().all(|r| r[2] != "phone-case" && r[2] != "tv-wall"));
    // The gift card is bought but not in the catalogue.
    assert!(log.contains("1 bought items are not in the catalogue") && log.contains("gift-card"), "{log}");
    assert!(log.contains("learned ") && log.contains("upgrade paths"), "{log}");

    // Without the price cap, the luxury TV may be offered on the basic TV.
    let uncapped = fx.path("uncapped.csv");
    fx.ok("up-sell", &["--out", &uncapped, "--top", "3", "--price-cap", "0"]);
    let got = offers(&uncapped);
    assert!(got.iter().any(|r| r[0] == "a05" && r[2] == "tv-lux" && r[4] == "tv-basic"), "{got:?}");
    // With brand grades: accepted, every brand known.
    let graded = fx.path("graded.csv");
    let o = fx.ok("up-sell", &["--out", &graded, "--catalog-brand-col", "brand", "--grades", "Private,National"]);
    assert!(err(&o).contains("0 a brand not among --grades"), "{}", err(&o));
    check_offers(&offers(&graded), 5);
}

#[test]
fn up_sell_output_does_not_depend_on_the_thread_count() {
    let fx = Fx::new();
    let (one, four) = (fx.path("one.csv"), fx.path("four.csv"));
    let base =
        ["up-sell", "--purchases", "p.csv", "--customer-col", "customer", "--item-col", "item", "--time-col", "time"];
    for (threads, out) in [("1", &one), ("4", &four)] {
        let mut args = vec!["--threads", threads];
        args.extend(base);
        args.extend(CATALOG_FLAGS);
        args.extend(["--top", "4", "--out", out.as_str()]);
        let o = fx.cobuy(&args);
        assert!(o.status.success(), "{}", err(&o));
    }
    let (a, b) = (fs::read(&one).unwrap(), fs::read(&four).unwrap());
    assert!(a.len() > 1000, "too few offers to compare: {}", String::from_utf8_lossy(&a));
    assert_eq!(a, b, "1 and 4 threads differ");
    // Snack shoppers get offers too (many customers, so several parallel tasks).
    let rows = offers(&one);
    let snack_customers: BTreeSet<&str> =
        rows.iter().filter(|r| r[0].starts_with('s')).map(|r| r[0].as_str()).collect();
    assert!(snack_customers.len() > 50, "{}", snack_customers.len());
    check_offers(&rows, 4);
}

#[test]
fn customers_file_restricts_the_output_and_reports_unknown_ids() {
    let fx = Fx::new();
    let list = fx.write("some.txt", "a05\nghost\n\nu03\n");
    let out = fx.path("some.csv");
    let o = fx.ok("up-sell", &["--customers", &list, "--out", &out]);
    let got = offers(&out);
    let who: BTreeSet<&str> = got.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(who, BTreeSet::from(["a05", "u03"]), "{got:?}");
    let log = err(&o);
    assert!(
        log.contains("some.txt: 1 of its 3 customer ids is not in the model") && log.contains("\"ghost\" (line 2)"),
        "{log}"
    );
    // The same offers as in the full run.
    let all = fx.path("all.csv");
    fx.ok("up-sell", &["--out", &all]);
    let full: Vec<Vec<String>> = offers(&all).into_iter().filter(|r| r[0] == "a05" || r[0] == "u03").collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut full_sorted = full;
    full_sorted.sort();
    assert_eq!(sorted, full_sorted);

    // No known customer at all: a usage error, no output.
    let none = fx.write("none.txt", "ghost\nnobody\n");
    let out2 = fx.path("none.csv");
    let o = fx.run("up-sell", true, &["--customers", &none, "--out", &out2]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("none of its 2 customer ids is in the model"), "{}", err(&o));
    assert!(!Path::new(&out2).exists());
}

#[test]
fn bad_up_sell_input_is_a_usage_error_naming_the_problem() {
    let fx = Fx::new();
    let out = fx.path("bad.csv");
    let base = ["up-sell", "--purchases", "p.csv", "--customer-col", "customer", "--item-col", "item"];
    let timed: Vec<&str> = base.iter().copied().chain(["--time-col", "time"]).collect();
    let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
        head.iter().chain(tail).map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let expect_bad = |args: Vec<String>, want: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).chain(["--out", &out]).collect();
        let o = fx.cobuy(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        for w in want {
            assert!(err(&o).contains(w), "{args:?}: wanted {w:?} in {}", err(&o));
        }
        assert!(!Path::new(&out).exists(), "{args:?} left an output");
    };
    // No catalogue.
    expect_bad(with(&timed, &[]), &["up-sell needs a catalogue", "--catalog-price-col"]);
    // A catalogue without its price column.
    let no_price = ["--catalog", "catalog.csv", "--catalog-item-col", "item", "--catalog-category-cols", "category"];
    expect_bad(with(&timed, &no_price), &["needs item prices", "--catalog-price-col"]);
    // Purchases without times: the order cannot be learned; --tiers-only is offered.
    expect_bad(with(&base, &CATALOG_FLAGS), &["no times", "cannot be learned", "--tiers-only"]);
    // --grades without the brand column.
    expect_bad(
        with(&timed, &CATALOG_FLAGS).into_iter().chain(["--grades".into(), "Private,National".into()]).collect(),
        &["--grades needs", "--catalog-brand-col"],
    );
    // Out-of-range settings.
    for (extra, want) in [
        (&["--top", "0"][..], &["--top must be at least 1"][..]),
        (&["--min-step", "-1"][..], &["--min-step must be a number >= 0", "-1"][..]),
        (&["--tiers", "1"][..], &["--tiers must be from 2 to 20", "got 1"][..]),
        (&["--affinity-weight", "2"][..], &["--affinity-weight must be between 0 and 1"][..]),
        (&["--pair-measure", "foo"][..], &["--pair-measure", "\"foo\"", "excess", "llr"][..]),
        (&["--min-path-count", "0"][..], &["--min-path-count must be at least 1"][..]),
        (&["--price-cap", "0.5"][..], &["--price-cap is a multiple", "0.5"][..]),
        (&["--anchor-half-life", "-3"][..], &["--anchor-half-life must be a number >= 0"][..]),
    ] {
        expect_bad(with(&timed, &CATALOG_FLAGS).into_iter().chain(extra.iter().map(|s| s.to_string())).collect(), want);
    }
    // A catalogue in which no bought item has a price (the column is there, empty); one in
    // which every price is 0 (counted first: 14 bought items are in the catalogue).
    for (file, price, want) in [("unpriced.csv", "", "14 no price"), ("free.csv", "0", "14 a price of 0")] {
        fx.write(file, &with_prices(price));
        let flags: Vec<&str> = CATALOG_FLAGS.iter().map(|&f| if f == "catalog.csv" { file } else { f }).collect();
        expect_bad(with(&timed, &flags), &["no bought item has both a category", "positive price", want]);
    }
}

/// The catalogue with every price replaced by `price`.
fn with_prices(price: &str) -> String {
    CATALOG
        .lines()
        .enumerate()
        .map(|(k, l)| {
            let mut f: Vec<&str> = l.split(',').collect();
            if k > 0 {
                f[2] = price;
            }
            format!("{}\n", f.join(","))
        })
        .collect()
}

#[test]
fn without_times_tiers_only_offers_dearer_items_by_popularity() {
    let fx = Fx::new();
    let out = fx.path("tiers.csv");
    let o = fx.run("up-sell", false, &["--tiers-only", "--out", &out, "--top", "3"]);
    assert!(o.status.success(), "{}", err(&o));
    let got = offers(&out);
    assert!(got.len() > 50, "{}", got.len());
    // Without times there is no date and no learned path.
    assert!(got.iter().all(|r| r[5].is_empty()), "offer_after without times: {:?}", &got[..3]);
    assert!(got.iter().all(|r| !r[6].contains("later upgraded")), "{:?}", &got[..3]);
    // Without times the anchor is the dearest item bought in the category; the offers are
    // still new, dearer, in the category, under the cap.
    let cat = catalog_items();
    let have = bought();
    for r in &got {
        let (c, item, anchor) = (&r[0], r[2].as_str(), r[4].as_str());
        assert!(!have[c].contains(item), "{r:?}");
        assert_eq!(cat[item].category, cat[anchor].category, "{r:?}");
        let dearest = have[c]
            .iter()
            .filter_map(|i| cat.get(*i))
            .filter(|it| it.category == cat[anchor].category && it.price > 0.0)
            .map(|it| it.price)
            .fold(0.0, f64::max);
        assert_eq!(cat[anchor].price, dearest, "{r:?}");
        assert!(cat[item].price >= dearest * 1.1 && cat[item].price <= 4.0 * dearest, "{r:?}");
    }
    // Upgrader u01 (basic, then pro) has the dearer pro TV as anchor, and is offered the
    // luxury TV (3.6x the pro: under the cap), the only dearer TV.
    let u01: Vec<&Vec<String>> = got.iter().filter(|r| r[0] == "u01").collect();
    assert!(u01.iter().any(|r| r[2] == "tv-lux" && r[4] == "tv-pro"), "{u01:?}");
    assert!(u01.iter().all(|r| r[4] != "tv-basic"), "{u01:?}");
}

// ---------------------------------------------------------------------------------------
// upgrades
// ---------------------------------------------------------------------------------------

const UPGRADES_HEADER: &str = "anchor_item_id,rank,item_id,basis,customers,anchor_customers,expected,score,\
probability,median_days,anchor_price,price,reason";

fn parse_upgrades(text: &str) -> Vec<BTreeMap<String, String>> {
    assert_eq!(text.lines().next(), Some(UPGRADES_HEADER), "{text}");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records().map(|x| h.iter().cloned().zip(x.unwrap().iter().map(String::from)).collect()).collect()
}

#[test]
fn upgrades_shows_the_learned_path_first() {
    let fx = Fx::new();
    let o = fx.ok("upgrades", &["tv-basic"]);
    let text = String::from_utf8(o.stdout).unwrap();
    let rows = parse_upgrades(&text);
    let first = &rows[0];
    assert_eq!(
        (first["anchor_item_id"].as_str(), first["rank"].as_str(), first["item_id"].as_str(), first["basis"].as_str()),
        ("tv-basic", "1", "tv-pro", "path"),
        "{text}"
    );
    // The counts, from the rows: 12 took the path; 20 bought the basic TV.
    let delays = path_delays("tv-basic", "tv-pro");
    assert_eq!(delays.len(), 12);
    assert_eq!(first["customers"], delays.len().to_string());
    assert_eq!(first["anchor_customers"], rows_bought("tv-basic").to_string());
    assert_eq!(first["anchor_customers"], "20");
    assert_eq!(delays[5] + delays[6], 2 * MEDIAN_DELAY, "{delays:?}");
    assert_eq!(first["median_days"], MEDIAN_DELAY.to_string());
    assert_eq!((first["anchor_price"].as_str(), first["price"].as_str()), ("100.00", "250.00"));
    // Expected by chance: the pro TV's share of later TV purchases (12 of 21: the 12 pro
    // TVs, and the 9 mini TVs bought after another TV) over the basic-TV buyers who bought
    // another TV later (15, one other TV each).
    let p_b = 12.0 / 21.0;
    let expected = 15.0 * p_b;
    let score = (12.0 - expected) / f64::sqrt(expected);
    let got_expected: f64 = first["expected"].parse().unwrap();
    let got_score: f64 = first["score"].parse().unwrap();
    assert!((got_expected - expected).abs() < 1e-3, "expected {expected}, got {got_expected}");
    assert!((got_score - score).abs() < 1e-3, "score {score}, got {got_score}");
    assert!(first["reason"].contains("later upgraded") && first["reason"].contains("median 30 days"));
    // Then the tier fallback's mid TV; never the free mount, never the cheaper mini.
    assert!(rows.iter().skip(1).all(|r| r["basis"] == "tier"), "{text}");
    let items: Vec<&str> = rows.iter().map(|r| r["item_id"].as_str()).collect();
    assert!(items.contains(&"tv-mid") && !items.contains(&"tv-mini") && !items.contains(&"tv-wall"), "{text}");

    // An item nobody bought: usage error.
    let o = fx.run("upgrades", true, &["NOPE"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("NOPE") && err(&o).contains("none of the items was bought"), "{}", err(&o));
}

/// Per customer who bought `a` and later `b`: the days from the last `a` before the first
/// such `b` to it, sorted.
fn path_delays(a: &str, b: &str) -> Vec<i64> {
    let mut per: BTreeMap<String, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for (c, i, d) in rows() {
        let e = per.entry(c).or_default();
        if i == a {
            e.0.push(d);
        } else if i == b {
            e.1.push(d);
        }
    }
    let mut out: Vec<i64> = per
        .values()
        .filter_map(|(da, db)| {
            let first_b = db.iter().copied().filter(|&t| da.iter().any(|&s| s < t)).min()?;
            Some(first_b - da.iter().copied().filter(|&s| s < first_b).max()?)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Customers who bought `item`.
fn rows_bought(item: &str) -> usize {
    rows().iter().filter(|r| r.1 == item).map(|r| r.0.clone()).collect::<BTreeSet<_>>().len()
}

#[test]
fn upgrades_without_items_writes_every_anchor_with_a_path() {
    let fx = Fx::new();
    let out = fx.path("paths/all.csv");
    let o = fx.ok("upgrades", &["--out", &out]);
    assert!(o.stdout.is_empty(), "--out writes nothing to stdout");
    let all = parse_upgrades(&fs::read_to_string(&out).unwrap());
    // Every item named one by one: the anchors with a path are exactly those of --out, and
    // --out holds their rows, in the same order.
    let items: BTreeSet<&str> = rows().iter().map(|r| r.1).collect();
    let mut args: Vec<&str> = items.iter().copied().collect();
    args.push("--quiet");
    let o = fx.ok("upgrades", &args);
    let each = parse_upgrades(&String::from_utf8(o.stdout).unwrap());
    let with_path: BTreeSet<&str> =
        each.iter().filter(|r| r["basis"] == "path").map(|r| r["anchor_item_id"].as_str()).collect();
    let listed: BTreeSet<&str> = all.iter().map(|r| r["anchor_item_id"].as_str()).collect();
    assert_eq!(listed, with_path);
    assert!(listed.contains("tv-basic") && listed.contains("phone-a"), "{listed:?}");
    assert!(!listed.contains("tv-pro") && !listed.contains("tv-lux") && !listed.contains("gift-card"), "{listed:?}");
    let kept: Vec<&BTreeMap<String, String>> =
        each.iter().filter(|r| listed.contains(r["anchor_item_id"].as_str())).collect();
    assert_eq!(kept, all.iter().collect::<Vec<_>>());
    // Phone A to phone B: 4 customers, a median of 60.5 days, shown whole.
    let phone = all.iter().find(|r| r["anchor_item_id"] == "phone-a" && r["basis"] == "path").unwrap();
    assert_eq!((phone["item_id"].as_str(), phone["customers"].as_str()), ("phone-b", "4"));
    assert!(["60", "61"].contains(&phone["median_days"].as_str()), "{phone:?}");
    assert!(err(&fx.ok("upgrades", &["--out", &out])).contains("wrote the upgrade paths of"));
}

// ---------------------------------------------------------------------------------------
// eval --targets upgrades
// ---------------------------------------------------------------------------------------

#[test]
fn eval_measures_up_sell_against_both_baselines_on_upgrades() {
    let fx = Fx::new();
    let base = [
        "eval",
        "--purchases",
        "p.csv",
        "--customer-col",
        "customer",
        "--item-col",
        "item",
        "--time-col",
        "time",
        "--split",
        "time",
        "--cutoff",
        "2024-04-15",
        "--targets",
        "upgrades",
        "--k",
        "1,3",
        "--out-dir",
        "ev",
        "--algorithm",
        "item-knn",
    ];
    let args: Vec<&str> = base.iter().copied().chain(CATALOG_FLAGS).collect();
    let o = fx.cobuy(&args);
    assert!(o.status.success(), "{}", err(&o));
    let text = fs::read_to_string(fx.dir.path().join("ev/report.json")).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    let runs = report["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["algorithm"].as_str().unwrap()).collect();
    for want in ["popular-upgrade", "next-tier", "up-sell + item-knn"] {
        assert!(names.contains(&want), "no run {want}: {names:?}");
    }
    assert!(runs.iter().all(|r| r["target"] == "upgrades"), "{text}");
    // The measured customers and held-out pairs, from the rows: a test item not bought in
    // training, priced, dearer than the customer's latest training purchase in its category.
    let (customers, pairs) = upgrade_target(days_from_civil(2024, 4, 15));
    assert!(customers >= 10, "{customers}");
    for r in runs {
        assert_eq!(r["customers"].as_u64(), Some(customers), "{r}");
    }
    let setup = report["setup"]["upgrades"].as_str().unwrap();
    assert!(setup.starts_with(&format!("{pairs} held-out pairs")), "{setup} (want {pairs} pairs)");
    // Three upgraders bought the basic TV before the cutoff and the pro TV after it.
    let cutoff = days_from_civil(2024, 4, 15);
    assert_eq!((0..12).filter(|&i| upgrader_days(i).0 < cutoff && upgrader_days(i).1 >= cutoff).count(), 3);
    // The learned path finds the pro TV for them at rank 1; popular-upgrade offers the
    // most bought dearer TV, also the pro TV. Up-sell's hit rate is positive.
    let upsell = runs.iter().find(|r| r["algorithm"] == "up-sell + item-knn").unwrap();
    assert!(upsell["metrics"]["hit_rate"]["3"].as_f64().unwrap() > 0.0, "{upsell}");

    // The target without a catalogue: usage error before anything is read.
    let o = fx.cobuy(&base);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("the upgrades target needs a catalogue"), "{}", err(&o));
}

/// (customers, pairs) of the upgrades target of a time split at `cutoff` (a day).
fn upgrade_target(cutoff: i64) -> (u64, u64) {
    let cat = catalog_items();
    let usable = |i: &str| cat.get(i).filter(|it| it.price > 0.0);
    let mut per: BTreeMap<String, Vec<(&'static str, i64)>> = BTreeMap::new();
    for (c, i, d) in rows() {
        per.entry(c).or_default().push((i, d));
    }
    let (mut customers, mut pairs) = (0, 0);
    for v in per.values() {
        let train: Vec<&(&str, i64)> = v.iter().filter(|x| x.1 < cutoff).collect();
        if train.is_empty() {
            continue;
        }
        let owned: BTreeSet<&str> = train.iter().map(|x| x.0).collect();
        // Latest, then dearest, usable training purchase per category.
        let mut anchor: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
        for x in &train {
            if let Some(it) = usable(x.0) {
                let e = anchor.entry(it.category.as_str()).or_insert((i64::MIN, 0.0));
                if (x.1, it.price) > *e {
                    *e = (x.1, it.price);
                }
            }
        }
        let held: BTreeSet<&str> = v.iter().filter(|x| x.1 >= cutoff && !owned.contains(x.0)).map(|x| x.0).collect();
        let n = held
            .iter()
            .filter(|i| usable(i).is_some_and(|it| anchor.get(it.category.as_str()).is_some_and(|a| it.price > a.1)))
            .count() as u64;
        pairs += n;
        customers += u64::from(n > 0);
    }
    (customers, pairs)
}

// ---------------------------------------------------------------------------------------
// Reasons
// ---------------------------------------------------------------------------------------

/// The number N of "median N days" in a reason.
fn reason_days(reason: &str) -> Option<i64> {
    let at = reason.find("median ")? + "median ".len();
    reason[at..].split(' ').next()?.parse().ok()
}

#[test]
fn a_paths_delay_is_the_same_whole_number_of_days_everywhere() {
    let fx = Fx::new();
    let o = fx.ok("upgrades", &["phone-a", "tv-basic"]);
    for r in parse_upgrades(&String::from_utf8(o.stdout).unwrap()) {
        if r["basis"] == "path" {
            assert_eq!(Some(r["median_days"].parse::<i64>().unwrap()), reason_days(&r["reason"]), "{r:?}");
        }
    }
    let out = fx.path("offers.csv");
    fx.ok("up-sell", &["--out", &out]);
    for i in 0..3 {
        let c = format!("a{:02}", i + 1);
        let r = offers(&out).into_iter().find(|r| r[0] == c && r[2] == "phone-b").unwrap();
        let days = reason_days(&r[6]).unwrap();
        assert_eq!(r[5], civil(phone_day(i) + days), "{r:?}");
    }
}

/// Under `--tiers-only` nothing is measured, so a reason claims no up rate; it gives the
/// offered item's share of the buyers of all the anchor's upgrades (the module's
/// definition of the fallback), computed here from the rows and the catalogue.
#[test]
fn tiers_only_reasons_give_the_items_share_of_the_upgrades_buyers() {
    let fx = Fx::new();
    let out = fx.path("tiers.csv");
    let o = fx.run("up-sell", false, &["--tiers-only", "--out", &out]);
    assert!(o.status.success(), "{}", err(&o));
    let cat = catalog_items();
    let mut buyers: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (c, i, _) in rows() {
        buyers.entry(i).or_default().insert(c);
    }
    let buyers_of = |i: &str| buyers.get(i).map_or(0, BTreeSet::len);
    let got = offers(&out);
    assert!(got.len() > 50, "{}", got.len());
    for r in got {
        let (item, anchor) = (r[2].as_str(), &cat[r[4].as_str()]);
        let upgrades: usize = cat
            .iter()
            .filter(|(_, it)| it.category == anchor.category && it.price >= anchor.price * 1.1)
            .map(|(id, _)| buyers_of(id))
            .sum();
        let share = 100.0 * buyers_of(item) as f64 / upgrades as f64;
        let want = format!(" is {share:.0}% of the purchases of its dearer items");
        assert!(r[6].starts_with("a step up from ") && r[6].contains(&want), "{r:?}: want {want:?}");
        assert!(!r[6].contains("customers buying at that price"), "{r:?}");
    }
}

#[test]
fn a_nightly_job_writes_the_same_offers_as_up_sell() {
    let fx = Fx::new();
    let out = fx.path("offers.csv");
    fx.ok("up-sell", &["--out", &out, "--top", "3"]);
    let job = |upsell: &str| {
        format!(
            "[input]\npurchases = \"p.csv\"\ncustomer_col = \"customer\"\nitem_col = \"item\"\ntime_col = \"time\"\n\
             basket_col = \"basket\"\n[fit]\nmodel = \"out/m.cobuy\"\n[recommend]\nout = \"out/r.csv\"\n{upsell}"
        )
    };
    let catalog = "[upsell.catalog]\ncatalog = \"catalog.csv\"\ncatalog_item_col = \"item\"\n\
                   catalog_category_cols = [\"category\"]\ncatalog_price_col = \"price\"\ncatalog_name_col = \"name\"\n";
    let path = fx.write(
        "job.toml",
        &format!(
            "summary = \"out/summary.json\"\n{}",
            job(&format!("[upsell]\nout = \"out/u.csv\"\ntop = 3\n{catalog}"))
        ),
    );
    let o = fx.cobuy(&["run", &path]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(fs::read(fx.path("out/u.csv")).unwrap(), fs::read(&out).unwrap());
    // The run summary accounts for the offers file as for the recommendations.
    let offers = offers(&out);
    let summary: serde_json::Value = serde_json::from_slice(&fs::read(fx.path("out/summary.json")).unwrap()).unwrap();
    let up = &summary["upsell"];
    assert!(up["offers"].as_str().unwrap().ends_with("out/u.csv"), "{summary}");
    assert_eq!(up["batch"]["rows"], offers.len() as u64, "{summary}");
    assert_eq!(up["batch"]["customers"], bought().len() as u64, "{summary}");
    let per: BTreeMap<&str, usize> = offers.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r[0].as_str()).or_default() += 1;
        m
    });
    let short = bought().keys().filter(|c| per.get(c.as_str()).copied().unwrap_or(0) < 3).count();
    assert_eq!(up["batch"]["short_customers"], short as u64, "{summary}");
    // A job whose up-sell cannot run fails before it reads anything or writes any output.
    let bad = fx.write(
        "bad.toml",
        &job("[upsell]\nout = \"out2/u.csv\"\n[upsell.catalog]\ncatalog = \"catalog.csv\"\ncatalog_category_cols = [\"category\"]\n"),
    );
    let o = fx.cobuy(&["run", &bad]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--catalog-price-col"), "{}", err(&o));
    assert!(!Path::new(&fx.path("out2")).exists());
    let settings = fx.write(
        "settings.toml",
        &job(&format!("[upsell]\nout = \"out3/u.csv\"\n{catalog}[upsell.settings]\ntiers = 1\n")),
    );
    let o = fx.cobuy(&["run", &settings]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--tiers must be from 2 to 20"), "{}", err(&o));
}

/// `--model` scores affinity with a model saved by `cobuy fit` from the same purchases: the
/// offers of fitting that algorithm in the command.
#[test]
fn up_sell_scores_affinity_with_a_saved_model() {
    let fx = Fx::new();
    let fit = ["fit", "--purchases", "p.csv", "--customer-col", "customer", "--item-col", "item", "--time-col", "time"];
    let args: Vec<&str> = fit.iter().copied().chain(["--basket-col", "basket", "--algorithm", "ease"]).collect();
    let o = fx.cobuy(&args.iter().copied().chain(["--model", "m.cobuy"]).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", err(&o));
    let (fitted, saved) = (fx.path("fitted.csv"), fx.path("saved.csv"));
    fx.ok("up-sell", &["--algorithm", "ease", "--out", &fitted]);
    let o = fx.ok("up-sell", &["--model", "m.cobuy", "--out", &saved]);
    assert!(err(&o).contains("affinity: m.cobuy, ease"), "{}", err(&o));
    let got = offers(&saved);
    assert!(!got.is_empty());
    assert_eq!(got, offers(&fitted));
}
