//! Reading the event log: one DataFusion session factory, the tables it
//! registers (`events`, `dead_letters`), read-only SQL with memory and time
//! limits, result encoders (table, CSV, JSON, NDJSON), and the staged rows
//! that make acknowledged events visible before they are sealed.

pub mod output;
pub mod session;
pub mod staged;

pub use output::{OutputFormat, write_stream};
pub use session::{QueryError, QueryLimits, ReadOnlySession};
