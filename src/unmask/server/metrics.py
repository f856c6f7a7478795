"""Counters and histograms, written in the Prometheus text exposition format for ``GET /metrics``.

Small on purpose (no client library): a handful of series, updated from the event loop and the
engine thread under one lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1

    def lines(self, name: str) -> list[str]:
        out = [f'{name}_bucket{{le="{bound}"}} {count}' for bound, count in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{name}_sum {self.total:.6f}")
        out.append(f"{name}_count {self.count}")
        return out


class Metrics:
    """The server's series. ``queue_depth`` and ``running`` are read live from the scheduler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}  # (endpoint, status class or finish) -> n
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.forward_passes = 0
        self.batches = 0
        self.batched_rows = 0
        self.request_seconds = Histogram()
        self.first_chunk_seconds = Histogram()
        self.queue_seconds = Histogram()

    def count_request(self, endpoint: str, outcome: str) -> None:
        with self._lock:
            key = (endpoint, outcome)
            self.requests[key] = self.requests.get(key, 0) + 1

    def count_tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion

    def count_batch(self, rows: int, forwards: int) -> None:
        with self._lock:
            self.batches += 1
            self.batched_rows += rows
            self.forward_passes += forwards

    def observe(self, histogram: Histogram, seconds: float) -> None:
        with self._lock:
            histogram.observe(seconds)

    def render(self, queue_depth: int, running: int) -> str:
        with self._lock:
            lines = [
                "# HELP unmask_requests_total Requests answered, by endpoint and outcome.",
                "# TYPE unmask_requests_total counter",
            ]
            for (endpoint, outcome), count in sorted(self.requests.items()):
                lines.append(f'unmask_requests_total{{endpoint="{endpoint}",outcome="{outcome}"}} {count}')
            simple = [
                ("unmask_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", self.prompt_tokens),
                ("unmask_completion_tokens_total", "counter", "Completion tokens returned to clients.", self.completion_tokens),
                ("unmask_forward_passes_total", "counter", "Model forward passes (NFE) run by the engine.", self.forward_passes),
                ("unmask_batches_total", "counter", "Engine runs (batches) started.", self.batches),
                ("unmask_batch_rows_total", "counter", "Rows over all engine runs (mean batch size = rows/batches).", self.batched_rows),
                ("unmask_queue_depth", "gauge", "Rows waiting for the engine (one per choice).", queue_depth),
                ("unmask_running_requests", "gauge", "Rows being decoded now (one per choice).", running),
            ]
            for name, kind, text, value in simple:
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
            histograms = [
                ("unmask_request_seconds", "Time from arrival to the last byte.", self.request_seconds),
                ("unmask_time_to_first_chunk_seconds", "Streaming: arrival to the first content chunk.", self.first_chunk_seconds),
                ("unmask_queue_seconds", "Time a request waited before its batch started.", self.queue_seconds),
            ]
            for name, text, histogram in histograms:
                lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"] + histogram.lines(name)
        return "\n".join(lines) + "\n"
