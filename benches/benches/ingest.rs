//! Ingest benchmarks: remote-write decode → validate → route → encode log entry → apply to
//! the head, without the network and the durable log (those are measured end to end with
//! `strata bench remote-write`). Run with `cargo bench -p strata-benches --features ingest
//! --bench ingest` (the feature pulls in the server and RocksDB).
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use strata_head::HeadConfig;
use strata_ingester::route::{decompress, route, DecodeLimits};
use strata_ingester::ShardState;
use strata_model::WireVersion;
use strata_proto::prometheus::{Sample, TimeSeries, WriteRequest};
use strata_raft::Applier;
use strata_server::bench::series_labels;

const SHARDS: u32 = 16;
const PER_REQUEST: usize = 2000;
const LIMITS: DecodeLimits =
    DecodeLimits { max_request_bytes: 64 << 20, max_decompressed_bytes: 256 << 20 };

/// One snappy-compressed request: series `first..first+PER_REQUEST`, one sample each at `t`.
fn request(first: usize, t: i64) -> Bytes {
    let timeseries = (first..first + PER_REQUEST)
        .map(|i| TimeSeries {
            labels: series_labels(i),
            samples: vec![Sample { value: (i as f64) * 1.5 + t as f64, timestamp: t }],
            ..Default::default()
        })
        .collect();
    let raw = WriteRequest { timeseries, metadata: vec![] }.encode_to_vec();
    Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default())
}

fn apply_all(states: &[Arc<ShardState>], body: &Bytes) -> u64 {
    let body = decompress(body, &LIMITS).expect("valid body");
    let routed = route(WireVersion::V1, "anonymous", body, SHARDS, &LIMITS).expect("valid request");
    let mut appended = 0;
    // `route` already encoded each shard's log entry.
    for (shard, payload) in routed.batches {
        appended += states[shard.0 as usize].apply(&payload).appended;
    }
    appended
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(PER_REQUEST as u64));

    let body = request(0, 1000);
    g.bench_function("decode_route_2000", |b| {
        b.iter(|| {
            let body = decompress(&body, &LIMITS).expect("valid body");
            route(WireVersion::V1, "anonymous", body, SHARDS, &LIMITS).expect("valid request")
        })
    });

    // Steady state: 20k existing series, each request appends one new sample to 2000 of them.
    let states: Vec<Arc<ShardState>> =
        (0..SHARDS).map(|_| Arc::new(ShardState::new(HeadConfig::default()))).collect();
    const SERIES: usize = 20 * PER_REQUEST;
    for first in (0..SERIES).step_by(PER_REQUEST) {
        assert_eq!(apply_all(&states, &request(first, 0)), PER_REQUEST as u64);
    }
    // Requests are built before timing starts (building one costs more than ingesting it,
    // and doing it between iterations would leave the caches full of its garbage): one round
    // of ROUNDS timestamps over all series, replayed into fresh heads when it runs out.
    const ROUNDS: usize = 30;
    let bodies: Vec<Bytes> = (1..=ROUNDS)
        .flat_map(|r| {
            (0..SERIES).step_by(PER_REQUEST).map(move |first| request(first, 15_000 * r as i64))
        })
        .collect();
    let fresh = || -> Vec<Arc<ShardState>> {
        let states: Vec<Arc<ShardState>> =
            (0..SHARDS).map(|_| Arc::new(ShardState::new(HeadConfig::default()))).collect();
        for first in (0..SERIES).step_by(PER_REQUEST) {
            assert_eq!(apply_all(&states, &request(first, 0)), PER_REQUEST as u64);
        }
        states
    };
    let mut states = states;
    let mut next = 0;
    g.bench_function("decode_route_append_2000", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                if next == bodies.len() {
                    states = fresh();
                    next = 0;
                }
                let start = Instant::now();
                assert_eq!(apply_all(&states, &bodies[next]), PER_REQUEST as u64);
                spent += start.elapsed();
                next += 1;
            }
            spent
        })
    });
    g.finish();

    // A Raft snapshot of one shard holding an hour of 15 s samples of 4000 series: what the
    // shard's applies wait for after each flush.
    let mut g = c.benchmark_group("snapshot");
    let shard = ShardState::new(HeadConfig::default());
    const STEPS: usize = 240;
    for step in 0..STEPS {
        for first in [0, PER_REQUEST] {
            let body = decompress(&request(first, 15_000 * step as i64), &LIMITS).expect("body");
            let routed =
                route(WireVersion::V1, "anonymous", body, 1, &LIMITS).expect("valid request");
            for (_, payload) in routed.batches {
                shard.apply(&payload);
            }
        }
    }
    let samples = 2 * PER_REQUEST * STEPS;
    let bytes = shard.snapshot().len();
    println!("snapshot: {bytes} bytes, {:.2} per sample", bytes as f64 / samples as f64);
    g.throughput(Throughput::Elements(samples as u64));
    g.sample_size(10);
    g.bench_function("snapshot_4000_series_240_samples", |b| b.iter(|| shard.snapshot().len()));
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
