"""Airflow glue of broker_phone_sync: Variables and Connections in, a report out."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime
from typing import Any

from sublessor_billing import config
from sublessor_billing.broker_sync import (
    MIN_OVERLAP_SECONDS,
    PAGE_SIZE,
    full_resync,
    high_water,
    sync_interval,
)

log = logging.getLogger(__name__)


def overlap_seconds() -> int:
    """Read the overlap Variable (at least ten minutes: late commits on the broker system)."""
    from sublessor_airflow.variables import get_int

    return get_int(config.BROKER_PHONE_SYNC_OVERLAP, minimum=MIN_OVERLAP_SECONDS)


def describe_connection(conn_id: str) -> str:
    """Name a connection and its address for error messages (never its credentials)."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return f"{conn_id} (<connection not defined>)"
    return f"{conn_id} ({conn.host}:{conn.port or 3306}/{conn.schema or ''})"


def run_broker_phone_sync(
    *,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    full_resync_requested: bool = False,
    source_conn_id: str = config.ANJUKE_DB,
    target_conn_id: str = config.USER_PROP_DB,
    page_size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """Sync one data interval (or everything, on request); return added/changed/removed."""
    from sublessor_airflow.hooks.mysql import anjuke_db, user_prop_db

    if not full_resync_requested and (data_interval_start is None or data_interval_end is None):
        raise ValueError(
            "broker_phone_sync needs a data interval (schedule it with a data-interval timetable) "
            "or the full_resync param."
        )
    source_name = describe_connection(source_conn_id)
    with (
        closing(anjuke_db(source_conn_id)) as source,
        closing(user_prop_db(target_conn_id)) as target,
    ):
        if not full_resync_requested and high_water(target) is None:
            # First run ever: an interval alone would leave the blacklist almost empty
            # and brokers' calls would be charged.
            log.warning("broker_phone_sync has never completed a window: doing a full resync")
            full_resync_requested = True
        if full_resync_requested:
            report = full_resync(source, target, page_size=page_size, source_name=source_name)
        else:
            report = sync_interval(
                source,
                target,
                start=data_interval_start,
                end=data_interval_end,
                overlap_seconds=overlap_seconds(),
                page_size=page_size,
                source_name=source_name,
            )
    return report.as_dict()
