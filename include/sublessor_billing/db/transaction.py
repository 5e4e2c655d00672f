"""One way to commit a phase: ``transaction`` owns commit and rollback.

Every phase that writes (intake, judging, allocation, recording answers,
recognition, broker sync, repairs) runs its statements inside::

    with transaction(conn) as cur:
        ...  # statements; return what the phase got to after the block

The block commits when it ends and rolls back on any exception, including
KeyboardInterrupt and a worker's SIGTERM, then re-raises it: a phase either
lands whole or leaves nothing. A rollback that itself fails (the connection
is gone) is logged and the phase's own error is raised, since that is the one
that says what went wrong; the server rolls back a dropped connection's
transaction itself.

Reads that must not hold a snapshot or a lock afterwards run in
``with read_only(conn) as cur:``, which always rolls back.

``retry_on_lock_conflict`` runs a whole phase again when MySQL rolled it back
for a deadlock (1213) or a lock wait timeout (1205); the phase must own its
transaction so that the second attempt starts clean, and it is not run again
when that transaction's rollback failed (a lock wait timeout undoes only the
statement that timed out). Between attempts it pauses a random 50-100 ms
times the attempts so far, so that two deadlocked phases do not meet again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DEADLOCK = 1213
LOCK_WAIT_TIMEOUT = 1205
LOCK_CONFLICTS = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT})
RETRY_PAUSE_S = 0.1  # before attempt n + 1: a random part of n x this
ISOLATION_LEVELS = frozenset({"READ COMMITTED", "REPEATABLE READ"})


@contextmanager
def transaction(conn: Any, *, isolation: str | None = None) -> Iterator[Any]:
    """Yield a cursor in a new transaction; commit at the end, roll back on any exception.

    ``isolation`` (``READ COMMITTED`` or ``REPEATABLE READ``) applies to this
    transaction only; it is set before the first statement.
    """
    if isolation is not None and isolation not in ISOLATION_LEVELS:
        raise ValueError(f"isolation {isolation!r} is not one of {sorted(ISOLATION_LEVELS)}")
    cur = conn.cursor()
    try:
        if isolation is not None:
            cur.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
        yield cur
        cur.close()
        conn.commit()
    except BaseException as exc:
        _close_quietly(cur)
        if not rollback_quietly(conn):
            exc.rollback_failed = True  # type: ignore[attr-defined]  # never retried: see below
        raise


@contextmanager
def read_only(conn: Any) -> Iterator[Any]:
    """Yield a cursor for reads; roll back at the end, whatever happened.

    The rollback ends the read snapshot (the next read sees current rows) and
    releases any lock a read took (``FOR UPDATE``). Nothing here may write.
    """
    cur = conn.cursor()
    try:
        yield cur
    finally:
        _close_quietly(cur)
        rollback_quietly(conn)


def _close_quietly(cur: Any) -> None:
    # Closing reads what is left on a connection that may be gone.
    with contextlib.suppress(Exception):
        cur.close()


def rollback_quietly(conn: Any) -> bool:
    """Roll back; when that fails too (connection gone), log it and return False.

    The caller's own error is the one that says what went wrong, so it stands.
    """
    try:
        conn.rollback()
    except Exception as exc:  # the caller is already raising the error that matters
        log.warning("Rollback failed (%s); the server rolls back a dropped connection itself", exc)
        return False
    return True


def mysql_error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a driver error, or None for any other exception."""
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


def retry_on_lock_conflict(phase: Callable[[], T], *, attempts: int, what: str) -> T:
    """Run ``phase`` (which owns its transaction) up to ``attempts`` times on 1213 / 1205.

    Any other error, or the last attempt's, is raised as it is.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return phase()
        except Exception as exc:
            code = mysql_error_code(exc)
            # A lock wait timeout undoes only its statement; run the phase again only when
            # transaction() rolled the rest back, or the retry would build on half a phase.
            if (
                code not in LOCK_CONFLICTS
                or attempt == attempts
                or getattr(exc, "rollback_failed", False)
            ):
                raise
            log.warning(
                "%s was rolled back by MySQL (%s: %s); running it again (attempt %s of %s)",
                what, code, exc, attempt + 1, attempts,
            )  # fmt: skip
            # Two phases that deadlocked and start again at once tend to meet again:
            # a short random pause lets one of them finish first.
            time.sleep(random.uniform(0.5, 1.0) * RETRY_PAUSE_S * attempt)
    raise AssertionError("unreachable")
