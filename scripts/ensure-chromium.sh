#!/usr/bin/env bash
# Debian's chromium for the console's browser test (Playwright drives it; its own browser
# download cannot work here). Installs it when missing and we may (root with apt, as in CI);
# elsewhere the browser test is skipped and this says how to get it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && exit 0
fi
echo "chromium is not installed: the console's browser test will be skipped (apt-get install chromium)" >&2
