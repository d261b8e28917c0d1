//! Arrow schemas of the event-log tables, and the conversion of canonical
//! records into Arrow record batches.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BinaryArray, BooleanBuilder, Float64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::{AuthEvent, DeadLetter, EventRef, EventSink, Finding, Method, Reason};

/// Time zone of every timestamp column.
pub const TIME_ZONE: &str = "UTC";

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(TIME_ZONE.into()))
}

/// Columns of `events` in file order (schema version 1).
pub fn events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let text = |name: &str| Field::new(name, DataType::Utf8, true);
            Arc::new(Schema::new(vec![
                Field::new("event_id", DataType::Utf8, false),
                Field::new("time", timestamp(), false),
                Field::new("ingested_at", timestamp(), false),
                Field::new("source", DataType::Utf8, false),
                text("tenant"),
                text("user"),
                text("user_id"),
                text("user_domain"),
                Field::new("action", DataType::Utf8, false),
                Field::new("outcome", DataType::Utf8, false),
                text("method"),
                Field::new("mfa", DataType::Boolean, true),
                text("reason"),
                text("reason_detail"),
                text("src_ip"),
                text("src_host"),
                text("dst_host"),
                text("country"),
                text("city"),
                Field::new("latitude", DataType::Float64, true),
                Field::new("longitude", DataType::Float64, true),
                text("user_agent"),
                text("session_id"),
                text("app"),
                Field::new("raw", DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// Columns of `dead_letters` in file order.
pub fn dead_letters_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("dead_letter_id", DataType::Utf8, false),
                Field::new("received_at", timestamp(), false),
                Field::new("source", DataType::Utf8, false),
                Field::new("origin", DataType::Utf8, false),
                Field::new("line", DataType::UInt64, false),
                Field::new("reason", DataType::Utf8, false),
                Field::new("raw", DataType::Binary, false),
            ]))
        })
        .clone()
}

/// Columns of `findings` (every version of every finding) in file order.
pub fn findings_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let text = |name: &str| Field::new(name, DataType::Utf8, false);
            let list = |name: &str| {
                Field::new(
                    name,
                    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false))),
                    false,
                )
            };
            Arc::new(Schema::new(vec![
                text("finding_id"),
                text("version_id"),
                text("rule_id"),
                text("title"),
                text("severity"),
                list("tags"),
                text("group_key"),
                Field::new("first_time", timestamp(), false),
                Field::new("last_time", timestamp(), false),
                Field::new("count", DataType::UInt64, false),
                Field::new("suppressed", DataType::UInt64, false),
                list("evidence_ids"),
                Field::new("evidence_capped", DataType::Boolean, false),
                text("summary"),
                Field::new("detected_at", timestamp(), false),
            ]))
        })
        .clone()
}

/// Builds one `findings` batch from `findings`, in the order given.
pub fn findings_to_batch(findings: &[&Finding]) -> Result<RecordBatch, ArrowError> {
    use arrow::array::{ListBuilder, UInt64Builder};
    let rows = || findings.iter().copied();
    let text = |get: fn(&Finding) -> &str| -> ArrayRef {
        Arc::new(rows().map(|f| Some(get(f))).collect::<StringArray>())
    };
    let time = |get: fn(&Finding) -> i64| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(rows().map(get).collect::<Vec<_>>())
                .with_timezone(TIME_ZONE),
        )
    };
    let list = |get: fn(&Finding) -> &[String]| -> ArrayRef {
        let mut builder = ListBuilder::new(StringBuilder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::Utf8, false)));
        for finding in rows() {
            for value in get(finding) {
                builder.values().append_value(value);
            }
            builder.append(true);
        }
        Arc::new(builder.finish())
    };
    let number = |get: fn(&Finding) -> u64| -> ArrayRef {
        let mut builder = UInt64Builder::with_capacity(findings.len());
        builder.extend(rows().map(|f| Some(get(f))));
        Arc::new(builder.finish())
    };
    let mut capped = BooleanBuilder::with_capacity(findings.len());
    capped.extend(rows().map(|f| Some(f.evidence_capped)));
    let columns: Vec<ArrayRef> = vec![
        text(|f| &f.finding_id),
        text(|f| &f.version_id),
        text(|f| &f.rule_id),
        text(|f| &f.title),
        text(|f| &f.severity),
        list(|f| &f.tags),
        text(|f| &f.group_key),
        time(|f| f.first_time.timestamp_micros()),
        time(|f| f.last_time.timestamp_micros()),
        number(|f| f.count),
        number(|f| f.suppressed),
        list(|f| &f.evidence_ids),
        Arc::new(capped.finish()),
        text(|f| &f.summary),
        time(|f| f.detected_at.timestamp_micros()),
    ];
    RecordBatch::try_new(findings_schema(), columns)
}

/// Builds one `events` batch from `events`, in the order given, stamping
/// every row with `ingested_at` (µs since the epoch).
///
/// Taking references lets the writer sort by time without moving events.
pub fn events_to_batch(
    events: &[&AuthEvent],
    ingested_at_micros: i64,
) -> Result<RecordBatch, ArrowError> {
    let raw_bytes = events.iter().map(|e| e.raw.len()).sum();
    let mut builder = EventBatchBuilder::with_capacity(events.len(), raw_bytes);
    for event in events {
        builder.push(event.to_ref());
    }
    builder.finish(ingested_at_micros)
}

/// Bytes reserved per row for each short text column; they grow past it.
const SHORT_TEXT_BYTES: usize = 16;

/// Builds an `events` batch row by row, from events as adapters parse them:
/// each field is copied once, from the record into its column.
pub struct EventBatchBuilder {
    event_id: StringBuilder,
    time: Vec<i64>,
    source: StringBuilder,
    tenant: StringBuilder,
    user: StringBuilder,
    user_id: StringBuilder,
    user_domain: StringBuilder,
    action: StringBuilder,
    outcome: StringBuilder,
    method: StringBuilder,
    mfa: BooleanBuilder,
    reason: StringBuilder,
    reason_detail: StringBuilder,
    src_ip: StringBuilder,
    src_host: StringBuilder,
    dst_host: StringBuilder,
    country: StringBuilder,
    city: StringBuilder,
    latitude: Float64Builder,
    longitude: Float64Builder,
    user_agent: StringBuilder,
    session_id: StringBuilder,
    app: StringBuilder,
    raw: StringBuilder,
}

impl EventBatchBuilder {
    /// A builder with room for `rows` events whose payloads take about
    /// `raw_bytes` in all (the size of the input they come from).
    pub fn with_capacity(rows: usize, raw_bytes: usize) -> Self {
        let text = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        let short = || text(SHORT_TEXT_BYTES);
        EventBatchBuilder {
            event_id: text(32),
            time: Vec::with_capacity(rows),
            source: short(),
            tenant: short(),
            user: text(32),
            user_id: text(32),
            user_domain: short(),
            action: short(),
            outcome: short(),
            method: short(),
            mfa: BooleanBuilder::with_capacity(rows),
            reason: short(),
            reason_detail: short(),
            src_ip: short(),
            src_host: short(),
            dst_host: short(),
            country: text(2),
            city: short(),
            latitude: Float64Builder::with_capacity(rows),
            longitude: Float64Builder::with_capacity(rows),
            user_agent: text(64),
            session_id: text(32),
            app: short(),
            raw: StringBuilder::with_capacity(rows, raw_bytes),
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    /// The batch, every row stamped with `ingested_at` (µs since the
    /// epoch).
    pub fn finish(mut self, ingested_at_micros: i64) -> Result<RecordBatch, ArrowError> {
        let rows = self.time.len();
        let time = |values: Vec<i64>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(values).with_timezone(TIME_ZONE))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            time(self.time),
            time(vec![ingested_at_micros; rows]),
            Arc::new(self.source.finish()),
            Arc::new(self.tenant.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.user_domain.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.mfa.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.reason_detail.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.src_host.finish()),
            Arc::new(self.dst_host.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.city.finish()),
            Arc::new(self.latitude.finish()),
            Arc::new(self.longitude.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.raw.finish()),
        ];
        RecordBatch::try_new(events_schema(), columns)
    }
}

impl EventSink for EventBatchBuilder {
    fn push(&mut self, e: EventRef<'_>) {
        self.event_id.append_value(&e.event_id);
        self.time.push(e.time.timestamp_micros());
        self.source.append_value(e.source);
        self.tenant.append_option(e.tenant);
        self.user.append_option(e.user);
        self.user_id.append_option(e.user_id);
        self.user_domain.append_option(e.user_domain);
        self.action.append_value(e.action.as_str());
        self.outcome.append_value(e.outcome.as_str());
        self.method.append_option(e.method.map(Method::as_str));
        self.mfa.append_option(e.mfa);
        self.reason.append_option(e.reason.map(Reason::as_str));
        self.reason_detail.append_option(e.reason_detail);
        self.src_ip.append_option(e.src_ip);
        self.src_host.append_option(e.src_host);
        self.dst_host.append_option(e.dst_host);
        self.country.append_option(e.country);
        self.city.append_option(e.city);
        self.latitude.append_option(e.latitude);
        self.longitude.append_option(e.longitude);
        self.user_agent.append_option(e.user_agent);
        self.session_id.append_option(e.session_id);
        self.app.append_option(e.app);
        self.raw.append_value(e.raw);
    }
}

/// Builds one `dead_letters` batch from `letters`, in the order given.
pub fn dead_letters_to_batch(letters: &[&DeadLetter]) -> Result<RecordBatch, ArrowError> {
    let rows = || letters.iter().copied();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            rows()
                .map(|d| Some(d.dead_letter_id.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            TimestampMicrosecondArray::from(
                rows()
                    .map(|d| d.received_at.timestamp_micros())
                    .collect::<Vec<_>>(),
            )
            .with_timezone(TIME_ZONE),
        ),
        Arc::new(
            rows()
                .map(|d| Some(d.source.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows()
                .map(|d| Some(d.origin.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(rows().map(|d| d.line).collect::<UInt64Array>()),
        Arc::new(
            rows()
                .map(|d| Some(d.reason.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows()
                .map(|d| Some(d.raw.as_slice()))
                .collect::<BinaryArray>(),
        ),
    ];
    RecordBatch::try_new(dead_letters_schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Outcome};
    use arrow::array::Array;
    use chrono::TimeZone;

    #[test]
    fn batch_follows_order_and_schema() {
        let at = |s| chrono::Utc.timestamp_opt(s, 0).unwrap();
        let mut late = AuthEvent::new("b".into(), at(20), "okta", Action::Login, Outcome::Failure);
        late.set_user("Alice@Example.COM");
        let early = AuthEvent::new("a".into(), at(10), "okta", Action::Login, Outcome::Success);
        let batch = events_to_batch(&[&early, &late], 7).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ids.value(0), "a");
        let users = batch
            .column(5)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert!(users.is_null(0));
        assert_eq!(users.value(1), "alice@example.com");
        let domains = batch
            .column(7)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(domains.value(1), "example.com");
    }

    #[test]
    fn borrowed_events_build_the_batch_owned_events_build() {
        let at = |s| chrono::Utc.timestamp_opt(s, 0).unwrap();
        let raw = r#"{"user":"Bob@Example.com"}"#;
        let mut upper = EventRef::new(
            "x".into(),
            at(5),
            "ocsf",
            Action::Login,
            Outcome::Failure,
            raw,
        );
        upper.set_user("  Bob@Example.com ");
        assert!(matches!(upper.user, Some(std::borrow::Cow::Owned(_))));
        upper.country = Some("DE".into());
        upper.latitude = Some(52.5);
        upper.reason = Some(crate::Reason::InvalidCredentials);
        let mut lower = EventRef::new(
            "y".into(),
            at(6),
            "ocsf",
            Action::Logout,
            Outcome::Success,
            raw,
        );
        lower.set_user("carol@example.org");
        assert!(matches!(lower.user, Some(std::borrow::Cow::Borrowed(_))));
        assert_eq!(lower.user_domain.as_deref(), Some("example.org"));

        let mut builder = EventBatchBuilder::with_capacity(1, 0);
        builder.push(upper.clone());
        builder.push(lower.clone());
        assert_eq!(builder.len(), 2);
        let built = builder.finish(9).unwrap();

        let owned = [upper.into_owned(), lower.into_owned()];
        assert_eq!(owned[0].user.as_deref(), Some("bob@example.com"));
        assert_eq!(owned[0].user_domain.as_deref(), Some("example.com"));
        let expected = events_to_batch(&[&owned[0], &owned[1]], 9).unwrap();
        assert_eq!(built, expected);
        let mut by_set_user =
            AuthEvent::new("x".into(), at(5), "ocsf", Action::Login, Outcome::Failure);
        by_set_user.set_user("  Bob@Example.com ");
        assert_eq!(by_set_user.user, owned[0].user);
        assert_eq!(by_set_user.user_domain, owned[0].user_domain);
    }
}
