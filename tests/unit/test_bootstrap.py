"""Wiring from settings: embedded mode makes its own secrets, production demands them."""

import base64
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from entrypoints.bootstrap import build_ledger
from entrypoints.settings import MASTER_KEY_FILE, SUBJECT_SECRET_FILE, Mode, Settings
from ledger.domain.errors import ConfigurationError


def test_embedded_mode_generates_private_secrets_once(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "var")
    first = build_ledger(settings)
    subject = first.hasher.subject_for("a@example.org")
    first.close()
    for name in (SUBJECT_SECRET_FILE, MASTER_KEY_FILE):
        mode = stat.S_IMODE((tmp_path / "var" / name).stat().st_mode)
        assert mode == 0o600
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    second = build_ledger(settings)
    assert second.hasher.subject_for("a@example.org") == subject
    second.close()


@pytest.mark.parametrize("missing", ["CONSENT_SUBJECT_SECRET", "CONSENT_MASTER_KEY"])
def test_production_mode_without_a_secret_is_a_clear_error(missing: str) -> None:
    key = SecretStr(base64.b64encode(b"x" * 32).decode())
    values = {"subject_secret": key, "master_key": key}
    del values[missing.removeprefix("CONSENT_").lower()]
    settings = Settings.model_validate(
        {"mode": Mode.PRODUCTION, "pg_dsn": "postgresql://nowhere/db", **values}
    )
    with pytest.raises(ConfigurationError, match=missing):
        build_ledger(settings)
