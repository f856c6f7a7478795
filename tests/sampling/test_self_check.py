"""Order noise and the leave-one-out self-check: the batched check equals masking one position
at a time, order noise changes the order and nothing else, and the retry loop keeps, replaces
and reports rows as documented."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import unmask
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer
from unmask.sampling import self_check
from unmask.sampling.params import LLaDAParams, ParamError

from tests.sampling.test_ar import FixedLogits

VOCAB, MASK = 12, 11


def _model() -> DiffusionTransformer:
    # learned positions: with RoPE alone a random one-layer model predicts the same token at every
    # masked position, and a check that reads the wrong position would still agree
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2,
                         intermediate_size=32, mask_token_id=MASK, learned_positions=True)
    return DiffusionTransformer(config).eval()


@torch.inference_mode()
def _naive_choices(model: DiffusionTransformer, canvas: torch.Tensor, start: int, cfg_scale: float) -> torch.Tensor:
    """Mask one position of one row at a time; CFG written out by hand."""
    choices = torch.zeros(canvas.shape[0], canvas.shape[1] - start, dtype=torch.long)
    for row in range(canvas.shape[0]):
        for position in range(start, canvas.shape[1]):
            copy = canvas[row:row + 1].clone()
            copy[0, position] = MASK
            logits = model(copy)[0, position]
            if cfg_scale > 0:
                unconditional = copy.clone()
                unconditional[0, :start] = MASK
                plain = model(unconditional)[0, position]
                logits = plain + (cfg_scale + 1) * (logits - plain)
            logits[MASK] = float("-inf")
            choices[row, position - start] = logits.argmax()
    return choices


@pytest.mark.parametrize("cfg_scale", [0.0, 4.0])
def test_leave_one_out_matches_one_position_at_a_time(cfg_scale: float, monkeypatch: pytest.MonkeyPatch) -> None:
    model, start = _model(), 3
    prompt = torch.randint(0, MASK, (3, start), generator=torch.Generator().manual_seed(1))
    decoded = unmask.generate(model, prompt, gen_length=6, steps=6, block_length=6, cfg_scale=cfg_scale).sequences
    corrupted = decoded.clone()  # the model's own answers, and the same answers with one position changed each
    for row, position in enumerate((start, start + 2, start + 5)):
        corrupted[row, position] = (corrupted[row, position] + 1) % MASK
    canvas = torch.cat([decoded, corrupted])
    expected = _naive_choices(model, canvas, start, cfg_scale)
    monkeypatch.setattr(self_check, "CHECK_ROWS_PER_FORWARD", 5)  # several chunks, one cut inside a row's copies
    params = LLaDAParams(gen_length=6, steps=6, block_length=6, cfg_scale=cfg_scale, mask_id=MASK)
    choices, forwards = self_check.leave_one_out_choices(model, canvas, start, params)
    assert torch.equal(choices, expected)
    assert forwards == -(-6 * 6 // 5)
    disagree, _ = self_check.leave_one_out_disagreements(model, canvas, start, params)
    assert torch.equal(disagree, expected != canvas[:, start:])
    # not uniform within a row: a check that reads the wrong position cannot pass
    assert bool((disagree.any(1) & ~disagree.all(1)).any())
    if cfg_scale > 0:  # and CFG changes some pick: a check that drops it cannot pass
        assert not torch.equal(expected, _naive_choices(model, canvas, start, 0.0))


class OrderRevealingModel(FixedLogits):
    """Fixed distributions per position whose top token moves on by one with every position filled,
    so the decoded tokens spell out the order the positions were filled in. Position 1 is the
    most probable, position 2 the most decisive (largest margin). Vocabulary of 7, the last the mask."""

    def __init__(self, start: int) -> None:
        super().__init__(torch.zeros(1, 1, 7))
        self.start = start
        probs = torch.tensor([[0.30, 0.25, 0.15, 0.10, 0.10, 0.10],
                              [0.60, 0.39, 0.01, 0.00, 0.00, 0.00],   # top-1 0.60, margin 0.21
                              [0.55, 0.15, 0.10, 0.10, 0.10, 0.00],   # top-1 0.55, margin 0.40
                              [0.40, 0.35, 0.25, 0.00, 0.00, 0.00]])
        self.log_probs = torch.log(probs.clamp(min=1e-9))

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        filled = (ids[:, self.start:] != 6).sum(1)
        logits = torch.full((*ids.shape, 7), -1e4)
        for row, shift in enumerate(filled.tolist()):
            logits[row, self.start:, :6] = torch.roll(self.log_probs, shifts=shift, dims=-1)
        return logits


def test_order_noise_changes_the_order_and_only_with_enough_noise() -> None:
    model = OrderRevealingModel(start=2)
    prompt = torch.tensor([[0, 1], [3, 4]])

    def decode(seed: int = 0, **options: object) -> torch.Tensor:
        return unmask.generate(model, prompt, gen_length=4, steps=4, block_length=4, seed=seed, **options).tokens

    margin = decode(remasking="margin")
    assert not torch.equal(margin, decode(remasking="low_confidence"))  # the order shows in the tokens
    assert torch.equal(decode(remasking="margin", order_noise=1e-9), margin)  # noise added to the score, not replacing it
    noisy = {tuple(decode(remasking="margin", order_noise=10.0, seed=s)[0].tolist()) for s in range(8)}
    assert len(noisy) > 1  # the order really is randomised ...
    # ... and each position is filled once, one per step: its token is how many were filled before it
    assert all(sorted(row) == [0, 1, 2, 3] for row in noisy)


class SelfCorrectingModel(FixedLogits):
    """Two answer positions (vocabulary 0..4, mask 4). On an empty answer the model is sure of
    position 0 (token 1) and unsure of position 1 (token 2), so top margin fills position 0 first.
    Once one position holds v, the other is predicted 2 if v is 2 or 3, else 3. So the first
    decode ends at (1, 3), which the check flags (position 0 given 3 wants 2); filling position 1
    first gives (2, 2), which passes. ``forwards`` counts rows put through the model."""

    def __init__(self, start: int) -> None:
        super().__init__(torch.zeros(1, 1, 5))
        self.start = start
        self.forwards = 0

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        self.forwards += ids.shape[0]
        logits = torch.full((*ids.shape, 5), -10.0)
        for row in range(ids.shape[0]):
            first, second = ids[row, self.start].item(), ids[row, self.start + 1].item()
            if first == 4 and second == 4:
                logits[row, self.start, 1] = 5.0
                logits[row, self.start + 1, 2], logits[row, self.start + 1, 0] = 1.0, 0.8
            for position, other in ((self.start, second), (self.start + 1, first)):
                if other != 4:
                    logits[row, position, 2 if other in (2, 3) else 3] = 5.0
        return logits


def _checked(model: SelfCorrectingModel, retries: int, noise: float | None = 10.0) -> unmask.GenerateOutput:
    prompt = torch.tensor([[0], [1], [2]])
    options = {} if noise is None else {"retry_order_noise": noise}
    return unmask.generate(model, prompt, gen_length=2, steps=2, block_length=2, remasking="margin", seed=3,
                           self_check_retries=retries, **options)


def test_self_check_flags_and_a_retry_in_another_order_fixes() -> None:
    model = SelfCorrectingModel(start=1)
    plain = unmask.generate(model, torch.tensor([[0], [1], [2]]), gen_length=2, steps=2, block_length=2, remasking="margin")
    assert plain.tokens.tolist() == [[1, 3]] * 3
    out = _checked(model, retries=20)
    report = out.self_check
    assert report is not None and torch.equal(report.first_tokens, plain.tokens)
    assert report.flagged_first == [True] * 3 and report.passed == [True] * 3 and report.replaced == [True] * 3
    assert out.tokens.tolist() == [[2, 2]] * 3
    assert 1 <= min(report.retries) and max(report.retries) <= 20
    # every forward row is counted: 2 decode forwards + 2 check rows, then per retry the same again
    assert out.forwards_per_row == [2 + 2 + 4 * tries for tries in report.retries]
    assert sum(out.forwards_per_row) == model.forwards - 2 * 3  # the plain decode above put 2 x 3 rows through
    assert out.tokens_per_forward == pytest.approx(2 * 3 / sum(out.forwards_per_row))


def test_check_only_and_exhausted_retries_keep_the_first_answer() -> None:
    only = _checked(SelfCorrectingModel(start=1), retries=0, noise=None)
    assert only.tokens.tolist() == [[1, 3]] * 3
    assert only.self_check is not None and only.self_check.flagged_first == [True] * 3
    assert only.self_check.passed == [False] * 3 and only.self_check.retries == [0] * 3
    # noise too small to change the order: every retry repeats the first decode and fails
    stuck = _checked(SelfCorrectingModel(start=1), retries=3, noise=1e-12)
    assert stuck.tokens.tolist() == [[1, 3]] * 3
    assert stuck.self_check is not None and stuck.self_check.retries == [3] * 3 and stuck.self_check.passed == [False] * 3


def test_rows_that_pass_are_left_as_decoded() -> None:
    model = _model()
    prompt = torch.randint(0, MASK, (6, 3), generator=torch.Generator().manual_seed(2))
    options = dict(gen_length=6, steps=6, block_length=6, remasking="margin")
    plain = unmask.generate(model, prompt, **options)
    out = unmask.generate(model, prompt, seed=0, self_check_retries=2, **options)
    report = out.self_check
    assert report is not None and torch.equal(report.first_tokens, plain.tokens)
    for row, flagged in enumerate(report.flagged_first):
        if not flagged:
            assert torch.equal(out.tokens[row], plain.tokens[row]) and report.retries[row] == 0
        elif report.passed[row]:  # a replacement really passes its own check
            disagree, _ = self_check.leave_one_out_disagreements(model, out.sequences[row:row + 1], 3, LLaDAParams(**options, mask_id=MASK))
            assert not bool(disagree.any())
        else:
            assert torch.equal(out.tokens[row], plain.tokens[row]) and report.retries[row] == 2


@pytest.mark.parametrize("options, message", [
    (dict(order_noise=-1.0), "order_noise"),
    (dict(order_noise=float("inf")), "order_noise must be a finite number"),
    (dict(order_noise=0.1, remasking="random"), "remasking='random'"),
    (dict(order_noise=0.1, threshold=0.9), "reference loop"),
    (dict(self_check_retries=2, cache="prefix"), "reference loop"),
    (dict(self_check_retries=-1), "self_check_retries"),
    (dict(self_check_retries=True), "self_check_retries"),
    (dict(retry_order_noise=0.2), "applies only with self_check_retries"),
    (dict(self_check_retries=2, retry_order_noise=0.0), "retry_order_noise=0"),
])
def test_bad_order_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        unmask.generate(_model(), [[1, 2]], gen_length=4, steps=4, block_length=4, **options)


def test_self_check_needs_nothing_from_the_global_rng() -> None:
    model = SelfCorrectingModel(start=1)
    torch.manual_seed(5)
    first = _checked(model, retries=20)
    after = torch.rand(1)
    torch.manual_seed(6)
    second = _checked(model, retries=20)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(1), after)
    assert first.self_check is not None and second.self_check is not None
    assert first.self_check.retries == second.self_check.retries and torch.equal(first.tokens, second.tokens)


def test_cannot_apply_to_an_ar_model() -> None:
    config = ModelConfig(vocab_size=VOCAB, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2,
                         intermediate_size=32, attention="causal")
    with pytest.raises(ParamError, match="self_check_retries"):
        unmask.generate(DiffusionTransformer(config).eval(), [[1, 2]], max_new_tokens=2, self_check_retries=1)


assert issubclass(FixedLogits, nn.Module)  # the fakes above stand in for a model through nn.Module
