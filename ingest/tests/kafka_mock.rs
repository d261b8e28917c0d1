//! Fault injection with librdkafka's in-process mock cluster (fast, and
//! able to fail requests on demand; the real-broker tests are in the root
//! package's `tests/kafka`): every offset commit to the group fails, yet a
//! restart re-reads nothing, because the log's own positions say where
//! it stands.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use authtrail_ingest::adapters::AdapterOptions;
use authtrail_ingest::kafka::produce::LineProducer;
use authtrail_ingest::kafka::{self, KafkaReport, KafkaSettings, KafkaStats};
use authtrail_ingest::staging::{Stager, StagingOptions};
use authtrail_ingest::store::{EventLog, LogOptions};

fn ocsf(i: usize) -> String {
    serde_json::json!({
        "class_uid": 3002,
        "activity_id": 1,
        "time": 1_773_057_600_000i64 + i as i64 * 1000,
        "status_id": if i.is_multiple_of(3) { 2 } else { 1 },
        "metadata": {"uid": format!("mock-{i}"), "product": {"name": "idp"}},
        "user": {"email_addr": format!("user{}@example.com", i % 50)},
        "src_endpoint": {"ip": "10.0.0.1"},
    })
    .to_string()
}

fn consume_to_end(root: &Path, brokers: &str) -> KafkaReport {
    let log = EventLog::open(root, LogOptions::default()).unwrap();
    let stager = Arc::new(Stager::start(log, StagingOptions::default()).unwrap());
    let mut settings = KafkaSettings::new(
        brokers.to_owned(),
        "mock-group".into(),
        vec!["audit=ocsf".parse().unwrap()],
    );
    settings.until_caught_up = true;
    settings.batch_messages = 300;
    // The mock cluster needs a session timeout above 3 s.
    settings
        .client_options
        .insert("session.timeout.ms".into(), "6000".into());
    let report = kafka::run(
        &settings,
        Arc::clone(&stager),
        &AdapterOptions::default(),
        &AtomicBool::new(false),
        Arc::new(KafkaStats::default()),
    )
    .unwrap();
    stager.shutdown().unwrap();
    report
}

#[test]
fn failed_group_commits_lose_and_repeat_nothing() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 3, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let producer = LineProducer::new(&brokers, "audit").unwrap();
    for i in 0..2_000 {
        producer
            .send(i.to_string().as_bytes(), ocsf(i).as_bytes())
            .unwrap();
    }
    producer.flush().unwrap();
    drop(producer);

    // Every offset commit the group coordinator receives is refused.
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 500],
    );
    let dir = tempfile::tempdir().unwrap();
    let first = consume_to_end(dir.path(), &brokers);
    assert_eq!(first.messages, 2_000);
    assert_eq!(first.stored, 2_000);

    // The group never recorded an offset; the log did.
    cluster.clear_request_errors(RDKafkaApiKey::OffsetCommit);
    let second = consume_to_end(dir.path(), &brokers);
    assert_eq!(second.messages, 0, "{second:?}");
    assert_eq!(second.stored, 0);
    let log = EventLog::open(dir.path(), LogOptions::default()).unwrap();
    let total: i64 = (0..3)
        .map(|p| {
            log.source_positions()
                .get(&format!("kafka:audit/{p}"))
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 2_000, "the log's positions cover every message");
}
