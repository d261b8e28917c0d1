//! `authtrail verify`: proves that no sealed file of the log was changed,
//! truncated or removed, by recomputing every file's SHA-256 and walking
//! each partition's chain from its first file to its head.

use std::path::{Path, PathBuf};

use authtrail_schemas::Table;
use authtrail_schemas::layout::{GENESIS_SHA256, meta};

use super::{chain, fsio, parquet_io};
use crate::IngestError;

/// One thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or partition directory) concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Partitions checked.
    pub partitions: u64,
    /// Sealed files checked.
    pub files: u64,
    /// Rows in those files, from their footers.
    pub rows: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Everything found wrong; empty means the log is intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether the log is intact.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a sealed file says about itself, once read.
struct Checked {
    name: String,
    sha256: String,
    prev_file: Option<String>,
    prev_sha256: Option<String>,
}

/// Verifies every partition of every table under `root`. `progress` is
/// called with the number of bytes hashed after each file.
pub fn verify(root: &Path, mut progress: impl FnMut(u64)) -> Result<VerifyReport, IngestError> {
    let mut report = VerifyReport::default();
    for table in Table::ALL {
        for (_, dir) in chain::list_partitions(root, table)? {
            report.partitions += 1;
            verify_partition(&dir, table, &mut report, &mut progress)?;
        }
    }
    Ok(report)
}

/// The total size of the sealed files under `root`, for a progress bar.
pub fn sealed_bytes(root: &Path) -> Result<u64, IngestError> {
    let mut total = 0;
    for table in Table::ALL {
        for (_, dir) in chain::list_partitions(root, table)? {
            for name in chain::list_sealed(&dir)? {
                total += std::fs::metadata(dir.join(&name))
                    .map(|m| m.len())
                    .unwrap_or(0);
            }
        }
    }
    Ok(total)
}

fn verify_partition(
    dir: &Path,
    table: Table,
    report: &mut VerifyReport,
    progress: &mut impl FnMut(u64),
) -> Result<(), IngestError> {
    let names = chain::list_sealed(dir)?;
    let mut problem =
        |path: PathBuf, message: String| report.problems.push(Problem { path, message });
    let mut checked = Vec::with_capacity(names.len());
    let mut rows = 0u64;
    let mut hashed = 0u64;
    for name in &names {
        let path = dir.join(name);
        let (sha256, bytes) =
            fsio::sha256_file(&path).map_err(IngestError::io("reading", &path))?;
        hashed += bytes;
        progress(bytes);
        let footer = match parquet_io::read_footer(&path) {
            Ok(footer) => footer,
            Err(err) => {
                problem(
                    path,
                    format!("not a readable Parquet file (truncated or overwritten): {err}"),
                );
                checked.push(Checked {
                    name: name.clone(),
                    sha256,
                    prev_file: None,
                    prev_sha256: None,
                });
                continue;
            }
        };
        let value = |key| parquet_io::footer_value(&footer, key).map(str::to_owned);
        let footer_rows = footer.file_metadata().num_rows() as u64;
        rows += footer_rows;
        match value(meta::TABLE) {
            Some(t) if t == table.name() => {}
            other => problem(
                path.clone(),
                format!("footer says table {other:?}, expected {:?}", table.name()),
            ),
        }
        if value(meta::ROWS).and_then(|r| r.parse::<u64>().ok()) != Some(footer_rows) {
            problem(
                path.clone(),
                format!(
                    "footer row count {footer_rows} differs from the recorded {:?}",
                    value(meta::ROWS)
                ),
            );
        }
        checked.push(Checked {
            name: name.clone(),
            sha256,
            prev_file: value(meta::PREV_FILE),
            prev_sha256: value(meta::PREV_SHA256),
        });
    }
    for (index, file) in checked.iter().enumerate() {
        let path = dir.join(&file.name);
        let previous = index.checked_sub(1).map(|i| &checked[i]);
        match (previous, &file.prev_file) {
            (None, None) => {
                if file
                    .prev_sha256
                    .as_deref()
                    .is_some_and(|s| s != GENESIS_SHA256)
                {
                    problem(path, "first file of the chain names a predecessor hash, so an earlier file was removed".into());
                }
            }
            (None, Some(missing)) => problem(
                dir.join(missing),
                format!(
                    "file was removed (it is named as the predecessor of {})",
                    file.name
                ),
            ),
            (Some(prev), None) => {
                if file.prev_sha256.is_some() {
                    problem(
                        path,
                        format!(
                            "file claims to start the chain, but {} comes before it",
                            prev.name
                        ),
                    );
                }
            }
            (Some(prev), Some(named)) if named != &prev.name => {
                if names.contains(named) {
                    problem(
                        dir.join(&prev.name),
                        format!(
                            "file is not part of the chain ({} names {named} as its predecessor)",
                            file.name
                        ),
                    );
                } else {
                    problem(
                        dir.join(named),
                        format!(
                            "file was removed (it is named as the predecessor of {})",
                            file.name
                        ),
                    );
                }
            }
            (Some(prev), Some(_)) => {
                if file.prev_sha256.as_deref() != Some(prev.sha256.as_str()) {
                    problem(
                        dir.join(&prev.name),
                        format!(
                            "file was changed after it was sealed: its SHA-256 is {}, but {} recorded {}",
                            prev.sha256,
                            file.name,
                            file.prev_sha256.as_deref().unwrap_or("nothing")
                        ),
                    );
                }
            }
        }
    }
    match (chain::read_head(dir), checked.last()) {
        (Err(err), _) => problem(
            dir.join(authtrail_schemas::layout::HEAD_FILE),
            err.to_string(),
        ),
        (Ok(None), None) => {}
        (Ok(None), Some(last)) => problem(
            dir.join(authtrail_schemas::layout::HEAD_FILE),
            format!(
                "head record is missing; the newest file {} cannot be vouched for",
                last.name
            ),
        ),
        (Ok(Some(head)), None) => problem(
            dir.join(&head.file),
            "file was removed (the partition head names it)".into(),
        ),
        (Ok(Some(head)), Some(last)) => {
            if head.file != last.name {
                if names.contains(&head.file) {
                    problem(
                        dir.join(&last.name),
                        format!(
                            "file was added after the head ({}) without the writer",
                            head.file
                        ),
                    );
                } else {
                    problem(
                        dir.join(&head.file),
                        "file was removed (the partition head names it)".into(),
                    );
                }
            } else if head.sha256 != last.sha256 {
                problem(
                    dir.join(&last.name),
                    format!(
                        "file was changed after it was sealed: its SHA-256 is {}, but the head recorded {}",
                        last.sha256, head.sha256
                    ),
                );
            }
            if head.files != checked.len() as u64 {
                problem(
                    dir.to_owned(),
                    format!(
                        "the head records {} files, the partition holds {}",
                        head.files,
                        checked.len()
                    ),
                );
            }
        }
    }
    report.files += checked.len() as u64;
    report.rows += rows;
    report.bytes += hashed;
    Ok(())
}
