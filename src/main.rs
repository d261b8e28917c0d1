//! The `authtrail` binary: parses the command line, sets up logging, and
//! hands each subcommand to its module under `commands/`. Wiring only.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, for ingest's way of allocating: buffers of hundreds of
/// kilobytes to megabytes (request bodies, Arrow batches, Parquet pages),
/// many a second, often freed by another thread than the one that
/// allocated them. Against mimalloc 3 under `authtrail bench http`, the
/// server held a third less memory and stored 8–17% more events/s
/// (`BENCHMARKS.md`): mimalloc's heap grew to twice the live data, and on
/// this kind of VM every page the heap grows by costs a fault and a
/// zeroing. jemalloc gives memory unused for 10 s back to the kernel;
/// `_RJEM_MALLOC_CONF` (e.g. `dirty_decay_ms:30000`) tunes it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUTHTRAIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
