"""What goes into the engine and what comes out: requests, per-step row updates, row results.

The engine speaks token ids only (text, chat templates and stop *strings* belong to the server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass
class EngineRequest:
    """One row to decode.

    ``params`` are the keywords :func:`unmask.generate` takes for the model's family (``gen_length``,
    ``steps``, ``block_length``, ``threshold``, ``factor``, ``cache``, ``policy``, ...); omitted ones
    come from the checkpoint's ``generation_config.json``. ``seed`` seeds this row's private
    generator, so a row decodes to the same tokens alone or in any batch. A row stops early when
    it commits EOS with everything before it committed (``stop_at_eos``) or when its committed
    left prefix ends with one of ``stop_sequences`` (token ids).
    """

    prompt_ids: list[int]
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    stop_sequences: list[list[int]] = field(default_factory=list)
    stop_at_eos: bool = True


@dataclass
class RowUpdate:
    """A row's state after a forward pass it took part in (for streaming).

    ``canvas`` is the generated region (``mask_id`` where still masked); ``committed_prefix`` is the
    length of its left part that is fully committed and will never change (cut at EOS or a stop
    sequence once the row has finished).
    """

    canvas: list[int]
    committed_prefix: int
    newly_committed: list[int]  # positions (in the generated region) committed by this forward
    nfe: int
    finished: bool
    mask_id: int


@dataclass
class RowResult:
    """A finished row. ``tokens`` are the generated ids before EOS / the stop sequence (which are
    not included); ``nfe`` counts the forward passes this row took part in."""

    tokens: list[int]
    finish_reason: FinishReason
    nfe: int
    committed: int  # tokens committed by the decoder (canvas positions filled, EOS included)
    seconds: float
    stop_sequence: list[int] | None = None

    @property
    def tokens_per_forward(self) -> float:
        return self.committed / self.nfe if self.nfe else 0.0


UpdateCallback = Callable[[int, RowUpdate], None]  # (row index in the run() call, update)
CancelCheck = Callable[[int], bool]  # row index -> True to drop it at once
