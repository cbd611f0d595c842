"""The distribution as a user gets it: `python -m build` makes a wheel and an sdist; the wheel,
installed in a clean virtual environment, gives a `consent-ledger serve` that answers on the
embedded default; the sdist builds the same wheel.

Slow (a clean environment installs every dependency): marked ``package``, left out of the
default run, run by `make test-package`.
"""

import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli import clean_env
from tests.conftest import free_port

pytestmark = pytest.mark.package
ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60


def _run(argv: list[str], **kwargs: object) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=900, **kwargs
    )  # type: ignore[call-overload]
    assert result.returncode == 0, f"{argv[:4]}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return str(result.stdout)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    return out


def _files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if ".dist-info/" not in name}


def test_build_makes_a_wheel_and_an_sdist_with_the_package_data(dist: Path) -> None:
    (wheel,) = dist.glob("consent_ledger-*.whl")
    (sdist,) = dist.glob("consent_ledger-*.tar.gz")
    files = _files(wheel)
    for data in (
        "entrypoints/http/pages/templates/base.html",
        "entrypoints/http/pages/locale/fr/LC_MESSAGES/common.po",
        "projections/sql/001_projections.sql",
        "ledger/privacy/keystore/sql/sqlite.sql",
        "schemas/json/Event.json",
    ):
        assert data in files, data
    assert not any(name.startswith("tests/") for name in files)
    rebuilt = dist / "from-sdist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(rebuilt), str(sdist)])
    (again,) = rebuilt.glob("consent_ledger-*.whl")
    assert _files(again) == files


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment with the wheel installed (pinned by constraints.txt)."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)])
    (wheel,) = dist.glob("consent_ledger-*.whl")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # Outside the source tree: a build's egg-info there would pass for an installed copy.
    _run([*pip, "-c", str(ROOT / "constraints.txt"), str(wheel)], env=_outside(venv), cwd=venv)
    return venv


def _outside(venv: Path) -> dict[str, str]:
    """An environment that cannot import the source tree: only the installed package."""
    env = clean_env()
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return env


@pytest.fixture
def serving(installed: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = _outside(installed) | {"CONSENT_DATA_DIR": str(tmp_path / "var")}
    cli = str(installed / "bin" / "consent-ledger")
    key = json.loads(_run([cli, "init"], env=env, cwd=tmp_path))["key"]
    port = free_port()
    process = subprocess.Popen(
        [cli, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.2)
        yield url, {"Authorization": f"Bearer {key}"}
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_installed_wheel_serves_on_the_embedded_default(
    installed: Path, serving: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, admin = serving
    where = _run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import entrypoints; print(entrypoints.__file__)",
        ],
        env=_outside(installed),
        cwd=tmp_path,
    )
    version = _run(
        [str(installed / "bin" / "consent-ledger"), "--version"], env=_outside(installed)
    )

    assert str(installed) in where
    assert version == "consent-ledger 0.1.0\n"
    assert httpx.get(f"{url}/healthz", timeout=5).json()["mode"] == "embedded"
    registered = httpx.post(
        f"{url}/v1/purposes",
        json={"purpose": "newsletter", "legal_basis": "consent", "description": "News"},
        headers=admin,
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    assert httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js", timeout=10).status_code == 200
    assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200
