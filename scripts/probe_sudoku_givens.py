"""Sudoku accuracy by number of givens, for each unmasking order asked for.

    .venv/bin/python scripts/probe_sudoku_givens.py MODEL_DIR [--task sudoku-wide] [--n 600] [--orders margin low_confidence]

Draws ``--n`` test puzzles of ``--task`` (evaluation seed 0), decodes them with each order and
prints the accuracy overall and per band of three givens counts (23-25, 26-28, ...; sudoku-hard: 22-24, ...). Each order after
the first is also compared with the first puzzle by puzzle (exact McNemar test).
"""

from __future__ import annotations

import argparse
import collections
import sys

import torch

from unmask.checkpoint import load_model
from unmask.evaluate import evaluate, paired_comparison
from unmask.tasks import draw, get_task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory")
    parser.add_argument("--task", default="sudoku-wide", choices=["sudoku", "sudoku-wide", "sudoku-sparse", "sudoku-hard"])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed")
    parser.add_argument("--orders", nargs="+", default=["margin"], help="--remasking values to compare")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    task = get_task(args.task)
    low_end = task.first_group or 23  # the ungrouped local-rule task starts its bands at 23 too
    high_end = low_end + task.num_groups - 1 if task.num_groups else 36
    examples = draw(task, "test", args.n, seed=args.seed)
    print(f"{args.model} on {args.task}: {args.n} test puzzles, seed {args.seed}, torch.set_num_threads({args.threads})")
    first = None
    for order in args.orders:
        report = evaluate(model, args.task, examples, seed=args.seed, remasking=order)
        bands: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0])
        for example, solved in zip(examples, report.solved):
            band = bands[low_end + (example.givens - low_end) // 3 * 3]
            band[0] += solved
            band[1] += 1
        by_band = ", ".join(f"{low}-{min(low + 2, high_end)}: {ok}/{total}" for low, (ok, total) in sorted(bands.items()))
        print(f"{order}: {report.accuracy:.1%} ({by_band}), {report.seconds:.0f} s", flush=True)
        if first is None:
            first = (order, report)
        else:
            paired = paired_comparison(first[1], report)
            print(f"  vs {first[0]}: only {first[0]} {paired.only_first}, only {order} {paired.only_second}, "
                  f"p = {paired.p_value:.2g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
