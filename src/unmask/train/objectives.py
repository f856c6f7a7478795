"""The two training objectives on one network: masked diffusion and the autoregressive baseline.

Both return ``(numerator, denominator)`` pieces so that a distributed run can normalise by the
*global* batch: each process computes its rows' numerator over a denominator computed from the
whole global batch (every process holds the data and draws the global noise), and DDP's gradient
averaging times ``world_size`` then equals the single-process gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unmask.train.config import ObjectiveSection


@dataclass
class Noise:
    """Diffusion noise of the global batch: time per row, uniform draw per token."""

    t: Tensor  # [B]
    u: Tensor  # [B, L]
    ordered: Tensor | None = None  # [B] bool: rows masked along their reveal order (None: no row)

    def rows(self, rows: slice, device: torch.device) -> "Noise":
        """This noise for a slice of the batch's rows, on ``device``."""
        ordered = None if self.ordered is None else self.ordered[rows].to(device)
        return Noise(self.t[rows].to(device), self.u[rows].to(device), ordered)


def draw_noise(seed: int, step: int, batch: int, length: int, eps: float, t_max: float = 1.0,
               order_fraction: float = 0.0) -> Noise:
    """t ~ U(eps, t_max) per row, u ~ U(0, 1) per token; a pure function of (seed, step), so
    resumption and every process see the same noise. With ``order_fraction`` > 0 each row is
    also picked, with that probability, to be masked along its reveal order instead; the pick
    comes from a stream of its own, so ``t`` and ``u`` are the same as without it."""
    generator = torch.Generator().manual_seed(seed * 7_919 + step * 104_729 + 17)
    t = eps + (t_max - eps) * torch.rand(batch, generator=generator, dtype=torch.float64)
    u = torch.rand(batch, length, generator=generator, dtype=torch.float64)
    ordered = None
    if order_fraction > 0:
        picker = torch.Generator().manual_seed(seed * 7_919 + step * 104_729 + 23)
        ordered = torch.rand(batch, generator=picker, dtype=torch.float64) < order_fraction
    return Noise(t.float(), u.float(), ordered)


def diffusion_masked(targets: Tensor, noise: Noise, order_rank: Tensor | None = None) -> Tensor:
    """Which target tokens are masked: each with probability t of its row; in the rows
    ``noise.ordered`` picks, the last share t of the row's reveal order (``order_rank`` >= 1 - t),
    so what stays visible is a prefix of that order, a state a solver in that order passes."""
    masked = targets & (noise.u < noise.t[:, None])
    if noise.ordered is None:
        return masked
    if order_rank is None:
        raise ValueError("rows masked along a reveal order need the data's order_rank")
    along_order = targets & (order_rank >= 1 - noise.t[:, None])
    return torch.where(noise.ordered[:, None], along_order, masked)


def denominator(objective: ObjectiveSection, targets: Tensor, masked: Tensor | None) -> Tensor:
    """The normaliser of the global batch (see :class:`ObjectiveSection`)."""
    if objective.kind == "ar":
        targets = targets[:, 1:]  # the first position is never predicted
    if objective.normalisation == "token" or (objective.kind == "ar" and objective.normalisation == "batch"):
        return targets.sum().clamp(min=1).double()
    if objective.normalisation == "batch":
        assert masked is not None
        return masked.sum().clamp(min=1).double()
    return torch.tensor(float(targets.shape[0]), dtype=torch.float64)  # sequence: mean over rows


def focal(ce: Tensor, gamma: float) -> Tensor:
    """MGDM's token reweighting: ``(1 - p)^gamma * CE`` with ``p = exp(-CE)``; the weight is not
    detached, as in a focal loss. ``gamma = 0`` returns ``ce`` unchanged."""
    if gamma == 0:
        return ce
    return (1 - torch.exp(-ce)).pow(gamma) * ce


def diffusion_numerator(
    model: nn.Module,
    tokens: Tensor,
    targets: Tensor,
    noise: Noise,
    mask_id: int,
    objective: ObjectiveSection,
    order_rank: Tensor | None = None,
) -> Tensor:
    """Sum of weighted cross-entropies on the masked positions of these rows."""
    masked = diffusion_masked(targets, noise, order_rank)
    inputs = tokens.masked_fill(masked, mask_id)
    logits = model(inputs)
    ce = F.cross_entropy(logits.float().transpose(1, 2), tokens, reduction="none")  # [B, L]
    ce = focal(ce, objective.focal_gamma) * masked
    if objective.weighting == "inverse_t":
        ce = ce / noise.t[:, None]
    if objective.normalisation == "sequence":
        return (ce.sum(dim=1) / targets.sum(dim=1).clamp(min=1)).sum()
    return ce.sum()


def ar_numerator(model: nn.Module, tokens: Tensor, targets: Tensor, objective: ObjectiveSection) -> Tensor:
    """Next-token cross-entropy summed over target positions (position i predicts token i+1)."""
    logits = model(tokens)[:, :-1]
    ce = F.cross_entropy(logits.float().transpose(1, 2), tokens[:, 1:], reduction="none")
    ce = focal(ce, objective.focal_gamma) * targets[:, 1:]
    if objective.normalisation == "sequence":
        return (ce.sum(dim=1) / targets[:, 1:].sum(dim=1).clamp(min=1)).sum()
    return ce.sum()
