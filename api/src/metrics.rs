//! Prometheus metrics: events ingested by source and outcome, dead
//! letters, commit latency, HTTP responses by status, and the ingest queue,
//! served as text at `/metrics`.

use std::sync::RwLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use authtrail_ingest::kafka::KafkaStats;

/// Labels of ingested events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Adapter name.
    pub source: String,
    /// success, failure or unknown.
    pub outcome: String,
}

/// Labels of dead letters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// Adapter name.
    pub source: String,
}

/// Labels of HTTP responses.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route's pattern (`/v1/ingest/{source}`), never the raw path.
    pub route: String,
    /// Status code.
    pub status: String,
}

/// The counters of one family, found by a short text and a small code
/// (a route and a status, a source and an outcome) without building and
/// hashing a label set of `String`s on every request. A family has a few
/// dozen label sets at most, so a scan of the ones seen finds them.
pub struct CounterIndex<L> {
    family: Family<L, Counter>,
    /// Label sets seen so far, as (text, code) and their counter (which
    /// shares its count with the family's).
    seen: RwLock<Vec<(Box<str>, u16, Counter)>>,
}

/// Label sets a [`CounterIndex`] remembers; beyond them (which the routes,
/// statuses and sources of this server never reach) it asks the family.
const INDEXED_LABEL_SETS: usize = 256;

impl<L> CounterIndex<L>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    fn new() -> Self {
        CounterIndex {
            family: Family::default(),
            seen: RwLock::new(Vec::new()),
        }
    }

    /// Adds `by` to the counter of (`text`, `code`); `labels` makes its
    /// label set the first time.
    pub fn inc_by(&self, text: &str, code: u16, by: u64, labels: impl FnOnce() -> L) {
        fn find<'a>(
            seen: &'a [(Box<str>, u16, Counter)],
            text: &str,
            code: u16,
        ) -> Option<&'a Counter> {
            seen.iter()
                .find(|(t, c, _)| *c == code && **t == *text)
                .map(|(_, _, counter)| counter)
        }
        // Counted under the read lock: no clone of the counter's `Arc`,
        // whose count the two worker threads would otherwise bounce.
        if let Some(counter) = find(
            &self.seen.read().unwrap_or_else(|p| p.into_inner()),
            text,
            code,
        ) {
            counter.inc_by(by);
            return;
        }
        let counter = self.family.get_or_create(&labels()).clone();
        counter.inc_by(by);
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if seen.len() < INDEXED_LABEL_SETS && find(&seen, text, code).is_none() {
            seen.push((text.into(), code, counter));
        }
    }

    /// The family, for registering.
    fn family(&self) -> Family<L, Counter> {
        self.family.clone()
    }
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Events parsed from ingest requests (stored or duplicate), by source
    /// and outcome (the code: [`authtrail_schemas::Outcome`]'s index).
    pub events: CounterIndex<EventLabels>,
    /// Records rejected into dead letters.
    pub dead_letters: Family<SourceLabels, Counter>,
    /// Time from submitting a batch to its durable commit.
    pub commit_seconds: Histogram,
    /// HTTP responses, by route and status (the code).
    pub http: CounterIndex<HttpLabels>,
    /// Events accepted and waiting for a commit.
    pub queued: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("authtrail");
        let events = CounterIndex::<EventLabels>::new();
        registry.register(
            "events_ingested",
            "Events received through the ingest API, by source and outcome",
            events.family(),
        );
        let dead_letters = Family::<SourceLabels, Counter>::default();
        registry.register(
            "dead_letters",
            "Records rejected into dead letters, by source",
            dead_letters.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "commit_seconds",
            "Time from handing a batch to the writer until it is durable",
            commit_seconds.clone(),
        );
        let http = CounterIndex::<HttpLabels>::new();
        registry.register(
            "http_responses",
            "HTTP responses by route and status",
            http.family(),
        );
        let queued = Gauge::default();
        registry.register(
            "ingest_queued_events",
            "Events accepted and waiting for a durable commit",
            queued.clone(),
        );
        Metrics {
            registry,
            events,
            dead_letters,
            commit_seconds,
            http,
            queued,
        }
    }

    /// Adds the Kafka consumer's counters, offsets and lag.
    pub fn register_kafka(&mut self, stats: std::sync::Arc<KafkaStats>) {
        self.registry
            .register_collector(Box::new(KafkaCollector { stats }));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "encoding metrics");
        }
        out
    }
}

/// A per-partition gauge: name, help, and its value.
type PartitionGauge = (
    &'static str,
    &'static str,
    fn(&authtrail_ingest::kafka::PartitionStats) -> i64,
);

/// Reads the Kafka consumer's live counters at each scrape.
#[derive(Debug)]
struct KafkaCollector {
    stats: std::sync::Arc<KafkaStats>,
}

impl prometheus_client::collector::Collector for KafkaCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let stats = &self.stats;
        let counters: [(&str, &str, u64); 7] = [
            (
                "kafka_messages",
                "Messages read from Kafka",
                KafkaStats::get(&stats.messages),
            ),
            (
                "kafka_bytes",
                "Payload bytes read from Kafka",
                KafkaStats::get(&stats.bytes),
            ),
            (
                "kafka_events_stored",
                "Events from Kafka stored durably",
                KafkaStats::get(&stats.stored),
            ),
            (
                "kafka_duplicates",
                "Events from Kafka already in the log",
                KafkaStats::get(&stats.duplicates),
            ),
            (
                "kafka_dead_letters",
                "Kafka records rejected into dead letters",
                KafkaStats::get(&stats.dead_letters),
            ),
            (
                "kafka_batches_committed",
                "Durable batches whose offsets were committed",
                KafkaStats::get(&stats.batches),
            ),
            (
                "kafka_rebalances",
                "Partition assignments and revocations",
                KafkaStats::get(&stats.rebalances),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let partitions = stats.partitions();
        let gauges: [PartitionGauge; 3] = [
            (
                "kafka_lag_messages",
                "Messages behind the high watermark, per partition",
                |p| p.lag,
            ),
            (
                "kafka_committed_offset",
                "Next offset stored durably, per partition",
                |p| p.committed,
            ),
            (
                "kafka_high_watermark",
                "The broker's high watermark, per partition",
                |p| p.high_watermark,
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for ((topic, partition), p) in &partitions {
                let labels = [
                    ("topic", topic.clone()),
                    ("partition", partition.to_string()),
                ];
                let metric = family.encode_family(&labels)?;
                ConstGauge::new(value(p)).encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A label set counts on whether its counter was just created or found
    /// among those seen, and each label set counts alone.
    #[test]
    fn indexed_counters_count_into_their_family() {
        let metrics = Metrics::new();
        fn labels(route: &'static str, status: u16) -> impl FnOnce() -> HttpLabels {
            move || HttpLabels {
                route: route.to_owned(),
                status: status.to_string(),
            }
        }
        metrics.http.inc_by("/a", 200, 1, labels("/a", 200));
        metrics.http.inc_by("/a", 200, 2, labels("/a", 200));
        metrics.http.inc_by("/a", 404, 1, labels("/a", 404));
        metrics.http.inc_by("/b", 200, 5, labels("/b", 200));
        let text = metrics.render();
        for line in [
            r#"authtrail_http_responses_total{route="/a",status="200"} 3"#,
            r#"authtrail_http_responses_total{route="/a",status="404"} 1"#,
            r#"authtrail_http_responses_total{route="/b",status="200"} 5"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
