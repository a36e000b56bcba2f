//! Help texts and the flags each command accepts (issue 15, item 7): the help a newcomer reads
//! names every algorithm, says where each command writes its rejects, marks what is
//! required and gives each default; a flag a command cannot use is neither listed nor
//! accepted.

use std::fs;

use crate::common::run_cobuy;

/// `cobuy ARGS` in a scratch folder: exit code, standard output, standard error.
fn cobuy(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let o = run_cobuy(dir, args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.code().unwrap_or(-1), text(&o.stdout), text(&o.stderr))
}

/// The help of `command` (`--help`), which must succeed.
fn help(command: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut args = command.to_vec();
    args.push("--help");
    let (code, out, err) = cobuy(dir.path(), &args);
    assert_eq!(code, 0, "cobuy {args:?}: {err}");
    out
}

/// The help lines of one flag: its own line and the lines of its description.
fn flag_help(help: &str, flag: &str) -> String {
    let lines: Vec<&str> = help.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("{flag} ")))
        .unwrap_or_else(|| panic!("no {flag} in\n{help}"));
    let mut text = lines[start].to_string();
    for l in &lines[start + 1..] {
        if l.trim_start().starts_with('-') || l.trim().is_empty() {
            break;
        }
        text.push(' ');
        text.push_str(l.trim());
    }
    text
}

#[test]
fn the_top_level_help_names_every_algorithm() {
    let h = help(&[]);
    let fit = h.lines().find(|l| l.trim_start().starts_with("fit ")).expect("a fit line");
    for a in ["auto", "item-knn", "user-knn", "ease", "als", "popularity", "buy-again"] {
        assert!(fit.contains(a), "{a} missing from {fit:?}");
    }
}

#[test]
fn rejects_help_says_where_each_command_writes_them() {
    for (command, default) in [
        ("fit", "MODEL.rejects.csv"),
        ("fold-in", "OUT.rejects.csv"),
        ("eval", "OUT_DIR/model.rejects.csv"),
        ("rules", "OUT.rejects.csv"),
        ("basket-complete", "OUT.rejects.csv"),
        ("cross-sell", "OUT.rejects.csv"),
        ("up-sell", "OUT.rejects.csv"),
    ] {
        let line = flag_help(&help(&[command]), "--rejects");
        assert!(line.contains(&format!("(default: {default}")), "{command}: {line}");
    }
}

#[test]
fn eval_marks_out_dir_required_and_gives_the_test_share_default() {
    let h = help(&["eval"]);
    let usage = h.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(usage.contains("--out-dir <OUT_DIR>"), "{usage}");
    assert!(flag_help(&h, "--test-share").contains("default 0.1"), "{h}");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.csv"), "customer,item\na,x\n").unwrap();
    let (code, _, err) = cobuy(dir.path(), &["eval", "--purchases", "p.csv"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--out-dir"), "{err}");
}

/// `similar-customers` measures customers against customers: RP3beta's walk and the tie
/// rule that reproduces an item heap kernel mean nothing there, so they are not offered,
/// and given anyway they are refused (exit 2) rather than silently ignored or misapplied.
#[test]
fn similar_customers_neither_lists_nor_accepts_item_knn_flags() {
    let h = help(&["similar-customers"]);
    for flag in ["--rp3-alpha", "--rp3-beta", "--ties"] {
        assert!(!h.contains(flag), "{flag} listed:\n{h}");
    }
    assert!(!flag_help(&h, "--similarity").contains("rp3beta"), "{h}");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.csv"), "customer,item\na,x\na,y\nb,x\nb,y\nc,x\n").unwrap();
    let (code, _, err) =
        cobuy(dir.path(), &["fit", "--purchases", "p.csv", "--model", "m.cobuy", "--algorithm", "item-knn"]);
    assert_eq!(code, 0, "{err}");
    for extra in [&["--ties", "visit-order"][..], &["--rp3-beta", "0.3"], &["--similarity", "rp3beta"]] {
        let mut args = vec!["similar-customers", "--model", "m.cobuy", "--out", "s.csv"];
        args.extend_from_slice(extra);
        let (code, _, err) = cobuy(dir.path(), &args);
        assert_eq!(code, 2, "{extra:?} accepted: {err}");
        assert!(err.contains(extra[0]), "{extra:?}: {err}");
    }
    let (code, out, err) = cobuy(dir.path(), &["similar-customers", "--model", "m.cobuy", "--out", "-"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("customer_id,rank,neighbor_id,similarity,shared_items\n"), "{out}");
}

/// `generate` takes a count of rows as `--rows`, where every other command's `--purchases`
/// is a file; the old spelling still works and writes the same bytes.
#[test]
fn generate_counts_rows_with_rows() {
    let h = help(&["generate"]);
    assert!(h.lines().any(|l| l.starts_with("Usage:") && l.contains("--rows <ROWS>")), "{h}");
    let dir = tempfile::tempdir().unwrap();
    let base = ["generate", "--customers", "20", "--items", "10", "--seed", "3"];
    for (flag, out) in [("--rows", "a.csv"), ("--purchases", "b.csv")] {
        let mut args = base.to_vec();
        args.extend_from_slice(&[flag, "50", "--out", out]);
        let (code, _, err) = cobuy(dir.path(), &args);
        assert_eq!(code, 0, "{flag}: {err}");
    }
    let a = fs::read(dir.path().join("a.csv")).unwrap();
    assert_eq!(a, fs::read(dir.path().join("b.csv")).unwrap());
    assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 51, "a header and 50 rows");
}
