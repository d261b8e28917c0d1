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
/// Start with:  authtrail demo && authtrail query "SELECT date, count(*) FROM events WHERE action = 'login' AND outcome = 'failure' GROUP BY date ORDER BY date"
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
    /// Run a read-only SQL query over the tables `events`, `dead_letters`
    /// and `findings`.
    ///
    /// Tables: `events` (the canonical columns plus the partition column
    /// `date`), `dead_letters` (rejected input with line and reason),
    /// `findings` (the newest version of each finding of the rules) and
    /// `finding_versions` (all of them).
    ///
    /// Example: authtrail query "SELECT reason, count(*) AS n FROM events WHERE action = 'login' AND outcome = 'failure' GROUP BY reason ORDER BY n DESC"
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
    /// non-allowlisted domains are woven in. An internet-facing SSH bastion
    /// adds its sshd log, with SSH brute force and password spraying. The
    /// same seed and start date always give the same events.
    ///
    /// --truth writes what was injected: per attack its events, its failed
    /// login attempts and a SQL condition that selects its events, e.g.
    /// authtrail query "SELECT count(*) FROM events WHERE action = 'login'
    /// AND outcome = 'failure' AND (<selector>)".
    Demo(DemoArgs),
    /// Detection rules: check, run and try them.
    ///
    /// Rules are TOML files, one rule a file: the built-in pack (see
    /// `authtrail rules list`) plus your own directory (--rules DIR or
    /// AUTHTRAIL_RULES), where a file with a built-in rule's id replaces it.
    /// See rules/builtin/ in the source for examples of every kind.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// List findings (the newest version of each), newest first.
    ///
    /// Example: authtrail findings --severity high --format csv
    Findings(FindingsArgs),
    /// Serve the HTTP API: webhook ingest, reports, user timelines and
    /// read-only SQL, on the event log under --data; with Kafka brokers
    /// configured, also consume Kafka topics (as `ingest kafka` does).
    ///
    /// Listens on 127.0.0.1:8080 by default. Settings come from --config
    /// (TOML; see examples/authtrail.toml), then from AUTHTRAIL_<SECTION>__<KEY>
    /// environment variables (e.g. AUTHTRAIL_AUTH__ISSUER,
    /// AUTHTRAIL_WEBHOOK__OKTA__HMAC_SECRET), then from the flags below.
    /// With no issuer configured, callers use tokens from `authtrail token`.
    ///
    /// On SIGINT or SIGTERM it stops taking requests, finishes those in
    /// flight, and seals every acknowledged event into Parquet before it
    /// exits.
    ///
    /// Example: authtrail serve --listen 127.0.0.1:8080 --config authtrail.toml
    Serve(ServeArgs),
    /// Mint a short-lived bearer token signed by the local key (for a
    /// server with no OIDC issuer configured).
    ///
    /// Example: curl -H "Authorization: Bearer $(authtrail token --role read)" http://127.0.0.1:8080/v1/reports/failed-logins
    Token(TokenArgs),
    /// Measure performance against a baseline.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Configuration file (TOML).
    #[arg(long, env = "AUTHTRAIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides [server] listen); port 0 picks a
    /// free port, printed at start.
    #[arg(long, env = "AUTHTRAIL_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Field mapping for the `generic` source (TOML).
    #[arg(long, env = "AUTHTRAIL_MAPPING")]
    pub mapping: Option<PathBuf>,
    /// Year of syslog timestamps (default: inferred).
    #[arg(long, env = "AUTHTRAIL_SYSLOG_YEAR")]
    pub syslog_year: Option<i32>,
    /// Also consume Kafka from these brokers (overrides [kafka] brokers;
    /// env AUTHTRAIL_KAFKA_BROKERS).
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// Topic to consume, TOPIC=SOURCE; repeat for several (overrides
    /// [kafka] topics; env AUTHTRAIL_KAFKA_TOPICS).
    #[arg(long = "kafka-topic")]
    pub kafka_topics: Vec<String>,
    /// Consumer group (overrides [kafka] group; env AUTHTRAIL_KAFKA_GROUP).
    #[arg(long)]
    pub kafka_group: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Configuration file (TOML), for the audience and roles claim.
    #[arg(long, env = "AUTHTRAIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Role to grant; repeat for several. Without [auth.roles] in the
    /// configuration the roles are the permissions: ingest, read, export,
    /// query, admin.
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// How long the token is valid (e.g. 15m, 1h, 7d).
    #[arg(long, default_value = "15m")]
    pub ttl: humantime::Duration,
    /// Who the token speaks for (`sub`); recorded with every call it makes.
    #[arg(long, default_value = "local-admin")]
    pub subject: String,
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
    /// Consume Kafka topics as a member of a consumer group.
    ///
    /// Each topic is bound to the source adapter its messages are parsed
    /// with (`--topic auth-events=okta`). A message may hold one record, an
    /// NDJSON batch or a JSON array. Offsets are committed only after their
    /// events are durable, and they are also recorded in the log itself, so
    /// a restart resumes exactly after the last stored message: no loss and
    /// no duplicates across crashes, restarts and rebalances. Messages that
    /// cannot be parsed become dead letters named
    /// `kafka:TOPIC/PARTITION@OFFSET`, and consumption moves on.
    ///
    /// Stops on SIGINT/SIGTERM after storing and committing everything
    /// read; with --until-caught-up, once every assigned partition is
    /// stored to its end.
    ///
    /// Example: authtrail ingest kafka --brokers 127.0.0.1:9092 --group authtrail --topic okta-logs=okta --topic sshd
    Kafka(IngestKafkaArgs),
}

#[derive(Debug, Args)]
pub struct IngestKafkaArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Bootstrap brokers, host:port[,host:port…].
    #[arg(long, env = "AUTHTRAIL_KAFKA_BROKERS")]
    pub brokers: String,
    /// Topic to consume and the source its messages are in, TOPIC=SOURCE
    /// (TOPIC alone if it is named after its source); repeat for several.
    #[arg(
        long = "topic",
        env = "AUTHTRAIL_KAFKA_TOPICS",
        value_delimiter = ',',
        required = true
    )]
    pub topics: Vec<authtrail_ingest::kafka::TopicBinding>,
    /// Consumer group; run more instances with the same group to share the
    /// partitions.
    #[arg(long, env = "AUTHTRAIL_KAFKA_GROUP", default_value = "authtrail")]
    pub group: String,
    /// Exit once every assigned partition is stored up to its end (for
    /// backfills and tests).
    #[arg(long)]
    pub until_caught_up: bool,
    /// librdkafka setting, KEY=VALUE (security.protocol, sasl.*, ssl.*,
    /// session.timeout.ms…); repeat for several. Settings the delivery
    /// guarantees depend on are refused.
    #[arg(long = "kafka-option", short = 'X', env = "AUTHTRAIL_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,
    /// Most messages per batch handed to the writer.
    #[arg(long, env = "AUTHTRAIL_KAFKA_BATCH_MESSAGES", default_value_t = 50_000)]
    pub batch_messages: usize,
    /// Longest a message waits for its batch to fill, in milliseconds.
    #[arg(long, env = "AUTHTRAIL_KAFKA_LINGER_MS", default_value_t = 100)]
    pub linger_ms: u64,
    /// Field mapping for the `generic` source (TOML).
    #[arg(long, env = "AUTHTRAIL_MAPPING")]
    pub mapping: Option<PathBuf>,
    /// Year of syslog timestamps (default: inferred).
    #[arg(long, env = "AUTHTRAIL_SYSLOG_YEAR")]
    pub syslog_year: Option<i32>,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.trim().to_owned(), value.trim().to_owned()))
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

#[derive(Debug, Args)]
pub struct RulesDirArgs {
    /// Directory of your own rule files (*.toml), added to the built-in pack.
    #[arg(long = "rules", env = "AUTHTRAIL_RULES")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules that would run: id, kind, severity, tags, title.
    List(RulesListArgs),
    /// Check rule files: every key, duration and SQL expression, planned
    /// against the events table. Exits with status 2 naming each file and
    /// line that is wrong.
    ///
    /// Example: authtrail rules check my-rules/
    Check(RulesCheckArgs),
    /// Run the rules over the log (or a time range of it) and store what
    /// they find in findings/. Rerunning adds nothing: a finding's id and
    /// version are hashes of what it is.
    ///
    /// Example: authtrail rules run --from 2026-03-01 --to 2026-03-08
    Run(RulesRunArgs),
    /// Compare the findings with a demo's ground truth (`authtrail demo
    /// --truth FILE`): per attack kind, how many were found and by which
    /// rules, and the findings that fall on no injected attack.
    ///
    /// An attack counts as found when a finding's evidence includes one of
    /// its events (the truth's `selector` picks them).
    ///
    /// Example: authtrail demo --truth truth.json && authtrail rules report --truth truth.json
    Report(RulesReportArgs),
    /// Try one rule on a file of events without storing anything: prints
    /// the findings it would raise.
    ///
    /// Example: authtrail rules test brute_force_user --events okta.ndjson --source okta
    Test(RulesTestArgs),
}

#[derive(Debug, Args)]
pub struct RulesListArgs {
    #[command(flatten)]
    pub rules: RulesDirArgs,
}

#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Directory of rule files to check (default: --rules, else only the
    /// built-in pack).
    #[arg(value_name = "DIR")]
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub rules: RulesDirArgs,
}

#[derive(Debug, Args)]
pub struct RulesRunArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub rules: RulesDirArgs,
    /// First instant (RFC 3339, or a date: its midnight UTC) of event time
    /// to look at; default: the beginning of the log.
    #[arg(long, value_parser = parse_instant)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// First instant not to look at; default: no end.
    #[arg(long, value_parser = parse_instant)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Run only these rules (by id; repeat for several).
    #[arg(long = "rule")]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RulesReportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The ground truth `authtrail demo --truth` wrote.
    #[arg(long)]
    pub truth: PathBuf,
}

#[derive(Debug, Args)]
pub struct RulesTestArgs {
    #[command(flatten)]
    pub rules: RulesDirArgs,
    /// The rule: a built-in id, the id of one in --rules, or a rule file.
    pub rule: String,
    /// The events to try it on (as `ingest file` reads them).
    #[arg(long)]
    pub events: PathBuf,
    /// The source adapter the events are in.
    #[arg(long)]
    pub source: String,
    /// Year of classic syslog timestamps (sshd).
    #[arg(long)]
    pub syslog_year: Option<i32>,
    /// Field mapping for `--source generic`.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FindingsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Only this rule.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only this severity or worse (info, low, medium, high, critical).
    #[arg(long)]
    pub severity: Option<String>,
    /// Only findings whose group is about this value (a user, an address…).
    #[arg(long)]
    pub about: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub format: Format,
}

/// An RFC 3339 instant, or a date (its midnight UTC).
fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("expected an RFC 3339 time or YYYY-MM-DD, got {text:?}"))
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
    /// With --ndjson: also write the bastion's sshd log (syslog text) to this
    /// file (`ingest file --source sshd` reads it). Without it, --ndjson
    /// leaves the bastion out, and so does the ground truth.
    #[arg(long, requires = "ndjson")]
    pub sshd_log: Option<PathBuf>,
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
    /// Post demo events to a fresh `authtrail serve` over loopback, from
    /// this process: NDJSON batches, then one event per request over many
    /// keep-alive connections.
    ///
    /// Reports durable events/s, p50/p99 latency of single-event requests,
    /// and (on Linux) the CPU time per event of the server and of the load
    /// generator, and the server's peak memory. Each phase is run again
    /// against nginx answering with a fixed body (what loopback HTTP costs
    /// on this machine with no work behind it), and the ratio reported:
    /// needs nginx installed (apt-get install nginx-light), or pass
    /// --no-nginx.
    /// Requests are HMAC-signed webhook deliveries, or carry a bearer token
    /// with `--auth jwt`.
    Http(BenchHttpArgs),
    /// Produce demo events (about 1M) to a new Kafka topic, then consume it
    /// into an empty log with `authtrail ingest kafka --until-caught-up`.
    ///
    /// Reports events/s into Parquet and peak RSS, beside a bare librdkafka
    /// consumer that only reads the same topic (the broker's and client's
    /// own speed) and the ratio. Start a broker first:
    /// scripts/kafka-broker.sh start
    Kafka(BenchKafkaArgs),
    /// Run the built-in rules in batch over a demo log (about 10M events),
    /// beside the same detections written as DuckDB SQL over the same
    /// Parquet files: best time of each, the ratio, peak RSS.
    ///
    /// The demo log is stored once in --dir and reused by later runs.
    Rules(BenchRulesArgs),
}

#[derive(Debug, Args)]
pub struct BenchKafkaArgs {
    /// Broker address (scripts/kafka-broker.sh start prints it).
    #[arg(long, env = "AUTHTRAIL_KAFKA_BROKERS")]
    pub brokers: String,
    /// Working directory (input file, the log).
    #[arg(long, default_value = "bench-out")]
    pub dir: PathBuf,
    /// Demo users (6,000 users over 30 days is about a million events).
    #[arg(long, default_value_t = 6000)]
    pub users: usize,
    /// Demo days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Events per Kafka message (1: one event per message; more: NDJSON
    /// batches, as log shippers send them).
    #[arg(long, default_value_t = 1)]
    pub events_per_message: usize,
    /// Consume the topic the previous run produced (recorded in the work
    /// directory) instead of producing a new one.
    #[arg(long)]
    pub reuse_topic: bool,
}

#[derive(Debug, Args)]
pub struct BenchHttpArgs {
    /// Working directory (the server's log).
    #[arg(long, default_value = "bench-out")]
    pub dir: PathBuf,
    /// Demo users (6,000 users over 30 days is about a million events).
    #[arg(long, default_value_t = 6000)]
    pub users: usize,
    /// Demo days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Events per NDJSON batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Concurrent connections posting batches. With fewer than 16, the
    /// two cores idle while every sender waits for its commit's fsync.
    #[arg(long, default_value_t = 16)]
    pub batch_connections: usize,
    /// Single-event requests to send.
    #[arg(long, default_value_t = 200_000)]
    pub single_requests: usize,
    /// Concurrent keep-alive connections posting single events.
    #[arg(long, default_value_t = 64)]
    pub single_connections: usize,
    /// The authtrail binary to run as the server (default: this one). To
    /// compare two builds' servers under the same load generator.
    #[arg(long, value_name = "PATH")]
    pub server: Option<PathBuf>,
    /// How deliveries authenticate.
    #[arg(long, value_enum, default_value_t = BenchAuth::Hmac)]
    pub auth: BenchAuth,
    /// Runs of both phases; every run is reported, then the medians. The
    /// machine's speed can drift between minutes: several runs, each
    /// paired with its own baseline, say more than one.
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    /// Skip the baseline: nginx answering the same requests with a fixed
    /// body, storing nothing (apt-get install nginx-light).
    #[arg(long)]
    pub no_nginx: bool,
}

/// The credential `bench http` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchAuth {
    /// An HMAC-SHA256 signature of every body, as webhook senders (Okta,
    /// GitHub) sign theirs; the server hashes every byte it receives.
    Hmac,
    /// A bearer token with the ingest role (minted by `authtrail token`),
    /// as a platform team's streaming ingest sends it; the server checks
    /// the token's signature once and then remembers it.
    Jwt,
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

#[derive(Debug, Args)]
pub struct BenchRulesArgs {
    /// Working directory (the demo log is kept in DIR/log and reused).
    #[arg(long, default_value = "bench-rules")]
    pub dir: PathBuf,
    /// Demo users; 60,000 users over 30 days is about ten million events.
    #[arg(long, default_value_t = 60_000)]
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

#[cfg(test)]
mod tests {
    /// clap checks a command's definition only when it is run: check every
    /// subcommand's here (unique names, valid defaults).
    #[test]
    fn every_command_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
