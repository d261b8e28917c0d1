//! `authtrail query`: read-only SQL over the event log, printed as a table,
//! CSV, JSON or NDJSON.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use authtrail_query::{OutputFormat, QueryLimits, ReadOnlySession, write_stream};

use crate::cli::{Format, QueryArgs};

pub fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    if !args.data.data.is_dir() {
        anyhow::bail!(
            "no event log at {}: store some events first (authtrail demo, or authtrail ingest file), or pass --data",
            args.data.data.display()
        );
    }
    let format = match args.format {
        Format::Table => OutputFormat::Table,
        Format::Csv => OutputFormat::Csv,
        Format::Json => OutputFormat::Json,
        Format::Ndjson => OutputFormat::Ndjson,
    };
    let limits = QueryLimits {
        memory_bytes: args.memory_mb.max(16) << 20,
        timeout: Duration::from_secs(args.timeout_s.max(1)),
        ..QueryLimits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    runtime.block_on(async {
        let session = ReadOnlySession::open(&args.data.data, limits).await?;
        let stream = session.stream(&args.sql).await?;
        let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
        let timeout = session.timeout();
        tokio::time::timeout(timeout, write_stream(stream, format, &mut stdout))
            .await
            .map_err(|_| authtrail_query::QueryError::Timeout(timeout))??;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
