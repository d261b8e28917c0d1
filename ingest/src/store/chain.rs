//! The per-partition hash chain: which sealed files a partition holds, in
//! chain order, and the `_HEAD.json` record of the newest one.
//!
//! Every sealed file's footer names its predecessor (file name and SHA-256);
//! the head names the newest file and its SHA-256, so that a change to any
//! file, including the last, and the removal of any file, is detected.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use authtrail_schemas::Table;
use authtrail_schemas::layout::{self, HEAD_FILE};

use super::fsio;
use crate::IngestError;

/// The newest sealed file of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// File name of the newest sealed file.
    pub file: String,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// How many files the chain holds.
    pub files: u64,
}

/// Directory of a table.
pub fn table_dir(root: &Path, table: Table) -> PathBuf {
    root.join(table.name())
}

/// Directory of one partition of a table.
pub fn partition_dir(root: &Path, table: Table, day: NaiveDate) -> PathBuf {
    table_dir(root, table).join(layout::partition_dir_name(day))
}

/// The partitions of a table, oldest first. A missing table is empty.
pub fn list_partitions(
    root: &Path,
    table: Table,
) -> Result<Vec<(NaiveDate, PathBuf)>, IngestError> {
    let dir = table_dir(root, table);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(IngestError::io("listing", &dir)(err)),
    };
    let mut partitions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(IngestError::io("listing", &dir))?;
        let name = entry.file_name();
        if let Some(day) = layout::parse_partition_dir(&name.to_string_lossy()) {
            partitions.push((day, entry.path()));
        }
    }
    partitions.sort();
    Ok(partitions)
}

/// Sealed file names of a partition, sorted (names are ULIDs, so this is
/// the order they were sealed in).
pub fn list_sealed(dir: &Path) -> Result<Vec<String>, IngestError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(IngestError::io("listing", dir)(err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(IngestError::io("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if layout::is_sealed_file_name(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Removes files a crash left in progress; none of them was acknowledged.
pub fn remove_in_progress(dir: &Path) -> Result<usize, IngestError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(layout::IN_PROGRESS_SUFFIX) {
            std::fs::remove_file(entry.path())
                .map_err(IngestError::io("removing", entry.path()))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fsio::sync_dir(dir)?;
    }
    Ok(removed)
}

/// Reads a partition's head, if it has one.
pub fn read_head(dir: &Path) -> Result<Option<Head>, IngestError> {
    let path = dir.join(HEAD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| IngestError::Damaged {
                path,
                message: format!("head record is not valid: {err}"),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(IngestError::io("reading", path)(err)),
    }
}

/// Replaces a partition's head atomically.
pub fn write_head(dir: &Path, head: &Head) -> Result<(), IngestError> {
    let mut bytes = serde_json::to_vec_pretty(head).map_err(|err| IngestError::Damaged {
        path: dir.join(HEAD_FILE),
        message: format!("cannot encode head: {err}"),
    })?;
    bytes.push(b'\n');
    fsio::replace_file(&dir.join(HEAD_FILE), &bytes)
}
