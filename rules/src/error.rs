//! Why a rule did not load or did not run.

use std::path::PathBuf;

/// An error of the rules crate.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A rule file is not a valid rule: where, and what is wrong.
    #[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The rule file.
        file: PathBuf,
        /// 1-based line, where known.
        line: Option<usize>,
        /// What is wrong, in words a rule author can act on.
        message: String,
    },
    /// The rule says `enabled = false`; loaders skip it.
    #[error("rule {0} is disabled")]
    Disabled(String),
    /// Two rules share an id.
    #[error("rule id {id} is used by both {first} and {second}")]
    DuplicateId {
        /// The id.
        id: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// A rules directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Running a rule's query failed.
    #[error("rule {rule}: {source}")]
    Query {
        /// The rule.
        rule: String,
        /// What DataFusion said.
        source: authtrail_query::QueryError,
    },
    /// A rule's query returned columns of the wrong shape.
    #[error("rule {rule}: {message}")]
    Shape {
        /// The rule.
        rule: String,
        /// What is wrong.
        message: String,
    },
}
