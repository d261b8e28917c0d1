//! Kafka ingest against a real Kafka-protocol broker (tansu, started by
//! `scripts/kafka-broker.sh start`; its address in AUTHTRAIL_TEST_KAFKA):
//! crashes, restarts, rebalances and poison messages, with every event
//! stored exactly once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authtrail_ingest::kafka::produce::{LineProducer, create_topic};

use crate::util::{Server, Workspace};

/// The broker's address, or a panic that says how to start one.
fn broker() -> String {
    std::env::var("AUTHTRAIL_TEST_KAFKA").unwrap_or_else(|_| {
        panic!(
            "these tests need a Kafka broker: run\n  \
             export AUTHTRAIL_TEST_KAFKA=$(scripts/kafka-broker.sh start | tail -n1)\n\
             (or run scripts/test.sh, which does it)"
        )
    })
}

/// A topic name no other test or run uses.
fn fresh_topic(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn produce(broker: &str, topic: &str, lines: &[String]) {
    let producer = LineProducer::new(broker, topic).unwrap();
    for (i, line) in lines.iter().enumerate() {
        producer
            .send(i.to_string().as_bytes(), line.as_bytes())
            .unwrap();
    }
    producer.flush().unwrap();
}

/// A consumer process, killed if the test ends (or panics) before it was
/// waited for.
struct Consumer(Option<Child>);

impl Consumer {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
    fn take(mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `authtrail ingest kafka` for `topic` (OCSF) in group `group`, its log
/// on a pipe (see [`collect_log`]).
fn consumer(
    workspace: &Workspace,
    broker: &str,
    topic: &str,
    group: &str,
    extra: &[&str],
) -> Consumer {
    spawn_consumer(workspace, (broker, topic, group), extra, Stdio::piped())
}

/// [`consumer`], its log appended to `log`.
fn consumer_logging_to(
    log: &std::path::Path,
    workspace: &Workspace,
    broker: &str,
    topic: &str,
    group: &str,
    extra: &[&str],
) -> Consumer {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    spawn_consumer(workspace, (broker, topic, group), extra, file.into())
}

fn spawn_consumer(
    workspace: &Workspace,
    (broker, topic, group): (&str, &str, &str),
    extra: &[&str],
    stderr: Stdio,
) -> Consumer {
    let binding = format!("{topic}=ocsf");
    let mut args = vec![
        "ingest",
        "kafka",
        "--brokers",
        broker,
        "--group",
        group,
        "--topic",
        &binding,
        "-X",
        "session.timeout.ms=6000",
        // Also the rebalance timeout: how long a join waits for members
        // that were killed.
        "-X",
        "max.poll.interval.ms=15000",
    ];
    args.extend_from_slice(extra);
    workspace
        .command(&args)
        .env("AUTHTRAIL_LOG", "warn,authtrail_ingest::kafka=info")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map(|child| Consumer(Some(child)))
        .unwrap()
}

/// Lines the consumer logs at info level, collected as they come.
fn collect_log(consumer: &mut Consumer) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = consumer.child().stderr.take().unwrap();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

fn wait_for(log: &Mutex<String>, what: &str, deadline: Instant) {
    while !log.lock().unwrap().contains(what) {
        assert!(
            Instant::now() < deadline,
            "no {what:?} in:\n{}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn finish(consumer: Consumer) -> String {
    let output = consumer.take().wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "consumer failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn signal(consumer: &Consumer, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &consumer.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Demo events as OCSF lines, exactly `count` of them.
fn demo_events(workspace: &Workspace, count: usize) -> Vec<String> {
    let mut lines = workspace.demo_lines(800, 30);
    assert!(
        lines.len() >= count,
        "demo gave only {} events",
        lines.len()
    );
    lines.truncate(count);
    lines
}

fn event_ids(workspace: &Workspace) -> Vec<String> {
    workspace.query_csv("SELECT event_id FROM events")
}

#[test]
fn sigkill_three_times_while_consuming_stores_every_event_exactly_once() {
    let broker = broker();
    let workspace = Workspace::new();
    let topic = fresh_topic("kill");
    create_topic(&broker, &topic, 4).unwrap();
    let lines = demo_events(&workspace, 100_000);
    produce(&broker, &topic, &lines);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    eprintln!("kill moments seeded with {seed}");
    let mut state = u64::from(seed) | 1;
    let mut killed = 0;
    // Every run's log, to explain a failure.
    let log = workspace.path("consumers.log");
    let assignments = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("partition assigned")
            .count()
    };
    while killed < 3 {
        let before = assignments();
        let mut child = consumer_logging_to(
            &log,
            &workspace,
            &broker,
            &topic,
            "kill-group",
            &["--until-caught-up", "--batch-messages", "4000"],
        );
        // A random moment once the consumer is reading.
        let deadline = Instant::now() + Duration::from_secs(60);
        while assignments() == before {
            assert!(Instant::now() < deadline, "no partition assigned in 60 s");
            assert!(
                child.child().try_wait().unwrap().is_none(),
                "the consumer exited before it was assigned a partition"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let wait = Duration::from_millis(400 + state % 1400);
        std::thread::sleep(wait);
        assert!(
            child.child().try_wait().unwrap().is_none(),
            "the consumer finished before it could be killed ({killed} kills so far)"
        );
        signal(&child, "-KILL");
        child.take().wait().unwrap();
        killed += 1;
        eprintln!("killed {wait:?} after its assignment");
        // The killed member keeps its partitions until its session times
        // out (6 s here); until then the next consumer would get only the
        // others, and could be caught up on those before it is killed.
        std::thread::sleep(Duration::from_secs(7));
    }
    // Run consumers until the topic is stored (at most 10 runs): a
    // member that joins while a killed one still holds partitions gets
    // only the others.
    for _ in 0..10 {
        let summary = finish(consumer_logging_to(
            &log,
            &workspace,
            &broker,
            &topic,
            "kill-group",
            &["--until-caught-up"],
        ));
        eprintln!("{summary}");
        if workspace.query_number("SELECT count(*) FROM events") >= 100_000 {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let ids = event_ids(&workspace);
    let distinct: HashSet<&String> = ids.iter().collect();
    if ids.len() != 100_000 {
        eprintln!(
            "consumer logs:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    assert_eq!(ids.len(), 100_000, "rows in events");
    assert_eq!(distinct.len(), 100_000, "distinct event ids");
    let produced: HashSet<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["metadata"]["uid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(produced.len(), 100_000);
    assert_eq!(
        workspace.query_number("SELECT count(*) FROM dead_letters"),
        0
    );
    workspace.run(&["verify"]).ok();
}

#[test]
fn a_consumer_stopped_half_way_hands_its_partitions_over_without_duplicates() {
    let broker = broker();
    let first = Workspace::new();
    let second = Workspace::new();
    let topic = fresh_topic("rebalance");
    create_topic(&broker, &topic, 4).unwrap();
    let lines = demo_events(&first, 100_000);
    let (early, late) = lines.split_at(50_000);
    let mut a = consumer(&first, &broker, &topic, "rebalance-group", &[]);
    let a_log = collect_log(&mut a);
    let deadline = Instant::now() + Duration::from_secs(180);
    wait_for(&a_log, "partition assigned", deadline);
    let mut b = consumer(&second, &broker, &topic, "rebalance-group", &[]);
    let b_log = collect_log(&mut b);
    // Once the second member has partitions, the group shares the topic.
    wait_for(&b_log, "partition assigned", deadline);
    produce(&broker, &topic, early);
    // Until a consumer has opened its log, it has stored nothing.
    let stored = |w: &Workspace| {
        if w.data().join("events").is_dir() {
            w.query_number("SELECT count(*) FROM events")
        } else {
            0
        }
    };
    while stored(&first) + stored(&second) < 50_000 {
        assert!(
            Instant::now() < deadline,
            "the first half was not stored in time"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let a_rows = stored(&first);
    assert!(
        a_rows > 0 && a_rows < 50_000,
        "both consumers should share the partitions (first has {a_rows})"
    );
    signal(&a, "-TERM");
    finish(a);
    produce(&broker, &topic, late);
    while stored(&first) + stored(&second) < 100_000 {
        assert!(
            Instant::now() < deadline,
            "the second half was not stored in time"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    signal(&b, "-TERM");
    finish(b);
    let mut all = event_ids(&first);
    all.extend(event_ids(&second));
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 100_000, "rows over both logs");
    assert_eq!(distinct.len(), 100_000, "distinct events over both logs");
}

#[test]
fn poison_messages_become_dead_letters_with_their_coordinates() {
    let broker = broker();
    let workspace = Workspace::new();
    let topic = fresh_topic("poison");
    create_topic(&broker, &topic, 1).unwrap();
    let good = demo_events(&workspace, 4);
    let messages = vec![
        good[0].clone(),
        "this is not json".to_owned(),
        good[1].clone(),
        r#"{"class_uid": 3002, "time": "yesterday"}"#.to_owned(),
        good[2].clone(),
        format!("{}\n{}", good[3], "[broken"),
    ];
    produce(&broker, &topic, &messages);
    let summary = finish(consumer(
        &workspace,
        &broker,
        &topic,
        "poison-group",
        &["--until-caught-up"],
    ));
    assert!(summary.contains("dead letters"), "{summary}");
    assert!(
        summary.contains(&format!("caught up on {topic}/0 ")),
        "{summary}"
    );
    assert_eq!(workspace.query_number("SELECT count(*) FROM events"), 4);
    let letters =
        workspace.query_csv("SELECT origin, line, reason FROM dead_letters ORDER BY origin, line");
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert!(
        letters[0].starts_with(&format!("kafka:{topic}/0@1,1,")),
        "{letters:?}"
    );
    assert!(
        letters[1].starts_with(&format!("kafka:{topic}/0@3,1,")),
        "{letters:?}"
    );
    assert!(
        letters[2].starts_with(&format!("kafka:{topic}/0@5,2,")),
        "{letters:?}"
    );
    // The log's position covers the poison messages: nothing is read
    // again, even by a group that never committed anything.
    let again = finish(consumer(
        &workspace,
        &broker,
        &topic,
        "another-group",
        &["--until-caught-up"],
    ));
    assert!(again.contains("read 0 messages"), "{again}");
    assert_eq!(
        workspace.query_number("SELECT count(*) FROM dead_letters"),
        3
    );
}

#[test]
fn helpful_kafka_errors() {
    let broker = broker();
    let workspace = Workspace::new();
    let missing = workspace.run(&[
        "ingest",
        "kafka",
        "--brokers",
        &broker,
        "--topic",
        "no-such-topic-here=okta",
    ]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
    let unbound = workspace.run(&["ingest", "kafka", "--brokers", &broker, "--topic", "events"]);
    assert_ne!(unbound.code, 0);
    assert!(
        unbound.stderr.contains("--topic events=SOURCE"),
        "{}",
        unbound.stderr
    );
    let forced = workspace.run(&[
        "ingest",
        "kafka",
        "--brokers",
        &broker,
        "--topic",
        "okta",
        "-X",
        "enable.auto.commit=true",
    ]);
    assert_ne!(forced.code, 0);
    assert!(forced.stderr.contains("not allowed"), "{}", forced.stderr);
}

#[test]
fn serve_consumes_kafka_beside_the_api_with_offsets_and_lag_in_metrics() {
    let broker = broker();
    let workspace = Workspace::new();
    let topic = fresh_topic("serve");
    create_topic(&broker, &topic, 2).unwrap();
    let lines = demo_events(&workspace, 500);
    produce(&broker, &topic, &lines);
    let binding = format!("{topic}=ocsf");
    let server = Server::start_with_env(
        &workspace,
        "[kafka.options]\n\"session.timeout.ms\" = \"6000\"\n",
        &[
            ("AUTHTRAIL_KAFKA_BROKERS", broker.as_str()),
            ("AUTHTRAIL_KAFKA_TOPICS", binding.as_str()),
            ("AUTHTRAIL_KAFKA_GROUP", "serve-group"),
        ],
    );
    let committed = |metrics: &str| -> i64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("authtrail_kafka_committed_offset{"))
            .filter(|l| l.contains(&format!("topic=\"{topic}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let metrics = loop {
        let metrics = reqwest::blocking::get(server.url("/metrics"))
            .unwrap()
            .text()
            .unwrap();
        if metrics.contains("authtrail_kafka_events_stored_total 500") && committed(&metrics) == 500
        {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "not consumed in time:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        metrics.contains("authtrail_kafka_messages_total 500"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE authtrail_kafka_lag_messages gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "authtrail_kafka_lag_messages{{topic=\"{topic}\",partition=\"0\"}}"
        )),
        "{metrics}"
    );
    assert_eq!(server.stop(), 0);
    assert_eq!(
        workspace.query_number("SELECT count(*) FROM events WHERE source = 'ocsf'"),
        500
    );
}
