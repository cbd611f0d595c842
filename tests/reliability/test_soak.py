"""The short soak, run by the test command: faults and hostile input on the whole pipeline.

The long one (10 minutes, longer API fuzzing) is `make soak`; both are tests/reliability/soak.py.
"""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import _required_env
from tests.reliability.soak import run
from tests.reliability.stack import ROOT

pytestmark = pytest.mark.integration
SHORT_S = 100.0
REPORTS = ROOT / "var" / "reliability"


def test_the_short_soak_loses_nothing_and_never_answers_allowed_after_an_unsubscribe() -> None:
    _required_env("KAFKA_TEST_LIBS")
    REPORTS.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="run-", dir=REPORTS))
    report = run(duration=SHORT_S, people=100, rounds=1, fuzz_examples=0, home=home)
    text = report.text()
    (REPORTS / "report-short.txt").write_text(text + "\n", encoding="utf-8")
    (REPORTS / "report-short.json").write_text(
        json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8"
    )
    print(text)  # noqa: T201 - the report is this test's output, shown with -s or on failure
    assert report.faults, text
    assert all(f.recovery_s is not None for f in report.faults), text
    assert report.passed, text
    shutil.rmtree(home, ignore_errors=True)
