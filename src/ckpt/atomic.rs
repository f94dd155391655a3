//! Atomic file replacement: write a sibling temporary file, fsync it, rename
//! it over the target, fsync the directory.
//!
//! A reader (or a crash) sees either the previous complete file or the new
//! complete file at the target path, never a partial one. On any error the
//! temporary file is removed and the target is untouched; only a crash (or
//! power loss) between creating the temporary file and the rename can leave a
//! stray `.NAME.PID-N.tmp` behind, never a damaged `NAME`; the next write of
//! `NAME` removes it once its process has ended (on Linux).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writers in one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` atomically with the bytes that `write` produces.
///
/// `write` receives a buffered writer on a new temporary file in the same
/// directory as `path` (so the final rename never crosses file systems). If
/// `write` returns an error (or panics), or flushing, syncing or renaming
/// fails, the temporary file is deleted and `path` keeps its old content.
/// After the rename the directory is fsynced so the new name is durable; an
/// error there is returned although the new file is already in place.
pub fn write_atomic<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let dir = parent_dir(path);
    remove_stale_temps(dir, &name.to_string_lossy());
    let (file, tmp) = create_temp(dir, &name.to_string_lossy())?;
    let mut guard = RemoveOnDrop(Some(tmp));

    let mut w = BufWriter::new(file);
    write(&mut w)?;
    let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    drop(file);

    let tmp = guard.0.take().expect("temporary path is set until the rename");
    if let Err(e) = fs::rename(&tmp, path) {
        guard.0 = Some(tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Whether a file can be created beside `path` (where [`write_atomic`]
/// creates its temporary file): creates and removes a temporary file.
pub fn check_writable(path: &Path) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let (file, tmp) = create_temp(parent_dir(path), &name.to_string_lossy())?;
    drop(file);
    fs::remove_file(tmp)
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Removes the temporary files of target `name` in `dir` that a process no
/// longer running left behind (killed mid-write). Files of live processes,
/// this one included, may be writes in progress and stay; so does
/// everything where liveness cannot be told. Failures are ignored: this is
/// tidying, the write goes on.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.to_str().and_then(|f| temp_pid(f, &prefix)) else { continue };
        if pid != std::process::id() && process_ended(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The writer's process id of a temporary file `PREFIX PID-N.tmp`.
fn temp_pid(file: &str, prefix: &str) -> Option<u32> {
    let rest = file.strip_prefix(prefix)?.strip_suffix(".tmp")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether no process `pid` runs (Linux: no `/proc/PID`).
#[cfg(target_os = "linux")]
fn process_ended(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Elsewhere liveness is not checked: stale files stay.
#[cfg(not(target_os = "linux"))]
fn process_ended(_pid: u32) -> bool {
    false
}

/// Creates `.NAME.PID-N.tmp` in `dir`, never reusing an existing file.
fn create_temp(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((file, tmp)),
            // A stale file from a crashed process that had the same id.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Deletes the temporary file unless it has been renamed into place.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for syncing on this platform; the rename is
/// as durable as the file system makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
