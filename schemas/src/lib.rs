//! The contract every authtrail crate shares: the canonical authentication
//! event ([`AuthEvent`]), its Arrow schema, dead letters, findings, and the on-disk
//! layout of the event log (paths, partitioning, file-metadata keys).
//!
//! This crate does no I/O. Writers (`authtrail-ingest`) and readers
//! (`authtrail-query`) both build on it, so a file written by one is always
//! understood by the other.

pub mod append;
pub mod arrow_schema;
pub mod dead_letter;
pub mod event;
pub mod finding;
pub mod layout;
pub mod positions;

pub use append::{AppendLog, CommitSummary};
pub use dead_letter::DeadLetter;
pub use event::{Action, AuthEvent, EventRef, EventSink, Method, Outcome, Reason};
pub use finding::{EVIDENCE_CAP, Finding};
pub use layout::{SCHEMA_VERSION, Table};
pub use positions::SourcePositions;
