"""When a Sudoku diffusion model first goes wrong: the share of the blanks it had filled by then.

    .venv/bin/python scripts/probe_sudoku_first_error.py MODEL_DIR [--task sudoku-wide] [--n 300] [--max-givens 27]

Decodes ``--n`` test puzzles of ``--task`` (evaluation seed ``--seed``) that have at most
``--max-givens`` givens with the model's own decoder (top margin, one cell per forward unless
``--remasking`` says otherwise), watches every commit, and for each failed puzzle finds the first
wrong digit. It prints how many of the puzzle's blanks were already filled at that point, in
tenths: errors piled up in the first tenths mean the model is weakest where almost every blank is
still masked, the states a training run with a small ``objective.t_max`` never sees. For the same
first errors it also prints what singles alone would have offered in that state: whether the cell
the model filled was forced (a naked or hidden single), and how many naked and hidden singles were
there to take instead.
"""

from __future__ import annotations

import collections
import sys

import torch

import unmask
from unmask.evaluate import decode_params
from unmask.tasks import draw, get_task
from unmask.tasks.sudoku import CELLS, find_singles

from sudoku_probe_common import load_diffusion_model, probe_parser, prompts_and_solutions


def main() -> int:
    parser = probe_parser(__doc__, "test puzzles drawn before the givens filter", 300)
    parser.add_argument("--max-givens", type=int, default=27, help="keep puzzles with at most this many givens")
    parser.add_argument("--remasking", default="margin")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    model = load_diffusion_model(parser, args.model, task, "an AR model fills the cells in reading order; this probe is for diffusion models")
    examples = [e for e in draw(task, "test", args.n, seed=args.seed) if e.givens <= args.max_givens]
    if not examples:
        parser.error(f"none of the {args.n} puzzles has at most {args.max_givens} givens")
    prompts, solutions = prompts_and_solutions(task, examples)
    blank = torch.tensor([[cell == 0 for cell in e.puzzle] + [False] for e in examples])
    start = task.prompt_length
    blanks_filled = torch.zeros(len(examples), dtype=torch.long)
    first_error: list[float | None] = [None] * len(examples)
    kinds: collections.Counter[str] = collections.Counter()
    offered: list[tuple[int, int]] = []  # (naked, hidden) singles in each first-error state

    def on_step(step: int, tokens: torch.Tensor, committed: torch.Tensor) -> None:
        new = committed[:, start:]
        wrong = new & (tokens[:, start:] != solutions)
        for row in wrong.any(1).nonzero().flatten().tolist():
            if first_error[row] is not None:
                continue
            first_error[row] = blanks_filled[row].item() / blank[row].sum().item()
            # the state the model chose from: the puzzle plus the blanks committed before this step
            answer = tokens[row, start:start + CELLS].tolist()
            before = [examples[row].puzzle[i] or (answer[i] if not new[row, i] and 1 <= answer[i] <= 9 else 0)
                      for i in range(CELLS)]
            naked, hidden = find_singles(before)
            for cell in (wrong[row, :CELLS]).nonzero().flatten().tolist():
                kinds["a naked single" if cell in naked else "a hidden single" if cell in hidden else "not forced"] += 1
            offered.append((len(naked), len(hidden)))
        blanks_filled.add_((new & blank).sum(1))

    params = decode_params(model, task, {"remasking": args.remasking})
    unmask.generate(model, prompts, seed=args.seed, on_step=on_step, **params)
    failures = [f for f in first_error if f is not None]
    print(f"{args.model} on {args.task}, seed {args.seed}, remasking={args.remasking}, torch.set_num_threads({args.threads}): "
          f"{len(examples)} test puzzles with <= {args.max_givens} givens, {len(examples) - len(failures)} solved")
    tenths = collections.Counter(min(int(f * 10), 9) for f in failures)
    print("first wrong digit, by the share of the blanks already filled:")
    for tenth in range(10):
        print(f"  {tenth * 10:3d}-{tenth * 10 + 10:3d}%: {tenths[tenth]}")
    print("the cell of the first wrong digit was, by singles in the state it was chosen from: "
          + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))
    if offered:
        hidden_without_naked = [hidden for naked, hidden in offered if naked == 0]
        print(f"states with no naked single: {len(hidden_without_naked)} of {len(offered)}", end="")
        if hidden_without_naked:
            print(f"; hidden singles on offer there: {min(hidden_without_naked)}-{max(hidden_without_naked)} "
                  f"(mean {sum(hidden_without_naked) / len(hidden_without_naked):.1f})", end="")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
