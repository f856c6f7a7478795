"""``unmask bench`` on the bundled planning models, kept tiny: the row shape and the ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unmask.bench.decode import DEFAULT_N, BenchConfig, default_configs, default_count, run_bench
from unmask.bench.report import markdown_table, plot
from unmask.cli import main
from unmask.evaluate import task_of_model

MODELS = Path(__file__).resolve().parents[2] / "models"
FIELDS = {"model", "task", "policy", "cache", "threads", "accuracy", "accuracy_delta", "nfe", "tokens_per_forward",
          "tokens_per_second", "speedup_vs_reference", "speedup_vs_ar"}


def test_default_grid_covers_every_policy_and_cache() -> None:
    configs = default_configs()
    assert configs[0].policy == "reference" and configs[0].params == {}
    assert {c.policy for c in configs} == {"reference", "fixed", "threshold", "factor", "eb", "hierarchical"}
    assert {c.cache for c in configs} == {"none", "prefix", "dual"}
    assert len({c.label for c in configs}) == len(configs)


def test_default_count_follows_the_task_family() -> None:
    # the full-range Sudoku pair decodes 82 forwards per puzzle like sudoku, not 128 puzzles a row
    assert default_count("sudoku-wide") == DEFAULT_N["sudoku"] and default_count("planning-anyjoin") == DEFAULT_N["planning"]
    assert default_count("planning") == DEFAULT_N["planning"] and default_count("other") == 128


def test_rows_and_ratios(tmp_path: Path) -> None:
    configs = [BenchConfig("reference", "reference", "none", {}), BenchConfig("threshold 0.9", "threshold", "none", {"threshold": 0.9}),
               BenchConfig("threshold 1.0", "threshold", "none", {"threshold": 1.0})]
    rows = run_bench([MODELS / "planning-diffusion"], {"planning": MODELS / "planning-ar"}, n=12, batch_sizes=[4], seed=3,
                     threads=1, configs=configs, task_of=task_of_model)
    reference, fast, one_per_step, ar = rows
    assert (reference.policy, ar.policy) == ("reference", "ar")
    assert reference.speedup_vs_reference == 1.0 and reference.accuracy_delta == 0.0 and ar.speedup_vs_ar == 1.0
    assert reference.nfe == 7.0 and reference.tokens_per_forward == 1.0  # one token per forward, 7 answer tokens
    # threshold 1.0 only ever commits the top-1: the reference's tokens, forward for forward
    assert one_per_step.accuracy == reference.accuracy and one_per_step.nfe == 7.0
    assert fast.nfe < 7.0 and fast.tokens_per_forward == pytest.approx(7.0 / fast.nfe)
    assert fast.speedup_vs_reference == pytest.approx(fast.tokens_per_second / reference.tokens_per_second)
    assert fast.speedup_vs_ar == pytest.approx(fast.tokens_per_second / ar.tokens_per_second)
    table = markdown_table(rows)
    assert "threshold 0.9" in table and "(AR)" in table
    assert plot(rows, tmp_path / "bench.png").stat().st_size > 1000


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--models", str(MODELS / "planning-diffusion"), "--n", "4", "--batch-sizes", "4", "--threads", "1",
                 "--output", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == len(default_configs()) + 1
    for row in rows:
        assert FIELDS <= set(row)
    assert rows[-1]["policy"] == "ar" and rows[-1]["model"].endswith("planning-ar")


def test_prompt_file_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("3 7 12 5 SEP 3 9 ANS\n1,2,3\n\n")
    assert main(["bench", "--model", str(MODELS / "planning-diffusion"), "--prompt-file", str(prompts), "--gen-length", "8",
                 "--batch-sizes", "2", "--threads", "1", "--output", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["accuracy"] is None and rows[0]["speedup_vs_reference"] == 1.0 and rows[0]["nfe"] == 8.0


def test_bad_options_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--models", str(tmp_path)]) != 0
    assert "not a model directory" in capsys.readouterr().err
    assert main(["bench", "--model", str(MODELS / "planning-diffusion")]) != 0
    assert "--prompt-file" in capsys.readouterr().err
