"""The prover side of the RFC 9162 Merkle tree, kept as stored perfect subtrees.

The tree never exists in memory as a whole. What is stored is the hash of every *perfect*
subtree: node ``(level, index)`` is the hash of leaves ``[index * 2**level, (index + 1) *
2**level)``, and level 0 holds the leaf hashes themselves. Such a node never changes once its
last leaf is appended, so the store is append-only like the ledger. Any range the RFC's
algorithms ask for is either one of those nodes or a range ending at the tree size, which splits
into at most log2(size) stored nodes; every operation here therefore reads O(log n) nodes, in a
single `NodeStore.get_nodes` call, and hashes O(log n) times (plus one hash per appended leaf).

This module imports only the standard library and `ledger.audit.tlog.verify`.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from ledger.audit.tlog.verify import HASH_SIZE, AuditError, node_hash

__all__ = [
    "LeafIndexError",
    "MalformedHashError",
    "MemoryNodeStore",
    "MissingNodeError",
    "NodeKey",
    "NodeStore",
    "TreeSizeError",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proofs",
    "new_nodes",
    "root",
]

NodeKey: TypeAlias = tuple[int, int]
"""``(level, index)``: the perfect subtree of leaves ``[index << level, (index+1) << level)``."""

_EMPTY_ROOT = hashlib.sha256(b"").digest()


class LeafIndexError(AuditError, IndexError):
    """A proof was asked for leaf ``index``, which is not in the tree of ``size`` leaves."""

    def __init__(self, *, index: int, size: int) -> None:
        super().__init__(f"leaf {index} is not in a tree of size {size}")
        self.index = index
        self.size = size


class TreeSizeError(AuditError, ValueError):
    """A tree ``size`` no request can name: negative, or a consistency proof's sizes reversed."""

    def __init__(self, *, size: int, reason: str) -> None:
        super().__init__(f"tree size {size}: {reason}")
        self.size = size


class MalformedHashError(AuditError, ValueError):
    """The leaf hash to be appended at ``index`` is not a SHA-256 digest."""

    def __init__(self, *, index: int) -> None:
        super().__init__(f"leaf hash {index} is not {HASH_SIZE} bytes")
        self.index = index


class MissingNodeError(AuditError, LookupError):
    """The store lacks node ``(level, index)``: the tree is shorter than asked, or damaged."""

    def __init__(self, *, level: int, index: int) -> None:
        super().__init__(f"node (level {level}, index {index}) is not stored")
        self.level = level
        self.index = index


class NodeStore(Protocol):
    """Where perfect-subtree hashes live; each call may be a database round trip."""

    def get_nodes(self, keys: Sequence[NodeKey], /) -> Mapping[NodeKey, bytes]:
        """Return the stored hash of each of ``keys`` that exists; absent keys are left out."""
        ...


@dataclass(frozen=True)
class MemoryNodeStore:
    """A `NodeStore` in a dict, for tests and for auditors rebuilding a tree from scratch."""

    nodes: dict[NodeKey, bytes] = field(default_factory=dict, repr=False)

    def get_nodes(self, keys: Sequence[NodeKey], /) -> dict[NodeKey, bytes]:
        """Return the stored hash of each of ``keys`` that exists."""
        return {key: self.nodes[key] for key in keys if key in self.nodes}

    def put_nodes(self, nodes: Mapping[NodeKey, bytes], /) -> None:
        """Store ``nodes``, as returned by `new_nodes`."""
        self.nodes.update(nodes)


def new_nodes(*, size: int, leaf_hashes: Sequence[bytes], store: NodeStore) -> dict[NodeKey, bytes]:
    """Return every node that appending ``leaf_hashes`` to the tree of ``size`` leaves completes.

    The result holds the new leaves at level 0 and each perfect subtree whose last leaf is among
    them; persisting it makes the store describe the tree of ``size + len(leaf_hashes)`` leaves.
    The only nodes read are the old tree's right-edge subtrees that gain a new sibling.
    """
    if size < 0:
        raise TreeSizeError(size=size, reason="is negative")
    for offset, leaf in enumerate(leaf_hashes):
        if len(leaf) != HASH_SIZE:
            raise MalformedHashError(index=size + offset)
    end = size + len(leaf_hashes)
    # A perfect subtree of the old tree matters only if it is a left child whose parent is new;
    # those are the right-edge subtrees (one per set bit of size) below the first level that
    # gains a node.
    left_siblings = [
        (level, (size >> level) - 1)
        for level in range(size.bit_length())
        if (size >> level) & 1 and (size >> (level + 1)) < (end >> (level + 1))
    ]
    old = _fetch(store, left_siblings)
    nodes: dict[NodeKey, bytes] = {(0, size + i): leaf for i, leaf in enumerate(leaf_hashes)}
    level = 1
    while (size >> level) < (end >> level):
        for index in range(size >> level, end >> level):
            left_key = (level - 1, 2 * index)
            left = nodes[left_key] if left_key in nodes else old[left_key]
            nodes[(level, index)] = node_hash(left, nodes[(level - 1, 2 * index + 1)])
        level += 1
    return nodes


def root(*, size: int, store: NodeStore) -> bytes:
    """Return MTH of the first ``size`` leaves (RFC 9162 section 2.1.1)."""
    if size < 0:
        raise TreeSizeError(size=size, reason="is negative")
    if size == 0:
        return _EMPTY_ROOT
    (hash_,) = _range_hashes(store, [(0, size)])
    return hash_


def inclusion_proof(*, index: int, size: int, store: NodeStore) -> list[bytes]:
    """Return PATH(index, D[size]) of RFC 9162 section 2.1.3.1, the leaf's sibling first."""
    return _range_hashes(store, _inclusion_siblings(index, size))


def inclusion_proofs(
    *, indices: Sequence[int], size: int, store: NodeStore
) -> dict[int, list[bytes]]:
    """`inclusion_proof` of each of ``indices`` in one tree, its nodes read in one call."""
    siblings = {index: _inclusion_siblings(index, size) for index in indices}
    hashes = iter(_range_hashes(store, [r for ranges in siblings.values() for r in ranges]))
    return {index: [next(hashes) for _ in ranges] for index, ranges in siblings.items()}


def _inclusion_siblings(index: int, size: int) -> list[tuple[int, int]]:
    if not 0 <= index < size:
        raise LeafIndexError(index=index, size=size)
    siblings: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            siblings.append((split, end))
            end = split
        else:
            siblings.append((start, split))
            start = split
    # The descent meets the siblings root first; the RFC lists them leaf first.
    siblings.reverse()
    return siblings


def consistency_proof(*, first: int, second: int, store: NodeStore) -> list[bytes]:
    """Return PROOF(first, D[second]) of RFC 9162 section 2.1.4.1; empty for equal sizes."""
    if not 0 < first <= second:
        raise TreeSizeError(size=first, reason=f"needs 0 < first <= second ({second})")
    ranges: list[tuple[int, int]] = []
    start, end = 0, second
    # SUBPROOF's flag b: whether the subtree reached so far still starts at leaf 0.
    from_origin = True
    while first != end:
        split = start + _largest_power_of_two_below(end - start)
        if first <= split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
            from_origin = False
    if not from_origin:
        ranges.append((start, end))
    ranges.reverse()
    return _range_hashes(store, ranges)


def _largest_power_of_two_below(n: int) -> int:
    """Return the k of RFC 9162: the largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_nodes(start: int, end: int) -> list[NodeKey]:
    """Split ``[start, end)`` into stored nodes, largest first, as MTH splits it.

    Correct for the only ranges the RFC algorithms produce: perfect subtrees, and ranges that end
    at the tree size and start at a multiple of a power of two at least as long as the range.
    """
    keys: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _range_hashes(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """Return MTH of each leaf range in ``ranges``, reading all their nodes in one call."""
    splits = [_perfect_nodes(start, end) for start, end in ranges]
    stored = _fetch(store, sorted({key for keys in splits for key in keys}))
    hashes: list[bytes] = []
    for keys in splits:
        # MTH splits off the largest perfect subtree on the left, so fold from the right.
        acc = stored[keys[-1]]
        for key in reversed(keys[:-1]):
            acc = node_hash(stored[key], acc)
        hashes.append(acc)
    return hashes


def _fetch(store: NodeStore, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
    """Read ``keys`` in one call, or raise `MissingNodeError` for the first one absent."""
    if not keys:
        return {}
    found = store.get_nodes(keys)
    for level, index in keys:
        if (level, index) not in found:
            raise MissingNodeError(level=level, index=index)
    return found
