//! Getting authentication events into authtrail's event log.
//!
//! - [`adapters`]: one parser per source format, each turning native JSON or
//!   text into canonical [`AuthEvent`](authtrail_schemas::AuthEvent)s;
//! - [`records`]: splitting an input (NDJSON, a JSON array, text lines,
//!   gzip) into numbered records;
//! - [`pipeline`]: records → adapter → events and dead letters, in parallel;
//! - [`store`]: the durable, idempotent, hash-chained Parquet writer, and
//!   its verifier;
//! - [`staging`]: group commit for small, frequent batches (webhooks,
//!   Kafka): a write-ahead staging segment, sealed into Parquet behind;
//! - [`kafka`]: a consumer-group member that ingests Kafka topics through
//!   staging, with offsets that travel with the data;
//! - [`demo`]: a generator of realistic login traffic with injected attacks.

pub mod adapters;
pub mod demo;
pub mod error;
pub mod kafka;
pub mod pipeline;
pub mod records;
pub mod staging;
pub mod store;

pub use error::IngestError;
