"""Splitting work into batches of a fixed size."""

from __future__ import annotations

from landform.core.batches import batched


def test_batches_keep_order_and_the_last_one_is_shorter() -> None:
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([1, 2, 3, 4], 2)) == [[1, 2], [3, 4]]


def test_nothing_makes_no_batch_and_a_generator_is_read_once() -> None:
    assert list(batched([], 5)) == []
    assert list(batched((n * n for n in range(4)), 10)) == [[0, 1, 4, 9]]
