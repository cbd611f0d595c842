#!/usr/bin/env bash
# Prints the path of promtool, installing Debian's `prometheus` package (which ships it) first
# when it is missing, the way services.sh installs PostgreSQL. The tests check the metrics
# exposition and the alert rules with it.
set -euo pipefail

if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool: installing Debian's prometheus package" >&2
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "promtool: installing prometheus needs root (apt-get); install it" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get update -qq >&2
    # Only the package's files are wanted: no service is started in a container without init.
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
        prometheus >&2
fi
command -v promtool
