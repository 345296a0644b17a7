#!/usr/bin/env bash
# Does flushing slow ingestion down? The same remote-write load (`strata bench remote-write`,
# STEPS samples per series 15 s apart, ending now) into `strata all` twice: with 2h blocks
# (nothing is flushed during the run) and with BLOCK_RANGE blocks (the heads are cut into
# blocks and uploaded to the local bucket while the load runs). Prints both runs' throughput,
# samples per receiver CPU-second, and how many blocks the second run flushed.
#
#   cargo build --release --workspace --bins   # not -p strata: that rebuilds RocksDB
#   SERIES=50000 STEPS=40 BLOCK_RANGE=1m benches/flush_ingest.sh
set -euo pipefail
BIN=${STRATA_BIN:-target/release/strata}
SERIES=${SERIES:-50000}
STEPS=${STEPS:-40}
BLOCK_RANGE=${BLOCK_RANGE:-1m}
CONC=${CONCURRENCY:-4}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

wait_ready() { for _ in $(seq 1 120); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; return 1; }

for range in 2h "$BLOCK_RANGE"; do
  echo "== strata all --block-range $range"
  "$BIN" all --data-dir "$tmp/strata-$range" --http-addr 127.0.0.1:19109 \
    --grpc-addr 127.0.0.1:19195 --block-range "$range" --log-level warn &
  sp=$!
  wait_ready http://127.0.0.1:19109/-/ready
  "$BIN" bench remote-write --url http://127.0.0.1:19109/api/v1/push --series "$SERIES" \
    --steps "$STEPS" --concurrency "$CONC" --pid "$sp"
  curl -s http://127.0.0.1:19109/metrics | grep -E '^strata_flush_(blocks_total|duration_seconds_(sum|count))' || true
  kill "$sp"; wait "$sp" 2>/dev/null || true
done
