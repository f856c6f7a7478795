"""The engine against its oracles: Fast-dLLM's decoder, LLaDA's reference, and rows decoded alone.

The model is the golden llada-tiny checkpoint in float64 (so batched and single-row matmuls agree
closely and comparisons are exact); tiny nets freshly initialised here would predict one token
everywhere, which would make these comparisons vacuous. EOS gets a logit bonus in EOS_MODEL so
rows end at different places and early exit actually fires.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unmask
from tests.conftest import golden_root
from unmask.engine import Engine, EngineRequest
from unmask.model import DiffusionTransformer
from unmask.sampling.fastdllm import fastdllm_generate
from unmask.sampling.llada import llada_generate
from unmask.sampling.params import LLaDAParams, ParamError, resolve

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def golden_llada(eos_bonus: float = 0.0) -> DiffusionTransformer:
    """The golden llada-tiny checkpoint (random weights with peaky, position-varied outputs) in
    float64; ``eos_bonus`` is added to EOS's logit so rows end at different places."""
    model = unmask.load(golden_root() / "llada-tiny", dtype=torch.float64)
    if eos_bonus:
        def adjust(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
            output = output.clone()
            output[..., EOS] += eos_bonus
            return output

        model.lm_head.register_forward_hook(adjust)
    return model


MODEL = golden_llada()
MASK, EOS, PAD = MODEL.config.mask_token_id, MODEL.config.eos_token_id, 0
EOS_MODEL = golden_llada(eos_bonus=7.0)

prompts = st.lists(st.lists(st.integers(2, 499), min_size=1, max_size=7), min_size=1, max_size=4)
POLICY_OPTIONS = [
    {},
    {"threshold": 0.6},
    {"factor": 1.0},
    {"policy": "eb", "gamma": 0.8},
    {"policy": "hierarchical", "threshold": 0.9, "low_threshold": 0.3},
]
CACHES = [None, "prefix", "dual"]


def params(**given: Any) -> LLaDAParams:
    return replace(resolve(LLaDAParams, given, {}), mask_id=MASK)


# --- the engine equals the oracles -----------------------------------------------------------

@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize("options", [{}, {"threshold": 0.6}, {"threshold": 0.9}, {"factor": 1.0}, {"factor": 2.0}])
@SETTINGS
@given(prompt=st.lists(st.lists(st.integers(2, 499), min_size=5, max_size=5), min_size=1, max_size=3))
def test_engine_equals_fastdllm_decoder(cache: str | None, options: dict[str, Any], prompt: list[list[int]]) -> None:
    """Same tokens, NFE and per-forward commits as the plain port of Fast-dLLM (equal-length rows)."""
    kwargs = dict(gen_length=12, block_length=4, steps=12, cache=cache, **options)
    engine_out = unmask.generate(MODEL, prompt, **kwargs)
    oracle = fastdllm_generate(MODEL, torch.tensor(prompt), params(**kwargs))
    assert engine_out.sequences.tolist() == oracle.sequences.tolist()
    assert engine_out.nfe == oracle.nfe
    assert engine_out.commits_per_forward == oracle.commits_per_forward


@SETTINGS
@given(prompt=prompts, steps=st.sampled_from([4, 8, 12]), block_length=st.sampled_from([4, 12]))
def test_fixed_policy_equals_llada_reference_on_padded_batches(prompt: list[list[int]], steps: int, block_length: int) -> None:
    width = max(map(len, prompt))
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompt])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt])
    if steps % (12 // block_length):
        steps = 12
    p = params(gen_length=12, block_length=block_length, steps=steps)
    reference = llada_generate(MODEL, ids, p, attention_mask=mask)
    engine_out = unmask.generate(MODEL, ids, attention_mask=mask, policy="fixed", gen_length=12, block_length=block_length, steps=steps)
    assert engine_out.tokens.tolist() == reference.tokens.tolist()
    assert engine_out.commits_per_forward == reference.commits_per_forward


@pytest.mark.parametrize("options", [
    {"threshold": 1.0},
    {"policy": "eb", "gamma": 0.0},
    {"policy": "hierarchical", "threshold": 1.0, "low_threshold": 1.0},
])
@pytest.mark.parametrize("remasking", ["low_confidence", "margin"])
def test_fast_policies_reduce_to_reference_when_only_top1_passes(options: dict[str, Any], remasking: str) -> None:
    prompt = [[5, 9, 13, 2, 7], [3, 3, 8, 30, 12]]
    kwargs = dict(gen_length=16, block_length=8, steps=16, remasking=remasking)
    reference = unmask.generate(MODEL, prompt, **kwargs)
    assert reference.decoder == "llada"
    fast = unmask.generate(MODEL, prompt, **kwargs, **options)
    assert fast.decoder.startswith("engine:")
    assert fast.sequences.tolist() == reference.sequences.tolist()
    assert fast.nfe == reference.nfe == 16
    assert all(step == [1, 1] for step in fast.commits_per_forward)


def test_factor_with_tiny_factor_commits_one_then_the_last_two_together() -> None:
    """Fast-dLLM's factor rule cannot reduce to one token per step: when two candidates remain,
    failing at the last rank commits both (reference behaviour, kept on purpose)."""
    out = unmask.generate(MODEL, [[5, 9, 13]], gen_length=16, block_length=8, steps=16, factor=1e-9)
    per_forward = [step[0] for step in out.commits_per_forward]
    assert per_forward == ([1] * 6 + [2]) * 2
    assert out.nfe == 14


# --- batched == alone, with padding, early exit, stop sequences and sampling -----------------

@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize("options", POLICY_OPTIONS)
@SETTINGS
@given(prompt=prompts, seeds=st.lists(st.integers(0, 2**31), min_size=4, max_size=4),
       temperature=st.sampled_from([0.0, 0.7]), stop_at_eos=st.booleans())
def test_batch_equals_rows_alone(cache: str | None, options: dict[str, Any], prompt: list[list[int]], seeds: list[int],
                                 temperature: float, stop_at_eos: bool) -> None:
    engine = Engine(EOS_MODEL)
    knobs = dict(gen_length=12, block_length=4, steps=12, cache=cache, temperature=temperature, **options)
    requests = [EngineRequest(p, dict(knobs), seed=s, stop_at_eos=stop_at_eos) for p, s in zip(prompt, seeds)]
    batched = engine.run(requests)
    for request, together in zip(requests, batched):
        alone = engine.run([request])[0]
        assert together.tokens == alone.tokens
        assert together.finish_reason == alone.finish_reason
        assert together.nfe == alone.nfe
        assert together.committed == alone.committed
        assert EOS not in together.tokens and MASK not in together.tokens


def test_early_exit_saves_forwards_and_keeps_tokens_before_eos() -> None:
    engine = Engine(EOS_MODEL)
    prompt = [[5, 9, 13, 2], [17, 4, 9], [3, 3, 8]]
    knobs = dict(gen_length=24, block_length=4, steps=24)
    full = engine.run([EngineRequest(p, dict(knobs), stop_at_eos=False) for p in prompt])
    early = engine.run([EngineRequest(p, dict(knobs), stop_at_eos=True) for p in prompt])
    assert [r.tokens for r in early] == [r.tokens for r in full]  # cut at the first EOS either way
    assert [r.finish_reason for r in early] == [r.finish_reason for r in full] == ["stop", "stop", "length"]
    assert [r.nfe for r in full] == [24, 24, 24]
    assert early[0].nfe < 24 and early[1].nfe < 24 and early[2].nfe == 24


def test_stop_sequence_cuts_the_row_and_ends_it() -> None:
    engine = Engine(MODEL)
    knobs = dict(gen_length=16, block_length=4, steps=16)
    plain = engine.run([EngineRequest([5, 9, 13], dict(knobs), stop_at_eos=False)])[0]
    stop = plain.tokens[5:7]
    hit = engine.run([EngineRequest([5, 9, 13], dict(knobs), stop_sequences=[[499, 499, 499], stop], stop_at_eos=False)])[0]
    first = next(i for i in range(len(plain.tokens) - 1) if plain.tokens[i:i + 2] == stop)
    assert hit.tokens == plain.tokens[:first]
    assert hit.finish_reason == "stop" and hit.stop_sequence == stop
    assert hit.nfe <= plain.nfe


def test_cancelled_row_leaves_and_others_are_unaffected() -> None:
    engine = Engine(MODEL)
    knobs = dict(gen_length=16, block_length=4, steps=16)
    requests = [EngineRequest([5, 9, 13], dict(knobs)), EngineRequest([7, 2], dict(knobs))]
    seen: dict[int, int] = {0: 0, 1: 0}

    def on_update(row: int, update: Any) -> None:
        seen[row] = update.nfe
        assert update.canvas[:update.committed_prefix].count(MASK) == 0

    results = engine.run(requests, on_update=on_update, is_cancelled=lambda row: row == 1 and seen[1] >= 3)
    assert results[1].finish_reason == "cancelled" and results[1].nfe == 3
    assert results[0].tokens == engine.run([requests[0]])[0].tokens and results[0].nfe == 16


def test_streamed_prefix_is_append_only() -> None:
    engine = Engine(MODEL)
    prefixes: list[list[int]] = []

    def on_update(row: int, update: Any) -> None:
        prefixes.append(update.canvas[:update.committed_prefix])

    result = engine.run([EngineRequest([5, 9, 13], dict(gen_length=16, block_length=8, steps=16, threshold=0.7))], on_update=on_update)[0]
    for before, after in zip(prefixes, prefixes[1:]):
        assert after[:len(before)] == before
    assert prefixes[-1][:len(result.tokens)] == result.tokens


def test_requests_are_checked_before_decoding() -> None:
    engine = Engine(MODEL)
    with pytest.raises(ParamError, match="prompt_ids"):
        engine.run([EngineRequest([5], {"gen_length": 8, "steps": 8, "block_length": 8}), EngineRequest([], {})])
    with pytest.raises(ParamError, match="not a token id"):
        engine.run([EngineRequest([5, 600], {})])
    with pytest.raises(ParamError, match="gamma does not apply"):
        engine.run([EngineRequest([5], {"gamma": 0.3})])
    with pytest.raises(ParamError, match="policy must be one of"):
        engine.run([EngineRequest([5], {"policy": "greedy"})])
    # reference-loop options the engine's loop does not run: refused, never silently ignored
    for knob in ({"order_noise": 0.1}, {"self_check_retries": 2}):
        with pytest.raises(ParamError, match="the engine does not run them"):
            engine.run([EngineRequest([5], knob)])


def test_incompatible_requests_are_grouped_apart() -> None:
    engine = Engine(MODEL)
    a = EngineRequest([5, 9], dict(gen_length=8, block_length=8, steps=8))
    b = EngineRequest([5, 9], dict(gen_length=16, block_length=8, steps=16))
    assert engine.batch_key(a) != engine.batch_key(b)
    results = engine.run([a, b, a])
    assert [r.nfe for r in results] == [8, 16, 8]
    assert results[0].tokens == results[2].tokens


# --- AR and Dream models: one row at a time, still streamed and cancellable ------------------

def test_ar_rows_stream_token_by_token_and_can_be_cancelled() -> None:
    from unmask.tasks import draw, get_task

    model = unmask.load(Path(__file__).resolve().parents[2] / "models" / "planning-ar")
    task = get_task("planning")
    prompt = task.prompt(draw(task, "test", 1, 0)[0])
    engine = Engine(model)
    prefixes: list[list[int]] = []
    full = engine.run([EngineRequest(prompt, {})], on_update=lambda row, u: prefixes.append(u.canvas[:u.committed_prefix]))[0]
    assert full.nfe == len(prefixes) - 1  # one update per forward, plus the final one
    assert [len(p) for p in prefixes[:-1]] == list(range(1, full.nfe + 1))
    assert prefixes[-1] == full.tokens == unmask.generate(model, [prompt]).tokens[0].tolist()[:len(full.tokens)]
    polls = []

    def cancel_after_three_forwards(row: int) -> bool:
        polls.append(row)  # the engine polls once before decoding, then after every forward
        return len(polls) > 3

    cut = engine.run([EngineRequest(prompt, {})], is_cancelled=cancel_after_three_forwards)[0]
    assert cut.finish_reason == "cancelled" and cut.nfe == 3 and cut.tokens == full.tokens[:3]
    with pytest.raises(ParamError, match="best_of .* the engine does not run it"):  # refused, never ignored
        engine.run([EngineRequest(prompt, {"best_of": 4, "temperature": 1.0})])


def test_dream_rows_stream_their_left_prefix() -> None:
    model = unmask.load(golden_root() / "dream-tiny")
    engine = Engine(model)
    updates: list[Any] = []
    knobs = dict(max_new_tokens=12, steps=12, alg="entropy", temperature=0.0, top_p=None, top_k=None)
    result = engine.run([EngineRequest([5, 9, 13, 21], knobs)], on_update=lambda row, u: updates.append(u))[0]
    assert result.nfe == 12 and len(updates) == 13 and updates[-1].finished
    for before, after in zip(updates, updates[1:]):
        assert after.committed_prefix >= before.committed_prefix
        assert after.canvas[:before.committed_prefix] == before.canvas[:before.committed_prefix]
    reference = unmask.generate(model, [[5, 9, 13, 21]], **knobs).tokens[0].tolist()
    assert updates[-1].canvas == reference
