"""Fast-dLLM's confidence-threshold parallel decoding."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from unmask.sampling.policies.base import StepView
from unmask.sampling.rules import select_threshold


@dataclass(frozen=True)
class Threshold:
    """Commit the top-1 and every candidate whose confidence is >= ``threshold``."""

    threshold: float = 0.9
    name: str = "threshold"

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}")

    def select(self, view: StepView) -> Tensor:
        return select_threshold(view.confidence, view.candidates, self.threshold)
