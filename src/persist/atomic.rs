//! Crash-safe replacement of a file: the new contents go to a temporary sibling, which is fsynced
//! and then renamed over the target, and the directory is fsynced so the rename itself is durable.
//! A crash at any point leaves either the old file or the new one, never a torn mix; at worst a
//! stray temporary file remains, whose name starts with `.` and contains `.tmp-`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Marker inside every temporary file name, so callers can recognise leftovers of a crash.
pub(crate) const TEMP_MARKER: &str = ".tmp-";

/// The temporary sibling used while writing `path`. It is in the same directory because a rename
/// is only atomic within one file system.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_MARKER}{}", std::process::id()))
}

pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with what `write` puts into the temporary file it is given. On any error the
/// temporary file is removed and the old `path` (if any) is untouched.
pub(crate) fn replace_file(
    path: &Path,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        write(&tmp)?;
        // fsync through a fresh handle: the writer may have closed its own, and fsync applies to
        // the file, not to the descriptor.
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(parent_dir(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or unlink in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files on Windows; NTFS journals the rename itself.
        let _ = dir;
        Ok(())
    }
}

/// Shared by the tests of the modules that write files.
#[cfg(test)]
pub(crate) mod test_dir {
    use std::path::Path;

    /// The names of the entries of `dir`, sorted.
    pub(crate) fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::test_dir::names_in;
    use super::*;

    #[test]
    fn replace_leaves_no_temp_and_failure_keeps_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        replace_file(&path, |tmp| fs::write(tmp, b"one")).unwrap();
        replace_file(&path, |tmp| fs::write(tmp, b"two")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let err = replace_file(&path, |tmp| {
            fs::write(tmp, b"half")?;
            Err(io::Error::other("simulated failure"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names_in(dir.path()), vec!["a.txt".to_string()]);
    }
}
