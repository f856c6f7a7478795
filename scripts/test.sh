#!/usr/bin/env bash
# Set up and run the test suite (the golden vectors are read from ../shared/golden).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
