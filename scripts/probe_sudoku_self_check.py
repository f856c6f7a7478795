"""Can a Sudoku diffusion model catch its own wrong grids, and does decoding again fix them?

    .venv/bin/python scripts/probe_sudoku_self_check.py MODEL_DIR [--task sudoku-wide] [--n 600] [--seed 0]
        [--retries 6] [--noise 0.1] [--threads 2]

A probe, not a decoder of the library yet. Three stages, on ``--n`` test puzzles of ``--seed``:

1. **Decode** every puzzle with the model's own decoder (``unmask.generate`` with the model's
   ``generation_config.json``: top margin, one cell per forward for the bundled recipes).
2. **Self-check** each decoded answer by leave-one-out: for every answer position, mask that
   position alone, leave the rest of the decoded grid in place, and ask the model for it. A grid
   is *flagged* when the model's choice differs from the decoded token at any position. No Sudoku
   rule is used: the only judge is the model. It costs one forward row per answer position
   (82 for Sudoku), run as batches of masked copies.
3. **Retry** flagged puzzles: decode again from scratch, one cell per forward, choosing the cell by
   top margin plus ``--noise`` times Gumbel noise (so another order is tried; tokens stay the
   most likely ones), and self-check the new grid. The first retry that passes replaces the
   answer; a puzzle still flagged after ``--retries`` keeps its first answer.

It prints, after each stage, the accuracy, how many grids are flagged (and how many flagged grids
are really wrong), and the compute spent per puzzle in forward rows (a forward of the canvas for
one puzzle is one row; a self-check is 82 rows).
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

import unmask
from unmask.evaluate import decode_params
from unmask.model import DiffusionTransformer
from unmask.sampling.scoring import margin_confidence
from unmask.tasks import draw, get_task

from sudoku_probe_common import load_diffusion_model, probe_parser, prompts_and_solutions

ROWS_PER_FORWARD = 512  # masked copies per forward in the self-check: bounds memory, not the result


@torch.inference_mode()
def _logits(model: DiffusionTransformer, canvas: Tensor) -> Tensor:
    return torch.cat([model(canvas[i:i + ROWS_PER_FORWARD]).float() for i in range(0, canvas.shape[0], ROWS_PER_FORWARD)])


@torch.inference_mode()
def leave_one_out_disagreements(model: DiffusionTransformer, canvas: Tensor, start: int, mask_id: int) -> Tensor:
    """[B, answer length] bool: the answer position (``canvas[:, start:]``) is not what the model
    picks for it when that position alone is masked. A grid is flagged if any is True."""
    batch, length = canvas.shape[0], canvas.shape[1] - start
    copies = canvas.repeat_interleave(length, 0)
    row = torch.arange(batch * length)
    position = start + row % length
    copies[row, position] = mask_id
    logits = _logits(model, copies)[row, position]
    logits[:, mask_id] = float("-inf")
    return logits.argmax(-1).view(batch, length) != canvas[:, start:]


@torch.inference_mode()
def decode_noisy_margin(model: DiffusionTransformer, canvas: Tensor, start: int, mask_id: int, noise: float,
                        generator: torch.Generator) -> tuple[Tensor, int]:
    """One cell per forward: the masked cell of largest margin + ``noise`` x Gumbel, filled with its
    most likely token. Returns the filled canvas and the forward rows it took."""
    canvas = canvas.clone()
    rows = 0
    while True:
        masked = canvas[:, start:] == mask_id
        active = masked.any(1).nonzero().flatten()
        if len(active) == 0:
            return canvas, rows
        rows += len(active)
        logits = _logits(model, canvas[active])[:, start:]
        logits[..., mask_id] = float("-inf")
        probs = logits.softmax(-1)
        score = margin_confidence(probs)
        uniform = torch.rand(score.shape, generator=generator).clamp_min(1e-20)
        score = (score - noise * torch.log(-torch.log(uniform))).masked_fill(~masked[active], float("-inf"))
        cell = score.argmax(1)
        canvas[active, start + cell] = probs[torch.arange(len(active)), cell].argmax(-1)


def main() -> int:
    parser = probe_parser(__doc__, "test puzzles", 600)
    parser.add_argument("--retries", type=int, default=6, help="decodings again of a flagged puzzle, at most")
    parser.add_argument("--noise", type=float, default=0.1, help="Gumbel noise scale on the margin in a retry")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    model = load_diffusion_model(parser, args.model, task, "the self-check masks one position inside the answer; an AR model cannot read that")
    mask_id = model.config.mask_token_id
    examples = draw(task, "test", args.n, seed=args.seed)
    prompts, solutions = prompts_and_solutions(task, examples)
    start, n, length = task.prompt_length, len(examples), solutions.shape[1]
    began = time.perf_counter()

    def report(stage: str, canvas: Tensor, flagged: Tensor, rows: float) -> None:
        right = (canvas[:, start:] == solutions).all(1)
        print(f"{stage}: {right.sum().item()}/{n} = {100 * right.float().mean().item():.1f}%; flagged {flagged.sum().item()} "
              f"(wrong {(flagged & ~right).sum().item()}); unflagged but wrong {(~flagged & ~right).sum().item()}; "
              f"{rows / n:.1f} forward rows per puzzle; {time.perf_counter() - began:.0f} s", flush=True)

    out = unmask.generate(model, prompts, seed=args.seed, **decode_params(model, task, {}))
    canvas = out.sequences.clone()
    rows = float(out.nfe * n)  # every row in every forward of the batch: true without stop_at_eos, an overcount with it
    print(f"{args.model} on {args.task}, seed {args.seed}, {n} test puzzles, torch.set_num_threads({args.threads})")
    report("decode", canvas, torch.zeros(n, dtype=torch.bool), rows)
    flagged = leave_one_out_disagreements(model, canvas, start, mask_id).any(1).clone()
    rows += n * length
    report("self-check", canvas, flagged, rows)
    generator = torch.Generator().manual_seed(args.seed)
    blank = torch.cat([prompts, torch.full((n, length), mask_id, dtype=torch.long)], 1)
    todo = flagged.nonzero().flatten()
    for attempt in range(1, args.retries + 1):
        if len(todo) == 0:
            break
        retried, retry_rows = decode_noisy_margin(model, blank[todo], start, mask_id, args.noise, generator)
        still = leave_one_out_disagreements(model, retried, start, mask_id).any(1)
        rows += retry_rows + len(todo) * length
        canvas[todo[~still]] = retried[~still]
        flagged[todo[~still]] = False
        todo = todo[still]
        report(f"retry {attempt} (noise {args.noise})", canvas, flagged, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
