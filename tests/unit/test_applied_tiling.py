"""The tiling check of tests/applied.py: what it counts as twice, missing and unlogged."""

from pathlib import Path

from tests.applied import Tiling, committed_ranges, resumed_offsets, tiling


def _log(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("".join(f"DEBUG {line}\n" for line in lines), encoding="utf-8")
    return path


def test_ranges_that_tile_the_partitions_count_nothing(tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        "a.log",
        "consumer: resumed offsets 0:0 1:0",
        "consumer: applied offsets 0:0-3 1:0-2",
        "consumer: applied offsets 0:3-5",
    )
    assert tiling(committed_ranges([log]), {0: 5, 1: 2}, resumed_offsets([log])) == Tiling(
        batches=3, twice=0, missing=0, unlogged=0
    )


def test_an_offset_in_two_ranges_is_twice_and_one_in_none_is_missing(tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        "a.log",
        "consumer: applied offsets 0:0-4",
        "consumer: applied offsets 0:2-4 0:6-8",
    )
    assert tiling(committed_ranges([log]), {0: 10}, resumed_offsets([log])) == Tiling(
        batches=3, twice=2, missing=4, unlogged=0
    )


def test_a_gap_closed_by_a_resume_at_its_end_is_unlogged_not_missing(tmp_path: Path) -> None:
    killed = _log(tmp_path, "a.log", "consumer: applied offsets 0:0-4 1:0-2")
    # The survivor resumes partition 0 at 7: the killed member's 4-7 was committed unlogged.
    # Partition 1 resumes at 2, so its 2-3 gap has nothing to close it: missing.
    survivor = _log(
        tmp_path,
        "b.log",
        "consumer: resumed offsets 0:7 1:2",
        "consumer: applied offsets 0:7-9 1:3-4",
    )
    logs = [killed, survivor]
    assert tiling(committed_ranges(logs), {0: 9, 1: 4}, resumed_offsets(logs)) == Tiling(
        batches=4, twice=0, missing=1, unlogged=1
    )
