//! Producing to Kafka, for benchmarks, tests and backfills: creating a
//! topic and sending lines as messages, waiting for every acknowledgement.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::IngestError;

/// Creates `topic` with `partitions` partitions (replication 1); an
/// existing topic is left as it is.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), IngestError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(IngestError::kafka("creating an admin client"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|err| IngestError::KafkaConfig(format!("starting a runtime: {err}")))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &options))
        .map_err(IngestError::kafka(format!("creating topic {topic}")))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(IngestError::Kafka {
                    action: format!("creating topic {name}"),
                    source: KafkaError::AdminOp(code),
                });
            }
        }
    }
    Ok(())
}

/// A producer that sends each record as one message, keyed for even
/// spread over the partitions.
pub struct LineProducer {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl LineProducer {
    /// Connects to `brokers` for producing to `topic` (idempotent, lz4).
    pub fn new(brokers: &str, topic: &str) -> Result<Self, IngestError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("batch.size", "1000000")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.kbytes", "262144")
            .create()
            .map_err(IngestError::kafka("creating a producer"))?;
        Ok(LineProducer {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Queues one message, waiting while the client's queue is full.
    pub fn send(&self, key: &[u8], payload: &[u8]) -> Result<(), IngestError> {
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .key(key)
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((err, _)) => {
                    return Err(IngestError::kafka(format!("producing to {}", self.topic))(
                        err,
                    ));
                }
            }
        }
    }

    /// Waits until every queued message is acknowledged by the broker.
    pub fn flush(&self) -> Result<(), IngestError> {
        self.producer
            .flush(Duration::from_secs(120))
            .map_err(IngestError::kafka(format!("flushing to {}", self.topic)))
    }
}
