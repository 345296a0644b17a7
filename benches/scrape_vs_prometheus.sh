#!/usr/bin/env bash
# Side-by-side scrape measurement: `strata bench targets` serves TARGETS simulated targets of
# SERIES series each (text format) and writes one scrape configuration; `strata all` and then
# Prometheus scrape them with it at INTERVAL seconds. After a warm-up, the simulator reads each
# scraper's CPU time over MEASURE seconds and the samples it scraped in that window (its own
# `scrape_samples_scraped`), and prints CPU-seconds per million samples and cores used.
#
#   cargo build --release -p strata
#   TARGETS=1000 SERIES=1000 INTERVAL=15 benches/scrape_vs_prometheus.sh
set -euo pipefail
BIN=${STRATA_BIN:-target/release/strata}
TARGETS=${TARGETS:-1000}
SERIES=${SERIES:-1000}
INTERVAL=${INTERVAL:-15}
WARMUP=${WARMUP:-45}
MEASURE=${MEASURE:-120}
PORT=${PORT:-20000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

wait_ready() { for _ in $(seq 1 120); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; return 1; }
sim() {
  "$BIN" bench targets --port "$PORT" --targets "$TARGETS" --series "$SERIES" \
    --interval-s "$INTERVAL" --config-out "$tmp/scrape.yml" "$@"
}

sim --config-only

echo "== strata all ($TARGETS targets x $SERIES series every ${INTERVAL}s)"
"$BIN" all --config "$tmp/scrape.yml" --data-dir "$tmp/strata" --http-addr 127.0.0.1:19109 \
  --grpc-addr 127.0.0.1:19195 --log-level warn &
sp=$!
wait_ready http://127.0.0.1:19109/-/ready
sim --pid "$sp" --query-url http://127.0.0.1:19109 --warmup-s "$WARMUP" --measure-s "$MEASURE"
kill "$sp"; wait "$sp" 2>/dev/null || true

echo "== prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}')"
prometheus --config.file="$tmp/scrape.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address=127.0.0.1:19190 --log.level=warn &
pp=$!
wait_ready http://127.0.0.1:19190/-/ready
sim --pid "$pp" --query-url http://127.0.0.1:19190 --warmup-s "$WARMUP" --measure-s "$MEASURE"
kill "$pp"; wait "$pp" 2>/dev/null || true
