//! Command-line interface: one binary, a subcommand per role and per tool.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: a Prometheus-compatible, horizontally scalable long-term metrics store",
    long_about = "Strata stores Prometheus metrics for the long term and serves them back through \
the Prometheus HTTP API. Point Prometheus `remote_write` at http://HOST:9009/api/v1/push and add \
http://HOST:9009 as a Prometheus data source in Grafana.\n\n\
Run `strata all` for a single process with every role and embedded defaults (data in ./data)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every role in one process: remote-write intake, single-replica Raft shards, the head,
    /// and the read API. The way to run Strata on one machine.
    All(RunArgs),
    /// Receives remote-write, holds shard replicas (Raft log + in-memory head) and answers
    /// reads of recent data. (Not yet available as a separate role: use `all`.)
    Ingester(RunArgs),
    /// Stateless Prometheus HTTP API and PromQL engine over ingesters and blocks.
    /// (Not yet available: use `all`.)
    Querier(RunArgs),
    /// Evaluates recording and alerting rules and notifies Alertmanager.
    /// (Not yet available.)
    Ruler(RunArgs),
    /// Merges blocks in the object store into longer ones, applies retention and rewrites the
    /// bucket indexes (also runs inside `all`). Reads `blocks`, `bucket` and `compactor` from
    /// the config; `--bucket` overrides the bucket. Serves `/metrics`, `/-/ready` and
    /// `/-/healthy` on `--http-addr`.
    Compactor(RunArgs),
    /// Looks into blocks.
    #[command(subcommand)]
    Block(BlockCommand),
    /// Checks files without starting anything.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Load generators and measurements.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Runs PromQL test scripts (Prometheus' `.test` format) against the engine over
    /// in-memory data; prints failures and a summary, exits with status 1 if any failed.
    PromqlTest(PromqlTestArgs),
}

#[derive(Debug, Args, Clone)]
pub struct PromqlTestArgs {
    /// Script files to run.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also print skipped evals with the reason.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// YAML configuration file (see deploy/strata.yaml). Flags override it.
    #[arg(long, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for Raft logs and local state [default: ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address [default: :9009].
    #[arg(long)]
    pub http_addr: Option<String>,
    /// gRPC listen address [default: :9095].
    #[arg(long)]
    pub grpc_addr: Option<String>,
    /// Object store for blocks: file:///path, s3://bucket/prefix, gs://bucket, az://container,
    /// memory:// [default: <data-dir>/bucket].
    #[arg(long)]
    pub bucket: Option<String>,
    /// Length of the blocks flushed from the head, e.g. 2h or 30s [default: 2h].
    #[arg(long)]
    pub block_range: Option<String>,
    /// Log filter, e.g. `info` or `strata=debug`.
    #[arg(long, env = "STRATA_LOG", default_value = "info,openraft=warn")]
    pub log_level: String,
}

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Prints a block's meta, series and sample counts, columns and bytes per sample.
    /// TARGET is a block folder on disk or a URL such as s3://bucket/prefix/TENANT/BLOCK-ID.
    Inspect(BlockTarget),
    /// Reads a whole block and checks it against its meta; exits 1 on problems.
    Verify(BlockTarget),
}

#[derive(Debug, Args, Clone)]
pub struct BlockTarget {
    pub target: String,
    /// S3 endpoint for s3:// URLs (a local S3-compatible server); credentials come from the
    /// AWS_* environment variables (or `--config`).
    #[arg(long, env = "STRATA_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// A Strata config file whose `bucket.s3` settings (endpoint, region, credentials) and
    /// request timeout apply to the URL; `--s3-endpoint` overrides its endpoint.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Parses and validates a configuration file.
    Config { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Sends realistic remote-write 1.0 requests (about 8 labels per series) to a URL and
    /// reports throughput; with --pid, also the receiver's samples per CPU-second.
    RemoteWrite(crate::bench::RemoteWriteArgs),
    /// Sends a deterministic GPU-fleet data set (a counter and a classic histogram) over a
    /// past window, in time order, to compare query speed on identical data.
    Backfill(crate::bench::BackfillArgs),
    /// Serves simulated scrape targets (N targets of M series, text format) and writes the
    /// scrape configuration for them; with --pid and --query-url, measures the scraper's CPU
    /// time per million scraped samples.
    Targets(crate::bench::TargetsArgs),
}
