"""Incremental, backfill-safe copy of broker mobiles into ``broker_phone`` (no Airflow imports)."""

from __future__ import annotations

from sublessor_billing.broker_sync.removal import MassRemoval
from sublessor_billing.broker_sync.report import SyncReport
from sublessor_billing.broker_sync.rules import (
    MIN_OVERLAP_SECONDS,
    MalformedMobile,
    MalformedRow,
    full_resync_due,
    phone_for_broker,
    source_window,
    to_source_time,
)
from sublessor_billing.broker_sync.sync import (
    MAX_REMOVAL_SHARE,
    PAGE_SIZE,
    full_resync,
    high_water,
    last_full_resync,
    periodic_full_resync_due,
    source_now,
    sync_interval,
    sync_since_high_water,
)

__all__ = [
    "MAX_REMOVAL_SHARE",
    "MIN_OVERLAP_SECONDS",
    "PAGE_SIZE",
    "MalformedMobile",
    "MalformedRow",
    "MassRemoval",
    "SyncReport",
    "full_resync",
    "full_resync_due",
    "high_water",
    "last_full_resync",
    "periodic_full_resync_due",
    "phone_for_broker",
    "source_now",
    "source_window",
    "sync_interval",
    "sync_since_high_water",
    "to_source_time",
]
