"""unmask.load / unmask.generate: parameter resolution, routing, input validation, batching."""

from __future__ import annotations

import pytest
import torch

import unmask
from tests.conftest import ASSETS, golden_root
from unmask.sampling.params import DreamParams, LLaDAParams, ParamError, resolve


@pytest.fixture(scope="module")
def llada() -> unmask.model.DiffusionTransformer:
    return unmask.load(golden_root() / "llada-tiny")


@pytest.fixture(scope="module")
def dream() -> unmask.model.DiffusionTransformer:
    return unmask.load(golden_root() / "dream-tiny")


def test_defaults_come_from_generation_config_then_family() -> None:
    model = unmask.load(ASSETS / "tiny-llada-chat")
    assert model.generation_config["gen_length"] == 32
    out = unmask.generate(model, [[5, 6, 7]])
    assert out.tokens.shape == (1, 32) and out.nfe == 32  # steps=32 from generation_config.json
    out = unmask.generate(model, [[5, 6, 7]], gen_length=16, steps=4, block_length=16)
    assert out.tokens.shape == (1, 16) and out.nfe == 4


def test_dream_omitted_means_dreams_own_default_and_none_means_none() -> None:
    omitted = resolve(DreamParams, {}, {})
    assert (omitted.temperature, omitted.top_p, omitted.top_k, omitted.alg, omitted.steps) == (1.0, 1.0, 50, "origin", 512)
    explicit = resolve(DreamParams, {"top_k": None, "top_p": None}, {"top_k": 7})
    assert explicit.top_k is None and explicit.top_p is None
    assert resolve(DreamParams, {}, {"top_k": 7}).top_k == 7


def test_omitted_top_k_is_fifty_and_top_k_changes_confidences(dream: unmask.model.DiffusionTransformer) -> None:
    common = dict(max_new_tokens=16, steps=8, temperature=0.0, top_p=None, alg="entropy")
    prompt = [[32, 424, 387, 161, 407, 189, 35, 113, 224, 266, 473, 337]]
    steps: dict[str, list] = {"omitted": [], "fifty": [], "one": []}
    for name, extra in (("omitted", {}), ("fifty", {"top_k": 50}), ("one", {"top_k": 1})):
        unmask.generate(dream, prompt, on_step=lambda i, canvas, commit, n=name: steps[n].append(commit.nonzero().tolist()),
                        **common, **extra)
    assert steps["omitted"] == steps["fifty"]
    # top-1 filtering makes every entropy 0: the order of commits changes
    assert steps["one"] != steps["fifty"]


def test_llada_eos_knobs_work_on_any_vocabulary(llada: unmask.model.DiffusionTransformer) -> None:
    # the reference hard-codes id 126081 and raises IndexError on this 512-token model
    eos = llada.config.eos_token_id
    for seed in range(3):
        out = unmask.generate(llada, [[7, 8, 9]], gen_length=16, steps=16, block_length=16, temperature=1.0,
                              logits_eos_inf=True, seed=seed)
        assert eos not in out.tokens[0].tolist()


def test_routing_by_parameters(llada: unmask.model.DiffusionTransformer, dream: unmask.model.DiffusionTransformer) -> None:
    assert unmask.generate(llada, [[3]], gen_length=8, steps=8, block_length=8).decoder == "llada"
    assert unmask.generate(llada, [[3]], gen_length=8, block_length=8, steps=8, threshold=0.9).decoder == "engine:threshold"
    assert unmask.generate(llada, [[3]], gen_length=8, block_length=8, steps=8, cache="dual").decoder == "engine:fixed+dual_cache"
    assert unmask.generate(llada, [[3]], gen_length=8, block_length=8, steps=8, policy="eb", gamma=0.5).decoder == "engine:eb"
    assert unmask.generate(dream, [[3]], max_new_tokens=8, steps=8, alg="entropy").decoder == "dream"
    out = unmask.generate(dream, [[3]], max_new_tokens=8, steps=4, block_length=4, alg="confidence_threshold")
    assert out.decoder == "fastdllm_dream_block+prefix_cache"


@pytest.mark.parametrize(
    "prompt,kwargs,message",
    [
        ([[1, 2], [3]], {}, "rectangular"),
        ([[1, 600]], {}, "outside the vocabulary"),
        ([[]], {}, "length >= 1"),
        ([[1, 2]], {"attention_mask": [[1, 0]]}, "left padding"),
        ([[1, 2]], {"attention_mask": [[1, 1, 1]]}, "attention_mask has shape"),
        ([[1, 2]], {"attention_mask": [[2, 1]]}, "only 0"),
        ([[1, 2]], {"gen_length": 8, "block_length": 3}, "multiple of block_length"),
        ([[1, 2]], {"steps": 3, "gen_length": 8, "block_length": 4}, "multiple of the number of blocks"),
        ([[1, 2]], {"cfg_scale": 1.0, "threshold": 0.9}, "cfg_scale"),
        ([[1, 2]], {"top_k": 5}, "unknown decoding parameter"),
        ([[1, 2]], {"mask_id": 999}, "outside the vocabulary"),
    ],
)
def test_bad_inputs_name_the_problem(llada: unmask.model.DiffusionTransformer, prompt: list, kwargs: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        unmask.generate(llada, prompt, **kwargs)


def test_dream_confidence_threshold_checks_its_preconditions(dream: unmask.model.DiffusionTransformer) -> None:
    with pytest.raises(ParamError, match="batch size 1"):
        unmask.generate(dream, [[3], [4]], max_new_tokens=8, steps=4, alg="confidence_threshold")
    with pytest.raises(ParamError, match="multiple of steps"):
        unmask.generate(dream, [[3]], max_new_tokens=10, steps=4, alg="confidence_threshold")


def test_batched_cached_decoders_equal_rows_alone(llada: unmask.model.DiffusionTransformer, dream: unmask.model.DiffusionTransformer) -> None:
    """The references cannot do this: dual cache fails for batch > 1, and the Dream block
    decoder never terminates for batch > 1."""
    prompts = [[11, 12, 13, 14], [21, 22, 23, 24]]
    for kwargs in ({"threshold": 0.5, "cache": "dual"}, {"threshold": 0.5, "cache": "prefix"}, {"factor": 1.0, "cache": "dual"}):
        batch = unmask.generate(llada, prompts, gen_length=16, block_length=8, steps=16, **kwargs)
        for row, prompt in enumerate(prompts):
            alone = unmask.generate(llada, [prompt], gen_length=16, block_length=8, steps=16, **kwargs)
            assert batch.tokens[row].tolist() == alone.tokens[0].tolist()
    for dual in (False, True):
        kwargs = dict(max_new_tokens=16, steps=4, block_length=8, alg="confidence_threshold", threshold=0.5,
                      dual_cache=dual, temperature=0.0, top_p=None, top_k=None)
        batch = unmask.generate(dream, prompts, **kwargs)
        for row, prompt in enumerate(prompts):
            assert batch.tokens[row].tolist() == unmask.generate(dream, [prompt], **kwargs).tokens[0].tolist()


def test_missing_mask_id_is_a_clear_error(tmp_path) -> None:
    model = unmask.load(golden_root() / "llada-tiny")
    from dataclasses import replace

    model.config = replace(model.config, mask_token_id=None)
    with pytest.raises(ParamError, match="no mask_token_id"):
        unmask.generate(model, [[1, 2]], gen_length=8, steps=8, block_length=8)


def test_same_seed_same_output_and_private_generator(llada: unmask.model.DiffusionTransformer) -> None:
    kwargs = dict(gen_length=16, steps=8, block_length=8, temperature=1.0, remasking="random")
    torch.manual_seed(0)
    first = unmask.generate(llada, [[5, 6]], seed=123, **kwargs)
    global_state = torch.random.get_rng_state()
    second = unmask.generate(llada, [[5, 6]], seed=123, **kwargs)
    assert torch.equal(torch.random.get_rng_state(), global_state)  # the global RNG is untouched
    assert first.tokens.tolist() == second.tokens.tolist()
