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

/// Batch commands (file ingest, demo, benchmarks) free and reallocate
/// buffers of hundreds of megabytes once per commit. With mimalloc's
/// default 10 ms purge delay that memory goes back to the kernel and is
/// faulted in (and zeroed) again each time, which cost a fifth of ingest
/// time: they never purge (-1), since they exit soon anyway. The
/// long-running server returns memory it has not reused for a second.
#[allow(unsafe_code)]
fn tune_allocator(command: &cli::Command) {
    let delay_ms = match command {
        cli::Command::Serve(_) => 1000,
        _ => -1,
    };
    // SAFETY: mi_option_set only stores an integer option, and the option
    // id is valid; mimalloc reads it when it next decides to purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay_ms) };
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tune_allocator(&cli.command);
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
