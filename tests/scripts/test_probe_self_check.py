"""The self-check probe's batched leave-one-out equals masking one position at a time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "probe_sudoku_self_check.py"
VOCAB, MASK = 12, 11


def _probe():
    sys.path.insert(0, str(SCRIPT.parent))  # as when run as a script: its helper module sits beside it
    spec = importlib.util.spec_from_file_location("probe_sudoku_self_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model() -> DiffusionTransformer:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2,
                         intermediate_size=32, mask_token_id=MASK)
    return DiffusionTransformer(config).eval()


@torch.inference_mode()
def _naive_flags(model: DiffusionTransformer, canvas: torch.Tensor, start: int) -> torch.Tensor:
    flags = torch.zeros(canvas.shape[0], dtype=torch.bool)
    for row in range(canvas.shape[0]):
        for position in range(start, canvas.shape[1]):
            copy = canvas[row:row + 1].clone()
            copy[0, position] = MASK
            logits = model(copy)[0, position]
            logits[MASK] = float("-inf")
            flags[row] |= bool(logits.argmax() != canvas[row, position])
    return flags


def test_leave_one_out_matches_one_position_at_a_time() -> None:
    probe, model = _probe(), _model()
    start = 3
    # answers that agree with the model everywhere (decoded by it) and random ones
    canvas = torch.randint(0, MASK, (6, 9))
    canvas[:3, start:] = MASK
    generator = torch.Generator().manual_seed(0)
    canvas[:3], rows = probe.decode_noisy_margin(model, canvas[:3], start, MASK, 0.0, generator)
    assert rows == 3 * (9 - start) and not bool((canvas == MASK).any())
    expected = _naive_flags(model, canvas, start)
    probe.ROWS_PER_FORWARD = 5  # several chunks, one cut inside a row's copies
    assert torch.equal(probe.flag_by_leave_one_out(model, canvas, start, MASK), expected)
    assert bool(expected[3:].any())  # random answers do get flagged: the check is not vacuous
