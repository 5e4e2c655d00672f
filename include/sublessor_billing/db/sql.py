"""Small SQL idioms used by every module that owns a table.

MySQL has no array parameter: an ``IN`` list is one ``%s`` per value, and a
long list is split into chunks so that one statement stays bounded (the
callers pick the chunk size; tests make it small to cross its boundaries).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def marks(values: Sequence[object]) -> str:
    """``%s, %s, ...``: one placeholder per value, for ``IN (...)``; refuses an empty list."""
    if not values:
        raise ValueError("an IN list needs at least one value; skip the statement instead")
    return ", ".join(["%s"] * len(values))


def chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``values`` in consecutive slices of at most ``size``, in order."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    for start in range(0, len(values), size):
        yield values[start : start + size]
