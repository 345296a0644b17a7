#!/usr/bin/env bash
# Side-by-side query latency: the same GPU-fleet data set (`strata bench backfill`: SERIES
# counters plus SERIES/25 x 12 histogram buckets, MINUTES at 15 s, ending now) is written to
# `strata all` and to Prometheus's remote-write receiver, then each query runs RUNS times
# against both, interleaved, as an instant query at the last sample and as a range query over
# the whole window (STEP seconds). Prints median and p90 latency per system (curl's
# time_total, so HTTP and JSON included), the median ratio, a result checksum per system, and
# each process's RSS after loading and its peak RSS while querying (VmHWM, reset after load).
# The criterion bench benches/benches/promql.rs times the engine alone on the same data.
#
#   cargo build --release -p strata
#   benches/promql_vs_prometheus.sh                 # 10 000 series x 2 h, 20 runs
#   STRATA_BIN=target/debug/strata SERIES=1000 RUNS=5 benches/promql_vs_prometheus.sh
set -euo pipefail
BIN=${STRATA_BIN:-target/release/strata}
SERIES=${SERIES:-10000}
MINUTES=${MINUTES:-120}
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-2}
STEP=${STEP:-60}
SP=19209 PP=19290
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

QUERIES=(
  "sum_rate|sum by (job) (rate(gpu_requests_total[5m]))"
  "histogram_quantile|histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[5m])))"
  "topk|topk(5, rate(gpu_requests_total[5m]))"
  "subquery|max_over_time(rate(gpu_requests_total[5m])[30m:1m])"
)

wait_ready() { for _ in $(seq 1 120); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; return 1; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$2/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k / 1024}'; }

# query BASE KIND QUERY -> prints seconds; the body goes to $tmp/body.
query() {
  local args=(--data-urlencode "query=$3")
  if [ "$2" = range ]; then
    args+=(--data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "step=$STEP")
    curl -sf -G -o "$tmp/body" -w '%{time_total}\n' "${args[@]}" "$1/api/v1/query_range"
  else
    args+=(--data-urlencode "time=$END")
    curl -sf -G -o "$tmp/body" -w '%{time_total}\n' "${args[@]}" "$1/api/v1/query"
  fi
}

# "SERIES SUM": the series count and the sum of all finite values of the last answer. Range
# answers are summed from 35 min into the window on: before that, rate windows reach back to
# where the series begin, and Prometheus 2.42 extrapolates those toward zero differently
# from current Prometheus, which Strata follows.
checksum() {
  jq -r --argjson from "$(awk -v s="$START" 'BEGIN {printf "%.3f", s + 2100}')" \
    '[.data.result[] | [(.values // [.value])[] | select(.[0] >= $from) | .[1]]
      | select(length > 0)] as $s
     | [$s[][] | select(. != "NaN" and . != "+Inf" and . != "-Inf") | tonumber] as $v
     | "\($s | length) \($v | add // 0)"' "$tmp/body"
}

# same "N1 S1" "N2 S2": equal counts and sums within a relative 1e-6.
same() {
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); d = x[2] - y[2];
    m = (x[2] < 0 ? -x[2] : x[2]) + (y[2] < 0 ? -y[2] : y[2]);
    exit !(x[1] == y[1] && (d < 0 ? -d : d) <= 1e-6 * m) }'
}

# stats FILE -> "median p90" in ms.
stats() {
  sort -g "$1" | awk '{a[NR] = $1 * 1000} END {
    m = (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2; p = a[int(NR * 0.9 + 0.999)];
    printf "%.1f %.1f", m, p }'
}

# Samples lie 7.5 s off the 15 s grid and queries run 1 s after one: no range or lookback
# window then starts exactly on a sample, where Prometheus 2.x (closed windows) and 3.x
# (left-open, which Strata follows) differ. Both receivers get identical timestamps.
END_MS=$(( $(date +%s) * 1000 / 15000 * 15000 - 7500 ))
END=$(awk -v t="$END_MS" 'BEGIN {printf "%.3f", t / 1000 + 1}')
START=$(awk -v t="$END_MS" -v m="$MINUTES" 'BEGIN {printf "%.3f", t / 1000 + 1 - m * 60}')
backfill() {
  "$BIN" bench backfill --url "$1" --series "$SERIES" --minutes "$MINUTES" --end-ms "$END_MS"
}

echo "== loading $SERIES counters + $(( SERIES / 25 > 0 ? SERIES / 25 * 12 : 12 )) histogram buckets x ${MINUTES}m at 15s"
"$BIN" all --data-dir "$tmp/strata" --http-addr "127.0.0.1:$SP" --grpc-addr 127.0.0.1:19295 \
  --log-level warn &
spid=$!
echo "global: {}" > "$tmp/prometheus.yml"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="127.0.0.1:$PP" --web.enable-remote-write-receiver --log.level=warn &
ppid=$!
wait_ready "http://127.0.0.1:$SP/-/ready"
wait_ready "http://127.0.0.1:$PP/-/ready"
echo "strata:     $(backfill "http://127.0.0.1:$SP/api/v1/push")"
echo "prometheus: $(backfill "http://127.0.0.1:$PP/api/v1/write")"

# Wait until every counter is queryable on both.
for base in "http://127.0.0.1:$SP" "http://127.0.0.1:$PP"; do
  for _ in $(seq 1 120); do
    query "$base" instant "count(gpu_requests_total)" >/dev/null || true
    if [ "$(jq -r '.data.result[0].value[1] // 0' "$tmp/body" 2>/dev/null)" = "$SERIES" ]; then
      break
    fi
    sleep 0.5
  done
done

for who in strata:$spid prometheus:$ppid; do
  pid=${who#*:}
  printf '%-11s pid %s: RSS after load %s (peak during load %s)\n' "${who%:*}" "$pid" \
    "$(mib "$(kib VmRSS "$pid")")" "$(mib "$(kib VmHWM "$pid")")"
  echo 5 > "/proc/$pid/clear_refs" # resets VmHWM, so the next reading is the query peak
done

echo
echo "== $RUNS runs each after $WARMUP warm-up runs, interleaved; latency in ms (curl time_total)"
printf '%-20s %-8s %10s %10s %10s %10s %8s\n' query kind strata_med strata_p90 prom_med \
  prom_p90 ratio
for q in "${QUERIES[@]}"; do
  name=${q%%|*} expr=${q#*|}
  for kind in instant range; do
    : > "$tmp/s" && : > "$tmp/p"
    for i in $(seq 1 $(( WARMUP + RUNS ))); do
      ts=$(query "http://127.0.0.1:$SP" "$kind" "$expr")
      if [ "$i" -eq 1 ]; then sum_s=$(checksum); fi
      tp=$(query "http://127.0.0.1:$PP" "$kind" "$expr")
      if [ "$i" -eq 1 ]; then sum_p=$(checksum); fi
      if [ "$i" -gt "$WARMUP" ]; then echo "$ts" >> "$tmp/s"; echo "$tp" >> "$tmp/p"; fi
    done
    read -r sm s90 <<< "$(stats "$tmp/s")"
    read -r pm p90 <<< "$(stats "$tmp/p")"
    printf '%-20s %-8s %10s %10s %10s %10s %8s\n' "$name" "$kind" "$sm" "$s90" "$pm" "$p90" \
      "$(awk -v a="$sm" -v b="$pm" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
    if ! same "$sum_s" "$sum_p"; then
      echo "    results differ (series, sum of values): strata $sum_s; prometheus $sum_p"
    fi
  done
done

echo
for who in strata:$spid prometheus:$ppid; do
  pid=${who#*:}
  printf '%-11s peak RSS while querying (VmHWM): %s\n' "${who%:*}" "$(mib "$(kib VmHWM "$pid")")"
done
