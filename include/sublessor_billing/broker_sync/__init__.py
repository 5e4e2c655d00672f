"""Incremental, backfill-safe copy of broker mobiles into ``broker_phone`` (no Airflow imports)."""

from __future__ import annotations

from sublessor_billing.broker_sync.rules import (
    MIN_OVERLAP_SECONDS,
    MalformedMobile,
    phone_for_broker,
    source_window,
    to_source_time,
)
from sublessor_billing.broker_sync.sync import (
    PAGE_SIZE,
    SyncReport,
    full_resync,
    high_water,
    sync_interval,
)

__all__ = [
    "MIN_OVERLAP_SECONDS",
    "PAGE_SIZE",
    "MalformedMobile",
    "SyncReport",
    "full_resync",
    "high_water",
    "phone_for_broker",
    "source_window",
    "sync_interval",
    "to_source_time",
]
