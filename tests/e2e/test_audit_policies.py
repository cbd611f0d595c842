"""Policy texts kept by `policy publish`, compared on the auditors' page, and announced."""

import hashlib
import html
import json
from pathlib import Path

from fastapi.testclient import TestClient

from access.apikeys import Scope
from entrypoints.bootstrap import build_api
from entrypoints.health import HealthCheck
from entrypoints.http import create_app
from entrypoints.settings import Mode, Settings
from schemas import PolicyChangeAnnounced, PolicyVersionPublished, parse_event
from tests.cli import cli_output, run_cli

V1 = "Nous envoyons une lettre mensuelle.\nVous pouvez vous désinscrire.\n"
V2 = "Nous envoyons une lettre mensuelle.\nNous partageons vos données avec nos partenaires.\n"


def test_published_texts_are_kept_compared_and_their_announcement_recorded(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    (tmp_path / "v1.txt").write_text(V1, encoding="utf-8")
    (tmp_path / "v2.txt").write_text(V2, encoding="utf-8")
    register = "purpose register newsletter --legal-basis consent --direct-marketing"
    cli_output(data, *register.split(), "--description", "Lettre mensuelle")
    cli_output(
        data,
        "policy",
        "publish",
        "2025-01",
        str(tmp_path / "v1.txt"),
        "--effective-at",
        "2025-01-01T00:00:00Z",
    )
    cli_output(
        data,
        "policy",
        "publish",
        "2025-06",
        str(tmp_path / "v2.txt"),
        "--effective-at",
        "2025-06-01T00:00:00Z",
        "--requires-reconsent",
    )
    announced = json.loads(
        cli_output(
            data,
            "policy",
            "announce",
            "2025-01",
            "2025-06",
            "--channel",
            "email",
            "--at",
            "2025-05-01T08:00:00Z",
        )
    )
    refused = run_cli(data, "policy", "announce", "2031-01", "--channel", "site")
    assert refused.returncode == 1
    assert "versions" in refused.stderr

    settings = Settings(mode=Mode.EMBEDDED, data_dir=data)
    services = build_api(settings)
    try:
        catalog = services.ledger.catalog()
        assert catalog.policies["2025-06"].text == V2
        assert catalog.policies["2025-06"].text_sha256 == hashlib.sha256(V2.encode()).hexdigest()
        [announcement] = catalog.state.announcements
        assert announcement.versions == ("2025-01", "2025-06")
        assert announcement.channel == "email"
        assert str(announcement.event_id) == announced["event_ids"][0]
        _key, secret = services.keys.create("dpo", [Scope.AUDIT])
        client = TestClient(
            create_app(
                health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services
            )
        )
        page = html.unescape(client.get("/audit/policies/2025-06", auth=("dpo", secret)).text)
        assert "L'empreinte SHA-256 de ce texte est bien celle enregistrée." in page
        assert "Modifications depuis la version 2025-01" in page
        assert "<ins>+ Nous partageons vos données avec nos partenaires.</ins>" in page
        assert "<del>\u2212 Vous pouvez vous désinscrire.</del>" in page
        assert "Annoncé par e-mail le 1 mai 2025 à 10:00 (heure de Paris)" in page
        back = html.unescape(
            client.get("/audit/policies/2025-01?from=2025-06&lang=en", auth=("dpo", secret)).text
        )
        assert "Changes from version 2025-06" in back
        assert client.get("/audit/policies/1999", auth=("dpo", secret)).status_code == 404
        client.close()
    finally:
        services.close()


def test_a_text_whose_hash_is_not_the_one_given_is_refused_naming_the_field(
    tmp_path: Path,
) -> None:
    services = build_api(Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "var"))
    _key, secret = services.keys.create("admin", [Scope.ADMIN])
    client = TestClient(
        create_app(health=HealthCheck(mode=Mode.EMBEDDED, probe=lambda: None), services=services)
    )
    try:
        answer = client.post(
            "/v1/policy-versions",
            json={
                "version": "v1",
                "text_sha256": "a" * 64,
                "text": V1,
                "effective_at": "2025-01-01T00:00:00Z",
            },
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert answer.status_code == 422
        assert "text_sha256" in answer.json()["detail"]
    finally:
        client.close()
        services.close()


def test_a_policy_version_written_before_texts_were_kept_reads_as_version_2() -> None:
    v1 = {
        "event_id": "00000000-0000-4000-8000-000000000001",
        "event_type": "PolicyVersionPublished",
        "schema_version": 1,
        "subject": "@catalog",
        "occurred_at": "2024-01-01T00:00:00Z",
        "recorded_at": "2024-01-01T00:00:00Z",
        "command_id": "c-1",
        "source": "admin",
        "actor": "cli",
        "version": "2024-01",
        "text_sha256": "a" * 64,
        "effective_at": "2024-01-01T00:00:00Z",
        "purposes": [],
        "requires_reconsent": False,
    }
    event = parse_event(v1)
    assert isinstance(event, PolicyVersionPublished)
    assert (event.schema_version, event.text) == (2, None)
    assert PolicyChangeAnnounced.catalog
