//! Source positions: how far into each external stream (a Kafka topic
//! partition) the event log holds everything, so that a consumer resumes
//! exactly after the last stored record.
//!
//! Positions travel with the data they describe: in the position journal
//! beside a staging segment, then in the metadata of every sealed file.
//! Each sealed file carries every position the log held when it was
//! sealed, so the highest position per stream over the partitions' newest
//! files is where the log stands.

use std::collections::BTreeMap;

/// Next position to read, per stream key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePositions(BTreeMap<String, i64>);

/// The stream key of a Kafka topic partition.
pub fn kafka_key(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}/{partition}")
}

/// The topic and partition of a Kafka stream key.
pub fn parse_kafka_key(key: &str) -> Option<(&str, i32)> {
    let rest = key.strip_prefix("kafka:")?;
    // Topic names cannot hold '/', so the last one separates the partition.
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic, partition.parse().ok()?))
}

impl SourcePositions {
    /// No positions.
    pub fn new() -> Self {
        SourcePositions::default()
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next position of `key`, if the log holds any of that stream.
    pub fn get(&self, key: &str) -> Option<i64> {
        self.0.get(key).copied()
    }

    /// Raises `key` to `next` (positions only move forward).
    pub fn advance(&mut self, key: &str, next: i64) {
        match self.0.get_mut(key) {
            Some(held) => *held = (*held).max(next),
            None => {
                self.0.insert(key.to_owned(), next);
            }
        }
    }

    /// Raises every position to at least `other`'s.
    pub fn merge(&mut self, other: &SourcePositions) {
        for (key, &next) in &other.0 {
            self.advance(key, next);
        }
    }

    /// Every (key, next position), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// The JSON object form kept in file metadata and journals.
    pub fn to_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(k, &v)| (k.clone(), serde_json::Value::from(v)))
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Reads the JSON object form.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|err| format!("source positions: {err}"))?;
        let object = value
            .as_object()
            .ok_or_else(|| "source positions: not a JSON object".to_owned())?;
        let mut positions = SourcePositions::new();
        for (key, next) in object {
            let next = next
                .as_i64()
                .ok_or_else(|| format!("source positions: {key} is not an integer"))?;
            positions.advance(key, next);
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_only_move_forward_and_round_trip() {
        let mut positions = SourcePositions::new();
        positions.advance(&kafka_key("auth.events", 0), 10);
        positions.advance(&kafka_key("auth.events", 0), 7);
        positions.advance(&kafka_key("auth.events", 1), 3);
        assert_eq!(positions.get("kafka:auth.events/0"), Some(10));
        let back = SourcePositions::from_json(&positions.to_json()).expect("round trip");
        assert_eq!(back, positions);
        assert_eq!(
            parse_kafka_key("kafka:auth.events/1"),
            Some(("auth.events", 1))
        );
        assert_eq!(parse_kafka_key("kafka:nopartition"), None);
        assert!(SourcePositions::from_json("[1]").is_err());
        assert!(SourcePositions::from_json(r#"{"k":"x"}"#).is_err());
    }
}
