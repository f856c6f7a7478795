#!/usr/bin/env bash
# Create .venv (if missing) and install unmask into it, with torch pinned to 2.13.0.
# torch is pinned here, not in pyproject.toml: an unpinned torch pulls a multi-GB CUDA build,
# while users elsewhere may want their platform's build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
# extras: "test" (default; pytest, hypothesis, openai, selenium, matplotlib) or "" for the runtime only
EXTRAS="${1-test}"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${EXTRAS:+[$EXTRAS]}"
