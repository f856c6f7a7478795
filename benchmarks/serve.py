"""Serving speed on loopback: TTFT, inter-chunk latency, tokens/s and requests/s of ``unmask serve``
for 1, 4 and 16 concurrent streaming clients, batched against one-at-a-time in the same run.

    .venv/bin/python benchmarks/serve.py                      # bundled planning model
    .venv/bin/python benchmarks/serve.py --model tests/assets/tiny-llada-chat --max-tokens 32 --out -

The server runs as a real ``unmask serve`` subprocess (one engine thread, ``--threads``), the
clients are asyncio + httpx streams in this process. "one-at-a-time" is the same server with
``--max-batch 1``; the ratio column is batched / one-at-a-time throughput at equal concurrency.
Bounded: each client sends ``--rounds`` requests per level, after one warm-up request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    ttft: float  # request sent -> first chunk with text
    gaps: list[float]  # between consecutive chunks with text
    seconds: float
    tokens: int


@dataclass
class Level:
    mode: str
    clients: int
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    mean_batch: float = 0.0

    def row(self) -> dict[str, Any]:
        ttfts = sorted(s.ttft for s in self.samples)
        gaps = sorted(g for s in self.samples for g in s.gaps)
        tokens = sum(s.tokens for s in self.samples)
        return {
            "mode": self.mode, "clients": self.clients, "requests": len(self.samples),
            "ttft_p50_ms": 1000 * statistics.median(ttfts), "ttft_p90_ms": 1000 * ttfts[max(math.ceil(0.9 * len(ttfts)) - 1, 0)],
            "gap_p50_ms": 1000 * statistics.median(gaps) if gaps else float("nan"),
            "tokens_per_s": tokens / self.wall, "requests_per_s": len(self.samples) / self.wall, "mean_batch": self.mean_batch,
        }


def prompts(model: str, count: int) -> list[str]:
    """Held-out planning puzzles for the planning models, plain sentences otherwise."""
    import unmask
    from unmask.tasks.planning import PlanningVocab, make_dataset

    tokenizer = unmask.load(model).tokenizer
    if tokenizer is not None and tokenizer.token_id("SEP") is not None:
        vocab = PlanningVocab()
        return [tokenizer.decode(ex.prompt(vocab), skip_special_tokens=False) for ex in make_dataset(count, seed=777)]
    words = "a diffusion language model writes by filling a canvas of masked tokens in any order".split()
    return [" ".join(words[i % 7: i % 7 + 5]) for i in range(count)]


async def one_request(client: httpx.AsyncClient, body: dict[str, Any]) -> Sample:
    started = time.perf_counter()
    first, last, gaps, tokens = None, None, [], 0
    async with client.stream("POST", "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if any(choice.get("text") for choice in chunk.get("choices", [])):
                now = time.perf_counter()
                if first is None:
                    first = now
                else:
                    gaps.append(now - last)
                last = now
    end = time.perf_counter()
    return Sample(ttft=(first or end) - started, gaps=gaps, seconds=end - started, tokens=tokens)


async def run_level(url: str, mode: str, clients: int, rounds: int, texts: list[str], max_tokens: int | None) -> Level:
    level = Level(mode, clients)
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        def body(index: int) -> dict[str, Any]:
            out: dict[str, Any] = {"prompt": texts[index % len(texts)], "seed": index, "stream": True,
                                   "stream_options": {"include_usage": True}}
            if max_tokens is not None:
                out["max_tokens"] = max_tokens
            return out

        await one_request(client, body(0))  # warm-up
        before = await batch_counters(client)

        async def worker(worker_index: int) -> list[Sample]:
            return [await one_request(client, body(worker_index * rounds + r)) for r in range(rounds)]

        started = time.perf_counter()
        results = await asyncio.gather(*(worker(i) for i in range(clients)))
        level.wall = time.perf_counter() - started
        after = await batch_counters(client)
    level.samples = [sample for samples in results for sample in samples]
    level.mean_batch = (after[1] - before[1]) / max(after[0] - before[0], 1)
    return level


async def batch_counters(client: httpx.AsyncClient) -> tuple[int, int]:
    text = (await client.get("/metrics")).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")}
    return int(values["unmask_batches_total"]), int(values["unmask_batch_rows_total"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str, max_batch: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "unmask.cli", "serve", "--model", model, "--port", str(port), "--max-batch", str(max_batch),
               "--threads", str(threads), "--max-queue", "256", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def table(rows: list[dict[str, Any]]) -> str:
    head = "| mode | clients | requests | TTFT p50 (ms) | TTFT p90 (ms) | inter-chunk p50 (ms) | tokens/s | requests/s | mean batch | batched / one-at-a-time |"
    lines = [head, "|" + "---|" * 10]
    solo = {r["clients"]: r["tokens_per_s"] for r in rows if r["mode"] == "one-at-a-time"}
    for r in rows:
        ratio = f"{r['tokens_per_s'] / solo[r['clients']]:.2f}x" if r["mode"] == "batched" and solo.get(r["clients"]) else ""
        lines.append(f"| {r['mode']} | {r['clients']} | {r['requests']} | {r['ttft_p50_ms']:.1f} | {r['ttft_p90_ms']:.1f} | "
                     f"{r['gap_p50_ms']:.1f} | {r['tokens_per_s']:.1f} | {r['requests_per_s']:.2f} | {r['mean_batch']:.2f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "models" / "planning-diffusion"))
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels (default 1,4,16)")
    parser.add_argument("--rounds", type=int, default=4, help="requests per client per level (default 4)")
    parser.add_argument("--max-tokens", type=int, default=None, help="max_tokens per request (default: the model's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server's engine (default 1)")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks" / "serve.md"), help="markdown file, or - for stdout only")
    parser.add_argument("--append", action="store_true", help="add to --out instead of replacing it")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    texts = prompts(args.model, 64)
    rows = []
    for mode, max_batch in (("batched", max(levels)), ("one-at-a-time", 1)):
        process, url = start_server(args.model, max_batch, args.threads)
        try:
            for clients in levels:
                level = asyncio.run(run_level(url, mode, clients, args.rounds, texts, args.max_tokens))
                rows.append(level.row())
                print(f"{mode:>14} clients={clients:<3} {level.row()['tokens_per_s']:.1f} tokens/s", file=sys.stderr)
        finally:
            process.terminate()
            process.wait(10)
    rows.sort(key=lambda r: (r["clients"], r["mode"]))
    command = "benchmarks/serve.py " + " ".join(sys.argv[1:])
    report = (f"### Serving (`{command.strip()}`)\n\nModel `{Path(args.model).name}`, engine threads {args.threads}, "
              f"{os.cpu_count()} CPU cores, loopback, streaming clients; {args.rounds} requests per client per level. "
              "At 1 client the two modes run the same code path, so their gap is this machine's noise. A client sends its "
              "next request when the last one ends; batches form from the requests that wait meanwhile (mean batch).\n\n"
              + table(rows) + "\n")
    print(report)
    if args.out != "-":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        previous = Path(args.out).read_text() + "\n" if args.append and Path(args.out).exists() else ""
        Path(args.out).write_text(previous + report)


if __name__ == "__main__":
    main()
