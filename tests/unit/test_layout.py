"""The packages import one another one way only, as the README's Layout section says."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "ledger", "relay", "access", "consumers", "projections", "entrypoints")
MAY_IMPORT = {
    "schemas": set(),
    "ledger": {"schemas"},
    "relay": {"ledger", "schemas"},
    "access": {"ledger", "schemas"},
    "projections": {"ledger.domain", "schemas"},
    "consumers": {"projections", "ledger.domain", "schemas"},
    "entrypoints": {"ledger", "relay", "access", "consumers", "projections", "schemas"},
}
PURE = ("ledger/domain", "ledger/audit/tlog")
"""Folders that hold rules and proofs only: they import nothing of the project's storage."""
TLOG_MAY_USE = {"cryptography", "ledger"}
"""Besides the standard library, what the auditor's copy of the proof code may import."""


def _imports(path: Path) -> set[str]:
    """Every module a module imports, anywhere in it (a function's own imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _ours(module: str, package: str) -> str | None:
    """The package (or allowed sub-package) of ours that ``module`` belongs to, if any."""
    top = module.split(".", maxsplit=1)[0]
    if top not in PACKAGES or top == package:
        return None
    if module == "ledger.domain" or module.startswith("ledger.domain."):
        return "ledger.domain"
    return top


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_it_may(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules
    allowed = MAY_IMPORT[package]
    wrong = {}
    for path in modules:
        ours = {_ours(module, package) for module in _imports(path)} - {None}
        # ledger.domain is part of ledger: allowed wherever ledger is.
        bad = {
            name
            for name in ours
            if name not in allowed and not (name == "ledger.domain" and "ledger" in allowed)
        }
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(str(name) for name in bad)
    assert wrong == {}


@pytest.mark.parametrize("folder", PURE)
def test_the_pure_folders_import_no_storage(folder: str) -> None:
    modules = sorted((ROOT / folder).rglob("*.py"))
    assert modules
    storage = (
        "ledger.store",
        "ledger.privacy",
        "ledger.write",
        "ledger.audit.store",
        "psycopg",
        "sqlite3",
        "eventsourcing",
        "kafka",
        "relay",
        "projections",
        "consumers",
    )
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imports(path) if any(m == s or m.startswith(s + ".") for s in storage)
        )
        for path in modules
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_proof_code_needs_only_the_standard_library_and_cryptography() -> None:
    modules = sorted((ROOT / "ledger/audit/tlog").rglob("*.py"))
    assert modules
    wrong = {}
    for path in modules:
        for module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names:
                continue
            outside = top == "ledger" and not module.startswith("ledger.audit.tlog")
            if outside or top not in TLOG_MAY_USE:
                wrong[str(path.relative_to(ROOT))] = module
    assert wrong == {}
