#!/usr/bin/env bash
# Bytes per sample of the same data in a Strata block and in Prometheus's own TSDB block: one
# 2h block of the load generator's GPU-fleet series at 15 s (`OPENMETRICS` mode of the blocks
# bench), written by Strata's block writer and, from OpenMetrics text, by
# `promtool tsdb create-blocks-from openmetrics` (Debian's `prometheus` package).
#
#   SERIES=2000 benches/blocks_vs_prometheus.sh
set -euo pipefail
SERIES=${SERIES:-2000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

SERIES="$SERIES" OPENMETRICS="$tmp/fleet.om" cargo bench -q -p strata-benches --bench blocks
promtool tsdb create-blocks-from openmetrics "$tmp/fleet.om" "$tmp/prom" >/dev/null
python3 - "$tmp/prom" <<'PY'
import json, os, sys
root = sys.argv[1]
for block in sorted(os.listdir(root)):
    d = os.path.join(root, block)
    meta = os.path.join(d, "meta.json")
    if not os.path.isfile(meta):
        continue
    stats = json.load(open(meta))["stats"]
    samples = stats["numSamples"]
    chunks = sum(os.path.getsize(os.path.join(d, "chunks", f)) for f in os.listdir(os.path.join(d, "chunks")))
    total = sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)
    print(f"prometheus 2h block: {stats['numSeries']} series, {samples} samples, "
          f"{total} bytes: {total / samples:.3f} bytes/sample ({chunks / samples:.3f} in chunks, "
          f"the rest index and meta)")
PY
