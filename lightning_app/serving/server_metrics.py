"""Server metrics in the Prometheus text format (no client library needed).

Each worker process counts its own requests; with several workers each one also writes its
counts to a shared directory about once a second, and ``GET /metrics`` (served by whichever
worker the connection reached) adds every worker's counts up.
"""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
KNOWN_PATHS = (
    "/predict",
    "/health",
    "/ready",
    "/metadata",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/redoc",
)


class Histogram:
    """Cumulative-bucket histogram (``le`` buckets plus ``+Inf``), sum and count."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value

    def state(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.sum}


class ServerMetrics:
    """Counters and histograms of one worker.

    Args:
        share_dir: directory where each worker publishes its counts (several workers); None for
            a single process.
        model_version: exported as a label of ``lapp_model_info``.
    """

    def __init__(self, share_dir: str | None = None, model_version: str = ""):
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.inference = Histogram(LATENCY_BUCKETS)
        self.instances = 0
        self.queued = 0
        self.model_version = model_version
        self.share_dir = Path(share_dir) if share_dir else None
        self._published = 0.0

    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count one HTTP response (unknown paths are grouped as ``other``)."""
        key = (method, path if path in KNOWN_PATHS else "other", status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if path == "/predict":
            self.latency.observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        """Count one model call of ``size`` instances."""
        self.batch_size.observe(size)
        self.inference.observe(seconds)
        self.instances += size

    def state(self) -> dict[str, Any]:
        return {
            "requests": [[m, p, s, n] for (m, p, s), n in self.requests.items()],
            "latency": self.latency.state(),
            "batch_size": self.batch_size.state(),
            "inference": self.inference.state(),
            "instances": self.instances,
            "queued": self.queued,
        }

    def publish(self, force: bool = False) -> None:
        """Write this worker's counts for the others (at most once a second unless forced)."""
        now = time.monotonic()
        if self.share_dir is None or (not force and now - self._published < 1.0):
            return
        self._published = now
        path = self.share_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.state()))
            os.replace(tmp, path)
        except OSError:  # the directory went away at shutdown: nothing to share any more
            pass

    def _states(self) -> list[dict[str, Any]]:
        states = [self.state()]
        if self.share_dir is None:
            return states
        mine = f"{os.getpid()}.json"
        for path in self.share_dir.glob("*.json"):
            if path.name == mine:
                continue
            try:
                states.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        return states

    def render(self) -> str:
        """Every worker's counts, summed, in the Prometheus text exposition format."""
        states = self._states()
        requests: dict[tuple[str, str, int], int] = {}
        for st in states:
            for m, p, s, n in st["requests"]:
                requests[(m, p, s)] = requests.get((m, p, s), 0) + n
        lines = [
            "# HELP lapp_model_info The served model.",
            "# TYPE lapp_model_info gauge",
            f'lapp_model_info{{version="{_escape(self.model_version)}"}} 1',
            "# HELP lapp_requests_total HTTP responses by method, path and status code.",
            "# TYPE lapp_requests_total counter",
        ]
        for (m, p, s), n in sorted(requests.items()):
            lines.append(f'lapp_requests_total{{method="{m}",path="{p}",status="{s}"}} {n}')
        lines += _histogram(
            "lapp_request_duration_seconds",
            "Time to answer POST /predict.",
            LATENCY_BUCKETS,
            states,
            "latency",
        )
        lines += _histogram(
            "lapp_batch_size", "Instances per model call.", BATCH_BUCKETS, states, "batch_size"
        )
        lines += _histogram(
            "lapp_inference_duration_seconds",
            "Time of one model call.",
            LATENCY_BUCKETS,
            states,
            "inference",
        )
        lines += [
            "# HELP lapp_instances_total Instances predicted.",
            "# TYPE lapp_instances_total counter",
            f"lapp_instances_total {sum(st['instances'] for st in states)}",
            "# HELP lapp_queue_instances Instances waiting for a model call.",
            "# TYPE lapp_queue_instances gauge",
            f"lapp_queue_instances {sum(st['queued'] for st in states)}",
            "# HELP lapp_workers Worker processes reporting.",
            "# TYPE lapp_workers gauge",
            f"lapp_workers {len(states)}",
        ]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histogram(
    name: str, doc: str, buckets: tuple[float, ...], states: list[dict], key: str
) -> list[str]:
    counts = [0] * (len(buckets) + 1)
    total = 0.0
    for st in states:
        counts = [a + b for a, b in zip(counts, st[key]["counts"], strict=True)]
        total += st[key]["sum"]
    lines = [f"# HELP {name} {doc}", f"# TYPE {name} histogram"]
    running = 0
    for bound, n in zip((*buckets, "+Inf"), counts, strict=True):
        running += n
        lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
    lines += [f"{name}_sum {total}", f"{name}_count {running}"]
    return lines
