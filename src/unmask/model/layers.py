"""Building blocks of the network, in reading order: norm -> rope -> attention -> MLP -> block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unmask.config import ModelConfig


class RMSNorm(nn.Module):
    """``w * x / sqrt(mean(x^2) + eps)``, normalised in float32 whatever the activation dtype."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding that rotates by halves ("rotate_half" convention)."""

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        self.register_buffer("inv_freq", 1.0 / (theta**exponents), persistent=False)

    def cos_sin(self, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        """position_ids [B, T] -> cos, sin [B, 1, T, head_dim] in float32."""
        freqs = position_ids.float()[..., None] * self.inv_freq  # [B, T, head_dim/2]
        angles = torch.cat((freqs, freqs), dim=-1)  # [B, T, head_dim]
        return angles.cos()[:, None], angles.sin()[:, None]


def rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x [B, heads, T, head_dim] in float32 and return it in x's dtype."""
    x32 = x.float()
    return (x32 * cos + rotate_half(x32) * sin).to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention with grouped KV heads and optional q/k/v biases.

    Keys are cached *after* RoPE. A forward over a chunk of the canvas (``chunk_start``) with a
    cache splices the chunk's fresh keys/values into the cached ones at that offset, which covers
    the prefix cache (cache holds [0, start)) and the dual cache (cache holds the whole canvas).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = config.head_dim
        d = config.hidden_size
        kv = self.num_kv_heads * self.head_dim
        self.q_proj = nn.Linear(d, d, bias=config.qkv_bias)
        self.k_proj = nn.Linear(d, kv, bias=config.qkv_bias)
        self.v_proj = nn.Linear(d, kv, bias=config.qkv_bias)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        allowed: Tensor | None,
        past: tuple[Tensor, Tensor] | None,
        chunk_start: int,
        in_place: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        batch, length, _ = x.shape
        # [B, T, heads * head_dim] -> [B, heads, T, head_dim]
        q = self.q_proj(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin)
        if past is not None:
            past_k, past_v = past
            end = chunk_start + length
            if in_place and past_k.shape[2] >= end:
                # the cache is a preallocated buffer of the whole canvas: overwrite the chunk's slot
                past_k[:, :, chunk_start:end] = k
                past_v[:, :, chunk_start:end] = v
                k, v = past_k, past_v
            else:
                k = torch.cat((past_k[:, :, :chunk_start], k, past_k[:, :, end:]), dim=2)
                v = torch.cat((past_v[:, :, :chunk_start], v, past_v[:, :, end:]), dim=2)
        new_kv = (k, v)
        groups = self.num_heads // self.num_kv_heads
        if groups > 1:
            # [B, kv_heads, S, hd] -> [B, heads, S, hd]; head h reads kv head h // groups
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # [B, heads, T, hd]
        out = out.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_dim)
        return self.o_proj(out), new_kv


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def build_feed_forward(config: ModelConfig) -> nn.Module:
    """The feed-forward of one block: dense SwiGLU now; the MoE variant plugs in here."""
    if config.moe is not None:
        raise NotImplementedError("mixture-of-experts feed-forward is not implemented yet (config.moe is set)")
    return SwiGLU(config.hidden_size, config.intermediate_size)


class Block(nn.Module):
    """Pre-norm transformer block: ``x += attn(norm(x))``; ``x += mlp(norm(x))``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = build_feed_forward(config)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        allowed: Tensor | None,
        past: tuple[Tensor, Tensor] | None,
        chunk_start: int,
        in_place: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        attn_out, kv = self.attn(self.attn_norm(x), cos, sin, allowed, past, chunk_start, in_place)
        x = x + attn_out
        x = x + self.mlp(self.mlp_norm(x))
        return x, kv
