"""Pure RFC 9162 (Certificate Transparency v2) Merkle tree functions, section 2.1.

Hashes are raw 32-byte ``bytes`` here; callers convert to lowercase hex at the edges. The tree
over ``n`` leaf hashes is addressed by ranges ``[start, end)``; proof generation takes a
``subtree`` function answering MTH(D[start:end]) so that an incremental store can answer from
its stored perfect subtrees while tests answer from a plain list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()

#: MTH(D[start:end]) for 0 <= start < end <= tree size.
SubtreeHash = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already leaf-hashed entries (iterative, O(n))."""
    if not leaves:
        return EMPTY_ROOT
    return list_subtree(leaves)(0, len(leaves))


def list_subtree(leaves: Sequence[bytes]) -> SubtreeHash:
    """A :data:`SubtreeHash` over an in-memory list of leaf hashes."""

    def subtree(start: int, end: int) -> bytes:
        size = end - start
        if size == 1:
            return leaves[start]
        k = largest_power_of_two_below(size)
        return node_hash(subtree(start, start + k), subtree(start + k, end))

    return subtree


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1, leaf-adjacent sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = largest_power_of_two_below(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start = start + k
    path.reverse()
    return path


def consistency_path(first: int, second: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1 (SUBPROOF with b = true)."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    proof: list[bytes] = []
    start, end, m, complete = 0, second, first, True
    # Iterative SUBPROOF(m, D[start:end], complete); elements collected top-down, then reversed.
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(subtree(start, end))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree ``second_root`` an append-only extension of ``first_root``?"""
    if first == second:
        return not proof and first_root == second_root
    if not 0 < first < second or not proof:
        return first == 0 and not proof and second >= 0
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is itself a node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
