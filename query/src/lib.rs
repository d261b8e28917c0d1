//! Reading the event log: one DataFusion session factory, the tables it
//! registers (`events`, `dead_letters`), read-only SQL with memory and time
//! limits, and result encoders (table, CSV, JSON, NDJSON).

pub mod output;
pub mod session;

pub use output::{OutputFormat, write_stream};
pub use session::{QueryError, QueryLimits, ReadOnlySession};
