//! `authtrail bench http`: the webhook-ingest benchmark. Starts `authtrail
//! serve` as a child process on a fresh log, and from this process (the
//! load generator, over loopback, on keep-alive HTTP/1.1 connections) posts
//! demo OCSF events: NDJSON batches, then one event per request over many
//! keep-alive connections. Each phase is run again against nginx
//! answering every request at once (the baseline: what the machine's
//! loopback HTTP costs with no work behind it), and the ratio reported.
//!
//! Reports events/s (durable for authtrail), request latency percentiles,
//! the CPU time per event of the server and of the load generator, and the
//! server's peak memory (read from `/proc`, so on Linux only); with
//! `--runs`, every run and the medians.

mod load;
mod servers;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use authtrail_ingest::demo::{DemoConfig, DemoReader};

use self::load::{Answers, Load, percentile};
use self::servers::{Nginx, ServerProcess};
use super::thousands;
use crate::cli::{BenchAuth, BenchHttpArgs};

fn demo_lines(users: usize, days: u32) -> anyhow::Result<Vec<String>> {
    let mut reader = DemoReader::new(DemoConfig::new(
        users,
        days,
        7,
        Some("2026-10-01".parse().context("date")?),
    ));
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .context("generating demo events")?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// How a report row names the credential.
fn auth_label(auth: BenchAuth) -> &'static str {
    match auth {
        BenchAuth::Hmac => "HMAC-signed",
        BenchAuth::Jwt => "bearer JWT",
    }
}

/// One kind of load: its request bodies and how it is reported.
struct Phase {
    /// How a report row names it, e.g. "NDJSON batches of 1000 events, 16
    /// connections, HMAC-signed".
    label: String,
    /// How the ratio and median lines name it.
    short: &'static str,
    bodies: Vec<String>,
    connections: usize,
    /// Whether request latencies are reported (single events).
    latencies: bool,
}

/// One phase's figures over the runs.
#[derive(Default)]
struct PhaseRuns {
    /// authtrail's durable events/s.
    rates: Vec<f64>,
    /// authtrail's p99 request latency.
    p99s: Vec<Duration>,
    /// authtrail's events/s over nginx's, each from runs one after the
    /// other.
    ratios: Vec<f64>,
}

/// Prints one line of the report at once, so that a long run shows its
/// figures as they come.
#[allow(clippy::print_stdout)]
fn report(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// A report row's cells after the phase's name.
fn row_cells(phase: &Phase, load: &Load, events: u64, what: &str, usage: &str) -> String {
    let mut cells = format!(
        "{} events | {:.2} s | {} events/s {what} |",
        thousands(events),
        load.seconds,
        thousands((events as f64 / load.seconds) as u64),
    );
    if phase.latencies {
        cells.push_str(&format!(
            " p50 {:.2} ms | p99 {:.2} ms |",
            percentile(&load.latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&load.latencies, 0.99).as_secs_f64() * 1000.0,
        ));
    }
    format!("{cells} {usage} |")
}

/// Runs `phase` once against `server` and reports its row; returns the
/// load.
fn run_phase(
    runtime: &tokio::runtime::Runtime,
    server: &ServerProcess,
    phase: &Phase,
    answers: Answers,
) -> anyhow::Result<Load> {
    let url = format!("{}/v1/ingest/ocsf", server.base);
    let cpu_before = server.cpu_seconds();
    let load = runtime.block_on(load::load(
        &url,
        &server.credential,
        &phase.bodies,
        phase.connections,
        answers,
    ))?;
    let (events, what) = match answers {
        Answers::Receipts => (load.stored, "durable"),
        Answers::Any => (load.answered, "answered"),
    };
    let usage = server.usage_cells(cpu_before, events, load.generator_cpu_seconds);
    let cells = row_cells(phase, &load, events, what, &usage);
    match answers {
        Answers::Receipts => report(&format!("| {} | {cells}", phase.label)),
        Answers::Any => report(&format!(
            "| {} (baseline, stores nothing): {} | {cells}",
            server.name, phase.label
        )),
    }
    Ok(load)
}

/// The median of `values` (0 when there are none).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

pub fn run(args: BenchHttpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)?;
    let exe = match &args.server {
        Some(server) => server.clone(),
        None => std::env::current_exe().context("locating the authtrail binary")?,
    };
    let nginx = if args.no_nginx {
        None
    } else {
        Some(Nginx::locate()?)
    };
    eprintln!("generating demo events ...");
    let lines = demo_lines(args.users, args.days)?;
    let auth = auth_label(args.auth);
    let phases = [
        Phase {
            label: format!(
                "NDJSON batches of {} events, {} connections, {auth}",
                args.batch, args.batch_connections
            ),
            short: "NDJSON batches",
            bodies: lines
                .chunks(args.batch.max(1))
                .map(|chunk| chunk.join("\n") + "\n")
                .collect(),
            connections: args.batch_connections,
            latencies: false,
        },
        Phase {
            label: format!(
                "1 event per POST, {} keep-alive connections, {auth}",
                args.single_connections
            ),
            short: "single POSTs",
            bodies: lines
                .iter()
                .take(args.single_requests)
                .map(|line| format!("{line}\n"))
                .collect(),
            connections: args.single_connections,
            latencies: true,
        },
    ];
    drop(lines);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let runs = args.runs.max(1);
    let mut figures: Vec<PhaseRuns> = phases.iter().map(|_| PhaseRuns::default()).collect();
    for run in 1..=runs {
        if runs > 1 {
            eprintln!("run {run} of {runs} ...");
        }
        let mut ratios = Vec::new();
        for (phase, figures) in phases.iter().zip(&mut figures) {
            let server = servers::start_authtrail(&exe, &args.dir, args.auth)?;
            let measured = run_phase(&runtime, &server, phase, Answers::Receipts)?;
            let credential = server.credential.clone();
            // Stopping the server seals what it staged: not part of the phase.
            drop(server);
            if measured.stored != measured.answered {
                bail!(
                    "{}: authtrail stored {} of the {} events it acknowledged",
                    phase.short,
                    measured.stored,
                    measured.answered
                );
            }
            figures.rates.push(measured.rate());
            figures.p99s.push(percentile(&measured.latencies, 0.99));
            if let Some(nginx) = &nginx {
                let server = nginx.start(&args.dir, credential)?;
                let baseline = run_phase(&runtime, &server, phase, Answers::Any)?;
                drop(server);
                let ratio = measured.rate() / baseline.rate();
                figures.ratios.push(ratio);
                ratios.push(format!("{} {ratio:.2}x", phase.short));
            }
        }
        if !ratios.is_empty() {
            report(&format!("authtrail / nginx: {}", ratios.join(", ")));
        }
    }
    if runs > 1 {
        let parts: Vec<String> = phases
            .iter()
            .zip(&figures)
            .map(|(phase, figures)| {
                let mut part = format!(
                    "{} {} events/s",
                    phase.short,
                    thousands(median(&figures.rates) as u64)
                );
                if !figures.ratios.is_empty() {
                    part.push_str(&format!(" ({:.2}x nginx)", median(&figures.ratios)));
                }
                if phase.latencies {
                    let p99s: Vec<f64> = figures.p99s.iter().map(Duration::as_secs_f64).collect();
                    part.push_str(&format!(", p99 {:.2} ms", median(&p99s) * 1000.0));
                }
                part
            })
            .collect();
        report(&format!("median of {runs} runs: {}", parts.join("; ")));
    }
    Ok(ExitCode::SUCCESS)
}
