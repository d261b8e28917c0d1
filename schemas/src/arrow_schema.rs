//! Arrow schemas of the event-log tables, and the conversion of canonical
//! records into Arrow record batches.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::{AuthEvent, DeadLetter};

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

/// Builds one `events` batch from `events`, in the order given, stamping
/// every row with `ingested_at` (µs since the epoch).
///
/// Taking references lets the writer sort by time without moving events.
pub fn events_to_batch(
    events: &[&AuthEvent],
    ingested_at_micros: i64,
) -> Result<RecordBatch, ArrowError> {
    let rows = || events.iter().copied();
    // Sized up front: growing a large string buffer by doubling costs more
    // than the one extra pass that measures it.
    let text = |get: fn(&AuthEvent) -> Option<&str>| -> ArrayRef {
        let bytes = rows().map(|e| get(e).map_or(0, str::len)).sum();
        let mut builder = StringBuilder::with_capacity(events.len(), bytes);
        for event in rows() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    };
    let time = |values: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(values).with_timezone(TIME_ZONE))
    };
    let columns: Vec<ArrayRef> = vec![
        text(|e| Some(e.event_id.as_str())),
        time(rows().map(|e| e.time.timestamp_micros()).collect()),
        time(vec![ingested_at_micros; events.len()]),
        text(|e| Some(e.source.as_str())),
        text(|e| e.tenant.as_deref()),
        text(|e| e.user.as_deref()),
        text(|e| e.user_id.as_deref()),
        text(|e| e.user_domain.as_deref()),
        text(|e| Some(e.action.as_str())),
        text(|e| Some(e.outcome.as_str())),
        text(|e| e.method.map(|m| m.as_str())),
        Arc::new(rows().map(|e| e.mfa).collect::<BooleanArray>()),
        text(|e| e.reason.map(|r| r.as_str())),
        text(|e| e.reason_detail.as_deref()),
        text(|e| e.src_ip.as_deref()),
        text(|e| e.src_host.as_deref()),
        text(|e| e.dst_host.as_deref()),
        text(|e| e.country.as_deref()),
        text(|e| e.city.as_deref()),
        Arc::new(rows().map(|e| e.latitude).collect::<Float64Array>()),
        Arc::new(rows().map(|e| e.longitude).collect::<Float64Array>()),
        text(|e| e.user_agent.as_deref()),
        text(|e| e.session_id.as_deref()),
        text(|e| e.app.as_deref()),
        text(|e| Some(e.raw.as_str())),
    ];
    RecordBatch::try_new(events_schema(), columns)
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
}
