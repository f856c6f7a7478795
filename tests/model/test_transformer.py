"""The network against simple reference computations: attention modes, GQA, padding, KV cache."""

from __future__ import annotations

import math

import pytest
import torch

from unmask.config import ConfigError, ModelConfig, MoEConfig
from unmask.model import DiffusionTransformer


def tiny(**overrides: object) -> DiffusionTransformer:
    torch.manual_seed(0)
    values = dict(vocab_size=50, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=48, mask_token_id=49)
    values.update(overrides)
    return DiffusionTransformer(ModelConfig(**values)).eval()


def naive_forward(model: DiffusionTransformer, ids: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Textbook attention with explicit loops over heads: the oracle for the SDPA path."""
    cfg = model.config
    x = model.embed(ids)
    length = ids.shape[1]
    positions = torch.arange(length)
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim))
    angles = torch.cat([positions[:, None] * inv] * 2, dim=-1)

    def rope(t: torch.Tensor) -> torch.Tensor:
        half = t.shape[-1] // 2
        rotated = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
        return t * angles.cos() + rotated * angles.sin()

    def rms(t: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
        return w * t / torch.sqrt(t.pow(2).mean(-1, keepdim=True) + eps)

    for layer in model.layers:
        h = rms(x, layer.attn_norm.weight, cfg.rms_norm_eps)
        q = layer.attn.q_proj(h).view(1, length, cfg.num_heads, cfg.head_dim)
        k = layer.attn.k_proj(h).view(1, length, cfg.num_kv_heads, cfg.head_dim)
        v = layer.attn.v_proj(h).view(1, length, cfg.num_kv_heads, cfg.head_dim)
        heads = []
        for head in range(cfg.num_heads):
            kv = head // (cfg.num_heads // cfg.num_kv_heads)
            scores = rope(q[0, :, head]) @ rope(k[0, :, kv]).T / math.sqrt(cfg.head_dim)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            heads.append(torch.softmax(scores, -1) @ v[0, :, kv])
        x = x + layer.attn.o_proj(torch.cat(heads, -1)[None])
        h = rms(x, layer.mlp_norm.weight, cfg.rms_norm_eps)
        x = x + layer.mlp.down_proj(torch.nn.functional.silu(layer.mlp.gate_proj(h)) * layer.mlp.up_proj(h))
    return model.lm_head(rms(x, model.norm.weight, cfg.rms_norm_eps))


@pytest.mark.parametrize("attention,block", [("bidirectional", None), ("causal", None), ("block_causal", 3)])
def test_forward_matches_naive_attention(attention: str, block: int | None) -> None:
    model = tiny(attention=attention, attention_block_size=block, qkv_bias=True)
    ids = torch.randint(0, 49, (1, 10))
    index = torch.arange(10)
    allowed = {
        "bidirectional": None,
        "causal": index[None, :] <= index[:, None],
        "block_causal": (index[None, :] // 3) <= (index[:, None] // 3),
    }[attention]
    with torch.no_grad():
        assert torch.allclose(model(ids), naive_forward(model, ids, allowed), atol=1e-5)


def test_causal_output_ignores_the_future_and_block_causal_sees_its_block() -> None:
    ids = torch.randint(0, 49, (1, 9))
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] + 1) % 49
    with torch.no_grad():
        causal = tiny(attention="causal")
        assert torch.equal(causal(ids)[:, :7], causal(changed)[:, :7])
        assert not torch.allclose(causal(ids)[:, 7:], causal(changed)[:, 7:])
        block = tiny(attention="block_causal", attention_block_size=3)  # blocks [0,3) [3,6) [6,9)
        assert torch.equal(block(ids)[:, :6], block(changed)[:, :6])
        assert not torch.allclose(block(ids)[:, 6], block(changed)[:, 6])  # same block, earlier position


@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_left_padding_gives_the_same_logits_as_the_row_alone(attention: str) -> None:
    model = tiny(attention=attention)
    row = torch.randint(0, 49, (1, 6))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), row], dim=1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        alone = model(row)
        batched = model(padded, attention_mask=mask)
    assert torch.isfinite(batched).all()
    assert torch.allclose(batched[:, 3:], alone, atol=1e-5)


def test_kv_cache_chunks_equal_the_full_forward() -> None:
    model = tiny()
    ids = torch.randint(0, 49, (2, 12))
    with torch.no_grad():
        full, cache = model.forward_chunk(ids)
        prefix, _ = model.forward_chunk(ids[:, 5:], chunk_start=5, past=cache.prefix(5))
        dual, dual_cache = model.forward_chunk(ids[:, 5:8], chunk_start=5, past=cache)
    assert torch.allclose(prefix, full[:, 5:], atol=1e-5)
    assert torch.allclose(dual, full[:, 5:8], atol=1e-5)
    assert dual_cache.length == 12


def test_stale_cache_changes_the_result() -> None:
    """A dual-cache step reads the cached suffix: changing the suffix without refreshing the
    cache must not change the chunk's logits (that is what makes cached decoding approximate)."""
    model = tiny()
    ids = torch.randint(0, 49, (1, 12))
    with torch.no_grad():
        _, cache = model.forward_chunk(ids)
        changed = ids.clone()
        changed[0, 10] = (ids[0, 10] + 1) % 49
        stale, _ = model.forward_chunk(changed[:, 4:8], chunk_start=4, past=cache)
        fresh = model(changed)[:, 4:8]
        same, _ = model.forward_chunk(ids[:, 4:8], chunk_start=4, past=cache)
    assert torch.allclose(stale, same, atol=1e-6)
    assert not torch.allclose(stale, fresh, atol=1e-4)


def test_tied_embeddings_share_storage() -> None:
    model = tiny(tie_word_embeddings=True)
    assert model.lm_head.weight is model.embed.weight
    assert model.num_parameters() == sum(p.numel() for n, p in model.named_parameters())


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("num_heads", 5, "divisible by num_heads"),
        ("num_kv_heads", 3, "multiple of num_kv_heads"),
        ("attention", "sliding", "attention must be one of"),
        ("mask_token_id", 50, "mask_token_id=50"),
        ("hidden_size", 0, "hidden_size must be a positive integer"),
        ("rms_norm_eps", 0.0, "rms_norm_eps"),
    ],
)
def test_config_validation_names_the_field(field: str, value: object, message: str) -> None:
    values = dict(vocab_size=50, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=48)
    values[field] = value
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**values)


def test_block_causal_needs_a_block_size_and_moe_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="attention_block_size"):
        ModelConfig(vocab_size=8, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=8, attention="block_causal")
    config = ModelConfig(vocab_size=8, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=8,
                         moe=MoEConfig(num_experts=4, experts_per_token=2, expert_intermediate_size=8))
    with pytest.raises(NotImplementedError, match="mixture-of-experts"):
        DiffusionTransformer(config)
