"""The left-to-right decoder of causal (AR baseline) models: KV cache vs recomputation, padding,
early exit, and the unmask extensions of LLaDA's remasking (margin, entropy)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import unmask
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer
from unmask.sampling import ParamError

VOCAB, EOS, MASK = 30, 28, 29


def causal_model(seed: int = 0, eos_bias: float = 0.0) -> DiffusionTransformer:
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                         intermediate_size=64, attention="causal", eos_token_id=EOS, mask_token_id=MASK)
    model = DiffusionTransformer(config).eval()
    bias = torch.zeros(VOCAB)
    bias[MASK] = -1e4
    bias[EOS] = -1e4 + eos_bias  # rows stop only when asked to
    model.lm_head.register_forward_hook(lambda module, inputs, output: output + bias)
    return model


def naive_greedy(model: DiffusionTransformer, prompt: list[int], steps: int) -> list[int]:
    """Recompute the whole sequence for every token: the definition the cached decoder must meet."""
    sequence = list(prompt)
    for _ in range(steps):
        with torch.no_grad():
            logits = model(torch.tensor([sequence]))
        sequence.append(int(logits[0, -1].argmax()))
    return sequence[len(prompt):]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kv_cached_greedy_equals_recomputation(seed: int) -> None:
    model = causal_model(seed)
    prompt = torch.randint(0, 20, (1, 7), generator=torch.Generator().manual_seed(seed)).tolist()[0]
    out = unmask.generate(model, [prompt], max_new_tokens=12)
    assert out.tokens[0].tolist() == naive_greedy(model, prompt, 12)
    assert out.nfe == 12
    assert out.decoder == "ar"
    assert out.tokens_per_forward == 1.0


def test_left_padded_batch_equals_rows_alone() -> None:
    model = causal_model(3)
    rows = [[1, 2, 3, 4, 5, 6], [7, 8, 9], [10, 11, 12, 13]]
    width = max(map(len, rows))
    prompt = [[0] * (width - len(r)) + r for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    batch = unmask.generate(model, prompt, attention_mask=mask, max_new_tokens=8)
    for index, row in enumerate(rows):
        alone = unmask.generate(model, [row], max_new_tokens=8)
        assert batch.tokens[index].tolist() == alone.tokens[0].tolist()


def test_rows_that_emit_eos_stop_and_are_padded_with_eos() -> None:
    model = causal_model(4, eos_bias=2e4)  # EOS wins immediately
    out = unmask.generate(model, [[1, 2, 3], [4, 5, 6]], max_new_tokens=10)
    assert out.nfe == 1
    assert out.tokens.tolist() == [[EOS] * 10, [EOS] * 10]
    assert out.commits_per_forward == [[1, 1]]


def test_sampling_is_seeded() -> None:
    model = causal_model(5)
    a = unmask.generate(model, [[1, 2, 3]], max_new_tokens=10, temperature=1.0, seed=7)
    b = unmask.generate(model, [[1, 2, 3]], max_new_tokens=10, temperature=1.0, seed=7)
    c = unmask.generate(model, [[1, 2, 3]], max_new_tokens=10, temperature=1.0, seed=8)
    assert torch.equal(a.tokens, b.tokens)
    assert not torch.equal(a.tokens, c.tokens)


def test_ar_parameters_are_validated_by_name() -> None:
    model = causal_model()
    with pytest.raises(ParamError, match="max_new_tokens"):
        unmask.generate(model, [[1, 2]], max_new_tokens=0)
    with pytest.raises(ParamError, match="gen_length"):
        unmask.generate(model, [[1, 2]], gen_length=4)  # a diffusion keyword on an AR model


class FixedLogits(nn.Module):
    """Returns the same hand-made logits for every call: decides which position is most confident."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=logits.shape[-1], hidden_size=8, num_layers=1, num_heads=2,
                                  num_kv_heads=2, intermediate_size=8, mask_token_id=logits.shape[-1] - 1)
        self.logits = logits
        self.generation_config: dict = {}
        self.anchor = nn.Parameter(torch.zeros(1))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits.expand(ids.shape[0], -1, -1).clone()


def test_margin_prefers_the_decisive_position_over_the_probable_one() -> None:
    probs = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.2],
                          [0.60, 0.39, 0.005, 0.005, 0.0],   # top-1 0.60, margin 0.21
                          [0.55, 0.15, 0.15, 0.15, 0.0]])    # top-1 0.55, margin 0.40
    logits = torch.log(probs.clamp(min=1e-9))[None]
    picks = {}
    for remasking in ("low_confidence", "margin", "entropy"):
        seen: list[int] = []

        def record(step: int, canvas: torch.Tensor, commit: torch.Tensor, seen: list[int] = seen) -> None:
            if step == 0:
                seen.extend(commit[0].nonzero().flatten().tolist())

        unmask.generate(FixedLogits(logits), [[0]], gen_length=2, steps=2, block_length=2, remasking=remasking, on_step=record)
        picks[remasking] = seen[0]
    # entropy: position 1 (H ~ 0.70 nats) is more certain than position 2 (H ~ 1.25)
    assert picks == {"low_confidence": 1, "margin": 2, "entropy": 1}


def test_entropy_remasking_is_refused_with_fast_dllm_options() -> None:
    logits = torch.zeros(1, 3, 5)
    with pytest.raises(ParamError, match="entropy"):
        unmask.generate(FixedLogits(logits), [[0]], gen_length=2, steps=2, block_length=2, remasking="entropy", threshold=0.9)
