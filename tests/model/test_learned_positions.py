"""Learned absolute position embeddings (``ModelConfig.learned_positions``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import unmask
from unmask.checkpoint import CheckpointError
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer


def model(**changes: object) -> DiffusionTransformer:
    torch.manual_seed(0)
    values = dict(vocab_size=30, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64,
                  learned_positions=True, max_position_embeddings=16, mask_token_id=29)
    values.update(changes)
    return DiffusionTransformer(ModelConfig(**values)).eval()  # type: ignore[arg-type]


def test_positions_change_the_output_and_round_trip(tmp_path: Path) -> None:
    net = model()
    ids = torch.randint(0, 29, (2, 12))
    with torch.no_grad():
        net.pos_embed.weight.normal_()
        before = net(ids)
        # the same tokens one position later give different logits only because of the learned table
        shifted = net(ids, position_ids=torch.arange(1, 13).expand(2, 12))
    assert not torch.allclose(before, shifted)
    unmask.save(net, tmp_path / "m", family="unmask")
    loaded = unmask.load(tmp_path / "m")
    assert loaded.config.learned_positions
    assert torch.equal(loaded(ids), before)


def test_cached_chunk_equals_full_forward() -> None:
    net = model(attention="causal")
    ids = torch.randint(0, 29, (1, 10))
    full = net(ids)
    _, cache = net.forward_chunk(ids[:, :6])
    chunk, _ = net.forward_chunk(ids[:, 6:], chunk_start=6, past=cache)
    assert torch.allclose(chunk, full[:, 6:], atol=1e-5)


def test_position_beyond_the_table_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="max_position_embeddings=16"):
        model()(torch.zeros(1, 17, dtype=torch.long))


def test_reference_layouts_refuse_learned_positions(tmp_path: Path) -> None:
    for family in ("llada", "dream"):
        with pytest.raises(CheckpointError, match="learned position"):
            unmask.save(model(), tmp_path / family, family=family)
