"""In which rounds a batch of projection writes can run set-based (see `schedule`)."""

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from projections.store.writes import GROUPED_TABLES, WHOLE, WRITES, Op, Write, writes_of
from schemas import EventBase

MAX_ROUNDS = 8
"""Rounds of set-based statements per batch; writes past them go one by one (pipelined)."""


@dataclass(slots=True)
class Schedule:
    """A batch's writes by round: the rows staged per kind (round first), the last round of
    each kind, and the writes past the last round, in list order."""

    staged: dict[Write, list[tuple[Any, ...]]]
    rounds: dict[Write, int]
    rest: list[Op]


def schedule_batch(events: Sequence[tuple[EventBase, int]], max_rounds: int) -> Schedule:
    """The writes of ``events`` (each with its position), in rounds (see `schedule`)."""
    return schedule(
        (op for event, position in events for op in writes_of(event, position)), max_rounds
    )


def schedule(ops: Iterable[Op], max_rounds: int) -> Schedule:
    """Number each write one more than the latest earlier write touching a row it touches.

    Writes of one round touch distinct rows, so they commute and one statement may apply them
    all; running the rounds in order keeps the order of every two writes that share a row,
    which is all the order that matters: the tables end up as if each write ran alone, in list
    order. Writes past ``max_rounds`` come after every round, still in list order.
    """
    ops = list(ops)
    # Writes to a whole group are rare; without them, only writes to the same row are ordered.
    any_whole = any(key is WHOLE for _, _, _, key in ops)
    by_row: dict[tuple[str, Hashable, Hashable], int] = {}
    by_group: dict[tuple[str, Hashable], int] = {}
    whole: dict[tuple[str, Hashable], int] = {}
    staged: dict[Write, list[tuple[Any, ...]]] = {write: [] for write in WRITES}
    last: dict[Write, int] = {}
    rest = []
    for op in ops:
        write, row, group, key = op
        at = (write.table, group, key)
        if any_whole and write.table in GROUPED_TABLES:
            in_group = (write.table, group)
            if key is WHOLE:
                number = by_group.get(in_group, 0) + 1
                whole[in_group] = number
            else:
                number = max(by_row.get(at, 0), whole.get(in_group, 0)) + 1
                by_row[at] = number
            by_group[in_group] = max(by_group.get(in_group, 0), number)
        else:
            number = by_row.get(at, 0) + 1
            by_row[at] = number
        if number > max_rounds:
            rest.append(op)
            continue
        staged[write].append((number, *row))
        if number > last.get(write, 1):
            last[write] = number
    return Schedule(
        {write: rows for write, rows in staged.items() if rows},
        {write: last.get(write, 1) for write, rows in staged.items() if rows},
        rest,
    )
