"""dInfer-style hierarchical decoding: one commit per contiguous masked run, plus the sure ones."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unmask.sampling.policies.base import StepView, ranks, top1


@dataclass(frozen=True)
class Hierarchical:
    """Split the block's candidates into contiguous runs; commit each run's most confident
    position if its confidence > ``low_threshold``, every candidate >= ``threshold``, and the
    top-1. Far-apart runs are nearly independent, so one token from each is a safe parallel step.
    """

    threshold: float = 0.9
    low_threshold: float = 0.5
    name: str = "hierarchical"

    def __post_init__(self) -> None:
        if not 0.0 < self.low_threshold <= self.threshold <= 1.0:
            raise ValueError(f"need 0 < low_threshold <= threshold <= 1, got {self.low_threshold!r}, {self.threshold!r}")

    def select(self, view: StepView) -> Tensor:
        candidates, confidence = view.candidates, view.confidence
        rank = ranks(confidence, candidates)
        # run id: 1, 2, ... for each contiguous stretch of candidates, 0 outside them
        starts = candidates.clone()
        starts[:, 1:] &= ~candidates[:, :-1]
        run_id = torch.cumsum(starts.long(), dim=-1) * candidates.long()
        best_rank = torch.full((rank.shape[0], rank.shape[1] + 1), rank.shape[1], dtype=rank.dtype, device=rank.device)
        best_rank = best_rank.scatter_reduce(-1, run_id, rank.masked_fill(~candidates, rank.shape[1]), reduce="amin")
        run_best = candidates & (rank == torch.gather(best_rank, -1, run_id)) & (confidence > self.low_threshold)
        sure = candidates & (confidence >= self.threshold)
        return top1(confidence, candidates) | sure | run_best
