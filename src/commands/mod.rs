//! One module per subcommand; each turns parsed arguments into calls on the
//! library crates and prints what a person needs to see.

mod bench;
mod bench_http;
mod bench_kafka;
mod bench_rules;
mod demo;
mod ingest;
mod kafka;
mod query;
mod rules;
mod serve;
mod verify;

use std::process::ExitCode;

use crate::cli::{BenchCommand, Cli, Command, IngestCommand, RulesCommand};

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ingest(IngestCommand::File(args)) => ingest::file(args),
        Command::Ingest(IngestCommand::Kafka(args)) => kafka::ingest(args),
        Command::Query(args) => query::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Rules(RulesCommand::List(args)) => rules::list(args),
        Command::Rules(RulesCommand::Check(args)) => rules::check(args),
        Command::Rules(RulesCommand::Run(args)) => rules::run(args),
        Command::Rules(RulesCommand::Test(args)) => rules::test(args),
        Command::Rules(RulesCommand::Report(args)) => rules::report(args),
        Command::Findings(args) => rules::findings(args),
        Command::Serve(args) => serve::run(args),
        Command::Token(args) => serve::token(args),
        Command::Bench(BenchCommand::Ingest(args)) => bench::ingest(args),
        Command::Bench(BenchCommand::Http(args)) => bench_http::run(args),
        Command::Bench(BenchCommand::Kafka(args)) => bench_kafka::run(args),
        Command::Bench(BenchCommand::Rules(args)) => bench_rules::run(args),
    }
}

/// The adapters' settings from the shared flags (`--syslog-year`,
/// `--mapping`).
pub fn adapter_options(
    syslog_year: Option<i32>,
    mapping: Option<&std::path::Path>,
) -> anyhow::Result<authtrail_ingest::adapters::AdapterOptions> {
    Ok(authtrail_ingest::adapters::AdapterOptions {
        syslog_year,
        generic_mapping: mapping.map(load_mapping).transpose()?,
        ..Default::default()
    })
}

/// Reads and checks a `generic` field-mapping file.
pub fn load_mapping(
    path: &std::path::Path,
) -> anyhow::Result<authtrail_ingest::adapters::GenericMapping> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading mapping file {}", path.display()))?;
    authtrail_ingest::adapters::GenericMapping::from_toml(&text)
        .map_err(|err| anyhow::anyhow!("mapping file {}: {err}", path.display()))
}

/// Formats a count with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub fn progress_bar(total: Option<u64>, template: &str) -> indicatif::ProgressBar {
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
