"""A database that does not answer is a 503 with Retry-After, whatever layer noticed it."""

import psycopg
import pytest
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from entrypoints.http import problems


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection"),
        psycopg.InterfaceError("the connection is closed"),
        OperationalError("terminating connection"),
        InterfaceError("connection already closed"),
    ],
)
def test_a_lost_database_is_a_retryable_503(error: Exception) -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    answer = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(problems.RETRY_AFTER_S)
    assert answer.json()["type"].endswith("/database-unavailable")
