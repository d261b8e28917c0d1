//! `authtrail bench rules`: the built-in pack in batch over a demo log
//! (about 10M events by default), beside the same detections written as
//! DuckDB SQL over the same Parquet files, in the same run: best wall time
//! of each, the ratio, and each side's peak RSS.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::cli::BenchRulesArgs;

const DUCKDB_SCRIPT: &str = include_str!("bench_rules_duckdb.py");

/// Runs `command`, waiting for it with `wait4` so that its own peak RSS
/// (KiB) is known, apart from any other child's.
#[allow(unsafe_code)]
fn run_measured(command: &mut Command) -> anyhow::Result<(f64, i64, Vec<u8>)> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a child process")?;
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_end(&mut out, &mut stdout).context("reading its output")?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `pid` is our own child, not yet waited for (std only waits in
    // `wait`, which is never called on it); `status` and `usage` are valid
    // for writes of their types.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
    let seconds = started.elapsed().as_secs_f64();
    if rc != pid {
        bail!(
            "waiting for the child failed: {}",
            std::io::Error::last_os_error()
        );
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("the child failed (status {status}); see above");
    }
    // SAFETY: wait4 returned the child's pid, so it filled `usage`.
    let usage = unsafe { usage.assume_init() };
    Ok((seconds, usage.ru_maxrss, stdout))
}

pub fn run(args: BenchRulesArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the authtrail binary")?;
    let log = args.dir.join("log");
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let log_arg = log.to_str().context("the --dir path is not UTF-8")?;
    if log.join("events").is_dir() {
        eprintln!(
            "reusing the demo log in {} (remove it to regenerate)",
            log.display()
        );
    } else {
        eprintln!(
            "storing a demo of {} users over {} days in {} …",
            args.users,
            args.days,
            log.display()
        );
        let (seconds, _, out) = run_measured(Command::new(&exe).args([
            "demo",
            "--users",
            &args.users.to_string(),
            "--days",
            &args.days.to_string(),
            "--start",
            "2026-11-01",
            "--data",
            log_arg,
        ]))?;
        let text = String::from_utf8_lossy(&out);
        eprintln!(
            "{} ({seconds:.1} s)",
            text.lines().next().unwrap_or_default()
        );
    }
    let events = count_events(&log)?;
    let mut ours = (f64::INFINITY, 0i64);
    let mut per_rule = String::new();
    for _ in 0..args.runs.max(1) {
        let (seconds, peak, out) =
            run_measured(Command::new(&exe).args(["rules", "run", "--data", log_arg]))?;
        if seconds < ours.0 {
            ours = (seconds, peak);
            per_rule = String::from_utf8_lossy(&out).into_owned();
        }
    }
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    writeln!(
        out,
        "{} events; per rule (authtrail's best run):\n{per_rule}",
        super::thousands(events)
    )?;
    writeln!(
        out,
        "| system | best of {} (s) | events/s | peak RSS (MiB) |",
        args.runs.max(1)
    )?;
    writeln!(out, "|---|---|---|---|")?;
    writeln!(
        out,
        "| authtrail rules run (15 rules) | {:.2} | {} | {:.0} |",
        ours.0,
        super::thousands((events as f64 / ours.0) as u64),
        ours.1 as f64 / 1024.0
    )?;
    if args.no_duckdb {
        return Ok(ExitCode::SUCCESS);
    }
    let (_, _, duck_out) = run_measured(
        Command::new("python3")
            .arg("-c")
            .arg(DUCKDB_SCRIPT)
            .arg(log_arg)
            .arg(args.runs.max(1).to_string()),
    )
    .context("the DuckDB baseline (python3 with duckdb)")?;
    let text = String::from_utf8_lossy(&duck_out);
    let value = |key: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .with_context(|| format!("no `{key}` in the DuckDB script's output"))
    };
    let duck_seconds = value("total ")?;
    let duck_peak = value("peak_rss_kib ")?;
    writeln!(
        out,
        "| DuckDB {} (the same 15 detections as SQL) | {duck_seconds:.2} | {} | {:.0} |",
        duckdb_version(),
        super::thousands((events as f64 / duck_seconds) as u64),
        duck_peak / 1024.0
    )?;
    writeln!(
        out,
        "\nauthtrail / DuckDB time: {:.2}x (target: at most 1.0x)\nDuckDB per rule (ms):\n{}",
        ours.0 / duck_seconds,
        text.lines()
            .filter_map(|l| l.strip_prefix("rule "))
            .collect::<Vec<_>>()
            .join("\n")
    )?;
    Ok(ExitCode::SUCCESS)
}

fn duckdb_version() -> String {
    Command::new("python3")
        .args(["-c", "import duckdb; print(duckdb.__version__)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn count_events(log: &Path) -> anyhow::Result<u64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    runtime.block_on(async {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Int64Type;
        let session =
            authtrail_query::ReadOnlySession::open(log, authtrail_query::QueryLimits::default())
                .await?;
        let batches = session
            .plan("SELECT count(*) FROM events")
            .await?
            .collect()
            .await?;
        Ok(batches
            .first()
            .map(|b| b.column(0).as_primitive::<Int64Type>().value(0) as u64)
            .unwrap_or(0))
    })
}
