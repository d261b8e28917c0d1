//! `authtrail bench ingest`: the ingest benchmark. Generates a demo file of
//! about a million OCSF events, ingests it into an empty log with the real
//! `authtrail ingest file` (a child process, so its peak RSS is its own),
//! and converts the same file to Parquet with DuckDB in the same run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use authtrail_ingest::demo::{DemoConfig, DemoReader};

use super::thousands;
use crate::cli::BenchIngestArgs;

/// Fixed, so that every run of the benchmark ingests the same bytes.
const BENCH_START: &str = "2026-10-01";
const BENCH_SEED: u64 = 42;

pub fn ingest(args: BenchIngestArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let input = demo_file(&args.dir, args.users, args.days)?;
    let input_bytes = std::fs::metadata(&input)?.len();
    let lines = count_lines(&input)?;
    let exe = std::env::current_exe().context("locating the authtrail binary")?;
    let log_dir = args.dir.join("log");

    let mut best = f64::INFINITY;
    let mut stored = 0u64;
    for run in 1..=args.runs.max(1) {
        if log_dir.exists() {
            std::fs::remove_dir_all(&log_dir)
                .with_context(|| format!("removing {}", log_dir.display()))?;
        }
        let started = Instant::now();
        let output = Command::new(&exe)
            .args(["ingest", "file", "--source", "ocsf", "--data"])
            .arg(&log_dir)
            .arg(&input)
            .stderr(Stdio::inherit())
            .output()
            .context("running authtrail ingest file")?;
        let seconds = started.elapsed().as_secs_f64();
        if !output.status.success() {
            bail!(
                "authtrail ingest file failed: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        stored = parse_stored(&String::from_utf8_lossy(&output.stdout))?;
        eprintln!(
            "authtrail run {run}: {seconds:.2} s, {} events",
            thousands(stored)
        );
        best = best.min(seconds);
    }
    let peak_rss_mib = children_peak_rss_kib() as f64 / 1024.0;
    let disk = parquet_bytes(&log_dir.join("events"))?;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "input: {} ({} lines, {:.1} MiB)",
        input.display(),
        thousands(lines),
        input_bytes as f64 / 1048576.0
    )?;
    writeln!(
        out,
        "| system | best of {} (s) | events/s | bytes on disk / event | peak RSS (MiB) |",
        args.runs.max(1)
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    let rate = stored as f64 / best;
    writeln!(
        out,
        "| authtrail ingest file | {best:.2} | {} | {:.1} | {peak_rss_mib:.0} |",
        thousands(rate as u64),
        disk as f64 / stored.max(1) as f64
    )?;
    if args.no_duckdb {
        return Ok(ExitCode::SUCCESS);
    }
    let duck = duckdb_baseline(&input, &args.dir, &log_dir, args.runs.max(1))?;
    writeln!(
        out,
        "| DuckDB read_json + COPY to Parquet | {:.2} | {} | {:.1} | {:.0} |",
        duck.seconds,
        thousands((lines as f64 / duck.seconds) as u64),
        duck.parquet_bytes as f64 / lines.max(1) as f64,
        duck.peak_rss_kib as f64 / 1024.0
    )?;
    writeln!(
        out,
        "authtrail / DuckDB speed ratio: {:.2}x",
        duck.seconds / best
    )?;
    writeln!(
        out,
        "DuckDB counts {} rows in authtrail's events/**/*.parquet; authtrail stored {}{}",
        thousands(duck.rows_in_authtrail_log),
        thousands(stored),
        if duck.rows_in_authtrail_log == stored {
            " (match)"
        } else {
            " (MISMATCH)"
        }
    )?;
    if duck.rows_in_authtrail_log != stored {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The benchmark's demo NDJSON file under `dir`, generated once.
pub(super) fn demo_file(dir: &Path, users: usize, days: u32) -> anyhow::Result<std::path::PathBuf> {
    let input = dir.join(format!("demo-{users}u-{days}d-seed{BENCH_SEED}.ndjson"));
    if !input.is_file() {
        eprintln!("generating {} ...", input.display());
        let start = BENCH_START.parse().context("bench start date")?;
        let mut reader = DemoReader::new(DemoConfig::new(users, days, BENCH_SEED, Some(start)));
        let temp = input.with_extension("ndjson.partial");
        let mut writer = BufWriter::new(
            File::create(&temp).with_context(|| format!("creating {}", temp.display()))?,
        );
        std::io::copy(&mut reader, &mut writer).context("writing the demo file")?;
        writer.flush().context("writing the demo file")?;
        std::fs::rename(&temp, &input).context("renaming the demo file")?;
    }
    Ok(input)
}

fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes.iter().filter(|&&b| b == b'\n').count() as u64)
}

pub(super) fn parse_stored(summary: &str) -> anyhow::Result<u64> {
    summary
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("stored"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .with_context(|| format!("no stored count in the ingest summary:\n{summary}"))
}

pub(super) fn parquet_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}

/// Peak resident set of the largest child waited for so far, in KiB.
#[allow(unsafe_code)]
pub(super) fn children_peak_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the struct we pass, which is
    // zero-initialised and large enough; RUSAGE_CHILDREN is a valid target.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage returned 0, so it filled the struct.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss
}

struct DuckResult {
    seconds: f64,
    parquet_bytes: u64,
    peak_rss_kib: i64,
    rows_in_authtrail_log: u64,
}

const DUCKDB_SCRIPT: &str = r#"
import resource, sys, time
try:
    import duckdb
except ImportError:
    sys.exit("DuckDB is not installed: python3 -m pip install duckdb (or pass --no-duckdb)")
source, target, log, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
best = float("inf")
for _ in range(runs):
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited')) TO '{target}' (FORMAT parquet)")
    best = min(best, time.perf_counter() - started)
    con.close()
rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{log}/events/**/*.parquet', hive_partitioning=true)").fetchone()[0]
print(best, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rows)
"#;

fn duckdb_baseline(input: &Path, dir: &Path, log: &Path, runs: u32) -> anyhow::Result<DuckResult> {
    let target: PathBuf = dir.join("duckdb.parquet");
    let output = Command::new("python3")
        .arg("-c")
        .arg(DUCKDB_SCRIPT)
        .arg(input)
        .arg(&target)
        .arg(log)
        .arg(runs.to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("running python3 for the DuckDB baseline (is python3 installed?)")?;
    if !output.status.success() {
        bail!("the DuckDB baseline failed (see above)");
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let last_line = text.lines().last().unwrap_or_default();
    let mut parts = last_line.split_whitespace();
    let mut next = || {
        parts
            .next()
            .context("unexpected output from the DuckDB script")
    };
    let seconds: f64 = next()?.parse()?;
    let peak_rss_kib: i64 = next()?.parse()?;
    let rows_in_authtrail_log: u64 = next()?.parse()?;
    Ok(DuckResult {
        seconds,
        parquet_bytes: std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0),
        peak_rss_kib,
        rows_in_authtrail_log,
    })
}
