"""How many tokens each step commits: LLaDA's linear schedule and Dream's timestep schedule."""

from __future__ import annotations

import torch
from torch import Tensor


def block_bounds(prompt_length: int, gen_length: int, block_length: int) -> list[tuple[int, int]]:
    """Canvas [start, end) of each semi-autoregressive block of the generated part."""
    starts = range(prompt_length, prompt_length + gen_length, block_length)
    return [(start, start + block_length) for start in starts]


def linear_transfer_counts(masked_per_row: Tensor, steps: int) -> Tensor:
    """LLaDA: ``masked // steps`` per step, the first ``masked % steps`` steps take one more.

    masked_per_row [B] -> counts [B, steps] (int64), each row summing to its masked count.
    """
    masked = masked_per_row.view(-1, 1).long()
    base = masked // steps
    remainder = masked % steps
    step_index = torch.arange(steps, device=masked.device).view(1, -1)
    return base + (step_index < remainder).long()


def dream_timesteps(steps: int, eps: float, device: torch.device | str = "cpu") -> Tensor:
    """``linspace(1, eps, steps + 1)`` in float32, exactly as Dream builds it."""
    return torch.linspace(1, eps, steps + 1, device=device)


def dream_quota(masked_total: Tensor, batch: int, timesteps: Tensor, step: int, last_step: int) -> int:
    """Dream's per-step quota ``int(n * (1 - s / t))``, or ``int(n)`` at the last step.

    ``n`` is the batch-average mask count as a float32 tensor; the arithmetic is done in float32
    tensors like the reference, because the truncation is sensitive to rounding (e.g. with
    steps == max_new_tokens the first quota is int(0.999...) = 0).
    """
    average = masked_total / batch
    if step < last_step:
        t, s = timesteps[step], timesteps[step + 1]
        return int(average * (1 - s / t))
    return int(average)
