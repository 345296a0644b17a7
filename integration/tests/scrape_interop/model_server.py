"""A stand-in for a model server instrumented with prometheus_client, the way users' Python
apps are: counters, gauges, a histogram, a summary, an info and an enum metric, with labels,
plus the client's default process/platform/GC collectors. Serves /metrics on 127.0.0.1:PORT
(OpenMetrics or text, gzip or not, as the scraper asks) and keeps changing its values.

Usage: python3 model_server.py PORT
"""
import random
import sys
import time

from prometheus_client import (Counter, Enum, Gauge, Histogram, Info, Summary,
                               start_http_server)

MODELS = ("llama-3-8b", "mistral-7b")

requests = Counter("inference_requests", "Inference requests answered.", ["model", "status"])
latency = Histogram(
    "inference_latency_seconds",
    "Time to answer one inference request.",
    ["model"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
)
tokens = Summary("generated_tokens", "Tokens generated per request.", ["model"])
queue = Gauge("inference_queue_depth", "Requests waiting for a GPU.", ["model"])
batch = Gauge("pipeline_batch", "Size of the batch being loaded.", unit="bytes")
build = Info("model_server", "Model server build.")
state = Enum("pipeline_state", "Data pipeline state.", states=["idle", "loading", "training"])


def main() -> None:
    port = int(sys.argv[1])
    build.info({"version": "1.4.2", "runtime": "vllm"})
    # Every child exists from the start, so the set of series does not depend on timing.
    for m in MODELS:
        for status in ("ok", "error"):
            requests.labels(m, status)
        latency.labels(m)
        tokens.labels(m)
        queue.labels(m)
    start_http_server(port, addr="127.0.0.1")
    while True:
        for m in MODELS:
            requests.labels(m, "ok").inc(random.randint(1, 5))
            latency.labels(m).observe(random.random())
            tokens.labels(m).observe(random.randint(10, 500))
            queue.labels(m).set(random.randint(0, 20))
        batch.set(random.randint(1_000, 100_000))
        state.state(random.choice(["idle", "loading", "training"]))
        time.sleep(0.2)


if __name__ == "__main__":
    main()
