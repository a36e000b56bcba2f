//! The model file: round trips, and every kind of damage is an error (never a panic,
//! never a model), through the library and through the command line.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Output;

use cobuy::ids::CustomerIdx;
use cobuy::ingest::{Columns, IngestOptions, read_purchases};
use cobuy::matrix::{Scheme, Weighting};
use cobuy::model::{FORMAT_VERSION, FitInfo, FitParams, Model, ModelError, OLDEST_READABLE};

use crate::common::{SEED, purchase_lines, run_cobuy, write_lines};

pub(crate) fn write_purchases(path: &Path) {
    let (header, lines) = purchase_lines(SEED);
    write_lines(path, &header, &lines);
}

pub(crate) fn columns() -> Columns {
    let mut cols = Columns::new("customer", "item");
    cols.quantity = Some("quantity".into());
    cols.price = Some("price".into());
    cols.time = Some("time".into());
    cols
}

fn params() -> FitParams {
    FitParams {
        neighbors: 20,
        weighting: Weighting {
            scheme: Scheme::Bm25 { k1: 1.2, b: 0.75 },
            half_life_days: Some(120.0),
            reference_time: None,
        },
        ..FitParams::default()
    }
}

/// A fitted model and its purchases file, in `dir`.
pub(crate) fn fitted(dir: &Path) -> (Model, PathBuf) {
    let csv = dir.join("purchases.csv");
    write_purchases(&csv);
    let read = read_purchases(&csv, &IngestOptions::new(columns())).unwrap();
    let info = FitInfo {
        source: Some("purchases.csv".into()),
        ingest: Some(read.summary.clone()),
        merge: read.summary.merge,
        ..FitInfo::default()
    };
    let model = Model::fit(read.interactions, &params(), info).unwrap();
    (model, csv)
}

fn model_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    fitted(dir.path()).0.to_bytes()
}

/// `Model::from_bytes`, with a panic turned into a test failure naming `what`.
pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<Model, ModelError> {
    match catch_unwind(AssertUnwindSafe(|| Model::from_bytes(bytes))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("Model::from_bytes panicked on {what}: {}", msg.unwrap_or_default())
        }
    }
}

/// The section headers of a model file: (offset of the tag, tag, payload length).
pub(crate) fn section_headers(bytes: &[u8]) -> Vec<(usize, [u8; 4], usize)> {
    let end = bytes.len() - 16;
    let mut at = 20;
    let mut out = Vec::new();
    while at < end {
        let tag: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize;
        out.push((at, tag, len));
        at += 16 + len;
    }
    assert_eq!(at, end, "the sections end at the footer");
    out
}

fn flip(bytes: &[u8], offset: usize, bit: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[offset] ^= 1 << bit;
    b
}

// ---------------------------------------------------------------------------------------
// Library
// ---------------------------------------------------------------------------------------

#[test]
fn round_trip_through_a_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = fitted(dir.path());
    assert!(model.customers().len() > 250 && model.items().len() > 70, "the generated data covers the ids");
    assert!(model.neighbors().nnz() > 500, "the neighbours are non-trivial");

    let bytes = model.to_bytes();
    assert_eq!(model.to_bytes(), bytes, "to_bytes is deterministic");
    let path = dir.path().join("model.cobuy");
    model.save(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes, "save writes to_bytes");

    let loaded = Model::load(&path).unwrap();
    assert_eq!(loaded.to_bytes(), bytes);
    assert_eq!(loaded.params(), model.params());
    assert!(loaded.params().weighting.reference_time.is_some(), "the decay reference time is resolved and kept");
    assert_eq!(loaded.info(), model.info());
    assert_eq!(loaded.customers(), model.customers());
    assert_eq!(loaded.items(), model.items());
    assert_eq!(loaded.weighted(), model.weighted());
    assert_eq!(loaded.neighbors(), model.neighbors());
    assert_eq!(loaded.popular(), model.popular());
    let mut knn = 0;
    for c in 0..model.customers().len() as u32 {
        let want = model.recommend(CustomerIdx(c), 10);
        assert_eq!(loaded.recommend(CustomerIdx(c), 10), want, "customer {}", model.customers().id(c));
        knn += want.iter().filter(|r| r.source == cobuy::recommend::Source::ItemKnn).count();
    }
    assert!(knn > 1000, "most recommendations come from neighbours, not popularity");
    let back = Model::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
}

#[test]
fn truncated_files_are_errors() {
    let bytes = model_bytes();
    let n = bytes.len();
    assert!(n > 1000);
    let mut cuts: Vec<usize> = (0..64).chain(n - 64..n).collect();
    cuts.extend((1..=200).map(|k| 64 + k * (n - 128) / 201));
    for &cut in &cuts {
        match parse(&bytes[..cut], &format!("the first {cut} of {n} bytes")) {
            Ok(_) => panic!("the first {cut} of {n} bytes load as a model"),
            Err(ModelError::NotAModel) if cut >= 8 => panic!("the first {cut} bytes: NotAModel, magic is intact"),
            Err(_) => {}
        }
    }
    let err = Model::from_bytes(&bytes[..n / 2]).unwrap_err();
    assert!(matches!(err, ModelError::Truncated { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated"), "{err}");
    // Even the empty file: a (very) truncated model, not a panic.
    assert!(matches!(Model::from_bytes(&[]), Err(ModelError::Truncated { .. })));
}

#[test]
fn single_bit_flips_across_the_file_are_errors() {
    let bytes = model_bytes();
    let n = bytes.len();
    let mut failures = Vec::new();
    for k in 0..500 {
        let offset = k * (n - 1) / 499;
        let bit = (k % 8) as u32;
        let damaged = flip(&bytes, offset, bit);
        if parse(&damaged, &format!("bit {bit} of byte {offset} flipped")).is_ok() {
            failures.push(format!("bit {bit} of byte {offset}"));
        }
    }
    assert!(failures.is_empty(), "damaged files loaded as models: {failures:?}");
}

/// The bytes no payload checksum covers: the header, every section's tag, length and
/// checksum, and the footer. Every single-bit flip there must be an error too.
#[test]
fn single_bit_flips_in_headers_and_footer_are_errors() {
    let bytes = model_bytes();
    let n = bytes.len();
    let mut offsets: Vec<usize> = (0..20).chain(n - 16..n).collect();
    let sections = section_headers(&bytes);
    assert!(sections.iter().any(|s| &s.1 == b"PTIM") && sections.iter().any(|s| &s.1 == b"PAMT"));
    for &(at, _, _) in &sections {
        offsets.extend(at..at + 16);
    }
    let original = Model::from_bytes(&bytes).unwrap();
    let mut failures = Vec::new();
    for &offset in &offsets {
        for bit in 0..8 {
            let damaged = flip(&bytes, offset, bit);
            if let Ok(m) = parse(&damaged, &format!("bit {bit} of byte {offset} flipped")) {
                let tag = sections.iter().find(|s| (s.0..s.0 + 16).contains(&offset)).map(|s| s.1);
                let same_recs = (0..m.customers().len() as u32)
                    .all(|c| m.recommend(CustomerIdx(c), 10) == original.recommend(CustomerIdx(c), 10));
                failures.push(format!(
                    "bit {bit} of byte {offset} (section header {:?}; recommendations {})",
                    tag.map(|t| String::from_utf8_lossy(&t).into_owned()),
                    if same_recs { "unchanged" } else { "changed" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "damaged files loaded as models: {failures:#?}");
}

#[test]
fn a_newer_format_asks_for_an_upgrade() {
    let bytes = model_bytes();
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32fast::hash(&newer[..16]);
    newer[16..20].copy_from_slice(&crc.to_le_bytes());
    let err = parse(&newer, "a newer version").unwrap_err();
    match err {
        ModelError::NewerFormat { found, supported } => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        ref other => panic!("expected NewerFormat, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("upgrade"), "{msg}");
    assert!(msg.contains(&(FORMAT_VERSION + 1).to_string()), "{msg}");

    // The same change without a matching header checksum: damage, not a newer file.
    let mut forged = bytes.clone();
    forged[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let err = parse(&forged, "a version change without its checksum").unwrap_err();
    assert!(matches!(err, ModelError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("corrupt"), "{err}");

    // And a version older than this build reads, when there is one.
    if OLDEST_READABLE > 0 {
        let mut older = bytes;
        older[8..12].copy_from_slice(&(OLDEST_READABLE - 1).to_le_bytes());
        let crc = crc32fast::hash(&older[..16]);
        older[16..20].copy_from_slice(&crc.to_le_bytes());
        let err = parse(&older, "an older version").unwrap_err();
        assert!(matches!(err, ModelError::OlderFormat { .. }), "{err:?}");
    }
}

#[test]
fn a_csv_file_is_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let (_, csv) = fitted(dir.path());
    let err = Model::load(&csv).unwrap_err();
    assert!(matches!(err, ModelError::NotAModel), "{err:?}");
    assert!(matches!(parse(b"customer,item\n", "a tiny csv"), Err(ModelError::NotAModel)));
    assert!(matches!(parse(b"COBUY\0MX and more bytes", "a wrong magic"), Err(ModelError::NotAModel)));
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

fn cobuy(dir: &Path, args: &[&str]) -> Output {
    run_cobuy(dir, args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hidden_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn cli_rejects_damaged_and_missing_models_and_inspects_good_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (model, _) = fitted(dir);
    let good = dir.join("good.cobuy");
    model.save(&good).unwrap();
    let mut bytes = model.to_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let corrupt = dir.join("corrupt.cobuy");
    fs::write(&corrupt, &bytes).unwrap();
    let out = dir.join("out").join("recs.csv");
    let missing = dir.join("no-such-model.cobuy");

    for model_path in [&corrupt, &missing] {
        let shown = model_path.display().to_string();
        let o = cobuy(dir, &["recommend", "--model", &shown, "--top", "5", "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "recommend --model {shown}: {}", stderr(&o));
        assert!(stderr(&o).contains(&shown), "the error names the model: {}", stderr(&o));
        assert!(!out.exists(), "no recommendations file after a failed load");
        assert!(!out.parent().unwrap().exists() || hidden_files(out.parent().unwrap()).is_empty());

        let o = cobuy(dir, &["inspect", &shown]);
        assert_eq!(o.status.code(), Some(2), "inspect {shown}: {}", stderr(&o));
        assert!(stderr(&o).contains(&shown), "the error names the model: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&o.stdout));
    }
    let o = cobuy(dir, &["inspect", corrupt.to_str().unwrap()]);
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));

    let (customers, items) = (model.customers().len(), model.items().len());
    let o = cobuy(dir, &["inspect", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let field = |name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().next().map(String::from))
    };
    assert_eq!(field("customers").as_deref(), Some(customers.to_string().as_str()), "{text}");
    assert_eq!(field("items").as_deref(), Some(items.to_string().as_str()), "{text}");

    let o = cobuy(dir, &["inspect", good.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("inspect --json prints JSON");
    assert_eq!(v["customers"].as_u64(), Some(customers as u64), "{v}");
    assert_eq!(v["items"].as_u64(), Some(items as u64), "{v}");
    assert_eq!(v["params"]["neighbors"].as_u64(), Some(20), "{v}");
    let p: FitParams = serde_json::from_value(v["params"].clone()).expect("params are FitParams");
    assert_eq!(&p, model.params());
}

#[test]
fn cli_fit_writes_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_purchases(&dir.join("purchases.csv"));
    let fit = |purchases: &str, model: &str| {
        cobuy(
            dir,
            &[
                "--quiet",
                "fit",
                "--purchases",
                purchases,
                "--customer-col",
                "customer",
                "--item-col",
                "item",
                "--quantity-col",
                "quantity",
                "--time-col",
                "time",
                "--model",
                model,
            ],
        )
    };

    let o = fit("purchases.csv", "models/model.cobuy");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let models = dir.join("models");
    assert!(Model::load(models.join("model.cobuy")).is_ok());
    assert_eq!(hidden_files(&models), Vec::<String>::new(), "no temporary files are left");
    assert_eq!(fs::read_dir(&models).unwrap().count(), 1);

    // Bad input: the read stops at the bad row and no model file appears.
    fs::write(dir.join("bad.csv"), "customer,item,quantity,time\na,x,1,2023-01-01\nb,y,lots,2023-01-02\n").unwrap();
    let o = fit("bad.csv", "bad/model.cobuy");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.csv:3"), "the error names the row: {}", stderr(&o));
    let bad = dir.join("bad");
    assert!(!bad.join("model.cobuy").exists());
    assert!(!bad.exists() || fs::read_dir(&bad).unwrap().count() == 0, "nothing is left in the model folder");

    // A failed fit leaves an existing model untouched.
    let before = fs::read(models.join("model.cobuy")).unwrap();
    let o = fit("bad.csv", "models/model.cobuy");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(fs::read(models.join("model.cobuy")).unwrap(), before);
    assert_eq!(hidden_files(&models), Vec::<String>::new());
}

/// A save that fails at the final rename (the model path is an existing folder) must not
/// leave the temporary file behind either.
#[test]
fn cli_fit_failing_at_the_rename_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_purchases(&dir.join("purchases.csv"));
    fs::create_dir_all(dir.join("models").join("model.cobuy").join("occupied")).unwrap();
    let o = cobuy(
        dir,
        &["--quiet", "fit", "--purchases", "purchases.csv", "--model", "models/model.cobuy", "--quantity-col", "3"],
    );
    assert_ne!(o.status.code(), Some(0), "the model path is a folder: {}", stderr(&o));
    assert!(stderr(&o).contains("model.cobuy"), "{}", stderr(&o));
    assert_eq!(hidden_files(&dir.join("models")), Vec::<String>::new(), "no temporary files are left");
}

#[test]
fn a_version_1_file_reads_and_scores_as_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/model");
    let bytes = fs::read(data.join("v1-item-knn.cobuy")).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1, "the fixture is format version 1");
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.params().neighbors, 5);
    let out = dir.path().join("recs.csv");
    let model_path = data.join("v1-item-knn.cobuy");
    let o = cobuy(
        dir.path(),
        &[
            "recommend",
            "--model",
            model_path.to_str().unwrap(),
            "--top",
            "3",
            "--explain",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        fs::read_to_string(data.join("v1-item-knn.recommendations.csv")).unwrap(),
        "a version 1 model scores exactly as the build that wrote it"
    );
}

#[test]
fn latent_models_round_trip_and_reject_damage() {
    use cobuy::algo::Algorithm;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("purchases.csv");
    write_purchases(&csv);
    let read = read_purchases(&csv, &IngestOptions::new(columns())).unwrap();
    let als = FitParams {
        algorithm: Algorithm::Als,
        als: cobuy::algo::als::AlsParams { factors: 8, iterations: 3, ..Default::default() },
        ..FitParams::default()
    };
    let ease_items = FitParams {
        algorithm: Algorithm::Ease,
        ease: cobuy::algo::ease::EaseParams { side: cobuy::algo::ease::EaseSide::Items, ..Default::default() },
        ..FitParams::default()
    };
    let ease_customers = FitParams {
        algorithm: Algorithm::Ease,
        ease: cobuy::algo::ease::EaseParams { side: cobuy::algo::ease::EaseSide::Customers, ..Default::default() },
        ..FitParams::default()
    };
    for (what, params, tags) in [
        ("als", als, &[*b"AUSR", *b"AITM"][..]),
        ("ease items", ease_items, &[*b"EKEP", *b"EBIT"][..]),
        ("ease customers", ease_customers, &[*b"EKEP", *b"EMUP", *b"EDGP", *b"EXPT", *b"EXIX", *b"EXVL"][..]),
    ] {
        let model = Model::fit(read.interactions.clone(), &params, FitInfo::default()).unwrap();
        let bytes = model.to_bytes();
        assert_eq!(bytes, Model::from_bytes(&bytes).unwrap().to_bytes(), "{what}: same bytes after a round trip");
        let again = Model::from_bytes(&bytes).unwrap();
        for c in (0..model.customers().len() as u32).step_by(7).map(CustomerIdx) {
            let (a, b) = (model.recommend(c, 5), again.recommend(c, 5));
            assert_eq!(a, b, "{what}: customer {c:?}");
            assert!(a.iter().any(|r| r.source != cobuy::recommend::Source::Popular), "{what}: scored, not filled");
        }
        // A missing section is an error, never a panic. (Resealing the footer alone keeps
        // the file valid, so the error is the missing section's.)
        let headers = section_headers(&bytes);
        let mut resealed = bytes[..bytes.len() - 16].to_vec();
        resealed.extend_from_slice(b"COBUYEND");
        resealed.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        assert!(parse(&resealed, "resealed").is_ok(), "{what}: the footer is rebuilt as written");
        for tag in tags {
            let &(at, _, len) = headers.iter().find(|h| &h.1 == tag).unwrap();
            let mut cut = bytes[..at].to_vec();
            cut.extend_from_slice(&bytes[at + 16 + len..bytes.len() - 16]);
            // Re-seal the footer with the new total length so only the section is missing.
            let total = (cut.len() + 16) as u64;
            cut.extend_from_slice(b"COBUYEND");
            cut.extend_from_slice(&total.to_le_bytes());
            assert!(parse(&cut, &format!("{what} without {}", String::from_utf8_lossy(tag))).is_err());
        }
        // Flips inside the payloads are caught.
        for &(at, tag, len) in headers.iter().filter(|h| tags.contains(&h.1)) {
            let damaged = flip(&bytes, at + 16 + len / 2, 3);
            assert!(parse(&damaged, &format!("{what}: flip in {}", String::from_utf8_lossy(&tag))).is_err());
        }
    }
}

#[test]
fn inspect_shows_the_files_own_format_version() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/model");
    let v1 = data.join("v1-item-knn.cobuy");
    let text = run_cobuy(&data, &["inspect", v1.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("format version 1)"), "{text}");
    let json = run_cobuy(&data, &["inspect", v1.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(Model::load(&v1).unwrap().format_version(), 1);
    // A model fitted and saved now carries this build's version, and says so once read back.
    let dir = tempfile::tempdir().unwrap();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.path().join("p.csv"), &header, &lines);
    let mut cols = Columns::new("customer", "item");
    cols.quantity = Some("quantity".into());
    let read = read_purchases(dir.path().join("p.csv"), &IngestOptions::new(cols)).unwrap();
    let model = Model::fit(read.interactions, &FitParams::default(), FitInfo::default()).unwrap();
    assert_eq!(model.format_version(), FORMAT_VERSION);
    model.save(dir.path().join("m.cobuy")).unwrap();
    assert_eq!(Model::load(dir.path().join("m.cobuy")).unwrap().format_version(), FORMAT_VERSION);
}
