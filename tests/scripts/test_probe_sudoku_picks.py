"""scripts/probe_sudoku_picks.py: it watches the decoder's own states and scores what unmask eval scores."""

from __future__ import annotations

from pathlib import Path

import pytest

import unmask
from unmask.evaluate import evaluate
from tests.test_evaluate import tiny_task_model
from tests.scripts import load_script


def test_pick_kinds() -> None:
    kind = load_script("probe_sudoku_picks").pick_kind
    assert kind(0.95, 0.04) == "sure"
    assert kind(0.5, 0.1) == "unsure"
    assert kind(0.6, 0.35) == "split"
    assert kind(0.75, 0.2) == "split"  # a shared mass counts first, whatever p1 is
    band = load_script("probe_sudoku_picks").p1_band
    assert [band(p) for p in (0.5, 0.9, 0.995, 0.999, 1.0)] == ["< 0.9", "0.9-0.99", "0.99-0.999", ">= 0.999", ">= 0.999"]


@pytest.mark.parametrize("remasking", ["low_confidence", "margin"])
def test_probe_follows_the_decoders_states(tmp_path: Path, remasking: str) -> None:
    model_dir = tiny_task_model(tmp_path, "sudoku", "diffusion", learned_positions=True)
    report = load_script("probe_sudoku_picks").probe(str(model_dir), "sudoku", 3, 0, remasking)
    # one cell per row and forward, every one of them the best by the decode's own score on the
    # state the probe rebuilt (a probe one step behind or ahead would see a filled cell as masked)
    assert report.picks == 3 * 82
    assert report.not_best == 0
    assert sum(report.kinds.values()) == report.picks
    assert 0 <= report.differs <= report.picks
    expected = evaluate(unmask.load(model_dir), "sudoku", n=3, seed=0, remasking=remasking)
    assert report.solved == expected.solved
    assert len(report.first_errors) == report.solved.count(False)
    # the calibration bands count every pick up to a row's first error: each wrong one is a first error
    assert sum(wrong for _, wrong in report.bands.values()) == len(report.first_errors)
    assert sum(filled for filled, _ in report.bands.values()) <= report.picks


def test_the_two_scores_pick_differently_somewhere_on_a_random_model(tmp_path: Path) -> None:
    # a random model's distributions are flat, so p1 and p1 - p2 rank the cells differently
    model_dir = tiny_task_model(tmp_path, "sudoku", "diffusion", learned_positions=True)
    report = load_script("probe_sudoku_picks").probe(str(model_dir), "sudoku", 2, 0, "low_confidence")
    assert report.differs > 0


def test_refuses_an_ar_model_and_an_unknown_order(tmp_path: Path) -> None:
    script = load_script("probe_sudoku_picks")
    ar = tiny_task_model(tmp_path, "sudoku", "ar")
    with pytest.raises(ValueError, match="AR model"):
        script.probe(str(ar), "sudoku", 1, 0, "low_confidence")
    with pytest.raises(ValueError, match="--remasking"):
        script.probe(str(ar), "sudoku", 1, 0, "entropy")
    with pytest.raises(SystemExit):
        script.main([str(ar), "--n", "0"])
