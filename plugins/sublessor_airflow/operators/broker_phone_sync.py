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
    MalformedMobile,
    MassRemoval,
    full_resync,
    high_water,
    last_full_resync,
    periodic_full_resync_due,
    sync_interval,
    sync_since_high_water,
)
from sublessor_billing.config import SettingError

log = logging.getLogger(__name__)


def overlap_seconds() -> int:
    """Read the overlap Variable (at least ten minutes: late commits on the broker system)."""
    from sublessor_airflow.variables import get_int

    return get_int(config.BROKER_PHONE_SYNC_OVERLAP, minimum=MIN_OVERLAP_SECONDS)


def full_resync_every_hours() -> int:
    """Read the periodic full resync Variable (hours; 0 turns it off)."""
    from sublessor_airflow.variables import get_int

    return get_int(config.BROKER_PHONE_FULL_RESYNC_HOURS, minimum=0)


def max_removal_share() -> float:
    """Read the removal limit Variable (a share of broker_phone between 0 and 1)."""
    from sublessor_airflow.variables import get_share

    return get_share(config.BROKER_PHONE_MAX_REMOVAL_SHARE)


def run_broker_phone_sync(
    *,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    full_resync_requested: bool = False,
    allow_mass_removal: bool = False,
    scheduled: bool = False,
    ti: Any = None,
    source_conn_id: str = config.ANJUKE_DB,
    target_conn_id: str = config.USER_PROP_DB,
    page_size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """Sync one data interval, or everything; return the report (added/changed/removed/...).

    ``scheduled`` runs turn into a full resync once the last one is older than
    ``broker_phone_full_resync_hours``. A run with no data interval (a plain manual
    trigger) syncs from the high-water to now. Malformed rows fail the task after
    everything else is written; the report is pushed to XCom through ``ti`` first.
    A sync that would remove more than ``broker_phone_max_removal_share`` of
    broker_phone writes nothing and fails without retries, unless
    ``allow_mass_removal`` (the run's Param), as does a Variable that cannot be
    used (``SettingError``: the message says what to set).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from sublessor_airflow.hooks.mysql import anjuke_db, mysql_address, user_prop_db

    try:
        limits = {
            "max_removal_share": max_removal_share(),
            "allow_mass_removal": allow_mass_removal,
        }
        overlap = overlap_seconds()
        every = full_resync_every_hours()
    except SettingError as exc:
        # A decision for a person: a retry in 30 s would read the same value.
        raise AirflowFailException(str(exc)) from exc
    has_interval = data_interval_start is not None and data_interval_end is not None
    source_name = f"{source_conn_id} ({mysql_address(source_conn_id)})"
    with (
        closing(anjuke_db(source_conn_id)) as source,
        closing(user_prop_db(target_conn_id)) as target,
    ):
        if not full_resync_requested and high_water(target) is None:
            # First run ever: an interval alone would leave the blacklist almost empty
            # and brokers' calls would be charged.
            log.warning("broker_phone_sync has never completed a window: doing a full resync")
            full_resync_requested = True
        due = scheduled and has_interval and not full_resync_requested
        if due and periodic_full_resync_due(
            source, target, every_hours=every, source_name=source_name
        ):
            log.warning(
                "broker_phone_sync: last full resync is %s h old or more (%s): doing one now",
                every,
                last_full_resync(target),
            )
            full_resync_requested = True
        kwargs = {"page_size": page_size, "source_name": source_name, **limits}
        try:
            if full_resync_requested:
                report = full_resync(source, target, **kwargs)
            elif has_interval:
                report = sync_interval(
                    source,
                    target,
                    start=data_interval_start,
                    end=data_interval_end,
                    overlap_seconds=overlap,
                    **kwargs,
                )
            else:
                report = sync_since_high_water(source, target, overlap_seconds=overlap, **kwargs)
        except MalformedMobile as exc:
            if exc.report is not None and ti is not None:
                ti.xcom_push(key="return_value", value=exc.report.as_dict())
            raise
        except MassRemoval as exc:
            # A decision for a person: retrying in 30 s would only refuse again.
            raise AirflowFailException(str(exc)) from exc
    return report.as_dict()
