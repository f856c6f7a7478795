"""scripts/planning_misses.py: the wrong answers it lists are the ones unmask eval counts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import unmask
from unmask.evaluate import evaluate
from unmask.tasks.planning import PlanningExample
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def test_lookup_kinds_on_a_hand_made_example() -> None:
    # path 0-1-2-3-4-5; the out-branch leaves at 3 (PD 2) through 6, the in-branch joins 3 from 7
    example = PlanningExample(edges=((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (3, 6), (6, 8), (7, 3), (9, 7), (10, 9)),
                              start=0, goal=5, path=(0, 1, 2, 3, 4, 5), pd=2)
    kind = load_script("planning_misses").lookup_kind
    assert kind(example, 4, 6) == "succ"  # the branch point's other successor
    assert kind(example, 2, 7) == "pred"  # the branch point's other predecessor
    assert kind(example, 1, 10) == "none"


def test_misses_match_eval_and_the_ar_model_takes_the_forward_lookup(capsys: pytest.CaptureFixture[str]) -> None:
    model = ROOT / "models" / "planning-ar"
    load_script("planning_misses").main([str(model), "--n", "36", "--seed", "3", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    wrong = 36 - evaluate(unmask.load(model), "planning", n=36, seed=3).correct
    assert wrong > 0 and lines[0].endswith(f"{wrong} of 36 test examples wrong (seed 3, 1 threads)")
    assert len(lines) == 1 + wrong
    assert all("  wrong v" in line for line in lines[1:])  # every listed answer names a wrong node
    # left to right, the AR model's first wrong node is always another successor of the node before it
    assert all(line.split("wrong ")[1].split(",")[0].endswith(":succ") for line in lines[1:])


def test_n_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        load_script("planning_misses").main(["models/planning-ar", "--n", "0"])
