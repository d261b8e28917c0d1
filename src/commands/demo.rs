//! `authtrail demo`: generates a realistic month of logins with injected
//! attacks (the IdP's log and an SSH bastion's), and stores it (or writes
//! it as OCSF NDJSON and syslog text), plus the ground truth of what was
//! injected.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::Context;

use authtrail_ingest::adapters::{self, AdapterOptions};
use authtrail_ingest::demo::sshd::SshdDemo;
use authtrail_ingest::demo::{DemoConfig, DemoReader};
use authtrail_ingest::pipeline::{FileIngest, IngestOptions, Progress};
use authtrail_ingest::store::{EventLog, LogOptions};
use authtrail_schemas::CommitSummary;

use super::{progress_bar, thousands};
use crate::cli::DemoArgs;

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.users == 0 || args.days == 0 {
        anyhow::bail!("--users and --days must be at least 1");
    }
    let config = DemoConfig::new(args.users, args.days, args.seed, args.start);
    let first = config.start;
    let last = first + chrono::Duration::days(i64::from(args.days) - 1);
    let bar = progress_bar(None, "{spinner} generating [{elapsed_precise}] {msg}");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let demo = DemoReader::new(config.clone());
    let bastion = SshdDemo::generate(&config, &demo.logins());
    let mut reader = BufReader::with_capacity(1 << 20, demo);
    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.ndjson {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let mut buffer = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            let n = reader.read(&mut buffer).context("generating events")?;
            if n == 0 {
                break;
            }
            writer
                .write_all(&buffer[..n])
                .with_context(|| format!("writing {}", path.display()))?;
            written += n as u64;
            bar.set_message(format!("{} MiB", written >> 20));
        }
        writer
            .flush()
            .with_context(|| format!("writing {}", path.display()))?;
        bar.finish_and_clear();
        writeln!(
            out,
            "wrote {} OCSF events ({} users, {first} to {last}) to {}",
            thousands(reader.get_ref().events()),
            args.users,
            path.display()
        )?;
        if let Some(path) = &args.sshd_log {
            std::fs::write(path, bastion.text())
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(
                out,
                "wrote the SSH bastion's log ({} events) to {}",
                thousands(bastion.events()),
                path.display()
            )?;
        }
    } else {
        let mut log = EventLog::open(&args.data.data, LogOptions::default())?;
        let stored = std::sync::atomic::AtomicU64::new(0);
        let mut committed = CommitSummary::default();
        // The IdP's log, then the bastion's, into the same event log.
        let mut bastion_log = bastion.text();
        let inputs: [(&str, &mut dyn std::io::BufRead, &str); 2] = [
            ("ocsf", &mut reader, "demo"),
            ("sshd", &mut bastion_log, "demo-sshd"),
        ];
        for (source, input, origin) in inputs {
            let adapter = adapters::build(source, &AdapterOptions::default())?;
            let mut ingest = FileIngest::new(
                adapter.as_ref(),
                &mut log,
                IngestOptions::default(),
                &stored,
            );
            ingest.ingest(input, origin, &mut |progress: Progress| {
                bar.set_message(format!("{} events stored", thousands(progress.stored)));
            })?;
            committed.absorb(&ingest.finish()?.committed);
        }
        bar.finish_and_clear();
        let c = &committed;
        writeln!(
            out,
            "stored {} events ({} users, {first} to {last}, and the SSH bastion) in {}{}",
            thousands(c.stored),
            args.users,
            args.data.data.display(),
            if c.duplicates > 0 {
                format!("; {} were already there", thousands(c.duplicates))
            } else {
                String::new()
            }
        )?;
        if c.dead_letters > 0 {
            anyhow::bail!(
                "the demo produced {} dead letters; this is a bug",
                c.dead_letters
            );
        }
        // Detection: the built-in pack over what was just stored.
        let rules = super::rules::load_rules(None)?;
        let report = super::rules::run_rules(&mut log, &rules, authtrail_rules::TimeRange::ALL)?;
        let mut by_rule: Vec<(&str, usize)> = report
            .outcomes
            .iter()
            .filter_map(|o| Some((o.rule_id.as_str(), o.result.as_ref().ok()?.len())))
            .filter(|(_, n)| *n > 0)
            .collect();
        by_rule.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        writeln!(
            out,
            "the built-in rules raised {} findings ({} new):",
            thousands(report.findings().count() as u64),
            thousands(report.stored.stored)
        )?;
        for (rule, n) in by_rule {
            writeln!(out, "  {n:>5}  {rule}")?;
        }
        for (rule, error) in report.failures() {
            writeln!(out, "  rule {rule} failed: {error}")?;
        }
    }
    // The bastion is part of the demo unless only the OCSF file was asked for.
    let with_bastion = args.ndjson.is_none() || args.sshd_log.is_some();
    let mut attacks = reader.get_ref().attacks().to_vec();
    let mut events = reader.get_ref().events();
    if with_bastion {
        attacks.extend_from_slice(bastion.attacks());
        events += bastion.events();
    }
    attacks.sort_by_key(|a| a.start);
    writeln!(out, "injected {} attacks:", attacks.len())?;
    for attack in &attacks {
        writeln!(
            out,
            "  {} {:<22} {}",
            attack.start.format("%Y-%m-%d %H:%M"),
            attack.kind,
            attack.description
        )?;
    }
    if let Some(path) = &args.truth {
        let truth = serde_json::json!({
            "seed": args.seed,
            "users": args.users,
            "start": first,
            "days": args.days,
            "events": events,
            "attacks": attacks,
        });
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(file), &truth)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "ground truth written to {}", path.display())?;
    }
    if args.ndjson.is_none() {
        writeln!(
            out,
            "next: authtrail findings, or authtrail query \"SELECT date, count(*) AS failed FROM events WHERE action = 'login' AND outcome = 'failure' GROUP BY date ORDER BY date\""
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
