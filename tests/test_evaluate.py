"""Task splits, the evaluator (with oracle models that know the answer) and ``unmask demo``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import unmask
from unmask.config import ModelConfig
from unmask.evaluate import EvalReport, evaluate, paired_comparison, wilson_interval
from unmask.model import DiffusionTransformer
from unmask.sampling import ParamError
from unmask.tasks import draw, get_task, split_of
from unmask.tasks.planning import paths_from_start


def planning_answer(prompt: list[int], task) -> list[int]:  # type: ignore[no-untyped-def]
    """Solve a planning prompt by search (the oracle's brain)."""
    edges = [(prompt[i], prompt[i + 1]) for i in range(0, 20, 2)]
    start, goal = prompt[21], prompt[22]

    class Example:  # the shape paths_from_start reads
        pass

    example = Example()
    example.edges, example.start = edges, start  # type: ignore[attr-defined]
    path = next(w for w in paths_from_start(example) if w[-1] == goal)  # type: ignore[arg-type]
    return path + [task.vocab.eos]


class Oracle(nn.Module):
    """A 'model' whose logits put all mass on the right answer token (or a wrong one, on request)."""

    def __init__(self, task, causal: bool = False, wrong_pd: int | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.task = task
        self.wrong_pd = wrong_pd
        self.config = ModelConfig(vocab_size=task.vocab.size, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2,
                                  intermediate_size=8, mask_token_id=task.vocab.mask, eos_token_id=task.vocab.eos,
                                  attention="causal" if causal else "bidirectional")
        self.generation_config: dict = {}
        self.anchor = nn.Parameter(torch.zeros(1))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def forward_chunk(self, ids: torch.Tensor, chunk_start: int = 0, past=None, attention_mask=None, position_ids=None):  # type: ignore[no-untyped-def]
        assert chunk_start == 0 and past is None, "the oracle sees whole canvases only"
        return self.forward(ids), None

    def forward(self, ids: torch.Tensor, attention_mask=None, position_ids=None) -> torch.Tensor:  # type: ignore[no-untyped-def]
        batch, length = ids.shape
        logits = torch.zeros(batch, length, self.task.vocab.size)
        p = self.task.prompt_length
        for row in range(batch):
            prompt = ids[row, :p].tolist()
            answer = planning_answer(prompt, self.task)
            branch_count = sum(1 for i in range(0, 20, 2) if prompt[i] in answer[:-1]) - 5  # edges leaving path nodes beyond the path
            if self.wrong_pd is not None and branch_count > 0:
                answer = [answer[1]] + answer[1:]  # a wrong answer for examples that have a branch
            for offset, token in enumerate(answer):
                logits[row, p + offset, token] = 10.0
        return logits


def test_splits_are_disjoint_and_seeded() -> None:
    task = get_task("planning")
    test = draw(task, "test", 50, seed=0)
    assert all(split_of(task.answer(e)) == "test" for e in test)
    train = draw(task, "train", 500, seed=0)
    assert all(split_of(task.answer(e)) == "train" for e in train)
    assert {tuple(task.answer(e)) for e in test}.isdisjoint({tuple(task.answer(e)) for e in train})
    assert [e.edges for e in draw(task, "test", 50, seed=0)] == [e.edges for e in test]
    assert [e.edges for e in draw(task, "test", 50, seed=1)] != [e.edges for e in test]
    with pytest.raises(ValueError, match="split"):
        draw(task, "dev", 1, 0)


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_paired_comparison_counts_disagreements_and_exact_mcnemar() -> None:
    def report(solved: list[bool]) -> EvalReport:
        return EvalReport(model="m", task="sudoku", n=len(solved), correct=sum(solved), solved=solved)

    # 1 example only the first solves, 9 only the second, 3 both, 2 neither
    first = report([True] + [False] * 9 + [True] * 3 + [False] * 2)
    second = report([False] + [True] * 9 + [True] * 3 + [False] * 2)
    paired = paired_comparison(first, second)
    assert (paired.only_first, paired.only_second, paired.both, paired.neither) == (1, 9, 3, 2)
    assert paired.p_value == pytest.approx(2 * (1 + 10) / 2**10)  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    assert paired_comparison(second, first).p_value == paired.p_value
    assert paired_comparison(report([True, False]), report([False, True])).p_value == 1.0
    assert paired_comparison(report([True] * 4), report([True] * 4)).p_value == 1.0
    assert paired_comparison(report([False] * 5), report([True] * 5)).p_value == pytest.approx(2 / 32)
    with pytest.raises(ValueError, match="same examples"):
        paired_comparison(report([True]), report([True, False]))


def test_oracle_scores_100_percent_at_every_pd() -> None:
    task = get_task("planning")
    report = evaluate(Oracle(task), task, n=60, seed=3)
    assert report.accuracy == 1.0 and report.solved == [True] * 60
    assert set(report.by_group) == {str(pd) for pd in range(6)}
    assert all(correct == total for correct, total in report.by_group.values())
    assert report.nfe == task.answer_length  # one token per forward by default


def test_answers_are_the_decoded_rows_in_example_order() -> None:
    """``answers[i]`` is what was scored for example i, across batch chunks (batch_size 7 splits 20)."""
    task = get_task("planning")
    model = unmask.load(Path(__file__).resolve().parents[1] / "models" / "planning-ar")
    examples = draw(task, "test", 20, 4)
    report = evaluate(model, task, examples, seed=4, batch_size=7)
    assert len(report.answers) == 20 and all(len(row) == task.answer_length for row in report.answers)
    assert [task.score(e, row) for e, row in zip(examples, report.answers)] == report.solved
    assert not all(report.solved)  # the AR model misses long planning distances, so both outcomes are checked
    assert [tuple(row[:6]) for row, ok in zip(report.answers, report.solved) if ok] == \
        [e.path for e, ok in zip(examples, report.solved) if ok]
    assert report.tokens_per_forward == 1.0
    data = report.to_json()
    assert set(data) == {"model", "task", "n", "accuracy", "ci95", "by_pd", "nfe", "tokens_per_forward", "seconds"}


def test_wrong_answers_are_counted_by_pd() -> None:
    task = get_task("planning")
    report = evaluate(Oracle(task, wrong_pd=1), task, n=60, seed=3)
    # the oracle errs exactly when the path has an out-branch (PD >= 1)
    assert report.by_group["0"] == [10, 10]
    assert all(report.by_group[str(pd)][0] == 0 for pd in range(1, 6))
    assert report.accuracy == pytest.approx(10 / 60)
    # keys in numeric order (the JSON's by_pd and every rendered table rely on it)
    assert report.group_accuracy() == {"0": 1.0, "1": 0.0, "2": 0.0, "3": 0.0, "4": 0.0, "5": 0.0}
    assert list(report.group_accuracy()) == ["0", "1", "2", "3", "4", "5"]


def test_parallel_decoding_reports_tokens_per_forward() -> None:
    task = get_task("planning")
    report = evaluate(Oracle(task), task, n=12, seed=0, threshold=0.5)
    assert report.accuracy == 1.0
    assert report.nfe == 1 and report.tokens_per_forward == task.answer_length


def test_model_of_another_task_is_refused() -> None:
    planning = get_task("planning")
    with pytest.raises(ParamError, match="vocab_size"):
        evaluate(Oracle(planning), "sudoku", n=2)


def tiny_task_model(directory: Path, task_name: str, kind: str, learned_positions: bool = False) -> Path:
    """A random one-layer model of the task's shape. With RoPE alone it predicts one token at every
    masked position; ``learned_positions`` makes its answers vary by position."""
    task = get_task(task_name)
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=task.vocab.size, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2,
                         intermediate_size=32, attention="causal" if kind == "ar" else "bidirectional",
                         learned_positions=learned_positions,
                         mask_token_id=task.vocab.mask, eos_token_id=task.vocab.eos, pad_token_id=task.vocab.pad,
                         max_position_embeddings=task.prompt_length + task.answer_length)
    model = DiffusionTransformer(config)
    model.generation_config = ({"max_new_tokens": task.answer_length} if kind == "ar" else
                               {"gen_length": task.answer_length, "steps": task.answer_length,
                                "block_length": task.answer_length, "remasking": "margin"})
    return unmask.save(model, directory / f"{task_name}-{kind}", family="unmask")


def test_demo_runs_on_bundled_layout(tmp_path: Path) -> None:
    from unmask.demo import run_demo

    for task in ("planning", "sudoku"):
        for kind in ("diffusion", "ar"):
            tiny_task_model(tmp_path, task, kind)
    out = io.StringIO()
    results = run_demo(tmp_path, n_planning=12, n_sudoku=2, out=out)
    text = out.getvalue()
    assert set(results) == {"planning", "sudoku"}  # no full-range pair bundled: no sudoku-wide section
    assert set(results["planning"]) == {"diffusion", "fast", "ar"} and set(results["sudoku"]) == {"diffusion", "fast", "ar"}
    assert results["sudoku"]["fast"].params["threshold"] == 0.999  # the engine's parallel decoding row
    assert "PD0" in text and "nfe" in text and "tok/fwd" in text and "thr 0.9" in text
    assert "sudoku denoised by the diffusion model" in text and "fill order" in text
    assert "planning (PD 3)" in text

    assert "also bundled" not in text

    for kind in ("diffusion", "ar"):  # the full-range pair: named when bundled, compared on request
        tiny_task_model(tmp_path, "sudoku-wide", kind)
    out = io.StringIO()
    assert set(run_demo(tmp_path, n_planning=6, n_sudoku=2, out=out, delay=0)) == {"planning", "sudoku"}
    assert "also bundled: sudoku-wide-diffusion / sudoku-wide-ar (unmask demo --families sudoku-wide)" in out.getvalue()
    out = io.StringIO()
    results = run_demo(tmp_path, n_sudoku=2, out=out, delay=0, families=["sudoku-wide"])
    assert set(results) == {"sudoku-wide"}
    assert {report.task for report in results["sudoku-wide"].values()} == {"sudoku-wide"}
    assert results["sudoku-wide"]["fast"].params["threshold"] == 0.999
    text = out.getvalue()
    assert "sudoku-wide: 2 held-out examples" in text and "sudoku-wide denoised by the diffusion model" in text
    assert "planning (PD" not in text and "also bundled: planning-diffusion / planning-ar, sudoku-diffusion" in text
    with pytest.raises(ParamError, match="demo families must be among planning, sudoku, sudoku-wide; got chess"):
        run_demo(tmp_path, families=["chess"], out=io.StringIO())


def test_demo_uses_the_task_the_bundled_model_was_trained_on(tmp_path: Path) -> None:
    # a full-range Sudoku model bundled as models/sudoku-diffusion: its training_config.json names
    # sudoku-wide, and the demo must draw (and animate) sudoku-wide puzzles, not the 29-36 task
    from unmask.demo import bundled_task, compare

    for kind in ("diffusion", "ar"):
        directory = tiny_task_model(tmp_path, "sudoku", kind)
        (directory / "training_config.json").write_text(json.dumps({"data": {"source": "sudoku-wide"}}))
    assert bundled_task(tmp_path, "sudoku").name == "sudoku-wide"
    assert bundled_task(tmp_path, "planning").name == "planning"  # nothing bundled: the family's task
    out = io.StringIO()
    reports = compare(tmp_path, "sudoku", 3, 0, out)
    assert {report.task for report in reports.values()} == {"sudoku-wide"}
    assert out.getvalue().startswith("sudoku-wide: 3 held-out examples")
    assert "GIVENS" not in out.getvalue()  # 14 givens columns would be noise at demo sample sizes


def test_eval_cli_json(tmp_path: Path) -> None:
    model = tiny_task_model(tmp_path, "planning", "ar")
    done = subprocess.run([sys.executable, "-m", "unmask.cli", "eval", "--model", str(model), "--task", "planning",
                           "--n", "6", "--output", "json", "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["n"] == 6 and data["task"] == "planning" and set(data["by_pd"]) == {str(pd) for pd in range(6)}
    assert 0 <= data["ci95"][0] <= data["accuracy"] <= data["ci95"][1] <= 1
    refused = subprocess.run([sys.executable, "-m", "unmask.cli", "eval", "--model", str(model), "--task", "sudoku", "--n", "2"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "vocab_size" in refused.stderr and "Traceback" not in refused.stderr


def test_sudoku_wide_is_reported_by_givens_count(tmp_path: Path) -> None:
    model = unmask.load(tiny_task_model(tmp_path, "sudoku-wide", "diffusion"))
    examples = draw("sudoku-wide", "test", 6, 0)
    report = evaluate(model, "sudoku-wide", examples, steps=9)
    counts: dict[str, int] = {}
    for example in examples:
        counts[str(example.givens)] = counts.get(str(example.givens), 0) + 1
    assert {group: total for group, (_, total) in report.by_group.items()} == counts
    assert set(report.to_json()["by_givens"]) == set(counts)
    assert evaluate(model, "sudoku", draw("sudoku", "test", 2, 0), steps=9).to_json().keys().isdisjoint({"by_givens", "by_pd"})


def test_self_check_report_is_paired_with_the_plain_decode(tmp_path: Path) -> None:
    model = unmask.load(tiny_task_model(tmp_path, "planning", "diffusion", learned_positions=True))
    task = get_task("planning")
    plain = evaluate(model, task, n=16, seed=1, batch_size=6)
    checked = evaluate(model, task, n=16, seed=1, batch_size=6, self_check_retries=2)
    summary = checked.self_check
    assert plain.self_check is None and summary is not None
    assert summary.first_solved == plain.solved  # the first decode is the plain decode, example by example
    assert summary.flagged_wrong + summary.unflagged_wrong == plain.n - plain.correct
    assert summary.flagged >= summary.flagged_wrong and summary.flagged > 0  # a random model's answers get flagged
    assert summary.replaced + summary.still_flagged == summary.flagged
    assert summary.retries <= 2 * summary.flagged
    # forward rows per example: decode + check for all, and again for every retry
    per_decode = plain.nfe + task.answer_length
    assert checked.nfe == pytest.approx(per_decode + summary.retries * per_decode / checked.n)
    assert checked.tokens_per_forward == pytest.approx(task.answer_length / checked.nfe)
    data = checked.to_json()["self_check"]
    assert data["first_accuracy"] == pytest.approx(plain.accuracy) and data["flagged"] == summary.flagged


def test_eval_cli_self_check_text_and_refusals(tmp_path: Path) -> None:
    model = tiny_task_model(tmp_path, "planning", "diffusion")
    base = [sys.executable, "-m", "unmask.cli", "eval", "--model", str(model), "--task", "planning", "--n", "4", "--threads", "1"]
    done = subprocess.run(base + ["--self-check-retries", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "self-check: without it" in done.stdout and "still flagged" in done.stdout
    refused = subprocess.run(base + ["--self-check-retries", "1", "--threshold", "0.9"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "self_check_retries" in refused.stderr and "Traceback" not in refused.stderr


def test_best_of_report_is_paired_with_the_greedy_decode(tmp_path: Path) -> None:
    model = unmask.load(tiny_task_model(tmp_path, "planning", "ar", learned_positions=True))
    task = get_task("planning")
    greedy = evaluate(model, task, n=14, seed=2, batch_size=5)
    ranked = evaluate(model, task, n=14, seed=2, batch_size=5, best_of=3, temperature=1.0)
    summary = ranked.best_of
    assert greedy.best_of is None and summary is not None and summary.candidates == 3
    assert summary.greedy_solved == greedy.solved  # candidate 0 is the greedy decode, example by example
    assert summary.any_right >= max(ranked.correct, greedy.correct)  # the pick and the greedy answer are candidates
    assert 0 <= summary.picked_greedy <= ranked.n
    assert ranked.nfe == pytest.approx(3 * greedy.nfe)  # every candidate's forwards are counted
    data = ranked.to_json()["best_of"]
    assert data == {"candidates": 3, "greedy_accuracy": pytest.approx(greedy.accuracy), "any_right": summary.any_right,
                    "picked_greedy": summary.picked_greedy}


def test_eval_cli_best_of_text_and_refusals(tmp_path: Path) -> None:
    ar = tiny_task_model(tmp_path, "planning", "ar")
    diffusion = tiny_task_model(tmp_path, "planning", "diffusion")
    base = [sys.executable, "-m", "unmask.cli", "eval", "--task", "planning", "--n", "4", "--threads", "1"]
    done = subprocess.run(base + ["--model", str(ar), "--best-of", "3", "--temperature", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "best of 3: greedy alone" in done.stdout and "some candidate right" in done.stdout
    greedy_only = subprocess.run(base + ["--model", str(ar), "--best-of", "3"], capture_output=True, text=True, timeout=120)
    assert greedy_only.returncode == 2 and "temperature" in greedy_only.stderr and "Traceback" not in greedy_only.stderr
    wrong_kind = subprocess.run(base + ["--model", str(diffusion), "--best-of", "3"], capture_output=True, text=True, timeout=120)
    assert wrong_kind.returncode == 2 and "--best-of applies to AR models" in wrong_kind.stderr
