"""Two models on the same held-out examples, compared example by example (exact McNemar test).

    .venv/bin/python scripts/compare_models.py MODEL_A MODEL_B --task sudoku-hard --n 600 [--seed 0] [--threads 2]

Each model decodes with its own ``generation_config.json``, as ``unmask eval`` does. Prints each
model's accuracy and the examples only one of them solves, with the two-sided exact McNemar p
value: the test that fits two models scored on one sample, where two separate confidence
intervals would hide how much the two agree. ``--output json`` prints one object instead.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import unmask
from unmask.evaluate import evaluate, paired_comparison
from unmask.tasks import TASKS, draw


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="model directory A")
    parser.add_argument("second", help="model directory B")
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--n", type=int, default=600, help="held-out examples (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed: which test examples are drawn")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    torch.set_num_threads(args.threads)
    examples = draw(args.task, "test", args.n, args.seed)
    reports = []
    for directory in (args.first, args.second):
        started = time.perf_counter()
        report = evaluate(unmask.load(directory), args.task, examples, model_name=directory)
        report.seconds = time.perf_counter() - started
        reports.append(report)
    pair = paired_comparison(reports[0], reports[1])
    if args.output == "json":
        print(json.dumps({"task": args.task, "n": args.n, "seed": args.seed, "threads": args.threads,
                          "models": [{"model": r.model, "accuracy": r.correct / r.n, "nfe": r.nfe,
                                      "seconds": round(r.seconds, 1)} for r in reports],
                          "only_first": pair.only_first, "only_second": pair.only_second,
                          "both": pair.both, "neither": pair.neither, "p": pair.p_value}))
        return
    print(f"{args.task}: {args.n} test examples, evaluation seed {args.seed}, torch.set_num_threads({args.threads})")
    for report in reports:
        print(f"{report.model}: {100 * report.correct / report.n:.1f}% ({report.correct}/{report.n}), "
              f"NFE {report.nfe:.1f}, {report.seconds:.0f} s")
    print(f"only A {pair.only_first}, only B {pair.only_second}, both {pair.both}, neither {pair.neither}, "
          f"p = {pair.p_value:.2g} (exact McNemar)")


if __name__ == "__main__":
    main()
