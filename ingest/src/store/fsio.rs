//! The few file-system moves the durability contract rests on: fsync of a
//! file and of its directory, atomic replace, and a writer that hashes what
//! it writes so a sealed file's SHA-256 costs no second read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::IngestError;

/// Fsyncs a directory, so that a rename or create inside it survives a
/// crash.
pub fn sync_dir(dir: &Path) -> Result<(), IngestError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(IngestError::io("syncing directory", dir))
}

/// Gives `file` (empty, just created) `len` bytes of zeros whose blocks are
/// allocated now. Appending grows a file's size, and on ext4 and XFS
/// every fdatasync after a size change waits for a journal commit (shared
/// with every other writer of the file system); writing into blocks the
/// file already has flushes them and, the first time, marks them written
/// (an inode update, but no size change). Measured here: 0.7 ms on average
/// per append-and-sync, with a tail of 4 ms, against 0.15 ms without the
/// tail once the blocks are reserved. Readers of an Arrow IPC stream take
/// the zeros after its last message as the end of the stream.
pub fn reserve(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{FallocateFlags, fallocate};
        match fallocate(file, FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            // Not every file system can allocate ahead (tmpfs before 3.5,
            // some network file systems): a sparse file of that size still
            // spares the size changes.
            Err(rustix::io::Errno::OPNOTSUPP) => {}
            Err(err) => return Err(err.into()),
        }
    }
    file.set_len(len)
}

/// The directory `path` is in: `.` for a bare relative name, whose
/// `parent()` is the empty path (which cannot be opened or created).
fn parent_dir(path: &Path) -> Option<&Path> {
    path.parent().map(|parent| {
        if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        }
    })
}

/// Creates `dir` and its parents, fsyncing each new level's parent.
pub fn create_dir_durable(dir: &Path) -> Result<(), IngestError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = parent_dir(dir);
    if let Some(parent) = parent {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(err) => return Err(IngestError::io("creating directory", dir)(err)),
    }
    if let Some(parent) = parent {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync,
/// rename, fsync of the directory.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), IngestError> {
    let dir = parent_dir(path).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}{}",
        authtrail_schemas::layout::IN_PROGRESS_SUFFIX
    ));
    let mut file = File::create(&temp).map_err(IngestError::io("creating", &temp))?;
    file.write_all(bytes)
        .map_err(IngestError::io("writing", &temp))?;
    file.sync_all().map_err(IngestError::io("syncing", &temp))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(IngestError::io("renaming into place", path))?;
    sync_dir(dir)
}

/// SHA-256 (hex) of a whole file, read in large blocks.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        total += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// A writer that computes the SHA-256 and length of everything written
/// through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The wrapped writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            hex::encode(self.hasher.finalize()),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_matches_a_fresh_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut writer = HashingWriter::new(File::create(&path).unwrap());
        writer.write_all(b"hello ").unwrap();
        writer.write_all(b"world").unwrap();
        let (_, hash, len) = writer.finish();
        assert_eq!((hash, len), sha256_file(&path).unwrap());
    }

    #[test]
    fn bare_relative_names_are_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("data")), Some(Path::new(".")));
        assert_eq!(parent_dir(Path::new("a/data")), Some(Path::new("a")));
        assert_eq!(parent_dir(Path::new("/")), None);
    }

    #[test]
    fn replace_file_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("_HEAD.json");
        replace_file(&path, b"one").unwrap();
        replace_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
