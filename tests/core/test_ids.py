"""Ids and the random bytes they are made of."""

from __future__ import annotations

import os
import threading
import uuid

from landform.core.ids import RandomPool, new_id, new_id_hex


def test_ids_are_version_7_unique_and_in_creation_order() -> None:
    ids = [new_id() for _ in range(5_000)]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    # Time-ordered to the millisecond: the first 48 bits never go down.
    millis = [i.int >> 80 for i in ids]
    assert millis == sorted(millis)
    assert uuid.UUID(hex=new_id_hex()).version == 7


def test_the_pool_hands_out_each_byte_once_across_refills() -> None:
    pool = RandomPool(size=64)
    chunks = [pool.take(10) for _ in range(1_000)]  # many refills of 64 bytes
    assert all(len(chunk) == 10 for chunk in chunks)
    assert len(set(chunks)) == len(chunks)
    assert len(pool.take(100)) == 100  # more than a page at once


def test_threads_never_get_the_same_bytes() -> None:
    pool = RandomPool(size=256)
    taken: list[bytes] = []

    def take() -> None:
        mine = [pool.take(10) for _ in range(2_000)]
        taken.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 8_000
    assert len(set(taken)) == len(taken)


def test_a_forked_child_does_not_reuse_the_parents_unread_bytes() -> None:
    pool = RandomPool()
    pool.take(10)  # the parent now holds a page of unread bytes
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write_end, pool.take(10))
        os._exit(0)
    os.close(write_end)
    from_child = os.read(read_end, 10)
    os.close(read_end)
    os.waitpid(child, 0)
    assert len(from_child) == 10
    # Without the reset at fork, the child's next bytes would be these.
    assert from_child != pool.take(10)
