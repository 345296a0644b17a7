//! `strata bench backfill`: sends the [`Fleet`] data set over a past time window by remote
//! write, in time order, so Strata and Prometheus can be queried side by side on the same
//! data (see benches/promql_vs_prometheus.sh).
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use prost::Message;
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

use super::fleet::Fleet;
use super::Sender;

#[derive(Debug, Args, Clone)]
pub struct BackfillArgs {
    /// Remote-write URL of the receiver.
    #[arg(long, default_value = "http://127.0.0.1:9009/api/v1/push")]
    pub url: String,
    /// Counter series; the histogram adds 12 bucket series per 25 of these.
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Length of the window in minutes.
    #[arg(long, default_value_t = 120)]
    pub minutes: i64,
    /// Milliseconds between samples.
    #[arg(long, default_value_t = 15_000)]
    pub interval_ms: i64,
    /// Timestamp (ms) of the last sample [default: now, rounded down to the interval].
    /// Pass the same value to every receiver to give them identical data.
    #[arg(long)]
    pub end_ms: Option<i64>,
    /// Samples of one series per request: consecutive scrapes batched, as a catching-up
    /// Prometheus sends them.
    #[arg(long, default_value_t = 10)]
    pub samples_per_series: usize,
    /// Samples per request, at most.
    #[arg(long, default_value_t = 2000)]
    pub samples_per_request: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Tenant sent as X-Scope-OrgID (none when empty).
    #[arg(long, default_value = "")]
    pub tenant: String,
}

pub async fn backfill(args: BackfillArgs) -> anyhow::Result<()> {
    if args.interval_ms <= 0 || args.minutes <= 0 {
        bail!("--interval-ms and --minutes must be positive");
    }
    let end_ms = match args.end_ms {
        Some(t) => t,
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("clock before 1970")?
                .as_millis() as i64;
            now - now % args.interval_ms
        }
    };
    let steps = (args.minutes * 60_000 / args.interval_ms) as usize;
    let start_ms = end_ms - (steps as i64 - 1) * args.interval_ms;
    let fleet = Fleet::new(args.series);
    let started = Instant::now();
    let labels: Vec<Vec<Label>> = (0..fleet.len())
        .map(|i| {
            fleet
                .labels(i)
                .into_iter()
                .map(|(n, v)| Label { name: Bytes::from_static(n.as_bytes()), value: v.into() })
                .collect()
        })
        .collect();
    let values: Vec<Vec<f64>> = (0..fleet.len()).map(|i| fleet.values(i, steps)).collect();
    let per_series = args.samples_per_series.clamp(1, steps);
    let series_per_request = (args.samples_per_request / per_series).max(1);
    let sender = Sender::new(&args.url, &args.tenant, args.concurrency)?;
    let mut requests = 0;
    // Blocks of consecutive steps go in time order; within a block, requests carry disjoint
    // series and go out concurrently.
    for first in (0..steps).step_by(per_series) {
        let last = (first + per_series).min(steps);
        let bodies: Vec<Bytes> = (0..fleet.len())
            .collect::<Vec<_>>()
            .chunks(series_per_request)
            .map(|chunk| {
                let timeseries = chunk
                    .iter()
                    .map(|&i| TimeSeries {
                        labels: labels[i].clone(),
                        samples: (first..last)
                            .map(|s| Sample {
                                value: values[i][s],
                                timestamp: start_ms + s as i64 * args.interval_ms,
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect();
                let raw = WriteRequest { timeseries, metadata: vec![] }.encode_to_vec();
                Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default())
            })
            .collect();
        requests += bodies.len();
        sender.send(bodies).await?;
    }
    let samples = fleet.len() * steps;
    println!(
        "backfilled {} series ({} counters, {} histogram buckets) x {steps} samples = {samples} \
         samples, {start_ms}..={end_ms} ms, in {requests} requests over {:.1}s, {} failed",
        fleet.len(),
        fleet.counters(),
        fleet.len() - fleet.counters(),
        started.elapsed().as_secs_f64(),
        sender.errors()
    );
    sender.finish()
}
