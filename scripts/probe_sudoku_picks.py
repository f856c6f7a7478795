"""Why top margin and top probability solve the same Sudoku puzzles: how sure the model was of each cell it filled.

    .venv/bin/python scripts/probe_sudoku_picks.py MODEL_DIR [--task sudoku-hard] [--n 200] [--remasking low_confidence]

Decodes ``--n`` test puzzles of ``--task`` (evaluation seed ``--seed``) with the model's own
decoder, one cell per forward, in the ``--remasking`` order (``low_confidence`` = top probability
or ``margin`` = top margin). For every forward it runs the model once more on the state the
decoder chose from, and compares the cell that was filled with the cell the *other* score would
have filled. For each filled cell it keeps p1 and p2, the probabilities of its two likeliest
tokens, and sorts it into one of three kinds:

- ``split``: p2 >= 0.2, the mass is shared between two tokens, the case top margin is for
  (Kim et al., ICML 2025): top probability may fill such a cell, top margin puts it last;
- ``sure``: p1 >= 0.9 and p2 < 0.2;
- ``unsure``: the rest (p1 < 0.9, spread over more than two tokens).

It prints the share of forwards where the two scores would fill different cells, the kinds of
all filled cells, and, for each failed puzzle, the kind and p1 of its first wrong digit and
whether the other score would have filled that same cell then. If the first wrong digits are
``sure`` picks, and the other score would have picked a cell just as sure, reordering by margin
cannot avoid them: both scores trust the same confidently wrong digit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import Tensor

import unmask
from unmask.evaluate import check_model_fits_task, decode_params
from unmask.sampling.scoring import best_token, proposal_confidence
from unmask.tasks import draw, get_task

SPLIT_P2 = 0.2  # p2 from here: the mass is shared between two tokens
SURE_P1 = 0.9
P1_BANDS = ("< 0.9", "0.9-0.99", "0.99-0.999", ">= 0.999")
OTHER = {"low_confidence": "margin", "margin": "low_confidence"}


@dataclass
class PickReport:
    """What the decode filled, forward by forward (one cell per row and forward)."""

    remasking: str
    n: int = 0
    solved: list[bool] = field(default_factory=list)
    picks: int = 0
    differs: int = 0  # forwards where the other score's best cell is not the filled one
    # forwards where the filled cell is not the best by the decode's own score, recomputed here:
    # 0 unless this probe's states drift from the decoder's (a check on the probe itself)
    not_best: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    # calibration on clean states: per band of p1, [cells filled, wrong] over the picks made before
    # (and including) each row's first wrong digit
    bands: dict[str, list[int]] = field(default_factory=lambda: {band: [0, 0] for band in P1_BANDS})
    # one per failed puzzle: (kind, p1, p2, the other score would have filled the same cell)
    first_errors: list[tuple[str, float, float, bool]] = field(default_factory=list)


def pick_kind(p1: float, p2: float) -> str:
    """``split``, ``sure`` or ``unsure`` (see the module's docs)."""
    if p2 >= SPLIT_P2:
        return "split"
    return "sure" if p1 >= SURE_P1 else "unsure"


def p1_band(p1: float) -> str:
    """The band of ``P1_BANDS`` that ``p1`` falls in."""
    return P1_BANDS[(p1 >= 0.9) + (p1 >= 0.99) + (p1 >= 0.999)]


def probe(model_dir: str, task_name: str, n: int, seed: int, remasking: str) -> PickReport:
    """Decode ``n`` test puzzles of ``task_name`` in the ``remasking`` order, one cell per forward."""
    if remasking not in OTHER:
        raise ValueError(f"--remasking must be one of {sorted(OTHER)}, got {remasking!r}")
    task = get_task(task_name)
    model = unmask.load(model_dir)
    if model.config.attention == "causal":
        raise ValueError(f"{model_dir} is an AR model: it fills the cells in reading order; this probe is for diffusion models")
    check_model_fits_task(model, task)
    examples = draw(task, "test", n, seed=seed)
    prompts = torch.tensor([task.prompt(e) for e in examples], dtype=torch.long)
    solutions = torch.tensor([task.answer(e) for e in examples], dtype=torch.long)
    start = task.prompt_length
    params = decode_params(model, task, {"remasking": remasking, "steps": task.answer_length,
                                         "block_length": task.answer_length})
    report = PickReport(remasking=remasking, n=n)
    mask = model.config.mask_token_id
    state = {"canvas": torch.cat([prompts, torch.full((n, task.answer_length), mask)], dim=1)}
    wrong_seen = torch.zeros(n, dtype=torch.bool)
    rows = torch.arange(n)

    def on_step(step: int, canvas: Tensor, committed: Tensor) -> None:
        before = state["canvas"]
        with torch.inference_mode():
            probs = model(before).float().softmax(-1)
        masked = before == mask
        proposal = best_token(probs, mask)
        # both scores exactly as the decoder computes them, on the state it chose from
        scores = {order: torch.where(masked, proposal_confidence(probs, proposal, order), torch.tensor(-1.0))
                  for order in OTHER}
        own, other = scores[remasking], scores[OTHER[remasking]].argmax(1)
        p1 = torch.gather(probs, -1, proposal[..., None])[..., 0]
        p2 = probs.index_fill(-1, torch.tensor([mask]), 0.0).topk(2, dim=-1).values[..., 1]
        active = committed.any(1)
        filled = committed.float().argmax(1)
        wrong = active & (canvas[rows, filled] != solutions[rows, filled - start])
        report.not_best += int((active & (own[rows, filled] < own.max(1).values - 1e-6)).sum())
        for row in active.nonzero().flatten().tolist():
            cell = filled[row].item()
            a, b = p1[row, cell].item(), p2[row, cell].item()
            kind = pick_kind(a, b)
            report.picks += 1
            report.kinds[kind] += 1
            report.differs += other[row].item() != cell
            if not wrong_seen[row]:
                band = report.bands[p1_band(a)]
                band[0] += 1
                band[1] += bool(wrong[row])
            if wrong[row] and not wrong_seen[row]:
                wrong_seen[row] = True
                report.first_errors.append((kind, a, b, other[row].item() == cell))
        state["canvas"] = canvas.clone()

    out = unmask.generate(model, prompts, seed=seed, on_step=on_step, **params)
    report.solved = [task.score(e, row) for e, row in zip(examples, out.tokens.tolist())]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory (a Sudoku diffusion model)")
    parser.add_argument("--task", default="sudoku-hard", choices=["sudoku", "sudoku-wide", "sudoku-sparse", "sudoku-hard"])
    parser.add_argument("--n", type=int, default=200, help="test puzzles")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (which test puzzles)")
    parser.add_argument("--remasking", default="low_confidence", choices=sorted(OTHER), help="the order to decode in")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    torch.set_num_threads(args.threads)
    try:
        report = probe(args.model, args.task, args.n, args.seed, args.remasking)
    except ValueError as error:
        parser.error(str(error))
    print(f"{args.model} on {args.task}, {args.n} test puzzles, seed {args.seed}, remasking={args.remasking}, "
          f"one cell per forward, torch.set_num_threads({args.threads}): {sum(report.solved)} solved")
    print(f"forwards where {OTHER[args.remasking]} would fill another cell: {report.differs} of {report.picks} "
          f"({report.differs / max(report.picks, 1):.1%})")
    print(f"forwards where the filled cell was not the best by the decode's own score, recomputed here: {report.not_best} "
          "(0: this probe saw the decoder's states)")
    print("filled cells by kind: " + ", ".join(f"{kind} {report.kinds[kind]}" for kind in ("sure", "unsure", "split")))
    print("calibration, cells filled before each puzzle's first wrong digit (and that digit), by p1: "
          + "; ".join(f"{band}: {wrong} wrong of {filled}" for band, (filled, wrong) in report.bands.items()))
    errors = report.first_errors
    print(f"first wrong digit of the {len(errors)} failed puzzles, by kind: "
          + ", ".join(f"{kind} {sum(e[0] == kind for e in errors)}" for kind in ("sure", "unsure", "split")))
    if errors:
        p1s = [e[1] for e in errors]
        print(f"  p1 of those digits: min {min(p1s):.3f}, median {statistics.median(p1s):.3f}; "
              f"max p2 {max(e[2] for e in errors):.3f}; "
              f"{OTHER[args.remasking]} would have filled the same cell in {sum(e[3] for e in errors)} of {len(errors)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
