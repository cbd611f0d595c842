"""Group commit: concurrent submissions share batches, each caller gets its own answer."""

import threading
from collections.abc import Sequence
from concurrent.futures import Future

import pytest

from ledger.domain.errors import StoreUnavailableError
from ledger.write.group_commit import GroupCommitConfig, GroupCommitter, Submission


class Recorder:
    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.release = threading.Event()

    def __call__(self, batch: Sequence[Submission[int, int]]) -> None:
        self.release.wait(5)
        items = [s.item for s in batch]
        self.batches.append(items)
        if self.fail_on in items:
            msg = "boom"
            raise RuntimeError(msg)
        for submission in batch:
            submission.future.set_result(submission.item * 10)


def test_waiting_submissions_are_coalesced_up_to_max_batch() -> None:
    handler = Recorder()
    committer = GroupCommitter(
        handler, config=GroupCommitConfig(max_batch=4, max_wait_s=0.05), name="t"
    )
    futures = [committer.submit(n) for n in range(10)]
    handler.release.set()
    assert [f.result(timeout=5) for f in futures] == [n * 10 for n in range(10)]
    committer.close()
    assert all(len(batch) <= 4 for batch in handler.batches)
    assert len(handler.batches) < 10
    assert [n for batch in handler.batches for n in batch] == list(range(10))


def test_a_failing_batch_gives_retryable_errors_and_the_worker_goes_on() -> None:
    handler = Recorder(fail_on=3)
    handler.release.set()
    committer = GroupCommitter(
        handler, config=GroupCommitConfig(max_batch=1, max_wait_s=0), name="t"
    )
    failed: Future[int] = committer.submit(3)
    with pytest.raises(StoreUnavailableError) as error:
        failed.result(timeout=5)
    assert error.value.retryable
    assert committer.submit(4).result(timeout=5) == 40
    committer.close()


def test_a_batch_that_fails_as_a_whole_answers_every_caller_once_not_one_by_one() -> None:
    """Commands fail alone inside the handler (the ledger contract tests show it); a failure
    of the handler itself is the batch's, answered to each caller without trying again."""
    handler = Recorder(fail_on=3)
    committer = GroupCommitter(
        handler, config=GroupCommitConfig(max_batch=16, max_wait_s=0.05), name="t"
    )
    futures = [committer.submit(n) for n in range(6)]
    handler.release.set()
    for future in futures:
        with pytest.raises(StoreUnavailableError) as error:
            future.result(timeout=5)
        assert error.value.retryable
    assert committer.submit(4).result(timeout=5) == 40
    committer.close()
    assert handler.batches == [list(range(6)), [4]]


def test_submitting_after_close_is_refused() -> None:
    handler = Recorder()
    handler.release.set()
    committer = GroupCommitter(handler, config=GroupCommitConfig(), name="t")
    committer.close()
    with pytest.raises(StoreUnavailableError):
        committer.submit(1)


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommitter(Recorder(), config=GroupCommitConfig(max_batch=0), name="t")
