"""A named MariaDB lock that serializes syncs writing one broker_phone table."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 120


class sync_lock:
    """Serialize syncs of one target (a backfill next to the scheduled run, a manual full resync)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.name = ""

    def __enter__(self) -> None:
        with self.target.cursor() as cur:
            cur.execute("SELECT CONCAT('broker_phone_sync.', IFNULL(DATABASE(), ''))")
            self.name = cur.fetchone()[0][:64]
            cur.execute("SELECT GET_LOCK(%s, %s)", (self.name, LOCK_TIMEOUT_S))
            if cur.fetchone()[0] != 1:
                raise RuntimeError(
                    f"Another broker_phone_sync holds lock {self.name!r} for more than "
                    f"{LOCK_TIMEOUT_S}s (a backfill or full resync?); the task retries. "
                    "If it persists, look for the holder with SELECT IS_USED_LOCK(...)."
                )

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.target.rollback()
            with self.target.cursor() as cur:
                cur.execute("SELECT RELEASE_LOCK(%s)", (self.name,))
                cur.fetchall()
        except Exception:  # the connection is gone: the server dropped the lock with it
            log.warning(
                "Could not release lock %s; the server frees it with the session", self.name
            )
