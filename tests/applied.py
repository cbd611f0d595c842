"""Which offsets each consumer committed, from their debug logs: each record applied once?

Every batch a `consume` process commits (projection rows and offsets in one transaction) is
logged at debug level as ``consumer: applied offsets P:FIRST-NEXT ...``. Across every member of
a group and every rebalance, those ranges must tile each partition from 0 to its end offset:
an offset in two ranges was applied twice, an offset in none was never applied.

One gap is not a loss: a member SIGKILLed after its transaction committed and before it logged
"applied" leaves its last batch unlogged. Where a partition resumes is logged too
(``consumer: resumed offsets P:NEXT ...``, read from the stored offsets), and a stored offset
moves only in the transaction that applied the records below it. So a gap that starts where
the logged ranges stop and ends exactly at an offset a member resumed from was applied; it is
counted as ``unlogged``, apart from ``missing``.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

APPLIED = re.compile(r"consumer: applied offsets ((?:\d+:\d+-\d+ ?)+)$")
RESUMED = re.compile(r"consumer: resumed offsets ((?:\d+:\d+ ?)+)$")


@dataclass(frozen=True)
class Tiling:
    batches: int
    twice: int
    """Offsets committed by more than one batch."""
    missing: int
    """Offsets below the end offset that no batch committed."""
    unlogged: int = 0
    """Gaps closed by a resume at their end: a killed member's last batch, committed unlogged."""


def _lines(logs: Iterable[Path], pattern: re.Pattern[str]) -> Iterable[str]:
    for log in logs:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            found = pattern.search(line)
            if found is not None:
                yield from found.group(1).split()


def committed_ranges(logs: Iterable[Path]) -> dict[int, list[tuple[int, int]]]:
    """Per partition, every committed batch's [first, next) offsets, from these log files."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    for item in _lines(logs, APPLIED):
        partition, span = item.split(":")
        first, after = span.split("-")
        ranges.setdefault(int(partition), []).append((int(first), int(after)))
    return ranges


def resumed_offsets(logs: Iterable[Path]) -> dict[int, set[int]]:
    """Per partition, every stored offset a member sought to when it was assigned it."""
    resumed: dict[int, set[int]] = {}
    for item in _lines(logs, RESUMED):
        partition, offset = item.split(":")
        resumed.setdefault(int(partition), set()).add(int(offset))
    return resumed


def tiling(
    ranges: Mapping[int, list[tuple[int, int]]],
    ends: Mapping[int, int],
    resumed: Mapping[int, set[int]] | None = None,
) -> Tiling:
    """How far the committed ranges are from covering each partition ``[0, end)`` once."""
    twice = missing = unlogged = 0
    for partition, end in ends.items():
        covered = [0] * end
        for first, after in ranges.get(partition, []):
            for offset in range(first, min(after, end)):
                covered[offset] += 1
        twice += sum(1 for count in covered if count > 1)
        resumes = (resumed or {}).get(partition, set())
        offset = 0
        while offset < end:
            if covered[offset]:
                offset += 1
                continue
            gap_end = offset
            while gap_end < end and not covered[gap_end]:
                gap_end += 1
            if gap_end in resumes:
                unlogged += 1
            else:
                missing += gap_end - offset
            offset = gap_end
    return Tiling(sum(len(r) for r in ranges.values()), twice, missing, unlogged)
