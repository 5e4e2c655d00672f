"""Run a pass's steps in order, each whatever the earlier ones did, and report them all.

call400_billing's steps (take in, judge, charge, take offline) are each also
the recovery of what earlier runs left: a judge runs although intake failed
(calls taken in by an earlier run wait for it), charging runs although the
judge failed (orders left pending wait for it), and so on. So a failed step is
logged and the next one runs; the caller fails at the end when any failed,
with every step's result in hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Step = tuple[str, Callable[[], dict[str, Any]]]
ERROR_CHARS = 2000


@dataclass
class StepOutcome:
    name: str
    seconds: float
    result: dict[str, Any] | None = None  # what the step returned, or attached to its error
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """The step's counts with ``ok``, ``seconds`` and, when it failed, ``error``."""
        summary: dict[str, Any] = dict(self.result or {})
        summary.update(ok=self.ok, seconds=round(self.seconds, 3))
        if self.error is not None:
            summary["error"] = f"{type(self.error).__name__}: {self.error}"[:ERROR_CHARS]
        return summary


def run_steps(steps: Sequence[Step]) -> list[StepOutcome]:
    """Run every step in order; an ``Exception`` of one is logged and recorded, the next runs.

    A step may attach its counts to the exception it raises (``exc.result``).
    Anything that is not an ``Exception`` (the task being killed, a timeout of
    the whole task) ends the pass at once.
    """
    outcomes = []
    for name, step in steps:
        started = time.perf_counter()
        try:
            result = step()
        except Exception as exc:
            log.exception("Step %s failed; the steps after it run anyway (recovery)", name)
            result = getattr(exc, "result", None)
            outcome = StepOutcome(name, time.perf_counter() - started, result, exc)
        else:
            outcome = StepOutcome(name, time.perf_counter() - started, result)
            log.info("Step %s done in %.2f s: %s", name, outcome.seconds, result)
        outcomes.append(outcome)
    return outcomes


def failure_message(outcomes: Sequence[StepOutcome]) -> str:
    """One message naming every failed step and what its error says to do ('' when none failed)."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return ""
    ran = ", ".join(f"{o.name} {'ok' if o.ok else 'FAILED'}" for o in outcomes)
    details = " ".join(f"[{o.name}] {type(o.error).__name__}: {o.error}" for o in failed)
    return f"{len(failed)} step(s) failed ({ran}; every step ran, results in XCom). {details}"
