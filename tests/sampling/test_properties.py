"""Property-based tests of the decoders (pytest + hypothesis) on tiny random models.

Every decoder configuration is driven through ``unmask.generate`` with hypothesis-drawn prompts
(left-padded batches included), seeds and valid parameter combinations. The properties:

1. committed tokens never change and the prompt is never touched,
2. masks never grow; ``commits_per_forward`` (and the callback's commit mask) is exactly the
   per-row decrease in masks,
3. no mask remains and each row commits exactly ``gen_length`` tokens,
4. same seed, same output (stochastic settings too); different seeds do differ,
5. a left-padded batch decodes, row by row, like each row alone (deterministic settings),
6. ``nfe`` == number of ``on_step`` calls; LLaDA reference: ``nfe == steps``; threshold=1.0
   commits one token per row per forward,
7. cached decoding with threshold=1.0 keeps 1-3,
8. invalid parameters raise ``ParamError`` naming the parameter (``test_param_errors.py``).

The tiny models never propose the mask id (its logit is pushed to -1e4): a random network
would otherwise occasionally "commit" the mask token, which the decoders (like their references)
allow; see ``test_model_that_predicts_the_mask_id`` for what happens then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import unmask
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer
from unmask.sampling import ParamError

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


# --------------------------------------------------------------------------------------------
# 1-3, 6 (nfe == on_step calls), 7: invariants of the trace, for every configuration


@pytest.mark.parametrize("name", list(CONFIGS))
@FAST
@given(data=st.data())
def test_committed_tokens_never_change(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    rows, params, seed = data.draw(case(config))
    out, trace, ids = run(config, rows, params, seed)
    prompt_length = ids.shape[1]
    previous = initial_canvas(ids, gen_length(params))
    for canvas in trace.canvases:
        assert canvas.shape == previous.shape
        assert torch.equal(canvas[:, :prompt_length], ids), "the prompt (and its padding) changed"
        settled = previous != MASK
        assert torch.equal(canvas[settled], previous[settled]), "a committed token changed"
        previous = canvas
    assert torch.equal(out.sequences, previous)


@pytest.mark.parametrize("name", list(CONFIGS))
@FAST
@given(data=st.data())
def test_masks_shrink_by_the_reported_commits(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    rows, params, seed = data.draw(case(config))
    out, trace, ids = run(config, rows, params, seed)
    assert len(out.commits_per_forward) == len(trace.canvases)
    previous = initial_canvas(ids, gen_length(params))
    for counts, canvas, commit in zip(out.commits_per_forward, trace.canvases, trace.commits):
        before = (previous == MASK).sum(dim=1)
        after = (canvas == MASK).sum(dim=1)
        assert bool((after <= before).all()), "masks grew"
        assert counts == (before - after).tolist()
        # the callback's commit mask is exactly the set of positions unmasked by this forward
        assert torch.equal(commit, (previous == MASK) & (canvas != MASK))
        previous = canvas


@pytest.mark.parametrize("name", list(CONFIGS))
@FAST
@given(data=st.data())
def test_everything_is_committed(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    rows, params, seed = data.draw(case(config))
    out, trace, ids = run(config, rows, params, seed)
    length = gen_length(params)
    assert tuple(out.tokens.shape) == (len(rows), length)
    assert not bool((out.tokens == MASK).any()), "masks remain"
    assert bool(((out.tokens >= 0) & (out.tokens < VOCAB)).all())
    assert torch.equal(out.sequences[:, ids.shape[1]:], out.tokens)
    per_row = [sum(counts[b] for counts in out.commits_per_forward) for b in range(len(rows))]
    assert per_row == [length] * len(rows)
    # 6. one on_step call per forward, indexed 0..nfe-1
    assert out.nfe == len(trace.indices) == len(out.commits_per_forward)
    assert trace.indices == list(range(out.nfe))


# --------------------------------------------------------------------------------------------
# 4. seeds


@pytest.mark.parametrize("name", list(CONFIGS))
@FEW
@given(data=st.data())
def test_same_seed_same_output(name: str, data: st.DataObject) -> None:
    config = CONFIGS[name]
    rows, params, seed = data.draw(case(config))
    first, _, _ = run(config, rows, params, seed)
    second, _, _ = run(config, rows, params, seed)
    assert torch.equal(first.tokens, second.tokens)
    assert first.nfe == second.nfe
    assert first.commits_per_forward == second.commits_per_forward


@pytest.mark.parametrize("name", STOCHASTIC)
@FEW
@given(data=st.data())
def test_seed_is_a_private_generator(name: str, data: st.DataObject) -> None:
    """``seed=s`` decodes exactly like ``generator=torch.Generator().manual_seed(s)``, and
    decoding does not read or advance torch's global RNG."""
    config = CONFIGS[name]
    rows, params, seed = data.draw(case(config))
    ids, mask = left_pad(rows)
    model = model_for(config.family)
    torch.manual_seed(1234)
    seeded = unmask.generate(model, ids, attention_mask=mask, seed=seed, **params)
    after = torch.rand(1)
    torch.manual_seed(4321)  # a different global state must not change anything
    generator = torch.Generator().manual_seed(seed)
    explicit = unmask.generate(model, ids, attention_mask=mask, generator=generator, **params)
    torch.manual_seed(1234)
    assert torch.equal(torch.rand(1), after), "decoding consumed the global RNG"
    assert torch.equal(seeded.tokens, explicit.tokens)
    assert seeded.nfe == explicit.nfe


DIVERSE = {
    "llada_lowconf_temp": dict(gen_length=8, block_length=4, steps=8, temperature=2.0),
    "llada_random_temp": dict(gen_length=8, block_length=8, steps=4, remasking="random", temperature=2.0),
    "fast_threshold_temp": dict(gen_length=8, block_length=4, threshold=0.9, temperature=2.0),
    "fast_dual_random_temp": dict(gen_length=8, block_length=4, threshold=0.9, cache="dual", remasking="random", temperature=2.0),
    "dream_maskgit_temp": dict(max_new_tokens=8, steps=8, alg="maskgit_plus", temperature=2.0, top_k=None),
    "dream_origin_temp": dict(max_new_tokens=8, steps=8, alg="origin", temperature=2.0, top_k=None),
    "dream_block_temp": dict(max_new_tokens=8, block_length=4, steps=4, alg="entropy", temperature=2.0, top_k=None),
}


@pytest.mark.parametrize("name", list(DIVERSE))
@FEW
@given(rows=prompt_rows(max_rows=1), base=st.integers(0, 2**32 - 8))
def test_different_seeds_differ(name: str, rows: list[list[int]], base: int) -> None:
    params = DIVERSE[name]
    model = DREAM_MODEL if "max_new_tokens" in params else LLADA_MODEL
    outputs = {tuple(unmask.generate(model, rows, seed=base + k, **params).tokens[0].tolist()) for k in range(6)}
    assert len(outputs) > 1, "six seeds gave the same output at temperature 2"


# --------------------------------------------------------------------------------------------
# 5. a left-padded batch decodes row by row like each row alone


BATCH_CONFIGS: dict[str, tuple[str, Callable[[], st.SearchStrategy]]] = {
    "llada_lowconf_t0": ("llada", lambda: llada_params(temperature=0.0)),
    "fast_threshold": ("llada", lambda: llada_params(threshold=THRESHOLD)),
    "fast_prefix_threshold": ("llada", lambda: llada_params(threshold=THRESHOLD, cache="prefix")),
    "fast_dual_threshold": ("llada", lambda: llada_params(threshold=THRESHOLD, cache="dual")),
    "fast_factor": ("llada", lambda: llada_params(factor=FACTOR)),
    "fast_prefix_fixed": ("llada", lambda: llada_params(cache="prefix")),
    "llada_cfg_t0": ("llada", lambda: llada_params(cfg_scale=1.0, temperature=0.0)),
    "dream_maskgit_t0": ("dream", lambda: dream_params(alg="maskgit_plus", temperature=0.0)),
    "dream_entropy_t0": ("dream", lambda: dream_params(alg="entropy", temperature=0.0)),
    "dream_block_prefix": ("dream", lambda: dream_block_params(alg="entropy", temperature=0.0, dual_cache=False)),
    "dream_block_dual": ("dream", lambda: dream_block_params(alg="entropy", temperature=0.0, dual_cache=True)),
}


@pytest.mark.parametrize("name", list(BATCH_CONFIGS))
@FAST
@given(data=st.data())
def test_padded_batch_matches_rows_alone(name: str, data: st.DataObject) -> None:
    family, strategy = BATCH_CONFIGS[name]
    model = model_for(family)
    rows = data.draw(st.lists(st.lists(TOKEN_IDS, min_size=1, max_size=8), min_size=2, max_size=3))
    assume(len({len(row) for row in rows}) > 1)
    params = data.draw(strategy())
    pad = data.draw(st.integers(0, MASK - 1), label="pad id")  # the pads' value must not matter
    ids, mask = left_pad(rows, pad)
    assert mask is not None
    batch = unmask.generate(model, ids, attention_mask=mask, seed=0, **params)
    assert torch.equal(batch.sequences[:, : ids.shape[1]], ids), "the padded prompt changed"
    for b, row in enumerate(rows):
        alone = unmask.generate(model, [row], seed=0, **params)
        assert batch.tokens[b].tolist() == alone.tokens[0].tolist(), f"row {b} (prompt length {len(row)})"


# --------------------------------------------------------------------------------------------
# 6. forward counts


@FAST
@given(rows=prompt_rows(), params=llada_params(remasking=st.sampled_from(["low_confidence", "random"]),
                                               temperature=st.sampled_from([0.0, 1.0]),
                                               cfg_scale=st.sampled_from([0.0, 1.0])), seed=st.integers(0, 2**32 - 1))
def test_llada_reference_nfe_is_steps(rows: list[list[int]], params: dict[str, Any], seed: int) -> None:
    out, trace, _ = run(CONFIGS["llada_lowconf_t0"], rows, params, seed)
    assert out.nfe == params["steps"] == len(trace.indices)


@pytest.mark.parametrize("cache", [None, "prefix", "dual"])
@FAST
@given(rows=prompt_rows(max_rows=3), params=llada_params(threshold=1.0), seed=st.integers(0, 2**32 - 1))
def test_threshold_one_commits_one_token_per_forward(cache: str | None, rows: list[list[int]], params: dict[str, Any], seed: int) -> None:
    params = dict(params, cache=cache)
    out, trace, _ = run(CONFIGS["fast_threshold"], rows, params, seed)
    # only the top-1 passes unless some probability is exactly 1.0 (never with this head)
    assert out.nfe == params["gen_length"] == len(trace.indices)
    assert all(counts == [1] * len(rows) for counts in out.commits_per_forward)


@pytest.mark.parametrize("dual_cache", [False, True])
@FAST
@given(rows=prompt_rows(max_rows=3), params=dream_block_params(alg="confidence_threshold", threshold=1.0, temperature=0.0),
       seed=st.integers(0, 2**32 - 1))
def test_dream_block_threshold_one_commits_one_token_per_forward(dual_cache: bool, rows: list[list[int]], params: dict[str, Any], seed: int) -> None:
    params = dict(params, dual_cache=dual_cache)
    out, trace, _ = run(CONFIGS["dream_block_prefix"], rows, params, seed)
    assert out.nfe == params["max_new_tokens"] == len(trace.indices)
    assert all(counts == [1] * len(rows) for counts in out.commits_per_forward)


@FAST
@given(rows=prompt_rows(), params=dream_params(alg=st.sampled_from(["origin", "maskgit_plus", "topk_margin", "entropy"]),
                                               temperature=st.sampled_from([0.0, 1.0])), seed=st.integers(0, 2**32 - 1))
def test_dream_reference_nfe_is_steps(rows: list[list[int]], params: dict[str, Any], seed: int) -> None:
    out, trace, _ = run(CONFIGS["dream_maskgit_t0"], rows, params, seed)
    assert out.nfe == params["steps"] == len(trace.indices)


# --------------------------------------------------------------------------------------------
# edge cases found while writing the properties above


PAD_IS_MASK = {
    "llada_reference": ("llada", dict(gen_length=4, steps=4, block_length=2, temperature=0.0)),
    "llada_cfg": ("llada", dict(gen_length=4, steps=4, block_length=2, cfg_scale=1.0)),
    "fast_threshold": ("llada", dict(gen_length=4, block_length=2, threshold=0.9)),
    "fast_factor": ("llada", dict(gen_length=4, block_length=2, factor=1.0)),
    "fast_prefix_threshold": ("llada", dict(gen_length=4, block_length=2, threshold=0.9, cache="prefix")),
    "fast_dual_threshold": ("llada", dict(gen_length=4, block_length=2, threshold=0.9, cache="dual")),
    "dream_maskgit": ("dream", dict(max_new_tokens=4, steps=4, alg="maskgit_plus", temperature=0.0)),
    "dream_block": ("dream", dict(max_new_tokens=4, steps=4, block_length=2, alg="entropy", temperature=0.0)),
}

@pytest.mark.parametrize(
    "name", [pytest.param(name) for name in PAD_IS_MASK]
)
def test_pads_holding_the_mask_id(name: str) -> None:
    """Pads (attention_mask 0) are never written, whatever their id, or the call is refused."""
    family, params = PAD_IS_MASK[name]
    model = model_for(family)
    for rows in ([[2], [2, 2]], [[5, 6], [3, 4, 5, 6, 7, 8, 9, 10]], [[7], [8, 9, 10, 11, 12]], [[20, 21, 22], [30]]):
        ids, mask = left_pad(rows, pad=MASK)
        try:
            batch = unmask.generate(model, ids, attention_mask=mask, seed=0, **params)
        except ParamError:
            continue  # refusing is fine too
        assert torch.equal(batch.sequences[:, : ids.shape[1]], ids), f"pads overwritten: {batch.sequences.tolist()}"
        for b, row in enumerate(rows):
            assert batch.tokens[b].tolist() == unmask.generate(model, [row], seed=0, **params).tokens[0].tolist()


class NoTermination(Exception):
    pass


def mask_loving_model(shift: bool) -> DiffusionTransformer:
    """A model whose argmax is always the mask id (an untrained or broken checkpoint)."""
    model = tiny(shift=shift, seed=3, suppress_mask=False)

    def favour_mask(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[..., MASK] += 100.0
        return output

    model.lm_head.register_forward_hook(favour_mask)
    return model


def stop_after(forwards: int) -> Callable[[int, torch.Tensor, torch.Tensor], None]:
    def callback(index: int, canvas: torch.Tensor, commit: torch.Tensor) -> None:
        if index >= forwards:
            raise NoTermination(f"still decoding after {forwards} forwards")
    return callback



@pytest.mark.parametrize("family, params", [
    pytest.param("llada", dict(gen_length=4, steps=4, block_length=2), id="llada_reference"),
    pytest.param("dream", dict(max_new_tokens=4, steps=4, alg="maskgit_plus", temperature=0.0), id="dream_reference"),
    pytest.param("llada", dict(gen_length=4, block_length=2, threshold=0.9), id="fast_threshold"),
    pytest.param("llada", dict(gen_length=4, steps=4, block_length=2, cache="prefix"), id="fast_prefix_fixed"),
    pytest.param("dream", dict(max_new_tokens=4, steps=4, block_length=2, alg="entropy", temperature=0.0), id="dream_block"),
])
def test_model_that_predicts_the_mask_id(family: str, params: dict[str, Any]) -> None:
    """Decoding terminates in a bounded number of forwards even if the model keeps proposing the mask id.

    (The reference decoders do: they run exactly ``steps`` forwards; their output then holds mask ids,
    as in LLaDA's and Dream's own code.)
    """
    model = mask_loving_model(family == "dream")
    out = unmask.generate(model, [5, 6, 7], seed=0, on_step=stop_after(100), **params)
    assert out.nfe <= 100
