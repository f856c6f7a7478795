"""Which decoding family a network belongs to, from its config alone."""

from __future__ import annotations

from unmask.model import DiffusionTransformer


def decoding_family(model: DiffusionTransformer) -> str:
    """'ar' for causal-attention models (left-to-right decoding), 'dream' for models that read
    predictions from the previous position, else 'llada'."""
    if model.config.attention == "causal":
        return "ar"
    return "dream" if model.config.shift_logits else "llada"
