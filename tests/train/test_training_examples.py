"""`unmask eval --training-examples`: a model scored on the very examples it trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unmask.cli import main
from unmask.evaluate import training_examples
from unmask.sampling.params import ParamError
from unmask.tasks import draw, get_task
from unmask.train.data import task_data

from .helpers import quiet_train, tiny_config

WEIGHTS = [3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]  # the bundled sudoku-wide recipe's


def write_config(directory: Path, **data: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "training_config.json").write_text(json.dumps({"data": data}))
    return directory


def rows(task_name: str, examples: list) -> torch.Tensor:
    task = get_task(task_name)
    return torch.tensor([task.prompt(e) + task.answer(e) for e in examples])


@pytest.mark.parametrize("source,weights", [("sudoku-wide", WEIGHTS), ("planning", [])])
def test_rebuilt_examples_are_the_first_rows_of_the_training_set(tmp_path: Path, source: str, weights: list[float]) -> None:
    model_dir = write_config(tmp_path / "model", source=source, seed=3, train_size=20, group_weights=weights)
    rebuilt = rows(source, training_examples(model_dir, source, 7))
    trained_on = task_data(source, 20, 3, group_weights=tuple(weights)).tokens  # what the training loop builds
    assert torch.equal(rebuilt, trained_on[:7])
    # and not just any sample of the train split: another data seed gives other rows
    assert not torch.equal(rebuilt, rows(source, draw(source, "train", 7, 4, tuple(weights))))


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ParamError, match="no training_config.json"):
        training_examples(tmp_path, "planning", 5)
    other = write_config(tmp_path / "other", source="sudoku", seed=0, train_size=100)
    with pytest.raises(ParamError, match="data.source is 'sudoku', not the task 'planning'"):
        training_examples(other, "planning", 5)
    small = write_config(tmp_path / "small", source="planning", seed=0, train_size=10)
    with pytest.raises(ParamError, match=r"more than the 10 examples .*data.train_size"):
        training_examples(small, "planning", 11)
    misweighted = write_config(tmp_path / "misweighted", source="planning", seed=0, train_size=100, group_weights=[1.0, 2.0])
    with pytest.raises(ParamError, match="data.group_weights: task 'planning' has 6 groups"):
        training_examples(misweighted, "planning", 5)
    broken = write_config(tmp_path / "broken", source="planning")
    with pytest.raises(ParamError, match="no usable data section"):
        training_examples(broken, "planning", 5)


def test_cli_scores_a_trained_model_on_its_training_examples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    quiet_train(tiny_config(out, "optim.max_steps=3", "objective.kind=ar"))
    model = str(out / "model")
    assert main(["eval", "--model", model, "--task", "planning", "--n", "12", "--training-examples", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == "training" and report["n"] == 12
    assert main(["eval", "--model", model, "--task", "planning", "--n", "12", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == "test"
    # the tiny config trains on 200 examples: asking for more is a one-line error, not a quiet smaller sample
    assert main(["eval", "--model", model, "--task", "planning", "--n", "201", "--training-examples"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "data.train_size" in err and "Traceback" not in err
