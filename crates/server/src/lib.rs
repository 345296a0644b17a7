//! Strata's server: the configuration tree, role wiring, and shutdown. `cmd/strata` calls
//! [`main`] and nothing else.

pub mod bench;
mod block_cli;
pub mod cli;
pub mod config;
pub mod grpc;
mod promql_test;
mod run;

use clap::Parser;

pub use run::{start_all, Running};

/// Parses the command line and runs the chosen role or tool.
pub async fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::All(args) => run::run_all(args).await,
        cli::Command::Compactor(args) => run::run_compactor(args).await,
        cli::Command::Block(cmd) => block_cli::run(cmd).await,
        cli::Command::Ingester(_) | cli::Command::Querier(_) => {
            anyhow::bail!("this role is not yet available as a separate process; run `strata all`")
        }
        cli::Command::Ruler(_) => {
            anyhow::bail!("the ruler is not yet available (not in `strata all` either)")
        }
        cli::Command::Check(cli::CheckCommand::Config { file }) => {
            config::RawConfig::from_file(&file)?.validate()?;
            println!("{}: configuration is valid", file.display());
            Ok(())
        }
        cli::Command::Bench(cli::BenchCommand::RemoteWrite(args)) => {
            bench::remote_write(args).await
        }
        cli::Command::Bench(cli::BenchCommand::Backfill(args)) => bench::backfill(args).await,
        cli::Command::Bench(cli::BenchCommand::Targets(args)) => bench::targets(args).await,
        cli::Command::PromqlTest(args) => promql_test::run(args).await,
    }
}
