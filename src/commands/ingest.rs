//! `authtrail ingest file`: streams files or standard input through a source
//! adapter into the event log, with a progress bar and a closing summary.

use std::fs::File;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;

use authtrail_ingest::adapters;
use authtrail_ingest::pipeline::{
    CountingReader, FileIngest, IngestOptions, IngestReport, Progress,
};
use authtrail_ingest::records;
use authtrail_ingest::store::{EventLog, LogOptions};

use super::{progress_bar, thousands};
use crate::cli::IngestFileArgs;

pub fn file(args: IngestFileArgs) -> anyhow::Result<ExitCode> {
    let options = super::adapter_options(args.syslog_year, args.mapping.as_deref())?;
    let adapter = adapters::build(&args.source, &options)?;
    for path in &args.paths {
        if path != Path::new("-") && !path.is_file() {
            anyhow::bail!("input {} does not exist or is not a file", path.display());
        }
    }
    let mut log_options = LogOptions::default();
    log_options.file.zstd_level = args.zstd_level;
    let mut log = EventLog::open(&args.data.data, log_options)?;
    let total: u64 = args
        .paths
        .iter()
        .filter(|p| *p != Path::new("-"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let reads_stdin = args.paths.iter().any(|p| p == Path::new("-"));
    let bar = progress_bar(
        (!reads_stdin).then_some(total),
        "{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
    );
    let started = Instant::now();
    let ingest_options = IngestOptions {
        commit_events: args.commit_events.max(1),
        ..IngestOptions::default()
    };
    let stored = AtomicU64::new(0);
    let mut ingest = FileIngest::new(adapter.as_ref(), &mut log, ingest_options, &stored);
    // Bytes of the inputs already read, so the bar spans all of them.
    let mut read_before = 0u64;
    for path in &args.paths {
        let counter = Arc::new(AtomicU64::new(0));
        let (mut input, origin): (Box<dyn BufRead>, String) = if path == Path::new("-") {
            let stdin = CountingReader::new(std::io::stdin(), counter.clone());
            (
                records::decompressing(stdin).context("reading standard input")?,
                "stdin".to_owned(),
            )
        } else {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let counted = CountingReader::new(file, counter.clone());
            (
                records::decompressing(counted)
                    .with_context(|| format!("reading {}", path.display()))?,
                path.display().to_string(),
            )
        };
        let base = read_before;
        ingest.ingest(input.as_mut(), &origin, &mut |progress: Progress| {
            bar.set_position(base + counter.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} parsed, {} stored",
                thousands(progress.records_parsed),
                thousands(progress.stored)
            ));
        })?;
        read_before += counter.load(Ordering::Relaxed);
    }
    let report = ingest.finish()?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    print_summary(&report, args.paths.len(), elapsed.as_secs_f64())?;
    if args.strict && report.committed.dead_letters + report.rejections.len() as u64 > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(report: &IngestReport, inputs: usize, seconds: f64) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let c = &report.committed;
    let rate = if seconds > 0.0 {
        report.records as f64 / seconds
    } else {
        0.0
    };
    writeln!(
        out,
        "read {} records from {} input{} in {:.2} s ({} records/s)",
        thousands(report.records),
        inputs,
        if inputs == 1 { "" } else { "s" },
        seconds,
        thousands(rate as u64)
    )?;
    writeln!(
        out,
        "  stored        {:>12}  new events in {} files",
        thousands(c.stored),
        c.files
    )?;
    writeln!(
        out,
        "  duplicates    {:>12}  already stored, skipped",
        thousands(c.duplicates)
    )?;
    writeln!(
        out,
        "  dead letters  {:>12}  rejected, kept in dead_letters",
        thousands(c.dead_letters)
    )?;
    let skipped: u64 = report.skipped.values().sum();
    writeln!(
        out,
        "  skipped       {:>12}  valid but not authentication events",
        thousands(skipped)
    )?;
    for (kind, count) in report.skipped.iter().take(10) {
        writeln!(out, "      {:>8}  {kind}", thousands(*count))?;
    }
    if !report.rejections.is_empty() {
        writeln!(out, "rejected records (line: reason):")?;
        for rejection in report.rejections.iter().take(20) {
            writeln!(
                out,
                "  {}:{}: {}",
                rejection.origin, rejection.line, rejection.reason
            )?;
        }
        let hidden = c.dead_letters.saturating_sub(20);
        if hidden > 0 {
            writeln!(
                out,
                "  … and {} more: authtrail query \"SELECT origin, line, reason FROM dead_letters ORDER BY received_at DESC\"",
                thousands(hidden)
            )?;
        }
    }
    if std::io::stdout().is_terminal() && c.stored > 0 {
        writeln!(
            out,
            "next: authtrail query \"SELECT outcome, count(*) FROM events GROUP BY outcome\""
        )?;
    }
    Ok(())
}
