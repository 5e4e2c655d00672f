"""Database-wide named locks (GET_LOCK) that serialize the runs of one job.

The lock belongs to the session: if a worker dies, the server frees it with the
connection, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class LockTimeout(RuntimeError):
    """Another run held the job's lock for longer than we were willing to wait."""


@contextlib.contextmanager
def named_lock(
    conn: Any, job: str, timeout_s: int, *, error: type[Exception] = LockTimeout
) -> Iterator[str]:
    """Hold the lock ``<job>.<database>`` for the block; yield its name."""
    with conn.cursor() as cur:
        cur.execute("SELECT CONCAT(%s, '.', IFNULL(DATABASE(), ''))", (job,))
        name = cur.fetchone()[0][:64]
        cur.execute("SELECT GET_LOCK(%s, %s)", (name, timeout_s))
        if cur.fetchone()[0] != 1:
            raise error(
                f"Another {job} run has held lock {name!r} for over {timeout_s}s: it is still "
                f"running or hung. Find its session with SELECT IS_USED_LOCK('{name}') and "
                "SHOW PROCESSLIST; the task retries."
            )
    try:
        yield name
    finally:
        try:
            conn.rollback()  # nothing of a failed block may linger after the lock is gone
            with conn.cursor() as cur:
                cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
                cur.fetchall()
        except Exception:  # the connection is gone: the server dropped the lock with it
            log.warning("Could not release lock %s; the server frees it with the session", name)
