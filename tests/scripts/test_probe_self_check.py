"""The self-check probe: its batched leave-one-out equals masking one position at a time, and its
retry decoder without noise is the library's top-margin decoder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

import unmask
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

from ..sampling.test_ar import FixedLogits

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "probe_sudoku_self_check.py"
VOCAB, MASK = 12, 11


def _probe():
    sys.path.insert(0, str(SCRIPT.parent))  # as when run as a script: its helper module sits beside it
    spec = importlib.util.spec_from_file_location("probe_sudoku_self_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model() -> DiffusionTransformer:
    # learned positions: with RoPE alone a random one-layer model predicts the same token at every
    # masked position, and a check that reads the wrong position would still agree
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2,
                         intermediate_size=32, mask_token_id=MASK, learned_positions=True)
    return DiffusionTransformer(config).eval()


@torch.inference_mode()
def _naive_disagreements(model: DiffusionTransformer, canvas: torch.Tensor, start: int) -> torch.Tensor:
    flags = torch.zeros(canvas.shape[0], canvas.shape[1] - start, dtype=torch.bool)
    for row in range(canvas.shape[0]):
        for position in range(start, canvas.shape[1]):
            copy = canvas[row:row + 1].clone()
            copy[0, position] = MASK
            logits = model(copy)[0, position]
            logits[MASK] = float("-inf")
            flags[row, position - start] = bool(logits.argmax() != canvas[row, position])
    return flags


def test_leave_one_out_matches_one_position_at_a_time() -> None:
    probe, model = _probe(), _model()
    start = 3
    canvas = torch.randint(0, MASK, (3, 9))
    canvas[:, start:] = MASK
    decoded, rows = probe.decode_noisy_margin(model, canvas, start, MASK, 0.0, torch.Generator().manual_seed(0))
    assert rows == 3 * (9 - start) and not bool((decoded == MASK).any())
    # the model's own answers, and the same answers with one position changed each
    corrupted = decoded.clone()
    for row, position in enumerate((start, start + 2, start + 5)):
        corrupted[row, position] = (corrupted[row, position] + 1) % MASK
    canvas = torch.cat([decoded, corrupted])
    expected = _naive_disagreements(model, canvas, start)
    probe.ROWS_PER_FORWARD = 5  # several chunks, one cut inside a row's copies
    assert torch.equal(probe.leave_one_out_disagreements(model, canvas, start, MASK), expected)
    # not uniform within a row: a check that reads the wrong position cannot pass
    assert bool((expected.any(1) & ~expected.all(1)).any())


class OrderRevealingModel(FixedLogits):
    """Fixed distributions per position whose top token moves on by one with every position filled,
    so the decoded tokens spell out the order the positions were filled in. Position 1 is the
    most probable, position 2 the most decisive (largest margin): top probability and top margin
    disagree. Vocabulary of 7, the last (6) the mask."""

    def __init__(self, start: int) -> None:
        super().__init__(torch.zeros(1, 1, 7))
        self.start = start
        probs = torch.tensor([[0.30, 0.25, 0.15, 0.10, 0.10, 0.10],
                              [0.60, 0.39, 0.01, 0.00, 0.00, 0.00],   # top-1 0.60, margin 0.21
                              [0.55, 0.15, 0.10, 0.10, 0.10, 0.00],   # top-1 0.55, margin 0.40
                              [0.40, 0.35, 0.25, 0.00, 0.00, 0.00]])
        self.log_probs = torch.log(probs.clamp(min=1e-9))

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        filled = (ids[:, self.start:] != 6).sum(1)
        logits = torch.full((*ids.shape, 7), -1e4)
        for row, shift in enumerate(filled.tolist()):
            logits[row, self.start:, :6] = torch.roll(self.log_probs, shifts=shift, dims=-1)
        return logits


def test_noise_free_retry_decoder_is_the_library_top_margin_decoder() -> None:
    probe, model = _probe(), OrderRevealingModel(start=2)
    prompt = torch.tensor([[0, 1], [3, 4]])
    canvas = torch.cat([prompt, torch.full((2, 4), 6)], 1)
    ours, rows = probe.decode_noisy_margin(model, canvas, 2, 6, 0.0, torch.Generator().manual_seed(0))
    assert rows == 2 * 4

    def library(remasking: str) -> torch.Tensor:
        return unmask.generate(model, prompt, gen_length=4, steps=4, block_length=4, remasking=remasking).sequences

    assert torch.equal(ours, library("margin"))
    assert not torch.equal(ours, library("low_confidence"))  # the order shows in the tokens
    noisy, _ = probe.decode_noisy_margin(model, canvas, 2, 6, 10.0, torch.Generator().manual_seed(0))
    assert not torch.equal(noisy, ours)  # the retry noise does change the order
