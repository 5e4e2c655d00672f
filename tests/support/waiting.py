"""Wait for a state instead of sleeping: poll a predicate until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str, *, interval: float = 0.02
) -> T:
    """Return the first truthy value of ``predicate()``; fail naming ``what`` after ``timeout`` s.

    The predicate is always tried once more at the deadline, so a slow machine
    fails only when the state really did not come.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            value = predicate()
            if value:
                return value
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
