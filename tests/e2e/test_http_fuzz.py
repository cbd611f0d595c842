"""Property-based fuzzing of the OpenAPI document, valid and invalid requests: never a 5xx.

503 is the fail-closed answer of the checks (a stale projection) and is allowed; every other
5xx is a defect, and every error is problem JSON (the recipients' unsubscribe pages answer
HTML). ``CONSENT_FUZZ_EXAMPLES`` raises the examples per operation for longer runs.
"""

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.http.problems import PROBLEM_JSON
from entrypoints.settings import Mode, Settings

EXAMPLES = int(os.environ.get("CONSENT_FUZZ_EXAMPLES", "15"))
# POST /v1/feedback reads a report as it came (message/rfc822, multipart/report): bytes.
schemathesis.serializer.alias(["message/rfc822", "multipart/report"], "application/octet-stream")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    settings = Settings(
        mode=Mode.EMBEDDED, data_dir=tmp_path_factory.mktemp("fuzz") / "var", check_wait_s=0.05
    )
    services = build_api(settings)
    _, token = services.keys.create("fuzz", list(Scope))
    app = create_app(health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services)
    yield app, token
    services.close()


def test_no_request_gets_a_server_error(served: tuple[Any, str]) -> None:
    app, token = served
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = list(api.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has an invalid operation"
    assert len(operations) > 20
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    exercised = 0
    for operation, mode in itertools.product(operations, modes):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HypothesisHealthCheck)
        )
        def run(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            where = (case.method, case.formatted_path, response.status_code, response.content[:300])
            if response.status_code == 503:
                assert response.headers.get("retry-after"), where
                return
            assert response.status_code < 500, where
            if response.status_code >= 400:
                kind = response.headers["content-type"][0]
                # A recipient's browser gets an HTML page on the links in a message, and an
                # auditor's on the auditors' pages.
                link = case.formatted_path.startswith(("/u/", "/c/", "/p/", "/audit/"))
                page = link and kind.startswith("text/html")
                assert kind.startswith(PROBLEM_JSON) or page, where

        try:
            run()
        except Unsatisfiable:
            # An operation without inputs has no invalid request to make.
            assert mode is schemathesis.GenerationMode.NEGATIVE
            continue
        exercised += 1
    assert exercised > len(operations)
