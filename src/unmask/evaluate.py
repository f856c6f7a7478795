"""Task accuracy of a model: decode held-out examples and score them exactly.

Decoding goes through :func:`unmask.generate`, so the model's ``generation_config.json`` supplies
the defaults (the training export writes one-token-per-step top-margin decoding for diffusion
models, ``max_new_tokens`` for AR ones) and any keyword overrides them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from unmask.model import DiffusionTransformer
from unmask.sampling.params import ParamError
from unmask.sampling.result import BestOfReport, SelfCheckReport
from unmask.tasks import TASKS, Task, draw, get_task


@dataclass
class EvalReport:
    model: str
    task: str
    n: int
    correct: int
    by_group: dict[str, list[int]] = field(default_factory=dict)  # group -> [correct, total]
    group_name: str | None = None
    nfe: float = 0.0  # mean forward passes each example took part in (rows may leave a batch early)
    batch_nfe: float = 0.0  # mean forward passes per decoding call (each call decodes a batch of rows)
    tokens_per_forward: float = 0.0  # tokens committed per forward pass, per row (measured, not assumed)
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    solved: list[bool] = field(default_factory=list)  # per example, in order: for paired comparisons
    answers: list[list[int]] = field(default_factory=list)  # per example, in order: the decoded answer tokens
    self_check: SelfCheckSummary | None = None  # with self_check_retries: the first decode and the check
    best_of: BestOfSummary | None = None  # AR with best_of > 1: the greedy answer and the candidates

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def group_accuracy(self) -> dict[str, float]:
        """Accuracy of each group (planning distance), in numeric group order; empty without groups."""
        ordered = sorted(self.by_group.items(), key=lambda item: int(item[0]))
        return {group: correct / total for group, (correct, total) in ordered if total}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model, "task": self.task, "n": self.n, "accuracy": self.accuracy,
            "ci95": list(self.ci95), "nfe": self.nfe, "tokens_per_forward": self.tokens_per_forward,
            "seconds": self.seconds,
        }
        if self.group_name:
            data[f"by_{self.group_name}"] = self.group_accuracy()
        if self.self_check is not None:
            data["self_check"] = self.self_check.to_json(self.n)
        if self.best_of is not None:
            data["best_of"] = self.best_of.to_json(self.n)
        return data


@dataclass
class SelfCheckSummary:
    """What the self-check did over an evaluation, scored against the task's answers.

    ``first_solved`` is the accuracy the same decode has without the self-check (its first
    answers), on the same examples: compare with :func:`paired_comparison`-style counts.
    """

    first_solved: list[bool] = field(default_factory=list)
    flagged: int = 0  # first answers that failed the check
    flagged_wrong: int = 0  # ... of which really wrong
    unflagged_wrong: int = 0  # wrong first answers the check passed (missed)
    retries: int = 0  # retry decodes run, over all examples
    replaced: int = 0  # first answers replaced by a retry that passed its check
    replaced_right: int = 0  # ... where the retry is right
    still_flagged: int = 0  # rows returned with an answer that fails its check

    @property
    def first_correct(self) -> int:
        return sum(self.first_solved)

    def to_json(self, n: int) -> dict[str, Any]:
        return {"first_accuracy": self.first_correct / n if n else 0.0, "flagged": self.flagged,
                "flagged_wrong": self.flagged_wrong, "unflagged_wrong": self.unflagged_wrong,
                "retries": self.retries, "replaced": self.replaced, "replaced_right": self.replaced_right,
                "still_flagged": self.still_flagged}

    def add(self, first_ok: list[bool], final_ok: list[bool], report: SelfCheckReport) -> None:
        for first, final, flagged, tries, passed in zip(first_ok, final_ok, report.flagged_first, report.retries, report.passed):
            self.first_solved.append(first)
            self.flagged += flagged
            self.flagged_wrong += flagged and not first
            self.unflagged_wrong += not flagged and not first
            self.retries += tries
            self.replaced += flagged and passed
            self.replaced_right += flagged and passed and final
            self.still_flagged += not passed


@dataclass
class BestOfSummary:
    """What AR ``best_of`` did over an evaluation, scored against the task's answers."""

    candidates: int = 0  # best_of: the greedy answer plus samples, per example
    greedy_solved: list[bool] = field(default_factory=list)  # candidate 0 alone: the plain greedy decode
    any_right: int = 0  # examples where some candidate is right (what a perfect ranking would reach)
    picked_greedy: int = 0  # examples where the likeliest candidate is the greedy one

    def to_json(self, n: int) -> dict[str, Any]:
        return {"candidates": self.candidates, "greedy_accuracy": sum(self.greedy_solved) / n if n else 0.0,
                "any_right": self.any_right, "picked_greedy": self.picked_greedy}

    def add(self, right: list[list[bool]], report: BestOfReport) -> None:
        """``right[b][k]``: candidate k of example b is right."""
        self.candidates = report.candidates.shape[1]
        for row, chosen in zip(right, report.chosen):
            self.greedy_solved.append(row[0])
            self.any_right += any(row)
            self.picked_greedy += chosen == 0


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval (sound at 0% and 100%, unlike the normal approximation)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


@dataclass(frozen=True)
class PairedComparison:
    """Two decodings of the same examples: where they disagree, and whether that is more than chance."""

    only_first: int  # examples only the first decoding solved
    only_second: int
    both: int
    neither: int

    @property
    def p_value(self) -> float:
        """Exact two-sided McNemar test: under "no difference" each disagreement is a fair coin."""
        discordant = self.only_first + self.only_second
        if discordant == 0:
            return 1.0
        tail = sum(math.comb(discordant, k) for k in range(min(self.only_first, self.only_second) + 1))
        return min(1.0, 2 * tail / 2**discordant)


def paired_comparison(first: EvalReport, second: EvalReport) -> PairedComparison:
    """Compare two reports on the same examples in the same order (e.g. two unmasking orders)."""
    if first.n != second.n or len(first.solved) != first.n or len(second.solved) != second.n:
        raise ValueError(f"a paired comparison needs per-example results of the same examples; "
                         f"got n={first.n} ({len(first.solved)} results) and n={second.n} ({len(second.solved)} results)")
    pairs = list(zip(first.solved, second.solved))
    return PairedComparison(only_first=sum(a and not b for a, b in pairs), only_second=sum(b and not a for a, b in pairs),
                            both=sum(a and b for a, b in pairs), neither=sum(not a and not b for a, b in pairs))


def check_model_fits_task(model: DiffusionTransformer, task: Task) -> None:
    config = model.config
    if config.vocab_size != task.vocab.size:
        raise ParamError(f"model vocab_size {config.vocab_size} does not match task {task.name!r} (vocab size {task.vocab.size}); is this a {task.name} model?")
    if config.attention != "causal" and config.mask_token_id != task.vocab.mask:
        raise ParamError(f"model mask_token_id {config.mask_token_id} is not task {task.name!r}'s mask id {task.vocab.mask}")


def decode_params(model: DiffusionTransformer, task: Task, overrides: dict[str, Any]) -> dict[str, Any]:
    """Task-shaped decoding keywords: the answer length, plus the caller's overrides."""
    if model.config.attention == "causal":
        params: dict[str, Any] = {"max_new_tokens": task.answer_length}
    else:
        params = {"gen_length": task.answer_length, "block_length": task.answer_length}
        if "steps" not in overrides and "steps" not in model.generation_config:
            params["steps"] = task.answer_length
    params.update(overrides)
    return params


def evaluate(
    model: DiffusionTransformer,
    task: Task | str,
    examples: list[Any] | None = None,
    *,
    n: int = 200,
    seed: int = 0,
    split: str = "test",
    batch_size: int = 256,
    model_name: str = "",
    **overrides: Any,
) -> EvalReport:
    """Accuracy of ``model`` on ``examples`` (default: ``n`` fresh examples of ``split`` from ``seed``)."""
    from unmask.api import generate

    task = get_task(task) if isinstance(task, str) else task
    check_model_fits_task(model, task)
    if examples is None:
        examples = draw(task, split, n, seed)
    params = decode_params(model, task, overrides)
    report = EvalReport(model=model_name, task=task.name, n=len(examples), correct=0, group_name=task.group_name, params=params)
    started = time.perf_counter()
    calls = 0
    nfe_total = 0
    committed = 0
    row_forwards = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        prompts = torch.tensor([task.prompt(e) for e in chunk], dtype=torch.long)
        out = generate(model, prompts, seed=seed, **params)
        calls += 1
        nfe_total += out.nfe
        committed += sum(sum(step) for step in out.commits_per_forward)
        row_forwards += sum(out.forwards_per_row)
        rows = out.tokens.tolist()
        report.answers.extend(rows)
        chunk_solved = [task.score(example, row) for example, row in zip(chunk, rows)]
        if out.self_check is not None:
            report.self_check = report.self_check or SelfCheckSummary()
            first_solved = [task.score(example, row) for example, row in zip(chunk, out.self_check.first_tokens.tolist())]
            report.self_check.add(first_solved, chunk_solved, out.self_check)
        if out.best_of is not None:
            report.best_of = report.best_of or BestOfSummary()
            right = [[task.score(example, candidate) for candidate in rows.tolist()]
                     for example, rows in zip(chunk, out.best_of.candidates)]
            report.best_of.add(right, out.best_of)
        for example, ok in zip(chunk, chunk_solved):
            report.correct += ok
            report.solved.append(ok)
            if task.group_of is not None:
                key = str(task.group_of(example))
                counts = report.by_group.setdefault(key, [0, 0])
                counts[0] += ok
                counts[1] += 1
    report.seconds = time.perf_counter() - started
    report.batch_nfe = nfe_total / calls if calls else 0.0
    report.tokens_per_forward = committed / row_forwards if row_forwards else 0.0
    report.nfe = row_forwards / len(examples) if examples else 0.0
    return report


def task_of_model(directory: Path) -> str:
    """The task a bundled/trained model was made for: training_config.json, else the name."""
    config = directory / "training_config.json"
    if config.is_file():
        source = json.loads(config.read_text()).get("data", {}).get("source")
        if source in TASKS:
            return str(source)
    for name in sorted(TASKS, key=len, reverse=True):  # "planning-anyjoin" before "planning"
        if name in directory.name:
            return name
    raise ParamError(f"cannot tell which task {directory} was trained on (no training_config.json data.source, "
                     f"no task name in the directory name); use --model DIR --prompt-file FILE for speed only")


def training_examples(directory: Path, task: Task | str, n: int) -> list[Any]:
    """The first ``n`` examples ``directory``'s model trained on, rebuilt from its
    ``training_config.json`` (``data.source``, ``data.seed``, ``data.group_weights``).

    ``draw`` is sequential, so these are exactly the first ``n`` rows of the training set. Scoring
    a model on them, against a fresh test sample, shows how much of it is memorisation.
    """
    task = get_task(task) if isinstance(task, str) else task
    config_path = directory / "training_config.json"
    if not config_path.is_file():
        raise ParamError(f"{directory} has no training_config.json, so its training examples cannot be rebuilt")
    try:
        data = json.loads(config_path.read_text())["data"]
        source, seed, size = data["source"], int(data["seed"]), int(data["train_size"])
        weights = tuple(float(w) for w in data.get("group_weights") or ())
    except (ValueError, KeyError, TypeError) as error:
        raise ParamError(f"{config_path}: no usable data section ({error!r})") from None
    if source != task.name:
        raise ParamError(f"{config_path}: data.source is {source!r}, not the task {task.name!r}; its training examples are not of this task")
    if n > size:
        raise ParamError(f"--n {n} is more than the {size} examples the model trained on (data.train_size)")
    try:
        return draw(task, "train", n, seed, weights)
    except ValueError as error:  # e.g. group weights that do not fit the task
        raise ParamError(f"{config_path}: data.group_weights: {error}") from None
