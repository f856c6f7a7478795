"""The supported checkpoint families: LLaDA (OLMo field names), Dream (Qwen2 field names), unmask."""

from __future__ import annotations

import copy
from typing import Any

from unmask.checkpoint.adapter import (
    FamilyAdapter,
    build_config,
    expect_value,
    number,
    optional_id,
    optional_int,
    require,
)
from unmask.checkpoint.errors import CheckpointError
from unmask.config import ConfigError, ModelConfig

# ---------------------------------------------------------------------------------------- LLaDA
# LLaDA's <|eot_id|>. Its config.json has no field for it; the reference generate() hard-codes
# it (and EOS 126081). We take EOS from the config and EoT from here only for the real vocab.
LLADA_EOT_ID = 126348
LLADA_VOCAB = 126464


def _llada_config_from_hf(raw: dict[str, Any]) -> ModelConfig:
    expect_value(raw, "block_type", ("llama",), "the Llama block: separate ff_proj/up_proj")
    expect_value(raw, "layer_norm_type", ("rms",), "RMSNorm")
    expect_value(raw, "activation_type", ("silu",), "SwiGLU feed-forward")
    expect_value(raw, "rope", (True,), "rotary positions")
    expect_value(raw, "alibi", (False,), "no ALiBi")
    expect_value(raw, "include_bias", (False,), "no linear biases besides optional q/k/v biases")
    expect_value(raw, "attention_layer_norm", (False,), "no q/k layer norm")
    expect_value(raw, "scale_logits", (False,), "unscaled logits")
    expect_value(raw, "input_emb_norm", (False,), "no embedding norm")
    expect_value(raw, "block_group_size", (1,), "ungrouped blocks")
    expect_value(raw, "layer_norm_with_affine", (True,), "RMSNorm with weights")
    d_model = require(raw, "d_model", int)
    n_heads = require(raw, "n_heads", int)
    if raw.get("multi_query_attention"):
        n_kv_heads = 1
    else:
        n_kv_heads = optional_int(raw, "n_kv_heads", n_heads)
    mlp = optional_int(raw, "mlp_hidden_size", None)
    if mlp is None:
        mlp = require(raw, "mlp_ratio", int) * d_model
    vocab_size = require(raw, "vocab_size", int)
    vocab = optional_int(raw, "embedding_size", vocab_size)
    if vocab is not None and vocab < vocab_size:
        raise CheckpointError(f"config.json: embedding_size ({vocab}) is smaller than vocab_size ({vocab_size})")
    return build_config(
        _LLADA_FILE_NAMES,
        vocab_size=vocab,
        hidden_size=d_model,
        num_layers=require(raw, "n_layers", int),
        num_heads=n_heads,
        num_kv_heads=n_kv_heads,
        intermediate_size=mlp,
        rope_theta=number(raw, "rope_theta", 10000.0),
        rms_norm_eps=number(raw, "rms_norm_eps", 1e-5),
        max_position_embeddings=optional_int(raw, "max_sequence_length", 4096),
        qkv_bias=bool(raw.get("include_qkv_bias", False)),
        tie_word_embeddings=bool(raw.get("weight_tying", False)),
        attention="bidirectional",
        shift_logits=False,
        mask_token_id=optional_id(raw, "mask_token_id"),
        eos_token_id=optional_id(raw, "eos_token_id"),
        pad_token_id=optional_id(raw, "pad_token_id"),
        bos_token_id=optional_id(raw, "bos_token_id"),
        eot_token_id=LLADA_EOT_ID if vocab == LLADA_VOCAB else None,
    )


# native field -> LLaDA config.json field, so that range errors name what is in the file
_LLADA_FILE_NAMES = {
    "vocab_size": "embedding_size", "hidden_size": "d_model", "num_layers": "n_layers", "num_heads": "n_heads",
    "num_kv_heads": "n_kv_heads", "intermediate_size": "mlp_hidden_size", "max_position_embeddings": "max_sequence_length",
}


_LLADA_TEMPLATE: dict[str, Any] = {
    "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
    "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "embedding_dropout": 0.0,
    "flash_attention": False, "include_bias": False, "init_cutoff_factor": None, "init_device": "meta",
    "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms",
    "layer_norm_with_affine": True, "model_type": "llada", "multi_query_attention": None,
    "precision": "amp_bf16", "residual_dropout": 0.0, "rope": True, "rope_full_precision": True,
    "scale_logits": False, "use_cache": False,
}


def _llada_config_to_hf(config: ModelConfig, base: dict[str, Any] | None, dtype: str) -> dict[str, Any]:
    _require_plain_bidirectional(config, "llada")
    raw = copy.deepcopy(base) if base else dict(_LLADA_TEMPLATE)
    raw.update({
        "d_model": config.hidden_size, "n_heads": config.num_heads, "n_kv_heads": config.num_kv_heads,
        "n_layers": config.num_layers, "mlp_hidden_size": config.intermediate_size,
        "vocab_size": raw.get("vocab_size", config.vocab_size) if base else config.vocab_size,
        "embedding_size": config.vocab_size, "rope_theta": config.rope_theta,
        "rms_norm_eps": config.rms_norm_eps, "max_sequence_length": config.max_position_embeddings,
        "include_qkv_bias": config.qkv_bias, "weight_tying": config.tie_word_embeddings,
        "mask_token_id": config.mask_token_id, "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id, "torch_dtype": dtype,
    })
    raw.setdefault("mlp_ratio", max(1, config.intermediate_size // config.hidden_size))
    if config.bos_token_id is not None:
        raw["bos_token_id"] = config.bos_token_id
    return raw


LLADA = FamilyAdapter(
    family="llada",
    model_types=("llada",),
    top_names={
        "embed.weight": "model.transformer.wte.weight",
        "norm.weight": "model.transformer.ln_f.weight",
        "lm_head.weight": "model.transformer.ff_out.weight",
    },
    layer_prefix="model.transformer.blocks.{i}.",
    layer_names={
        "attn_norm.weight": "attn_norm.weight",
        "attn.q_proj.weight": "q_proj.weight", "attn.q_proj.bias": "q_proj.bias",
        "attn.k_proj.weight": "k_proj.weight", "attn.k_proj.bias": "k_proj.bias",
        "attn.v_proj.weight": "v_proj.weight", "attn.v_proj.bias": "v_proj.bias",
        "attn.o_proj.weight": "attn_out.weight",
        "mlp_norm.weight": "ff_norm.weight",
        "mlp.gate_proj.weight": "ff_proj.weight",
        "mlp.up_proj.weight": "up_proj.weight",
        "mlp.down_proj.weight": "ff_out.weight",
    },
    config_from_hf=_llada_config_from_hf,
    config_to_hf=_llada_config_to_hf,
)

# ---------------------------------------------------------------------------------------- Dream


def _dream_config_from_hf(raw: dict[str, Any]) -> ModelConfig:
    expect_value(raw, "hidden_act", ("silu",), "SwiGLU feed-forward")
    expect_value(raw, "rope_scaling", (None,), "plain RoPE without scaling")
    expect_value(raw, "use_sliding_window", (False,), "full attention")
    expect_value(raw, "use_mrope", (False,), "1-D rotary positions")
    hidden = require(raw, "hidden_size", int)
    heads = require(raw, "num_attention_heads", int)
    return build_config(
        _DREAM_FILE_NAMES,
        vocab_size=require(raw, "vocab_size", int),
        hidden_size=hidden,
        num_layers=require(raw, "num_hidden_layers", int),
        num_heads=heads,
        num_kv_heads=optional_int(raw, "num_key_value_heads", heads),
        intermediate_size=require(raw, "intermediate_size", int),
        rope_theta=number(raw, "rope_theta", 10000.0),
        rms_norm_eps=number(raw, "rms_norm_eps", 1e-6),
        max_position_embeddings=optional_int(raw, "max_position_embeddings", 32768),
        qkv_bias=True,
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        attention="bidirectional",
        shift_logits=True,
        mask_token_id=optional_id(raw, "mask_token_id"),
        eos_token_id=optional_id(raw, "eos_token_id"),
        pad_token_id=optional_id(raw, "pad_token_id"),
        bos_token_id=optional_id(raw, "bos_token_id"),
    )


_DREAM_FILE_NAMES = {
    "num_layers": "num_hidden_layers", "num_heads": "num_attention_heads", "num_kv_heads": "num_key_value_heads",
}


_DREAM_TEMPLATE: dict[str, Any] = {
    "architectures": ["DreamModel"], "attention_dropout": 0.0, "hidden_act": "silu",
    "initializer_range": 0.02, "model_type": "Dream", "rope_scaling": None, "sliding_window": None,
    "use_cache": False, "use_mrope": False, "use_sliding_window": False,
}


def _dream_config_to_hf(config: ModelConfig, base: dict[str, Any] | None, dtype: str) -> dict[str, Any]:
    _require_plain_bidirectional(config, "dream")
    if not config.qkv_bias or not config.shift_logits:
        raise CheckpointError("the Dream layout needs qkv_bias=True and shift_logits=True")
    raw = copy.deepcopy(base) if base else dict(_DREAM_TEMPLATE)
    raw.update({
        "hidden_size": config.hidden_size, "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads, "num_hidden_layers": config.num_layers,
        "intermediate_size": config.intermediate_size, "vocab_size": config.vocab_size,
        "rope_theta": config.rope_theta, "rms_norm_eps": config.rms_norm_eps,
        "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": config.tie_word_embeddings, "mask_token_id": config.mask_token_id,
        "eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id,
        "bos_token_id": config.bos_token_id, "torch_dtype": dtype,
    })
    raw.setdefault("max_window_layers", config.num_layers)
    return raw


DREAM = FamilyAdapter(
    family="dream",
    model_types=("Dream", "dream"),
    top_names={
        "embed.weight": "model.embed_tokens.weight",
        "norm.weight": "model.norm.weight",
        "lm_head.weight": "lm_head.weight",
    },
    layer_prefix="model.layers.{i}.",
    layer_names={
        "attn_norm.weight": "input_layernorm.weight",
        "attn.q_proj.weight": "self_attn.q_proj.weight", "attn.q_proj.bias": "self_attn.q_proj.bias",
        "attn.k_proj.weight": "self_attn.k_proj.weight", "attn.k_proj.bias": "self_attn.k_proj.bias",
        "attn.v_proj.weight": "self_attn.v_proj.weight", "attn.v_proj.bias": "self_attn.v_proj.bias",
        "attn.o_proj.weight": "self_attn.o_proj.weight",
        "mlp_norm.weight": "post_attention_layernorm.weight",
        "mlp.gate_proj.weight": "mlp.gate_proj.weight",
        "mlp.up_proj.weight": "mlp.up_proj.weight",
        "mlp.down_proj.weight": "mlp.down_proj.weight",
    },
    config_from_hf=_dream_config_from_hf,
    config_to_hf=_dream_config_to_hf,
)

# --------------------------------------------------------------------------------------- unmask


def _unmask_config_from_hf(raw: dict[str, Any]) -> ModelConfig:
    fields = {k: v for k, v in raw.items() if k not in ("model_type", "architectures", "torch_dtype", "unmask_version")}
    try:
        return ModelConfig.from_dict(fields)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"config.json: {error}") from None


def _unmask_config_to_hf(config: ModelConfig, base: dict[str, Any] | None, dtype: str) -> dict[str, Any]:
    from unmask import __version__

    raw = config.to_dict()
    raw.update({"model_type": "unmask", "architectures": ["DiffusionTransformer"], "torch_dtype": dtype,
                "unmask_version": __version__})
    return raw


_NATIVE_LAYER_NAMES = {name: name for name in DREAM.layer_names}
UNMASK = FamilyAdapter(
    family="unmask",
    model_types=("unmask",),
    top_names={name: name for name in ("embed.weight", "pos_embed.weight", "norm.weight", "lm_head.weight")},
    layer_prefix="layers.{i}.",
    layer_names=_NATIVE_LAYER_NAMES,
    config_from_hf=_unmask_config_from_hf,
    config_to_hf=_unmask_config_to_hf,
)


def _require_plain_bidirectional(config: ModelConfig, family: str) -> None:
    if config.learned_positions:
        raise CheckpointError(f"the {family} layout has no learned position embeddings: save this model with family='unmask'")
    if config.attention != "bidirectional" or config.moe is not None:
        raise CheckpointError(
            f"the {family} layout describes a dense bidirectional model; this one has attention="
            f"{config.attention!r}{' and MoE' if config.moe else ''}: save it with family='unmask'"
        )


ADAPTERS: dict[str, FamilyAdapter] = {a.family: a for a in (LLADA, DREAM, UNMASK)}


def adapter_for_model_type(model_type: Any, where: str = "config.json") -> FamilyAdapter:
    for adapter in ADAPTERS.values():
        if model_type in adapter.model_types:
            return adapter
    supported = ", ".join(repr(t) for a in ADAPTERS.values() for t in a.model_types)
    raise CheckpointError(f"{where}: unknown model_type {model_type!r}; supported model types: {supported}")
