//! Crafted model files: every checksum passes, but a decoded value is one no fit could
//! produce (a purchase time outside the years 0000 to 9999, a decay reference out of
//! range, a pair both bought and seen only, an item its own neighbour, an ingest summary
//! that does not add up, an ALS penalty never resolved against the data). Each is a clear
//! error, never an overflow or a wrong answer.
//!
//! Files are rebuilt here from the layout `src/model/format.rs` documents (header, sections
//! with CRC32 over tag, length and payload, footer), so a damaged value is resealed exactly
//! as the writer would have sealed it.

use std::fs;

use cobuy::model::{Model, ModelError};

use crate::common::run_cobuy;
use crate::model_file::{columns, fitted, parse, section_headers, write_purchases};

type Sections = Vec<([u8; 4], Vec<u8>)>;

pub(crate) fn sections(bytes: &[u8]) -> Sections {
    section_headers(bytes).into_iter().map(|(at, tag, len)| (tag, bytes[at + 16..at + 16 + len].to_vec())).collect()
}

/// A model file with these sections, sealed as the format says.
fn seal(version: u32, sections: &Sections) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"COBUY\0MF");
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    let crc = crc32fast::hash(&b[..16]);
    b.extend_from_slice(&crc.to_le_bytes());
    for (tag, payload) in sections {
        let len = (payload.len() as u64).to_le_bytes();
        let mut h = crc32fast::Hasher::new();
        h.update(tag);
        h.update(&len);
        h.update(payload);
        b.extend_from_slice(tag);
        b.extend_from_slice(&len);
        b.extend_from_slice(&h.finalize().to_le_bytes());
        b.extend_from_slice(payload);
    }
    b.extend_from_slice(b"COBUYEND");
    let total = (b.len() + 8) as u64;
    b.extend_from_slice(&total.to_le_bytes());
    b
}

/// The file with section `tag`'s payload changed by `edit`, resealed.
fn edited(bytes: &[u8], tag: &[u8; 4], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut s = sections(bytes);
    edit(&mut s.iter_mut().find(|(t, _)| t == tag).expect("the section is there").1);
    seal(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), &s)
}

fn u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn put_u32s(b: &mut Vec<u8>, v: &[u32]) {
    *b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
}

/// The file with its META JSON changed by `edit`.
fn meta_edited(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    edited(bytes, b"META", |p| {
        let mut v: serde_json::Value = serde_json::from_slice(p).unwrap();
        edit(&mut v);
        *p = serde_json::to_vec_pretty(&v).unwrap();
    })
}

/// A corrupt-file error whose message holds every one of `words`.
fn refused(bytes: &[u8], what: &str, words: &[&str]) {
    match parse(bytes, what) {
        Err(e @ ModelError::Corrupt(_)) => {
            let msg = e.to_string();
            for w in words {
                assert!(msg.contains(w), "{what}: the error does not say {w:?}: {msg}");
            }
        }
        Err(e) => panic!("{what}: expected a corrupt-file error, got {e:?}"),
        Ok(_) => panic!("{what}: the crafted file was read as a model"),
    }
}

/// A model with purchase times, a time decay, seen-only pairs and item neighbours.
fn model_bytes() -> (Model, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = fitted(dir.path());
    let bytes = model.to_bytes();
    (model, bytes)
}

#[test]
fn resealing_unchanged_sections_gives_the_same_file() {
    let (model, bytes) = model_bytes();
    assert_eq!(seal(2, &sections(&bytes)), bytes, "the test seals files exactly as the writer does");
    // And an edit that keeps every value in range is read back with that value.
    let oldest = cobuy::time::MIN;
    let file = edited(&bytes, b"PTIM", |p| p[..8].copy_from_slice(&oldest.to_le_bytes()));
    let read = parse(&file, "the first purchase at the oldest time").unwrap();
    let (got, want) = (read.interactions().last_time().unwrap(), model.interactions().last_time().unwrap());
    assert_eq!((got[0], &got[1..]), (oldest, &want[1..]));
}

/// The bug: times past the accepted range made the decay's age `t0 - t` overflow i64 (a
/// panic with overflow checks; without them a wrapped, wrong weight).
#[test]
fn purchase_times_out_of_range_are_refused() {
    let (model, bytes) = model_bytes();
    assert!(model.params().weighting.half_life_days.is_some(), "the model decays");
    for t in [i64::MIN + 1, cobuy::time::MIN - 1, cobuy::time::MAX + 1, i64::MAX] {
        let file = edited(&bytes, b"PTIM", |p| p[8..16].copy_from_slice(&t.to_le_bytes()));
        refused(&file, &format!("a purchase time {t}"), &["purchase time", &t.to_string(), "0000 to 9999"]);
    }
    // `i64::MIN` is the stored "no time" of a pair, not an out-of-range time.
    let file = edited(&bytes, b"PTIM", |p| p[8..16].copy_from_slice(&i64::MIN.to_le_bytes()));
    assert!(parse(&file, "a pair without a time").is_ok());
}

#[test]
fn a_decay_reference_out_of_range_is_refused() {
    let (_, bytes) = model_bytes();
    for t in [i64::MIN + 1, cobuy::time::MAX + 1] {
        let file = meta_edited(&bytes, |v| v["params"]["weighting"]["reference_time"] = t.into());
        refused(&file, &format!("a reference time {t}"), &["reference time", "0000 to 9999"]);
    }
    let file = meta_edited(&bytes, |v| v["params"]["weighting"]["reference_time"] = cobuy::time::MAX.into());
    assert!(parse(&file, "the newest reference time").is_ok());
}

#[test]
fn a_pair_both_bought_and_seen_is_refused() {
    let (model, bytes) = model_bytes();
    let d = model.interactions();
    // A customer with exactly one seen-only item and a purchase: the seen item becomes a
    // bought one (the row stays sorted and in range, so only the overlap is wrong).
    let c = (0..d.customers().len() as u32)
        .map(cobuy::ids::CustomerIdx)
        .find(|&c| d.seen_only(c).len() == 1 && !d.purchases(c).0.is_empty())
        .expect("a customer with one netted-out pair and purchases");
    let at = u64s(&sections(&bytes).into_iter().find(|s| &s.0 == b"SPTR").unwrap().1)[c.get()] as usize;
    let bought = d.purchases(c).0[0];
    let file = edited(&bytes, b"SIDX", |p| {
        let mut v = u32s(p);
        v[at] = bought;
        put_u32s(p, &v);
    });
    refused(&file, "a pair both bought and seen", &["both bought and seen"]);
}

#[test]
fn an_item_its_own_neighbour_is_refused() {
    let (model, bytes) = model_bytes();
    let n = model.neighbors();
    let ptr = n.proper_indptr();
    // Row i's entry nearest below i (or the first, when none is below) becomes i: still
    // sorted, so only the self-loop is wrong.
    let (i, at) = (0..n.rows())
        .find_map(|i| {
            let row = &n.indices()[ptr[i]..ptr[i + 1]];
            let below = row.iter().rposition(|&j| (j as usize) < i);
            (!row.is_empty()).then(|| (i, ptr[i] + below.unwrap_or(0)))
        })
        .unwrap();
    let file = edited(&bytes, b"NIDX", |p| {
        let mut v = u32s(p);
        v[at] = i as u32;
        put_u32s(p, &v);
    });
    refused(&file, "an item its own neighbour", &["own neighbour"]);
}

#[test]
fn an_ingest_summary_that_does_not_add_up_is_refused() {
    let (_, bytes) = model_bytes();
    let file = meta_edited(&bytes, |v| {
        let s = &mut v["info"]["ingest"];
        s["rows_read"] = u64::MAX.into();
        s["purchase_rows"] = u64::MAX.into();
        s["guest_rows"] = 1.into();
    });
    refused(&file, "buckets that overflow", &["row counts"]);
    let file = meta_edited(&bytes, |v| {
        v["info"]["ingest"]["time_outliers"] = serde_json::json!({
            "after": u64::MAX, "before": 1, "first_line": 2, "first_time": 0, "bulk_from": 0, "bulk_to": 0
        });
    });
    refused(&file, "outliers that overflow", &["row counts"]);
}

/// ALS's default penalty is stored resolved, in the shape earlier files have (a number, no
/// `relative` key), so files of earlier fits read as before (their penalty as written) and
/// fold-in uses the number; a file claiming a relative penalty was never fitted so.
#[test]
fn als_penalty_is_stored_resolved_and_an_unresolved_one_is_refused() {
    use cobuy::algo::Algorithm;
    use cobuy::algo::als::AlsParams;
    use cobuy::model::{FitInfo, FitParams};
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("purchases.csv");
    write_purchases(&csv);
    let read = cobuy::ingest::read_purchases(&csv, &cobuy::ingest::IngestOptions::new(columns())).unwrap();
    let params = FitParams {
        algorithm: Algorithm::Als,
        als: AlsParams { factors: 6, iterations: 2, ..AlsParams::default() },
        ..FitParams::default()
    };
    let model = Model::fit(read.interactions, &params, FitInfo::default()).unwrap();
    let als = model.params().als;
    assert!(!als.relative && als.regularization > 0.0, "{als:?}");
    assert_eq!(als, params.als.resolve(model.weighted()));
    let bytes = model.to_bytes();
    let again = parse(&bytes, "the fitted model").unwrap();
    assert_eq!(again.params().als, als, "the penalty round-trips");
    let meta = sections(&bytes).into_iter().find(|s| &s.0 == b"META").unwrap().1;
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    let stored = meta["params"]["als"].as_object().unwrap();
    assert_eq!(stored["regularization"].as_f64().unwrap() as f32, als.regularization);
    assert!(!stored.contains_key("relative"), "earlier builds wrote no such key: {stored:?}");
    // An earlier fit's file: the old default penalty, read as written.
    let earlier = meta_edited(&bytes, |v| v["params"]["als"]["regularization"] = 0.01.into());
    assert_eq!(parse(&earlier, "an earlier fit").unwrap().params().als.regularization, 0.01);
    let crafted = meta_edited(&bytes, |v| v["params"]["als"]["relative"] = true.into());
    refused(&crafted, "a relative ALS penalty", &["ALS", "never resolved"]);
}

/// Through the command line: exit code 2 and the reason, for scoring and for `inspect`.
#[test]
fn cli_refuses_a_crafted_file_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_, bytes) = model_bytes();
    let file = edited(&bytes, b"PTIM", |p| p[..8].copy_from_slice(&(i64::MIN + 1).to_le_bytes()));
    fs::write(dir.join("crafted.cobuy"), file).unwrap();
    for args in [
        &["recommend", "--model", "crafted.cobuy", "--top", "3", "--out", "r.csv"][..],
        &["inspect", "crafted.cobuy"][..],
    ] {
        let o = run_cobuy(dir, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("purchase time") && err.contains("crafted.cobuy"), "{args:?}: {err}");
    }
    assert!(!dir.join("r.csv").exists());
}
