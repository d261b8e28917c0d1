//! Source adapters: one parser per source format, each turning one input
//! record (a JSON value, or a text line for `sshd`) into canonical events.
//!
//! Adapters only parse. They never drop a record silently: a record either
//! yields events, is rejected with a reason (it becomes a dead letter), or
//! is recognised as valid but not about authentication (it is counted as
//! skipped, with its kind, in the ingest summary).

mod auth0;
mod ecs;
mod generic;
mod github;
mod harness;
mod keycloak;
mod memo;
mod ocsf;
mod okta;
mod sshd;
pub mod util;
mod windows;

use chrono::{DateTime, Datelike, Utc};
use serde_json::Value;

use authtrail_schemas::{AuthEvent, EventSink};

use crate::IngestError;
pub use crate::records::Framing;
pub use generic::GenericMapping;

/// Names of every adapter, as used on the command line and in the API path.
pub const NAMES: &[&str] = &[
    "okta", "auth0", "keycloak", "harness", "github", "ocsf", "ecs", "sshd", "windows", "generic",
];

/// Why a record did not yield events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The record is malformed for this source: it becomes a dead letter.
    Rejected(String),
    /// The record is valid but not an authentication event (e.g. an Okta
    /// `user.lifecycle.create`); it is counted, by kind, as skipped.
    NotAuthentication(String),
}

impl ParseError {
    /// A rejection with a reason a person can act on.
    pub fn rejected(reason: impl Into<String>) -> Self {
        ParseError::Rejected(reason.into())
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Rejected(reason) => f.write_str(reason),
            ParseError::NotAuthentication(kind) => {
                write!(f, "not an authentication event ({kind})")
            }
        }
    }
}

/// A parser for one source format.
pub trait Adapter: Send + Sync {
    /// The adapter's name, stored in the `source` column.
    fn name(&self) -> &'static str;

    /// How the input is split into records.
    fn framing(&self) -> Framing {
        Framing::Json
    }

    /// Parses one record, handing the events it holds to `out`. A record
    /// that is rejected hands over none.
    fn parse(&self, record: &str, out: &mut dyn EventSink) -> Result<(), ParseError>;
}

/// A source whose every record is one JSON object holding one event.
struct JsonObjectAdapter {
    name: &'static str,
    map: fn(&Value, &str) -> Result<AuthEvent, ParseError>,
}

impl Adapter for JsonObjectAdapter {
    fn name(&self) -> &'static str {
        self.name
    }

    fn parse(&self, record: &str, out: &mut dyn EventSink) -> Result<(), ParseError> {
        let value = util::parse_object(record)?;
        out.push_owned((self.map)(&value, record)?);
        Ok(())
    }
}

/// Settings some adapters need.
#[derive(Debug, Clone)]
pub struct AdapterOptions {
    /// Year for syslog timestamps, which carry none. `None` infers it: the
    /// current year, or the previous one for dates that would lie more than
    /// a day in the future.
    pub syslog_year: Option<i32>,
    /// The mapping the `generic` adapter applies.
    pub generic_mapping: Option<GenericMapping>,
    /// "Now", for year inference.
    pub now: DateTime<Utc>,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        AdapterOptions {
            syslog_year: None,
            generic_mapping: None,
            now: Utc::now(),
        }
    }
}

/// Builds the adapter called `name`.
pub fn build(name: &str, options: &AdapterOptions) -> Result<Box<dyn Adapter>, IngestError> {
    let object = |name, map| -> Box<dyn Adapter> { Box::new(JsonObjectAdapter { name, map }) };
    Ok(match name {
        "okta" => Box::new(okta::Okta),
        "auth0" => object("auth0", auth0::event),
        "keycloak" => object("keycloak", keycloak::event),
        "harness" => object("harness", harness::event),
        "github" => object("github", github::event),
        "ocsf" => Box::new(ocsf::Ocsf),
        "ecs" => object("ecs", ecs::event),
        "sshd" => Box::new(sshd::Sshd::new(
            options.syslog_year,
            options.now.year(),
            options.now,
        )),
        "windows" => object("windows", windows::event),
        "generic" => {
            let mapping =
                options
                    .generic_mapping
                    .clone()
                    .ok_or_else(|| IngestError::AdapterConfig {
                        source_name: "generic".into(),
                        message:
                            "the generic source needs a field mapping: pass --mapping FILE.toml \
                              (see examples/generic-mapping.toml)"
                                .into(),
                    })?;
            Box::new(generic::Generic::new(mapping))
        }
        other => return Err(IngestError::UnknownSource(other.to_owned())),
    })
}
