//! The command line, as plain clap structs. Every option can also be set
//! from an `AUTHTRAIL_*` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// authtrail: an immutable, verifiable event log of every login, with SQL on
/// top.
///
/// Events from identity providers, directories and servers (Okta, Auth0,
/// Keycloak, Harness, GitHub, OCSF, ECS, sshd, Windows, or any JSON) are
/// normalised into one canonical schema and stored as hash-chained,
/// Hive-partitioned Parquet under the data directory.
///
/// Start with:  authtrail demo && authtrail query "SELECT date, count(*) FROM events WHERE outcome = 'failure' GROUP BY date ORDER BY date"
#[derive(Debug, Parser)]
#[command(
    name = "authtrail",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store events from files or standard input.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Run a read-only SQL query over the tables `events` and `dead_letters`.
    ///
    /// Tables: `events` (the canonical columns plus the partition column
    /// `date`) and `dead_letters` (rejected input with line and reason).
    ///
    /// Example: authtrail query "SELECT reason, count(*) AS n FROM events WHERE outcome = 'failure' GROUP BY reason ORDER BY n DESC"
    Query(QueryArgs),
    /// Prove that no sealed file of the log was changed, truncated or removed.
    ///
    /// Recomputes every file's SHA-256 and walks each partition's hash chain
    /// up to its head. Exits with status 1 and names each damaged file if
    /// anything does not match.
    Verify(DataArgs),
    /// Generate a realistic month of logins with injected attacks.
    ///
    /// Users in five offices log in on work days, mistype passwords, answer
    /// MFA and use SaaS apps; brute force, password spraying, credential
    /// stuffing, MFA push fatigue, impossible travel and logins from
    /// non-allowlisted domains are woven in. The same seed and start date
    /// always give the same events.
    Demo(DemoArgs),
    /// Measure performance against a baseline.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Directory of the event log.
    #[arg(long, env = "AUTHTRAIL_DATA", default_value = "./data")]
    pub data: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Store events from files (NDJSON, a JSON array, or syslog text for
    /// sshd; gzip is detected).
    ///
    /// Lines that cannot be parsed are stored as dead letters with their
    /// line number and reason; everything else is stored. Ingesting the same
    /// input twice stores nothing new.
    ///
    /// Example: authtrail ingest file --source okta okta-export.json.gz
    File(IngestFileArgs),
}

#[derive(Debug, Args)]
pub struct IngestFileArgs {
    /// Source format: okta, auth0, keycloak, harness, github, ocsf, ecs,
    /// sshd, windows or generic.
    #[arg(long, env = "AUTHTRAIL_SOURCE")]
    pub source: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Field mapping for `--source generic` (TOML; see
    /// examples/generic-mapping.toml).
    #[arg(long, env = "AUTHTRAIL_MAPPING")]
    pub mapping: Option<PathBuf>,
    /// Year of syslog timestamps, which carry none (default: inferred from
    /// today's date).
    #[arg(long, env = "AUTHTRAIL_SYSLOG_YEAR")]
    pub syslog_year: Option<i32>,
    /// Exit with status 2 when any line was rejected.
    #[arg(long)]
    pub strict: bool,
    /// Events gathered per group commit (bounds memory; larger means
    /// fewer, larger files).
    #[arg(long, env = "AUTHTRAIL_COMMIT_EVENTS", default_value_t = 262_144)]
    pub commit_events: usize,
    /// zstd level of the Parquet files (1 is fastest; higher is smaller).
    #[arg(long, env = "AUTHTRAIL_ZSTD_LEVEL", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,
    /// Input files; `-` reads standard input.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(
        long,
        short,
        env = "AUTHTRAIL_FORMAT",
        value_enum,
        default_value = "table"
    )]
    pub format: Format,
    /// Memory for sorts, joins and aggregations, in MiB.
    #[arg(long, env = "AUTHTRAIL_QUERY_MEMORY_MB", default_value_t = 1024)]
    pub memory_mb: usize,
    /// Time limit of the query, in seconds.
    #[arg(long, env = "AUTHTRAIL_QUERY_TIMEOUT_S", default_value_t = 300)]
    pub timeout_s: u64,
    /// The SQL query (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE).
    pub sql: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of employees.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Number of days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Random seed: same seed and start, same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First day, YYYY-MM-DD (default: `days` days before today).
    #[arg(long)]
    pub start: Option<chrono::NaiveDate>,
    /// Write the events as OCSF NDJSON to this file instead of storing them
    /// (`ingest file --source ocsf` reads it).
    #[arg(long)]
    pub ndjson: Option<PathBuf>,
    /// Write the injected attacks (ground truth) as JSON to this file.
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingest a demo NDJSON file (about 1M events) into an empty log, and
    /// convert the same file to Parquet with DuckDB for comparison.
    ///
    /// Reports events/s, bytes on disk per event and peak RSS, DuckDB's time
    /// and the ratio. Needs `python3 -m pip install duckdb` for the baseline.
    Ingest(BenchIngestArgs),
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Working directory (input file, logs, DuckDB output).
    #[arg(long, default_value = "bench-out")]
    pub dir: PathBuf,
    /// Demo users; 6,000 users over 30 days is about one million events.
    #[arg(long, default_value_t = 6000)]
    pub users: usize,
    /// Demo days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Timed runs of each side; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Skip the DuckDB baseline.
    #[arg(long)]
    pub no_duckdb: bool,
}
