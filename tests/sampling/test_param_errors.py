"""Invalid decoding parameters raise ``ParamError`` naming the parameter (property 8 of
``test_properties.py``), for the reference decoders, Fast-dLLM's options and the engine's policies."""

from __future__ import annotations

from typing import Any

import pytest

import unmask
from tests.sampling.property_cases import DREAM_MODEL, LLADA_MODEL, VOCAB
from unmask.sampling import ParamError

POLICY_ERRORS = [
    pytest.param(dict(policy="greedy"), "policy must be one of", id="policy_unknown"),
    pytest.param(dict(policy="threshold", gamma=0.3), "gamma does not apply", id="gamma_with_threshold"),
    pytest.param(dict(policy="eb", factor=1.0), "factor does not apply", id="factor_with_eb"),
    pytest.param(dict(low_threshold=0.3), "low_threshold does not apply", id="low_threshold_without_hierarchical"),
    pytest.param(dict(policy="eb", gamma=-1.0), "gamma must be >= 0", id="gamma_negative"),
    pytest.param(dict(policy="hierarchical", threshold=0.5, low_threshold=0.8), "must not exceed", id="low_above_high"),
    pytest.param(dict(policy="hierarchical", low_threshold=0.0), "low_threshold must be in", id="low_threshold_zero"),
    pytest.param(dict(policy="factor", remasking="entropy"), "entropy", id="entropy_with_factor"),
    pytest.param(dict(stop_at_eos="yes"), "stop_at_eos", id="stop_at_eos_str"),
    pytest.param(dict(policy="eb", gamma=float("inf")), "gamma", id="gamma_inf"),
]


@pytest.mark.parametrize("params, message", POLICY_ERRORS)
def test_invalid_policy_params_raise_param_error(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        unmask.generate(LLADA_MODEL, [5, 6, 7], seed=0, gen_length=8, block_length=4, steps=8, **params)


LLADA_ERRORS = [
    pytest.param(dict(gen_length=10, block_length=4, steps=10), "block_length", id="gen_not_multiple_of_block"),
    pytest.param(dict(gen_length=8, block_length=4, steps=3), "steps", id="steps_not_multiple_of_blocks"),
    pytest.param(dict(gen_length=8, block_length=4, steps=8, remasking="foo"), "remasking", id="remasking_foo"),
    pytest.param(dict(gen_length=8, block_length=4, threshold=1.5), "threshold", id="threshold_1.5"),
    pytest.param(dict(gen_length=8, block_length=4, threshold=0.0), "threshold", id="threshold_0"),
    pytest.param(dict(gen_length=8, block_length=4, factor=-1.0), "factor", id="factor_negative"),
    pytest.param(dict(gen_length=8, block_length=4, steps=8, alg="entropy"), "alg", id="dream_keyword_alg"),
    pytest.param(dict(max_new_tokens=8), "max_new_tokens", id="dream_keyword_max_new_tokens"),
    pytest.param(dict(gen_length=8, block_length=4, steps=8, temperature=-0.5), "temperature", id="negative_temperature"),
    pytest.param(dict(gen_length=8, block_length=4, steps=8, cfg_scale=-1.0), "cfg_scale", id="negative_cfg_scale"),
    pytest.param(dict(gen_length=8, block_length=4, cache="full"), "cache", id="cache_full"),
    pytest.param(dict(gen_length=8, block_length=4, threshold=0.9, factor=1.0), "factor", id="threshold_and_factor"),
    pytest.param(dict(gen_length=8, block_length=4, threshold=0.9, cfg_scale=1.0), "cfg_scale", id="cfg_with_fastdllm"),
    pytest.param(dict(gen_length=0, block_length=4, steps=8), "gen_length", id="gen_length_zero"),
    pytest.param(dict(gen_length=8.0, block_length=4, steps=8), "gen_length", id="gen_length_float"),
    pytest.param(dict(gen_length=8, block_length=4, steps=True), "steps", id="steps_bool"),
    pytest.param(dict(gen_length=8, block_length=4, steps=8, mask_id=VOCAB), "mask_id", id="mask_id_outside_vocab"),
    pytest.param(dict(gen_length=8, block_length=4, threshold=float("nan")), "threshold", id="threshold_nan"),
    pytest.param(dict(gen_length=8, block_length=4, steps=8, temperature=float("nan")), "temperature", id="temperature_nan"),
    pytest.param(dict(gen_length=8, block_length=4, steps=8, temperature="1.0"), "temperature", id="temperature_str"),
    pytest.param(dict(gen_length=8, block_length=4, threshold="0.9"), "threshold", id="threshold_str"),
    pytest.param(dict(gen_length=8, block_length=4, factor="1.0"), "factor", id="factor_str"),
]

DREAM_ERRORS = [
    pytest.param(dict(max_new_tokens=8, steps=8, top_k=0), "top_k", id="top_k_zero"),
    pytest.param(dict(max_new_tokens=8, steps=8, top_k=2.5), "top_k", id="top_k_float"),
    pytest.param(dict(max_new_tokens=8, steps=8, top_p=0.0), "top_p", id="top_p_zero"),
    pytest.param(dict(max_new_tokens=8, steps=8, temperature=-1.0), "temperature", id="negative_temperature"),
    pytest.param(dict(max_new_tokens=8, steps=8, alg="foo"), "alg", id="alg_foo"),
    pytest.param(dict(max_new_tokens=8, steps=8, alg_temp=-0.1), "alg_temp", id="negative_alg_temp"),
    pytest.param(dict(max_new_tokens=8, steps=8, eps=0.0), "eps", id="eps_zero"),
    pytest.param(dict(max_new_tokens=8, steps=8, threshold=1.5), "threshold", id="threshold_1.5"),
    pytest.param(dict(max_new_tokens=10, steps=8, block_length=4), "block_length", id="tokens_not_multiple_of_block"),
    pytest.param(dict(max_new_tokens=8, steps=3, block_length=4), "steps", id="steps_not_multiple_of_blocks"),
    pytest.param(dict(max_new_tokens=8, steps=2, block_length=4, alg="entropy"), "steps", id="block_one_step_per_block"),
    pytest.param(dict(gen_length=8, steps=8), "gen_length", id="llada_keyword_gen_length"),
    pytest.param(dict(max_new_tokens=8, steps=8, remasking="random"), "remasking", id="llada_keyword_remasking"),
    pytest.param(dict(max_new_tokens=0, steps=8), "max_new_tokens", id="max_new_tokens_zero"),
    pytest.param(dict(max_new_tokens=8, steps=3, alg="confidence_threshold"), "steps", id="conf_threshold_steps_not_dividing"),
    pytest.param(dict(max_new_tokens=8, steps=8, alg="maskgit_plus", alg_temp=float("nan")), "alg_temp", id="alg_temp_nan"),
    pytest.param(dict(max_new_tokens=8, steps=8, alg_temp="0.5"), "alg_temp", id="alg_temp_str"),
    pytest.param(dict(max_new_tokens=8, steps=8, top_p="0.9"), "top_p", id="top_p_str"),
    pytest.param(dict(max_new_tokens=8, steps=8, eps="0.001"), "eps", id="eps_str"),
    pytest.param(dict(max_new_tokens=8, steps=8, block_length=4, dual_cache="no"), "dual_cache", id="dual_cache_str"),
]


@pytest.mark.parametrize("params, name", LLADA_ERRORS)
def test_invalid_llada_params_raise_param_error(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ParamError, match=name):
        unmask.generate(LLADA_MODEL, [5, 6, 7], seed=0, **params)


@pytest.mark.parametrize("params, name", DREAM_ERRORS)
def test_invalid_dream_params_raise_param_error(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ParamError, match=name):
        unmask.generate(DREAM_MODEL, [5, 6, 7], seed=0, **params)


def test_dream_confidence_threshold_rejects_batches() -> None:
    with pytest.raises(ParamError, match="confidence_threshold"):
        unmask.generate(DREAM_MODEL, [[5, 6, 7], [8, 9, 10]], seed=0, max_new_tokens=4, steps=4, alg="confidence_threshold")


def test_param_error_is_a_value_error() -> None:
    assert issubclass(ParamError, ValueError)


