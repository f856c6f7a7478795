"""Broken, hostile or unsupported checkpoint directories: every one is refused with a
CheckpointError whose message names the file and the field / tensor / shard at fault."""

from __future__ import annotations

import json
import pathlib
import pickle
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

import unmask
from unmask.checkpoint import CheckpointError, save_model
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

GOLDEN = Path("/work/shared/golden")
MISSING = object()  # sentinel: delete the key from config.json


# ----------------------------------------------------------------------------------- helpers


def copy_golden(name: str, tmp_path: Path) -> Path:
    """A writable copy of a read-only golden checkpoint."""
    destination = tmp_path / name
    shutil.copytree(GOLDEN / name, destination)
    return destination


def edit_config(directory: Path, **changes: Any) -> dict[str, Any]:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is MISSING:
            config.pop(key)
        else:
            config[key] = value
    path.write_text(json.dumps(config))
    return config


def rewrite_weights(directory: Path, change) -> None:
    """Load model.safetensors, let ``change`` edit the dict in place, write it back."""
    path = directory / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def tiny_config(**overrides: Any) -> ModelConfig:
    values = dict(vocab_size=64, hidden_size=16, num_layers=2, num_heads=4, num_kv_heads=2,
                  intermediate_size=32, mask_token_id=63, eos_token_id=1)
    values.update(overrides)
    return ModelConfig(**values)


def saved_unmask_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    directory = tmp_path / "unmask-tiny"
    unmask.save(DiffusionTransformer(tiny_config()), directory, family="unmask")
    return directory


# ---------------------------------------------------------------------- the directory itself


def test_directory_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "no" / "such-model"
    with pytest.raises(CheckpointError, match=re.escape(str(missing))) as info:
        unmask.load(missing)
    assert "not found" in str(info.value)


def test_path_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"not a directory")
    with pytest.raises(CheckpointError, match=re.escape(str(file))) as info:
        unmask.load(file)
    assert "not a directory" in str(info.value)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


# ------------------------------------------------------------------------------- config.json


def test_missing_config_json(tmp_path):
    directory = copy_golden("llada-tiny", tmp_path)
    (directory / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing file") as info:
        unmask.load(directory)
    assert str(directory / "config.json") in str(info.value)


@pytest.mark.parametrize("payload", [b"{not json", b"", b'{"model_type": "llada",}', b"\xff\xfe{"])
def test_config_json_that_is_not_valid_json(tmp_path, payload):
    directory = copy_golden("llada-tiny", tmp_path)
    (directory / "config.json").write_bytes(payload)
    with pytest.raises(CheckpointError, match="not valid JSON") as info:
        unmask.load(directory)
    assert "config.json" in str(info.value)


def test_config_json_that_is_not_an_object(tmp_path):
    directory = copy_golden("llada-tiny", tmp_path)
    (directory / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match=r"config\.json must hold a JSON object, found list"):
        unmask.load(directory)


@pytest.mark.parametrize("model_type", ["bert", None, "LLaDA-MoE", 3])
def test_unknown_model_type_lists_the_supported_ones(tmp_path, model_type):
    directory = copy_golden("llada-tiny", tmp_path)
    edit_config(directory, model_type=model_type)
    with pytest.raises(CheckpointError, match="unknown model_type") as info:
        unmask.load(directory)
    message = str(info.value)
    assert repr(model_type) in message
    assert "config.json" in message
    for supported in ("'llada'", "'Dream'", "'unmask'"):
        assert supported in message


def test_missing_model_type_is_unknown(tmp_path):
    directory = copy_golden("dream-tiny", tmp_path)
    edit_config(directory, model_type=MISSING)
    with pytest.raises(CheckpointError, match="unknown model_type None"):
        unmask.load(directory)


# ----------------------------------------------------------------------------------- weights


def test_missing_weights_name_the_expected_files(tmp_path):
    directory = copy_golden("llada-tiny", tmp_path)
    (directory / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing weights") as info:
        unmask.load(directory)
    message = str(info.value)
    assert "model.safetensors" in message
    assert "model.safetensors.index.json" in message
    assert str(directory) in message


class _Touch:
    """Unpickling this runs ``Path.touch(marker)``: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _refuse_to_unpickle(*args, **kwargs):
    raise AssertionError("a pickle weight file was opened")


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "pytorch_model-00001-of-00002.bin", "model.pt"])
def test_pickle_only_weights_are_refused_without_being_opened(tmp_path, monkeypatch, pickle_name):
    directory = copy_golden("llada-tiny", tmp_path)
    (directory / "model.safetensors").unlink()
    marker = tmp_path / "pickle-was-executed"
    # A real code-executing pickle: unpickling it would create ``marker``.
    (directory / pickle_name).write_bytes(pickle.dumps(_Touch(marker)))
    assert not marker.exists()
    monkeypatch.setattr(torch, "load", _refuse_to_unpickle)
    monkeypatch.setattr(pickle, "load", _refuse_to_unpickle)
    monkeypatch.setattr(pickle, "loads", _refuse_to_unpickle)

    with pytest.raises(CheckpointError, match="pickle") as info:
        unmask.load(directory)
    message = str(info.value)
    assert pickle_name in message
    assert "execute arbitrary code" in message
    assert "safetensors" in message  # tells the user what to convert to
    assert not marker.exists()


def test_pickle_next_to_safetensors_is_ignored(tmp_path, monkeypatch):
    directory = copy_golden("llada-tiny", tmp_path)
    marker = tmp_path / "pickle-was-executed"
    (directory / "pytorch_model.bin").write_bytes(pickle.dumps(_Touch(marker)))
    monkeypatch.setattr(torch, "load", _refuse_to_unpickle)
    monkeypatch.setattr(pickle, "load", _refuse_to_unpickle)
    monkeypatch.setattr(pickle, "loads", _refuse_to_unpickle)
    model = unmask.load(directory)
    assert model.family == "llada"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("golden", "tensor"),
    [
        ("llada-tiny", "model.transformer.blocks.1.up_proj.weight"),
        ("llada-tiny", "model.transformer.ff_out.weight"),  # untied lm_head
        ("dream-tiny", "model.layers.0.self_attn.q_proj.bias"),
    ],
)
def test_missing_tensor_is_named(tmp_path, golden, tensor):
    directory = copy_golden(golden, tmp_path)
    rewrite_weights(directory, lambda tensors: tensors.pop(tensor))
    with pytest.raises(CheckpointError, match="missing tensor") as info:
        unmask.load(directory)
    message = str(info.value)
    assert tensor in message
    assert "unexpected" not in message
    assert str(directory) in message


def test_unexpected_extra_tensor_is_named(tmp_path):
    directory = copy_golden("llada-tiny", tmp_path)
    extra = "model.transformer.blocks.0.att_proj.weight"
    rewrite_weights(directory, lambda tensors: tensors.update({extra: torch.zeros(3, 3)}))
    with pytest.raises(CheckpointError, match="unexpected tensor") as info:
        unmask.load(directory)
    message = str(info.value)
    assert extra in message
    assert "missing tensor" not in message
    assert str(directory) in message


def test_dream_tensors_under_llada_config_are_all_reported(tmp_path):
    """Both lists in one message: the llada names it wants and the Dream names it found."""
    directory = copy_golden("llada-tiny", tmp_path)
    shutil.copy(GOLDEN / "dream-tiny" / "model.safetensors", directory / "model.safetensors")
    with pytest.raises(CheckpointError) as info:
        unmask.load(directory)
    message = str(info.value)
    assert "missing tensor(s): model.transformer." in message
    assert "unexpected tensor(s): lm_head.weight" in message
    assert "more" in message  # long listings are shortened, with a count


def test_lm_head_present_although_tied_is_unexpected(tmp_path):
    directory = copy_golden("llada-tiny", tmp_path)
    edit_config(directory, weight_tying=True)
    with pytest.raises(CheckpointError, match=r"unexpected tensor\(s\): model\.transformer\.ff_out\.weight"):
        unmask.load(directory)


def test_wrongly_shaped_tensor_names_tensor_and_both_shapes(tmp_path):
    directory = copy_golden("llada-tiny", tmp_path)
    name = "model.transformer.blocks.0.q_proj.weight"
    rewrite_weights(directory, lambda tensors: tensors.update({name: torch.zeros(64, 32)}))
    expected = f"tensor '{name}' has shape [64, 32], config.json implies [64, 64]"
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        unmask.load(directory)


def test_changed_hidden_size_gives_shape_mismatch(tmp_path):
    directory = copy_golden("dream-tiny", tmp_path)
    edit_config(directory, hidden_size=32)
    expected = "tensor 'model.embed_tokens.weight' has shape [512, 64], config.json implies [512, 32]"
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        unmask.load(directory)


def test_integer_tensor_is_refused(tmp_path):
    directory = copy_golden("llada-tiny", tmp_path)
    name = "model.transformer.ln_f.weight"
    rewrite_weights(directory, lambda tensors: tensors.update({name: torch.ones(64, dtype=torch.int32)}))
    with pytest.raises(CheckpointError, match=re.escape(f"tensor '{name}' has non-float dtype torch.int32")):
        unmask.load(directory)


# ----------------------------------------------------------------------- config field values


@pytest.mark.parametrize(
    ("golden", "changes", "expected"),
    [
        # LLaDA (OLMo field names)
        ("llada-tiny", {"n_heads": 5}, r"d_model \(64\) must be divisible by n_heads \(5\)"),
        ("llada-tiny", {"n_kv_heads": 3}, r"n_heads \(4\) must be a multiple of n_kv_heads \(3\)"),
        ("llada-tiny", {"n_layers": -1}, r"n_layers must be a positive integer, got -1"),
        ("llada-tiny", {"n_layers": 0}, r"n_layers must be a positive integer, got 0"),
        ("llada-tiny", {"mask_token_id": 512}, r"mask_token_id=512 is not a token id of a vocabulary of size 512"),
        ("llada-tiny", {"eos_token_id": -1}, r"eos_token_id=-1 is not a token id"),
        ("llada-tiny", {"d_model": MISSING}, r"missing required field 'd_model'"),
        ("llada-tiny", {"n_heads": MISSING}, r"missing required field 'n_heads'"),
        ("llada-tiny", {"n_layers": "2"}, r"field 'n_layers' must be an integer, got '2'"),
        ("llada-tiny", {"n_layers": True}, r"field 'n_layers' must be an integer, got True"),
        ("llada-tiny", {"mask_token_id": "500"}, r"field 'mask_token_id' must be an integer token id"),
        ("llada-tiny", {"embedding_size": 256}, r"embedding_size \(256\) is smaller than vocab_size \(512\)"),
        # Dream (Qwen2 field names)
        ("dream-tiny", {"num_attention_heads": 3}, r"must be divisible by num_attention_heads \(3\)"),
        ("dream-tiny", {"num_key_value_heads": 3}, r"must be a multiple of num_key_value_heads \(3\)"),
        ("dream-tiny", {"num_hidden_layers": -2}, r"num_hidden_layers must be a positive integer, got -2"),
        ("dream-tiny", {"mask_token_id": 512}, r"mask_token_id=512 is not a token id"),
        ("dream-tiny", {"hidden_size": MISSING}, r"missing required field 'hidden_size'"),
        ("dream-tiny", {"vocab_size": MISSING}, r"missing required field 'vocab_size'"),
        ("dream-tiny", {"intermediate_size": 12.5}, r"field 'intermediate_size' must be an integer, got 12.5"),
    ],
)
def test_config_field_out_of_range_is_named(tmp_path, golden, changes, expected):
    directory = copy_golden(golden, tmp_path)
    edit_config(directory, **changes)
    with pytest.raises(CheckpointError, match=expected) as info:
        unmask.load(directory)
    assert str(directory / "config.json") in str(info.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"num_heads": 3}, r"hidden_size \(16\) must be divisible by num_heads \(3\)"),
        ({"num_kv_heads": 3}, r"num_heads \(4\) must be a multiple of num_kv_heads \(3\)"),
        ({"num_layers": -1}, r"num_layers must be a positive integer, got -1"),
        ({"mask_token_id": 64}, r"mask_token_id=64 is not a token id of a vocabulary of size 64"),
        ({"hidden_size": MISSING}, r"missing ModelConfig field\(s\): hidden_size"),
        ({"rotary_dim": 8}, r"unknown ModelConfig field\(s\): rotary_dim"),
        ({"attention": "sliding"}, r"attention must be one of .*got 'sliding'"),
        ({"attention": "block_causal"}, r"attention_block_size must be a positive integer"),
        ({"rms_norm_eps": 2.0}, r"rms_norm_eps must be in \(0, 1\)"),
    ],
)
def test_unmask_config_field_out_of_range_is_named(tmp_path, changes, expected):
    directory = saved_unmask_checkpoint(tmp_path)
    unmask.load(directory)  # sanity: the unedited checkpoint loads
    edit_config(directory, **changes)
    with pytest.raises(CheckpointError, match=expected) as info:
        unmask.load(directory)
    assert "config.json" in str(info.value)


@pytest.mark.parametrize(
    ("golden", "field", "value"),
    [
        ("llada-tiny", "n_heads", 5),
        ("llada-tiny", "n_kv_heads", 3),
        ("llada-tiny", "n_layers", -1),
        ("dream-tiny", "num_attention_heads", 3),
        ("dream-tiny", "num_hidden_layers", -1),
    ],
)
def test_config_range_errors_name_the_config_json_field(tmp_path, golden, field, value):
    directory = copy_golden(golden, tmp_path)
    edit_config(directory, **{field: value})
    with pytest.raises(CheckpointError) as info:
        unmask.load(directory)
    assert re.search(rf"\b{field}\b", str(info.value))


@pytest.mark.parametrize(
    ("golden", "field", "value"),
    [
        ("llada-tiny", "rope_theta", None),
        ("llada-tiny", "rope_theta", "abc"),
        ("llada-tiny", "rms_norm_eps", None),
        ("llada-tiny", "embedding_size", "x"),
        ("dream-tiny", "rope_theta", None),
    ],
)
def test_non_numeric_float_fields_raise_checkpoint_error(tmp_path, golden, field, value):
    directory = copy_golden(golden, tmp_path)
    edit_config(directory, **{field: value})
    with pytest.raises(CheckpointError, match=field):
        unmask.load(directory)


# ------------------------------------------------------------------ unsupported architectures


@pytest.mark.parametrize(
    ("golden", "field", "value"),
    [
        ("llada-tiny", "block_type", "sequential"),
        ("llada-tiny", "activation_type", "gelu"),
        ("llada-tiny", "layer_norm_type", "default"),
        ("llada-tiny", "alibi", True),
        ("llada-tiny", "rope", False),
        ("llada-tiny", "include_bias", True),
        ("llada-tiny", "attention_layer_norm", True),
        ("llada-tiny", "scale_logits", True),
        ("dream-tiny", "rope_scaling", {"type": "linear", "factor": 2.0}),
        ("dream-tiny", "hidden_act", "gelu"),
        ("dream-tiny", "use_sliding_window", True),
    ],
)
def test_unsupported_architecture_value_is_named(tmp_path, golden, field, value):
    directory = copy_golden(golden, tmp_path)
    edit_config(directory, **{field: value})
    with pytest.raises(CheckpointError, match=re.escape(f"field '{field}' is {value!r}")) as info:
        unmask.load(directory)
    message = str(info.value)
    assert "config.json" in message
    assert "unmask supports" in message


# ------------------------------------------------------------------------------------ shards


def _sharded_copy(tmp_path: Path) -> Path:
    model = unmask.load(GOLDEN / "llada-tiny")
    directory = tmp_path / "sharded"
    save_model(model, directory, max_shard_bytes=100_000)
    assert not (directory / "model.safetensors").exists()
    return directory


def test_index_listing_a_missing_shard_names_it(tmp_path):
    directory = _sharded_copy(tmp_path)
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3
    (directory / shards[1]).unlink()
    with pytest.raises(CheckpointError, match="missing") as info:
        unmask.load(directory)
    message = str(info.value)
    assert shards[1] in message
    assert shards[0] not in message and shards[2] not in message
    assert "model.safetensors.index.json" in message


@pytest.mark.parametrize("weight_map", [{}, None, ["model-00001-of-00001.safetensors"]])
def test_index_without_a_weight_map_is_refused(tmp_path, weight_map):
    directory = _sharded_copy(tmp_path)
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match="'weight_map' must be a non-empty object"):
        unmask.load(directory)


def test_index_that_is_not_json_is_named(tmp_path):
    directory = _sharded_copy(tmp_path)
    (directory / "model.safetensors.index.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json is not valid JSON"):
        unmask.load(directory)


def test_tensor_in_two_shards_is_named(tmp_path):
    directory = _sharded_copy(tmp_path)
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    name, shard = next(iter(index["weight_map"].items()))
    duplicate = tmp_path / "sharded" / "model-extra.safetensors"
    save_file({name: load_file(str(directory / shard))[name]}, str(duplicate))
    index["weight_map"]["dummy.weight"] = "model-extra.safetensors"
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=re.escape(f"tensor {name!r} appears in more than one shard")):
        unmask.load(directory)


# -------------------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("keep", [0, 4, 8, 100, -10, -1])
def test_truncated_safetensors_is_a_checkpoint_error(tmp_path, keep):
    directory = copy_golden("llada-tiny", tmp_path)
    path = directory / "model.safetensors"
    payload = path.read_bytes()
    path.write_bytes(payload[:keep])
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as info:
        unmask.load(directory)
    assert str(path) in str(info.value)


def test_garbage_header_is_a_checkpoint_error(tmp_path):
    directory = copy_golden("dream-tiny", tmp_path)
    path = directory / "model.safetensors"
    payload = bytearray(path.read_bytes())
    payload[8:40] = b"#" * 32  # overwrite the start of the JSON header
    path.write_bytes(bytes(payload))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        unmask.load(directory)


def test_truncated_shard_is_named(tmp_path):
    directory = _sharded_copy(tmp_path)
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    payload = (directory / shard).read_bytes()
    (directory / shard).write_bytes(payload[: len(payload) // 2])
    with pytest.raises(CheckpointError, match=re.escape(f"{directory / shard} is not a readable safetensors file")):
        unmask.load(directory)


# ----------------------------------------------------------------------------- remote code


_HOSTILE_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported {name}")
raise RuntimeError("remote code from the checkpoint was imported: {name}")
"""


@pytest.mark.parametrize("golden", ["llada-tiny", "dream-tiny"])
def test_python_files_and_auto_map_are_never_imported(tmp_path, monkeypatch, golden):
    directory = copy_golden(golden, tmp_path)
    config = json.loads((directory / "config.json").read_text())
    assert "auto_map" in config  # the real layouts point at remote code
    module_names = sorted({target.split(".")[0] for target in config["auto_map"].values()})
    marker = tmp_path / "remote-code-ran"
    for name in module_names + ["__init__", "custom_generate"]:
        (directory / f"{name}.py").write_text(_HOSTILE_MODULE.format(marker=str(marker), name=name))
    # Make an accidental `import modeling_llada` (or importlib from the directory) succeed,
    # so that only "never imports" can keep the marker away.
    monkeypatch.syspath_prepend(str(directory))
    for name in module_names:
        monkeypatch.delitem(sys.modules, name, raising=False)

    model = unmask.load(directory)

    assert not marker.exists()
    assert model.family == ("llada" if golden.startswith("llada") else "dream")
    for name in module_names:
        assert name not in sys.modules
