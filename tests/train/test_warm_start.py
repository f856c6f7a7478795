"""``model.init_from``: a run starts from a saved model's weights; AR -> diffusion conversion."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import unmask
from unmask.train import TrainConfigError

from .helpers import assert_bit_identical, exported_weights, quiet_train, tiny_config

# so small that AdamW leaves every float32 weight bit-identical: what the run exports is what it started from
FROZEN = "optim.lr=1e-30"


@pytest.fixture(scope="module")
def source_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("sources")
    quiet_train(tiny_config(root / "diffusion", "optim.max_steps=3"))
    quiet_train(tiny_config(root / "ar", "optim.max_steps=3", "objective.kind=ar"))
    return {"diffusion": root / "diffusion" / "model", "ar": root / "ar" / "model"}


def test_a_run_starts_from_the_saved_weights(tmp_path, source_models) -> None:
    source = source_models["diffusion"]
    quiet_train(tiny_config(tmp_path / "warm", "optim.max_steps=2", FROZEN, f"model.init_from={source}"))
    quiet_train(tiny_config(tmp_path / "cold", "optim.max_steps=2", FROZEN))
    expected = unmask.load(source).state_dict()
    assert_bit_identical(exported_weights(tmp_path / "warm"), expected)
    # without the option the same run starts from its random init, which is not the source
    assert not torch.equal(exported_weights(tmp_path / "cold")["embed.weight"], expected["embed.weight"])
    training = json.loads((tmp_path / "warm" / "model" / "training_config.json").read_text())
    assert training["model"]["init_from"] == str(source)


def test_ar_weights_start_a_bidirectional_diffusion_network(tmp_path, source_models) -> None:
    source = source_models["ar"]
    assert unmask.load(source).config.attention == "causal"
    lines: list[str] = []
    quiet_train(tiny_config(tmp_path / "converted", "optim.max_steps=2", FROZEN, f"model.init_from={source}"),
                log=lines.append)
    converted = unmask.load(tmp_path / "converted" / "model")
    assert converted.config.attention == "bidirectional"
    assert_bit_identical(converted.state_dict(), unmask.load(source).state_dict())
    assert any("causal there, bidirectional here" in line for line in lines)


def test_resumed_run_takes_its_weights_from_the_checkpoint(tmp_path, source_models) -> None:
    copy = tmp_path / "source"
    shutil.copytree(source_models["diffusion"], copy)
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    quiet_train(tiny_config(whole, "optim.max_steps=4", f"model.init_from={copy}"))
    quiet_train(tiny_config(halves, "optim.max_steps=4", "run.stop_at=2", f"model.init_from={copy}"))
    shutil.rmtree(copy)  # the resumed run must not need (or re-read) the source model
    quiet_train(tiny_config(halves, "optim.max_steps=4", f"model.init_from={copy}"), resume=True)
    assert_bit_identical(exported_weights(halves), exported_weights(whole))


def test_a_source_of_another_shape_or_vocabulary_is_refused_by_field(tmp_path, source_models) -> None:
    source = source_models["diffusion"]
    with pytest.raises(TrainConfigError, match=r"model\.init_from.*hidden_size is 32 there, 48 in this run"):
        quiet_train(tiny_config(tmp_path / "a", "model.hidden_size=48", f"model.init_from={source}"))
    with pytest.raises(TrainConfigError, match=r"model\.init_from.*vocab_size is \d+ there, \d+ in this run"):
        quiet_train(tiny_config(tmp_path / "b", "data.source=sudoku", "data.train_size=20", f"model.init_from={source}"))
    with pytest.raises(TrainConfigError, match=r"model\.init_from: model directory not found: .*nowhere"):
        quiet_train(tiny_config(tmp_path / "c", f"model.init_from={tmp_path / 'nowhere'}"))
    assert not (tmp_path / "a").exists()  # refused before anything was written
