#!/usr/bin/env bash
# The main job: set up .venv, then run `unmask demo` on the bundled models in models/:
# diffusion vs AR on held-out planning and sudoku puzzles, and one puzzle denoised step by step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh ""   # the runtime only: the demo needs no test or benchmark packages
.venv/bin/unmask demo --threads 2 "$@"
