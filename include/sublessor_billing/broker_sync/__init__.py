"""Incremental, backfill-safe copy of broker mobiles into ``broker_phone`` (no Airflow imports)."""

from __future__ import annotations

from sublessor_billing.broker_sync.limits import Allowance, allowance_from_params
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
from sublessor_billing.broker_sync.run import PeriodicResyncRefused, RunRequest, sync_run
from sublessor_billing.broker_sync.source import source_now
from sublessor_billing.broker_sync.sync import (
    MAX_REMOVAL_SHARE,
    PAGE_SIZE,
    full_resync,
    high_water,
    last_full_resync,
    periodic_full_resync_due,
    sync_interval,
    sync_since_high_water,
)

__all__ = [
    "MAX_REMOVAL_SHARE",
    "MIN_OVERLAP_SECONDS",
    "PAGE_SIZE",
    "Allowance",
    "MalformedMobile",
    "MalformedRow",
    "MassRemoval",
    "PeriodicResyncRefused",
    "RunRequest",
    "SyncReport",
    "allowance_from_params",
    "full_resync",
    "full_resync_due",
    "high_water",
    "last_full_resync",
    "periodic_full_resync_due",
    "phone_for_broker",
    "source_now",
    "source_window",
    "sync_interval",
    "sync_run",
    "sync_since_high_water",
    "to_source_time",
]
