"""Requests in, token ids out: batching, per-row state and early exit, seeded determinism.

``Engine(model).run(requests)`` decodes :class:`EngineRequest` rows; ``unmask.generate`` reaches
the same loop (:func:`decode_batch`) whenever a fast option (``threshold``, ``factor``, ``cache``,
``policy``, ``stop_at_eos``) is given.
"""

from unmask.engine.engine import Engine
from unmask.engine.loop import BatchOutcome, DecodeSpec, RowSpec, decode_batch
from unmask.engine.types import EngineRequest, RowResult, RowUpdate

__all__ = ["BatchOutcome", "DecodeSpec", "Engine", "EngineRequest", "RowResult", "RowSpec", "RowUpdate", "decode_batch"]
