"""A named lock that serializes syncs writing one broker_phone table."""

from __future__ import annotations

import contextlib
from typing import Any

from sublessor_billing.db.named_lock import named_lock

LOCK_TIMEOUT_S = 120


def sync_lock(target: Any) -> contextlib.AbstractContextManager[str]:
    """Serialize syncs of one target (a backfill next to the scheduled run, a manual full resync)."""
    return named_lock(target, "broker_phone_sync", LOCK_TIMEOUT_S)
