"""Splitting work into batches of a fixed size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one may be shorter): Python
    3.12's ``itertools.batched``, which 3.11 lacks, as lists."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
