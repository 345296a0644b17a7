//! The `strata` binary: every role and tool is a subcommand; see `strata --help`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    strata_server::main().await
}
