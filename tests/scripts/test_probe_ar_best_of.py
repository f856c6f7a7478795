"""The AR best-of probe: its sweep over candidate counts, and a run on a tiny AR Sudoku model
that must agree with the library's greedy evaluation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import unmask
from unmask.evaluate import evaluate
from tests.test_evaluate import tiny_task_model
from tests.scripts import load_script


def test_sweep_picks_the_likeliest_of_the_first_candidates() -> None:
    right = torch.tensor([[False, True, False], [True, False, False], [False, False, True]])
    scores = torch.tensor([[-3.0, -1.0, -0.5], [-1.0, -2.0, -0.1], [-1.0, -0.5, -2.0]], dtype=torch.float64)
    rows = load_script("probe_ar_best_of").sweep(right, scores, [0, 1, 2])
    # k=0: greedy alone (1 of 3 right); k=1: picks 1, 0, 1 -> rows 0 and 1 right; k=2: picks 2, 2, 1 -> none right
    assert rows == [(0, pytest.approx(1 / 3), pytest.approx(1 / 3)), (1, pytest.approx(2 / 3), pytest.approx(2 / 3)),
                    (2, 0.0, 1.0)]


def test_probe_runs_and_its_first_row_is_the_greedy_evaluation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = tiny_task_model(tmp_path, "sudoku-wide", "ar", learned_positions=True)
    probe = load_script("probe_ar_best_of")
    monkeypatch.setattr(probe, "PUZZLES_PER_CALL", 3)  # two decoding calls
    monkeypatch.setattr(sys, "argv", ["probe", str(model_dir), "--n", "5", "--samples", "2", "--threads", "1"])
    assert probe.main() == 0
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if line.startswith("| greedy + ")]
    assert [line.split(" | ")[0] for line in table] == ["| greedy + 0", "| greedy + 1", "| greedy + 2"]
    greedy = evaluate(unmask.load(model_dir), "sudoku-wide", n=5, seed=0)
    assert table[0].split(" | ")[1] == f"{100 * greedy.accuracy:.1f}%"
    assert table[2].split(" | ")[3] == f"{3 * 164} |"  # three candidates of prompt + answer positions
