"""RFC 9162 Merkle functions against the certificate-transparency reference vectors and an
independent, literal recursive transcription of RFC 9162 2.1.1, 2.1.3 and 2.1.4."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.integrity import merkle

LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index 0-based, tree size, audit path) from the CT reference tests (1-based there).
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


# ---- an independent transcription of the RFC, written for the tests --------------------------
def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_verify_inclusion(leaf: bytes, m: int, n: int, path: list[bytes], root: bytes) -> bool:
    """Recompute the root top-down by replaying the RFC's recursion on the path."""

    def climb(m: int, n: int, path: list[bytes]) -> bytes | None:
        if n == 1:
            return leaf if not path else None
        if not path:
            return None
        k = _k(n)
        *rest, top = path
        if m < k:
            left = climb(m, k, rest)
            return None if left is None else _h(b"\x01" + left + top)
        right = climb(m - k, n - k, rest)
        return None if right is None else _h(b"\x01" + top + right)

    return climb(m, n, list(path)) == root


def leaf_hashes(entries: list[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(e) for e in entries]


# ---- the RFC 6962 / 9162 reference vectors ---------------------------------------------------
def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert merkle.root_from_leaf_hashes([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_reference_trees_match_the_vectors(size: int) -> None:
    assert merkle.root_from_leaf_hashes(leaf_hashes(LEAVES[:size])).hex() == ROOTS[size - 1]
    assert ref_mth(LEAVES[:size]).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_vectors_and_verify(index: int, size: int, path: list[str]) -> None:
    leaves = leaf_hashes(LEAVES[:size])
    proof = merkle.inclusion_path(index, size, merkle.list_subtree(leaves))
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(ROOTS[size - 1])
    assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
    assert ref_verify_inclusion(leaves[index], index, size, proof, root)


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors_and_verify(first: int, second: int, proof: list[str]) -> None:
    leaves = leaf_hashes(LEAVES[:second])
    got = merkle.consistency_path(first, second, merkle.list_subtree(leaves))
    assert [p.hex() for p in got] == proof
    assert merkle.verify_consistency(
        first, second, bytes.fromhex(ROOTS[first - 1]), bytes.fromhex(ROOTS[second - 1]), got
    )


def test_a_tampered_inclusion_proof_or_wrong_index_is_rejected() -> None:
    leaves = leaf_hashes(LEAVES)
    root = bytes.fromhex(ROOTS[7])
    proof = merkle.inclusion_path(5, 8, merkle.list_subtree(leaves))
    assert not merkle.verify_inclusion(leaves[5], 4, 8, proof, root)
    assert not merkle.verify_inclusion(leaves[4], 5, 8, proof, root)
    assert not merkle.verify_inclusion(leaves[5], 5, 8, proof[:-1], root)
    assert not merkle.verify_inclusion(leaves[5], 5, 8, [*proof, proof[0]], root)


def test_a_consistency_proof_against_a_forged_old_root_is_rejected() -> None:
    leaves = leaf_hashes(LEAVES)
    proof = merkle.consistency_path(6, 8, merkle.list_subtree(leaves))
    forged = bytes.fromhex(ROOTS[4])
    assert not merkle.verify_consistency(6, 8, forged, bytes.fromhex(ROOTS[7]), proof)
    assert not merkle.verify_consistency(6, 8, bytes.fromhex(ROOTS[5]), forged, proof)


# ---- against the independent implementation on arbitrary trees -------------------------------
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_proofs_equal_the_literal_rfc_recursion_for_any_tree(
    entries: list[bytes], data: st.DataObject
) -> None:
    n = len(entries)
    leaves = leaf_hashes(entries)
    subtree = merkle.list_subtree(leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    assert root == ref_mth(entries)
    m = data.draw(st.integers(0, n - 1))
    path = merkle.inclusion_path(m, n, subtree)
    assert path == ref_path(m, entries)
    assert merkle.verify_inclusion(leaves[m], m, n, path, root)
    assert ref_verify_inclusion(leaves[m], m, n, path, root)
    first = data.draw(st.integers(1, n))
    proof = merkle.consistency_path(first, n, subtree)
    assert proof == ref_subproof(first, entries, True)
    assert merkle.verify_consistency(first, n, ref_mth(entries[:first]), root, proof)
