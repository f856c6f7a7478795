"""Optional ``torch.compile`` of the model's forward, for long-running processes on CPU.

Measured on this machine (``benchmarks/compile_probe.py``, ``docs/BENCHMARKS.md``): the compiled
forward of the bundled planning model is 1.7-2.9x faster, but compiling costs seconds per new
input shape (tens of seconds the first time), and the engine's shapes change as rows leave a
batch and between cached and uncached steps. So it is off by default and worth it only where one
process decodes many requests (``unmask serve``, long benchmarks). ``dynamic=True`` keeps one graph
for all batch sizes and lengths instead of one per shape.
"""

from __future__ import annotations

import torch

from unmask.model import DiffusionTransformer


def compile_forward(model: DiffusionTransformer) -> DiffusionTransformer:
    """Replace ``model.forward_chunk`` (used by every decoder) by a compiled version; returns
    the same model. The first calls are slow (compilation); results are unchanged up to float noise."""
    if getattr(model, "_unmask_compiled", False):
        return model
    model.forward_chunk = torch.compile(model.forward_chunk, dynamic=True)  # type: ignore[method-assign]
    model._unmask_compiled = True  # type: ignore[attr-defined]
    return model
