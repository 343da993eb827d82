#!/usr/bin/env bash
# scripts/browser-setup.sh: what the UI's end-to-end tests drive: Debian's Chromium and
# playwright-core from npm (installed once per machine under ~/.cache/plakar-tools, keyed by
# its version). Prints the variables the tests read.
set -euo pipefail
version=${PLAYWRIGHT_VERSION:-1.65.1}
tools=${PLAKAR_TOOLS:-$HOME/.cache/plakar-tools}
dir=$tools/playwright-core-$version
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the UI tests..." >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >&2 \
    || { $sudo apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >&2; }
fi
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  echo "installing playwright-core $version for the UI tests..." >&2
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "playwright-core@$version" >&2
fi
printf 'export PLAKAR_CHROMIUM=%s PLAKAR_PLAYWRIGHT=%s\n' "$(command -v chromium)" "$dir/node_modules"
