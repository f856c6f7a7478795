"""Train the bundled task models (and extra seeds), evaluate them, and package the results.

Runs every (task, kind, seed) as its own ``unmask train`` process in parallel (small models
leave a GPU mostly idle, so several share it). With ``--budget-seconds`` it first calibrates:
each run trains ``--calibrate-steps`` steps, its measured step rate sets ``optim.max_steps`` so the
real runs fill the budget (the chosen value is recorded in each run's training_config.json, so
the run is reproducible with that exact ``--set optim.max_steps=N``).

    python scripts/train_bundled.py --device cuda --budget-seconds 360 --seeds 0 1 2 --out runs/bundled
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def launch(config: Path, out_dir: Path, overrides: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "unmask.cli", "train", "--config", str(config),
               "--set", f"run.out_dir={json.dumps(str(out_dir))}", "--set", "run.progress=false"]
    for item in overrides:
        command += ["--set", item]
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)


def step_rate(metrics: Path, skip: int) -> float:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "elapsed_s" in r]
    first = next(r for r in rows if r["step"] >= skip)
    last = rows[-1]
    return (last["step"] - first["step"]) / max(1e-6, last["elapsed_s"] - first["elapsed_s"])


def run_all(jobs: list[tuple[str, Path, Path, list[str]]], timeout: float) -> dict[str, int]:
    processes = {name: launch(config, out, extra, out.parent / f"{out.name}.log") for name, config, out, extra in jobs}
    deadline = time.monotonic() + timeout
    codes = {}
    for name, process in processes.items():
        try:
            codes[name] = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.terminate()  # SIGTERM: the trainer checkpoints and exports the current weights
            codes[name] = process.wait()
    return codes


def evaluate(model: Path, task: str, n: int, device: str, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "unmask.cli", "eval", "--model", str(model), "--task", task, "--n", str(n),
               "--device", device, "--output", "json", "--batch-size", "500", *extra]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["planning", "sudoku"])
    parser.add_argument("--kinds", nargs="+", default=["diffusion", "ar"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bundled")
    parser.add_argument("--budget-seconds", type=float, default=None, help="calibrate max_steps to fill this training time")
    parser.add_argument("--calibrate-steps", type=int, default=120)
    parser.add_argument("--eval-n", type=int, default=1000)
    parser.add_argument("--eval-workers", type=int, default=8)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra override for every run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = [f"run.device={json.dumps(args.device)}", *args.overrides]
    names = [(task, kind, seed) for task in args.tasks for kind in args.kinds for seed in args.seeds]

    def job(task: str, kind: str, seed: int, root: Path, extra: list[str]) -> tuple[str, Path, Path, list[str]]:
        name = f"{task}-{kind}-s{seed}"
        seeds = [f"run.seed={seed}", f"data.seed={seed}"]
        return name, ROOT / "configs" / f"{task}-{kind}.toml", root / name, base + seeds + extra

    steps: dict[tuple[str, str], int] = {}
    if args.budget_seconds:
        calibration = [job(t, k, s, args.out / "calibration", [f"optim.max_steps={args.calibrate_steps}", "data.train_size=2000",
                                                                "run.eval_n=0", "run.log_every=10"]) for t, k, s in names]
        started = time.monotonic()
        codes = run_all(calibration, timeout=600)
        print(f"calibration took {time.monotonic() - started:.0f} s: {codes}", flush=True)
        for task, kind, seed in names:
            rate = step_rate(args.out / "calibration" / f"{task}-{kind}-s{seed}" / "metrics.jsonl", skip=20)
            steps[(task, kind)] = min(steps.get((task, kind), 10**9), max(100, int(rate * args.budget_seconds) // 100 * 100))
        print("max_steps:", {f"{t}-{k}": v for (t, k), v in steps.items()}, flush=True)
    real = [job(t, k, s, args.out, [f"optim.max_steps={steps[(t, k)]}"] if steps else []) for t, k, s in names]
    started = time.monotonic()
    codes = run_all(real, timeout=(args.budget_seconds or 10**7) * 1.25 + 120)
    print(f"training took {time.monotonic() - started:.0f} s: {codes}", flush=True)

    # every evaluation is its own process; run them side by side
    requests = []
    for task, kind, seed in names:
        model = args.out / f"{task}-{kind}-s{seed}" / "model"
        if model.exists():
            requests.append((f"{task}-{kind}-s{seed}", "eval", model, task, []))
            if task == "sudoku" and kind == "diffusion":
                requests += [(f"{task}-{kind}-s{seed}", order, model, task, ["--remasking", order])
                             for order in ("random", "low_confidence", "margin", "entropy")]
    with ThreadPoolExecutor(max_workers=args.eval_workers) as pool:
        answers = list(pool.map(lambda r: evaluate(r[2], r[3], args.eval_n, args.device, r[4]), requests))
    results: dict[str, dict] = {f"{t}-{k}-s{s}": {"max_steps": steps.get((t, k)), "exit_code": codes[f"{t}-{k}-s{s}"]}
                                for t, k, s in names}
    for (name, label, *_), answer in zip(requests, answers):
        if label == "eval":
            results[name]["eval"] = answer
        else:
            results[name].setdefault("orders", {})[label] = answer
    for name, entry in results.items():
        print(name, json.dumps(entry.get("eval", entry)), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
