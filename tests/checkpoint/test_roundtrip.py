"""load -> save -> load reproduces checkpoints bit for bit (tensors, config.json, side files)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import unmask
import unmask.checkpoint.files as checkpoint_files
from unmask.checkpoint import CheckpointError, save_model
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

GOLDEN = Path("/work/shared/golden")
GOLDEN_NAMES = ["llada-tiny", "llada-tiny-realvocab", "dream-tiny"]


# ----------------------------------------------------------------------------------- helpers


def tiny_config(**overrides) -> ModelConfig:
    values = dict(vocab_size=64, hidden_size=16, num_layers=2, num_heads=4, num_kv_heads=2,
                  intermediate_size=32, mask_token_id=63, eos_token_id=1)
    values.update(overrides)
    return ModelConfig(**values)


def fresh_model(seed: int = 0, **overrides) -> DiffusionTransformer:
    torch.manual_seed(seed)
    model = DiffusionTransformer(tiny_config(**overrides))
    with torch.no_grad():  # make the norm weights non-trivial too, so that every tensor matters
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.uniform_(0.5, 1.5)
    return model.eval()


def stored_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a single-file or sharded checkpoint, as stored."""
    index = directory / "model.safetensors.index.json"
    if index.exists():
        tensors = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            tensors.update(load_file(str(directory / shard)))
        return tensors
    return load_file(str(directory / "model.safetensors"))


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert sorted(actual) == sorted(expected)
    for name, tensor in expected.items():
        assert actual[name].dtype == tensor.dtype, name
        assert actual[name].shape == tensor.shape, name
        assert torch.equal(actual[name], tensor), name


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def random_ids(vocab_size: int, seed: int = 1, shape=(2, 12)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, shape, generator=generator)


def logits(model: DiffusionTransformer, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids)


def temp_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".tmp" in name)


# --------------------------------------------------------------------------- golden layouts


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_load_save_is_bit_identical(tmp_path, name):
    source = GOLDEN / name
    model = unmask.load(source)
    out = tmp_path / "saved"
    unmask.save(model, out)

    original = load_file(str(source / "model.safetensors"))
    written = load_file(str(out / "model.safetensors"))
    assert_same_tensors(written, original)
    assert read_json(out / "config.json") == read_json(source / "config.json")
    assert read_json(out / "generation_config.json") == read_json(source / "generation_config.json")
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json", "model.safetensors"]


def test_bfloat16_checkpoint_is_written_back_as_bfloat16(tmp_path):
    source = GOLDEN / "llada-tiny-realvocab"
    model = unmask.load(source)  # computes in float32 ...
    assert model.dtype == torch.float32
    assert model.checkpoint.stored_dtype == torch.bfloat16
    out = tmp_path / "saved"
    unmask.save(model, out)  # ... but writes the stored dtype back
    written = load_file(str(out / "model.safetensors"))
    assert {tensor.dtype for tensor in written.values()} == {torch.bfloat16}
    assert_same_tensors(written, load_file(str(source / "model.safetensors")))
    assert read_json(out / "config.json")["torch_dtype"] == "bfloat16"


def test_bfloat16_checkpoint_loaded_in_stored_dtype_round_trips(tmp_path):
    source = GOLDEN / "llada-tiny-realvocab"
    model = unmask.load(source, dtype=None)
    assert model.dtype == torch.bfloat16
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    out = tmp_path / "saved"
    unmask.save(model, out)
    assert_same_tensors(load_file(str(out / "model.safetensors")), load_file(str(source / "model.safetensors")))
    assert read_json(out / "config.json") == read_json(source / "config.json")


def test_explicit_dtype_on_save_is_honoured(tmp_path):
    model = unmask.load(GOLDEN / "llada-tiny")
    out = tmp_path / "half"
    unmask.save(model, out, dtype="bfloat16")
    written = load_file(str(out / "model.safetensors"))
    assert {tensor.dtype for tensor in written.values()} == {torch.bfloat16}
    assert read_json(out / "config.json")["torch_dtype"] == "bfloat16"
    reloaded = unmask.load(out)
    assert reloaded.checkpoint.stored_dtype == torch.bfloat16
    assert torch.equal(reloaded.embed.weight, model.embed.weight.to(torch.bfloat16).float())


@pytest.mark.parametrize("name", ["llada-tiny", "dream-tiny"])
def test_forced_shards_reload_to_identical_logits(tmp_path, name):
    source = GOLDEN / name
    model = unmask.load(source)
    out = tmp_path / "sharded"
    max_bytes = 100_000
    save_model(model, out, max_shard_bytes=max_bytes)

    files = sorted(os.listdir(out))
    assert "model.safetensors" not in files
    assert "model.safetensors.index.json" in files
    shards = [f for f in files if f.startswith("model-") and f.endswith(".safetensors")]
    assert len(shards) >= 3
    count = len(shards)
    assert shards == [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]

    original = load_file(str(source / "model.safetensors"))
    index = read_json(out / "model.safetensors.index.json")
    assert sorted(index["weight_map"]) == sorted(original)
    assert sorted(set(index["weight_map"].values())) == shards
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in original.values())
    for shard in shards:  # every shard holds exactly what the index says, within the limit unless one tensor is bigger
        content = load_file(str(out / shard))
        assert sorted(content) == sorted(k for k, v in index["weight_map"].items() if v == shard)
        size = sum(t.numel() * t.element_size() for t in content.values())
        assert size <= max_bytes or len(content) == 1

    assert_same_tensors(stored_tensors(out), original)
    reloaded = unmask.load(out)
    assert reloaded.config == model.config
    ids = random_ids(model.config.vocab_size)
    assert torch.equal(logits(reloaded, ids), logits(model, ids))
    assert read_json(out / "config.json") == read_json(source / "config.json")


def test_sharded_save_over_single_file_checkpoint_is_not_shadowed(tmp_path):
    out = tmp_path / "model"
    first = fresh_model(seed=0)
    unmask.save(first, out, family="unmask")
    second = fresh_model(seed=1)
    save_model(second, out, family="unmask", max_shard_bytes=4_000)
    reloaded = unmask.load(out)
    assert torch.equal(reloaded.embed.weight, second.embed.weight)


# ---------------------------------------------------------------------- unmask's own layout


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tie_word_embeddings": True},
        {"attention": "causal"},
        {"attention": "block_causal", "attention_block_size": 4},
        {"attention": "block_causal", "attention_block_size": 4, "tie_word_embeddings": True,
         "qkv_bias": True, "shift_logits": True, "rope_theta": 12345.0, "pad_token_id": 0},
    ],
    ids=["bidirectional", "tied", "causal", "block_causal", "block_causal-tied-bias-shift"],
)
def test_unmask_family_round_trip(tmp_path, overrides):
    model = fresh_model(**overrides)
    out = tmp_path / "native"
    unmask.save(model, out, family="unmask")

    raw = read_json(out / "config.json")
    assert raw["model_type"] == "unmask"
    assert raw["attention"] == model.config.attention
    assert raw["attention_block_size"] == model.config.attention_block_size
    written = load_file(str(out / "model.safetensors"))
    tied = model.config.tie_word_embeddings
    assert ("lm_head.weight" in written) == (not tied)
    expected = {name: t for name, t in model.state_dict().items() if not (tied and name == "lm_head.weight")}
    assert_same_tensors(written, expected)

    reloaded = unmask.load(out)
    assert reloaded.family == "unmask"
    assert reloaded.config == model.config
    if tied:
        assert reloaded.lm_head.weight is reloaded.embed.weight
    else:
        assert reloaded.lm_head.weight is not reloaded.embed.weight
    ids = random_ids(model.config.vocab_size)
    assert torch.equal(logits(reloaded, ids), logits(model, ids))

    # saving the reloaded model again gives the same files
    again = tmp_path / "again"
    unmask.save(reloaded, again)
    assert_same_tensors(load_file(str(again / "model.safetensors")), written)
    assert read_json(again / "config.json") == raw


def test_attention_mode_survives_and_matters(tmp_path):
    """The reloaded block-causal model must not silently become bidirectional."""
    model = fresh_model(attention="block_causal", attention_block_size=4)
    out = tmp_path / "block"
    unmask.save(model, out, family="unmask")
    reloaded = unmask.load(out)
    bidirectional = DiffusionTransformer(tiny_config()).eval()
    bidirectional.load_state_dict(model.state_dict())
    ids = random_ids(64)
    assert not torch.allclose(logits(bidirectional, ids), logits(reloaded, ids))
    # block-causal: the first block cannot see later tokens
    changed = ids.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 64
    assert torch.equal(logits(reloaded, ids)[:, :8], logits(reloaded, changed)[:, :8])


def test_tied_llada_layout_omits_lm_head(tmp_path):
    model = fresh_model(tie_word_embeddings=True)
    out = tmp_path / "llada"
    unmask.save(model, out, family="llada")
    raw = read_json(out / "config.json")
    assert raw["model_type"] == "llada"
    assert raw["weight_tying"] is True
    written = load_file(str(out / "model.safetensors"))
    assert "model.transformer.ff_out.weight" not in written
    assert "model.transformer.wte.weight" in written
    reloaded = unmask.load(out)
    assert reloaded.family == "llada"
    assert reloaded.lm_head.weight is reloaded.embed.weight
    ids = random_ids(64)
    assert torch.equal(logits(reloaded, ids), logits(model, ids))


# ----------------------------------------------------------------- refusals when saving


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize(
    "overrides",
    [{"attention": "causal"}, {"attention": "block_causal", "attention_block_size": 4}],
    ids=["causal", "block_causal"],
)
def test_non_bidirectional_model_cannot_be_saved_as_llada_or_dream(tmp_path, family, overrides):
    model = fresh_model(qkv_bias=True, shift_logits=True, **overrides)
    out = tmp_path / "refused"
    with pytest.raises(CheckpointError, match="attention") as info:
        unmask.save(model, out, family=family)
    message = str(info.value)
    assert repr(overrides["attention"]) in message
    assert "family='unmask'" in message
    assert not out.exists() or not os.listdir(out)


def test_dream_layout_needs_qkv_bias_and_shift(tmp_path):
    with pytest.raises(CheckpointError, match="qkv_bias=True and shift_logits=True"):
        unmask.save(fresh_model(), tmp_path / "dream", family="dream")


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"cannot save as family 'gpt2'; supported: llada, dream, unmask"):
        unmask.save(fresh_model(), tmp_path / "x", family="gpt2")


# ---------------------------------------------------------------------------- conversion


def test_dream_converted_to_unmask_keeps_logits(tmp_path):
    dream = unmask.load(GOLDEN / "dream-tiny")
    out = tmp_path / "converted"
    unmask.save(dream, out, family="unmask")
    raw = read_json(out / "config.json")
    assert raw["model_type"] == "unmask"
    assert "auto_map" not in raw
    assert raw["shift_logits"] is True and raw["qkv_bias"] is True

    native = unmask.load(out)
    assert native.family == "unmask"
    assert native.config == dream.config
    ids = random_ids(dream.config.vocab_size, shape=(3, 17))
    assert torch.equal(logits(native, ids), logits(dream, ids))
    assert read_json(out / "generation_config.json") == read_json(GOLDEN / "dream-tiny" / "generation_config.json")


def test_llada_to_unmask_and_back_restores_tensors(tmp_path):
    source = GOLDEN / "llada-tiny"
    native_dir, back_dir = tmp_path / "native", tmp_path / "back"
    unmask.save(unmask.load(source), native_dir, family="unmask")
    unmask.save(unmask.load(native_dir), back_dir, family="llada")
    assert_same_tensors(load_file(str(back_dir / "model.safetensors")), load_file(str(source / "model.safetensors")))
    assert unmask.load(back_dir).config == unmask.load(source).config


# ------------------------------------------------------------------------------ side files


def _write_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))


def test_generation_config_and_tokenizer_files_are_carried_over(tmp_path):
    source = tmp_path / "with-tokenizer"
    shutil.copytree(GOLDEN / "llada-tiny", source)
    _write_tokenizer(source / "tokenizer.json")
    (source / "tokenizer_config.json").write_text('{"eos_token": "b", "chat_template": "{{ messages[0].content }}"}')
    (source / "special_tokens_map.json").write_text('{"unk_token": "[UNK]"}\n')
    generation = read_json(source / "generation_config.json")
    generation["steps"] = 7  # a value the saver can only know by carrying the file over
    (source / "generation_config.json").write_text(json.dumps(generation))

    model = unmask.load(source)
    assert model.tokenizer is not None
    assert model.tokenizer.encode("a b") == [1, 2]
    assert model.tokenizer.special_token("eos_token") == "b"
    assert model.generation_config["steps"] == 7

    out = tmp_path / "saved"
    unmask.save(model, out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (out / name).read_bytes() == (source / name).read_bytes(), name
    assert read_json(out / "generation_config.json") == generation
    assert unmask.load(out).tokenizer.encode("b a a") == [2, 1, 1]


def test_no_tokenizer_means_none(tmp_path):
    model = unmask.load(GOLDEN / "dream-tiny")
    assert model.tokenizer is None
    out = tmp_path / "saved"
    unmask.save(model, out)
    assert not (out / "tokenizer.json").exists()


def test_generation_config_of_a_fresh_model_is_written(tmp_path):
    model = fresh_model()
    model.generation_config = {"steps": 16, "gen_length": 16}
    out = tmp_path / "fresh"
    unmask.save(model, out)
    assert read_json(out / "generation_config.json") == {"steps": 16, "gen_length": 16}
    assert unmask.load(out).generation_config == {"steps": 16, "gen_length": 16}


# --------------------------------------------------------------------------- atomic writes


def test_saving_leaves_no_temporary_files(tmp_path):
    model = unmask.load(GOLDEN / "llada-tiny")
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    unmask.save(model, single)
    unmask.save(model, single)  # overwrite in place
    save_model(model, sharded, max_shard_bytes=100_000)
    save_model(model, sharded, max_shard_bytes=100_000)
    for directory in (single, sharded):
        assert temp_files(directory) == []
        assert not any(name.startswith(".") for name in os.listdir(directory))
    assert_same_tensors(stored_tensors(single), stored_tensors(sharded))


def test_failed_write_leaves_no_temporary_or_partial_file(tmp_path, monkeypatch):
    model = fresh_model()
    out = tmp_path / "failing"

    def failing_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_files, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        unmask.save(model, out, family="unmask")
    assert temp_files(out) == []
    assert not (out / "model.safetensors").exists()


def test_failed_overwrite_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "model"
    first = fresh_model(seed=0)
    unmask.save(first, out, family="unmask")

    def failing_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_files, "save_file", failing_save_file)
    with pytest.raises(OSError):
        unmask.save(fresh_model(seed=1), out, family="unmask")
    monkeypatch.undo()
    assert temp_files(out) == []
    assert torch.equal(unmask.load(out).embed.weight, first.embed.weight)


def test_saved_files_get_ordinary_permissions(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the published files must not keep that mode."""
    umask = os.umask(0o022)
    try:
        model = unmask.load(GOLDEN / "llada-tiny")
        single, sharded = tmp_path / "single", tmp_path / "sharded"
        unmask.save(model, single)
        save_model(model, sharded, max_shard_bytes=100_000)
    finally:
        os.umask(umask)
    for directory in (single, sharded):
        for name in os.listdir(directory):
            assert (directory / name).stat().st_mode & 0o777 == 0o644, name
