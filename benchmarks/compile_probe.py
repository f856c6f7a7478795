"""Does ``torch.compile`` pay on CPU? Forward-pass time of the bundled diffusion model, eager vs
compiled, at the shapes the engine uses, and what compiling costs.

    .venv/bin/python benchmarks/compile_probe.py          # writes docs/benchmarks/compile.md

The engine's shapes change as rows leave a batch and between cached and uncached steps; every
new shape is a new compilation with ``dynamic=False``, so the compile time is reported per shape.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import unmask  # noqa: E402


def _time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        fn()
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
    return (time.perf_counter() - started) / repeats * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "models" / "planning-diffusion"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks" / "compile.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = unmask.load(args.model)
    width = 31  # planning: 24 prompt tokens + 7 answer tokens
    lines = [f"### torch.compile (`benchmarks/compile_probe.py --threads {args.threads}`)\n",
             f"Model `{Path(args.model).name}`, full-canvas forward of width {width}, {args.threads} threads, torch {torch.__version__}.\n",
             "| batch | eager ms/forward | compiled ms/forward | speed-up | compile seconds (this shape) |", "|---|---|---|---|---|"]
    for batch in (1, 64):
        ids = torch.randint(0, model.config.vocab_size - 5, (batch, width))
        eager = _time(lambda: model(ids), 200 if batch == 1 else 40)
        compiled_model = torch.compile(model, dynamic=False)
        started = time.perf_counter()
        with torch.inference_mode():
            compiled_model(ids)
        compile_seconds = time.perf_counter() - started
        compiled = _time(lambda: compiled_model(ids), 200 if batch == 1 else 40)
        lines.append(f"| {batch} | {eager:.2f} | {compiled:.2f} | {eager / compiled:.2f}× | {compile_seconds:.1f} |")
        torch._dynamo.reset()
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
