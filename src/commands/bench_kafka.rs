//! `authtrail bench kafka`: demo events through a real broker into the
//! log, beside a bare consumer reading the same topic.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use authtrail_ingest::kafka::produce::{LineProducer, create_topic};

use super::bench::{children_peak_rss_kib, demo_file, parquet_bytes, parse_stored};
use super::thousands;
use crate::cli::BenchKafkaArgs;

pub fn run(args: BenchKafkaArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let input = demo_file(&args.dir, args.users, args.days)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let record = args.dir.join("kafka-topic.txt");
    let (topic, events, messages) = if args.reuse_topic {
        let text = std::fs::read_to_string(&record).with_context(|| {
            format!(
                "reading {} (run once without --reuse-topic)",
                record.display()
            )
        })?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [topic, events, messages] => (
                (*topic).to_owned(),
                events.parse().context("events in the topic record")?,
                messages.parse().context("messages in the topic record")?,
            ),
            _ => bail!("{} is not a topic record", record.display()),
        }
    } else {
        let topic = format!("authtrail-bench-{stamp}");
        let (events, messages) = produce(&args, &input, &topic)?;
        std::fs::write(&record, format!("{topic} {events} {messages}\n"))
            .with_context(|| format!("writing {}", record.display()))?;
        (topic, events, messages)
    };
    let brokers = args.brokers.clone();
    let log_dir = args.dir.join("kafka-log");
    if log_dir.exists() {
        std::fs::remove_dir_all(&log_dir)
            .with_context(|| format!("removing {}", log_dir.display()))?;
    }
    let exe = std::env::current_exe().context("locating the authtrail binary")?;
    let binding = format!("{topic}=ocsf");
    let started = Instant::now();
    let output = Command::new(&exe)
        .args([
            "ingest",
            "kafka",
            "--until-caught-up",
            "--brokers",
            &brokers,
        ])
        .args([
            "--group",
            &format!("bench-{stamp}"),
            "--topic",
            &binding,
            "--data",
        ])
        .arg(&log_dir)
        .stderr(Stdio::inherit())
        .output()
        .context("running authtrail ingest kafka")?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("authtrail ingest kafka failed:\n{summary}");
    }
    let stored = parse_stored(&summary)?;
    let peak_rss_mib = children_peak_rss_kib() as f64 / 1024.0;
    let disk = parquet_bytes(&log_dir.join("events"))?;
    let baseline = bare_consumer(&brokers, &topic, messages);

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "broker {brokers}, topic {topic} ({} events in {} messages)",
        thousands(events),
        thousands(messages),
    )?;
    writeln!(
        out,
        "| consumer | time (s) | events/s | peak RSS (MiB) | bytes on disk / event |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    writeln!(
        out,
        "| authtrail ingest kafka (durable Parquet) | {seconds:.2} | {} | {peak_rss_mib:.0} | {:.1} |",
        thousands((stored as f64 / seconds) as u64),
        disk as f64 / stored.max(1) as f64
    )?;
    match baseline {
        Ok(baseline_seconds) => {
            writeln!(
                out,
                "| bare consumer, reads only (confluent-kafka, librdkafka) | {baseline_seconds:.2} | {} | | |",
                thousands((events as f64 / baseline_seconds) as u64)
            )?;
            writeln!(
                out,
                "authtrail / bare consumer speed ratio: {:.2}x",
                baseline_seconds / seconds
            )?;
        }
        Err(err) => writeln!(out, "bare consumer baseline not measured: {err:#}")?,
    }
    writeln!(
        out,
        "stored {} of {} events{}",
        thousands(stored),
        thousands(events),
        if stored == events {
            " (all)"
        } else {
            " (MISSING SOME)"
        }
    )?;
    Ok(if stored == events {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Produces the demo file to a new topic, `events_per_message` lines a
/// message. Returns events and messages.
fn produce(
    args: &BenchKafkaArgs,
    input: &std::path::Path,
    topic: &str,
) -> anyhow::Result<(u64, u64)> {
    let brokers = &args.brokers;
    create_topic(brokers, topic, args.partitions.max(1))?;
    eprintln!("producing {} to {topic} ...", input.display());
    let producer = LineProducer::new(brokers, topic)?;
    let file =
        std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let per_message = args.events_per_message.max(1);
    let started = Instant::now();
    let (mut events, mut messages) = (0u64, 0u64);
    let mut payload = Vec::new();
    let mut in_payload = 0;
    for line in BufReader::new(file).lines() {
        let line = line.context("reading the demo file")?;
        payload.extend_from_slice(line.as_bytes());
        payload.push(b'\n');
        in_payload += 1;
        events += 1;
        if in_payload == per_message {
            producer.send(messages.to_string().as_bytes(), &payload)?;
            messages += 1;
            payload.clear();
            in_payload = 0;
        }
    }
    if in_payload > 0 {
        producer.send(messages.to_string().as_bytes(), &payload)?;
        messages += 1;
    }
    producer.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} events in {} messages in {seconds:.1} s ({} events/s)",
        thousands(events),
        thousands(messages),
        thousands((events as f64 / seconds) as u64)
    );
    Ok((events, messages))
}

/// Seconds a bare consumer (Python's confluent-kafka, on librdkafka) takes
/// to join a fresh group and read `messages` messages of `topic`, doing
/// nothing with them: what the broker and client cost on their own.
fn bare_consumer(brokers: &str, topic: &str, messages: u64) -> anyhow::Result<f64> {
    const SCRIPT: &str = r#"
import sys, time
from confluent_kafka import Consumer
brokers, topic, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.time()
c = Consumer({"bootstrap.servers": brokers, "group.id": "bare-%d" % time.time_ns(),
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
got = 0
while got < expected:
    batch = c.consume(10000, 60.0)
    if not batch:
        sys.exit("no message for 60 s")
    got += sum(1 for m in batch if m.error() is None)
print(time.time() - started)
"#;
    let output = Command::new("python3")
        .args(["-c", SCRIPT, brokers, topic, &messages.to_string()])
        .output()
        .context("running python3 (python3 -m pip install confluent-kafka)")?;
    if !output.status.success() {
        bail!(
            "{} (needs python3 -m pip install confluent-kafka)",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("reading the baseline's time")
}
