//! authtrail's detection engine: rules read from TOML files (a built-in
//! pack and the user's own), each compiled to a DataFusion plan over the
//! `events` table, evaluated over event-time windows, with every hit
//! appended as a finding through the log's append seam.
//!
//! - [`model`]: rule files, parsed and checked;
//! - [`loader`]: the built-in pack and rule directories;
//! - [`plan`]: a rule's scan as a DataFusion plan;
//! - [`detect`]: the window scans of each rule kind;
//! - [`engine`]: evaluation, findings and their ids;
//! - [`batch`]: evaluating a set of rules over the log and storing what
//!   they find.

pub mod batch;
pub mod detect;
pub mod engine;
mod error;
pub mod loader;
pub mod model;
pub mod plan;

pub use batch::{BatchReport, check, run_batch};
pub use engine::RuleOutcome;
pub use error::RuleError;
pub use model::{Kind, Rule, Severity};
pub use plan::TimeRange;
