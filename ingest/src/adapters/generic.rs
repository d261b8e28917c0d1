//! Any JSON, mapped by a small TOML file: which dotted path fills which
//! column, how the source spells outcomes, actions and methods, and
//! constants for what the source never says.
//!
//! One record is one event, a `login` unless the mapping says otherwise:
//! where the source writes several records for one attempt, map the
//! others' action to `credential_validation`, `probe` or `attempt_summary`
//! through `[values.action]`, so that failed logins count attempts.
//!
//! ```toml
//! [fields]
//! event_id = "id"                 # optional: else a hash of the record
//! time = "ts"                     # required
//! user = "actor.email"
//! outcome = "result"
//! reason_detail = "error.message"
//! src_ip = "client.ip"
//!
//! [values.outcome]                # source spelling -> canonical value
//! ok = "success"
//! denied = "failure"
//!
//! [constants]
//! app = "billing-portal"
//! method = "password"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use authtrail_schemas::{Action, AuthEvent, EventSink, Method, Outcome, Reason};

use super::util::{self, text};
use super::{Adapter, ParseError};

/// A field mapping for the generic adapter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericMapping {
    /// Column name → dotted path in the record.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Column (`outcome`, `action`, `method`, `reason`) → source value →
    /// canonical value.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Column name → value used for every record.
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
}

/// Columns a mapping may fill.
const COLUMNS: &[&str] = &[
    "event_id",
    "time",
    "tenant",
    "user",
    "user_id",
    "user_domain",
    "action",
    "outcome",
    "method",
    "mfa",
    "reason",
    "reason_detail",
    "src_ip",
    "src_host",
    "dst_host",
    "country",
    "city",
    "latitude",
    "longitude",
    "user_agent",
    "session_id",
    "app",
];

impl GenericMapping {
    /// Parses and checks a mapping file's text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let mapping: GenericMapping = toml::from_str(text).map_err(|err| err.to_string())?;
        mapping.check()?;
        Ok(mapping)
    }

    fn check(&self) -> Result<(), String> {
        for column in self.fields.keys().chain(self.constants.keys()) {
            if !COLUMNS.contains(&column.as_str()) {
                return Err(format!(
                    "unknown column {column:?}; columns are: {}",
                    COLUMNS.join(", ")
                ));
            }
        }
        if !self.fields.contains_key("time") {
            return Err("[fields] must name the `time` field".into());
        }
        for (column, map) in &self.values {
            for canonical in map.values() {
                let known = match column.as_str() {
                    "outcome" => Outcome::parse(canonical).is_some(),
                    "action" => Action::parse(canonical).is_some(),
                    "method" => Method::parse(canonical).is_some(),
                    "reason" => Reason::parse(canonical).is_some(),
                    other => {
                        return Err(format!(
                            "[values.{other}]: only outcome, action, method and reason take value maps"
                        ));
                    }
                };
                if !known {
                    return Err(format!(
                        "[values.{column}]: {canonical:?} is not a canonical {column}"
                    ));
                }
            }
        }
        for (column, value) in &self.constants {
            let known = match column.as_str() {
                "outcome" => Outcome::parse(value).is_some(),
                "action" => Action::parse(value).is_some(),
                "method" => Method::parse(value).is_some(),
                "reason" => Reason::parse(value).is_some(),
                _ => true,
            };
            if !known {
                return Err(format!(
                    "[constants]: {value:?} is not a canonical {column}"
                ));
            }
        }
        Ok(())
    }
}

pub struct Generic {
    mapping: GenericMapping,
}

impl Generic {
    pub fn new(mapping: GenericMapping) -> Self {
        Generic { mapping }
    }

    /// The raw text of a column: from its mapped field, else its constant.
    fn get(&self, record: &Value, column: &str) -> Option<String> {
        self.mapping
            .fields
            .get(column)
            .and_then(|path| text(record, path))
            .or_else(|| self.mapping.constants.get(column).cloned())
    }

    /// A column's canonical value: through its value map, else as spelled.
    fn canonical(&self, record: &Value, column: &str) -> Option<String> {
        let value = self.get(record, column)?;
        let mapped = self.mapping.values.get(column).and_then(|map| {
            map.get(&value).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&value))
                    .map(|(_, v)| v)
            })
        });
        Some(
            mapped
                .cloned()
                .unwrap_or_else(|| value.to_ascii_lowercase()),
        )
    }
}

impl Adapter for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn parse(&self, raw: &str, out: &mut dyn EventSink) -> Result<(), ParseError> {
        let record = util::parse_object(raw)?;
        let time_path = self
            .mapping
            .fields
            .get("time")
            .map(String::as_str)
            .unwrap_or("time");
        let time = util::required_time(&record, &[time_path])?;
        let outcome = match self.canonical(&record, "outcome") {
            Some(v) => Outcome::parse(&v).ok_or_else(|| {
                ParseError::rejected(format!(
                    "outcome {v:?} is not success/failure/unknown; add it to [values.outcome]"
                ))
            })?,
            None => Outcome::Unknown,
        };
        let action = match self.canonical(&record, "action") {
            Some(v) => Action::parse(&v).ok_or_else(|| {
                ParseError::rejected(format!(
                    "action {v:?} is not a canonical action; add it to [values.action]"
                ))
            })?,
            None => Action::Login,
        };
        let id = self.get(&record, "event_id");
        let mut event = AuthEvent::new(
            util::id_or_hash(id, "generic", raw),
            time,
            "generic",
            action,
            outcome,
        );
        event.tenant = self.get(&record, "tenant");
        if let Some(user) = self.get(&record, "user") {
            event.set_user(&user);
        }
        if let Some(domain) = self.get(&record, "user_domain") {
            event.user_domain = Some(domain.to_lowercase());
        }
        event.user_id = self.get(&record, "user_id");
        event.method = self.canonical(&record, "method").map(|m| {
            Method::parse(&m)
                .or_else(|| util::method_from_text(&m))
                .unwrap_or(Method::Other)
        });
        event.mfa = self
            .get(&record, "mfa")
            .and_then(|m| match m.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Some(true),
                "false" | "no" | "0" => Some(false),
                _ => None,
            });
        event.reason_detail = self.get(&record, "reason_detail");
        event.reason = match self.canonical(&record, "reason") {
            Some(r) => Some(Reason::parse(&r).unwrap_or_else(|| util::reason_from_text(&r))),
            None if outcome == Outcome::Failure => Some(
                event
                    .reason_detail
                    .as_deref()
                    .map_or(Reason::Other, util::reason_from_text),
            ),
            None => None,
        };
        event.src_ip = util::clean_ip(self.get(&record, "src_ip"));
        event.src_host = self.get(&record, "src_host");
        event.dst_host = self.get(&record, "dst_host");
        event.country = util::country_code(self.get(&record, "country"));
        event.city = self.get(&record, "city");
        event.latitude = self.get(&record, "latitude").and_then(|v| v.parse().ok());
        event.longitude = self.get(&record, "longitude").and_then(|v| v.parse().ok());
        event.user_agent = self.get(&record, "user_agent");
        event.session_id = self.get(&record, "session_id");
        event.app = self.get(&record, "app");
        event.raw = raw.to_owned();
        out.push_owned(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_errors_say_what_to_fix() {
        let err = GenericMapping::from_toml("[fields]\nuser = \"u\"\n").unwrap_err();
        assert!(err.contains("`time`"), "{err}");
        let err = GenericMapping::from_toml("[fields]\ntime = \"t\"\nusr = \"u\"\n").unwrap_err();
        assert!(err.contains("unknown column \"usr\""), "{err}");
        let err =
            GenericMapping::from_toml("[fields]\ntime = \"t\"\n[values.outcome]\nok = \"good\"\n")
                .unwrap_err();
        assert!(err.contains("not a canonical outcome"), "{err}");
    }
}
