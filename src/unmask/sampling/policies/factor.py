"""Fast-dLLM's factor rule: commit more tokens the surer the sorted confidences are."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from unmask.sampling.policies.base import StepView
from unmask.sampling.rules import select_factor


@dataclass(frozen=True)
class Factor:
    """Longest prefix of descending confidences with c_r >= 1 - factor / (r + 2) (rank r from 0)."""

    factor: float = 1.0
    name: str = "factor"

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"factor must be positive, got {self.factor!r}")

    def select(self, view: StepView) -> Tensor:
        return select_factor(view.confidence, view.candidates, self.factor)
