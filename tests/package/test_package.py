"""The distribution as a user gets it: `python -m build` makes a wheel and an sdist; the wheel,
installed in a clean virtual environment, gives a `consent-ledger serve` that answers on the
embedded default; the sdist builds the same wheel.

Slow (a clean environment installs every dependency): marked ``package``, left out of the
default run, run by `make test-package`.
"""

import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli import clean_env, run_ok, serving

pytestmark = pytest.mark.package
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run_ok([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
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
    run_ok([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(rebuilt), str(sdist)])
    (again,) = rebuilt.glob("consent_ledger-*.whl")
    assert _files(again) == files


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment with the wheel installed (pinned by constraints.txt)."""
    venv = tmp_path_factory.mktemp("venv")
    run_ok([sys.executable, "-m", "venv", str(venv)])
    (wheel,) = dist.glob("consent_ledger-*.whl")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # Outside the source tree: a build's egg-info there would pass for an installed copy.
    run_ok([*pip, "-c", str(ROOT / "constraints.txt"), str(wheel)], env=_outside(venv), cwd=venv)
    return venv


def _outside(venv: Path) -> dict[str, str]:
    """An environment that cannot import the source tree: only the installed package."""
    env = clean_env()
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return env


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = _outside(installed) | {"CONSENT_DATA_DIR": str(tmp_path / "var")}
    cli = str(installed / "bin" / "consent-ledger")
    key = json.loads(run_ok([cli, "init"], env=env, cwd=tmp_path))["key"]
    with serving(cli, env, cwd=tmp_path) as url:
        yield url, {"Authorization": f"Bearer {key}"}


def test_the_installed_wheel_serves_on_the_embedded_default(
    installed: Path, served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, admin = served
    where = run_ok(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import entrypoints; print(entrypoints.__file__)",
        ],
        env=_outside(installed),
        cwd=tmp_path,
    )
    version = run_ok(
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
