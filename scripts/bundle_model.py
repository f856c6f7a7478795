"""Copy a trained run's model into ``models/<name>/`` and write its model card from measurements.

    python scripts/bundle_model.py runs/planning-diffusion models/planning-diffusion --task planning

The card holds the exact ``unmask train`` command and config, the training time and threads (read
from the run's metrics.jsonl), and accuracy on the test split measured now, for each of
``--seeds`` (different held-out samples), with the 95% interval. Nothing in it is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

import unmask
from unmask.evaluate import evaluate
from unmask.tasks import TASKS
from unmask.train import load_config

MAX_BYTES = 10 * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def config_exporting(model_dir: str) -> str | None:
    """The shipped config (under ``configs/``) whose run exports ``model_dir``, if exactly one does."""
    found = [path for path in sorted((ROOT / "configs").rglob("*.toml"))
             if load_config(str(path), []).run.out_dir + "/model" == model_dir.rstrip("/")]
    return str(found[0].relative_to(ROOT)) if len(found) == 1 else None


def wall_minutes(records: list[dict]) -> float:
    """Training wall time over every session of a run. ``elapsed_s`` restarts from 0 when a run is
    resumed; a resume record (``"session": "resume"``) carries the time the interrupted session
    had logged, records it dropped included. Older runs have no session records: there each
    restart of ``elapsed_s`` adds the last value kept before it (time on redone steps is lost)."""
    total, last = 0.0, 0.0
    for row in records:
        if row.get("session") == "resume":
            total += row["interrupted_session_s"]
            last = 0.0
        elif "elapsed_s" in row:
            if row["elapsed_s"] < last:
                total += last
            last = row["elapsed_s"]
    return (total + last) / 60


def session_threads(records: list[dict], final_threads: int) -> str:
    """Threads of each session, e.g. "2, 1 thread(s) in its 2 sessions", where the run recorded them."""
    counts = [str(row["threads"]) for row in records if "session" in row]
    if not counts:
        return f"{final_threads} thread(s) in the last session (2-core machine shared with other jobs)"
    return f"{', '.join(counts)} thread(s) in its {len(counts)} session(s) (2-core machine shared with other jobs)"


def lineage(training: dict) -> list[str]:
    """Card lines for the runs a continued model (``model.init_from``) started from, oldest first."""
    lines: list[str] = []
    source = training["model"].get("init_from", "")
    while source:
        model_dir = ROOT / source
        if not (model_dir / "training_config.json").exists():
            lines.insert(0, f"- started from the weights in `{source}` (its training record is not on this machine)")
            break
        before = json.loads((model_dir / "training_config.json").read_text())
        metrics = model_dir.parent / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()] if metrics.exists() else []
        steps = [m for m in rows if "loss" in m]
        config = config_exporting(source)
        done = (f"{steps[-1]['step']} steps, {wall_minutes(rows):.1f} min, {session_threads(rows, before['run']['threads'])}"
                if steps else "its metrics are not on this machine")
        lines.insert(0, f"`unmask train --config {config}` ({done}), which exports `{source}`" if config else
                     f"the run that exported `{source}` ({done}; no shipped config makes it)")
        source = before["model"].get("init_from", "")
    return [f"- {'first' if i == 0 else 'then'} {line}" if not line.startswith("- ") else line for i, line in enumerate(lines)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run directory (holds model/, metrics.jsonl)")
    parser.add_argument("target", type=Path, help="models/<task>-<kind>")
    parser.add_argument("--task", required=True, choices=tuple(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config-file", default=None, help="the config the run was started with (for the card's command)")
    parser.add_argument("--train-args", default="", help="extra arguments of the card's `unmask train` command (e.g. --set run.stop_at=6000)")
    parser.add_argument("--note", action="append", default=[], help="an extra line for the card's training section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = args.run / "model"
    if not (source / "config.json").exists():
        print(f"error: {source} holds no exported model", file=sys.stderr)
        return 2
    if args.target.exists():
        shutil.rmtree(args.target)
    shutil.copytree(source, args.target)
    size = sum(p.stat().st_size for p in args.target.iterdir())
    if size > MAX_BYTES:
        print(f"error: {args.target} is {size / 1e6:.1f} MB, over the 10 MB limit for bundled models", file=sys.stderr)
        return 2

    model = unmask.load(args.target)
    training = json.loads((args.target / "training_config.json").read_text())
    metrics = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [m for m in metrics if "loss" in m]
    evals = [m for m in metrics if "eval_accuracy" in m]
    rows = []
    for seed in args.seeds:
        started = time.perf_counter()
        report = evaluate(model, args.task, n=args.n, seed=seed, model_name=str(args.target))
        rows.append((seed, report, time.perf_counter() - started))
    earlier = lineage(training)
    kind = "AR (causal attention, left to right)" if model.config.attention == "causal" else "masked diffusion (bidirectional)"
    config_file = args.config_file or f"configs/{args.target.name}.toml"
    lines = [
        f"# {args.target.name}",
        "",
        f"A {model.num_parameters() / 1e6:.2f}M-parameter {kind} model for the **{args.task}** task of unmask, "
        f"trained {'in stages (below)' if earlier else 'from scratch'} with `unmask train` on this project's own "
        f"generated data (`unmask.tasks`, train split; the test split is disjoint by construction).",
        "",
        "## Training",
        "",
        *([*earlier, "- then, starting from those weights (`model.init_from`):", ""] if earlier else []),
        "```",
        f"unmask train --config {config_file}" + (f" {args.train_args}" if args.train_args else ""),
        "```",
        "",
        f"- steps: {steps[-1]['step'] if steps else '?'} (learning-rate schedule of {training['optim']['max_steps']} steps) "
        f"(batch {training['optim']['batch_size']}), final training loss {steps[-1]['loss']:.4f}" if steps else "- steps: ?",
        f"- wall time: {wall_minutes(metrics):.1f} min on CPU, summed over the sessions of a resumed run; "
        f"{session_threads(metrics, training['run']['threads'])}" if steps else "",
        f"- validation accuracy during training: " + ", ".join(f"step {e['step']}: {e['eval_accuracy']:.1%}" for e in evals[-4:]),
        *[f"- {note}" for note in args.note],
        "",
        "Config (training_config.json in this directory):",
        "",
        "```json",
        json.dumps({k: training[k] for k in ("model", "data", "objective", "optim")}, indent=1),
        "```",
        "",
        "## Measured accuracy (test split)",
        "",
        f"`unmask eval --model {args.target} --task {args.task} --n {args.n} --seed S` "
        f"(decoding: `generation_config.json`; {args.threads} threads):",
        "",
    ]
    header = "| seed | accuracy | 95% CI |"
    sep = "|---|---|---|"
    if args.task == "planning":
        header += " " + " | ".join(f"PD{pd}" for pd in range(6)) + " |"
        sep += "---|" * 6
    header += " NFE | tokens/forward | seconds |"
    sep += "---|---|---|"
    lines += [header, sep]
    for seed, report, seconds in rows:
        lo, hi = report.ci95
        cells = f"| {seed} | {report.accuracy:.1%} | {lo:.1%}–{hi:.1%} |"
        if args.task == "planning":
            by_pd = report.group_accuracy()
            cells += " " + " | ".join(f"{by_pd[str(pd)]:.0%}" if str(pd) in by_pd else "–" for pd in range(6)) + " |"
        cells += f" {report.nfe:.1f} | {report.tokens_per_forward:.2f} | {seconds:.1f} |"
        lines.append(cells)
    mean = sum(r.accuracy for _, r, _ in rows) / len(rows)
    lines += ["", f"Mean over the {len(rows)} seeds: **{mean:.1%}**.", ""]
    (args.target / "README.md").write_text("\n".join(line for line in lines if line is not None) + "\n")
    print((args.target / "README.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
