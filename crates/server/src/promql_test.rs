//! `strata promql-test FILE...`: runs PromQL test scripts against the engine.
use std::io::Write;

use strata_promql::script::{self, Outcome, ScriptReport};
use strata_promql::Engine;

use crate::cli::PromqlTestArgs;

/// Prints each failure (and with `-v` each skip) as `file:line: query: message`, then
/// `N passed, N failed, N skipped`. Fails when any eval failed or a file had errors.
pub async fn run(args: PromqlTestArgs) -> anyhow::Result<()> {
    let engine = Engine::new(script::engine_opts());
    let mut total = ScriptReport::default();
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        let report = script::run_file(file, &engine).await;
        for e in &report.errors {
            writeln!(out, "{e}")?;
        }
        for r in &report.results {
            match r.outcome {
                Outcome::Fail(_) => writeln!(out, "{r}")?,
                Outcome::Skip(_) if args.verbose => writeln!(out, "{r}")?,
                _ => {}
            }
        }
        total.merge(report);
    }
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        total.passed(),
        total.failed(),
        total.skipped()
    )?;
    out.flush()?;
    if total.failed() > 0 {
        anyhow::bail!("{} failed (listed above)", total.failed());
    }
    Ok(())
}
