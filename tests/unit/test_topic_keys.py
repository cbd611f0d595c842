"""Topic keys from settings: generated once when embedded, demanded in production, rotatable."""

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from entrypoints.bootstrap_keys import build_topic_keys
from entrypoints.settings import TOPIC_KEY_FILE, Mode, Settings
from ledger.domain.errors import ConfigurationError
from schemas.record_auth import RecordAuthenticationError

NEW = base64.b64encode(b"n" * 32).decode()
OLD = base64.b64encode(b"o" * 32).decode()
RECORD: dict[str, Any] = {
    "topic": "consent.events.v1",
    "key": b"ann",
    "headers": [],
    "value": b"{}",
}


def _signed(mac: bytes) -> dict[str, Any]:
    return RECORD | {"headers": [("mac", mac)]}


def test_embedded_mode_generates_a_private_key_once(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "var")
    mac = build_topic_keys(settings).mac(**RECORD)
    assert stat.S_IMODE((tmp_path / "var" / TOPIC_KEY_FILE).stat().st_mode) == 0o600
    build_topic_keys(settings).verify(**_signed(mac))


def test_production_without_keys_is_a_clear_error() -> None:
    settings = Settings(mode=Mode.PRODUCTION, pg_dsn="postgresql://nowhere/db")
    with pytest.raises(ConfigurationError, match="CONSENT_TOPIC_KEYS"):
        build_topic_keys(settings)


def test_records_of_an_older_key_still_verify_after_a_rotation() -> None:
    old = build_topic_keys(Settings(mode=Mode.PRODUCTION, topic_keys=SecretStr(f"k1:{OLD}")))
    rotated = build_topic_keys(
        Settings(mode=Mode.PRODUCTION, topic_keys=SecretStr(f"k2:{NEW},k1:{OLD}"))
    )
    before = old.mac(**RECORD)
    rotated.verify(**_signed(before))
    assert rotated.mac(**RECORD).startswith(b"k2:")
    with pytest.raises(RecordAuthenticationError, match="unknown topic key"):
        old.verify(**_signed(rotated.mac(**RECORD)))
