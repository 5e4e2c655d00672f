"""Wait for a state instead of sleeping: poll a predicate until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str | Callable[[], str],
    *,
    interval: float = 0.02,
) -> T:
    """Return the first truthy value of ``predicate()``; fail naming ``what`` after ``timeout`` s.

    The predicate is always tried once more at the deadline, so a slow machine
    fails only when the state really did not come. ``what`` may be a function:
    it is called at the deadline, to name the state things were left in.
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
            named = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {named}")
        time.sleep(interval)


class Worker:
    """A thread whose exception is kept and raised again by ``join()``: a test cannot miss it.

    ``with Worker(fn) as w: ...`` starts ``fn`` and joins it on leaving the block;
    ``w.result`` is what ``fn`` returned.
    """

    def __init__(self, target: Callable[[], object], *, name: str = "worker") -> None:
        import threading

        self.result: object = None
        self.error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._target()
        except BaseException as exc:  # raised again in join()
            self.error = exc

    def start(self) -> Worker:
        self._thread.start()
        return self

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float = 120) -> object:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"{self._thread.name} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.join()
        else:  # the block failed: do not hide its error behind the worker's
            self._thread.join(30)
