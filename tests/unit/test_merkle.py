"""The Merkle prover against a naive RFC 9162 reference, and the offline verifier against both."""

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence

import pytest

from ledger.audit.tlog.merkle import (
    LeafIndexError,
    MalformedHashError,
    MemoryNodeStore,
    MissingNodeError,
    NodeKey,
    TreeSizeError,
    consistency_proof,
    inclusion_proof,
    new_nodes,
    root,
)
from ledger.audit.tlog.verify import (
    ConsistencyProofError,
    InclusionProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# Run in a fresh interpreter: which modules does importing the offline verifier pull in?
_IMPORTS_PROBE = """
import json, sys
before = set(sys.modules)
import ledger.audit.tlog.note, ledger.audit.tlog.verify
print(json.dumps(sorted(set(sys.modules) - before)))
"""
# cryptography, with the binary modules it loads (its Rust bindings, and cffi's backend).
_CRYPTOGRAPHY_TOP_LEVEL = {"cryptography", "_cffi_backend", "_openssl"}
_AUDIT_MODULES = {
    "ledger",
    "ledger.audit",
    "ledger.audit.tlog",
    "ledger.audit.tlog.merkle",
    "ledger.audit.tlog.note",
    "ledger.audit.tlog.verify",
}

# --- Reference: RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1, transcribed literally. ---------
# Deliberately naive (recursion over lists of entries) and sharing no code with the prover.


def _ref_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _ref_k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _ref_hash(b"")
    if n == 1:
        return _ref_hash(b"\x00" + d[0])
    k = _ref_k(n)
    return _ref_hash(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# --- Fixtures ---------------------------------------------------------------------------------

MAX_SIZE = 40
ENTRIES = [f"consent event {i}".encode() for i in range(MAX_SIZE)]

# The test leaves of RFC 6962 / RFC 9162 implementations (certificate-transparency, Trillian).
RFC_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
RFC_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def build_store(entries: Sequence[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for size, entry in enumerate(entries):
        store.put_nodes(new_nodes(size=size, leaf_hashes=[leaf_hash(entry)], store=store))
    return store


class CountingStore:
    """Wraps a store and records every batch of keys read from it."""

    def __init__(self, inner: MemoryNodeStore) -> None:
        self.inner = inner
        self.calls: list[list[NodeKey]] = []

    def get_nodes(self, keys: Sequence[NodeKey], /) -> Mapping[NodeKey, bytes]:
        self.calls.append(list(keys))
        return self.inner.get_nodes(keys)


@pytest.fixture(scope="module")
def store() -> MemoryNodeStore:
    return build_store(ENTRIES)


@pytest.fixture(scope="module")
def rfc_store() -> MemoryNodeStore:
    return build_store(RFC_LEAVES)


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


# --- Known answers ----------------------------------------------------------------------------


def test_reference_reproduces_the_published_roots_of_the_rfc_test_leaves() -> None:
    assert [ref_mth(RFC_LEAVES[:n]).hex() for n in range(1, 9)] == RFC_ROOTS


def test_prover_reproduces_the_published_roots(rfc_store: MemoryNodeStore) -> None:
    assert [root(size=n, store=rfc_store).hex() for n in range(1, 9)] == RFC_ROOTS


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert root(size=0, store=MemoryNodeStore()) == hashlib.sha256(b"").digest()


def test_prover_reproduces_published_proofs(rfc_store: MemoryNodeStore) -> None:
    leaf0_in_8 = [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [h.hex() for h in inclusion_proof(index=0, size=8, store=rfc_store)] == leaf0_in_8
    assert [h.hex() for h in consistency_proof(first=1, second=8, store=rfc_store)] == leaf0_in_8
    assert [h.hex() for h in consistency_proof(first=6, second=8, store=rfc_store)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in consistency_proof(first=2, second=5, store=rfc_store)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


def test_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()


# --- Prover equals reference, verifier accepts every honest proof -----------------------------


def test_roots_equal_the_reference(store: MemoryNodeStore) -> None:
    for size in range(MAX_SIZE + 1):
        assert root(size=size, store=store) == ref_mth(ENTRIES[:size]), size


def test_inclusion_proofs_equal_the_reference_and_verify(store: MemoryNodeStore) -> None:
    for size in range(1, MAX_SIZE + 1):
        tree_root = ref_mth(ENTRIES[:size])
        for index in range(size):
            proof = inclusion_proof(index=index, size=size, store=store)
            assert proof == ref_path(index, ENTRIES[:size]), (index, size)
            leaf = leaf_hash(ENTRIES[index])
            verify_inclusion(index=index, size=size, leaf=leaf, proof=proof, root=tree_root)


def test_consistency_proofs_equal_the_reference_and_verify(store: MemoryNodeStore) -> None:
    for second in range(1, MAX_SIZE + 1):
        for first in range(1, second + 1):
            proof = consistency_proof(first=first, second=second, store=store)
            assert proof == ref_proof(first, ENTRIES[:second]), (first, second)
            verify_consistency(
                first=first,
                second=second,
                first_root=ref_mth(ENTRIES[:first]),
                second_root=ref_mth(ENTRIES[:second]),
                proof=proof,
            )


# --- Tampering is rejected --------------------------------------------------------------------


def test_tampered_inclusion_proofs_are_rejected(store: MemoryNodeStore) -> None:
    for size in range(1, MAX_SIZE + 1):
        tree_root = root(size=size, store=store)
        for index in range(size):
            leaf = leaf_hash(ENTRIES[index])
            proof = inclusion_proof(index=index, size=size, store=store)
            forgeries = [
                *([*proof[:i], _flip(p, i % 32), *proof[i + 1 :]] for i, p in enumerate(proof)),
                *([*proof[:i], *proof[i + 1 :]] for i in range(len(proof))),
                [*proof, tree_root],
            ]
            for forged in forgeries:
                with pytest.raises(InclusionProofError):
                    verify_inclusion(
                        index=index, size=size, leaf=leaf, proof=forged, root=tree_root
                    )
            for other in range(size):
                if other != index:
                    with pytest.raises(InclusionProofError):
                        verify_inclusion(
                            index=other, size=size, leaf=leaf, proof=proof, root=tree_root
                        )
            # A checkpoint of another size commits to another root.
            for other_size in range(index + 1, MAX_SIZE + 1):
                if other_size != size:
                    with pytest.raises(InclusionProofError):
                        verify_inclusion(
                            index=index,
                            size=other_size,
                            leaf=leaf,
                            proof=proof,
                            root=root(size=other_size, store=store),
                        )
            with pytest.raises(InclusionProofError):
                verify_inclusion(
                    index=index, size=size, leaf=leaf, proof=proof, root=_flip(tree_root, 0)
                )
            with pytest.raises(InclusionProofError):
                verify_inclusion(
                    index=index, size=size, leaf=_flip(leaf, 5), proof=proof, root=tree_root
                )


def _refused(a: int, b: int, root_a: bytes, root_b: bytes, proof: Sequence[bytes]) -> None:
    """The verifier refuses this consistency claim."""
    with pytest.raises(ConsistencyProofError):
        verify_consistency(first=a, second=b, first_root=root_a, second_root=root_b, proof=proof)


def test_tampered_consistency_proofs_are_rejected(store: MemoryNodeStore) -> None:
    roots = [root(size=size, store=store) for size in range(MAX_SIZE + 1)]
    for second in range(2, MAX_SIZE + 1):
        for first in range(1, second):
            proof = consistency_proof(first=first, second=second, store=store)
            forgeries = [
                *([*proof[:i], _flip(p, i % 32), *proof[i + 1 :]] for i, p in enumerate(proof)),
                *([*proof[:i], *proof[i + 1 :]] for i in range(len(proof))),
                [*proof, roots[first]],
            ]
            for forged in forgeries:
                _refused(first, second, roots[first], roots[second], forged)
            for first_root, second_root in [
                (_flip(roots[first], 0), roots[second]),
                (roots[first], _flip(roots[second], 31)),
                (roots[first - 1], roots[second]),
            ]:
                _refused(first, second, first_root, second_root, proof)
            # Claimed for other sizes (with their true roots), only the honest proof would pass.
            for other_first, other_second in [(first + 1, second), (first, second + 1)]:
                if other_first > other_second or other_second > MAX_SIZE:
                    continue
                honest = consistency_proof(first=other_first, second=other_second, store=store)
                if honest == proof:
                    continue
                _refused(other_first, other_second, roots[other_first], roots[other_second], proof)


def test_verifier_refuses_impossible_inclusion_claims() -> None:
    leaf = leaf_hash(b"x")
    for index, size in [(0, 0), (1, 1), (-1, 4), (4, 4)]:
        with pytest.raises(InclusionProofError) as caught:
            root_from_inclusion_proof(index=index, size=size, leaf=leaf, proof=[])
        assert (caught.value.index, caught.value.size) == (index, size)
    with pytest.raises(InclusionProofError):
        root_from_inclusion_proof(index=0, size=2, leaf=leaf, proof=[b"short"])
    with pytest.raises(InclusionProofError):
        root_from_inclusion_proof(index=0, size=1, leaf=b"short", proof=[])
    assert root_from_inclusion_proof(index=0, size=1, leaf=leaf, proof=[]) == leaf


def test_verifier_refuses_impossible_consistency_claims() -> None:
    empty_root = hashlib.sha256(b"").digest()
    some_root = leaf_hash(b"x")
    # The empty tree is not a valid first tree, not even with an empty proof.
    with pytest.raises(ConsistencyProofError) as caught:
        verify_consistency(
            first=0, second=1, first_root=empty_root, second_root=some_root, proof=[]
        )
    assert (caught.value.first, caught.value.second) == (0, 1)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(
            first=0, second=0, first_root=empty_root, second_root=empty_root, proof=[]
        )
    with pytest.raises(ConsistencyProofError):
        verify_consistency(first=3, second=2, first_root=some_root, second_root=some_root, proof=[])
    with pytest.raises(ConsistencyProofError):
        verify_consistency(first=3, second=4, first_root=some_root, second_root=some_root, proof=[])


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    tree_root = leaf_hash(b"x")
    verify_consistency(first=5, second=5, first_root=tree_root, second_root=tree_root, proof=[])
    with pytest.raises(ConsistencyProofError):
        verify_consistency(
            first=5, second=5, first_root=tree_root, second_root=_flip(tree_root, 0), proof=[]
        )
    with pytest.raises(ConsistencyProofError):
        verify_consistency(
            first=5, second=5, first_root=tree_root, second_root=tree_root, proof=[tree_root]
        )


# --- Prover errors ----------------------------------------------------------------------------


def test_prover_refuses_requests_outside_the_tree(store: MemoryNodeStore) -> None:
    for index, size in [(0, 0), (3, 3), (-1, 3)]:
        with pytest.raises(LeafIndexError) as leaf_caught:
            inclusion_proof(index=index, size=size, store=store)
        assert (leaf_caught.value.index, leaf_caught.value.size) == (index, size)
    for first, second in [(0, 3), (4, 3), (-1, 2)]:
        with pytest.raises(TreeSizeError) as size_caught:
            consistency_proof(first=first, second=second, store=store)
        assert size_caught.value.size == first
    with pytest.raises(TreeSizeError):
        root(size=-1, store=store)
    with pytest.raises(TreeSizeError):
        new_nodes(size=-1, leaf_hashes=[], store=store)


def test_a_tree_larger_than_the_store_is_reported_missing(store: MemoryNodeStore) -> None:
    with pytest.raises(MissingNodeError) as caught:
        root(size=MAX_SIZE + 1, store=store)
    assert (caught.value.level, caught.value.index) == (0, MAX_SIZE)
    with pytest.raises(MissingNodeError):
        inclusion_proof(index=0, size=MAX_SIZE + 1, store=store)
    with pytest.raises(MissingNodeError):
        new_nodes(size=3, leaf_hashes=[leaf_hash(b"x")], store=MemoryNodeStore())


def test_leaf_hashes_must_be_sha256_digests() -> None:
    with pytest.raises(MalformedHashError) as caught:
        new_nodes(
            size=7, leaf_hashes=[leaf_hash(b"a"), b"entry, not hash"], store=MemoryNodeStore()
        )
    assert caught.value.index == 8


def test_appending_nothing_adds_nothing(store: MemoryNodeStore) -> None:
    counting = CountingStore(store)
    assert new_nodes(size=MAX_SIZE, leaf_hashes=[], store=counting) == {}
    assert counting.calls == []


# --- Cost: O(log n) reads in one batch --------------------------------------------------------


def test_appending_reads_only_the_right_edge_in_one_batch() -> None:
    counting = CountingStore(MemoryNodeStore())
    for size in range(2000):
        calls_before = len(counting.calls)
        nodes = new_nodes(size=size, leaf_hashes=[leaf_hash(b"%d" % size)], store=counting)
        counting.inner.put_nodes(nodes)
        reads = counting.calls[calls_before:]
        assert len(reads) <= 1
        assert all(len(keys) <= size.bit_length() for keys in reads)
        # The leaf, then one perfect parent per trailing zero bit of the new size.
        trailing_zeros = ((size + 1) & -(size + 1)).bit_length() - 1
        assert len(nodes) == 1 + trailing_zeros
    calls_before = len(counting.calls)
    batch = [leaf_hash(b"batch %d" % i) for i in range(500)]
    new_nodes(size=2000, leaf_hashes=batch, store=counting)
    assert len(counting.calls) == calls_before + 1
    assert len(counting.calls[-1]) <= (2000).bit_length()


def test_proofs_read_logarithmically_many_nodes_in_one_batch() -> None:
    inner = MemoryNodeStore()
    size = 1000
    inner.put_nodes(
        new_nodes(size=0, leaf_hashes=[leaf_hash(b"%d" % i) for i in range(size)], store=inner)
    )
    counting = CountingStore(inner)
    bound = 2 * size.bit_length()
    for index in range(0, size, 37):
        counting.calls.clear()
        inclusion_proof(index=index, size=size, store=counting)
        assert len(counting.calls) == 1
        assert all(len(call) <= bound for call in counting.calls)
    for first in range(1, size, 41):
        counting.calls.clear()
        consistency_proof(first=first, second=size, store=counting)
        root(size=first, store=counting)
        assert len(counting.calls) == 2
        assert all(len(call) <= bound for call in counting.calls)


# --- Offline: an auditor needs nothing of the operator's beyond this package ------------------


def test_the_offline_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", _IMPORTS_PROBE], capture_output=True, check=True, text=True
    )
    imported: list[str] = json.loads(result.stdout)
    foreign = {
        name
        for name in imported
        if name.partition(".")[0] not in sys.stdlib_module_names
        and name.partition(".")[0] not in _CRYPTOGRAPHY_TOP_LEVEL
        and name not in _AUDIT_MODULES
    }
    assert foreign == set()
