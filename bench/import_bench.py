"""Import benchmark: `consent-ledger import` of N generated CSV lines into PostgreSQL.

    python bench/import_bench.py --lines 100000 300000 --runs 3

Each run imports into a fresh PostgreSQL schema through the real CLI in a child process, and
reports lines/s, the child's peak memory (it must not grow with the file) and the child's CPU
time per line (user + system: less sensitive than lines/s to other work on the machine, though
the database's own CPU is not in it). The baseline,
timed on the same file in the same run, is reading the CSV and building every line's command
without the ledger: what the import costs beyond parsing.
"""

import base64
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import bench_parser, fresh_schema, from_env

from ledger.write.importer import FileFormat, ImportOptions, command_for, read_rows

RESULTS = Path(__file__).parent / "results"
CLI = str(Path(sys.executable).parent / "consent-ledger")
HEADER = ["address", "status", "opt_in_date", "source", "opt_in_ip", "policy_version"]


def write_csv(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        for n in range(lines):
            status = "unsubscribed" if n % 10 == 0 else "subscribed"
            writer.writerow(
                [
                    f"person{n}@example.org",
                    status,
                    f"20{20 + n % 6}-0{1 + n % 9}-1{n % 10}",
                    "web_form",
                    f"192.0.{n % 256}.{(n // 256) % 256}",
                    "v1",
                ]
            )


def baseline(path: Path) -> float:
    """Seconds to read the file and build every command, with no ledger."""
    options = ImportOptions(purpose="newsletter")
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as stream:
        for _, row in read_rows(stream, FileFormat.CSV):
            if isinstance(row, dict):
                command_for(row, options)
    return time.perf_counter() - started


def run_import(path: Path, dsn: str) -> tuple[float, int, float, dict[str, object]]:
    """Seconds, peak RSS in KiB and CPU seconds of the importing process, its JSON summary."""
    with fresh_schema(dsn) as schema:
        secret = base64.b64encode(os.urandom(32)).decode()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONSENT_")},
            "CONSENT_MODE": "production",
            "CONSENT_PG_DSN": dsn,
            "CONSENT_PG_SCHEMA": schema,
            "CONSENT_SUBJECT_SECRET": secret,
            "CONSENT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        policy = path.with_suffix(".policy.txt")
        policy.write_text("policy v1\n", encoding="utf-8")
        for args in (
            ["purpose", "register", "newsletter", "--legal-basis", "consent", "--description", "n"],
            ["policy", "publish", "v1", str(policy), "--purpose", "newsletter"],
        ):
            subprocess.run([CLI, *args], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        child = subprocess.Popen(
            [CLI, "import", str(path), "--purpose", "newsletter"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        stdout = child.stdout.read() if child.stdout else ""
        # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would mix all children).
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            msg = f"import exited {child.returncode}"
            raise RuntimeError(msg)
        peak = usage.ru_maxrss
        cpu = usage.ru_utime + usage.ru_stime
    summary = json.loads(stdout.strip().splitlines()[-1])
    return elapsed, peak, cpu, summary


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    (dsn,) = from_env(parser, "CONSENT_PG_DSN")
    RESULTS.mkdir(exist_ok=True)
    report: dict[str, object] = {}
    for lines in sorted(args.lines):
        path = RESULTS / f"import-{lines}.csv"
        write_csv(path, lines)
        rates, base_rates, peaks, cpus = [], [], [], []
        for run in range(args.runs):
            base = baseline(path)
            elapsed, peak, cpu, summary = run_import(path, dsn)
            if (summary["lines"], summary["recorded"], summary["rejected"]) != (lines, lines, 0):
                msg = f"the import did not record every line: {summary}"
                raise RuntimeError(msg)
            rates.append(lines / elapsed)
            base_rates.append(lines / base)
            peaks.append(peak)
            cpus.append(cpu / lines * 1e6)
            print(
                f"{lines} lines run {run + 1}: {lines / elapsed:8.0f} lines/s "
                f"(parse only {lines / base:8.0f} lines/s), peak RSS {peak} KiB, "
                f"CPU {cpu / lines * 1e6:.0f} us/line",
                file=sys.stderr,
            )
        report[f"{lines} lines"] = {
            "median_lines_per_s": statistics.median(rates),
            "median_parse_only_lines_per_s": statistics.median(base_rates),
            "ratio_import_over_parse_only": statistics.median(rates)
            / statistics.median(base_rates),
            "peak_rss_kib": max(peaks),
            "median_cpu_us_per_line": statistics.median(cpus),
        }
        path.unlink()
    buffer = io.StringIO()
    json.dump(report, buffer, indent=2)
    print(buffer.getvalue())


if __name__ == "__main__":
    main()
