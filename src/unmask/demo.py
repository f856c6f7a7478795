"""``unmask demo``: the bundled task models, diffusion against AR, and one puzzle denoised live.

For each task family with bundled models (``models/<family>-diffusion``, ``models/<family>-ar``:
planning and sudoku by default, the full-range sudoku-wide pair on request) it solves
held-out examples (the test split, disjoint from training by construction) with both, prints
accuracy (by planning distance for planning) with forward passes and tokens per forward, then
shows one sudoku (or planning) answer being filled in, step by step.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

import torch

from unmask.evaluate import EvalReport, evaluate, task_of_model
from unmask.sampling.params import ParamError
from unmask.tasks import Task, draw, get_task

DEFAULT_N = {"planning": 240, "sudoku": 16,  # Sudoku one token per forward is 82 full forwards
             "sudoku-wide": 48}  # asked for, so it may take longer: 16 puzzles would say little at 23-36 givens
# the engine's parallel decoding on the same diffusion model: the strictest bar that kept the
# reference decoder's accuracy in benchmarks/decode.py (docs/BENCHMARKS.md)
FAST_DECODING = {"planning": {"threshold": 0.9}, "sudoku": {"threshold": 0.999}}
# model families (models/<family>-{diffusion,ar}) the demo can compare; the default two keep the
# README's main command under a minute on a 2-core machine, the full-range Sudoku pair is asked for
FAMILIES = ("planning", "sudoku", "sudoku-wide")
DEFAULT_FAMILIES = ("planning", "sudoku")


def default_models_dir() -> Path:
    """``models/`` of the source checkout (or of the current directory)."""
    for candidate in (Path(__file__).resolve().parents[2] / "models", Path.cwd() / "models"):
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "models"


_MAX_GROUP_COLUMNS = 6
_PREFIX = 34  # width of "  name  accuracy [lo - hi]" before the per-group columns


def _row(name: str, report: EvalReport, by_group: bool) -> str:
    lo, hi = report.ci95
    prefix = f"  {name:<10} {report.accuracy:>6.1%} [{lo:>4.0%}-{hi:>4.0%}]".ljust(_PREFIX)
    groups = ""
    if by_group:
        groups = " ".join(f"{c / t:>4.0%}" for _, (c, t) in sorted(report.by_group.items(), key=lambda kv: int(kv[0]))) + "  "
    return f"{prefix}{groups}nfe {report.nfe:>4.1f}  tok/fwd {report.tokens_per_forward:4.2f}  {report.seconds:5.1f} s"


def bundled_task(models: Path, family: str) -> Task:
    """The task the bundled ``<family>-diffusion`` model was trained on (its training_config.json
    names it, e.g. ``sudoku-wide`` for a full-range Sudoku model), else the task ``family``."""
    directory = models / f"{family}-diffusion"
    return get_task(task_of_model(directory) if (directory / "config.json").exists() else family)


def compare(models: Path, family: str, n: int, seed: int, out: TextIO) -> dict[str, EvalReport]:
    """Diffusion and AR models ``models/<family>-{diffusion,ar}`` side by side, on ``n`` test
    examples of the diffusion model's own task."""
    import unmask

    task = bundled_task(models, family)
    examples = draw(task, "test", n, seed)
    reports = {}
    header = f"{task.name}: {n} held-out examples (test split, seed {seed})"
    # a column per group where they are few (planning distance 0-5), not the 14 givens counts of a
    # full-range Sudoku task, a handful of puzzles each at the demo's sample size
    by_group = bool(task.group_name) and task.num_groups <= _MAX_GROUP_COLUMNS
    if by_group:
        groups = sorted({str(task.group_of(e)) for e in examples}, key=int)
        header += "\n" + " " * _PREFIX + " ".join(f"{(task.group_name or '').upper() + g:>4}" for g in groups)
    print(header, file=out)
    for kind in ("diffusion", "ar"):
        directory = models / f"{family}-{kind}"
        if not (directory / "config.json").exists():
            print(f"  {kind:<10} (no bundled model at {directory})", file=out)
            continue
        model = unmask.load(directory)
        reports[kind] = evaluate(model, task, examples, seed=seed, model_name=str(directory))
        print(_row(kind, reports[kind], by_group), file=out)
        if kind == "diffusion" and family.split("-")[0] in FAST_DECODING:
            fast = FAST_DECODING[family.split("-")[0]]
            reports["fast"] = evaluate(model, task, examples, seed=seed, model_name=str(directory), **fast)
            label = "thr " + str(fast["threshold"])
            print(_row(label, reports["fast"], by_group), file=out)
    return reports


def _sudoku_frame(cells: list[int], filled_at: list[int], step: int, color: bool) -> list[str]:
    lines = []
    for r in range(9):
        parts = []
        for c in range(9):
            i = r * 9 + c
            when = filled_at[i]
            if when < 0:
                text = str(cells[i])  # a given
            elif when > step:
                text = "·"
            elif when == step and color:
                text = f"\x1b[1;32m{cells[i]}\x1b[0m"
            elif color:
                text = f"\x1b[36m{cells[i]}\x1b[0m"
            else:
                text = str(cells[i])
            parts.append(text)
            if c in (2, 5):
                parts.append("|")
        lines.append(" ".join(parts))
        if r in (2, 5):
            lines.append("------+-------+------")
    return lines


def animate_sudoku(models: Path, seed: int, out: TextIO, delay: float, family: str = "sudoku") -> None:
    import unmask

    directory = models / f"{family}-diffusion"
    if not (directory / "config.json").exists():
        return
    task = bundled_task(models, family)
    example = draw(task, "test", 1, seed + 1)[0]
    model = unmask.load(directory)
    filled_at = [-1] * 81
    prompt = torch.tensor([task.prompt(example)])

    def record(step: int, canvas: torch.Tensor, commit: torch.Tensor) -> None:
        for index in commit[0, task.prompt_length:task.prompt_length + 81].nonzero().flatten().tolist():
            if example.puzzle[index] == 0:
                filled_at[index] = step

    out_ = unmask.generate(model, prompt, seed=seed, on_step=record, gen_length=82, block_length=82)
    solution = out_.tokens[0, :81].tolist()
    cells = [example.puzzle[i] or solution[i] for i in range(81)]
    blanks = sorted((filled_at[i], i) for i in range(81) if example.puzzle[i] == 0)
    ok = task.score(example, out_.tokens[0].tolist())
    print(f"\n{task.name} denoised by the diffusion model: {example.givens} givens, {len(blanks)} blanks, "
          f"{out_.nfe} forward passes, {'solved' if ok else 'NOT solved'}", file=out)
    color = out.isatty()
    steps = sorted({s for s, _ in blanks})
    if color and delay > 0:
        height = 11
        for number, step in enumerate(steps):
            if number:
                out.write(f"\x1b[{height + 1}A")
            frame = _sudoku_frame(cells, filled_at, step, True)
            out.write("\n".join(frame) + f"\nstep {step + 1}/{out_.nfe}\x1b[K\n")
            out.flush()
            time.sleep(delay)
    else:
        for fraction in (0.25, 0.5, 1.0):
            step = steps[max(0, int(len(steps) * fraction) - 1)] if steps else 0
            print(f"after step {step + 1}:", file=out)
            print("\n".join("  " + line for line in _sudoku_frame(cells, filled_at, step, False)), file=out)
    order = " ".join(f"r{i // 9 + 1}c{i % 9 + 1}" for _, i in blanks[:12])
    print(f"fill order (first 12 of {len(blanks)}): {order} ...", file=out)


def animate_planning(models: Path, seed: int, out: TextIO) -> None:
    import unmask

    directory = models / "planning-diffusion"
    if not (directory / "config.json").exists():
        return
    task = bundled_task(models, "planning")
    example = next(e for e in draw(task, "test", 30, seed + 1) if e.pd == 3)
    model = unmask.load(directory)
    order: list[tuple[int, int]] = []

    def record(step: int, canvas: torch.Tensor, commit: torch.Tensor) -> None:
        for index in commit[0, task.prompt_length:].nonzero().flatten().tolist():
            order.append((step, index))

    result = unmask.generate(model, torch.tensor([task.prompt(example)]), seed=seed, on_step=record)
    answer = result.tokens[0].tolist()
    edges = " ".join(f"{a}>{b}" for a, b in example.edges)
    print(f"\nplanning (PD {example.pd}): edges {edges}; from {example.start} to {example.goal}", file=out)
    slots = ["_"] * len(answer)
    for step, index in order:
        slots[index] = str(answer[index]) if index < task.answer_length - 1 else "EOS"
        print(f"  step {step + 1}: " + " ".join(slots), file=out)
    print(f"  {'correct' if task.score(example, answer) else 'WRONG'} (the path is {' '.join(map(str, example.path))})", file=out)


def run_demo(models: Path | None = None, n_planning: int | None = None, n_sudoku: int | None = None,
             seed: int = 0, delay: float = 0.04, out: TextIO = sys.stdout,
             families: Sequence[str] = DEFAULT_FAMILIES) -> dict[str, Any]:
    """Compare each family's bundled pair, then animate one answer of each family's diffusion
    model (the first Sudoku family only: one grid is enough)."""
    unknown = [family for family in families if family not in FAMILIES]
    if unknown or not families:
        raise ParamError(f"demo families must be among {', '.join(FAMILIES)}; got {', '.join(unknown) or 'none'}")
    models = models or default_models_dir()
    print(f"unmask demo: bundled models in {models}, {torch.get_num_threads()} threads\n", file=out)
    results = {}
    for family in families:
        n = n_planning if family == "planning" else n_sudoku
        results[family] = compare(models, family, n or DEFAULT_N[family], seed, out)
        print(file=out)
    if "planning" in families:
        animate_planning(models, seed, out)
    sudoku = [family for family in families if family.startswith("sudoku")]
    if sudoku:
        animate_sudoku(models, seed, out, delay, sudoku[0])
    hidden = [f for f in FAMILIES if f not in families and (models / f"{f}-diffusion" / "config.json").exists()]
    if hidden:
        print(f"\nalso bundled: {', '.join(f + '-diffusion / ' + f + '-ar' for f in hidden)} "
              f"(unmask demo --families {' '.join(hidden)})", file=out)
    return results


__all__ = ["Task", "bundled_task", "compare", "default_models_dir", "run_demo"]
