//! Prometheus metrics: events ingested by source and outcome, dead
//! letters, commit latency, HTTP responses by status, and the ingest queue,
//! served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Events parsed from ingest requests (stored or duplicate).
    pub events: Family<EventLabels, Counter>,
    /// Records rejected into dead letters.
    pub dead_letters: Family<SourceLabels, Counter>,
    /// Time from submitting a batch to its durable commit.
    pub commit_seconds: Histogram,
    /// HTTP responses.
    pub http: Family<HttpLabels, Counter>,
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
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events_ingested",
            "Events received through the ingest API, by source and outcome",
            events.clone(),
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
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses by route and status",
            http.clone(),
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

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "encoding metrics");
        }
        out
    }
}
