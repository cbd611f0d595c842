"""The audit log: the sealer, the tree's storage, verification against the store, export.

The pure RFC 9162 and C2SP code an auditor may copy is `ledger.audit.tlog`.
"""
