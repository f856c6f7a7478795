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

This file holds 1-4 and the trace part of 6 and 7; 5, the forward counts of 6 and the edge cases
are in ``test_properties_batches.py``; the models, strategies and configurations they share in
``property_cases.py``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import unmask
from tests.sampling.property_cases import (CONFIGS, DREAM_MODEL, FAST, FEW, LLADA_MODEL, MASK, STOCHASTIC, VOCAB, case,
                                           gen_length, initial_canvas, left_pad, model_for, prompt_rows, run)


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
