"""Decode the same held-out task prompts with every policy x cache, and the AR baseline.

Every configuration of one model is measured in the same process, on the same examples, at the
same batch size and thread count, after a warm-up, so the ratios (speed-up over the reference
decoder, over the equal-size AR model) compare like with like. Nothing is cached between
configurations: each one decodes from scratch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from unmask.evaluate import EvalReport, evaluate
from unmask.model import DiffusionTransformer
from unmask.tasks import Task, draw, get_task


@dataclass(frozen=True)
class BenchConfig:
    """One decoding configuration: a label, the policy/cache names for the table, and the
    keywords passed to ``unmask.generate`` (empty = the model's own reference decoding)."""

    label: str
    policy: str
    cache: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchRow:
    model: str
    task: str
    policy: str
    cache: str
    label: str
    threads: int
    n: int
    batch_size: int
    accuracy: float | None
    ci95: list[float] | None
    accuracy_delta: float | None
    nfe: float  # forward passes per example (each example's own, rows may leave a batch early)
    tokens_per_forward: float
    tokens_per_second: float
    seconds: float
    speedup_vs_reference: float | None
    speedup_vs_ar: float | None
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_configs() -> list[BenchConfig]:
    """The reference decoder, then each fast policy with no cache, prefix and dual cache."""
    configs = [BenchConfig("reference", "reference", "none", {})]
    # thresholds from strict to loose: the bundled Sudoku model needs 0.999 to keep its accuracy
    # (its confidences are over-sure in the all-masked state), the planning model is fine at 0.9
    policies: list[tuple[str, str, dict[str, Any]]] = [
        ("fixed", "fixed", {"policy": "fixed"}),
        ("threshold 0.999", "threshold", {"threshold": 0.999}),
        ("threshold 0.99", "threshold", {"threshold": 0.99}),
        ("threshold 0.9", "threshold", {"threshold": 0.9}),
        ("threshold 0.7", "threshold", {"threshold": 0.7}),
        ("factor 1.0", "factor", {"factor": 1.0}),
        ("eb 0.01", "eb", {"policy": "eb", "gamma": 0.01}),
        ("eb 0.1", "eb", {"policy": "eb", "gamma": 0.1}),
        ("eb 1.0", "eb", {"policy": "eb", "gamma": 1.0}),
        ("hierarchical 0.999/0.99", "hierarchical", {"policy": "hierarchical", "threshold": 0.999, "low_threshold": 0.99}),
    ]
    for cache in (None, "prefix", "dual"):
        for label, policy, params in policies:
            if label == "fixed" and cache is None:
                continue  # identical to the reference decoder's schedule
            cached = dict(params, cache=cache) if cache else dict(params)
            configs.append(BenchConfig(f"{label}" + (f" +{cache}" if cache else ""), policy, cache or "none", cached))
    return configs


def _measure(model: DiffusionTransformer, task: Task, examples: list[Any], batch_size: int, seed: int,
             name: str, params: dict[str, Any], repeats: int = 1) -> EvalReport:
    """Decode and score ``examples``; with ``repeats`` > 1 keep the fastest of the runs (the
    decoding is seeded, so every run gives the same tokens; only the wall time varies)."""
    reports = [evaluate(model, task, examples, seed=seed, batch_size=batch_size, model_name=name, **params) for _ in range(repeats)]
    return min(reports, key=lambda report: report.seconds)


def _tokens_per_second(report: EvalReport) -> float:
    committed = report.tokens_per_forward * report.nfe * report.n
    return committed / report.seconds if report.seconds > 0 else float("inf")


DEFAULT_N = {"planning": 256, "sudoku": 32}


def default_count(task_name: str) -> int:
    """Examples per row for a task: its own entry, else its family's (``sudoku-wide`` decodes
    like ``sudoku``), else 128."""
    return DEFAULT_N.get(task_name, DEFAULT_N.get(task_name.split("-")[0], 128))


def run_bench(
    model_dirs: list[Path],
    ar_dirs: dict[str, Path],
    *,
    n: int | dict[str, int] | None,
    batch_sizes: list[int],
    seed: int,
    threads: int,
    repeats: int = 1,
    compile: bool = False,
    configs: list[BenchConfig] | None = None,
    task_of: Callable[[Path], str],
    progress: Callable[[str], None] = lambda line: None,
) -> list[BenchRow]:
    """Rows for every model in ``model_dirs`` x batch size x ``configs``, plus the AR baseline.

    ``ar_dirs`` maps a task name to its equal-size AR model; ``task_of`` names a model's task;
    ``n`` (one count, or a count per task name; default per task: :data:`DEFAULT_N`) test
    examples are decoded by every row.
    Batch size 1 measures latency (one request at a time), larger ones throughput. Each row's
    time is the fastest of ``repeats`` runs. ``compile`` compiles both models' forward first
    (:func:`unmask.engine.compiled.compile_forward`).
    """
    import unmask

    torch.set_num_threads(threads)
    configs = configs or default_configs()
    rows: list[BenchRow] = []
    for model_dir in model_dirs:
        task = get_task(task_of(model_dir))
        count = n.get(task.name) if isinstance(n, dict) else n
        examples = draw(task, "test", count or default_count(task.name), seed)
        model = unmask.load(model_dir)
        ar_model = unmask.load(ar_dirs[task.name]) if task.name in ar_dirs else None
        if compile:  # both, so the AR baseline gets the same treatment
            from unmask.engine.compiled import compile_forward

            compile_forward(model)
            if ar_model is not None:
                compile_forward(ar_model)
        for batch_size in batch_sizes:
            rows += _bench_one_batch_size(model, str(model_dir), ar_model, str(ar_dirs.get(task.name, "")), task, examples,
                                          batch_size, seed, threads, configs, progress, repeats)
    return rows


def _bench_one_batch_size(model: DiffusionTransformer, name: str, ar_model: DiffusionTransformer | None, ar_name: str,
                          task: Task, examples: list[Any], batch_size: int, seed: int, threads: int,
                          configs: list[BenchConfig], progress: Callable[[str], None], repeats: int) -> list[BenchRow]:
    warm_up = examples[:min(len(examples), max(batch_size, 4))]
    for config in configs:  # every code path once (and, when compiled, every graph) before timing
        _measure(model, task, warm_up[:2], min(batch_size, 2), seed, name, config.params)
    _measure(model, task, warm_up, batch_size, seed, name, {})
    ar_row = None
    if ar_model is not None:
        _measure(ar_model, task, warm_up, batch_size, seed, ar_name, {})
        report = _measure(ar_model, task, examples, batch_size, seed, ar_name, {}, repeats)
        ar_row = _row(report, task, "ar (kv cache)", "ar", "kv", threads, batch_size, None, None, {})
        progress(_line(ar_row))
    rows: list[BenchRow] = []
    reference: BenchRow | None = None
    for config in configs:
        report = _measure(model, task, examples, batch_size, seed, name, config.params, repeats)
        row = _row(report, task, config.label, config.policy, config.cache, threads, batch_size, reference, ar_row, config.params)
        if config.policy == "reference":
            reference = row
            row.accuracy_delta, row.speedup_vs_reference = 0.0, 1.0
        rows.append(row)
        progress(_line(row))
    if ar_row is not None and reference is not None:
        if ar_row.accuracy is not None and reference.accuracy is not None:
            ar_row.accuracy_delta = ar_row.accuracy - reference.accuracy
        ar_row.speedup_vs_reference = ar_row.tokens_per_second / reference.tokens_per_second
        ar_row.speedup_vs_ar = 1.0
        rows.append(ar_row)
    return rows


def _row(report: EvalReport, task: Task, label: str, policy: str, cache: str, threads: int, batch_size: int,
         reference: BenchRow | None, ar_row: BenchRow | None, params: dict[str, Any]) -> BenchRow:
    tps = _tokens_per_second(report)
    return BenchRow(
        model=report.model, task=task.name, policy=policy, cache=cache, label=label, threads=threads, n=report.n,
        batch_size=batch_size, accuracy=report.accuracy, ci95=list(report.ci95),
        accuracy_delta=None if reference is None or reference.accuracy is None else report.accuracy - reference.accuracy,
        nfe=report.nfe, tokens_per_forward=report.tokens_per_forward, tokens_per_second=tps, seconds=report.seconds,
        speedup_vs_reference=None if reference is None else tps / reference.tokens_per_second,
        speedup_vs_ar=None if ar_row is None else tps / ar_row.tokens_per_second,
        params=params,
    )


def _line(row: BenchRow) -> str:
    accuracy = "" if row.accuracy is None else f"acc {row.accuracy:6.1%}  "
    return (f"{Path(row.model).name:<20} b{row.batch_size:<3} {row.label:<28} {accuracy}nfe {row.nfe:5.1f}  tok/fwd {row.tokens_per_forward:5.2f}  "
            f"tok/s {row.tokens_per_second:8.0f}")


def rows_to_json(rows: list[BenchRow]) -> str:
    return json.dumps({"rows": [row.to_json() for row in rows]})
