"""Random trees: the prover's proofs verify offline, and batching appends changes nothing."""

from hypothesis import given
from hypothesis import strategies as st

from ledger.audit.tlog.merkle import (
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    new_nodes,
    root,
)
from ledger.audit.tlog.verify import leaf_hash, verify_consistency, verify_inclusion

TREE_SIZE = 5000


def _entry(index: int) -> bytes:
    return b"event %d" % index


def _build(size: int) -> MemoryNodeStore:
    store = MemoryNodeStore()
    # Uneven batches, so the shared tree does not depend on the code path under test below.
    start = 0
    while start < size:
        end = min(size, start + 1 + start % 97)
        hashes = [leaf_hash(_entry(i)) for i in range(start, end)]
        store.put_nodes(new_nodes(size=start, leaf_hashes=hashes, store=store))
        start = end
    return store


STORE = _build(TREE_SIZE)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=TREE_SIZE))
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def size_pairs(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(st.integers(min_value=1, max_value=TREE_SIZE))
    return draw(st.integers(min_value=1, max_value=second)), second


@given(index_and_size())
def test_inclusion_proofs_verify(case: tuple[int, int]) -> None:
    index, size = case
    proof = inclusion_proof(index=index, size=size, store=STORE)
    verify_inclusion(
        index=index,
        size=size,
        leaf=leaf_hash(_entry(index)),
        proof=proof,
        root=root(size=size, store=STORE),
    )


@given(size_pairs())
def test_consistency_proofs_verify(case: tuple[int, int]) -> None:
    first, second = case
    verify_consistency(
        first=first,
        second=second,
        first_root=root(size=first, store=STORE),
        second_root=root(size=second, store=STORE),
        proof=consistency_proof(first=first, second=second, store=STORE),
    )


@given(st.lists(st.integers(min_value=0, max_value=70), max_size=12))
def test_appending_in_chunks_equals_appending_one_by_one(chunks: list[int]) -> None:
    total = sum(chunks)
    hashes = [leaf_hash(_entry(i)) for i in range(total)]
    one_by_one = MemoryNodeStore()
    for size, leaf in enumerate(hashes):
        one_by_one.put_nodes(new_nodes(size=size, leaf_hashes=[leaf], store=one_by_one))
    chunked = MemoryNodeStore()
    size = 0
    for chunk in chunks:
        added = new_nodes(size=size, leaf_hashes=hashes[size : size + chunk], store=chunked)
        # Nothing already stored is ever rewritten: the store stays append-only.
        assert not added.keys() & chunked.nodes.keys()
        chunked.put_nodes(added)
        size += chunk
    assert chunked.nodes == one_by_one.nodes
    assert root(size=total, store=chunked) == root(size=total, store=one_by_one)
