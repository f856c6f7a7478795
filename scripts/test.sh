#!/usr/bin/env bash
# Set up and run the test suite (the golden vectors are read from ../shared/golden).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the playground's browser test drives Debian's chromium (installed from the distribution, never downloaded)
bash tests/server/install_chromium.sh
.venv/bin/python -m pytest "$@"
