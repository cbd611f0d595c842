"""Bulk send check: N addresses against a projection of M persons, through the library.

    python bench/bulk_check_bench.py --persons 2000000 --addresses 1000000 --runs 3

A fresh schema is filled by COPY with M persons in a realistic mix (granted, withdrawn,
pending, never asked, unsubscribed, erased, objecting, restricted, expired, outdated policy;
a second purpose; 40 % with a recent interaction) and dropped at the end. N email addresses
(about 9 % unknown, some spelled in capitals) are then checked for a consent-based purpose with
a maximum age and a re-consent policy, every answer consumed:

- ``library``: `SendChecker.bulk_check` fed the addresses hashed by `SubjectHasher.subject_for`
  as it reads them, end to end;
- ``library_subjects``: the same, fed the subjects already hashed;
- ``hashing``: `SubjectHasher.subject_for` over the N addresses alone;
- ``baseline``: in the same run, a raw COPY of the N precomputed subjects into a temporary table
  and a plain left join against ``consent_state``, every row fetched, with the same session
  settings (``work_mem``, no JIT) the library uses.

Before timing, the bulk answers for a sample of subjects are compared with the single check
(`decide` over the facts read one by one). Each phase is timed in wall seconds and in CPU
seconds of this process plus its PostgreSQL server process (read from /proc when the server is
local): on a shared machine the CPU figures move less. Progress goes to stderr; the summary
(each run with its own ratios, medians of ``--runs``) to stdout and
``bench/results/bulk_check.json``.
"""

import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from common import bench_parser, from_env
from psycopg import sql

from ledger.domain.identity import SubjectHasher
from projections.checker import CheckerConfig, SendChecker
from projections.store.postgres import migrate
from relay.positions import PostgresPositions

RESULTS = Path(__file__).parent / "results"
AT = datetime(2026, 11, 26, tzinfo=UTC)
PURPOSE = "newsletter"
MAX_AGE_DAYS = 3 * 365
DOMAINS = (
    "gmail.com",
    "orange.fr",
    "hotmail.fr",
    "yahoo.fr",
    "free.fr",
    "laposte.net",
    "outlook.com",
    "sfr.fr",
    "wanadoo.fr",
    "icloud.com",
)
SAMPLE = 2_000
CONFIG = CheckerConfig()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def address(n: int) -> str:
    return f"user{n}@{DOMAINS[n % len(DOMAINS)]}"


def kind(n: int) -> int:
    """Which of 100 profiles person ``n`` has (a fixed scramble, so neighbours differ).

    0-59 granted, 60-69 granted under the outdated v1, 70-77 withdrawn, 78-80 pending, 81-84
    never asked, 85-92 unsubscribed from everything, 93 erased, 94 objecting, 95-96 restricted,
    97 granted four years ago, 98 unsubscribed from one list only, 99 granted.
    """
    return (n * 2654435761) % 100


def _consents(subjects: list[str]) -> Iterator[tuple[Any, ...]]:
    base = AT - timedelta(days=700)
    for n, subject in enumerate(subjects):
        profile, position = kind(n), n + 10
        since = base + timedelta(minutes=n % 900_000)
        policy = "v1" if 60 <= profile < 70 else "v2"
        if profile < 70 or profile >= 93:
            if profile == 97:
                since = AT - timedelta(days=4 * 365)
            yield subject, PURPOSE, "email", "granted", None, policy, since, position
        elif profile < 78:
            yield subject, PURPOSE, "email", "withdrawn", "user_request", "v2", since, position
        elif profile < 81:
            yield subject, PURPOSE, "email", "pending", None, "v2", since, position
        elif profile >= 85:  # 85-92: unsubscribed from everything, so withdrawn
            yield (subject, PURPOSE, "email", "withdrawn", "unsubscribed", "v2", since, position)
        if n % 4 == 0:
            yield subject, "offers", "email", "granted", None, "v2", since, position


def _suppressions(subjects: list[str]) -> Iterator[tuple[Any, ...]]:
    since = AT - timedelta(days=30)
    reasons = {93: ("*", "erased"), 94: ("*", "objection"), 98: ("list:weekly", "unsubscribed")}
    for n, subject in enumerate(subjects):
        profile, position = kind(n), 3_000_000_000 + n
        if 85 <= profile <= 92:
            yield subject, "*", "unsubscribed", since, position, True
        elif profile in reasons:
            yield subject, *reasons[profile], since, position, True


def _restrictions(subjects: list[str]) -> Iterator[tuple[Any, ...]]:
    scopes = {95: "*", 96: PURPOSE}
    for n, subject in enumerate(subjects):
        if kind(n) in scopes:
            yield subject, scopes[kind(n)], AT - timedelta(days=5), 4_000_000_000 + n, True


def _interactions(subjects: list[str]) -> Iterator[tuple[Any, ...]]:
    for n, subject in enumerate(subjects):
        if n % 5 < 2:
            yield subject, AT - timedelta(days=n % 300), 5_000_000_000 + n


def _copy(conn: psycopg.Connection[Any], schema: str, table: str, columns: str, rows: Any) -> int:
    target = sql.SQL("copy {}.{} ({}) from stdin").format(
        sql.Identifier(schema), sql.Identifier(table), sql.SQL(columns)
    )
    count = 0
    with conn.cursor() as cursor, cursor.copy(target) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def fill(conn: psycopg.Connection[Any], dsn: str, schema: str, subjects: list[str]) -> None:
    s = sql.Identifier(schema)
    conn.execute(sql.SQL("create schema {}").format(s))
    migrate(conn, schema=schema)
    PostgresPositions(dsn=dsn, schema=schema).close()  # the watermarks the checker reads
    conn.execute(
        sql.SQL(
            "insert into {}.purposes values (%s, 'consent', %s, true, 1), "
            "('offers', 'consent', null, true, 2), ('service', 'legitimate_interest', null, "
            "false, 3)"
        ).format(s),
        (PURPOSE, MAX_AGE_DAYS),
    )
    conn.execute(
        sql.SQL(
            "insert into {}.policy_versions values ('v1', %s, %s, %s, false, 4), "
            "('v2', %s, %s, %s, true, 5)"
        ).format(s),
        ("a" * 64, AT - timedelta(days=1000), [], "b" * 64, AT - timedelta(days=800), [PURPOSE]),
    )
    tables = (
        (
            "consent_state",
            "subject, purpose, channel, status, reason, policy_version, since, last_position",
            _consents,
        ),
        ("suppression", "subject, scope, reason, since, last_position, active", _suppressions),
        ("restriction", "subject, scope, since, last_position, active", _restrictions),
        ("interaction", "subject, last_at, last_position", _interactions),
    )
    for table, columns, rows in tables:
        count = _copy(conn, schema, table, columns, rows(subjects))
        conn.execute(sql.SQL("vacuum analyze {}.{}").format(s, sql.Identifier(table)))
        log(f"  {table}: {count:,} rows")


def checker(conn: psycopg.Connection[Any], schema: str) -> SendChecker:
    config = CheckerConfig(schema=schema, max_lag=0, wait_s=0)
    return SendChecker(conn, head=lambda: 0, config=config, clock=lambda: AT)


def consume(answers: Iterable[tuple[str, Any]]) -> Counter[str]:
    return Counter("allowed" if d.allowed else d.reason.value for _, d in answers)


def baseline(conn: psycopg.Connection[Any], schema: str, subjects: list[str]) -> Counter[str]:
    """Raw COPY of the subjects and a plain join against consent_state, every row fetched."""
    query = sql.SQL(
        "copy (select q.subject, c.status from bulk_baseline q left join {}.consent_state c "
        "on c.subject = q.subject and c.purpose = %s and c.channel = 'email') "
        "to stdout (format binary)"
    ).format(sql.Identifier(schema))
    counts: Counter[str] = Counter()
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute("select set_config('work_mem', %s, true)", (CONFIG.bulk_work_mem,))
        cursor.execute("set local jit = off")
        cursor.execute("create temporary table bulk_baseline (subject text) on commit drop")
        with cursor.copy("copy bulk_baseline (subject) from stdin") as copy:
            for start in range(0, len(subjects), 10_000):
                copy.write("\n".join(subjects[start : start + 10_000]) + "\n")
        with cursor.copy(query, (PURPOSE,)) as rows:
            rows.set_types(["text", "text"])
            for _, status in rows.rows():
                counts[status or "none"] += 1
    return counts


def backend_cpu(conn: psycopg.Connection[Any]) -> float:
    """CPU seconds the connection's server process has used, if it runs on this machine."""
    try:
        fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(conn: psycopg.Connection[Any], what: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, and CPU seconds of this process and the server's (steadier on a busy box)."""
    started, cpu = time.perf_counter(), time.process_time() + backend_cpu(conn)
    result = what()
    return (
        time.perf_counter() - started,
        time.process_time() + backend_cpu(conn) - cpu,
        result,
    )


def check_sample(conn: psycopg.Connection[Any], schema: str, subjects: list[str]) -> None:
    """The bulk answers for a sample equal the single check's (`decide`), or the bench stops."""
    sample = subjects[:: max(1, len(subjects) // SAMPLE)]
    bulk = list(checker(conn, schema).bulk_check(sample, PURPOSE))
    single = [checker(conn, schema).check(s, PURPOSE).decision for s in sample]
    if [d for _, d in bulk] != single or [s for s, _ in bulk] != sample:
        raise SystemExit("the bulk answers differ from the single check's: not timing that")
    log(f"  {len(sample):,} sampled answers equal the single check's")


def run_once(
    conn: psycopg.Connection[Any],
    schema: str,
    hasher: SubjectHasher,
    addresses: list[str],
    subjects: list[str],
) -> dict[str, float]:
    base_s, base_cpu, base_counts = timed(conn, lambda: baseline(conn, schema, subjects))
    lib_s, lib_cpu, counts = timed(
        conn,
        lambda: consume(
            checker(conn, schema).bulk_check((hasher.subject_for(a) for a in addresses), PURPOSE)
        ),
    )
    subj_s, subj_cpu, subject_counts = timed(
        conn, lambda: consume(checker(conn, schema).bulk_check(iter(subjects), PURPOSE))
    )
    hash_s, hash_cpu, _ = timed(conn, lambda: [hasher.subject_for(a) for a in addresses])
    if counts != subject_counts or sum(counts.values()) != len(addresses):
        raise SystemExit(f"inconsistent answers: {counts} vs {subject_counts}")
    if sum(base_counts.values()) != len(subjects):
        raise SystemExit("the baseline lost rows")
    log(f"  answers: {dict(counts.most_common())}")
    return {
        "library_s": lib_s,
        "library_subjects_s": subj_s,
        "hashing_s": hash_s,
        "baseline_s": base_s,
        "ratio_library": lib_s / base_s,
        "ratio_library_subjects": subj_s / base_s,
        "library_cpu_s": lib_cpu,
        "library_subjects_cpu_s": subj_cpu,
        "hashing_cpu_s": hash_cpu,
        "baseline_cpu_s": base_cpu,
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--persons", type=int, default=2_000_000, help="persons projected")
    parser.add_argument("--addresses", type=int, default=1_000_000, help="addresses checked")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    args = parser.parse_args()
    (dsn,) = from_env(parser, "CONSENT_PG_DSN")
    hasher = SubjectHasher(secret=b"bench-subject-secret-32-bytes-ok")
    schema = f"bench_bulk_{uuid4().hex[:10]}"
    log(f"hashing {args.persons:,} persons' addresses")
    persons = [hasher.subject_for(address(n)) for n in range(args.persons)]
    # About 9 % of the list is unknown to the ledger; every tenth address is spelled in capitals.
    span = args.persons + args.persons // 10
    picked = [(i * 7919) % span for i in range(args.addresses)]
    addresses = [address(n).upper() if i % 10 == 0 else address(n) for i, n in enumerate(picked)]
    subjects = [hasher.subject_for(a) for a in addresses]
    runs: list[dict[str, float]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            log(f"filling schema {schema}")
            fill(conn, dsn, schema, persons)
            del persons
            check_sample(conn, schema, subjects)
            for number in range(args.runs):
                log(f"run {number + 1}/{args.runs}")
                result = run_once(conn, schema, hasher, addresses, subjects)
                log(f"  {json.dumps({k: round(v, 3) for k, v in result.items()})}")
                runs.append(result)
        finally:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    summary = {
        "persons": args.persons,
        "addresses": args.addresses,
        "runs": runs,
        "median": median,
        "ratio_library_to_baseline": median["library_s"] / median["baseline_s"],
        "ratio_library_subjects_to_baseline": median["library_subjects_s"] / median["baseline_s"],
        "cpu_ratio_library_subjects_to_baseline": (
            median["library_subjects_cpu_s"] / median["baseline_cpu_s"]
        ),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bulk_check.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
