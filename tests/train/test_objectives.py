"""The objectives against hand computations on a fake model with fixed logits, and the DDP split identity."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from unmask.model import DiffusionTransformer
from unmask.train import load_config
from unmask.train.data import task_data
from unmask.train.loop import model_config_for
from unmask.train.objectives import Noise, ar_numerator, denominator, diffusion_masked, diffusion_numerator, draw_noise

MASK = 99  # outside the fake vocabulary: only the recorded inputs see it

LOGITS = [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [3.0, 0.0, -2.0]]  # [L=4, V=3]
TOKENS = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 1]])
TARGETS = torch.tensor([[False, True, True, True], [False, False, True, True]])  # prompts of 1 and 2 tokens
# t = 1/2 and 1/4 (exact in binary); u < t on the prompts too: they must stay unmasked anyway
NOISE = Noise(torch.tensor([0.5, 0.25]), torch.tensor([[0.0, 0.1, 0.9, 0.2], [0.0, 0.0, 0.1, 0.2]]))
MASKED = [(0, 1), (0, 3), (1, 2), (1, 3)]


class FixedLogits(nn.Module):
    """Returns the same logits for every row whatever the input, and records its inputs."""

    def __init__(self, logits: list[list[float]]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))
        self.inputs: list[Tensor] = []

    def forward(self, ids: Tensor) -> Tensor:
        self.inputs.append(ids.clone())
        return self.logits[: ids.shape[1]].expand(ids.shape[0], -1, -1)


def ce(position: int, token: int) -> float:
    """Cross-entropy of ``token`` under LOGITS[position], by hand."""
    row = LOGITS[position]
    return math.log(sum(math.exp(v) for v in row)) - row[token]


def objective(*overrides: str):  # type: ignore[no-untyped-def]
    return load_config(None, list(overrides)).objective


def loss(kind: str, normalisation: str, weighting: str = "none") -> float:
    config = objective(f"objective.kind={kind}", f"objective.normalisation={normalisation}", f"objective.weighting={weighting}")
    model = FixedLogits(LOGITS)
    if kind == "diffusion":
        numerator = diffusion_numerator(model, TOKENS, TARGETS, NOISE, MASK, config)
        norm = denominator(config, TARGETS, diffusion_masked(TARGETS, NOISE))
    else:
        numerator = ar_numerator(model, TOKENS, TARGETS, config)
        norm = denominator(config, TARGETS, None)
    return float((numerator / norm.float()).detach())


def test_only_targets_are_masked_and_the_model_sees_the_rest() -> None:
    masked = diffusion_masked(TARGETS, NOISE)
    assert sorted(map(tuple, masked.nonzero().tolist())) == MASKED
    model = FixedLogits(LOGITS)
    diffusion_numerator(model, TOKENS, TARGETS, NOISE, MASK, objective())
    (seen,) = model.inputs
    expected = TOKENS.clone()
    for row, column in MASKED:
        expected[row, column] = MASK
    assert torch.equal(seen, expected)
    # at t ~ 1 every target is masked and still no prompt token
    everything = diffusion_masked(TARGETS, Noise(torch.ones(2), torch.full((2, 4), 0.999)))
    assert torch.equal(everything, TARGETS)


def test_prompt_never_masked_on_real_task_batches() -> None:
    data = task_data("planning", 64, 0)
    noise = draw_noise(0, 5, 64, data.tokens.shape[1], 1e-3)
    noise = Noise(torch.full_like(noise.t, 0.999), noise.u)  # nearly everything
    masked = diffusion_masked(data.targets, noise)
    assert not masked[:, : data.prompt_length].any()
    assert masked[:, data.prompt_length:].float().mean() > 0.99


def test_noise_is_a_pure_function_of_seed_and_step() -> None:
    a, b = draw_noise(3, 7, 8, 5, 0.01), draw_noise(3, 7, 8, 5, 0.01)
    assert torch.equal(a.t, b.t) and torch.equal(a.u, b.u)
    assert not torch.equal(draw_noise(3, 8, 8, 5, 0.01).t, a.t)
    assert not torch.equal(draw_noise(4, 7, 8, 5, 0.01).t, a.t)
    assert a.t.dtype == torch.float32 and a.u.shape == (8, 5)


def test_mask_rate_follows_t() -> None:
    rows, length, eps = 4000, 1024, 0.05
    noise = draw_noise(0, 11, rows, length, eps)
    assert noise.t.min() >= eps and noise.t.max() < 1
    assert noise.t.mean().item() == pytest.approx((1 + eps) / 2, abs=0.02)  # t ~ U(eps, 1)
    rate = diffusion_masked(torch.ones(rows, length, dtype=torch.bool), noise).double().mean(dim=1)
    t = noise.t.double()
    deviation = rate - t
    assert deviation.abs().max() < 0.08  # binomial sd <= 0.016 per row
    assert deviation.mean().abs() < 0.002
    slope = ((t - t.mean()) * (rate - rate.mean())).sum() / ((t - t.mean()) ** 2).sum()
    assert slope.item() == pytest.approx(1.0, abs=0.01)


def test_inverse_t_weighting_divides_each_row_by_its_t() -> None:
    none, inverse = objective("objective.weighting=none"), objective("objective.weighting=inverse_t")
    for row in range(2):
        rows = slice(row, row + 1)
        noise = Noise(NOISE.t[rows], NOISE.u[rows])
        plain = diffusion_numerator(FixedLogits(LOGITS), TOKENS[rows], TARGETS[rows], noise, MASK, none)
        weighted = diffusion_numerator(FixedLogits(LOGITS), TOKENS[rows], TARGETS[rows], noise, MASK, inverse)
        assert plain > 0
        assert torch.equal(weighted, plain / NOISE.t[row])  # t is a power of two: exact
    # any t: the same up to rounding
    noise = Noise(torch.tensor([0.3, 0.7]), NOISE.u)
    plain = [diffusion_numerator(FixedLogits(LOGITS), TOKENS[i:i + 1], TARGETS[i:i + 1], Noise(noise.t[i:i + 1], noise.u[i:i + 1]), MASK, none) for i in range(2)]
    both = diffusion_numerator(FixedLogits(LOGITS), TOKENS, TARGETS, noise, MASK, inverse)
    assert both.item() == pytest.approx(plain[0].item() / 0.3 + plain[1].item() / 0.7, rel=1e-6)


@pytest.mark.parametrize("weighting", ["none", "inverse_t"])
def test_diffusion_normalisations_by_hand(weighting: str) -> None:
    w = [2.0, 4.0] if weighting == "inverse_t" else [1.0, 1.0]  # 1/t per row
    row0 = w[0] * (ce(1, 1) + ce(3, 1))  # masked (0,1) and (0,3), both token 1
    row1 = w[1] * (ce(2, 0) + ce(3, 1))  # masked (1,2) token 0 and (1,3) token 1
    targets = [3, 2]
    hand = {
        "token": (row0 + row1) / sum(targets),  # per target token of the batch
        "sequence": (row0 / targets[0] + row1 / targets[1]) / 2,  # per row, then mean over rows
        "batch": (row0 + row1) / len(MASKED),  # per masked token
    }
    for normalisation, value in hand.items():
        assert loss("diffusion", normalisation, weighting) == pytest.approx(value, rel=1e-6), normalisation
    assert len(set(hand.values())) == 3  # the example tells the three apart


def test_ar_loss_is_next_token_cross_entropy_on_targets() -> None:
    # position i predicts token i+1; only target tokens (after the prompt) count
    row0 = ce(0, 1) + ce(1, 2) + ce(2, 1)  # tokens 1..3 of row 0 are targets
    row1 = ce(1, 0) + ce(2, 1)  # tokens 2..3 of row 1
    assert loss("ar", "token") == pytest.approx((row0 + row1) / 5, rel=1e-6)
    assert loss("ar", "batch") == pytest.approx((row0 + row1) / 5, rel=1e-6)  # no masking: batch = token
    assert loss("ar", "sequence") == pytest.approx((row0 / 3 + row1 / 2) / 2, rel=1e-6)
    model = FixedLogits(LOGITS)
    ar_numerator(model, TOKENS, TARGETS, objective("objective.kind=ar"))
    assert torch.equal(model.inputs[0], TOKENS)  # nothing masked
    # packed text: every position is a target, but the first is never predicted
    everything = torch.ones(2, 4, dtype=torch.bool)
    assert denominator(objective("objective.kind=ar"), everything, None).item() == 6
    assert denominator(objective(), everything, everything).item() == 8


@pytest.mark.parametrize("kind", ["diffusion", "ar"])
@pytest.mark.parametrize("normalisation", ["token", "sequence", "batch"])
def test_split_rows_over_global_denominator_equals_full_batch(kind: str, normalisation: str) -> None:
    """What each of two DDP processes computes sums to the single-process loss and gradient."""
    config = load_config(None, [f"objective.kind={kind}", f"objective.normalisation={normalisation}",
                                "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
                                "model.num_kv_heads=2", "model.intermediate_size=64"])
    data = task_data("planning", 16, 0)
    torch.manual_seed(0)
    model = DiffusionTransformer(model_config_for(config, data))
    tokens, targets = data.tokens, data.targets
    noise = draw_noise(0, 3, 16, tokens.shape[1], config.objective.eps)
    masked = diffusion_masked(targets, noise) if kind == "diffusion" else None
    norm = denominator(config.objective, targets, masked).float()

    def part(rows: slice) -> Tensor:
        if kind == "diffusion":
            local = Noise(noise.t[rows], noise.u[rows])
            return diffusion_numerator(model, tokens[rows], targets[rows], local, data.ids.mask, config.objective) / norm
        return ar_numerator(model, tokens[rows], targets[rows], config.objective) / norm

    def gradient(value: Tensor) -> list[Tensor]:
        return torch.autograd.grad(value, list(model.parameters()))

    full = part(slice(0, 16))
    halves = [part(slice(0, 8)), part(slice(8, 16))]
    assert (halves[0] + halves[1]).item() == pytest.approx(full.item(), rel=1e-6)
    assert 0.5 < full.item() < 20
    for whole, a, b in zip(gradient(full), gradient(halves[0]), gradient(halves[1])):
        torch.testing.assert_close(a + b, whole, rtol=1e-5, atol=1e-7)


def test_t_max_bounds_the_noise_and_is_validated() -> None:
    from unmask.train import TrainConfigError, load_config
    from unmask.train.objectives import draw_noise

    noise = draw_noise(0, 3, 4000, 2, 1e-3, t_max=0.6)
    assert float(noise.t.max()) <= 0.6 and float(noise.t.min()) >= 1e-3
    assert 0.29 < float(noise.t.mean()) < 0.31
    full = draw_noise(0, 3, 4000, 2, 1e-3)
    assert float(full.t.max()) > 0.99
    with pytest.raises(TrainConfigError, match="objective.t_max"):
        load_config(None, ["objective.t_max=1.5"])


def focal_ce(position: int, token: int, gamma: float) -> float:
    """MGDM's reweighted CE by hand: (1 - p)^gamma * CE with p the token's softmax probability."""
    row = LOGITS[position]
    p = math.exp(row[token]) / sum(math.exp(v) for v in row)
    return (1 - p) ** gamma * -math.log(p)


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_focal_token_reweighting_by_hand(gamma: float) -> None:
    config = objective("objective.weighting=inverse_t", "objective.normalisation=batch", f"objective.focal_gamma={gamma}")
    hand = 2.0 * (focal_ce(1, 1, gamma) + focal_ce(3, 1, gamma)) + 4.0 * (focal_ce(2, 0, gamma) + focal_ce(3, 1, gamma))
    value = diffusion_numerator(FixedLogits(LOGITS), TOKENS, TARGETS, NOISE, MASK, config)
    assert value.item() == pytest.approx(hand, rel=1e-6)
    plain = diffusion_numerator(FixedLogits(LOGITS), TOKENS, TARGETS, NOISE, MASK, objective("objective.weighting=inverse_t"))
    assert value.item() < plain.item()  # every weight is below 1
    ar_hand = sum(focal_ce(p, t, gamma) for p, t in [(0, 1), (1, 2), (2, 1), (1, 0), (2, 1)])
    ar = ar_numerator(FixedLogits(LOGITS), TOKENS, TARGETS, objective("objective.kind=ar", f"objective.focal_gamma={gamma}"))
    assert ar.item() == pytest.approx(ar_hand, rel=1e-6)


def test_focal_gamma_is_validated() -> None:
    from unmask.train import TrainConfigError

    with pytest.raises(TrainConfigError, match="objective.focal_gamma"):
        objective("objective.focal_gamma=-1")


def test_ordered_rows_mask_the_end_of_their_reveal_order() -> None:
    # row 0 is masked along its order: rank >= 1 - t, whatever u says; row 1 keeps the u < t rule
    targets = torch.ones(2, 4, dtype=torch.bool)
    rank = torch.tensor([[0.75, 0.0, 0.5, 0.25], [0.0, 0.25, 0.5, 0.75]])
    noise = Noise(torch.tensor([0.5, 0.5]), torch.tensor([[0.9, 0.1, 0.9, 0.1], [0.9, 0.1, 0.9, 0.1]]),
                  torch.tensor([True, False]))
    masked = diffusion_masked(targets, noise, rank)
    assert masked.tolist() == [[True, False, True, False], [False, True, False, True]]
    # targets still bound the mask: a prompt position is never masked, whatever its rank
    prompt_kept = diffusion_masked(torch.tensor([[False, True, True, True]] * 2), noise, rank)
    assert not prompt_kept[:, 0].any()
    with pytest.raises(ValueError, match="order_rank"):
        diffusion_masked(targets, noise)


def test_order_fraction_picks_rows_without_changing_t_and_u() -> None:
    plain = draw_noise(2, 9, 4000, 6, 1e-3, t_max=0.9)
    picked = draw_noise(2, 9, 4000, 6, 1e-3, t_max=0.9, order_fraction=0.25)
    assert plain.ordered is None and picked.ordered is not None
    assert torch.equal(plain.t, picked.t) and torch.equal(plain.u, picked.u)  # old runs keep their noise
    assert abs(picked.ordered.double().mean().item() - 0.25) < 0.03
    assert torch.equal(picked.ordered, draw_noise(2, 9, 4000, 6, 1e-3, t_max=0.9, order_fraction=0.25).ordered)


def test_a_run_with_order_fraction_trains_on_its_own_masks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.train.helpers import quiet_train, tiny_config

    common = ("data.source=sudoku", "optim.max_steps=3", "data.train_size=40", "objective.t_max=1.0")
    plain = quiet_train(tiny_config(tmp_path / "plain", *common))
    ordered = quiet_train(tiny_config(tmp_path / "ordered", *common, "objective.order_fraction=1.0"))
    again = quiet_train(tiny_config(tmp_path / "again", *common, "objective.order_fraction=1.0"))
    assert math.isfinite(ordered.loss) and ordered.step == 3
    assert ordered.loss != plain.loss  # other positions were masked, so another loss
    assert ordered.loss == again.loss  # and the orders are seeded
