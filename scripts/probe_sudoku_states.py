"""How often a Sudoku training state offers no naked single: random masks against a singles solve.

    .venv/bin/python scripts/probe_sudoku_states.py [--n 400] [--max-givens 27] [--masks 10]

Takes the test puzzles of ``sudoku-wide`` (seed 0) with at most ``--max-givens`` givens, at most
60 of them. For each it counts the states with no naked single (only hidden singles to go on)
among (a) ``--masks`` random masks of its blanks at t ~ U(0, 1), the states random-mask training
shows a model, and (b) every state of a singles solve that fills one random single at a time,
the states a singles-ordered decode passes through.
"""

from __future__ import annotations

import argparse
import random
import sys

from unmask.tasks import draw
from unmask.tasks.sudoku import CELLS, find_singles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="test puzzles drawn before the givens filter")
    parser.add_argument("--max-givens", type=int, default=27)
    parser.add_argument("--masks", type=int, default=10, help="random masks per puzzle")
    args = parser.parse_args()
    examples = [e for e in draw("sudoku-wide", "test", args.n, seed=0) if e.givens <= args.max_givens][:60]
    rng = random.Random(0)
    random_states = random_without = 0
    for example in examples:
        for _ in range(args.masks):
            t = rng.random()
            grid = [example.puzzle[i] or (0 if rng.random() < t else example.solution[i]) for i in range(CELLS)]
            if 0 in grid:
                random_states += 1
                random_without += not find_singles(grid)[0]
    solve_states = solve_without = 0
    for example in examples:
        grid = list(example.puzzle)
        while 0 in grid:
            naked, hidden = find_singles(grid)
            solve_states += 1
            solve_without += not naked
            cell = rng.choice(sorted(naked | hidden))
            grid[cell] = example.solution[cell]
    print(f"{len(examples)} test puzzles with <= {args.max_givens} givens (sudoku-wide, seed 0)")
    print(f"random masks, t ~ U(0, 1): {random_without} of {random_states} states have no naked single "
          f"({random_without / random_states:.1%})")
    print(f"singles solve, one random single at a time: {solve_without} of {solve_states} states have no naked single "
          f"({solve_without / solve_states:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
