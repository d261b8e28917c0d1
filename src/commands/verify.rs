//! `authtrail verify`: recomputes every sealed file's hash and walks the
//! chains; names each damaged file and exits 1 if anything is wrong.

use std::io::Write;
use std::process::ExitCode;

use authtrail_ingest::store::verify;

use super::{progress_bar, thousands};
use crate::cli::DataArgs;

pub fn run(args: DataArgs) -> anyhow::Result<ExitCode> {
    if !args.data.is_dir() {
        anyhow::bail!(
            "no event log at {}: nothing to verify (pass --data)",
            args.data.display()
        );
    }
    let total = verify::sealed_bytes(&args.data)?;
    let bar = progress_bar(
        Some(total),
        "{spinner} verifying [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
    );
    let report = verify::verify(&args.data, |bytes| bar.inc(bytes))?;
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    if report.is_intact() {
        writeln!(
            out,
            "ok: {} files in {} partitions ({} rows, {} bytes) match their hash chains",
            thousands(report.files),
            thousands(report.partitions),
            thousands(report.rows),
            thousands(report.bytes)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "FAILED: {} problem(s) in {} files checked",
        report.problems.len(),
        thousands(report.files)
    )?;
    for problem in &report.problems {
        writeln!(out, "  {}: {}", problem.path.display(), problem.message)?;
    }
    Ok(ExitCode::from(1))
}
