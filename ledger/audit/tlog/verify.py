"""Offline checks of RFC 9162 inclusion and consistency proofs, and the audit error hierarchy.

This module imports only the standard library, so an auditor can copy it (with ``note.py`` for
signed checkpoints) and check a proof bundle without trusting anything else the operator ships.

Every error the audit raises on purpose is an ``AuditError``::

    AuditError
    +-- InclusionProofError       an inclusion proof does not lead to the root (verify.py)
    +-- ConsistencyProofError     a consistency proof does not link the two roots (verify.py)
    +-- LeafIndexError            a proof asked for a leaf not in the tree (merkle.py)
    +-- TreeSizeError             a tree size no request can name (merkle.py)
    +-- MalformedHashError        a leaf hash to append is not a SHA-256 digest (merkle.py)
    +-- MissingNodeError          the node store lacks a node the tree needs (merkle.py)
    +-- BundleError               a proof bundle does not prove what it claims (bundle.py)
    +-- CheckpointFormatError     a checkpoint body is not a C2SP tlog-checkpoint (note.py)
    +-- KeyFormatError            a key name, verifier key or seed is malformed (note.py)
    +-- SignatureError            no valid signature by the trusted key (note.py)
        +-- MalformedNoteError    the text is not a C2SP signed note at all (note.py)
"""

import hashlib
from collections.abc import Sequence

__all__ = [
    "HASH_SIZE",
    "AuditError",
    "ConsistencyProofError",
    "InclusionProofError",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every leaf, node and root hash (SHA-256)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class AuditError(Exception):
    """Base of every error the audit raises on purpose."""


class InclusionProofError(AuditError):
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves does not hold."""

    def __init__(self, *, index: int, size: int, reason: str) -> None:
        super().__init__(f"inclusion of leaf {index} in tree of size {size}: {reason}")
        self.index = index
        self.size = size


class ConsistencyProofError(AuditError):
    """The tree of ``first`` leaves is not proven to be a prefix of the tree of ``second``."""

    def __init__(self, *, first: int, second: int, reason: str) -> None:
        super().__init__(f"consistency of tree size {first} with tree size {second}: {reason}")
        self.first = first
        self.second = second


def leaf_hash(entry: bytes) -> bytes:
    """Return the RFC 9162 hash of a leaf: SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_inclusion_proof(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` leads to from the leaf hash ``leaf`` at ``index``.

    The steps and their order are those of RFC 9162 section 2.1.3.2; ``leaf`` is the leaf
    *hash* (see `leaf_hash`). Raise `InclusionProofError` when the proof cannot belong to a tree
    of ``size`` leaves at all (wrong length, bad hash sizes, index out of range).
    """

    def fail(reason: str) -> InclusionProofError:
        return InclusionProofError(index=index, size=size, reason=reason)

    if not 0 <= index < size:
        raise fail("the index is not inside the tree")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise fail(f"every hash must be {HASH_SIZE} bytes")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise fail("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip the levels where this node is a lone right-edge child, promoted unhashed.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise fail("the proof is shorter than the path to the root")
    return r


def verify_inclusion(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` leaves and ``root``.

    Raise `InclusionProofError` otherwise (RFC 9162 section 2.1.3.2).
    """
    computed = root_from_inclusion_proof(index=index, size=size, leaf=leaf, proof=proof)
    if computed != root:
        raise InclusionProofError(index=index, size=size, reason="the proof leads to another root")


def verify_consistency(
    *,
    first: int,
    second: int,
    first_root: bytes,
    second_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree of ``first`` leaves (``first_root``) is a prefix of the larger one.

    The steps and their order are those of RFC 9162 section 2.1.4.2. Equal sizes need an empty
    proof and equal roots. A tree of size 0 is refused: the RFC defines consistency proofs only
    for 0 < first, and the empty tree commits to nothing an auditor could hold the log to.
    Raise `ConsistencyProofError` when the proof does not hold.
    """

    def fail(reason: str) -> ConsistencyProofError:
        return ConsistencyProofError(first=first, second=second, reason=reason)

    if not 0 < first <= second:
        raise fail("sizes must satisfy 0 < first <= second")
    hashes = [first_root, second_root, *proof]
    if any(len(h) != HASH_SIZE for h in hashes):
        raise fail(f"every hash must be {HASH_SIZE} bytes")
    if first == second:
        if proof:
            raise fail("equal sizes take an empty proof")
        if first_root != second_root:
            raise fail("equal sizes with different roots")
        return
    fr, sr = _consistency_roots(first=first, second=second, first_root=first_root, proof=proof)
    if fr != first_root:
        raise fail("the proof does not lead to the first root")
    if sr != second_root:
        raise fail("the proof does not lead to the second root")


def _consistency_roots(
    *, first: int, second: int, first_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Return the roots of sizes ``first`` < ``second`` that ``proof`` leads to.

    Steps 1 to 6 of RFC 9162 section 2.1.4.2; the caller compares the roots (step 7).
    """

    def fail(reason: str) -> ConsistencyProofError:
        return ConsistencyProofError(first=first, second=second, reason=reason)

    if not proof:
        raise fail("the proof is empty")
    path = list(proof)
    # A power-of-two first tree is itself a node of the second tree, so the proof omits it.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise fail("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise fail("the proof is shorter than the path to the root")
    return fr, sr
