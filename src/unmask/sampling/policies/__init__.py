"""Unmasking policies: given the scored proposals of the current block, choose what to commit.

Every policy is a small frozen dataclass with a ``name`` and ``select(view) -> commit mask``
(the :class:`UnmaskPolicy` Protocol), registered by name in :data:`POLICIES`. Policies never
run the model and never see positions outside ``view.candidates``; the decoding loop
(``unmask.engine``) owns the canvas, caches and schedule.

==============  ==========================================================  =====================
name            commits                                                     knobs
==============  ==========================================================  =====================
fixed           the k most confident (k from LLaDA's linear schedule)        (steps)
threshold       the top-1, plus every candidate with confidence >= threshold threshold
factor          longest sorted prefix with c_r >= 1 - factor / (r + 2)       factor
eb              most confident first, while their summed entropy <= gamma   gamma
hierarchical    top-1, everything >= threshold, and the best of each          threshold,
                contiguous masked run if its confidence > low_threshold      low_threshold
==============  ==========================================================  =====================

Confidence is the score named by ``remasking``: the proposal's probability (``low_confidence``),
p1 - p2 (``margin``), the negative entropy (``entropy``) or uniform noise (``random``).
"""

from __future__ import annotations

from typing import Any, Callable

from unmask.sampling.policies.base import StepView, UnmaskPolicy
from unmask.sampling.policies.entropy_bounded import EntropyBounded
from unmask.sampling.policies.factor import Factor
from unmask.sampling.policies.fixed import FixedSchedule
from unmask.sampling.policies.hierarchical import Hierarchical
from unmask.sampling.policies.threshold import Threshold

POLICIES: dict[str, Callable[..., UnmaskPolicy]] = {
    "fixed": FixedSchedule,
    "threshold": Threshold,
    "factor": Factor,
    "eb": EntropyBounded,
    "hierarchical": Hierarchical,
}


def make_policy(name: str, **knobs: Any) -> UnmaskPolicy:
    """Build the registered policy ``name`` with its knobs (unknown names/knobs: ValueError)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; registered: {', '.join(POLICIES)}") from None
    try:
        return factory(**knobs)
    except TypeError as error:
        raise ValueError(f"policy {name!r}: {error}") from None


__all__ = ["POLICIES", "EntropyBounded", "Factor", "FixedSchedule", "Hierarchical", "StepView", "Threshold", "UnmaskPolicy", "make_policy"]
