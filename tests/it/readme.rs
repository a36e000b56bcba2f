//! The README's shell examples, run as written on a copy of the bundled data.
//!
//! Every `$ ` line of a ```text block (with the lines its trailing `\` continues) is a
//! command; the lines after it, up to the next command, are what it prints. All commands
//! run in order in one bash session (so `F=...` carries over), from a temporary folder
//! holding a copy of `datasets/online-retail/`, with this build's `cobuy` first on the PATH
//! and `pipefail` on. Each must exit 0; the shown lines starting with `cobuy: ` must appear
//! in its standard error in that order (durations such as `56.0s` compared as `…s`); the
//! other shown lines must be its whole standard output (blank lines aside), floats exactly
//! as printed. A failure prints every command's actual output, to paste into the README.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

/// One README command and the lines shown after it.
#[derive(Debug)]
struct Example {
    /// The command as bash reads it (continuation lines kept).
    command: String,
    /// Shown log lines (`cobuy: ...`).
    log: Vec<String>,
    /// Shown standard output lines (none: standard output is not compared).
    out: Vec<String>,
}

/// The examples of every ```text block that holds a `$ ` line, in order.
fn examples(readme: &str) -> Vec<Example> {
    let mut all: Vec<Example> = Vec::new();
    // Inside a ```text block; the block's command being continued or printing.
    let (mut in_text, mut current, mut continued) = (false, false, false);
    for line in readme.lines() {
        if line.starts_with("```") {
            in_text = line == "```text" && !in_text;
            (current, continued) = (false, false);
            continue;
        }
        if !in_text {
            continue;
        }
        if continued {
            let e = all.last_mut().expect("a command is being continued");
            e.command.push('\n');
            e.command.push_str(line);
        } else if let Some(cmd) = line.strip_prefix("$ ") {
            all.push(Example { command: cmd.to_string(), log: Vec::new(), out: Vec::new() });
            current = true;
        } else if let Some(e) = all.last_mut().filter(|_| current && !line.trim().is_empty()) {
            if line.starts_with("cobuy: ") {
                e.log.push(line.to_string());
            } else {
                e.out.push(line.to_string());
            }
        }
        continued = current && line.ends_with('\\') && (continued || line.starts_with("$ "));
    }
    all
}

/// `line` with each duration (a number followed by `s`, alone: `56.0s`, `0.2s,`) as `…s`.
fn mask_durations(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let starts_word = i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'.';
        if starts_word && b[i].is_ascii_digit() {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                j += 1;
            }
            let ends_word = j + 1 >= b.len() || !b[j + 1].is_ascii_alphanumeric();
            if j < b.len() && b[j] == b's' && ends_word {
                out.push('…');
                i = j;
                continue;
            }
            out.push_str(&line[i..j]);
            i = j;
            continue;
        }
        let ch = line[i..].chars().next().expect("a char starts here");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Whether `want` appears in `have` in order (not necessarily together).
fn in_order(want: &[String], have: &[String]) -> bool {
    let mut have = have.iter();
    want.iter().all(|w| have.any(|h| h == w))
}

/// The non-blank lines of one command's part of a stream split by `@@end N` markers.
fn parts(stream: &str, n: usize) -> Vec<Vec<String>> {
    let mut parts = vec![Vec::new(); n];
    let mut k = 0;
    for line in stream.lines() {
        if let Some(done) = line.strip_prefix("@@end ") {
            k = done.split(' ').next().and_then(|d| d.parse::<usize>().ok()).map_or(k, |d| d + 1);
        } else if !line.trim().is_empty() && k < n {
            parts[k].push(line.to_string());
        }
    }
    parts
}

#[test]
fn mask_and_parse_as_documented() {
    assert_eq!(
        mask_durations("(31 of 31 measured in 56.0s; fit 1.4s, score 0s)"),
        "(31 of 31 measured in …s; fit …s, score …s)"
    );
    assert_eq!(
        mask_durations("45-day half-life, 0.1111 NDCG@10, 49 customers/s, 2s3"),
        "45-day half-life, 0.1111 NDCG@10, 49 customers/s, 2s3"
    );
    let md = "x\n```text\n$ a \\\n  b\ncobuy: l\no1\n\no2\n$ c\n```\n```sh\n$ d\n```\n```text\nsynopsis\n```\n";
    let e = examples(md);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        (e[0].command.as_str(), &e[0].log[..], &e[0].out[..]),
        ("a \\\n  b", &["cobuy: l".to_string()][..], &["o1".to_string(), "o2".to_string()][..])
    );
    assert_eq!((e[1].command.as_str(), e[1].log.len(), e[1].out.len()), ("c", 0, 0));
}

#[test]
fn readme_examples_print_what_the_readme_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 10, "{examples:?}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("datasets/online-retail");
    fs::create_dir_all(&data).unwrap();
    for f in [
        "online_retail.csv.gz",
        "catalog.csv",
        "not-products.txt",
        "job.toml",
        "retention.toml",
        "eval.toml",
        "tune.toml",
    ] {
        fs::copy(root.join("datasets/online-retail").join(f), data.join(f)).unwrap();
    }
    fs::create_dir_all(dir.path().join("datasets/cdnow")).unwrap();
    fs::copy(root.join("datasets/cdnow/CDNOW_sample.txt"), dir.path().join("datasets/cdnow/CDNOW_sample.txt")).unwrap();
    let mut script = String::from("set -o pipefail\n");
    for (k, e) in examples.iter().enumerate() {
        let _ =
            writeln!(script, "{}\nrc=$?; echo; echo \"@@end {k} $rc\"; echo >&2; echo \"@@end {k}\" >&2", e.command);
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_cobuy")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let o = Command::new("bash").arg("-c").arg(&script).current_dir(dir.path()).env("PATH", path).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let (outs, errs) = (parts(&stdout, examples.len()), parts(&stderr, examples.len()));
    let codes: Vec<Option<String>> = (0..examples.len())
        .map(|k| stdout.lines().find_map(|l| l.strip_prefix(&format!("@@end {k} ")).map(String::from)))
        .collect();
    let mut failures = String::new();
    for (k, e) in examples.iter().enumerate() {
        let masked = |lines: &[String]| lines.iter().map(|l| mask_durations(l)).collect::<Vec<_>>();
        let mut wrong = Vec::new();
        if codes[k].as_deref() != Some("0") {
            wrong.push(format!("exit code {:?}", codes[k]));
        }
        if !in_order(&masked(&e.log), &masked(&errs[k])) {
            wrong.push("the log lines shown are not in its standard error, in order".to_string());
        }
        if !e.out.is_empty() && e.out != outs[k] {
            wrong.push("its standard output is not the lines shown".to_string());
        }
        if !wrong.is_empty() {
            let _ = write!(
                failures,
                "\n$ {}\n  {}\n  --- shown:\n{}\n  --- standard output:\n{}\n  --- standard error:\n{}\n",
                e.command,
                wrong.join("; "),
                e.log.iter().chain(&e.out).map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
                outs[k].join("\n"),
                errs[k].join("\n"),
            );
        }
    }
    assert!(failures.is_empty(), "README examples that do not print what the README shows:\n{failures}");
}
