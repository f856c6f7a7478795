"""Shared cases of the decoder property tests: tiny random models, hypothesis strategies for
prompts and parameters, every decoder configuration, and a tracer of what each forward commits.

The tiny models never propose the mask id (its logit is pushed to -1e4): a random network
would otherwise occasionally "commit" the mask token, which the decoders (like their references)
allow; ``test_model_that_predicts_the_mask_id`` shows what happens then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import unmask
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

torch.set_num_threads(1)

VOCAB = 40
MASK = 39
EOS = 1
PAD = 0
TOKEN_IDS = st.integers(2, 38)

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------
# tiny models


def tiny(shift: bool = False, seed: int = 0, head_scale: float = 8.0, suppress_mask: bool = True) -> DiffusionTransformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
        mask_token_id=MASK, eos_token_id=EOS, qkv_bias=shift, shift_logits=shift,
    )
    model = DiffusionTransformer(cfg).eval()
    with torch.no_grad():
        # peaky distributions: ties (and float-noise flips) between candidates become unlikely
        model.lm_head.weight.mul_(head_scale)
    if suppress_mask:
        def no_mask(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
            output = output.clone()
            output[..., MASK] = -1e4
            return output
        model.lm_head.register_forward_hook(no_mask)
    return model


LLADA_MODEL = tiny(shift=False, seed=0)
DREAM_MODEL = tiny(shift=True, seed=1)


def model_for(family: str) -> DiffusionTransformer:
    return DREAM_MODEL if family == "dream" else LLADA_MODEL


# --------------------------------------------------------------------------------------------
# parameter strategies: (family, strategy of keyword dicts). Every dict is a valid combination.


@st.composite
def blocks(draw: Any, block_lengths: list[int], max_blocks: int, min_spb: int = 1, extra_steps: int = 1) -> tuple[int, int, int]:
    """(gen_length, block_length, steps): gen a multiple of block, steps a multiple of blocks."""
    block_length = draw(st.sampled_from(block_lengths))
    num_blocks = draw(st.integers(1, max_blocks))
    steps_per_block = draw(st.integers(min_spb, max(min_spb, block_length + extra_steps)))
    return block_length * num_blocks, block_length, steps_per_block * num_blocks


@st.composite
def llada_params(draw: Any, **fixed: Any) -> dict[str, Any]:
    gen_length, block_length, steps = draw(blocks([1, 2, 4, 8], 3))
    params: dict[str, Any] = dict(gen_length=gen_length, block_length=block_length, steps=steps)
    for name, value in fixed.items():
        params[name] = draw(value) if isinstance(value, st.SearchStrategy) else value
    return params


@st.composite
def dream_params(draw: Any, **fixed: Any) -> dict[str, Any]:
    max_new_tokens = draw(st.integers(1, 12))
    steps = draw(st.integers(1, max_new_tokens + 3))
    params: dict[str, Any] = dict(max_new_tokens=max_new_tokens, steps=steps)
    for name, value in fixed.items():
        params[name] = draw(value) if isinstance(value, st.SearchStrategy) else value
    return params


@st.composite
def dream_threshold_params(draw: Any) -> dict[str, Any]:
    """alg='confidence_threshold' (non-block): batch 1 and steps dividing the mask count."""
    steps = draw(st.integers(1, 4))
    max_new_tokens = steps * draw(st.integers(1, 4))
    return dict(max_new_tokens=max_new_tokens, steps=steps, alg="confidence_threshold", temperature=0.0,
                threshold=draw(st.sampled_from([0.3, 0.7, 0.95, 1.0])))


@st.composite
def dream_block_params(draw: Any, **fixed: Any) -> dict[str, Any]:
    threshold_alg = fixed.get("alg") == "confidence_threshold"
    max_new_tokens, block_length, steps = draw(blocks([2, 4], 3, min_spb=1 if threshold_alg else 2))
    params: dict[str, Any] = dict(max_new_tokens=max_new_tokens, block_length=block_length, steps=steps)
    for name, value in fixed.items():
        params[name] = draw(value) if isinstance(value, st.SearchStrategy) else value
    return params


TEMPERATURE = st.sampled_from([0.5, 1.0, 2.0])
THRESHOLD = st.sampled_from([0.3, 0.6, 0.9, 1.0])
FACTOR = st.sampled_from([0.5, 1.0, 2.0])


@dataclass(frozen=True)
class Config:
    family: str  # "llada" | "dream"
    params: Callable[[], st.SearchStrategy]
    batch_one: bool = False  # decoder only decodes one sequence at a time
    stochastic: bool = False  # the seed matters


CONFIGS: dict[str, Config] = {
    # LLaDA reference
    "llada_lowconf_t0": Config("llada", lambda: llada_params(temperature=0.0)),
    "llada_lowconf_temp": Config("llada", lambda: llada_params(temperature=TEMPERATURE), stochastic=True),
    "llada_random_t0": Config("llada", lambda: llada_params(remasking="random", temperature=0.0), stochastic=True),
    "llada_random_temp": Config("llada", lambda: llada_params(remasking="random", temperature=TEMPERATURE), stochastic=True),
    "llada_cfg": Config("llada", lambda: llada_params(cfg_scale=st.sampled_from([0.5, 1.0, 3.0]), temperature=st.sampled_from([0.0, 1.0])), stochastic=True),
    "llada_order_noise": Config("llada", lambda: llada_params(order_noise=st.sampled_from([0.01, 0.1, 1.0]), remasking=st.sampled_from(["low_confidence", "margin"])), stochastic=True),
    # Fast-dLLM
    "fast_threshold": Config("llada", lambda: llada_params(threshold=THRESHOLD)),
    "fast_threshold_temp": Config("llada", lambda: llada_params(threshold=THRESHOLD, temperature=TEMPERATURE), stochastic=True),
    "fast_factor": Config("llada", lambda: llada_params(factor=FACTOR)),
    "fast_prefix_threshold": Config("llada", lambda: llada_params(threshold=THRESHOLD, cache="prefix")),
    "fast_dual_threshold": Config("llada", lambda: llada_params(threshold=THRESHOLD, cache="dual")),
    "fast_prefix_threshold1": Config("llada", lambda: llada_params(threshold=1.0, cache="prefix")),
    "fast_dual_threshold1": Config("llada", lambda: llada_params(threshold=1.0, cache="dual")),
    "fast_prefix_fixed": Config("llada", lambda: llada_params(cache="prefix")),
    "fast_dual_factor": Config("llada", lambda: llada_params(factor=FACTOR, cache="dual")),
    "fast_dual_random_temp": Config("llada", lambda: llada_params(cache="dual", threshold=THRESHOLD, remasking="random", temperature=TEMPERATURE), stochastic=True),
    # Dream reference
    "dream_maskgit_t0": Config("dream", lambda: dream_params(alg="maskgit_plus", temperature=0.0)),
    "dream_maskgit_temp": Config("dream", lambda: dream_params(alg="maskgit_plus", temperature=TEMPERATURE, top_p=st.sampled_from([None, 0.9, 1.0]), top_k=st.sampled_from([None, 5, 50])), stochastic=True),
    "dream_margin_t0": Config("dream", lambda: dream_params(alg="topk_margin", temperature=0.0)),
    "dream_margin_temp": Config("dream", lambda: dream_params(alg="topk_margin", temperature=TEMPERATURE), stochastic=True),
    "dream_entropy_t0": Config("dream", lambda: dream_params(alg="entropy", temperature=0.0)),
    "dream_entropy_temp": Config("dream", lambda: dream_params(alg="entropy", temperature=TEMPERATURE), stochastic=True),
    "dream_origin_t0": Config("dream", lambda: dream_params(alg="origin", temperature=0.0), stochastic=True),
    "dream_origin_temp": Config("dream", lambda: dream_params(alg="origin", temperature=TEMPERATURE), stochastic=True),
    "dream_alg_temp": Config("dream", lambda: dream_params(alg=st.sampled_from(["maskgit_plus", "topk_margin", "entropy"]), temperature=0.0, alg_temp=st.sampled_from([0.1, 0.5, 1.0])), stochastic=True),
    "dream_conf_threshold": Config("dream", dream_threshold_params, batch_one=True),
    # Fast-dLLM Dream block decoder
    "dream_block_prefix": Config("dream", lambda: dream_block_params(alg="entropy", temperature=0.0, dual_cache=False)),
    "dream_block_dual": Config("dream", lambda: dream_block_params(alg="entropy", temperature=0.0, dual_cache=True)),
    "dream_block_prefix_temp": Config("dream", lambda: dream_block_params(alg="maskgit_plus", temperature=TEMPERATURE, dual_cache=False), stochastic=True),
    "dream_block_threshold_prefix": Config("dream", lambda: dream_block_params(alg="confidence_threshold", threshold=THRESHOLD, temperature=0.0, dual_cache=False)),
    "dream_block_threshold_dual": Config("dream", lambda: dream_block_params(alg="confidence_threshold", threshold=THRESHOLD, temperature=0.0, dual_cache=True)),
}

STOCHASTIC = [name for name, config in CONFIGS.items() if config.stochastic]


def gen_length(params: dict[str, Any]) -> int:
    return params["max_new_tokens"] if "max_new_tokens" in params else params["gen_length"]


# --------------------------------------------------------------------------------------------
# prompts


@st.composite
def prompt_rows(draw: Any, min_rows: int = 1, max_rows: int = 2) -> list[list[int]]:
    rows = draw(st.integers(min_rows, max_rows))
    return [draw(st.lists(TOKEN_IDS, min_size=1, max_size=8)) for _ in range(rows)]


def left_pad(rows: list[list[int]], pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[B, P] ids left-padded with ``pad`` and the attention mask (None when no row is padded)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, width - len(row):] = torch.tensor(row)
        mask[b, width - len(row):] = 1
    return ids, (None if bool(mask.all()) else mask)


# --------------------------------------------------------------------------------------------
# running with a trace


@dataclass
class Trace:
    indices: list[int] = field(default_factory=list)
    canvases: list[torch.Tensor] = field(default_factory=list)
    commits: list[torch.Tensor] = field(default_factory=list)

    def __call__(self, index: int, canvas: torch.Tensor, commit: torch.Tensor) -> None:
        self.indices.append(index)
        self.canvases.append(canvas.detach().clone())
        self.commits.append(commit.detach().clone())


def run(config: Config, rows: list[list[int]], params: dict[str, Any], seed: int) -> tuple[Any, Trace, torch.Tensor]:
    ids, mask = left_pad(rows)
    trace = Trace()
    out = unmask.generate(model_for(config.family), ids, attention_mask=mask, seed=seed, on_step=trace, **params)
    return out, trace, ids


def initial_canvas(ids: torch.Tensor, length: int) -> torch.Tensor:
    return torch.cat((ids, torch.full((ids.shape[0], length), MASK, dtype=torch.long)), dim=1)


@st.composite
def case(draw: Any, config: Config) -> tuple[list[list[int]], dict[str, Any], int]:
    rows = draw(prompt_rows(max_rows=1 if config.batch_one else 2))
    params = draw(config.params())
    seed = draw(st.integers(0, 2**32 - 1))
    return rows, params, seed
