"""AR ``best_of``: the greedy answer plus samples, the likeliest under the model returned."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import unmask
from unmask.config import ModelConfig
from unmask.sampling import ParamError
from tests.sampling.test_ar import EOS, causal_model


def teacher_forced_log_likelihood(model: nn.Module, prompt: list[int], answer: list[int]) -> float:
    """Sum of log p(answer token | prompt and the answer before it), up to and including the
    first EOS, from one full forward: the definition the decoder's running sum must meet."""
    sequence = torch.tensor([prompt + answer])
    with torch.no_grad():
        log_probs = model(sequence)[0].float().log_softmax(-1)
    total = 0.0
    for offset, token in enumerate(answer):
        total += float(log_probs[len(prompt) + offset - 1, token])
        if token == EOS:
            break
    return total


def test_best_of_one_is_the_plain_decoder() -> None:
    model = causal_model(1)
    plain = unmask.generate(model, [[1, 2, 3]], max_new_tokens=8, temperature=1.0, seed=4)
    same = unmask.generate(model, [[1, 2, 3]], max_new_tokens=8, temperature=1.0, seed=4, best_of=1)
    assert torch.equal(plain.tokens, same.tokens) and same.best_of is None and same.decoder == "ar"


@pytest.mark.parametrize("eos_bias", [0.0, 1e4 + 1.0])  # no EOS, and EOS likely enough to end some candidates early
def test_candidates_scores_and_pick(eos_bias: float) -> None:
    model = causal_model(2, eos_bias=eos_bias)
    prompts = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    out = unmask.generate(model, prompts, max_new_tokens=6, temperature=1.0, seed=3, best_of=5)
    report = out.best_of
    assert report is not None and out.decoder == "ar+best_of"
    assert report.candidates.shape == (3, 5, 6) and report.log_likelihood.shape == (3, 5)
    greedy = unmask.generate(model, prompts, max_new_tokens=6)
    assert torch.equal(report.candidates[:, 0], greedy.tokens)  # candidate 0 is the greedy answer
    assert any(not torch.equal(report.candidates[b, k], report.candidates[b, 0]) for b in range(3) for k in range(1, 5))
    for b, prompt in enumerate(prompts):
        for k in range(5):
            expected = teacher_forced_log_likelihood(model, prompt, report.candidates[b, k].tolist())
            assert report.log_likelihood[b, k].item() == pytest.approx(expected, abs=1e-4)
        assert report.chosen[b] == int(report.log_likelihood[b].argmax())
        assert torch.equal(out.tokens[b], report.candidates[b, report.chosen[b]])
        assert out.sequences[b, :4].tolist() == prompt
        assert report.log_likelihood[b, report.chosen[b]] >= report.log_likelihood[b, 0]  # never less likely than greedy
    if eos_bias:
        assert bool((report.candidates == EOS).any())  # the EOS case was exercised


def test_compute_is_counted_for_every_candidate() -> None:
    model = causal_model(3)
    out = unmask.generate(model, [[1, 2], [3, 4]], max_new_tokens=7, temperature=1.0, seed=0, best_of=4)
    assert out.nfe == 7  # the candidates run as one batch
    assert out.forwards_per_row == [28, 28]  # 4 candidates x 7 forwards per row
    assert out.tokens_per_forward == pytest.approx(7 / 28)  # each returned answer counted once
    assert [len(step) for step in out.commits_per_forward] == [2] * 7


def test_callback_sees_the_greedy_candidates() -> None:
    model = causal_model(4)
    seen: list[Tensor] = []
    plain: list[Tensor] = []
    unmask.generate(model, [[1, 2], [3, 4]], max_new_tokens=5, temperature=1.0, seed=0, best_of=3,
                    on_step=lambda step, canvas, commit: seen.append(canvas.clone()))
    unmask.generate(model, [[1, 2], [3, 4]], max_new_tokens=5, on_step=lambda step, canvas, commit: plain.append(canvas.clone()))
    assert len(seen) == len(plain) == 5
    assert all(torch.equal(a, b) for a, b in zip(seen, plain))


def test_left_padded_rows_rank_like_rows_alone() -> None:
    model = causal_model(5)
    rows = [[1, 2, 3, 4, 5], [6, 7]]
    prompt = [rows[0], [0, 0, 0] + rows[1]]
    mask = [[1] * 5, [0, 0, 0, 1, 1]]
    out = unmask.generate(model, prompt, attention_mask=mask, max_new_tokens=6, temperature=1.0, seed=2, best_of=4)
    assert out.best_of is not None
    for b, row in enumerate(rows):
        alone = unmask.generate(model, [row], max_new_tokens=6)
        assert torch.equal(out.best_of.candidates[b, 0], alone.tokens[0])
        for k in range(4):
            expected = teacher_forced_log_likelihood(model, row, out.best_of.candidates[b, k].tolist())
            assert out.best_of.log_likelihood[b, k].item() == pytest.approx(expected, abs=1e-4)


class TwoRoads(nn.Module):
    """A causal fake whose greedy answer is not its likeliest: after the prompt, token 1 has
    p = 0.4 and token 2 p = 0.35; after 1 the model is unsure (uniform over 20 tokens), after 2
    it is sure (token 3). So 1, x has likelihood 0.4 / 20 = 0.02 and 2, 3 has about 0.35."""

    VOCAB = 24

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=self.VOCAB, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2,
                                  intermediate_size=8, attention="causal", eos_token_id=self.VOCAB - 2,
                                  mask_token_id=self.VOCAB - 1)
        self.generation_config: dict = {}
        self.anchor = nn.Parameter(torch.zeros(1))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def next_logits(self, last: Tensor) -> Tensor:
        probs = torch.full((last.shape[0], self.VOCAB), 1e-6)
        first = last == 0  # the prompt ends in 0
        probs[first, 1], probs[first, 2], probs[first, 4] = 0.4, 0.35, 0.25
        after_one = last == 1
        probs[after_one, 3:self.VOCAB - 1] = 1 / 20  # tokens 3 .. 22 (EOS is 22): unsure
        probs[last == 2, 3] = 1.0
        probs[(last != 0) & (last != 1) & (last != 2), self.VOCAB - 2] = 1.0  # then EOS
        return probs.log()

    def forward_chunk(self, ids: Tensor, *, chunk_start: int = 0, past: object = None,
                      attention_mask: Tensor | None = None) -> tuple[Tensor, object]:
        return self.next_logits(ids[:, -1])[:, None], None


def test_the_likeliest_candidate_beats_the_greedy_one() -> None:
    model = TwoRoads()
    greedy = unmask.generate(model, [[0]], max_new_tokens=3)
    assert greedy.tokens[0, 0].item() == 1  # p = 0.4, then a coin among 20
    out = unmask.generate(model, [[0]], max_new_tokens=3, temperature=1.0, seed=0, best_of=16)
    assert out.best_of is not None
    assert out.tokens[0, :2].tolist() == [2, 3]  # P(no 2 among 15 samples) = 0.65 ** 15 < 0.002
    assert out.best_of.log_likelihood[0, out.best_of.chosen[0]].item() == pytest.approx(math.log(0.35), abs=1e-3)
    assert out.best_of.log_likelihood[0, 0].item() == pytest.approx(math.log(0.4 / 20), abs=1e-3)


def test_bad_best_of_is_refused_by_name() -> None:
    model = causal_model(6)
    with pytest.raises(ParamError, match="best_of"):
        unmask.generate(model, [[1, 2]], max_new_tokens=4, best_of=0)
    with pytest.raises(ParamError, match="best_of=3.*temperature"):
        unmask.generate(model, [[1, 2]], max_new_tokens=4, best_of=3)  # greedy: every candidate the same
    with pytest.raises(ParamError, match="best_of"):
        unmask.generate(model, [[1, 2]], max_new_tokens=4, best_of=2.5, temperature=1.0)
