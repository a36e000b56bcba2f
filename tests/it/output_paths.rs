//! Hostile output paths and killed runs: an output that is also an input is refused before
//! anything is read; what is at an output path decides how it is written (regular files and
//! symlinks to them replaced atomically, the link kept; devices, FIFOs and standard output
//! written through); temporary files never outlive their process; a closed standard output
//! is a quiet end; every output location is checked before the input is read.
//!
//! Runs as any user, root included: real device nodes are only written (`/dev/null`,
//! `/dev/full`), never replaced; FIFOs are made in a temporary folder.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::common::{COLUMNS, SEED, purchase_lines, run_cobuy, write_lines};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// A folder with `purchases.csv` (the shared generated rows) and `model.cobuy` fitted on it.
fn setup() -> TempDir {
    let dir = TempDir::new().unwrap();
    let (header, lines) = purchase_lines(SEED);
    write_lines(&dir.path().join("purchases.csv"), &header, &lines);
    let mut args = vec!["--quiet", "fit", "--purchases", "purchases.csv", "--model", "model.cobuy"];
    args.extend(COLUMNS);
    let o = run_cobuy(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn temporaries(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| n.ends_with(".tmp")).collect()
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().expect("mkfifo runs").success();
    assert!(ok, "mkfifo {}", path.display());
}

// ---------------------------------------------------------------------------------------
// What is at the output path
// ---------------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn a_symlink_at_the_output_is_kept_and_its_target_updated() {
    let dir = setup();
    let d = dir.path();
    fs::create_dir(d.join("real")).unwrap();
    fs::write(d.join("real/recs.csv"), "old\n").unwrap();
    std::os::unix::fs::symlink("real/recs.csv", d.join("recs.csv")).unwrap();
    let o = run_cobuy(d, &["--quiet", "recommend", "--model", "model.cobuy", "--out", "recs.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fs::symlink_metadata(d.join("recs.csv")).unwrap().file_type().is_symlink(), "the link is kept");
    let text = fs::read_to_string(d.join("real/recs.csv")).unwrap();
    assert!(text.starts_with("customer_id,rank,item_id,score,source\n"), "{text:.80}");
    assert_eq!(names(&d.join("real")), ["recs.csv"], "no temporary file left beside the target");
}

#[cfg(unix)]
#[test]
fn a_fifo_at_the_output_is_written_through() {
    let dir = setup();
    let d = dir.path();
    let fifo = d.join("recs.fifo");
    mkfifo(&fifo);
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || tx.send(fs::read(&fifo).unwrap()));
    }
    let o = run_cobuy(d, &["--quiet", "recommend", "--model", "model.cobuy", "--out", "recs.fifo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A replaced FIFO never gets a writer: its reader would wait forever.
    let got = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the FIFO's reader gets the output");
    assert!(got.starts_with(b"customer_id,rank,item_id,score,source\n"), "the reader gets the rows");
    assert!(got.len() > 1000);
    let o = run_cobuy(d, &["--quiet", "recommend", "--model", "model.cobuy", "--out", "recs.csv"]);
    assert!(o.status.success());
    assert_eq!(got, fs::read(d.join("recs.csv")).unwrap(), "the same bytes as a file");
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");
    assert!(temporaries(d).is_empty());
}

/// Devices are reached through symlinks in the test's folder: should a regression replace
/// what is at the output path, it replaces the link, never the machine's device node.
#[cfg(unix)]
#[test]
fn devices_are_written_through_and_a_full_disk_names_the_path() {
    use std::os::unix::fs::FileTypeExt;
    let dir = setup();
    let d = dir.path();
    std::os::unix::fs::symlink("/dev/null", d.join("null")).unwrap();
    std::os::unix::fs::symlink("/dev/full", d.join("full")).unwrap();
    let o = run_cobuy(d, &["--quiet", "recommend", "--model", "model.cobuy", "--out", "null"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fs::symlink_metadata(d.join("null")).unwrap().file_type().is_symlink(), "the link is kept");
    assert!(fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    for args in [
        &["--quiet", "recommend", "--model", "model.cobuy", "--out", "full"][..],
        &["--quiet", "rules", "--purchases", "purchases.csv", "--min-support", "0.0001", "--out", "full"],
        &["--quiet", "generate", "--customers", "50", "--items", "20", "--rows", "400", "--out", "full"],
    ] {
        let o = run_cobuy(d, args);
        let e = stderr(&o);
        assert!(fs::symlink_metadata(d.join("full")).unwrap().file_type().is_symlink(), "{args:?}: replaced");
        assert_eq!(code(&o), Some(1), "{args:?}: {e}");
        assert!(e.contains("full") && e.contains("No space left"), "{args:?}: {e}");
    }
    assert!(temporaries(d).is_empty());
}

#[test]
fn a_dash_writes_to_standard_output() {
    let dir = setup();
    let d = dir.path();
    let o = run_cobuy(d, &["--quiet", "recommend", "--model", "model.cobuy", "--out", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o2 = run_cobuy(d, &["--quiet", "recommend", "--model", "model.cobuy", "--out", "recs.csv"]);
    assert!(o2.status.success());
    assert_eq!(o.stdout, fs::read(d.join("recs.csv")).unwrap());
    assert!(!d.join("-").exists(), "no file named -");
}

// ---------------------------------------------------------------------------------------
// Killed runs and closed pipes
// ---------------------------------------------------------------------------------------

/// Starts a `generate` long enough to be killed while it writes `big.csv` in `dir`, waits
/// for its temporary file, sends `signal` and returns its exit code.
#[cfg(unix)]
fn killed_generate(dir: &Path, signal: &str) -> Option<i32> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cobuy"));
    // cobuy leaves a signal ignored when it was started ignoring it (`nohup`): give the child
    // the default disposition, so that the test holds when the test run itself is under nohup.
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let mut child = cmd
        .current_dir(dir)
        .args(["--quiet", "generate", "--customers", "100000", "--items", "5000", "--rows", "50000000"])
        .args(["--out", "big.csv"])
        .spawn()
        .expect("cobuy runs");
    let start = std::time::Instant::now();
    while temporaries(dir).is_empty() {
        assert!(start.elapsed().as_secs() < 30, "no temporary file appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let ok = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -{signal}");
    child.wait().unwrap().code()
}

#[cfg(unix)]
#[test]
fn a_signal_removes_the_temporary_file_and_exits_with_128_plus_the_signal() {
    let dir = TempDir::new().unwrap();
    for (signal, number) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let code = killed_generate(dir.path(), signal);
        assert_eq!(code, Some(128 + number), "SIG{signal}");
        assert!(temporaries(dir.path()).is_empty(), "{signal}: {:?}", names(dir.path()));
        assert!(!dir.path().join("big.csv").exists(), "{signal}: no half-written output");
    }
}

#[cfg(unix)]
#[test]
fn a_later_run_removes_the_temporary_files_of_dead_processes_only() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    // No process has a pid this large (Linux's maximum is 2^22); this test's process lives.
    let dead = d.join(".small.csv.999999999.tmp");
    let live = d.join(format!(".small.csv.{}.tmp", std::process::id()));
    let other = d.join(".other.csv.999999999.tmp");
    for p in [&dead, &live, &other] {
        fs::write(p, "half").unwrap();
    }
    let o = run_cobuy(d, &["--quiet", "generate", "--customers", "50", "--items", "20", "--rows", "400"]);
    assert!(!o.status.success(), "--out is required");
    let o = run_cobuy(
        d,
        &["--quiet", "generate", "--customers", "50", "--items", "20", "--rows", "400", "--out", "small.csv"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dead.exists(), "a dead process's temporary file is removed");
    assert!(live.exists(), "a live process's temporary file is kept");
    assert!(other.exists(), "another output's temporary file is kept");
}

/// Runs `cobuy ARGS` with its standard output a pipe whose reader has gone (as in
/// `cobuy ARGS | head -c 10` once head has its bytes).
#[cfg(unix)]
fn into_closed_pipe(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cobuy"))
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cobuy runs");
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn a_closed_standard_output_is_a_quiet_successful_end() {
    let dir = setup();
    let d = dir.path();
    let big = ["--quiet", "generate", "--customers", "2000", "--items", "300", "--rows", "400000", "--out", "-"];
    for args in [
        &["inspect", "model.cobuy", "--json"][..],
        &["inspect", "model.cobuy"],
        &["--quiet", "recommend", "--model", "model.cobuy", "--top", "50", "--out", "-"],
        &big,
    ] {
        let o = into_closed_pipe(d, args);
        assert_eq!(code(&o), Some(0), "{args:?}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
}

// ---------------------------------------------------------------------------------------
// An output that is also an input, checked before anything is read
// ---------------------------------------------------------------------------------------

/// Runs `cobuy` and checks that it refused with exit code 2, naming `word`, and that every
/// file of `dir` is as it was.
fn refused(dir: &Path, args: &[&str], word: &str) {
    let before: Vec<(String, Vec<u8>)> = names(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    let o = run_cobuy(dir, args);
    let e = stderr(&o);
    assert_eq!(code(&o), Some(2), "{args:?}: {e}");
    assert!(e.contains(word), "{args:?}: {e}");
    for (n, bytes) in before {
        assert_eq!(fs::read(dir.join(&n)).unwrap(), bytes, "{args:?}: {n} was changed");
    }
    assert!(temporaries(dir).is_empty(), "{args:?}");
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_untouched() {
    let dir = setup();
    let d = dir.path();
    fs::create_dir(d.join("sub")).unwrap();
    fs::write(d.join("customers.txt"), "cust-000\n12003\n").unwrap();
    fs::write(d.join("deny.txt"), "SKU-001\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("purchases.csv", d.join("link.csv")).unwrap();
    let fit = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["--quiet", "fit", "--purchases", "purchases.csv"];
        v.extend(COLUMNS);
        v.extend(extra);
        v
    };
    let same = "the same file";
    refused(d, &fit(&["--skip-invalid", "--rejects", "purchases.csv", "--model", "m2.cobuy"]), same);
    refused(d, &fit(&["--skip-invalid", "--rejects", "sub/../purchases.csv", "--model", "m2.cobuy"]), same);
    refused(d, &fit(&["--model", "./purchases.csv"]), same);
    #[cfg(unix)]
    refused(d, &fit(&["--model", "link.csv"]), same);
    #[cfg(unix)]
    refused(d, &fit(&["--model", "sub/../link.csv"]), same);
    refused(d, &fit(&["--model", "m2.cobuy", "--skip-invalid", "--rejects", "m2.cobuy"]), same);
    refused(d, &["recommend", "--model", "model.cobuy", "--out", "model.cobuy"], same);
    refused(
        d,
        &["recommend", "--model", "model.cobuy", "--customers", "customers.txt", "--out", "customers.txt"],
        same,
    );
    refused(d, &["recommend", "--model", "model.cobuy", "--deny", "deny.txt", "--out", "sub/../deny.txt"], same);
    refused(d, &["similar-customers", "--model", "model.cobuy", "--out", "model.cobuy"], same);
    refused(d, &["fold-in", "--model", "model.cobuy", "--purchases", "purchases.csv", "--out", "purchases.csv"], same);
    refused(d, &["rules", "--purchases", "purchases.csv", "--out", "purchases.csv"], same);
    refused(
        d,
        &["rules", "--purchases", "purchases.csv", "--skip-invalid", "--rejects", "r.csv", "--out", "r.csv"],
        same,
    );
    refused(
        d,
        &["basket-complete", "--purchases", "purchases.csv", "--items", "SKU-001", "--out", "purchases.csv"],
        same,
    );
    refused(d, &["generate", "--customers", "5", "--items", "5", "--rows", "50", "--out", "sub"], "directory");
    // A path ending with / names a folder, even one that does not exist yet: refused
    // before the purchases are read, and the folder is not made.
    for folder in ["sub/", "new/"] {
        let args = ["fit", "--purchases", "purchases.csv", "--algorithm", "popularity", "--model", folder];
        refused(d, &args, "ends with / and so names a folder");
        let e = stderr(&run_cobuy(d, &args));
        assert!(!e.contains("reading"), "{e}");
    }
    assert!(!d.join("new").exists());
}

/// A model file that is not there: the message says how to make one.
#[test]
fn a_missing_model_says_to_fit_one() {
    let dir = setup();
    let o = run_cobuy(dir.path(), &["recommend", "--model", "none.cobuy", "--out", "r.csv"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("none.cobuy: no such model file; fit one first: cobuy fit --purchases FILE --model none.cobuy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_job_whose_outputs_overlap_its_inputs_or_each_other_is_refused_before_anything_is_read() {
    let dir = setup();
    let d = dir.path();
    let job = |recommend_out: &str, summary: &str| {
        format!(
            "summary = \"{summary}\"\n[input]\npurchases = \"purchases.csv\"\ncustomer_col = \"customer\"\nitem_col = \"item\"\n\
             [fit]\nmodel = \"out/model.cobuy\"\n[recommend]\nout = \"{recommend_out}\"\n"
        )
    };
    fs::create_dir(d.join("summary-dir")).unwrap();
    for (text, word) in [
        (job("purchases.csv", "out/summary.json"), "the same file"),
        (job("out/recs.csv", "job.toml"), "the same file"),
        (job("out/recs.csv", "out/model.cobuy"), "the same file"),
        (job("out/../out/model.cobuy", "out/summary.json"), "the same file"),
        (job("out/recs.csv", "summary-dir"), "directory"),
    ] {
        fs::write(d.join("job.toml"), &text).unwrap();
        refused(d, &["run", "job.toml"], word);
        assert!(!d.join("out/model.cobuy").exists(), "{text}: nothing is fitted");
    }
    // The [upsell] step's catalogue is read before the model and the recommendations are written.
    let mut text = job("out/recs.csv", "out/summary.json");
    text.push_str(
        "[upsell]\nout = \"out/upsell.csv\"\n[upsell.catalog]\ncatalog = \"missing.csv\"\n\
         catalog_category_cols = [\"2\"]\ncatalog_price_col = \"3\"\n",
    );
    fs::write(d.join("job.toml"), &text).unwrap();
    let o = run_cobuy(d, &["--quiet", "run", "job.toml"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.csv"), "{}", stderr(&o));
    assert!(!d.join("out/model.cobuy").exists() && !d.join("out/recs.csv").exists(), "nothing written");
}

/// The purchases are a FIFO nobody writes to: a command that read them before checking its
/// outputs would wait forever.
#[cfg(unix)]
#[test]
fn output_locations_are_checked_before_the_input_is_read() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    mkfifo(&d.join("purchases.fifo"));
    fs::write(d.join("file"), "not a folder").unwrap();
    fs::create_dir(d.join("folder")).unwrap();
    for args in [
        &["fit", "--purchases", "purchases.fifo", "--model", "file/model.cobuy"][..],
        &["fit", "--purchases", "purchases.fifo", "--model", "folder"],
        &["rules", "--purchases", "purchases.fifo", "--out", "file/rules.csv"],
        &["up-sell", "--purchases", "purchases.fifo", "--catalog", "c.csv", "--catalog-category-cols", "2"]
            .iter()
            .chain(&["--catalog-price-col", "3", "--out", "folder"])
            .copied()
            .collect::<Vec<_>>(),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cobuy"))
            .current_dir(d)
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed().as_secs() > 20 {
                child.kill().unwrap();
                panic!("{args:?}: still reading the purchases");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let o = child.wait_with_output().unwrap();
        assert!(!o.status.success(), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains("file") || e.contains("folder"), "{args:?}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Limits and id lists
// ---------------------------------------------------------------------------------------

#[test]
fn absurd_thread_counts_and_generated_sizes_are_usage_errors() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let small = ["generate", "--customers", "5", "--items", "5", "--rows", "50", "--out", "g.csv"];
    for threads in ["1025", "10000", "18446744073709551615"] {
        let mut args = vec!["--threads", threads];
        args.extend(small);
        let o = run_cobuy(d, &args);
        assert_eq!(code(&o), Some(2), "{threads}: {}", stderr(&o));
        assert!(stderr(&o).contains("at most 1024"), "{}", stderr(&o));
    }
    let o = run_cobuy(d, &["--threads", "1024", "generate", "--customers", "5", "--items", "5", "--rows", "50"]);
    assert_eq!(code(&o), Some(2), "--out missing");
    let o =
        run_cobuy(d, &["generate", "--customers", "10", "--items", "10", "--rows", "10000000000", "--out", "huge.csv"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--rows 10000000000") && stderr(&o).contains("GiB"), "{}", stderr(&o));
    assert!(names(d).is_empty(), "nothing written: {:?}", names(d));
}

#[test]
fn id_lists_lose_their_bom_and_duplicate_customers_are_scored_once() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("customers.txt"), "\u{feff}cust-000\n12003\ncust-000\n12003\ncust-000\n").unwrap();
    fs::write(d.join("plain.txt"), "cust-000\n12003\n").unwrap();
    let o = run_cobuy(d, &["recommend", "--model", "model.cobuy", "--customers", "customers.txt", "--out", "a.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("3 customer ids are listed more than once (the first: \"cust-000\")"), "{e}");
    assert!(!e.contains("not in the model"), "the BOM is not part of the first id: {e}");
    let o =
        run_cobuy(d, &["--quiet", "recommend", "--model", "model.cobuy", "--customers", "plain.txt", "--out", "b.csv"]);
    assert!(o.status.success());
    assert_eq!(fs::read(d.join("a.csv")).unwrap(), fs::read(d.join("b.csv")).unwrap());
    // A deny list with a BOM blocks its first item.
    let recs = fs::read_to_string(d.join("b.csv")).unwrap();
    let first_item = recs.lines().nth(1).unwrap().split(',').nth(2).unwrap().to_string();
    fs::write(d.join("deny.txt"), format!("\u{feff}{first_item}\n")).unwrap();
    let o = run_cobuy(
        d,
        &["--quiet", "recommend", "--model", "model.cobuy", "--customers", "plain.txt", "--deny", "deny.txt"]
            .iter()
            .chain(&["--out", "c.csv"])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let denied = fs::read_to_string(d.join("c.csv")).unwrap();
    assert!(!denied.lines().skip(1).any(|l| l.split(',').nth(2) == Some(first_item.as_str())), "{first_item} denied");
}

#[test]
fn eval_and_tune_refuse_an_output_that_is_an_input() {
    let dir = setup();
    let d = dir.path();
    let same = "the same file";
    fs::create_dir(d.join("split")).unwrap();
    fs::copy(d.join("purchases.csv"), d.join("split/train.csv")).unwrap();
    let mut eval = vec!["eval", "--purchases", "split/train.csv", "--out-dir", "report", "--write-split", "split"];
    eval.extend(COLUMNS);
    refused(d, &eval, same);
    let job = format!(
        "[tune]\ntarget = \"new-items\"\nout = \"tune.toml\"\n\n[input]\npurchases = \"purchases.csv\"\n\
         customer_col = \"{}\"\nitem_col = \"{}\"\n\n[split]\ntest_share = 0.2\n\n[[space]]\nalgorithm = \"item-knn\"\nneighbors = [10, 20]\n",
        COLUMNS[1], COLUMNS[3]
    );
    fs::write(d.join("tune.toml"), job).unwrap();
    refused(d, &["tune", "tune.toml"], same);
}
