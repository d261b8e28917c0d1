//! The `authtrail` binary: parses the command line, sets up logging, and
//! hands each subcommand to its module under `commands/`. Wiring only.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (15 in both mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Ingest frees and reallocates buffers of hundreds of megabytes (parsed
/// batches, staged segments, Parquet pages) many times a second. With
/// mimalloc's default 10 ms purge delay, or even 1 s, that memory goes
/// back to the kernel and is faulted in (and zeroed, 2 MiB at a time with
/// transparent huge pages) again and again: it cost a fifth of file-ingest
/// time, and doubled the server's system time under batch ingest. So no
/// command purges: the server stays at its high-water mark, which its
/// bounded queues bound. `MIMALLOC_PURGE_DELAY` in the environment (in
/// milliseconds) overrides this, for a server that should give memory
/// back after a burst.
#[allow(unsafe_code)]
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores an integer option, and the option
    // id is valid; mimalloc reads it when it next decides to purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tune_allocator();
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
