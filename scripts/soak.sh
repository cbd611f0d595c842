#!/usr/bin/env bash
# The long soak, run by hand (`make soak`): SOAK_DURATION_S of mixed load (default 600) on the
# whole pipeline while the broker, the relay and a consumer are killed and PostgreSQL restarts,
# then hostile input, then the API fuzzing with SOAK_FUZZ_EXAMPLES examples per operation
# (default 150), then every verification. SOAK_BROKERS=3 runs it on a three-node KRaft cluster,
# whose faults are the partition leader's node and the active controller killed instead. The
# soak starts servers of its own; the report is printed and written to
# var/reliability/report.json and .txt. Extra arguments go to the soak.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
KAFKA_TEST_LIBS="$(scripts/services.sh binaries)"
export KAFKA_TEST_LIBS
exec .venv/bin/python -m tests.reliability.soak \
    --duration "${SOAK_DURATION_S:-600}" \
    --fuzz-examples "${SOAK_FUZZ_EXAMPLES:-150}" \
    --brokers "${SOAK_BROKERS:-1}" \
    "$@"
