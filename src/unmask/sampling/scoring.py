"""logits -> (filtered) probabilities -> picked tokens and their confidence. Small pure functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def shift_right(logits: Tensor) -> Tensor:
    """Dream's convention: position i is predicted by the output at i-1; position 0 keeps its own."""
    return torch.cat((logits[:, :1], logits[:, :-1]), dim=1)


def gumbel_perturb(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """LLaDA's float64 Gumbel-max: argmax of the result samples from softmax(logits / T).

    The reference computes ``exp(l) / (-log u)^T``; we compute its logarithm ``l - T log(-log u)``,
    which has the same argmax and cannot overflow. At T = 0 the logits are returned unchanged.
    """
    if temperature == 0:
        return logits
    logits64 = logits.to(torch.float64)
    uniform = torch.rand(logits64.shape, dtype=torch.float64, device=logits.device, generator=generator)
    return logits64 - temperature * torch.log(-torch.log(uniform))


def top_p_filter(logits: Tensor, top_p: float) -> Tensor:
    """Keep the smallest set of tokens whose probability mass exceeds top_p (nucleus)."""
    sorted_logits, order = torch.sort(logits, descending=True)
    cumulative = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    drop_sorted = cumulative > top_p
    # shift right: the token that crosses top_p is kept, and the top-1 always is
    drop_sorted[..., 1:] = drop_sorted[..., :-1].clone()
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
    return logits.masked_fill(drop, torch.finfo(logits.dtype).min)


def top_k_filter(logits: Tensor, top_k: int) -> Tensor:
    """Keep tokens whose logit is at least the k-th largest (ties with it are kept)."""
    k = min(top_k, logits.size(-1))
    kth = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def filtered_probs(logits: Tensor, temperature: float, top_p: float | None, top_k: int | None) -> Tensor:
    """Dream's order: divide by temperature (if > 0), nucleus filter (if top_p < 1), top-k, softmax."""
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    return torch.softmax(logits, dim=-1)


def best_token(scores: Tensor, mask_id: int) -> Tensor:
    """argmax over the vocabulary, never the mask token.

    Predicting the mask id would "commit" a mask: the position stays masked and loops that run
    until a block is full never end. Only positions whose argmax is the mask id are re-ranked,
    so wherever the references commit a real token the result is identical to theirs.
    """
    tokens = scores.argmax(dim=-1)
    stuck = tokens == mask_id
    if bool(stuck.any()):
        tokens[stuck] = scores[stuck].index_fill(-1, torch.tensor([mask_id], device=scores.device), float("-inf")).argmax(dim=-1)
    return tokens


def pick_tokens(
    probs: Tensor, temperature: float, generator: torch.Generator | None, mask_id: int
) -> tuple[Tensor, Tensor]:
    """(confidence, token): the most likely non-mask token at T = 0, else a draw from probs
    restricted to non-mask tokens; confidence is the token's probability."""
    if temperature > 0 and probs.numel() > 0:
        flat = probs.reshape(-1, probs.shape[-1]).index_fill(-1, torch.tensor([mask_id], device=probs.device), 0.0)
        tokens = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
    else:
        tokens = best_token(probs, mask_id)
    return torch.gather(probs, -1, tokens[..., None])[..., 0], tokens


def margin_confidence(probs: Tensor) -> Tensor:
    """p1 - p2: the gap between the two most likely tokens."""
    top2 = torch.topk(probs, 2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def negative_entropy(probs: Tensor) -> Tensor:
    """sum p log(p + 1e-10): higher means more confident (Dream's ``entropy`` score)."""
    return torch.sum(probs * torch.log(probs + 1e-10), dim=-1)


def proposal_confidence(probs: Tensor, proposal: Tensor, remasking: str) -> Tensor:
    """Confidence of each proposal under LLaDA's ``remasking`` name: the proposal's probability
    (``low_confidence``), p1 - p2 (``margin``) or the negative entropy (``entropy``)."""
    if remasking == "margin":
        return margin_confidence(probs)
    if remasking == "entropy":
        return negative_entropy(probs)
    return torch.gather(probs, -1, proposal[..., None])[..., 0]
