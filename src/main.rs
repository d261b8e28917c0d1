//! The `authtrail` binary: parses the command line, sets up logging, and
//! hands each subcommand to its module under `commands/`. Wiring only.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, for ingest's way of allocating: buffers of hundreds of
/// kilobytes to tens of megabytes (request bodies, Arrow batches, Parquet
/// pages), many a second, often freed by another thread than the one that
/// allocated them. Against mimalloc 3 under `authtrail bench http`, the
/// server held a third less memory and stored about 10% more events/s
/// (`BENCHMARKS.md`): mimalloc's heap grew to twice the live data, and on
/// this kind of VM every page a heap grows by costs a fault and a zeroing.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts. Transparent huge pages for
/// its heap: file ingest streams gigabytes through buffers of megabytes,
/// and with 4 KiB pages it took a third longer (page faults and TLB
/// misses). Memory unused for 10 s still goes back to the kernel. The
/// `_RJEM_MALLOC_CONF` environment variable overrides any of it.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: &[u8; 11] = b"thp:always\0";

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
        // The reader went away (`authtrail rules list | head`): not an error.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose
/// text its parent's message already quotes (as library errors that name
/// their source in their own message do).
fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if text.ends_with(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}
