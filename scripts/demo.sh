#!/usr/bin/env bash
# The main job on the bundled default model: set up, describe the model, generate from a prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MODEL="${UNMASK_MODEL:-tests/assets/tiny-llada-chat}"
.venv/bin/unmask inspect --model "$MODEL"
echo
.venv/bin/unmask generate --model "$MODEL" --prompt "Where is the meeting?" --chat --threads 2
.venv/bin/unmask generate --model "$MODEL" --prompt "Where is the meeting?" --chat --threads 2 --threshold 0.5 --cache dual
