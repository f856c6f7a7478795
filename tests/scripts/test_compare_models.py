"""scripts/compare_models.py: two models scored on the same examples, paired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import unmask
from unmask.evaluate import evaluate
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def test_counts_agree_with_separate_evaluations(capsys: pytest.CaptureFixture[str]) -> None:
    diffusion, ar = ROOT / "models" / "planning-diffusion", ROOT / "models" / "planning-ar"
    load_script("compare_models").main([str(diffusion), str(ar), "--task", "planning", "--n", "36", "--seed", "3",
                                        "--threads", "1", "--output", "json"])
    result = json.loads(capsys.readouterr().out)
    alone = [evaluate(unmask.load(d), "planning", n=36, seed=3) for d in (diffusion, ar)]
    assert result["only_first"] + result["both"] == alone[0].correct
    assert result["only_second"] + result["both"] == alone[1].correct
    assert sum(result[k] for k in ("only_first", "only_second", "both", "neither")) == 36
    assert [m["accuracy"] for m in result["models"]] == [r.correct / 36 for r in alone]
    assert result["only_first"] > 0  # the AR model misses long planning distances the diffusion model solves


def test_a_model_against_itself_disagrees_nowhere(capsys: pytest.CaptureFixture[str]) -> None:
    model = str(ROOT / "models" / "planning-ar")
    load_script("compare_models").main([model, model, "--task", "planning", "--n", "12", "--threads", "1"])
    out = capsys.readouterr().out
    assert "only A 0, only B 0" in out and "p = 1 " in out


def test_n_below_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_script("compare_models").main(["a", "b", "--task", "planning", "--n", "0"])
    assert "--n must be at least 1" in capsys.readouterr().err
