"""Task accuracy of the bundled models (the anchor rows of diffusion vs autoregression), the
unmasking-order ranking on the Sudoku diffusion model, the self-check decoder on the full-range
Sudoku diffusion model, and its AR pair given the same compute by sampling and ranking.

    .venv/bin/python benchmarks/accuracy.py                  # writes docs/benchmarks/accuracy.{md,json}
    .venv/bin/python benchmarks/accuracy.py --n 100 --seeds 0 --order-n 20 --sparse-n 10  # a quick look

Every row is ``unmask eval --model models/NAME --task TASK --n N --seed S``: fresh test-split
examples drawn from evaluation seed S, decoded with the model's own ``generation_config.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from unmask.bench.report import write_section  # noqa: E402
from unmask.checkpoint import load_model  # noqa: E402
from unmask.evaluate import EvalReport, evaluate, paired_comparison, task_of_model, wilson_interval  # noqa: E402
from unmask.tasks import draw, get_task  # noqa: E402

ORDERS = ["random", "low_confidence", "margin", "entropy"]  # remasking scores, worst expected first
# beyond its own task, each bundled model is evaluated on these, to show where it stops generalising
EXTRA_TASKS: dict[str, dict[str, str]] = {
    "planning": {
        "planning-anyjoin": "The harder variant: the in-branch may join any path node after the start, so at PD 3 "
        "with the join at the goal the middle pair takes a two-hop lookup (`unmask.tasks.planning`). The planning "
        "models above, trained on `planning`, evaluated as they are "
        "(`unmask eval --model models/NAME --task planning-anyjoin --n N --seed S`).",
    },
    "sudoku": {
        "sudoku-wide": "The issue's full range of 23–36 givens, about uniform (`unmask.tasks.sudoku`: the local removal "
        "rule, then a whole-puzzle singles check where it stalls). The Sudoku models above, trained on `sudoku` "
        "(29–36 givens), evaluated as they are (`unmask eval --model models/NAME --task sudoku-wide --n N --seed S`).",
    },
    "sudoku-wide": {
        "sudoku": "The easier puzzles of the local removal rule alone (29–36 givens, mean 33.6). The Sudoku models "
        "above, trained on `sudoku-wide`, evaluated as they are (`unmask eval --model models/NAME --task sudoku --n N --seed S`).",
    },
}
ORDER_STEPS = (82, 21, 11)  # decoding steps for the 81 cells + EOS: 1, ~4 and ~8 tokens per forward
SPARSE_STEPS = (82,)
ORDER_NAMES = {"random": "random", "low_confidence": "top probability", "margin": "top margin", "entropy": "negative entropy"}


def pct(value: float) -> str:
    return f"{value:.1%}"


def report_row(name: str, seed: int, report: EvalReport, groups: list[str]) -> str:
    lo, hi = report.ci95
    by = report.group_accuracy()
    cells = [f"{by[g]:.0%}" if g in by else "–" for g in groups]
    return (f"| `{name}` | {seed} | {pct(report.accuracy)} ({pct(lo)}–{pct(hi)}) | " + " | ".join(cells) + (" | " if cells else "")
            + f"{report.nfe:.1f} | {report.tokens_per_forward:.2f} | {report.seconds:.1f} |")


def order_table(model: Any, task: str, n: int, steps_list: tuple[int, ...], results: list[dict], intro: str,
                ar_model: Any = None, model_name: str = "sudoku-diffusion") -> list[str]:
    """Markdown rows: accuracy of each unmasking order at each step count, on one sample of ``task``,
    then top margin against top probability puzzle by puzzle (exact McNemar test)."""
    examples = draw(task, "test", n, seed=0)  # drawn once, decoded by every order
    givens = sum(e.givens for e in examples) / len(examples)
    lines = [f"#### Unmasking order on `{model_name}`, task `{task}` ({n} test puzzles, seed 0, mean {givens:.1f} givens)\n",
             intro + "\n",
             "| order (`--remasking`) | " + " | ".join(f"{steps} steps: accuracy (95% CI)" for steps in steps_list) + " |",
             "|---|" + "---|" * len(steps_list)]
    reports: dict[tuple[str, int], EvalReport] = {}
    for order in ORDERS:
        cells = []
        for steps in steps_list:
            report = evaluate(model, task, examples, seed=0, model_name=model_name, remasking=order, steps=steps)
            reports[order, steps] = report
            print(f"{task}: order {order}, {steps} steps: {report.accuracy:.3f}", file=sys.stderr, flush=True)
            lo, hi = report.ci95
            cells.append(f"{pct(report.accuracy)} ({pct(lo)}–{pct(hi)})")
            results.append({**report.to_json(), "seed": 0, "remasking": order, "steps": steps})
        lines.append(f"| {ORDER_NAMES[order]} (`{order}`) | " + " | ".join(cells) + " |")
    lines += ["", "Top margin against top probability on the same puzzles (exact two-sided McNemar test on the "
              "puzzles only one of them solves):", ""]
    for steps in steps_list:
        paired = paired_comparison(reports["margin", steps], reports["low_confidence", steps])
        lines.append(f"- {steps} steps: {paired.only_first} solved only by top margin, {paired.only_second} only by "
                     f"top probability, p = {paired.p_value:.2g}")
        results.append({"task": task, "steps": steps, "paired": "margin vs low_confidence", "only_margin": paired.only_first,
                        "only_low_confidence": paired.only_second, "both": paired.both, "neither": paired.neither,
                        "p_value": paired.p_value})
    if ar_model is not None:
        report = evaluate(ar_model, task, examples, seed=0, model_name="sudoku-ar")
        lo, hi = report.ci95
        lines += ["", f"The AR model `sudoku-ar` on the same puzzles: {pct(report.accuracy)} ({pct(lo)}–{pct(hi)})."]
        results.append({**report.to_json(), "seed": 0})
    return lines + [""]


def self_check_table(directory: Path, n: int, retries: int, results: list[dict]) -> list[str]:
    """Markdown: a diffusion model decoded plainly and with the leave-one-out self-check, on the
    same puzzles (the self-check's first answers are the plain decode)."""
    name, task = directory.name, task_of_model(directory)
    model = load_model(directory)
    report = evaluate(model, task, n=n, seed=0, model_name=name, self_check_retries=retries)
    steps = {**model.generation_config, **report.params}["steps"]  # forwards of the plain decode (reference loop)
    check = report.self_check
    assert check is not None
    first = check.first_correct / n
    lo, hi = report.ci95
    first_lo, first_hi = wilson_interval(check.first_correct, n)
    print(f"{name} with the self-check: {report.accuracy:.3f} (first answers {first:.3f})", file=sys.stderr, flush=True)
    results.append({**report.to_json(), "seed": 0, "self_check_retries": retries})
    wrong = n - check.first_correct
    return [f"#### The self-check on `{name}`, task `{task}` ({n} test puzzles, seed 0)\n",
            f"`unmask eval --model models/{name} --task {task} --n {n} --seed 0 --self-check-retries {retries}`: "
            "decode as usual, mask each generated cell alone and ask the model for it again, and decode the rows "
            "where any answer changes again with a little order noise (`docs/decoding.md`).\n",
            "| decoding | accuracy (95% CI) | forward rows per puzzle | seconds |",
            "|---|---|---|---|",
            f"| plain (the first answers) | {pct(first)} ({pct(first_lo)}–{pct(first_hi)}) | {steps} "
            "(the decode's steps) | – |",
            f"| with the self-check, up to {retries} retries | {pct(report.accuracy)} ({pct(lo)}–{pct(hi)}) | "
            f"{report.nfe:.1f} | {report.seconds:.1f} |",
            "",
            f"Flagged: {check.flagged} first answers, {check.flagged_wrong} of them wrong; the check passed "
            f"{check.unflagged_wrong} of the {wrong} wrong first answers. {check.retries} retries replaced "
            f"{check.replaced} answers, {check.replaced_right} of them with the right grid; {check.still_flagged} "
            "rows still fail the check.",
            ""]


def ar_best_of_table(ar_dir: Path, diffusion_dir: Path, n: int, best_of: int, results: list[dict]) -> list[str]:
    """Markdown: the AR model given about the diffusion decode's compute by sampling and ranking
    (``best_of``), against the diffusion model, on the same puzzles."""
    task = get_task(task_of_model(diffusion_dir))
    examples = draw(task, "test", n, seed=0)
    diffusion_model = load_model(diffusion_dir)
    diffusion = evaluate(diffusion_model, task, examples, seed=0, model_name=diffusion_dir.name)
    # batches of 16 puzzles x best_of candidates bound the KV cache; the result does not depend on them
    ranked = evaluate(load_model(ar_dir), task, examples, seed=0, batch_size=16, model_name=ar_dir.name,
                      best_of=best_of, temperature=1.0)
    summary = ranked.best_of
    assert summary is not None
    print(f"{ar_dir.name} best of {best_of}: {ranked.accuracy:.3f} against {diffusion.accuracy:.3f}", file=sys.stderr, flush=True)
    results += [{**diffusion.to_json(), "seed": 0}, {**ranked.to_json(), "seed": 0, "best_of": best_of, "temperature": 1.0}]
    positions = task.prompt_length + task.answer_length  # one decode's sequence
    steps = {**diffusion_model.generation_config, **diffusion.params}["steps"]
    greedy = sum(summary.greedy_solved)
    paired = paired_comparison(diffusion, ranked)

    def row(label: str, correct: int, cost: int, seconds: str) -> str:
        lo, hi = wilson_interval(correct, n)
        return f"| {label} | {pct(correct / n)} ({pct(lo)}–{pct(hi)}) | {cost} | {seconds} |"

    return [f"#### AR with the diffusion decode's compute: `{ar_dir.name}` against `{diffusion_dir.name}` ({n} test "
            f"puzzles of `{task.name}`, seed 0)\n",
            f"The diffusion model runs {steps} forwards over the {positions} positions of prompt and answer; the AR model runs "
            f"them once per answer (KV cache), so {steps} AR answers cost as many token positions as one diffusion decode. "
            f"`unmask eval --model models/{ar_dir.name} --task {task.name} --n {n} --seed 0 --best-of {best_of} --temperature 1`: "
            f"the greedy answer and {best_of - 1} samples at temperature 1, the one the AR model finds likeliest kept "
            "(`docs/decoding.md`). Token positions count the projections and MLP, not attention's length-squared term.\n",
            "| decoding | accuracy (95% CI) | token positions per puzzle | seconds |",
            "|---|---|---|---|",
            row(f"`{ar_dir.name}`, greedy (candidate 0)", greedy, positions, "–"),
            row(f"`{ar_dir.name}`, likeliest of {best_of}", ranked.correct, positions * best_of, f"{ranked.seconds:.1f}"),
            row(f"`{ar_dir.name}`, any of the {best_of} right (an oracle's bound)", summary.any_right, positions * best_of, "–"),
            row(f"`{diffusion_dir.name}`, `generation_config.json`", diffusion.correct, positions * steps, f"{diffusion.seconds:.1f}"),
            "",
            f"On the same puzzles: {paired.only_first} solved only by the diffusion model, {paired.only_second} only by the AR "
            f"model's likeliest answer (exact McNemar p = {paired.p_value:.2g}). The greedy answer was the likeliest "
            f"candidate for {summary.picked_greedy} of {n} puzzles.",
            ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=600, help="test examples per evaluation (default 600)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="evaluation seeds (default 0 1 2)")
    parser.add_argument("--order-n", type=int, default=300, help="Sudoku puzzles per unmasking order and step count (default 300, seed 0; 0 = skip)")
    parser.add_argument("--sparse-n", type=int, default=600, help="sudoku-sparse puzzles for the same order table, one cell per forward (default 600, seed 0; 0 = skip)")
    parser.add_argument("--extra-seeds", type=int, nargs="+", default=[0],
                        help="evaluation seeds on the tasks the models were not trained on (default 0)")
    parser.add_argument("--self-check-n", type=int, default=600,
                        help="sudoku-wide puzzles for the self-check table on sudoku-wide-diffusion (default 600, seed 0; 0 = skip)")
    parser.add_argument("--self-check-retries", type=int, default=6, help="retries of the self-check table (default 6)")
    parser.add_argument("--best-of-n", type=int, default=300,
                        help="sudoku-wide puzzles for sudoku-wide-ar's best-of table (default 300, seed 0; 0 = skip)")
    parser.add_argument("--best-of", type=int, default=82, help="candidates per puzzle of that table (default 82: the "
                        "token positions of the diffusion decode)")
    parser.add_argument("--models", nargs="+", default=None, help="model directories (default: every bundled model)")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "benchmarks"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dirs = [Path(m) for m in args.models] if args.models else sorted((REPO / "models").glob("*-*"))
    dirs = [d for d in dirs if (d / "config.json").is_file()]
    results: list[dict] = []
    lines = [f"### Task accuracy (`benchmarks/accuracy.py --n {args.n} --seeds {' '.join(map(str, args.seeds))} "
             f"--extra-seeds {' '.join(map(str, args.extra_seeds))} --order-n {args.order_n} --sparse-n {args.sparse_n} "
             f"--self-check-n {args.self_check_n} --self-check-retries {args.self_check_retries} --best-of-n {args.best_of_n} "
             f"--best-of {args.best_of}`)\n",
             f"torch {torch.__version__}, {platform.machine()}, torch.set_num_threads({args.threads}). Each row: "
             f"`unmask eval --model models/NAME --task TASK --n {args.n} --seed S` on fresh test-split examples "
             "(never trained on), decoded with the model's `generation_config.json`. Interval: 95% Wilson.\n"]
    trained: dict[str, list[Path]] = {}  # each model's own task, in the order the models sort
    for directory in sorted(dirs, key=lambda d: (d.name.endswith("-ar"), d.name)):
        trained.setdefault(task_of_model(directory), []).append(directory)
    sections = [(task, own) for own in trained for task in (own, *EXTRA_TASKS.get(own, {}))]
    for task, trained_on in sections:
        task_dirs = trained[trained_on]
        groups = [str(pd) for pd in range(6)] if task.startswith("planning") else []
        head = "| model | eval seed | accuracy (95% CI) | " + "".join(f"PD {g} | " for g in groups) + "NFE/example | tokens/forward | seconds |"
        if task == trained_on:
            lines += [f"#### {task}\n"]
        else:  # two sections may evaluate one task: the models trained on it, and others
            lines += [f"#### {task}, models trained on `{trained_on}`\n", f"{EXTRA_TASKS[trained_on][task]}\n"]
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for directory in task_dirs:
            model = load_model(directory)
            for seed in args.seeds if task == trained_on else args.extra_seeds:
                report = evaluate(model, task, n=args.n, seed=seed, model_name=directory.name)
                print(f"{directory.name} on {task}, seed {seed}: {report.accuracy:.3f}", file=sys.stderr, flush=True)
                lines.append(report_row(directory.name, seed, report, groups))
                results.append({**report.to_json(), "seed": seed})
        lines.append("")
    sudoku = next((d for d in dirs if d.name == "sudoku-diffusion"), None)
    if sudoku is not None and args.order_n > 0:
        lines += order_table(load_model(sudoku), task_of_model(sudoku), args.order_n, ORDER_STEPS, results,
                             "One cell per forward (82 steps), then about four (21 steps) and eight (11 steps) cells "
                             "per forward, where the order matters more.")
    if sudoku is not None and args.sparse_n > 0:
        sudoku_ar = next((d for d in dirs if d.name == "sudoku-ar"), None)
        lines += order_table(load_model(sudoku), "sudoku-sparse", args.sparse_n, SPARSE_STEPS, results,
                             "The hardest puzzles: the task `sudoku-sparse`, the sparse end of `sudoku-wide` (23–30 "
                             "givens, still singles-only and unique). More puzzles here, so that the paired comparison "
                             "can separate orders that differ by a few points.", ar_model=load_model(sudoku_ar) if sudoku_ar else None)
    wide = next((d for d in dirs if d.name == "sudoku-wide-diffusion"), None)
    if wide is not None and args.self_check_n > 0:
        lines += self_check_table(wide, args.self_check_n, args.self_check_retries, results)
    wide_ar = next((d for d in dirs if d.name == "sudoku-wide-ar"), None)
    if wide is not None and wide_ar is not None and args.best_of_n > 0:
        lines += ar_best_of_table(wide_ar, wide, args.best_of_n, args.best_of, results)
    write_section(args.out_dir, "accuracy", lines, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
