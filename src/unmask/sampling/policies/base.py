"""The Protocol every unmasking policy implements, and what it is shown at each step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from unmask.sampling.rules import candidate_ranks


@dataclass
class StepView:
    """One forward's proposals for the chunk of the canvas that was run ([B, T] unless noted).

    ``candidates`` marks positions that are still masked and inside the current block: the only
    ones a policy may commit. ``scheduled`` [B] is what LLaDA's linear schedule would commit at
    this step (used by the fixed policy only).
    """

    probs: Tensor  # [B, T, V] float64 softmax of the chunk's logits
    confidence: Tensor  # [B, T] float64 score of each position's proposal (higher = surer)
    candidates: Tensor  # [B, T] bool
    scheduled: Tensor  # [B] int64

    def entropy(self) -> Tensor:
        """Shannon entropy (nats) of each position's distribution, [B, T] float64."""
        p = self.probs
        return -(p * torch.log(p.clamp_min(1e-300))).sum(dim=-1)


class UnmaskPolicy(Protocol):
    """Chooses which candidates to commit: returns a bool [B, T] subset of ``view.candidates``.

    Policies must commit at least one candidate in every row that has any (else a block can
    never finish), and must depend only on their row (batched == alone).
    """

    name: str

    def select(self, view: StepView) -> Tensor: ...


def ranks(confidence: Tensor, candidates: Tensor) -> Tensor:
    """Rank of each candidate in its row (0 = most confident, ties by position); others rank last."""
    return candidate_ranks(confidence, candidates)


def top1(confidence: Tensor, candidates: Tensor) -> Tensor:
    """The single most confident candidate of each row that has any."""
    return candidates & (ranks(confidence, candidates) == 0)
