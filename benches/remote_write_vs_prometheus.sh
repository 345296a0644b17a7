#!/usr/bin/env bash
# Side-by-side ingest measurement: the same remote-write 1.0 load (built by
# `strata bench remote-write`: ~8 labels per series, 2000 samples per request) sent to
# `strata all` and to Prometheus's own receiver (`--web.enable-remote-write-receiver`).
# Prints wall-clock throughput, samples per receiver CPU-second and receiver RSS for each.
#
#   cargo build --release -p strata
#   SERIES=200000 STEPS=5 benches/remote_write_vs_prometheus.sh
set -euo pipefail
BIN=${STRATA_BIN:-target/release/strata}
SERIES=${SERIES:-200000}
STEPS=${STEPS:-5}
CONC=${CONCURRENCY:-4}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

wait_ready() { for _ in $(seq 1 120); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; return 1; }

echo "== strata all"
"$BIN" all --data-dir "$tmp/strata" --http-addr 127.0.0.1:19109 --grpc-addr 127.0.0.1:19195 \
  --log-level warn &
sp=$!
wait_ready http://127.0.0.1:19109/-/ready
"$BIN" bench remote-write --url http://127.0.0.1:19109/api/v1/push --series "$SERIES" \
  --steps "$STEPS" --concurrency "$CONC" --pid "$sp"
kill "$sp"; wait "$sp" 2>/dev/null || true

echo "== prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') --web.enable-remote-write-receiver"
echo "global: {}" > "$tmp/prometheus.yml"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address=127.0.0.1:19190 --web.enable-remote-write-receiver --log.level=warn &
pp=$!
wait_ready http://127.0.0.1:19190/-/ready
"$BIN" bench remote-write --url http://127.0.0.1:19190/api/v1/write --series "$SERIES" \
  --steps "$STEPS" --concurrency "$CONC" --pid "$pp"
kill "$pp"; wait "$pp" 2>/dev/null || true
