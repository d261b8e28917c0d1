//! Rule files: one TOML file a rule, parsed with every key checked (unknown
//! keys are errors, so a typo never silently disables a condition) and the
//! position of each SQL expression kept, so that an expression DataFusion
//! refuses is reported at its line.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::RuleError;

/// How bad a finding of a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth a look.
    Low,
    /// Worth a look today.
    Medium,
    /// Act now.
    High,
    /// Act now, and wake someone.
    Critical,
}

impl Severity {
    /// The stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A rule file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    title: String,
    #[serde(default)]
    description: String,
    severity: Severity,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
    /// A SQL boolean expression over `events`.
    #[serde(default)]
    filter: Option<Spanned<String>>,
    /// SQL expressions, each optionally named: `coalesce(src_ip, src_host) AS source`.
    #[serde(default)]
    group_by: Vec<Spanned<String>>,
    #[serde(default)]
    window: Option<Spanned<String>>,
    #[serde(default)]
    suppress: Option<Spanned<String>>,
    /// Filters whose events never count for this rule.
    #[serde(default)]
    exceptions: Vec<Spanned<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    threshold: Option<ThresholdFile>,
    distinct: Option<DistinctFile>,
    sequence: Option<SequenceFile>,
    new_value: Option<NewValueFile>,
    travel: Option<TravelFile>,
    sql: Option<SqlFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdFile {
    count: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DistinctFile {
    field: Spanned<String>,
    count: u64,
    #[serde(default)]
    min_events: Option<u64>,
    #[serde(default)]
    per_value_min: Option<u64>,
    #[serde(default)]
    per_value_max: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SequenceFile {
    first: Spanned<String>,
    #[serde(default = "one")]
    first_count: u64,
    then: Spanned<String>,
    #[serde(default)]
    until: Option<Spanned<String>>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewValueFile {
    field: Spanned<String>,
    lookback: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TravelFile {
    min_km: f64,
    min_kmh: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlFile {
    query: Spanned<String>,
}

/// A SQL expression of a rule, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The expression.
    pub sql: String,
    /// 1-based line of the rule file it starts on.
    pub line: usize,
    /// The key it was written under (`filter`, `group_by`, …).
    pub key: &'static str,
}

/// What a rule looks for, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// At least `count` matching events per group within the window.
    Threshold {
        /// Events needed.
        count: u64,
    },
    /// At least `count` distinct values of `field` per group in the window.
    Distinct {
        /// The field (a SQL expression).
        field: Expr,
        /// Distinct values needed (counting only values within the band).
        count: u64,
        /// Events needed in the window, all values together.
        min_events: u64,
        /// A value counts only if it occurs at least this often…
        per_value_min: u64,
        /// …and at most this often within the window.
        per_value_max: u64,
    },
    /// `first` at least `first_count` times, then `then`, in the window;
    /// an `until` event in between starts over.
    Sequence {
        /// Condition of the leading events.
        first: Expr,
        /// How many leading events are needed.
        first_count: u64,
        /// Condition of the closing event.
        then: Expr,
        /// Condition of an event that cancels the leading ones.
        until: Option<Expr>,
    },
    /// A value of `field` not seen for the group within `lookback`.
    NewValue {
        /// The field (a SQL expression).
        field: Expr,
        /// How far back a value counts as seen; a group with less history
        /// than this raises nothing.
        lookback: Duration,
    },
    /// Two consecutive events of a group farther apart than `min_km`, at an
    /// implied speed above `min_kmh`.
    Travel {
        /// Least distance.
        min_km: f64,
        /// Least speed.
        min_kmh: f64,
    },
    /// Any read-only query over `events` returning `group_key`,
    /// `first_time`, `last_time`, `count` and `evidence_ids`.
    Sql {
        /// The query.
        query: Expr,
    },
}

impl Kind {
    /// The kind's name, as in the rule file.
    pub const fn name(&self) -> &'static str {
        match self {
            Kind::Threshold { .. } => "threshold",
            Kind::Distinct { .. } => "distinct",
            Kind::Sequence { .. } => "sequence",
            Kind::NewValue { .. } => "new_value",
            Kind::Travel { .. } => "travel",
            Kind::Sql { .. } => "sql",
        }
    }
}

/// A group-by expression and the name it is shown under.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    /// The expression.
    pub expr: Expr,
    /// Its name in `group_key` (`user`, `source`…).
    pub name: String,
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable id, also the finding's `rule_id`.
    pub id: String,
    /// One line.
    pub title: String,
    /// What it detects and why.
    pub description: String,
    /// How bad a finding is.
    pub severity: Severity,
    /// ATT&CK techniques and SOC 2 criteria.
    pub tags: Vec<String>,
    /// The public detection content its numbers follow.
    pub references: Vec<String>,
    /// Which events count.
    pub filter: Option<Expr>,
    /// Which events never count.
    pub exceptions: Vec<Expr>,
    /// What a finding is about.
    pub group_by: Vec<GroupBy>,
    /// How close together the evidence must be.
    pub window: Duration,
    /// Repeats within this time after a finding's first evidence fold into
    /// it (counted, never dropped).
    pub suppress: Duration,
    /// What it looks for.
    pub kind: Kind,
    /// The file it came from (`builtin:NAME` for the built-in pack).
    pub origin: PathBuf,
}

fn line_of(text: &str, span: Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

impl Rule {
    /// Parses and checks the rule file `text` (read from `origin`).
    pub fn parse(text: &str, origin: &Path) -> Result<Rule, RuleError> {
        let invalid = |line: Option<usize>, message: String| RuleError::Invalid {
            file: origin.to_owned(),
            line,
            message,
        };
        let file: RuleFile = toml::from_str(text).map_err(|err| {
            let line = err.span().map(|span| line_of(text, span));
            invalid(line, err.message().to_owned())
        })?;
        let expr = |spanned: &Spanned<String>, key: &'static str| Expr {
            sql: spanned.get_ref().trim().to_owned(),
            line: line_of(text, spanned.span()),
            key,
        };
        let duration = |spanned: &Spanned<String>, key: &str| {
            humantime::parse_duration(spanned.get_ref()).map_err(|err| {
                invalid(
                    Some(line_of(text, spanned.span())),
                    format!(
                        "`{key}`: {err} (write e.g. \"10m\", \"1h\", \"14d\"; got {:?})",
                        spanned.get_ref()
                    ),
                )
            })
        };
        if file.id.is_empty()
            || !file
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(invalid(
                None,
                format!(
                    "`id` must be lower-case letters, digits, `_` and `-`; got {:?}",
                    file.id
                ),
            ));
        }
        let kinds = [
            file.threshold.is_some(),
            file.distinct.is_some(),
            file.sequence.is_some(),
            file.new_value.is_some(),
            file.travel.is_some(),
            file.sql.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(invalid(
                None,
                "a rule needs exactly one of the tables [threshold], [distinct], [sequence], \
                 [new_value], [travel], [sql]"
                    .into(),
            ));
        }
        let window = match &file.window {
            Some(w) => duration(w, "window")?,
            None => Duration::ZERO,
        };
        let needs_window =
            file.threshold.is_some() || file.distinct.is_some() || file.sequence.is_some();
        if needs_window && window.is_zero() {
            return Err(invalid(
                None,
                "this kind of rule needs a `window` (e.g. window = \"10m\")".into(),
            ));
        }
        let suppress = match &file.suppress {
            Some(s) => duration(s, "suppress")?,
            None => Duration::ZERO,
        };
        let positive = |n: u64, key: &str| {
            if n == 0 {
                Err(invalid(None, format!("`{key}` must be at least 1")))
            } else {
                Ok(n)
            }
        };
        let kind = if let Some(t) = &file.threshold {
            Kind::Threshold {
                count: positive(t.count, "threshold.count")?,
            }
        } else if let Some(d) = &file.distinct {
            let per_value_min = d.per_value_min.unwrap_or(1).max(1);
            let per_value_max = d.per_value_max.unwrap_or(u64::MAX);
            if per_value_max < per_value_min {
                return Err(invalid(
                    None,
                    "`distinct.per_value_max` is below `distinct.per_value_min`".into(),
                ));
            }
            Kind::Distinct {
                field: expr(&d.field, "distinct.field"),
                count: positive(d.count, "distinct.count")?,
                min_events: d.min_events.unwrap_or(0),
                per_value_min,
                per_value_max,
            }
        } else if let Some(s) = &file.sequence {
            Kind::Sequence {
                first: expr(&s.first, "sequence.first"),
                first_count: positive(s.first_count, "sequence.first_count")?,
                then: expr(&s.then, "sequence.then"),
                until: s.until.as_ref().map(|u| expr(u, "sequence.until")),
            }
        } else if let Some(n) = &file.new_value {
            Kind::NewValue {
                field: expr(&n.field, "new_value.field"),
                lookback: duration(&n.lookback, "new_value.lookback")?,
            }
        } else if let Some(t) = &file.travel {
            if !(t.min_km >= 0.0 && t.min_kmh > 0.0) {
                return Err(invalid(
                    None,
                    "`travel.min_km` must be at least 0 and `travel.min_kmh` above 0".into(),
                ));
            }
            Kind::Travel {
                min_km: t.min_km,
                min_kmh: t.min_kmh,
            }
        } else if let Some(q) = &file.sql {
            Kind::Sql {
                query: expr(&q.query, "sql.query"),
            }
        } else {
            return Err(invalid(None, "no kind".into()));
        };
        if !matches!(kind, Kind::Sql { .. }) && file.group_by.is_empty() {
            return Err(invalid(
                None,
                "`group_by` names what a finding is about, e.g. group_by = [\"user\"]".into(),
            ));
        }
        let group_by = file
            .group_by
            .iter()
            .map(|g| {
                let e = expr(g, "group_by");
                let (sql, name) = split_alias(&e.sql);
                GroupBy {
                    expr: Expr { sql, ..e },
                    name,
                }
            })
            .collect();
        Ok(Rule {
            id: file.id,
            title: file.title,
            description: file.description,
            severity: file.severity,
            tags: file.tags,
            references: file.references,
            filter: file.filter.as_ref().map(|f| expr(f, "filter")),
            exceptions: file
                .exceptions
                .iter()
                .map(|e| expr(e, "exceptions"))
                .collect(),
            group_by,
            window,
            suppress,
            kind,
            origin: origin.to_owned(),
        })
        .and_then(|rule: Rule| {
            if file.enabled == Some(false) {
                Err(RuleError::Disabled(rule.id))
            } else {
                Ok(rule)
            }
        })
    }
}

/// `expr AS name` → (`expr`, `name`); a bare column is its own name.
fn split_alias(sql: &str) -> (String, String) {
    let lower = sql.to_ascii_lowercase();
    if let Some(at) = lower.rfind(" as ") {
        let name = sql[at + 4..].trim();
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return (sql[..at].trim().to_owned(), name.to_owned());
        }
    }
    (sql.to_owned(), sql.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_parses_with_its_lines() {
        let text = "id = \"bf\"\ntitle = \"t\"\nseverity = \"high\"\nfilter = \"outcome = 'failure'\"\ngroup_by = [\"coalesce(src_ip, src_host) AS source\"]\nwindow = \"10m\"\n[threshold]\ncount = 5\n";
        let rule = Rule::parse(text, Path::new("bf.toml")).unwrap();
        assert_eq!(rule.filter.as_ref().unwrap().line, 4);
        assert_eq!(rule.group_by[0].name, "source");
        assert_eq!(rule.group_by[0].expr.sql, "coalesce(src_ip, src_host)");
        assert_eq!(rule.window, Duration::from_secs(600));
        assert_eq!(rule.kind, Kind::Threshold { count: 5 });
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let text = "id = \"bf\"\ntitle = \"t\"\nseverity = \"high\"\ngroup_by = [\"user\"]\nwindow = \"10m\"\n[threshold]\ncuont = 5\n";
        let err = Rule::parse(text, Path::new("bf.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bf.toml:7:"), "{err}");
        assert!(err.contains("cuont"), "{err}");
        let text = "id = \"bf\"\ntitle = \"t\"\nseverity = \"high\"\ngroup_by = [\"user\"]\nwindow = \"ten minutes\"\n[threshold]\ncount = 5\n";
        let err = Rule::parse(text, Path::new("bf.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bf.toml:5:"), "{err}");
        let text = "id = \"bf\"\ntitle = \"t\"\nseverity = \"urgent\"\ngroup_by = [\"user\"]\nwindow = \"1m\"\n[threshold]\ncount = 5\n";
        let err = Rule::parse(text, Path::new("bf.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bf.toml:3:"), "{err}");
    }
}
