//! `authtrail ingest kafka`: the Kafka consumer over the event log, with a
//! progress line (rates and lag) and a closing summary.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;

use authtrail_ingest::kafka::{self, KafkaReport, KafkaSettings, KafkaStats};
use authtrail_ingest::staging::{Stager, StagingOptions};
use authtrail_ingest::store::{EventLog, LogOptions};

use super::{progress_bar, thousands};
use crate::cli::IngestKafkaArgs;

pub fn ingest(args: IngestKafkaArgs) -> anyhow::Result<ExitCode> {
    let adapter_options = super::adapter_options(args.syslog_year, args.mapping.as_deref())?;
    let mut settings = KafkaSettings::new(args.brokers, args.group, args.topics);
    settings.client_options = args.options.into_iter().collect();
    settings.until_caught_up = args.until_caught_up;
    settings.batch_messages = args.batch_messages.max(1);
    settings.linger = Duration::from_millis(args.linger_ms);
    // Refuse bad options before touching the log.
    settings.client_config()?;

    let log = EventLog::open(&args.data.data, LogOptions::default())?;
    let stager = Arc::new(Stager::start(log, StagingOptions::default())?);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("watching for SIGINT/SIGTERM")?;
    }
    let stats = Arc::new(KafkaStats::default());
    let started = Instant::now();
    let consumer = {
        let stager = Arc::clone(&stager);
        let stats = Arc::clone(&stats);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("authtrail-kafka".into())
            .spawn(move || kafka::run(&settings, stager, &adapter_options, &stop, stats))
            .context("starting the consumer")?
    };
    let bar = progress_bar(None, "{spinner} [{elapsed_precise}] {msg}");
    let mut last = (Instant::now(), 0u64);
    while !consumer.is_finished() {
        std::thread::sleep(Duration::from_millis(250));
        let messages = KafkaStats::get(&stats.messages);
        let rate = (messages - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        if last.0.elapsed() >= Duration::from_secs(1) {
            last = (Instant::now(), messages);
        }
        bar.set_message(progress_line(&stats, rate));
        bar.tick();
    }
    bar.finish_and_clear();
    let result = consumer.join().map_err(|_| {
        anyhow::anyhow!("the consumer thread panicked; nothing uncommitted was acknowledged")
    })?;
    eprintln!("sealing staged events");
    let sealed = Arc::try_unwrap(stager)
        .map_err(|_| anyhow::anyhow!("the event log writer is still in use"))?;
    sealed.shutdown()?;
    let report = result?;
    print_summary(&report, started.elapsed().as_secs_f64())?;
    Ok(ExitCode::SUCCESS)
}

fn progress_line(stats: &KafkaStats, rate: f64) -> String {
    format!(
        "{} messages ({} msg/s), {} stored, {} duplicates, {} dead letters, lag {}",
        thousands(KafkaStats::get(&stats.messages)),
        thousands(rate as u64),
        thousands(KafkaStats::get(&stats.stored)),
        thousands(KafkaStats::get(&stats.duplicates)),
        thousands(KafkaStats::get(&stats.dead_letters)),
        thousands(stats.total_lag().max(0) as u64),
    )
}

fn print_summary(report: &KafkaReport, seconds: f64) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "read {} messages in {:.2} s ({} messages/s)",
        thousands(report.messages),
        seconds,
        thousands((report.messages as f64 / seconds.max(1e-9)) as u64)
    )?;
    writeln!(
        out,
        "  stored          {:>12}  new events",
        thousands(report.stored)
    )?;
    writeln!(
        out,
        "  duplicates      {:>12}  already stored, skipped",
        thousands(report.duplicates)
    )?;
    writeln!(
        out,
        "  already stored  {:>12}  messages below the log's position, skipped unread",
        thousands(report.already_stored)
    )?;
    writeln!(
        out,
        "  dead letters    {:>12}  rejected, kept in dead_letters with topic/partition@offset",
        thousands(report.dead_letters)
    )?;
    writeln!(
        out,
        "  skipped         {:>12}  valid but not authentication events",
        thousands(report.skipped)
    )?;
    if !report.caught_up_on.is_empty() {
        let held: Vec<String> = report
            .caught_up_on
            .iter()
            .map(|(topic, partition)| format!("{topic}/{partition}"))
            .collect();
        writeln!(
            out,
            "caught up on {} (partitions not named belong to other members of the group; \
             a member that was killed keeps its partitions until its session times out)",
            held.join(", ")
        )?;
    }
    Ok(())
}
