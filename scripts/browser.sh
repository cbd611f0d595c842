#!/usr/bin/env bash
# What the pages' browser tests need: Debian's Chromium (installed when missing, as root) and
# axe-core from npm (the version package-lock.json pins). Idempotent; prints where they are.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "browser: $*" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        die "installing chromium needs root (apt-get); install Debian's chromium package"
    fi
    echo "browser: installing Debian's chromium" >&2
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
        chromium >&2
fi

if [[ ! -f node_modules/axe-core/axe.min.js ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed for axe-core (Debian's npm package)"
    echo "browser: installing axe-core from npm" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
fi

echo "browser: $(command -v chromium), axe-core $(node -p 'require("./node_modules/axe-core/package.json").version')"
