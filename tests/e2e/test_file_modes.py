"""Files holding personal data are the owner's alone: the SQLite file, its directory, exports."""

import json
import stat
from pathlib import Path

from tests.cli import cli_output

ANN = "ann@example.org"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _record(data: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.txt"
    policy.write_text("Privacy policy v1\n")
    cli_output(data, "purpose", "register", "newsletter", "--legal-basis", "consent",
               "--description", "Newsletter", "--direct-marketing")  # fmt: skip
    cli_output(data, "policy", "publish", "v1", str(policy), "--purpose", "newsletter")
    cli_output(data, "grant", "--address", ANN, "--purpose", "newsletter", "--policy-version", "v1")


def test_a_new_data_directory_and_its_sqlite_file_are_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    _record(data, tmp_path)

    assert _mode(data) == 0o700
    files = [path for path in data.iterdir() if path.is_file()]
    assert any(path.name.endswith(".sqlite3") for path in files)
    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}


def test_an_existing_open_directory_and_sqlite_file_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    data.chmod(0o777)
    old_file = data / "consent-ledger.sqlite3"
    old_file.touch()
    old_file.chmod(0o644)

    _record(data, tmp_path)

    # Others keep only the search bit: no listing, no creating or replacing a file.
    assert _mode(data) == 0o711
    assert _mode(old_file) == 0o600
    assert all(_mode(path) & 0o077 == 0 for path in data.iterdir() if path.is_file())


def test_exports_are_written_readable_by_their_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "var"
    _record(data, tmp_path)
    export, bundle = tmp_path / "person.json", tmp_path / "bundle.json"
    export.write_text("an older export\n")
    export.chmod(0o644)

    cli_output(data, "export", "--address", ANN, "--out", str(export))
    subject = json.loads(export.read_text())["subject"]
    cli_output(data, "audit", "export", "--subject", subject, "--out", str(bundle))

    assert (_mode(export), _mode(bundle)) == (0o600, 0o600)
    assert ANN in export.read_text()
