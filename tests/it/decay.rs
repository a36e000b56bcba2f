//! Time decay against bad dates (issue 11, item 4): a purchase dated 9999-12-31 or
//! 1900-01-01 is reported and kept, but cannot move the decay reference; a decay that
//! zeroes (almost) every weight is refused; half-lives out of range are usage errors; an
//! up-sell date computed past year 9999 is never printed cut.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::run_cobuy;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let o = run_cobuy(dir, args);
    assert!(o.status.success(), "cobuy {args:?} failed: {}", stderr(&o));
    o
}

// ---------------------------------------------------------------------------------------
// Up-sell dates
// ---------------------------------------------------------------------------------------

/// Twelve customers buy a basic TV, then a pro TV 30 days later; `late` buys the basic TV
/// on 9999-12-31, so its offer falls in year 10000: it must not print as `10000-01-3`.
#[test]
fn an_offer_date_past_year_9999_is_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = String::from("customer,item,time\n");
    for c in 0..12 {
        p.push_str(&format!("u{c},tv-basic,2024-01-{:02}\nu{c},tv-pro,2024-02-{:02}\n", c + 1, c + 1));
    }
    p.push_str("late,tv-basic,9999-12-31\n");
    fs::write(dir.path().join("p.csv"), p).unwrap();
    fs::write(dir.path().join("c.csv"), "item,category,price\ntv-basic,tv,100\ntv-pro,tv,250\n").unwrap();
    let args = [
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
        "c.csv",
        "--catalog-item-col",
        "item",
        "--catalog-category-cols",
        "category",
        "--catalog-price-col",
        "price",
        "--out",
        "offers.csv",
    ];
    ok(dir.path(), &args);
    let text = fs::read_to_string(dir.path().join("offers.csv")).unwrap();
    let late: Vec<&str> =
        text.lines().find(|l| l.starts_with("late,")).expect("late gets an offer").split(',').collect();
    assert_eq!((late[2], late[4]), ("tv-pro", "tv-basic"), "{text}");
    // Clamped to the last day cobuy reads: a date, and one cobuy reads back.
    assert_eq!(late[5], "9999-12-31", "{text}");
}
