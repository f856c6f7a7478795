#!/usr/bin/env bash
# Install Debian's chromium + chromedriver for the playground's browser test, when missing.
# The browser comes from the distribution's packages only: nothing downloads a browser build.
# Without root or apt-get this does nothing and says why (the test then skips, naming the reason).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "install_chromium.sh: chromium/chromedriver missing and no root apt-get to install them" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
