//! cobuy's pairwise rules on the arules Groceries baskets against mlxtend's apriori +
//! association_rules (fixture and how it was made: tests/data/rules/README.md).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use cobuy::ingest::{Columns, IngestOptions, read_log};
use cobuy::offers::rules::{Baskets, RuleParams};

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn groceries_rules_match_mlxtend() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rules");
    let mut cols = Columns::new("transaction_id", "item");
    cols.basket = Some("transaction_id".into());
    let (log, summary) = read_log(dir.join("groceries_baskets.csv.gz"), &IngestOptions::new(cols)).unwrap();
    assert_eq!(summary.rows_read, 43_367);
    let (baskets, stats) = Baskets::from_log(&log).unwrap();
    assert_eq!((stats.baskets, stats.lines), (9_835, 43_367));
    let rules = baskets.rules(&RuleParams { min_support: 0.001, ..RuleParams::default() });

    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(dir.join("groceries_pairs_mlxtend.csv.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header = rdr.headers().unwrap().clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        [
            "antecedent",
            "consequent",
            "antecedent_support",
            "consequent_support",
            "support",
            "confidence",
            "lift",
            "leverage",
            "conviction",
            "count"
        ]
    );
    let mut want: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let nums: Vec<f64> = (2..10).map(|k| rec[k].parse().unwrap()).collect();
        want.insert((rec[0].to_string(), rec[1].to_string()), nums);
    }
    assert_eq!(want.len(), 5_962);

    let ids = baskets.items();
    assert_eq!(rules.len(), want.len(), "number of rules");
    let n = baskets.len() as f64;
    for r in &rules {
        let key = (ids.id(r.antecedent.0).to_string(), ids.id(r.consequent.0).to_string());
        let w = want.get(&key).unwrap_or_else(|| panic!("cobuy's rule {key:?} is not mlxtend's"));
        let got = [
            f64::from(r.antecedent_count) / n,
            f64::from(r.consequent_count) / n,
            r.support,
            r.confidence,
            r.lift,
            r.leverage,
            r.conviction,
            f64::from(r.count),
        ];
        for (name, (g, w)) in [
            "antecedent_support",
            "consequent_support",
            "support",
            "confidence",
            "lift",
            "leverage",
            "conviction",
            "count",
        ]
        .iter()
        .zip(got.iter().zip(w))
        {
            assert!(close(*g, *w), "{key:?} {name}: cobuy {g} vs mlxtend {w}");
        }
    }
}
