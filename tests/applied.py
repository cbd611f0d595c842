"""Which offsets each consumer committed, from their debug logs: each record applied once?

Every batch a `consume` process commits (projection rows and offsets in one transaction) is
logged at debug level as ``consumer: applied offsets P:FIRST-NEXT ...``. Across every member of
a group and every rebalance, those ranges must tile each partition from 0 to its end offset:
an offset in two ranges was applied twice, an offset in none was never applied.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

APPLIED = re.compile(r"consumer: applied offsets ((?:\d+:\d+-\d+ ?)+)$")


@dataclass(frozen=True)
class Tiling:
    batches: int
    twice: int
    """Offsets committed by more than one batch."""
    missing: int
    """Offsets below the end offset that no batch committed."""


def committed_ranges(logs: Iterable[Path]) -> dict[int, list[tuple[int, int]]]:
    """Per partition, every committed batch's [first, next) offsets, from these log files."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    for log in logs:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            found = APPLIED.search(line)
            if found is None:
                continue
            for item in found.group(1).split():
                partition, span = item.split(":")
                first, after = span.split("-")
                ranges.setdefault(int(partition), []).append((int(first), int(after)))
    return ranges


def tiling(ranges: Mapping[int, list[tuple[int, int]]], ends: Mapping[int, int]) -> Tiling:
    """How far the committed ranges are from covering each partition ``[0, end)`` once."""
    twice = missing = 0
    for partition, end in ends.items():
        covered = [0] * end
        for first, after in ranges.get(partition, []):
            for offset in range(first, min(after, end)):
                covered[offset] += 1
        twice += sum(1 for count in covered if count > 1)
        missing += sum(1 for count in covered if count == 0)
    return Tiling(sum(len(r) for r in ranges.values()), twice, missing)
