"""Property-based tests of the decoders, continued (``test_properties.py`` lists them all):
5. a left-padded batch decodes row by row like each row alone, 6. forward counts, and the edge
cases found while writing the properties."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import unmask
from tests.sampling.property_cases import (CONFIGS, FACTOR, FAST, MASK, THRESHOLD, TOKEN_IDS, dream_block_params,
                                           dream_params, left_pad, llada_params, model_for, prompt_rows, run, tiny)
from unmask.model import DiffusionTransformer
from unmask.sampling import ParamError


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
