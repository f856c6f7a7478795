"""Train -> export -> load -> eval: the exported directory is a model unmask loads and evaluates."""

from __future__ import annotations

import json

import torch

import unmask
from tests.conftest import ASSETS
from unmask.cli import main
from unmask.tasks import get_task
from unmask.train.checkpointing import load_training_state

from .helpers import assert_bit_identical, curve, metrics, quiet_train, tiny_config

EVAL_KEYS = {"model", "task", "n", "accuracy", "ci95", "by_pd", "nfe", "tokens_per_forward", "seconds"}


def test_diffusion_model_round_trip(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    result = quiet_train(tiny_config(out, "optim.max_steps=4"))
    assert result.model_dir == out / "model" and result.step == 4
    model = unmask.load(out / "model")
    task = get_task("planning")
    assert model.config.attention == "bidirectional"
    assert (model.config.vocab_size, model.config.mask_token_id, model.config.eos_token_id) == (task.vocab.size, task.vocab.mask, task.vocab.eos)
    assert model.config.hidden_size == 32 and model.config.num_layers == 2
    assert_bit_identical(model.state_dict(), load_training_state(out)["model"])
    generation = json.loads((out / "model" / "generation_config.json").read_text())
    assert generation["gen_length"] == generation["steps"] == generation["block_length"] == task.answer_length == 7
    assert generation["remasking"] == "margin"
    training = json.loads((out / "model" / "training_config.json").read_text())
    assert training["optim"]["max_steps"] == 4 and training["objective"]["kind"] == "diffusion"

    assert main(["eval", "--model", str(out / "model"), "--task", "planning", "--n", "12", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert EVAL_KEYS <= report.keys()
    assert report["model"] == str(out / "model") and report["task"] == "planning" and report["n"] == 12
    assert 0 <= report["accuracy"] <= 1 and len(report["ci95"]) == 2
    assert report["ci95"][0] <= report["accuracy"] <= report["ci95"][1]
    assert set(report["by_pd"]) <= {str(pd) for pd in range(6)} and report["by_pd"]
    assert report["nfe"] == 7 and report["tokens_per_forward"] == 1.0  # one token per forward, as exported


def test_ar_model_round_trip(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    quiet_train(tiny_config(out, "optim.max_steps=3", "objective.kind=ar"))
    assert json.loads((out / "model" / "config.json").read_text())["attention"] == "causal"
    assert json.loads((out / "model" / "generation_config.json").read_text()) == {"max_new_tokens": 7}
    assert unmask.load(out / "model").config.attention == "causal"
    assert main(["eval", "--model", str(out / "model"), "--task", "planning", "--n", "12", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert EVAL_KEYS <= report.keys() and report["n"] == 12


def test_periodic_validation_does_not_perturb_training(tmp_path) -> None:
    plain, evaluated = tmp_path / "plain", tmp_path / "evaluated"
    quiet_train(tiny_config(plain, "optim.max_steps=6"))
    result = quiet_train(tiny_config(evaluated, "optim.max_steps=6", "run.eval_every=3", "run.eval_n=6"))
    records = [r for r in metrics(evaluated) if "eval_accuracy" in r]
    assert [r["step"] for r in records] == [3, 6]
    assert result.eval_accuracy == records[-1]["eval_accuracy"] and 0 <= result.eval_accuracy <= 1
    assert curve(evaluated) == curve(plain)
    assert_bit_identical(unmask.load(evaluated / "model").state_dict(), unmask.load(plain / "model").state_dict())


def test_bfloat16_forward_and_export(tmp_path) -> None:
    out = tmp_path / "run"
    result = quiet_train(tiny_config(out, "optim.max_steps=2", "optim.dtype=bfloat16", "run.export_dtype=bfloat16"))
    assert torch.isfinite(torch.tensor(result.loss))
    model = unmask.load(out / "model", dtype=None)
    assert model.checkpoint.stored_dtype == torch.bfloat16
    assert all(t.dtype == torch.float32 for t in load_training_state(out)["model"].values())  # training state stays float32


def test_jsonl_training_exports_the_tokenizer_ids(tmp_path) -> None:
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"abc {i}", "response": "hello world"}) + "\n" for i in range(20)))
    out = tmp_path / "run"
    quiet_train(tiny_config(out, "optim.max_steps=2", "data.source=jsonl", f"data.path={data}",
                            f"data.tokenizer={ASSETS / 'tiny-llada-chat'}", "data.seq_len=16"))
    config = unmask.load(out / "model").config
    assert (config.vocab_size, config.mask_token_id, config.eos_token_id, config.pad_token_id) == (320, 2, 1, 0)
    assert json.loads((out / "model" / "generation_config.json").read_text())["gen_length"] == 128


def test_sudoku_trains_and_exports_its_answer_length(tmp_path) -> None:
    out = tmp_path / "run"
    result = quiet_train(tiny_config(out, "optim.max_steps=1", "data.source=sudoku", "data.train_size=16", "optim.batch_size=8"))
    assert result.step == 1 and torch.isfinite(torch.tensor(result.loss))
    assert json.loads((out / "model" / "generation_config.json").read_text())["gen_length"] == get_task("sudoku").answer_length == 82
