"""Decoding speed and accuracy of every policy x cache on the bundled models, against the
reference decoder and the equal-size AR model, measured side by side in one process.

    .venv/bin/python benchmarks/decode.py --tasks planning --out-name decode-planning  # writes docs/benchmarks/decode-planning.{md,json,png}
    .venv/bin/python benchmarks/decode.py --tasks sudoku --out-name decode-sudoku --render-only  # redraw from the JSON
    .venv/bin/python benchmarks/decode.py --threads 1 --batch-sizes 1

Prints the per-model tables of ``unmask bench`` plus a "targets" table: for each model and batch
size, the fastest row within 1 accuracy point of the reference decoder.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from unmask.bench.decode import BenchRow, run_bench  # noqa: E402
from unmask.bench.report import markdown_table, plot  # noqa: E402
from unmask.cli_bench import select_configs  # noqa: E402
from unmask.evaluate import task_of_model  # noqa: E402


def targets_table(rows: list[BenchRow]) -> str:
    """Per model and batch size: the fastest configuration losing at most 1 point vs the reference."""
    lines = ["| model | batch | fastest config within 1 pt of reference | accuracy (Δ pts) | tokens/forward | vs reference | vs AR (AR accuracy) |",
             "|---|---|---|---|---|---|---|"]
    for model, batch in dict.fromkeys((r.model, r.batch_size) for r in rows if r.policy != "ar"):
        group = [r for r in rows if r.model == model and r.batch_size == batch]
        ar = next((r for r in rows if r.policy == "ar" and r.batch_size == batch and r.task == group[0].task), None)
        within = [r for r in group if r.accuracy_delta is not None and r.accuracy_delta >= -0.01]
        best = max(within, key=lambda r: r.tokens_per_second)
        ar_text = "–" if ar is None or best.speedup_vs_ar is None else f"{best.speedup_vs_ar:.2f}× ({ar.accuracy:.1%})"
        lines.append(f"| {Path(model).name} | {batch} | {best.label} | {best.accuracy:.1%} ({(best.accuracy_delta or 0) * 100:+.1f}) | "
                     f"{best.tokens_per_forward:.2f} | {best.speedup_vs_reference:.2f}× | {ar_text} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=3, help="time each row this many times, keep the fastest (default 3)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models first (section title says so)")
    parser.add_argument("--out-name", default="decode", help="file stem under --out-dir (default decode)")
    parser.add_argument("--n", nargs="+", default=["planning=256", "sudoku=100"], metavar="TASK=N",
                        help="test examples per task (default: planning=256 sudoku=100)")
    parser.add_argument("--only", nargs="+", default=None, metavar="LABEL", help="only these configurations (the reference always)")
    parser.add_argument("--tasks", nargs="+", default=None, help="only the bundled models of these tasks (default: all)")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "benchmarks"))
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: redraw the markdown and plot from the rows already in OUT-NAME.json")
    args = parser.parse_args()
    out = Path(args.out_dir)
    if args.render_only:
        rows = [BenchRow(**row) for row in json.loads((out / f"{args.out_name}.json").read_text())["rows"]]
        return render(rows, args, out)
    models = REPO / "models"
    diffusion = [d for d in sorted(models.glob("*-diffusion")) if args.tasks is None or task_of_model(d) in args.tasks]
    ar_dirs = {task_of_model(d): d for d in sorted(models.glob("*-ar"))}
    counts = {task: int(count) for task, count in (item.split("=", 1) for item in args.n)}
    rows = run_bench(diffusion, ar_dirs, n=counts, configs=select_configs(args.only), batch_sizes=args.batch_sizes, seed=0, threads=args.threads, repeats=args.repeats, compile=args.compile,
                     task_of=task_of_model, progress=lambda line: print(line, file=sys.stderr, flush=True))
    for row in rows:  # repository-relative names in the committed files
        row.model = str(Path(row.model).resolve().relative_to(REPO))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.out_name}.json").write_text(json.dumps({"rows": [r.to_json() for r in rows]}, indent=1) + "\n")
    return render(rows, args, out)


def render(rows: list[BenchRow], args: argparse.Namespace, out: Path) -> int:
    """Write OUT-NAME.md (targets + all rows) and OUT-NAME.png from measured rows."""
    plot(rows, out / f"{args.out_name}.png")
    flags = f"--threads {args.threads} --batch-sizes {' '.join(map(str, args.batch_sizes))} --repeats {args.repeats}"
    flags += " --compile" if args.compile else ""
    flags += f" --out-name {args.out_name}" if args.out_name != "decode" else ""
    flags += (" --tasks " + " ".join(args.tasks)) if args.tasks else ""
    flags += (" --only " + " ".join(repr(label) for label in args.only)) if args.only else ""
    header = (f"### Decoding{' with torch.compile' if args.compile else ''} (`benchmarks/decode.py {flags}`)\n\n"
              f"torch {torch.__version__}, {platform.machine()}, {args.threads} threads. tokens/s counts committed answer tokens "
              f"(EOS included) over the wall time of decoding all examples; NFE/example counts the forwards each example took "
              f"part in. Each row's time is the fastest of {args.repeats} runs. Ratios are tokens/s ratios within the same run.\n\n")
    text = header + "#### Targets\n\n" + targets_table(rows) + "\n\n#### All rows\n\n" + markdown_table(rows) + f"\n![accuracy vs tokens/s](benchmarks/{args.out_name}.png)\n"
    (out / f"{args.out_name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
