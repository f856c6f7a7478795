"""Entropy-bounded unmasking (after the EB-sampler of Ben-Hamu et al., 2025)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unmask.sampling.policies.base import StepView, ranks


@dataclass(frozen=True)
class EntropyBounded:
    """Reveal candidates most confident first while their summed entropy stays <= ``gamma``.

    The top-1 is always revealed, so ``gamma = 0`` decodes one token per step in confidence
    order (the reference order). Entropies are of the model's full distribution at each position.
    """

    gamma: float = 0.1
    name: str = "eb"

    def __post_init__(self) -> None:
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma!r}")

    def select(self, view: StepView) -> Tensor:
        rank = ranks(view.confidence, view.candidates)
        entropy = view.entropy().masked_fill(~view.candidates, 0.0)
        # entropies laid out in rank order, so a cumulative sum walks most-confident-first
        in_rank_order = torch.zeros_like(entropy).scatter_(-1, rank, entropy)
        within_budget = (torch.cumsum(in_rank_order, dim=-1) <= self.gamma).sum(dim=-1)
        count = torch.minimum(within_budget.clamp_min(1), view.candidates.sum(dim=-1))
        return view.candidates & (rank < count[:, None])
