#!/usr/bin/env bash
# What the tests need beyond Python: Debian's Chromium (installed when missing, as root) for
# the pages, and from npm (the versions package-lock.json pins) axe-core, and TypeScript with
# @grafana/schema to check the dashboard. Idempotent; prints where they are.
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

if [[ ! -f node_modules/axe-core/axe.min.js || ! -x node_modules/.bin/tsc || ! -f node_modules/@grafana/schema/package.json ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed for the test tools (Debian's npm package)"
    echo "browser: installing axe-core, typescript and @grafana/schema from npm" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
fi

echo "browser: $(command -v chromium), axe-core $(node -p 'require("./node_modules/axe-core/package.json").version')"
