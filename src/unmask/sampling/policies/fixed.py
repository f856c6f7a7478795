"""The reference rule: LLaDA's linear schedule commits a fixed number of tokens per step."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from unmask.sampling.policies.base import StepView
from unmask.sampling.rules import select_top_k


@dataclass(frozen=True)
class FixedSchedule:
    """Commit the ``view.scheduled`` most confident candidates (LLaDA ``generate`` semantics)."""

    name: str = "fixed"

    def select(self, view: StepView) -> Tensor:
        return select_top_k(view.confidence, view.candidates, view.scheduled)
