"""``verify.py``: one file an auditor runs offline to check a proof bundle.

It is the project's own checking code (``ledger/audit/tlog``: RFC 9162 proofs, C2SP signed
notes, canonical entries, bundles), which needs only the standard library and `cryptography`,
laid end to end with its imports of itself removed, and a command line. The same code checks
bundles in the CLI and in this file: there is one verifier, not two.
"""

import re
from functools import cache
from importlib.resources import files

__all__ = ["verifier_script"]

MODULES = ("verify.py", "entry.py", "note.py", "bundle.py")
"""In dependency order: each uses only the standard library, `cryptography` and those before."""
_OWN_IMPORT = re.compile(r"^from ledger\.audit\.tlog\.\w+ import [^\n(]+$", re.MULTILINE)

HEADER = '''#!/usr/bin/env python3
"""Vérifie un paquet de preuves du registre des consentements, hors ligne.

    python3 verify.py bundle.json [--key CLÉ]

Ne demande que Python 3.11+ et le paquet « cryptography ». Chaque événement du paquet est
vérifié : ses octets mènent, par sa preuve d'inclusion RFC 9162, à la racine du point de contrôle
signé (note signée C2SP, Ed25519). Sans --key, la clé du paquet lui-même est utilisée : cela
prouve l'intégrité, pas l'identité du signataire. Code exit : 0 accepté, 1 refusé.
"""
'''

MAIN = """

def main(argv: "list[str] | None" = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Vérifie un paquet de preuves, hors ligne.")
    parser.add_argument("bundle", help="le fichier bundle.json")
    parser.add_argument("--key", help="la clé de vérification publiée par l'opérateur")
    args = parser.parse_args(argv)
    with open(args.bundle, encoding="utf-8") as handle:
        text = handle.read()
    try:
        report = verify_bundle(load_bundle(text), verifier_key=args.key)
    except AuditError as error:
        print(f"REFUSÉ : {error}", file=sys.stderr)
        return 1
    if report.trusted_key_from_bundle:
        print("Attention : vérifié avec la clé du paquet lui-même ; donnez --key.", file=sys.stderr)
    print(
        f"ACCEPTÉ : {report.entries} événement(s) prouvé(s) dans l'arbre de "
        f"{report.tree_size} feuilles du journal {report.origin}."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
"""


@cache
def verifier_script() -> str:
    """The text of ``verify.py``."""
    package = files("ledger.audit.tlog")
    parts = [HEADER]
    for name in MODULES:
        source = package.joinpath(name).read_text(encoding="utf-8")
        parts.append(f"\n# ---- ledger/audit/tlog/{name} ----\n")
        parts.append(_OWN_IMPORT.sub("", source))
    parts.append(MAIN)
    return "".join(parts)
