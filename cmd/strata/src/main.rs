//! The `strata` binary: every role and tool is a subcommand; see `strata --help`.
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match strata_server::main().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
