//! ARCHITECTURE.md's layering, checked: every `crate::` path in the library's code points to
//! its own layer or one below it, so the recommenders never reach up into scoring, models or
//! offers, and no import circle between layers can form.

use std::fs;
use std::path::{Path, PathBuf};

/// The library's top-level modules by layer, lowest first (ARCHITECTURE.md, "Bird's-eye view").
const LAYERS: &[&[&str]] = &[
    &["time", "ids", "output", "generate"],
    &["matrix"],
    &["ingest"],
    &["value"],
    &["algo"],
    &["recommend"],
    &["model"],
    &["batch", "offers"],
    &["eval"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules a source text names as `crate::NAME`, outside comments.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let name: String = tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
            rest = tail;
        }
    }
    found
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if matches!(top.as_str(), "main" | "cli" | "lib") {
            continue; // the binary sits above every layer; lib.rs only declares them
        }
        let own = layer(&top).unwrap_or_else(|| panic!("{}: module {top} is in no layer of this test", rel.display()));
        for (line, name) in crate_paths(&fs::read_to_string(f).unwrap()) {
            checked += 1;
            match layer(&name) {
                Some(l) if l <= own => {}
                Some(_) => {
                    wrong.push(format!("{}:{line}: {top} imports crate::{name} from a layer above", rel.display()))
                }
                None => wrong.push(format!("{}:{line}: crate::{name} is in no layer of this test", rel.display())),
            }
        }
    }
    assert!(checked > 50, "only {checked} crate paths found: is the source folder right?");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_import() {
    let text = "use crate::model::Model; // crate::eval in a comment\n/// [`crate::batch`]\nlet x = crate::ids::X;";
    let names: Vec<String> = crate_paths(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["model", "ids"]);
    assert!(layer("model") > layer("algo"));
}
