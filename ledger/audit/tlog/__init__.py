"""Tamper-evident audit: the RFC 9162 Merkle tree over the ledger, its proofs and checkpoints.

``verify`` and ``note`` are the offline half an auditor runs; ``merkle`` is the prover. The
whole package imports only the standard library and `cryptography`.
"""

from ledger.audit.tlog import merkle, note, verify
from ledger.audit.tlog.merkle import *  # noqa: F403
from ledger.audit.tlog.note import *  # noqa: F403
from ledger.audit.tlog.verify import *  # noqa: F403

__all__: list[str] = []
__all__ += merkle.__all__
__all__ += note.__all__
__all__ += verify.__all__
