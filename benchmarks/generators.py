"""How fast the task generators make training data: ``draw(task, "train", N, seed=0)`` per task.

    .venv/bin/python benchmarks/generators.py                 # writes docs/benchmarks/generators.{md,json}
    .venv/bin/python benchmarks/generators.py --n 2000        # a quick look

Every row is one call in this process, timed by wall clock and by CPU time (``time.process_time``,
which another job on the machine disturbs less). The thorough Sudoku tasks are timed twice, with
their whole-puzzle check compiled by numba and in pure Python, and the two must return the same
puzzles. The Python rows use ``--python-n`` puzzles and are scaled to 100k (they cost minutes).
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import unmask.tasks.sudoku as sudoku  # noqa: E402
from unmask.bench.report import write_section  # noqa: E402
from unmask.tasks import draw  # noqa: E402
from unmask.tasks.sudoku_compiled import AVAILABLE  # noqa: E402

TASKS = ("planning", "planning-anyjoin", "sudoku", "sudoku-wide", "sudoku-sparse")
THOROUGH = ("sudoku-wide", "sudoku-sparse")


def timed(task: str, n: int) -> tuple[list, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    examples = draw(task, "train", n, seed=0)
    return examples, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="training examples per task (default 100000)")
    parser.add_argument("--python-n", type=int, default=20_000, help="examples for the pure-Python Sudoku rows (default 20000)")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "benchmarks"))
    args = parser.parse_args()
    if not AVAILABLE:
        print("error: numba is not installed (pip install -e '.[fast]'); the compiled rows need it", file=sys.stderr)
        return 2
    sudoku.make_example(random.Random(0), 23, 36, thorough=True, target=23)  # compile before timing
    rows, lines = [], [
        f"### Task generators (`benchmarks/generators.py --n {args.n} --python-n {args.python_n}`)\n",
        f"Python {platform.python_version()}, one process, one core. `draw(TASK, \"train\", N, seed=0)`: the examples of "
        "the train split, so about 10% more are generated and dropped to the other splits. The last column is the "
        "CPU time scaled to 100k examples; the pure-Python rows ran on fewer (`--python-n`), as they take minutes.\n",
        "| task | whole-puzzle check | N | wall s | CPU s | CPU s per 100k |",
        "|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        sudoku._COMPILED = True
        examples, wall, cpu = timed(task, args.n)
        check = "compiled (numba)" if task in THOROUGH else "–"
        rows.append({"task": task, "check": check, "n": args.n, "wall_s": wall, "cpu_s": cpu})
        lines.append(f"| `{task}` | {check} | {args.n:,} | {wall:.1f} | {cpu:.1f} | {cpu * 100_000 / args.n:.1f} |")
        print(f"{task}: {wall:.1f} s", file=sys.stderr, flush=True)
        if task in THOROUGH:
            sudoku._COMPILED = False
            python, wall, cpu = timed(task, args.python_n)
            if python != examples[: args.python_n]:
                print(f"error: {task}: the pure-Python pass made different puzzles", file=sys.stderr)
                return 1
            rows.append({"task": task, "check": "python", "n": args.python_n, "wall_s": wall, "cpu_s": cpu})
            lines.append(f"| `{task}` | pure Python | {args.python_n:,} | {wall:.1f} | {cpu:.1f} | {cpu * 100_000 / args.python_n:.1f} |")
            print(f"{task} (python): {wall:.1f} s", file=sys.stderr, flush=True)
    sudoku._COMPILED = None
    lines += ["", "The compiled and pure-Python passes returned the same puzzles (checked on the first "
              f"{args.python_n:,} of each thorough task).", ""]
    write_section(args.out_dir, "generators", lines, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
