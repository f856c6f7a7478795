"""The bundled models still reach the accuracy their model cards state, on a small held-out sample.

Each card (``models/NAME/README.md``, written by ``scripts/bundle_model.py``) states the mean
accuracy over 3 evaluation seeds of 600 test examples. Here a fresh sample from another seed must
land within 3.3 binomial standard deviations of it (two-sided, so a model that got much better
without its card being updated fails too), and the anchor claims must hold on the sample.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import unmask
from unmask.evaluate import evaluate, task_of_model

MODELS = Path(__file__).resolve().parents[1] / "models"
SAMPLE = {"planning": 240, "sudoku": 48}  # the sudoku diffusion model decodes 82 forwards of 163 tokens
SEED = 11  # an evaluation seed none of the cards used (they use 0, 1, 2)


def stated_mean(name: str) -> float:
    card = (MODELS / name / "README.md").read_text()
    found = re.search(r"Mean over the \d+ seeds: \*\*([\d.]+)%\*\*", card)
    assert found, f"models/{name}/README.md states no mean accuracy"
    return float(found.group(1)) / 100


@pytest.mark.parametrize("name", ["planning-diffusion", "planning-ar", "sudoku-diffusion", "sudoku-ar"])
def test_bundled_model_reaches_its_stated_accuracy(name: str) -> None:
    torch.set_num_threads(2)
    task = task_of_model(MODELS / name)  # the task of its training_config.json
    n = SAMPLE[task.split("-")[0]]
    report = evaluate(unmask.load(MODELS / name), task, n=n, seed=SEED)
    stated = stated_mean(name)
    tolerance = 3.3 * math.sqrt(max(stated * (1 - stated), 0.01) / n)
    assert abs(report.accuracy - stated) <= tolerance, f"{name}: {report.accuracy:.1%} on {n} examples, card says {stated:.1%}"
    if name == "sudoku-diffusion":
        assert report.accuracy >= 0.9
    if name == "sudoku-ar":
        assert report.accuracy <= 0.45
    if name == "planning-ar":  # chance at the branch once it is >= 2 steps ahead
        by_pd = report.group_accuracy()
        assert all(0.25 <= by_pd[str(pd)] <= 0.75 for pd in (3, 4, 5)), by_pd
    if name == "planning-diffusion":  # the anchor row: solved at every planning distance (40 examples each)
        by_pd = report.group_accuracy()
        assert len(by_pd) == 6 and min(by_pd.values()) >= 0.9, by_pd
