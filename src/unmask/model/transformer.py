"""The network: token ids in, logits out (and, when asked, the per-layer key/value cache)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from unmask.config import ModelConfig
from unmask.model.layers import Block, RMSNorm, RotaryEmbedding


@dataclass
class KVCache:
    """Post-RoPE keys and values of every layer for canvas positions [0, length)."""

    layers: list[tuple[Tensor, Tensor]]  # each (k, v): [B, kv_heads, length, head_dim]
    # True: a forward over a chunk writes its fresh keys/values into these tensors in place
    # (a preallocated whole-canvas buffer) instead of splicing them into new ones
    in_place: bool = False

    @property
    def length(self) -> int:
        return self.layers[0][0].shape[2]

    def prefix(self, length: int) -> "KVCache":
        """The cache of positions [0, length) only (a view, no copy)."""
        return KVCache([(k[:, :, :length], v[:, :, :length]) for k, v in self.layers], self.in_place)

    def select_rows(self, rows: Tensor) -> "KVCache":
        """The cache of the batch rows ``rows`` (1-D indices) only, in that order."""
        return KVCache([(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.layers], self.in_place)

    def writable(self) -> "KVCache":
        """This cache as an in-place buffer (the tensors are shared, not copied)."""
        return KVCache(self.layers, in_place=True)


def positions_from_mask(attention_mask: Tensor) -> Tensor:
    """RoPE positions for a left-padded batch: each row counts from its first real token."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def attention_allowed(
    config: ModelConfig,
    query_index: Tensor,
    key_index: Tensor,
    key_padding: Tensor | None,
) -> Tensor | None:
    """Boolean [B|1, 1, T, S] map of which keys each query may read (None = all of them).

    ``query_index``/``key_index`` are canvas indices; ``key_padding`` is [B, S] with True/1 on
    real tokens. Pads are never read by real tokens; every query may read itself, so rows of
    pads stay finite instead of turning into NaN that would leak through the values.
    """
    allowed: Tensor | None = None
    if config.attention == "causal":
        allowed = key_index[None, :] <= query_index[:, None]
    elif config.attention == "block_causal":
        size = config.attention_block_size
        assert size is not None
        allowed = (key_index[None, :] // size) <= (query_index[:, None] // size)
    if key_padding is not None and not bool(key_padding.all()):
        pad_ok = key_padding.bool()[:, None, None, :]  # [B, 1, 1, S]
        allowed = pad_ok if allowed is None else (allowed[None, None] & pad_ok)
        allowed = allowed | (key_index[None, :] == query_index[:, None])
    elif allowed is not None:
        allowed = allowed[None, None]
    return allowed


class DiffusionTransformer(nn.Module):
    """One readable Llama-style network for LLaDA, Dream and unmask's own models.

    ``model(input_ids)`` returns raw logits [B, L, V] (for Dream they are *not* shifted: the
    decoders read position i from i-1 when ``config.shift_logits`` is set).
    The loader attaches ``family``, ``generation_config`` and ``tokenizer``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.learned_positions:
            self.pos_embed = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.rotary = RotaryEmbedding(config.head_dim, config.rope_theta)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed.weight
        # set by unmask.checkpoint when loaded from a directory
        self.family: str = "unmask"
        self.generation_config: dict[str, Any] = {}
        self.tokenizer: Any = None
        self.source_dir: str | None = None

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
    ) -> Tensor:
        """input_ids [B, L] -> logits [B, L, V]. ``attention_mask`` [B, L]: 1 = real, 0 = pad."""
        logits, _ = self.forward_chunk(input_ids, attention_mask=attention_mask, position_ids=position_ids)
        return logits

    def forward_chunk(
        self,
        input_ids: Tensor,
        *,
        chunk_start: int = 0,
        past: KVCache | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
    ) -> tuple[Tensor, KVCache]:
        """Run canvas positions [chunk_start, chunk_start + T) against a cache of the others.

        With ``past`` of length ``chunk_start`` this is a prefix-cached step; with ``past`` of the
        full canvas length it is a dual-cached step (the cache's keys of the chunk are replaced by
        fresh ones). ``attention_mask`` covers the whole canvas, ``position_ids`` only the chunk
        (default: derived from ``attention_mask``, else absolute canvas indices).
        Returns the chunk's logits [B, T, V] and the cache of the whole attended sequence.
        """
        batch, length = input_ids.shape
        end = chunk_start + length
        total = max(end, past.length if past is not None else 0)
        if past is None and chunk_start != 0:
            raise ValueError("chunk_start > 0 needs a KV cache of the positions before the chunk")
        if past is not None and past.length < chunk_start:
            raise ValueError(f"KV cache holds {past.length} positions, fewer than chunk_start={chunk_start}")
        if attention_mask is not None and attention_mask.shape != (batch, total):
            raise ValueError(f"attention_mask must be [batch, {total}] (whole canvas), got {list(attention_mask.shape)}")
        device = input_ids.device
        if position_ids is None:
            if attention_mask is not None:
                position_ids = positions_from_mask(attention_mask)[:, chunk_start:end]
            else:
                position_ids = torch.arange(chunk_start, end, device=device).expand(batch, length)
        query_index = torch.arange(chunk_start, end, device=device)
        key_index = torch.arange(total, device=device)
        allowed = attention_allowed(self.config, query_index, key_index, attention_mask)
        cos, sin = self.rotary.cos_sin(position_ids)
        hidden = self.embed(input_ids)  # [B, T, d]
        if self.config.learned_positions:
            if int(position_ids.max()) >= self.config.max_position_embeddings:
                raise ValueError(f"position {int(position_ids.max())} is beyond max_position_embeddings="
                                 f"{self.config.max_position_embeddings} of this learned-position model")
            hidden = hidden + self.pos_embed(position_ids)
        new_layers: list[tuple[Tensor, Tensor]] = []
        for index, block in enumerate(self.layers):
            layer_past = past.layers[index] if past is not None else None
            hidden, kv = block(hidden, cos, sin, allowed, layer_past, chunk_start, past is not None and past.in_place)
            new_layers.append(kv)
        logits = self.lm_head(self.norm(hidden))  # [B, T, V]
        return logits, KVCache(new_layers, past is not None and past.in_place)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())
