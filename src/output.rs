//! Files that appear complete or not at all.
//!
//! [`AtomicFile`] writes a regular file under a hidden temporary name in the destination's
//! folder (`.NAME.PID.tmp`) and renames it over the destination on [`AtomicFile::commit`];
//! dropped without a commit (an error, a panic), it removes the temporary file, so a crashed
//! nightly run never leaves a half-written file under the final name.
//!
//! What is at the destination decides how it is written:
//! - nothing, or a regular file: replaced atomically, as above;
//! - a symbolic link: followed to its final target, which is replaced atomically beside
//!   itself (the temporary file is made in the target's folder), so the link is kept;
//! - anything else (a device such as `/dev/null`, a FIFO, `-` or `/dev/stdout` for standard
//!   output): written through as a stream, never replaced;
//! - a folder: an error.
//!
//! Every live temporary file is listed in a registry, so that [`remove_temporaries_on_signals`]
//! can remove them when SIGINT, SIGTERM or SIGHUP ends the process, and
//! [`AtomicFile::create`] removes the temporary files of the same destination left by a
//! process that no longer exists (killed with SIGKILL, or by a power cut).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub mod fields;
#[cfg(feature = "parquet")]
mod parquet;

/// A buffered output written under a temporary name until committed (or written through,
/// when the destination is not a regular file).
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    /// The temporary file and the final target it is renamed to; `None` for a stream.
    temp: Option<(PathBuf, PathBuf)>,
    out: Option<BufWriter<Sink>>,
}

#[derive(Debug)]
enum Sink {
    File(File),
    Stdout(io::Stdout),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
        }
    }
}

/// How an output path is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard output (`-`, `/dev/stdout`).
    Stdout,
    /// A regular file (or nothing yet) at this path, the final target of any symbolic links:
    /// replaced atomically.
    Replace(PathBuf),
    /// Not a regular file (a device, a FIFO, a socket): written through.
    Stream(PathBuf),
}

/// Follows `path`'s symbolic links to what will be written. A folder is an error.
pub fn destination(path: &Path) -> io::Result<Destination> {
    if path.as_os_str() == "-" || is_stdout_alias(path) {
        return Ok(Destination::Stdout);
    }
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        // The kernel's magic links (/proc/self/fd/N, /dev/fd/N) do not name a path that can
        // be written beside: open them as they are.
        if p.starts_with("/proc") || p.starts_with("/dev/fd") {
            return Ok(Destination::Stream(p));
        }
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::Replace(p)),
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            let link = fs::read_link(&p)?;
            p = match p.parent() {
                Some(dir) if link.is_relative() => dir.join(link),
                _ => link,
            };
            if is_stdout_alias(&p) {
                return Ok(Destination::Stdout);
            }
            continue;
        }
        if meta.is_dir() {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory, not a file"));
        }
        return Ok(if meta.is_file() { Destination::Replace(p) } else { Destination::Stream(p) });
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

fn is_stdout_alias(p: &Path) -> bool {
    ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"].iter().any(|a| p == Path::new(a))
}

impl AtomicFile {
    /// Opens `dest` for writing: a temporary file beside a regular file's final target (the
    /// folder must exist), or the stream itself (see the module's overview). Temporary files
    /// of the same destination left by processes that no longer exist are removed.
    pub fn create(dest: impl AsRef<Path>) -> io::Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let (temp, sink) = match destination(&dest)? {
            Destination::Stdout => (None, Sink::Stdout(io::stdout())),
            Destination::Stream(p) => (None, Sink::File(OpenOptions::new().append(true).open(p)?)),
            Destination::Replace(target) => {
                let temp = temp_path(&target)?;
                remove_stale(&target);
                let mut live = registry();
                let file = File::create(&temp)?;
                live.push(temp.clone());
                (Some((temp, target)), Sink::File(file))
            }
        };
        Ok(AtomicFile { dest, temp, out: Some(BufWriter::with_capacity(1 << 20, sink)) })
    }

    /// The path given.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Whether the output is replaced on commit (false: written through as a stream).
    pub fn is_atomic(&self) -> bool {
        self.temp.is_some()
    }

    /// Flushes what was written and, for a file replaced on commit, waits until it is on
    /// the disk, so that the sync in [`AtomicFile::commit`] has only what follows left to
    /// write (a stream is only flushed).
    pub fn sync_data(&mut self) -> io::Result<()> {
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("sync after commit"))?;
        out.flush()?;
        match out.get_ref() {
            Sink::File(f) if self.temp.is_some() => f.sync_data(),
            _ => Ok(()),
        }
    }

    /// Flushes, syncs and renames the file to its final name (a stream is flushed). On
    /// failure the temporary file is removed and the destination is left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        let out = self.out.take().expect("an uncommitted AtomicFile always holds its writer");
        let sink = out.into_inner().map_err(io::IntoInnerError::into_error);
        let Some((temp, target)) = self.temp.take() else {
            return sink.and_then(|mut s| s.flush());
        };
        let result = sink.and_then(|sink| {
            if let Sink::File(file) = sink {
                file.sync_all()?;
            }
            let mut live = registry();
            let renamed = fs::rename(&temp, &target);
            live.retain(|p| *p != temp);
            renamed
        });
        if result.is_err() {
            forget(&temp);
        }
        result
    }
}

/// Checks that `path` can be written: a regular file's folder takes a new file (made and
/// removed at once: its temporary name), a folder is an error; a stream is not opened (a
/// FIFO would wait for its reader).
pub fn check_writable(path: &Path) -> io::Result<()> {
    if let Destination::Replace(target) = destination(path)? {
        let temp = temp_path(&target)?;
        let mut live = registry();
        File::create(&temp)?;
        live.push(temp.clone());
        drop(live);
        forget(&temp);
    }
    Ok(())
}

/// `.NAME.PID.tmp` beside `target`.
fn temp_path(target: &Path) -> io::Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the output path names no file"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    Ok(target.with_file_name(temp_name))
}

/// Removes `target`'s temporary files (`.NAME.PID.tmp`) whose process no longer exists.
fn remove_stale(target: &Path) {
    let (Some(name), dir) = (target.file_name().and_then(|n| n.to_str()), target.parent()) else { return };
    let dir = match dir {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_exists(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether a process `pid` exists (true when unsure, so a live process's file is kept).
#[cfg(unix)]
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether a process `pid` exists (true when unsure, so a live process's file is kept).
#[cfg(not(unix))]
pub fn process_exists(_pid: u32) -> bool {
    true
}

/// The temporary files of this process that are being written.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn registry() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes a temporary file and its registry entry.
fn forget(temp: &Path) {
    let mut live = registry();
    let _ = fs::remove_file(temp);
    live.retain(|p| p != temp);
}

/// Removes every temporary file this process is writing (for a process about to exit).
pub fn remove_temporaries() {
    let live = registry();
    for p in live.iter() {
        let _ = fs::remove_file(p);
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in every thread it
/// starts later) and starts a thread that waits for them: on one, it removes the temporary
/// files of every [`AtomicFile`] being written and ends the process with exit code 128 +
/// the signal's number, as a shell reports a process killed by it. A signal the process was
/// started ignoring (`nohup`) stays ignored. Call it first, before any other thread starts.
#[cfg(unix)]
pub fn remove_temporaries_on_signals() -> io::Result<()> {
    // SAFETY: plain libc calls on stack values; the set outlives them.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            libc::sigaddset(&mut set, sig);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        set
    };
    std::thread::Builder::new().name("cobuy-signals".into()).spawn(move || {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid, initialised signal set.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                // Holding the registry: no temporary file is created or renamed any more.
                let live = registry();
                for p in live.iter() {
                    let _ = fs::remove_file(p);
                }
                std::process::exit(128 + sig);
            }
        }
    })?;
    Ok(())
}

/// Without Unix signals there is nothing to install.
#[cfg(not(unix))]
pub fn remove_temporaries_on_signals() -> io::Result<()> {
    Ok(())
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

/// A table output (recommendations, offers, rules, customer scores): written as CSV, or,
/// when the path ends in `.parquet`, as a Parquet file made from that CSV on commit. Both
/// appear complete or not at all, as an [`AtomicFile`] does.
#[derive(Debug)]
pub struct TableFile(Table);

#[derive(Debug)]
enum Table {
    Csv(AtomicFile),
    /// The CSV is spooled to a hidden temporary file (removed on drop and on signals, as
    /// an [`AtomicFile`]'s), then converted into `out`.
    #[cfg(feature = "parquet")]
    Parquet {
        spool: AtomicFile,
        out: AtomicFile,
    },
}

/// Whether a table output at `path` is written as Parquet.
pub fn is_parquet_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

impl TableFile {
    /// Opens `dest` as [`AtomicFile::create`] does; a `.parquet` path is written as Parquet.
    pub fn create(dest: impl AsRef<Path>) -> io::Result<Self> {
        let dest = dest.as_ref();
        if !is_parquet_path(dest) {
            return AtomicFile::create(dest).map(|f| TableFile(Table::Csv(f)));
        }
        #[cfg(feature = "parquet")]
        {
            let out = AtomicFile::create(dest)?;
            let spool_dest = match &out.temp {
                Some((_, target)) => {
                    let mut name = target.file_name().unwrap_or_default().to_os_string();
                    name.push(".csv");
                    target.with_file_name(name)
                }
                None => std::env::temp_dir().join(format!("cobuy-table-{}.csv", std::process::id())),
            };
            let spool = AtomicFile::create(spool_dest)?;
            Ok(TableFile(Table::Parquet { spool, out }))
        }
        #[cfg(not(feature = "parquet"))]
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this build of cobuy writes no Parquet (build it with the cargo feature parquet)",
        ))
    }

    /// Completes the file ([`AtomicFile::commit`]); a Parquet output is converted first.
    pub fn commit(self) -> io::Result<()> {
        match self.0 {
            Table::Csv(f) => f.commit(),
            #[cfg(feature = "parquet")]
            Table::Parquet { mut spool, mut out } => {
                spool.flush()?;
                let (temp, _) = spool.temp.as_ref().expect("a spool is always a regular file");
                parquet::csv_to_parquet(temp, &mut out)?;
                drop(spool);
                out.commit()
            }
        }
    }
}

impl Write for TableFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl TableFile {
    fn writer(&mut self) -> &mut AtomicFile {
        match &mut self.0 {
            Table::Csv(f) => f,
            #[cfg(feature = "parquet")]
            Table::Parquet { spool, .. } => spool,
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(out) = self.out.take() {
            match &self.temp {
                Some((temp, _)) => {
                    // Unflushed bytes of a file about to be removed are not written.
                    let _ = out.into_parts();
                    forget(temp);
                }
                None => drop(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cobuy-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn appears_only_on_commit_and_never_half_written() {
        let dir = temp_dir("commit");
        let dest = dir.join("out.csv");
        fs::write(&dest, "old").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"half").unwrap();
        } // dropped: no commit
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
        let mut f = AtomicFile::create(&dest).unwrap();
        assert!(f.is_atomic());
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left behind");
        assert!(!registry().iter().any(|p| p.starts_with(&dir)), "no longer listed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_kept_and_its_target_replaced() {
        let dir = temp_dir("link");
        fs::create_dir(dir.join("real")).unwrap();
        fs::write(dir.join("real/out.csv"), "old").unwrap();
        std::os::unix::fs::symlink("real/out.csv", dir.join("link.csv")).unwrap();
        let mut f = AtomicFile::create(dir.join("link.csv")).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert!(fs::symlink_metadata(dir.join("link.csv")).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(dir.join("real/out.csv")).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.join("real")).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_written_through_and_a_full_disk_is_an_error() {
        // Through links: a regression would replace a link, never the device node.
        let dir = temp_dir("devices");
        std::os::unix::fs::symlink("/dev/null", dir.join("null")).unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.join("full")).unwrap();
        let mut f = AtomicFile::create(dir.join("null")).unwrap();
        assert!(!f.is_atomic());
        f.write_all(b"anything").unwrap();
        f.commit().unwrap();
        assert!(fs::metadata("/dev/null").unwrap().file_type().is_char_device_like());
        let mut f = AtomicFile::create(dir.join("full")).unwrap();
        let err = f.write_all(&[b'x'; 2 << 20]).and_then(|()| f.commit()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_is_an_error() {
        let dir = temp_dir("folder");
        assert!(AtomicFile::create(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = temp_dir("stale");
        // No process has a pid this large (Linux's maximum is 2^22).
        let dead = dir.join(".out.csv.999999999.tmp");
        let live = dir.join(format!(".out.csv.{}.tmp", std::os::unix::process::parent_id()));
        let other = dir.join(".other.csv.999999999.tmp");
        for p in [&dead, &live, &other] {
            fs::write(p, "x").unwrap();
        }
        let f = AtomicFile::create(dir.join("out.csv")).unwrap();
        f.commit().unwrap();
        assert!(!dead.exists(), "a dead process's temporary file is removed");
        assert!(live.exists(), "a live process's temporary file is kept");
        assert!(other.exists(), "another output's temporary file is kept");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    trait CharDevice {
        fn is_char_device_like(&self) -> bool;
    }

    #[cfg(unix)]
    impl CharDevice for fs::FileType {
        fn is_char_device_like(&self) -> bool {
            std::os::unix::fs::FileTypeExt::is_char_device(self)
        }
    }
}
