"""Commit rules: given per-position confidences of the candidates, which positions to commit.

Every rule takes ``confidence`` [B, L] and ``candidates`` [B, L] (bool: still masked and
allowed to compete this step) and returns a bool [B, L] commit mask that is a subset of the
candidates. Non-candidates are ignored whatever their confidence.
"""

from __future__ import annotations

import torch
from torch import Tensor


def candidate_ranks(confidence: Tensor, candidates: Tensor) -> Tensor:
    """Rank of each candidate in its row (0 = most confident); non-candidates rank last."""
    scores = confidence.masked_fill(~candidates, float("-inf"))
    order = torch.argsort(scores, dim=-1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(order.shape[-1], device=order.device).expand_as(order)
    return ranks.scatter_(-1, order, positions)


def select_top_k(confidence: Tensor, candidates: Tensor, k: Tensor) -> Tensor:
    """The ``k[b]`` most confident candidates of each row b (fewer if the row has fewer)."""
    return candidates & (candidate_ranks(confidence, candidates) < k.view(-1, 1))


def select_threshold(confidence: Tensor, candidates: Tensor, threshold: float) -> Tensor:
    """Fast-dLLM threshold rule: the top-1 candidate always, plus every candidate >= threshold."""
    top1 = candidates & (candidate_ranks(confidence, candidates) == 0)
    return top1 | (candidates & (confidence >= threshold))


def select_factor(confidence: Tensor, candidates: Tensor, factor: float) -> Tensor:
    """Fast-dLLM factor rule on confidences sorted descending c_0 >= c_1 >= ...

    Rank 0 is always accepted; rank r >= 1 needs ``c_r >= 1 - factor / (r + 2)``. The first
    failing rank r* is the number committed. As in the reference, a failure at the very last
    rank (r* = n - 1) still commits all n.
    """
    ranks = candidate_ranks(confidence, candidates)
    count = candidates.sum(dim=-1)  # n per row
    bar = 1.0 - factor / (ranks.to(torch.float64) + 2.0)
    fails = candidates & (ranks >= 1) & (confidence.to(torch.float64) < bar)
    first_fail = torch.where(fails, ranks, torch.full_like(ranks, confidence.shape[-1])).min(dim=-1).values
    commit_count = torch.where(first_fail >= count - 1, count, first_fail)
    return candidates & (ranks < commit_count.view(-1, 1))
