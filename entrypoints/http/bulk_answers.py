"""The streamed bulk check's body: lines read in as they arrive, answers written out in order."""

import csv
import io
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

import anyio.from_thread

from ledger.domain.errors import InvalidFieldError
from ledger.domain.identity import SubjectHasher
from ledger.domain.rules import Decision
from projections.checker import Checker, StaleProjectionError
from schemas import SUBJECT_PATTERN

_quote = json.encoder.encode_basestring_ascii  # what json.dumps does to a str

MAX_LINE_BYTES = 1024
OUT_CHUNK_LINES = 5_000
_SUBJECT = re.compile(SUBJECT_PATTERN)
_LONG_LINE = f"line longer than {MAX_LINE_BYTES} bytes"
_BAD_SUBJECT = "subject: 1 to 128 of the characters A-Z a-z 0-9 . _ : @ -"


def request_chunks(body: AsyncIterator[bytes]) -> Iterator[bytes]:
    """A request body's chunks, pulled from a worker thread off the event loop."""

    async def next_chunk() -> bytes:
        return await anext(body)

    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


class BulkAnswers:
    """Input lines pulled from a body (a request's, a file's), decisions pushed out, in order,
    in chunks: one answer per input line, an error in place of a line that is no person."""

    def __init__(
        self,
        *,
        hasher: SubjectHasher | None,
        checker: Checker,
        chunks: Iterator[bytes],
        csv_in: bool,
        addresses: bool,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self._hasher = hasher
        self._checker = checker
        self._chunk_source = chunks
        self._csv = csv_in
        self._addresses = addresses
        self._release = release
        # Per input line, in order: the address given (or None), and the error it caused.
        self._pending: deque[tuple[str | None, str | None]] = deque()

    def _lines(self) -> Iterator[str | None]:
        """Each input line, stripped; None for a line over `MAX_LINE_BYTES`, whose bytes are
        dropped up to its end however many chunks it spans (one answer per line, always)."""
        rest = b""
        skipping = False
        for chunk in self._chunk_source:
            start = 0
            if skipping:
                start = chunk.find(b"\n") + 1
                if start == 0:
                    continue
                skipping = False
            rest += chunk[start:]
            *lines, rest = rest.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace").strip()
            if len(rest) > MAX_LINE_BYTES:
                yield None
                rest, skipping = b"", True
        if rest.strip():
            yield rest.decode("utf-8", "replace").strip()

    def _subjects(self) -> Iterator[str]:
        first = True
        for line in self._lines():
            if line == "":
                continue
            header, first = first, False
            if line is None:
                self._pending.append((None, _LONG_LINE))
                yield ""
                continue
            try:
                kind, value = self._parse(line, header=header)
            except ValueError as error:
                self._pending.append((None, str(error)))
                yield ""
                continue
            if kind == "header":
                continue
            if kind == "address":
                try:
                    if self._hasher is None:
                        msg = "no subject secret to hash addresses with"
                        raise InvalidFieldError("address", msg)
                    subject = self._hasher.subject_for(value)
                except (InvalidFieldError, UnicodeError):
                    self._pending.append((value, "address: not a valid email address"))
                    yield ""
                    continue
                self._pending.append((value, None))
                yield subject
            elif _SUBJECT.match(value):
                self._pending.append((None, None))
                yield value
            else:
                self._pending.append((None, _BAD_SUBJECT))
                yield ""

    def _parse(self, line: str, *, header: bool) -> tuple[str, str]:
        if len(line.encode()) > MAX_LINE_BYTES:
            raise ValueError(_LONG_LINE)
        bare = "address" if self._addresses else "subject"
        if self._csv:
            try:
                value = next(csv.reader([line]), [""])[0].strip()
            except (csv.Error, IndexError):
                msg = "not a CSV line"
                raise ValueError(msg) from None
            if header and value.lower() in {"subject", "address"}:
                return "header", value
            return bare, value
        if line[0] in '{"':
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                msg = "not JSON"
                raise ValueError(msg) from None
            if isinstance(parsed, str):
                return bare, parsed
            if isinstance(parsed, dict) and len(parsed) == 1:
                ((kind, value),) = parsed.items()
                if kind in {"subject", "address"} and isinstance(value, str):
                    return kind, value
            msg = 'expected a string, {"subject": ...} or {"address": ...}'
            raise ValueError(msg)
        return bare, line

    def render(self, purpose: str, channel: str, *, csv_out: bool) -> Iterator[bytes]:
        """The answers as NDJSON or CSV lines, a chunk at a time (iterated in a worker thread)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        # Answers to addresses echo each address given, so they line up with the caller's list.
        echo = ["address"] if self._addresses else []
        if csv_out:
            writer.writerow(["subject", "allowed", "reason", "error", *echo])
        lines = 0
        tails: dict[Decision, str] = {}
        try:
            for subject, decision in self._checker.bulk_check(self._subjects(), purpose, channel):
                address, error = self._pending.popleft()
                reason = None if decision.reason is None else decision.reason.value
                given = [address or ""] if echo else []
                if csv_out:
                    if error is None:
                        allowed = str(decision.allowed).lower()
                        writer.writerow([subject, allowed, reason or "", "", *given])
                    else:
                        writer.writerow(["", "", "", error, *given])
                elif error is not None:
                    problem = {"error": error} | ({} if address is None else {"address": address})
                    out.write(json.dumps(problem) + "\n")
                else:
                    # The same text json.dumps gives the dict, without building the dict.
                    tail = tails.get(decision)
                    if tail is None:
                        tail = tails[decision] = (
                            f', "allowed": {json.dumps(decision.allowed)}, '
                            f'"reason": {json.dumps(reason)}'
                        )
                    out.write(
                        '{"subject": '
                        + _quote(subject)
                        + tail
                        + ("}\n" if address is None else ', "address": ' + _quote(address) + "}\n")
                    )
                lines += 1
                if lines % OUT_CHUNK_LINES == 0:
                    yield out.getvalue().encode()
                    out.seek(0)
                    out.truncate()
        except StaleProjectionError as error:
            # The answer has started: say so in the stream rather than answer stale.
            out.write(json.dumps({"error": "stale-projection", "detail": str(error)}) + "\n")
        finally:
            self._release()
        yield out.getvalue().encode()
