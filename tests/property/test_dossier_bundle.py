"""Whatever a person's history, every event of their dossier is in their bundle, and verifies."""

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoints.bootstrap import build_api
from entrypoints.http.audit.dossier import build_dossier
from entrypoints.http.history import person_bundle
from entrypoints.http.pages import Pages
from entrypoints.http.services import ApiServices
from entrypoints.settings import Mode, Settings
from ledger.audit.tlog.bundle import verify_bundle
from ledger.audit.tlog.entry import decode_entry
from ledger.domain.aggregates import aggregate_id
from ledger.domain.errors import LedgerError
from schemas import CATALOG_SUBJECT
from tests.property.histories import T0, _catalog, command, steps

PEOPLE = 2


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServices]:
    data = tmp_path_factory.mktemp("dossier") / "var"
    services = build_api(Settings(mode=Mode.EMBEDDED, data_dir=Path(data)))
    for catalog_command in _catalog(reconsent_from=T0 + timedelta(days=200)):
        services.ledger.execute(catalog_command)
    yield services
    services.close()


@pytest.fixture(scope="module")
def pages() -> Pages:
    return Pages()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(steps(people=PEOPLE, mailing_lists=True), min_size=1, max_size=12),
    lang=st.sampled_from(["fr", "en"]),
)
def test_every_event_of_the_dossier_is_in_the_bundle_and_verifies(
    services: ApiServices, pages: Pages, history: list[tuple[Any, ...]], lang: str
) -> None:
    subjects = [f"p-{uuid4().hex[:12]}" for _ in range(PEOPLE)]
    for n, item in enumerate(history):
        try:
            services.ledger.execute(command(subjects, item, T0 + n * timedelta(days=3)))
        except LedgerError:
            continue  # refused (confirming nothing, say): recorded nowhere, shown nowhere
    services.audit.sealer.seal_all()
    services.audit.sealer.checkpoint()
    catalog = set(services.ledger.store.positions_of(aggregate_id(CATALOG_SUBJECT)).values())
    for subject in subjects:
        dossier = build_dossier(services, pages, lang=lang, subject=subject)
        if dossier is None:
            assert services.ledger.history(subject) == []
            continue
        bundle = person_bundle(services, subject)
        report = verify_bundle(bundle, verifier_key=services.audit.signer.verifier_key())
        in_bundle = {
            decode_entry(base64.b64decode(entry["entry"])).position: entry["index"]
            for entry in bundle["entries"]
        }
        assert report.entries == len(dossier.timeline) == len(services.ledger.history(subject))
        for line in dossier.timeline:
            assert line.proof.state == "ok"
            assert in_bundle[line.position] == line.proof.index
        # A deciding event is one of the person's, shown and proven above, or the catalog's.
        shown = {line.position for line in dossier.timeline} | catalog
        assert {s.deciding for s in dossier.status} - {None} <= shown
