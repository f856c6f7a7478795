"""``unmask bench``: every decoding policy x KV cache on the bundled task models (or yours),
with accuracy, NFE, tokens per forward, tokens/s and speed-ups, side by side in one run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_EPILOG = """\
With no options it benchmarks the bundled diffusion models (models/<task>-diffusion) on their
held-out test puzzles against the reference decoder (the model's generation_config: one token per
forward) and the equal-size AR model (models/<task>-ar, KV-cached): about 5 minutes on 2 threads
for the three bundled pairs.

Rows: reference; fixed/threshold/factor/eb/hierarchical policies with no cache, prefix cache and
dual cache. speedup_vs_reference and speedup_vs_ar are ratios of tokens/s measured in this run.

examples:
  unmask bench                                   # bundled models, table on stdout
  unmask bench --output json > rows.json         # {"rows": [...]}
  unmask bench --plot bench.png --threads 2
  unmask bench --models models/planning-diffusion --ar models/planning-ar --n 512 --batch-sizes 1 16 256
  unmask bench --model DIR --prompt-file prompts.txt --gen-length 64   # your model, speed only
"""


def add_bench_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench", help="speed and accuracy of every decoding policy x cache, vs reference and AR",
        description="Benchmark decoding policies side by side (one process, same prompts, same threads).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--models", nargs="+", metavar="DIR", help="diffusion task models (default: bundled models/*-diffusion)")
    bench.add_argument("--ar", nargs="+", metavar="DIR", default=None,
                       help="AR baselines (default: models/<task>-ar beside each diffusion model)")
    bench.add_argument("--model", metavar="DIR", help="any diffusion model, with --prompt-file: speed only (no accuracy)")
    bench.add_argument("--prompt-file", metavar="FILE", help="one prompt per line: comma/space separated ids, or text (needs tokenizer.json)")
    bench.add_argument("--gen-length", type=int, default=64, help="tokens to generate with --prompt-file (default 64)")
    bench.add_argument("--n", type=int, default=None, help="test examples per task (default: planning 256, sudoku 32)")
    bench.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64],
                       help="rows decoded together; each size is its own table (default: 1 = latency, 64 = throughput)")
    bench.add_argument("--seed", type=int, default=0, help="which test examples (default 0)")
    bench.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    bench.add_argument("--repeats", type=int, default=1, help="time each row this many times, keep the fastest (default 1)")
    bench.add_argument("--only", nargs="+", metavar="LABEL", default=None,
                       help="only these configurations, by label (e.g. 'threshold 0.999' 'eb 0.01 +dual'); the reference is always run")
    bench.add_argument("--compile", action="store_true",
                       help="torch.compile both models' forward first (slow start, faster steps; see docs/BENCHMARKS.md)")
    bench.add_argument("--plot", metavar="PNG", help="write accuracy vs tokens/s to this PNG")
    bench.add_argument("--output", choices=("table", "json"), default="table")
    bench.set_defaults(handler=_cmd_bench)


def select_configs(labels: list[str] | None) -> Any:
    """The default grid, or the reference plus the configurations named by ``labels``."""
    from unmask.bench.decode import default_configs
    from unmask.sampling.params import ParamError

    configs = default_configs()
    if labels is None:
        return configs
    known = {c.label for c in configs}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ParamError(f"unknown configuration(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    return [c for c in configs if c.policy == "reference" or c.label in labels]


def _cmd_bench(args: argparse.Namespace) -> int:
    import sys

    from unmask.bench.decode import rows_to_json, run_bench
    from unmask.bench.prompts import run_prompt_bench
    from unmask.bench.report import markdown_table, plot
    from unmask.demo import default_models_dir
    from unmask.evaluate import task_of_model
    from unmask.sampling.params import ParamError

    if (args.n is not None and args.n <= 0) or min(args.batch_sizes) <= 0 or args.threads <= 0:
        raise ParamError("--n, --batch-sizes and --threads must be positive")
    if args.plot:  # fail before minutes of benchmarking, not after
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise ParamError("--plot needs matplotlib: pip install -e '.[bench]' (or matplotlib)")
    progress = (lambda line: print(line, file=sys.stderr, flush=True))
    if args.model or args.prompt_file:
        if not (args.model and args.prompt_file):
            raise ParamError("--model and --prompt-file go together")
        rows = run_prompt_bench(Path(args.model), Path(args.prompt_file), gen_length=args.gen_length,
                                batch_size=max(args.batch_sizes), threads=args.threads, progress=progress)
    else:
        models_root = default_models_dir()
        model_dirs = [Path(m) for m in args.models] if args.models else sorted(models_root.glob("*-diffusion"))
        if not model_dirs:
            raise ParamError(f"no diffusion models found under {models_root}; pass --models DIR")
        for directory in model_dirs:
            if not (directory / "config.json").is_file():
                raise ParamError(f"{directory} is not a model directory (no config.json)")
        ar_dirs: dict[str, Path] = {}
        candidates = [Path(a) for a in args.ar] if args.ar is not None else [
            d.parent / d.name.replace("-diffusion", "-ar") for d in model_dirs if d.name.endswith("-diffusion")]
        for directory in candidates:
            if (directory / "config.json").is_file():
                ar_dirs[task_of_model(directory)] = directory
            elif args.ar is not None:
                raise ParamError(f"--ar {directory} is not a model directory (no config.json)")
        configs = select_configs(args.only)
        rows = run_bench(model_dirs, ar_dirs, n=args.n, configs=configs, batch_sizes=args.batch_sizes, seed=args.seed,
                         threads=args.threads, repeats=args.repeats, compile=args.compile, task_of=task_of_model, progress=progress)
    if args.plot:
        plot(rows, Path(args.plot))
    if args.output == "json":
        print(rows_to_json(rows))
    else:
        print(markdown_table(rows))
    return 0
