//! Errors of the ingest crate.

use std::path::PathBuf;

/// Why ingesting or storing failed. Bad input lines are not errors: they
/// become dead letters. These are the failures that stop the work.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A file or directory of the event log or of the input could not be
    /// read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("writing", "renaming"…).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the event log's writer lock.
    #[error(
        "the event log at {0} is in use by another authtrail process (lock file .writer.lock); \
         stop it or point --data elsewhere"
    )]
    Locked(PathBuf),
    /// Encoding or decoding Parquet failed.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building an Arrow batch failed.
    #[error("building a record batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// No adapter has this name.
    #[error("unknown source {0:?}; known sources: {known}", known = crate::adapters::NAMES.join(", "))]
    UnknownSource(String),
    /// An adapter's configuration (e.g. a generic mapping file) is invalid.
    #[error("invalid configuration for source {source_name}: {message}")]
    AdapterConfig {
        /// The adapter.
        source_name: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The thread that commits parsed records stopped without an error of
    /// its own (it panicked). Nothing after the last completed commit was
    /// stored; re-run the ingest.
    #[error(
        "the commit thread stopped unexpectedly; nothing after the last completed commit was stored, re-run the ingest"
    )]
    CommitThreadLost,
    /// The Kafka client failed (connecting, joining the group, committing).
    #[error("kafka: {action}: {source}")]
    Kafka {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A Kafka setting is invalid.
    #[error("kafka: {0}")]
    KafkaConfig(String),
    /// The event log writer refused or lost a batch: nothing of it may be
    /// assumed stored, and no offset past it was committed.
    #[error("the event log writer failed: {0}")]
    Writer(String),
    /// An existing file of the log is not what the writer expects.
    #[error("event log is damaged at {path}: {message}; run `authtrail verify` for a full report")]
    Damaged {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl IngestError {
    /// Wraps a Kafka client error with what was being done.
    pub fn kafka(action: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let action = action.into();
        move |source| IngestError::Kafka { action, source }
    }

    /// Wraps an I/O error with what was being done and where.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| IngestError::Io {
            action,
            path,
            source,
        }
    }
}
