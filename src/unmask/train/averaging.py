"""An exponential moving average (EMA) of the trained weights, kept beside the optimizer.

After each optimizer step every parameter's shadow copy moves toward it:
``shadow = rate * shadow + (1 - rate) * weight`` with ``rate = min(decay, (1 + n) / (10 + n))``
at the ``n``-th update (n = 0, 1, ...). The ramp keeps the first updates from being dominated by
the starting weights (a random init, or an ``init_from`` model); it is a function of ``n`` alone,
so a resumed run recomputes the same averages. The average never feeds back into training: the
raw weights and their loss curve are those of the same run without it. Periodic evaluation and the
exported model use the averaged weights, the checkpoint holds both.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from unmask.train.checkpointing import CheckpointStateError


class WeightAverageError(CheckpointStateError):
    """A checkpoint's weight average does not fit the model being trained (a user error: the
    CLI reports it in one line, like any unusable checkpoint)."""


class WeightAverage:
    """Shadow copies of ``model``'s parameters, updated with :meth:`update` after each step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"the weight-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    def rate(self, updates: int) -> float:
        """The share of the old average kept at update number ``updates``."""
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        keep = self.rate(self.updates)
        for name, weight in model.named_parameters():
            self.shadow[name].lerp_(weight.detach(), 1.0 - keep)
        self.updates += 1

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Run the body with the averaged weights in ``model``; the raw weights come back after it."""
        params = dict(model.named_parameters())
        raw = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(raw[name])

    def state_dict(self) -> dict[str, Any]:
        # the decay is not saved: it comes from the config, which a resume must match
        return {"updates": self.updates, "weights": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        weights = state.get("weights")
        if not isinstance(weights, dict) or set(weights) != set(self.shadow):
            raise WeightAverageError("the checkpoint's weight average names other parameters than the model")
        for name, tensor in weights.items():
            if tensor.shape != self.shadow[name].shape:
                raise WeightAverageError(f"the checkpoint's weight average has {name} of shape "
                                         f"{tuple(tensor.shape)}, the model {tuple(self.shadow[name].shape)}")
            self.shadow[name].copy_(tensor)
        self.updates = int(state["updates"])
