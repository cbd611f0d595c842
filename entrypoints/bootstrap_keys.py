"""Key material of a deployment, from its settings: given in production, generated once under the
data directory in embedded mode (the subject secret, the master key, link and topic keys)."""

from pathlib import Path

from pydantic import SecretStr

from entrypoints.settings import (
    SUBJECT_SECRET_FILE,
    TOPIC_KEY_FILE,
    UNSUBSCRIBE_KEY_FILE,
    Mode,
    Settings,
)
from ledger.domain.errors import ConfigurationError
from ledger.domain.identity import SubjectHasher
from ledger.links.tokens import UnsubscribeTokenCodec, parse_keys
from ledger.privacy.files import private_directory
from ledger.privacy.secrets import decode_secret, load_or_create_secret
from ledger.write.service import Clock, utc_now
from schemas.record_auth import RecordKeys


def prepare_data_dir(path: Path) -> Path:
    """The embedded data directory, private to the user running the ledger."""
    return private_directory(path)


def deployment_secret(
    settings: Settings, *, file_name: str, value: SecretStr | None, setting: str
) -> bytes:
    """A secret: generated once under the data directory when embedded, given in production."""
    if settings.mode is Mode.EMBEDDED:
        return load_or_create_secret(prepare_data_dir(settings.data_dir) / file_name)
    return decode_secret(value.get_secret_value() if value else None, name=setting)


def build_hasher(settings: Settings) -> SubjectHasher:
    """The keyed hash of addresses, with the secret of this deployment."""
    return SubjectHasher(
        secret=deployment_secret(
            settings,
            file_name=SUBJECT_SECRET_FILE,
            value=settings.subject_secret,
            setting="CONSENT_SUBJECT_SECRET",
        )
    )


EMBEDDED_KEY_ID = "local"
"""The id of a key generated under the data directory (unsubscribe links, topic records)."""


def _keyring(
    settings: Settings, *, value: SecretStr | None, setting: str, file_name: str
) -> dict[str, bytes]:
    """Keys given as ``key_id:base64,...`` (newest first), else (embedded only) one generated
    once under the data directory."""
    if value is not None:
        return parse_keys(value.get_secret_value(), setting=setting)
    if settings.mode is Mode.EMBEDDED:
        secret = deployment_secret(settings, file_name=file_name, value=None, setting=setting)
        return {EMBEDDED_KEY_ID: secret}
    msg = f"{setting} is not set: give key_id:base64 of 32 random bytes (newest first)"
    raise ConfigurationError(msg)


def build_token_codec(settings: Settings, *, clock: Clock = utc_now) -> UnsubscribeTokenCodec:
    """The codec of unsubscribe links: the keys given, else (embedded only) one generated once."""
    keys = _keyring(
        settings,
        value=settings.unsubscribe_keys,
        setting="CONSENT_UNSUBSCRIBE_KEYS",
        file_name=UNSUBSCRIBE_KEY_FILE,
    )
    return UnsubscribeTokenCodec(keys, clock=clock)


def build_topic_keys(settings: Settings) -> RecordKeys:
    """The keys that authenticate the event topic's records (relay, consumers, replay)."""
    return RecordKeys(
        _keyring(
            settings,
            value=settings.topic_keys,
            setting="CONSENT_TOPIC_KEYS",
            file_name=TOPIC_KEY_FILE,
        )
    )
