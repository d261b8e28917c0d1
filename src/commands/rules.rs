//! `authtrail rules list|check|run|test` and `authtrail findings`: the
//! detection rules from the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use authtrail_ingest::adapters;
use authtrail_ingest::pipeline::{FileIngest, IngestOptions};
use authtrail_ingest::records::decompressing;
use authtrail_ingest::store::{EventLog, LogOptions};
use authtrail_query::{OutputFormat, QueryLimits, ReadOnlySession, write_stream};
use authtrail_rules::{BatchReport, Rule, TimeRange, engine, loader};

use super::{adapter_options, progress_bar, thousands};
use crate::cli::{
    FindingsArgs, Format, RulesCheckArgs, RulesListArgs, RulesReportArgs, RulesRunArgs,
    RulesTestArgs,
};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")
}

/// The built-in pack plus `dir`'s rules, or every reason they do not load.
pub fn load_rules(dir: Option<&Path>) -> anyhow::Result<Vec<Rule>> {
    loader::load(dir).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!(
            "{} rule file(s) do not load:\n{}",
            errors.len(),
            list.join("\n")
        )
    })
}

pub fn list(args: RulesListArgs) -> anyhow::Result<ExitCode> {
    let rules = load_rules(args.rules.dir.as_deref())?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<32} {:<10} {:<9} {:<28} title",
        "id", "kind", "severity", "tags"
    )?;
    for rule in &rules {
        writeln!(
            out,
            "{:<32} {:<10} {:<9} {:<28} {}",
            rule.id,
            rule.kind.name(),
            rule.severity.as_str(),
            rule.tags.join(","),
            rule.title
        )?;
    }
    writeln!(out, "{} rules", rules.len())?;
    Ok(ExitCode::SUCCESS)
}

pub fn check(args: RulesCheckArgs) -> anyhow::Result<ExitCode> {
    let dir = args.path.or(args.rules.dir);
    let rules = match loader::load(dir.as_deref()) {
        Ok(rules) => rules,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{} rule file(s) do not load", errors.len());
            return Ok(ExitCode::from(2));
        }
    };
    // Expressions are planned against the events table: the log's if there
    // is one, else an empty one of the same schema.
    let empty = tempfile::tempdir().context("creating a temporary directory")?;
    let root: &Path = if args.data.data.is_dir() {
        &args.data.data
    } else {
        empty.path()
    };
    let errors = runtime()?.block_on(authtrail_rules::check(root, &rules));
    for error in &errors {
        eprintln!("{error}");
    }
    if !errors.is_empty() {
        eprintln!("{} of {} rules have errors", errors.len(), rules.len());
        return Ok(ExitCode::from(2));
    }
    writeln!(
        std::io::stdout().lock(),
        "{} rules are valid ({} built in{})",
        rules.len(),
        loader::BUILTIN.len(),
        dir.map(|d| format!(", plus {}", d.display()))
            .unwrap_or_default()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `rules` over `range` of the log `log` writes, with a progress bar,
/// and stores their findings.
pub fn run_rules(
    log: &mut EventLog,
    rules: &[Rule],
    range: TimeRange,
) -> anyhow::Result<BatchReport> {
    let root = log.root().to_owned();
    let bar = progress_bar(
        Some(rules.len() as u64),
        "{bar:30} {pos}/{len} rules [{elapsed_precise}] {msg}",
    );
    let report = runtime()?.block_on(authtrail_rules::run_batch(
        &root,
        rules,
        range,
        log,
        chrono::Utc::now(),
        |done, outcome| {
            bar.set_position(done as u64);
            bar.set_message(outcome.rule_id.clone());
        },
    ));
    bar.finish_and_clear();
    Ok(report?)
}

/// Prints what a batch run found, rule by rule.
pub fn print_report(out: &mut dyn Write, report: &BatchReport) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<32} {:>8} {:>12} {:>9}",
        "rule", "findings", "events read", "ms"
    )?;
    for outcome in &report.outcomes {
        let findings = match &outcome.result {
            Ok(f) => f.len().to_string(),
            Err(_) => "FAILED".to_owned(),
        };
        writeln!(
            out,
            "{:<32} {:>8} {:>12} {:>9}",
            outcome.rule_id,
            findings,
            thousands(outcome.events),
            outcome.elapsed.as_millis()
        )?;
    }
    for (rule, error) in report.failures() {
        writeln!(out, "rule {rule} failed: {error}")?;
    }
    let s = &report.stored;
    writeln!(
        out,
        "{} findings; stored {} new finding versions ({} already stored)",
        thousands(report.findings().count() as u64),
        thousands(s.stored),
        thousands(s.duplicates)
    )?;
    Ok(())
}

pub fn run(args: RulesRunArgs) -> anyhow::Result<ExitCode> {
    if !args.data.data.is_dir() {
        anyhow::bail!(
            "no event log at {}: store some events first (authtrail demo, or authtrail ingest file), or pass --data",
            args.data.data.display()
        );
    }
    let mut rules = load_rules(args.rules.dir.as_deref())?;
    if !args.only.is_empty() {
        for id in &args.only {
            if !rules.iter().any(|r| &r.id == id) {
                anyhow::bail!("no rule {id:?} (authtrail rules list shows them)");
            }
        }
        rules.retain(|r| args.only.contains(&r.id));
    }
    let mut log = EventLog::open(&args.data.data, LogOptions::default())?;
    let report = run_rules(
        &mut log,
        &rules,
        TimeRange {
            from: args.from,
            to: args.to,
        },
    )?;
    print_report(&mut std::io::stdout().lock(), &report)?;
    Ok(if report.failures().next().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The rule a `rules test` names: a file, or an id.
fn named_rule(name: &str, dir: Option<&Path>) -> anyhow::Result<Rule> {
    let path = PathBuf::from(name);
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(Rule::parse(&text, &path)?);
    }
    load_rules(dir)?
        .into_iter()
        .find(|r| r.id == name)
        .ok_or_else(|| {
            anyhow::anyhow!("no rule or rule file {name:?} (authtrail rules list shows them)")
        })
}

pub fn test(args: RulesTestArgs) -> anyhow::Result<ExitCode> {
    let rule = named_rule(&args.rule, args.rules.dir.as_deref())?;
    let options = adapter_options(args.syslog_year, args.mapping.as_deref())?;
    let adapter = adapters::build(&args.source, &options)?;
    let scratch = tempfile::tempdir().context("creating a temporary log")?;
    let mut log = EventLog::open(scratch.path(), LogOptions::default())?;
    let file = std::fs::File::open(&args.events)
        .with_context(|| format!("opening {}", args.events.display()))?;
    let mut input =
        decompressing(file).with_context(|| format!("reading {}", args.events.display()))?;
    let stored = std::sync::atomic::AtomicU64::new(0);
    let mut ingest = FileIngest::new(
        adapter.as_ref(),
        &mut log,
        IngestOptions::default(),
        &stored,
    );
    ingest.ingest(&mut input, &args.events.display().to_string(), &mut |_| {})?;
    let report = ingest.finish()?;
    let outcome = runtime()?.block_on(async {
        let session = ReadOnlySession::open(scratch.path(), QueryLimits::default()).await?;
        Ok::<_, anyhow::Error>(
            engine::evaluate(&session, &rule, TimeRange::ALL, chrono::Utc::now()).await,
        )
    })?;
    let findings = outcome.result?;
    let mut out = std::io::stdout().lock();
    for finding in &findings {
        serde_json::to_writer(&mut out, finding)?;
        writeln!(out)?;
    }
    eprintln!(
        "{}: {} findings from {} events ({} read by the rule); nothing stored",
        rule.id,
        findings.len(),
        thousands(report.committed.stored),
        thousands(outcome.events)
    );
    Ok(ExitCode::SUCCESS)
}

/// `'…'` with quotes doubled, for a SQL literal.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub fn findings(args: FindingsArgs) -> anyhow::Result<ExitCode> {
    if !args.data.data.is_dir() {
        anyhow::bail!(
            "no event log at {}: run authtrail demo, or authtrail rules run, first",
            args.data.data.display()
        );
    }
    let mut conditions = Vec::new();
    if let Some(rule) = &args.rule {
        conditions.push(format!("rule_id = {}", quoted(rule)));
    }
    if let Some(severity) = &args.severity {
        const ORDER: [&str; 5] = ["info", "low", "medium", "high", "critical"];
        let at = ORDER
            .iter()
            .position(|s| s == severity)
            .ok_or_else(|| anyhow::anyhow!("--severity must be one of {}", ORDER.join(", ")))?;
        let allowed: Vec<String> = ORDER[at..].iter().map(|s| quoted(s)).collect();
        conditions.push(format!("severity IN ({})", allowed.join(", ")));
    }
    if let Some(about) = &args.about {
        // `group_key` is `name=value` pairs joined by `, `: match a whole value.
        conditions.push(format!(
            "strpos(concat(group_key, ', '), {}) > 0",
            quoted(&format!("={about}, "))
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let all_columns = authtrail_schemas::arrow_schema::findings_schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            // CSV has no lists: join them with `,`, as the API does.
            datafusion::arrow::datatypes::DataType::List(_) => {
                format!("array_to_string({0}, ',') AS {0}", f.name())
            }
            _ => f.name().clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let columns = match args.format {
        Format::Table => "first_time, severity, rule_id, group_key, count, summary",
        Format::Csv => all_columns.as_str(),
        Format::Json | Format::Ndjson => "*",
    };
    let sql =
        format!("SELECT {columns} FROM findings {filter} ORDER BY first_time DESC, finding_id");
    let format = match args.format {
        Format::Table => OutputFormat::Table,
        Format::Csv => OutputFormat::Csv,
        Format::Json => OutputFormat::Json,
        Format::Ndjson => OutputFormat::Ndjson,
    };
    runtime()?.block_on(async {
        let session = ReadOnlySession::open(&args.data.data, QueryLimits::default()).await?;
        let stream = session.stream(&sql).await?;
        let mut stdout = std::io::BufWriter::new(std::io::stdout());
        write_stream(stream, format, &mut stdout).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The rows of a query, each as its columns' text.
async fn rows(session: &ReadOnlySession, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    let batches = session.plan(sql).await?.collect().await?;
    let mut out = Vec::new();
    for batch in batches {
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(
                columns
                    .iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        if c.is_valid(row) {
                            c.value(row).to_owned()
                        } else {
                            String::new()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

pub fn report(args: RulesReportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.truth)
        .with_context(|| format!("reading {}", args.truth.display()))?;
    let truth: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a ground truth file", args.truth.display()))?;
    let attacks = truth["attacks"].as_array().cloned().unwrap_or_default();
    let selectors: Vec<(String, String)> = attacks
        .iter()
        .filter_map(|a| {
            Some((
                a["kind"].as_str()?.to_owned(),
                a["selector"].as_str()?.to_owned(),
            ))
        })
        .collect();
    if selectors.is_empty() {
        anyhow::bail!(
            "{} lists no attacks with selectors (write it with authtrail demo --truth)",
            args.truth.display()
        );
    }
    let (per_kind, false_alarms, total) = runtime()?.block_on(async {
        let session = ReadOnlySession::open(&args.data.data, QueryLimits::default()).await?;
        // kind -> (injected, found, rules that found them)
        let mut per_kind: std::collections::BTreeMap<String, (u64, u64, std::collections::BTreeSet<String>)> =
            Default::default();
        for (kind, selector) in &selectors {
            let found = rows(
                &session,
                &format!(
                    "SELECT DISTINCT rule_id FROM findings WHERE array_has_any(evidence_ids, \
                     (SELECT array_agg(event_id) FROM events WHERE {selector}))"
                ),
            )
            .await?;
            let entry = per_kind.entry(kind.clone()).or_default();
            entry.0 += 1;
            if !found.is_empty() {
                entry.1 += 1;
            }
            entry.2.extend(found.into_iter().filter_map(|r| r.into_iter().next()));
        }
        let any_attack = selectors
            .iter()
            .map(|(_, s)| format!("({s})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let false_alarms = rows(
            &session,
            &format!(
                "SELECT rule_id, count(*) FROM findings WHERE NOT array_has_any(evidence_ids, \
                 (SELECT array_agg(event_id) FROM events WHERE {any_attack})) GROUP BY rule_id ORDER BY rule_id"
            ),
        )
        .await?;
        let total = rows(&session, "SELECT count(*) FROM findings").await?;
        Ok::<_, anyhow::Error>((per_kind, false_alarms, total))
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24} {:>8} {:>6} {:>7}  found by",
        "attack", "injected", "found", "missed"
    )?;
    let mut missed_any = false;
    for (kind, (injected, found, rules)) in &per_kind {
        missed_any |= found < injected;
        writeln!(
            out,
            "{kind:<24} {injected:>8} {found:>6} {:>7}  {}",
            injected - found,
            rules.iter().cloned().collect::<Vec<_>>().join(", ")
        )?;
    }
    let alarms: u64 = false_alarms
        .iter()
        .filter_map(|r| r.get(1)?.parse::<u64>().ok())
        .sum();
    writeln!(
        out,
        "{} findings in all; {alarms} on no injected attack (false alarms){}",
        total
            .first()
            .and_then(|r| r.first())
            .map_or("0", String::as_str),
        if alarms == 0 { "" } else { ":" }
    )?;
    for row in &false_alarms {
        writeln!(
            out,
            "  {:>6}  {}",
            row.get(1).map_or("", String::as_str),
            row[0]
        )?;
    }
    Ok(if missed_any || alarms > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
