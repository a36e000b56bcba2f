//! Time decay against bad dates (issue 11, item 4): a purchase dated 9999-12-31 or
//! 1900-01-01 is reported and kept, but cannot move the decay reference; a decay that
//! zeroes (almost) every weight is refused; half-lives out of range are usage errors; an
//! up-sell date computed past year 9999 is never printed cut.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::{COLUMNS, SEED, purchase_lines, run_cobuy, write_lines};

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

// ---------------------------------------------------------------------------------------
// Half-lives
// ---------------------------------------------------------------------------------------

/// Half-lives that are not a number of days a decay can use are usage errors naming the
/// flag, before anything is read; in a job file, the key.
#[test]
fn nonsensical_half_lives_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (header, rows) = purchase_lines(SEED);
    write_lines(&dir.join("p.csv"), &header, &rows);
    for h in ["1e-300", "0", "-1", "NaN", "inf", "0.01", "2e6"] {
        let mut args = vec!["fit", "--purchases", "p.csv"];
        args.extend_from_slice(&COLUMNS);
        args.extend_from_slice(&["--half-life-days", h, "--model", "m.cobuy"]);
        let o = run_cobuy(dir, &args);
        assert_eq!(o.status.code(), Some(2), "{h}: {}", stderr(&o));
        assert!(stderr(&o).contains("--half-life-days"), "{h}: {}", stderr(&o));
        assert!(!dir.join("m.cobuy").exists());
    }
    let job = "[input]\npurchases = \"p.csv\"\ncustomer_col = \"customer\"\nitem_col = \"item\"\ntime_col = \"time\"\n\n\
               [fit]\nmodel = \"m.cobuy\"\nhalf_life_days = 1e-300\n\n[recommend]\nout = \"r.csv\"\n";
    fs::write(dir.join("job.toml"), job).unwrap();
    let o = run_cobuy(dir, &["run", "job.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("half_life_days"), "{}", stderr(&o));
}
