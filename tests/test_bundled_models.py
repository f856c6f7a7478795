"""The bundled models still reach the accuracy their model cards state, on a small held-out sample.

Each card (``models/NAME/README.md``, written by ``scripts/bundle_model.py``) states the mean
accuracy over 3 evaluation seeds of 600 test examples. Here a fresh sample from another seed must
land within 3.3 binomial standard deviations of it (two-sided, so a model that got much better
without its card being updated fails too), and the anchor claims must hold on the sample.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import pytest
import torch

import unmask
from unmask.evaluate import EvalReport, evaluate, task_of_model

MODELS = Path(__file__).resolve().parents[1] / "models"
SAMPLE = {"planning": 240, "sudoku": 48}  # the sudoku diffusion model decodes 82 forwards of 163 tokens
SEED = 11  # an evaluation seed none of the cards used (they use 0, 1, 2)


@functools.cache
def sample_report(name: str) -> EvalReport:
    """``models/name`` on the held-out sample of its own task (the same examples for a pair)."""
    torch.set_num_threads(2)
    task = task_of_model(MODELS / name)  # the task of its training_config.json
    return evaluate(unmask.load(MODELS / name), task, n=SAMPLE[task.split("-")[0]], seed=SEED)


def stated_mean(name: str) -> float:
    card = (MODELS / name / "README.md").read_text()
    found = re.search(r"Mean over the \d+ seeds: \*\*([\d.]+)%\*\*", card)
    assert found, f"models/{name}/README.md states no mean accuracy"
    return float(found.group(1)) / 100


@pytest.mark.parametrize("name", ["planning-diffusion", "planning-ar", "sudoku-diffusion", "sudoku-ar",
                                  "sudoku-wide-diffusion", "sudoku-wide-ar"])
def test_bundled_model_reaches_its_stated_accuracy(name: str) -> None:
    report = sample_report(name)
    n = report.n
    stated = stated_mean(name)
    tolerance = 3.3 * math.sqrt(max(stated * (1 - stated), 0.01) / n)
    assert abs(report.accuracy - stated) <= tolerance, f"{name}: {report.accuracy:.1%} on {n} examples, card says {stated:.1%}"
    if name == "sudoku-diffusion":
        assert report.accuracy >= 0.9
    if name == "sudoku-ar":
        assert report.accuracy <= 0.45
    if name == "sudoku-wide-diffusion":  # the full 23-36 givens range
        assert report.accuracy >= 0.85
    if name == "planning-ar":  # chance at the branch once it is >= 2 steps ahead
        by_pd = report.group_accuracy()
        assert all(0.25 <= by_pd[str(pd)] <= 0.75 for pd in (3, 4, 5)), by_pd
    if name == "planning-diffusion":  # the anchor row: solved at every planning distance (40 examples each)
        by_pd = report.group_accuracy()
        assert len(by_pd) == 6 and min(by_pd.values()) >= 0.9, by_pd


@pytest.mark.parametrize("family,lead", [("planning", 0.2), ("sudoku", 0.5), ("sudoku-wide", 0.1)])
def test_diffusion_leads_its_ar_pair_on_the_same_examples(family: str, lead: float) -> None:
    # each pair has equal size, data and training steps; the cards state leads of about 31, 70 and 20 points
    diffusion, ar = sample_report(f"{family}-diffusion"), sample_report(f"{family}-ar")
    assert diffusion.task == ar.task and diffusion.n == ar.n
    assert diffusion.accuracy - ar.accuracy >= lead, (diffusion.accuracy, ar.accuracy)
