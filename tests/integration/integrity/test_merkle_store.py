"""The incrementally kept Merkle tree on real SQLite and PostgreSQL stores."""

from __future__ import annotations

import threading

from ledger.integrity import merkle
from ledger.integrity.merkle_store import MerkleStore
from ledger.service import Ledger
from ledger.settings import Settings
from tests.integration.integrity.conftest import finish_run


def event_leaves(ledger: Ledger) -> list[tuple[int, bytes]]:
    return [(e.position, merkle.leaf_hash(bytes.fromhex(e.hash))) for e in ledger.reader.iterate()]


def test_the_tree_grows_with_the_ledger_and_its_root_matches_a_from_scratch_root(
    populated: Ledger, settings: Settings
) -> None:
    store = MerkleStore(settings, chunk=4)  # several commits per catch-up
    first = store.catch_up()
    finish_run(populated, "more")
    second = store.catch_up()
    leaves = [leaf for _, leaf in event_leaves(populated)]
    assert second.tree_size == len(leaves) > first.tree_size
    assert second.root == merkle.root_from_leaf_hashes(leaves)
    assert first.root == merkle.root_from_leaf_hashes(leaves[: first.tree_size])


def test_every_event_has_an_inclusion_proof_and_old_trees_a_consistency_proof(
    populated: Ledger, settings: Settings
) -> None:
    store = MerkleStore(settings)
    old = store.catch_up()
    finish_run(populated, "more")
    head = store.catch_up()
    for index, (position, leaf) in enumerate(event_leaves(populated)):
        proof = store.inclusion(position)
        assert proof["leaf_index"] == index
        path = [bytes.fromhex(p) for p in proof["audit_path"]]
        assert merkle.verify_inclusion(leaf, index, head.tree_size, path, head.root)
    consistency = store.consistency(old.tree_size, head.tree_size)
    assert merkle.verify_consistency(
        old.tree_size, head.tree_size, old.root, head.root, [bytes.fromhex(p) for p in consistency["proof"]]
    )


def test_concurrent_catch_ups_build_one_tree(populated: Ledger, settings: Settings) -> None:
    heads = []

    def catch_up() -> None:
        heads.append(MerkleStore(settings, chunk=3).catch_up())

    threads = [threading.Thread(target=catch_up) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    leaves = [leaf for _, leaf in event_leaves(populated)]
    assert {(h.tree_size, h.root) for h in heads} == {(len(leaves), merkle.root_from_leaf_hashes(leaves))}


def test_the_follower_extends_the_tree_in_the_background(populated: Ledger, settings: Settings) -> None:
    import time

    from ledger.integrity.merkle_follow import TreeFollower

    follower = TreeFollower(settings, interval=0.05)
    follower.start()
    try:
        store = MerkleStore(settings)
        expected = populated.reader.max_position() + 1
        deadline = time.monotonic() + 10
        with store.raw.connect() as conn:
            while store.head(conn).tree_size < expected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.head(conn).tree_size == expected
    finally:
        follower.stop()
