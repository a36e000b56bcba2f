//! Files that appear complete or not at all.
//!
//! [`AtomicFile`] writes to a hidden temporary name in the destination's folder and
//! renames it over the destination on [`AtomicFile::commit`]; dropped without a commit
//! (an error, a panic, a killed job), it removes the temporary file, so a crashed nightly
//! run never leaves a half-written file under the final name.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A buffered file written under a temporary name until committed.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file beside `dest` (the folder must exist).
    pub fn create(dest: impl AsRef<Path>) -> io::Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the output path names no file"))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", std::process::id()));
        let temp = dest.with_file_name(temp_name);
        let file = File::create(&temp)?;
        Ok(AtomicFile { dest, temp, out: Some(BufWriter::with_capacity(1 << 20, file)) })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Flushes, syncs and renames the file to its final name. On failure the temporary
    /// file is removed and the destination is left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        let out = self.out.take().expect("an uncommitted AtomicFile always holds its writer");
        let result = out.into_inner().map_err(io::IntoInnerError::into_error).and_then(|file| {
            file.sync_all()?;
            drop(file);
            fs::rename(&self.temp, &self.dest)
        });
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().map_or(Ok(0), |o| o.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.write_all(buf),
            None => Err(io::Error::other("write after commit")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), |o| o.flush())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appears_only_on_commit_and_never_half_written() {
        let dir = std::env::temp_dir().join(format!("cobuy-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("out.csv");
        fs::write(&dest, "old").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"half").unwrap();
        } // dropped: no commit
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left behind");
        fs::remove_dir_all(&dir).unwrap();
    }
}
