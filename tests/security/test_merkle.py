"""The audit log's Merkle tree against RFC 9162 and the transparency-dev/merkle vectors."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.security import merkle
from gateway.security.merkle import (
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc9162"
INCLUSION_PROBES = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY_PROBES = sorted((VECTORS / "consistency").rglob("*.json"))

# The leaves of the happy-path trees in the vectors (the RFC 6962 reference inputs).
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]


def _reference_mth(leaf_hashes: list[bytes]) -> bytes:
    """MTH straight from the recursive definition in RFC 9162 §2.1.1, as an oracle."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    left, right = _reference_mth(leaf_hashes[:k]), _reference_mth(leaf_hashes[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(2, "big")) for i in range(n)]


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _probe(path: Path) -> dict:
    probe = json.loads(path.read_text())
    probe["proof"] = [_b64(node) for node in probe["proof"] or []]
    return probe


def _probe_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def test_vector_folders_hold_every_published_probe():
    assert (len(INCLUSION_PROBES), len(CONSISTENCY_PROBES)) == (98, 98)


@pytest.mark.parametrize("path", INCLUSION_PROBES, ids=_probe_id)
def test_published_inclusion_probe_is_accepted_or_rejected_as_published(path):
    probe = _probe(path)

    def check():
        verify_inclusion(
            _b64(probe["leafHash"]),
            probe["leafIdx"],
            probe["treeSize"],
            probe["proof"],
            _b64(probe["root"]),
        )

    if probe["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


@pytest.mark.parametrize("path", CONSISTENCY_PROBES, ids=_probe_id)
def test_published_consistency_probe_is_accepted_or_rejected_as_published(path):
    probe = _probe(path)

    def check():
        verify_consistency(
            probe["size1"],
            probe["size2"],
            _b64(probe["root1"]),
            _b64(probe["root2"]),
            probe["proof"],
        )

    if probe["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


def test_generated_proofs_equal_the_published_happy_paths():
    hashes = [leaf_hash(leaf) for leaf in REFERENCE_LEAVES]
    checked = 0
    for path in INCLUSION_PROBES + CONSISTENCY_PROBES:
        if path.name != "happy-path.json":
            continue
        probe = _probe(path)
        if "leafIdx" in probe:
            tree = hashes[: probe["treeSize"]]
            assert root(tree) == _b64(probe["root"])
            assert inclusion_proof(tree, probe["leafIdx"]) == probe["proof"]
        else:
            tree = hashes[: probe["size2"]]
            assert root(tree) == _b64(probe["root2"])
            assert root(hashes[: probe["size1"]]) == _b64(probe["root1"])
            assert consistency_proof(tree, probe["size1"]) == probe["proof"]
        checked += 1
    assert checked == 10


def test_leaf_hash_prefixes_a_zero_byte():
    assert leaf_hash(b"entry") == hashlib.sha256(b"\x00entry").digest()


def test_root_of_the_empty_log_is_the_hash_of_nothing():
    assert root([]) == hashlib.sha256(b"").digest()


def test_root_follows_the_rfc_definition_for_every_size_up_to_300():
    hashes = _leaves(300)
    for size in range(301):
        assert root(hashes[:size]) == _reference_mth(hashes[:size]), size


def test_compact_range_root_equals_the_tree_root_for_every_size_up_to_300():
    hashes = _leaves(300)
    log = CompactRange()
    assert log.root() == _reference_mth([])
    for size, node in enumerate(hashes, start=1):
        log.append(node)
        assert log.size == size
        assert log.root() == _reference_mth(hashes[:size]), size


def test_compact_range_holds_one_hash_per_set_bit_of_its_size():
    log = CompactRange()
    for node in _leaves(1000):
        log.append(node)
    assert len(log.hashes) == bin(1000).count("1") == 6


def test_compact_range_resumes_from_its_persisted_state():
    hashes = _leaves(77)
    before_restart = CompactRange()
    for node in hashes[:45]:
        before_restart.append(node)

    resumed = CompactRange(before_restart.size, before_restart.hashes)
    for node in hashes[45:]:
        resumed.append(node)

    assert resumed.root() == _reference_mth(hashes)


def test_compact_range_refuses_a_state_whose_hashes_do_not_fit_its_size():
    with pytest.raises(ValueError, match="covered by 2 perfect subtrees, got 1"):
        CompactRange(3, _leaves(1))


def test_compact_range_refuses_a_leaf_hash_that_is_not_sha256_sized():
    with pytest.raises(ValueError, match="32-byte"):
        CompactRange().append(b"entry")


def test_every_inclusion_proof_verifies_in_trees_up_to_64_leaves():
    hashes = _leaves(64)
    for size in range(1, 65):
        tree = hashes[:size]
        tree_root = root(tree)
        for index in range(size):
            verify_inclusion(tree[index], index, size, inclusion_proof(tree, index), tree_root)


def test_every_consistency_proof_verifies_in_trees_up_to_64_leaves():
    hashes = _leaves(64)
    roots = [root(hashes[:size]) for size in range(65)]
    for new_size in range(1, 65):
        tree = hashes[:new_size]
        for old_size in range(1, new_size + 1):
            proof = consistency_proof(tree, old_size)
            verify_consistency(old_size, new_size, roots[old_size], roots[new_size], proof)


def test_inclusion_proof_fails_for_a_tampered_leaf():
    tree = _leaves(13)
    proof = inclusion_proof(tree, 6)
    with pytest.raises(ProofError, match="leads to root"):
        verify_inclusion(leaf_hash(b"forged entry"), 6, 13, proof, root(tree))


def test_inclusion_proof_fails_against_a_tampered_root():
    tree = _leaves(13)
    tampered = _leaves(13)
    tampered[2] = leaf_hash(b"rewritten entry")
    with pytest.raises(ProofError, match="leads to root"):
        verify_inclusion(tree[6], 6, 13, inclusion_proof(tree, 6), root(tampered))


def test_inclusion_proof_fails_for_another_index():
    tree = _leaves(13)
    with pytest.raises(ProofError):
        verify_inclusion(tree[6], 7, 13, inclusion_proof(tree, 6), root(tree))


def test_short_inclusion_proof_is_reported_as_too_short():
    tree = _leaves(13)
    proof = inclusion_proof(tree, 6)
    with pytest.raises(ProofError, match="fewer than the path"):
        verify_inclusion(tree[6], 6, 13, proof[:-1], root(tree))


def test_consistency_proof_fails_when_the_old_log_was_rewritten():
    tree = _leaves(20)
    rewritten = _leaves(11)
    rewritten[4] = leaf_hash(b"rewritten entry")
    proof = consistency_proof(tree, 11)
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(11, 20, root(rewritten), root(tree), proof)


def test_consistency_proof_fails_against_a_tampered_new_root():
    tree = _leaves(20)
    tampered = _leaves(20)
    tampered[15] = leaf_hash(b"rewritten entry")
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(11, 20, root(tree[:11]), root(tampered), consistency_proof(tree, 11))


def test_consistency_from_a_larger_to_a_smaller_log_is_refused():
    with pytest.raises(ProofError, match="never shrinks"):
        verify_consistency(5, 4, root(_leaves(5)), root(_leaves(4)), [])


@given(
    size=st.integers(min_value=2, max_value=64),
    data=st.data(),
)
def test_flipping_any_bit_of_an_inclusion_proof_breaks_it(size, data):
    tree = _leaves(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(tree, index)
    position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    node = bytearray(proof[position])
    node[bit // 8] ^= 1 << (bit % 8)
    proof[position] = bytes(node)
    with pytest.raises(ProofError):
        verify_inclusion(tree[index], index, size, proof, root(tree))


@given(
    new_size=st.integers(min_value=2, max_value=64),
    data=st.data(),
)
def test_flipping_any_bit_of_a_consistency_proof_breaks_it(new_size, data):
    tree = _leaves(new_size)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size - 1))
    proof = consistency_proof(tree, old_size)
    position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    node = bytearray(proof[position])
    node[bit // 8] ^= 1 << (bit % 8)
    proof[position] = bytes(node)
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, root(tree[:old_size]), root(tree), proof)


def test_proof_generation_hashes_each_inner_node_at_most_once(monkeypatch):
    # A naive recursive generator rehashes the same subtrees at every level; the audit log
    # serves proofs over millions of entries, so generation must stay linear.
    calls = 0
    node_hash = merkle._node_hash

    def counting(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return node_hash(left, right)

    monkeypatch.setattr(merkle, "_node_hash", counting)
    tree = _leaves(1000)
    inclusion_proof(tree, 377)
    assert calls < len(tree)
    calls = 0
    consistency_proof(tree, 377)
    assert calls < len(tree)


def test_consistency_proof_from_the_empty_tree_is_not_generated():
    with pytest.raises(ValueError, match="between 1 and the tree size 5"):
        consistency_proof(_leaves(5), 0)


def test_inclusion_proof_for_a_leaf_beyond_the_tree_is_not_generated():
    with pytest.raises(ValueError, match="outside a tree of 5 leaves"):
        inclusion_proof(_leaves(5), 5)
