"""Unsubscribe keys from settings: generated once when embedded, demanded in production."""

import base64
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from entrypoints.bootstrap import unsubscribe_base_url
from entrypoints.bootstrap_keys import build_token_codec
from entrypoints.settings import UNSUBSCRIBE_KEY_FILE, Mode, Settings
from ledger.domain.errors import ConfigurationError, UnknownTokenKeyError

NEW = base64.b64encode(b"n" * 32).decode()
OLD = base64.b64encode(b"o" * 32).decode()


def test_embedded_mode_generates_a_private_key_once(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "var")
    token = build_token_codec(settings).issue(subject="p-1")
    key_file = tmp_path / "var" / UNSUBSCRIBE_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert build_token_codec(settings).verify(token).subject == "p-1"
    assert settings.link_base_url == "http://127.0.0.1:8000"


def test_production_without_keys_is_a_clear_error() -> None:
    settings = Settings(mode=Mode.PRODUCTION, pg_dsn="postgresql://nowhere/db")
    with pytest.raises(ConfigurationError, match="CONSENT_UNSUBSCRIBE_KEYS"):
        build_token_codec(settings)


def test_given_keys_rotate_newest_first() -> None:
    old_only = Settings(mode=Mode.PRODUCTION, unsubscribe_keys=SecretStr(f"k1:{OLD}"))
    rotated = Settings(mode=Mode.PRODUCTION, unsubscribe_keys=SecretStr(f"k2:{NEW},k1:{OLD}"))
    before = build_token_codec(old_only).issue(subject="p-1")
    codec = build_token_codec(rotated)
    assert codec.verify(before).subject == "p-1"
    assert codec.signing_key_id == "k2"
    with pytest.raises(UnknownTokenKeyError):
        build_token_codec(old_only).verify(codec.issue(subject="p-1"))


def test_production_links_need_an_https_public_url() -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_PUBLIC_URL"):
        unsubscribe_base_url(Settings(mode=Mode.PRODUCTION))
    with pytest.raises(ConfigurationError, match="https"):
        unsubscribe_base_url(Settings(mode=Mode.PRODUCTION, public_url="http://x.example"))
    settings = Settings(mode=Mode.PRODUCTION, public_url="https://x.example/api")
    assert unsubscribe_base_url(settings) == "https://x.example/api"
