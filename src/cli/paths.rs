//! Every command's files, checked before anything is read: an output that is also an
//! input (the same file by device and inode, whatever symlinks or `..` lead to it), two
//! outputs naming the same file, an output that is a folder, or an output location that
//! cannot be written is refused up front, so that no input is ever overwritten and no long
//! run fails at its last step.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use cobuy::output::{Destination, destination};

use super::{bad, create_parent};

/// A command's input and output files, each with what it is (for messages).
#[derive(Default)]
pub struct Files {
    inputs: Vec<(String, PathBuf)>,
    outputs: Vec<(String, PathBuf)>,
}

/// What identifies a file: its device and inode when it exists, else its folder's real path
/// and its name; standard output.
#[derive(PartialEq, Eq, Debug)]
enum Key {
    Inode(u64, u64),
    New(PathBuf),
    Stdout,
}

#[cfg(unix)]
fn inode(p: &Path) -> Option<(u64, u64, bool)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino(), m.is_file()))
}

#[cfg(not(unix))]
fn inode(p: &Path) -> Option<(u64, u64, bool)> {
    let _ = p;
    None
}

impl Files {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file the command reads (`-`, standard input, is not a file).
    pub fn input(mut self, what: &str, path: Option<&Path>) -> Self {
        if let Some(p) = path.filter(|p| p.as_os_str() != "-") {
            self.inputs.push((what.to_string(), p.to_path_buf()));
        }
        self
    }

    /// A file the command writes.
    pub fn output(mut self, what: &str, path: Option<&Path>) -> Self {
        if let Some(p) = path {
            self.outputs.push((what.to_string(), p.to_path_buf()));
        }
        self
    }

    /// Refuses an output that is an input or another output, or is a folder; creates each
    /// output's folder and checks that a file can be made there. Reads nothing.
    pub fn check(&self) -> Result<()> {
        let mut keys: Vec<(&str, &Path, Key)> = Vec::new();
        for (what, out) in &self.outputs {
            // A folder that does not exist yet would be found only when the file is
            // written, after the whole read.
            if out.as_os_str().as_encoded_bytes().ends_with(std::path::MAIN_SEPARATOR_STR.as_bytes()) {
                return Err(bad(format!(
                    "{}: the {what} is a file, but this path ends with {} and so names a folder; give a file path",
                    out.display(),
                    std::path::MAIN_SEPARATOR
                )));
            }
            let key = match destination(out) {
                Err(e) => return Err(bad(format!("{}: cannot write the {what} there: {e}", out.display()))),
                Ok(Destination::Stdout) => Key::Stdout,
                // Devices and FIFOs are written through: reading or writing one twice
                // destroys nothing.
                Ok(Destination::Stream(_)) => continue,
                Ok(Destination::Replace(target)) => {
                    for (in_what, input) in &self.inputs {
                        if let (Some((d, i, true)), Some((d2, i2, _))) = (inode(input), inode(&target)) {
                            if (d, i) == (d2, i2) {
                                return Err(bad(format!(
                                    "{}: the {what} would overwrite the {in_what} {} (the same file); choose another path",
                                    out.display(),
                                    input.display()
                                )));
                            }
                        }
                    }
                    create_parent(out)?;
                    create_parent(&target)?;
                    cobuy::output::check_writable(&target)
                        .with_context(|| format!("cannot create {}", out.display()))?;
                    match inode(&target) {
                        Some((d, i, _)) => Key::Inode(d, i),
                        None => {
                            let dir = match target.parent() {
                                Some(d) if !d.as_os_str().is_empty() => d,
                                _ => Path::new("."),
                            };
                            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
                            Key::New(dir.join(target.file_name().unwrap_or_default()))
                        }
                    }
                }
            };
            if let Some((other, other_path, _)) = keys.iter().find(|(w, _, k)| *k == key && w != what) {
                return Err(bad(format!(
                    "{}: the {what} and the {other} ({}) are the same file; give them different paths",
                    out.display(),
                    other_path.display()
                )));
            }
            keys.push((what, out, key));
        }
        Ok(())
    }
}

/// Where `--skip-invalid` writes a purchases file's bad rows by default: `OUT.rejects.csv`.
pub fn rejects_beside(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".rejects.csv");
    PathBuf::from(name)
}

/// Where `--skip-invalid` writes a catalogue's bad rows: `OUT.catalog-rejects.csv`.
pub fn catalog_rejects_beside(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".catalog-rejects.csv");
    PathBuf::from(name)
}
