"""What ``unmask inspect`` prints: a model directory described without loading its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unmask.checkpoint import read_config
from unmask.checkpoint.files import CHAT_TEMPLATE_FILE, GENERATION_CONFIG_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, read_json
from unmask.model import DiffusionTransformer

DECODERS = {
    "llada": [
        "llada: LLaDA generate() reference (gen_length, steps, block_length, temperature, cfg_scale, remasking, EOS knobs)",
        "fastdllm: Fast-dLLM threshold= / factor= / fixed, cache=None|'prefix'|'dual' (cached = approximate)",
    ],
    "dream": [
        "dream: Dream diffusion_generate (alg origin|maskgit_plus|topk_margin|entropy, alg_temp, top_p, top_k, eps)",
        "dream:confidence_threshold: Fast-dLLM alg='confidence_threshold' (batch 1)",
        "fastdllm_dream_block: block_length=, dual_cache= (Fast-dLLM block decoder; cached = approximate)",
    ],
}


def describe(directory: str | Path) -> dict[str, Any]:
    path = Path(directory)
    config, family, raw = read_config(path)
    with torch.device("meta"):
        skeleton = DiffusionTransformer(config)
    decoding = "dream" if config.shift_logits else "llada"
    has_template = (path / CHAT_TEMPLATE_FILE).is_file() or (
        (path / TOKENIZER_CONFIG_FILE).is_file() and bool(read_json(path / TOKENIZER_CONFIG_FILE).get("chat_template"))
    )
    generation = read_json(path / GENERATION_CONFIG_FILE) if (path / GENERATION_CONFIG_FILE).is_file() else {}
    return {
        "model": str(path),
        "family": family,
        "model_type": raw.get("model_type"),
        "parameters": skeleton.num_parameters(),
        "stored_dtype": raw.get("torch_dtype"),
        "layers": config.num_layers,
        "hidden_size": config.hidden_size,
        "heads": f"{config.num_heads} (kv {config.num_kv_heads})",
        "intermediate_size": config.intermediate_size,
        "vocab_size": config.vocab_size,
        "attention": config.attention,
        "logits": "shifted (position i read from i-1)" if config.shift_logits else "aligned",
        "rope_theta": config.rope_theta,
        "mask_token_id": config.mask_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "eot_token_id": config.eot_token_id,
        "tokenizer": "tokenizer.json" + (" + chat template" if has_template else "") if (path / TOKENIZER_FILE).is_file() else "none",
        "generation_config": {k: v for k, v in generation.items() if not k.startswith("_") and k != "transformers_version"},
        "decoders": DECODERS[decoding],
    }
