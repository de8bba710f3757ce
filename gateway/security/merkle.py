"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0, section 2.1) behind the audit log.

Oversight bodies and the people concerned must be able to check that the record of who saw
what was only ever appended to. Each audit entry is a leaf; a signed root commits to the whole
log; an inclusion proof shows one entry is in it; a consistency proof shows a later log
extends an earlier one without rewriting it. Following RFC 9162 exactly, rather than a home-made
variant, lets any independent CT-style verifier check the gateway's log.

Hashes are SHA-256. Leaves and inner nodes are hashed with different prefixes (0x00, 0x01) so a
leaf can never be passed off as an inner node, which would allow forged proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "CompactRange",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

_HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
# MTH({}) = HASH(), RFC 9162 §2.1.1.
_EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """An inclusion or consistency proof does not prove what it claims; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    """Return MTH({d}) = HASH(0x00 || d), the hash of one audit entry (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash MTH(D_n) of a log whose leaves have these hashes."""
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return PATH(index, D_n), the audit path of one leaf, ordered from the leaf upwards.

    RFC 9162 §2.1.3.1 defines the path recursively; walking it top-down hashes each sibling
    subtree once, and the siblings are disjoint, so the whole proof costs O(n) hashes.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            path.append(_subtree_root(leaf_hashes, middle, end))
            end = middle
        else:
            path.append(_subtree_root(leaf_hashes, start, middle))
            start = middle
    path.reverse()
    return path


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return PROOF(old_size, D_n): that the log of the first old_size leaves is a prefix.

    Follows SUBPROOF of RFC 9162 §2.1.4.1, walked top-down like inclusion_proof. A proof
    between equal sizes is empty. A proof from the empty tree is refused, because every log
    extends the empty tree and such a proof would say nothing.
    """
    size = len(leaf_hashes)
    if not 0 < old_size <= size:
        raise ValueError(f"old size must be between 1 and the tree size {size}, got {old_size}")
    proof: list[bytes] = []
    start, end = 0, size
    # SUBPROOF's flag b: true while the subtree at hand starts where the old tree starts, so
    # the old root is known to the verifier and need not be sent.
    old_root_known = True
    while old_size != end:
        middle = start + _split(end - start)
        if old_size <= middle:
            proof.append(_subtree_root(leaf_hashes, middle, end))
            end = middle
        else:
            proof.append(_subtree_root(leaf_hashes, start, middle))
            start = middle
            old_root_known = False
    if not old_root_known:
        proof.append(_subtree_root(leaf_hashes, start, end))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf is at index in the tree of tree_size leaves with this root.

    Raises ProofError when it is not. The algorithm is RFC 9162 §2.1.3.2, step by step.
    """
    _require_hash("leaf hash", leaf_hash)
    _require_hash("root", root)
    for position, node in enumerate(proof):
        _require_hash(f"proof hash #{position}", node)
    # Step 1.
    if not 0 <= index < tree_size:
        raise ProofError(f"leaf index {index} is outside a tree of {tree_size} leaves")
    # Steps 2 and 3.
    fn, sn = index, tree_size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:
            raise ProofError(
                f"proof has {len(proof)} hashes, more than the path from leaf {index} "
                f"to the root of a tree of {tree_size} leaves"
            )
        if fn & 1 or fn == sn:
            r = _node_hash(p, r)
            # On the right border a node may have no right sibling: climb past those levels.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise ProofError(
            f"proof has {len(proof)} hashes, fewer than the path from leaf {index} "
            f"to the root of a tree of {tree_size} leaves"
        )
    if r != root:
        raise ProofError(
            f"proof for leaf {index} leads to root {r.hex()}, not the expected {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of new_size leaves extends the tree of old_size leaves.

    Raises ProofError when it does not. RFC 9162 §2.1.4.2 covers 0 < old_size < new_size and
    is followed step by step; the edge cases it leaves open are decided as the
    transparency-dev/merkle test vectors do: equal sizes need an empty proof and equal roots
    (the empty tree's root being SHA-256 of nothing), and a proof from the empty tree is
    refused as meaningless.
    """
    if old_size < 0:
        raise ProofError(f"tree sizes cannot be negative, got old size {old_size}")
    if old_size > new_size:
        raise ProofError(
            f"old tree size {old_size} is larger than new tree size {new_size}: a log never shrinks"
        )
    if old_size == new_size:
        _verify_same_tree(old_size, old_root, new_root, proof)
        return
    if old_size == 0:
        raise ProofError(
            "a consistency proof from the empty tree proves nothing (every log extends it); "
            "check the new root directly"
        )
    _require_hash("old root", old_root)
    _require_hash("new root", new_root)
    for position, node in enumerate(proof):
        _require_hash(f"proof hash #{position}", node)
    # Step 1.
    if not proof:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is empty")
    # Step 2: a power-of-two old tree is itself a subtree of the new one, so its root is
    # the first node of the path and the proof leaves it out.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Step 3.
    fn, sn = old_size - 1, new_size - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError(
                f"consistency proof from size {old_size} to {new_size} has too many hashes"
            )
        if fn & 1 or fn == sn:
            fr = _node_hash(c, fr)
            sr = _node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} has too few hashes"
        )
    if fr != old_root:
        raise ProofError(
            f"consistency proof leads to old root {fr.hex()}, not the expected {old_root.hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof leads to new root {sr.hex()}, not the expected {new_root.hex()}"
        )


class CompactRange:
    """The roots of the perfect subtrees that cover a log: O(log n) hashes for any size n.

    An append-only log of millions of audit entries needs its current root after every
    append, without holding or rehashing all leaves. Bit i of the size is set exactly when a
    perfect subtree of 2**i leaves is held; the hashes run from the largest (leftmost)
    subtree to the smallest. Persist ``size`` and ``hashes`` to resume after a restart.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError(f"a log cannot have {size} leaves")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a log of {size} leaves is covered by {size.bit_count()} perfect subtrees, "
                f"got {len(hashes)} hashes"
            )
        for position, node in enumerate(hashes):
            _require_hash(f"subtree hash #{position}", node, error=ValueError)
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, largest first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf, merging equal-height subtrees as in binary addition."""
        _require_hash("leaf hash", leaf_hash, error=ValueError)
        self._hashes.append(leaf_hash)
        # Each trailing one bit of the old size is a subtree as tall as the one just
        # completed on its right: merge them, carrying upwards.
        carry = self._size
        while carry & 1:
            right = self._hashes.pop()
            left = self._hashes.pop()
            self._hashes.append(_node_hash(left, right))
            carry >>= 1
        self._size += 1

    def root(self) -> bytes:
        """Return MTH of the leaves appended so far.

        RFC 9162 §2.1.1 splits at the largest power of two below n, so the tree is these
        perfect subtrees left to right, each hashed with the combination of those on its right.
        """
        if not self._hashes:
            return _EMPTY_ROOT
        result = self._hashes[-1]
        for node in reversed(self._hashes[:-1]):
            result = _node_hash(node, result)
        return result


def _verify_same_tree(
    size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        raise ProofError(
            f"trees of equal size {size} need an empty consistency proof, got {len(proof)} hashes"
        )
    if old_root != new_root:
        raise ProofError(f"two trees of size {size} have different roots")
    if size == 0 and old_root != _EMPTY_ROOT:
        raise ProofError(
            "the root of an empty tree is SHA-256 of the empty string (RFC 9162 §2.1.1), "
            f"got {old_root.hex()}"
        )


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) in one pass over the leaves and O(log n) memory."""
    subtree = CompactRange()
    for index in range(start, end):
        subtree.append(leaf_hashes[index])
    return subtree.root()


def _split(size: int) -> int:
    """The largest power of two smaller than size (size >= 2), where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def _node_hash(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || left || right), RFC 9162 §2.1.1."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _require_hash(
    what: str, value: bytes, *, error: type[ValueError] = ProofError
) -> None:
    if len(value) != _HASH_SIZE:
        raise error(f"{what} must be a {_HASH_SIZE}-byte SHA-256 hash, got {len(value)} bytes")
