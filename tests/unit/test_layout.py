"""The packages import one another one way only, as the README's Layout section says."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "ledger", "consumers", "projections", "entrypoints")
MAY_IMPORT = {
    "schemas": set(),
    "ledger": {"schemas"},
    "projections": {"schemas"},
    "consumers": {"projections", "schemas"},
    "entrypoints": {"ledger", "consumers", "projections", "schemas"},
}


def _imported(path: Path) -> set[str]:
    """Our packages a module imports, anywhere in it (a function's own imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names)
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_it_may(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported(path) - MAY_IMPORT[package] - {package})
        for path in modules
    }
    assert {path: names for path, names in wrong.items() if names} == {}
