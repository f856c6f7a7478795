"""The one canonical description of a network: :class:`ModelConfig`.

Every checkpoint family (LLaDA, Dream, unmask's own) is translated into this dataclass by its
adapter in :mod:`unmask.checkpoint`; the network in :mod:`unmask.model` reads nothing else.
It knows nothing about files or families.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

AttentionMode = Literal["bidirectional", "causal", "block_causal"]
ATTENTION_MODES: tuple[str, ...] = ("bidirectional", "causal", "block_causal")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class MoEConfig:
    """Mixture-of-experts feed-forward (the seam for LLaDA-MoE style models).

    Present in the config so that callers never change when MoE lands; the dense network
    refuses a config that sets it until the MoE feed-forward is implemented.
    """

    num_experts: int
    experts_per_token: int
    expert_intermediate_size: int
    num_shared_experts: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a pre-norm Llama-style transformer used as a (diffusion) language model.

    ``attention`` is ``bidirectional`` for masked diffusion (LLaDA, Dream), ``causal`` for the AR
    baseline, ``block_causal`` for block diffusion (causal across blocks of ``attention_block_size``
    tokens, bidirectional inside one). ``shift_logits`` is Dream's convention: the prediction for
    position i is read from the output at i-1 (the decoders apply it; the network returns raw logits).
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 4096
    qkv_bias: bool = False
    tie_word_embeddings: bool = False
    attention: AttentionMode = "bidirectional"
    attention_block_size: int | None = None
    shift_logits: bool = False
    # learned absolute position embeddings added to the token embeddings (GPT-2 style), on top of
    # RoPE. Bidirectional RoPE models only see relative offsets; tasks whose meaning depends on
    # absolute position (a sudoku cell's row, an edge's source vs target slot) need this.
    learned_positions: bool = False
    moe: MoEConfig | None = None
    # special ids; read from the checkpoint, never hard-coded by decoders
    mask_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eot_token_id: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first field that is out of range."""
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                     "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads != 0:
            raise ConfigError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.head_dim % 2 != 0:
            raise ConfigError(f"head_dim ({self.head_dim}) must be even for rotary embeddings")
        if self.num_heads % self.num_kv_heads != 0:
            raise ConfigError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if not (self.rope_theta > 0):
            raise ConfigError(f"rope_theta must be positive, got {self.rope_theta!r}")
        if not (0 < self.rms_norm_eps < 1):
            raise ConfigError(f"rms_norm_eps must be in (0, 1), got {self.rms_norm_eps!r}")
        if not isinstance(self.learned_positions, bool):
            raise ConfigError(f"learned_positions must be true or false, got {self.learned_positions!r}")
        if self.attention not in ATTENTION_MODES:
            raise ConfigError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {self.attention!r}")
        if self.attention == "block_causal":
            if not isinstance(self.attention_block_size, int) or self.attention_block_size <= 0:
                raise ConfigError("attention_block_size must be a positive integer when attention is block_causal")
        for name in ("mask_token_id", "eos_token_id", "pad_token_id", "bos_token_id", "eot_token_id"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 0 <= value < self.vocab_size):
                raise ConfigError(f"{name}={value!r} is not a token id of a vocabulary of size {self.vocab_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a plain dict (unmask's own ``config.json``); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown ModelConfig field(s): {', '.join(unknown)}")
        missing = sorted(f.name for f in fields(cls) if f.name in _REQUIRED and f.name not in data)
        if missing:
            raise ConfigError(f"missing ModelConfig field(s): {', '.join(missing)}")
        values = dict(data)
        if values.get("moe") is not None:
            values["moe"] = MoEConfig(**values["moe"])
        return cls(**values)


_REQUIRED = {"vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"}

__all__ = ["ATTENTION_MODES", "AttentionMode", "ConfigError", "MoEConfig", "ModelConfig"]
