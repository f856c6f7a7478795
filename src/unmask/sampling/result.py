"""What every decoder returns, and the bookkeeping shared by all of them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

# Called after every forward pass with (step index, canvas [B, L], positions committed by it [B, L]).
StepCallback = Callable[[int, Tensor, Tensor], None]


@dataclass
class SelfCheckReport:
    """Per row of the batch: what the self-check saw and did."""

    first_tokens: Tensor  # [B, gen_length]: the first decode's answer, before any retry replaced it
    flagged_first: list[bool]  # the first answer failed its check
    retries: list[int]  # retries decoded for the row (0 when its first answer passed)
    passed: list[bool]  # the returned answer passed its check (a first answer or an accepted retry)

    @property
    def replaced(self) -> list[bool]:
        """Rows whose returned answer is a retry, not the first decode."""
        return [flagged and ok for flagged, ok in zip(self.flagged_first, self.passed)]


@dataclass
class BestOfReport:
    """Per row of the batch: the candidates an AR ``best_of`` decode ranked, and its pick."""

    candidates: Tensor  # [B, best_of, max_new_tokens]; candidate 0 is the greedy answer
    log_likelihood: Tensor  # [B, best_of] float64: the model's log-likelihood of each candidate
    chosen: list[int]  # the candidate returned for each row (the likeliest; the first on ties)


@dataclass
class GenerateOutput:
    """Result of one decoding call.

    ``tokens`` holds the generated ids only ([B, gen_length]); ``sequences`` the whole canvas
    (prompt included). ``nfe`` counts model forward passes (a CFG pass over a doubled batch is one).
    ``commits_per_forward[i][b]`` is how many tokens forward i committed in row b.
    """

    tokens: Tensor
    sequences: Tensor
    nfe: int
    seconds: float
    prompt_length: int
    decoder: str
    commits_per_forward: list[list[int]] = field(default_factory=list)
    # forwards each row took part in (rows leave the engine's batch early); None: every row, nfe
    row_nfe: list[int] | None = None
    self_check: SelfCheckReport | None = None  # set by the self-checking decoder only
    best_of: BestOfReport | None = None  # set by AR decoding with best_of > 1 only

    @property
    def forwards_per_row(self) -> list[int]:
        return list(self.row_nfe) if self.row_nfe is not None else [self.nfe] * self.tokens.shape[0]

    @property
    def tokens_per_forward(self) -> float:
        """Tokens committed per forward pass a row took part in, over the whole batch."""
        forwards = sum(self.forwards_per_row)
        if forwards == 0:
            return 0.0
        return sum(sum(step) for step in self.commits_per_forward) / forwards

    @property
    def tokens_per_second(self) -> float:
        total = self.tokens.numel()
        return total / self.seconds if self.seconds > 0 else float("inf")


class Recorder:
    """Counts forwards, records commits, times the call and forwards steps to a callback."""

    def __init__(self, callback: StepCallback | None = None) -> None:
        self.callback = callback
        self.nfe = 0
        self.commits: list[list[int]] = []
        self.started = time.perf_counter()

    def forward_done(self) -> None:
        self.nfe += 1

    def committed(self, canvas: Tensor, commit_mask: Tensor) -> None:
        """Record what the latest forward committed (call once per forward, even for 0 commits)."""
        self.commits.append(commit_mask.sum(dim=-1).tolist())
        if self.callback is not None:
            self.callback(len(self.commits) - 1, canvas, commit_mask)

    def finish(self, canvas: Tensor, prompt_length: int, decoder: str) -> GenerateOutput:
        return GenerateOutput(
            tokens=canvas[:, prompt_length:].clone(),
            sequences=canvas.clone(),
            nfe=self.nfe,
            seconds=time.perf_counter() - self.started,
            prompt_length=prompt_length,
            decoder=decoder,
            commits_per_forward=self.commits,
        )


def full_width(mask: Tensor, offset: int, width: int) -> Tensor:
    """Place a [B, T] bool mask of a chunk starting at ``offset`` into a [B, width] one."""
    out = torch.zeros(mask.shape[0], width, dtype=torch.bool, device=mask.device)
    out[:, offset : offset + mask.shape[1]] = mask
    return out
