"""Airflow glue of broker_phone_sync: Variables, Params and Connections in, a report out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sublessor_billing import config
from sublessor_billing.broker_sync import (
    MIN_OVERLAP_SECONDS,
    PAGE_SIZE,
    Allowance,
    MalformedMobile,
    MassRemoval,
    SyncReport,
    allowance_from_params,
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

    return get_int(config.BROKER_PHONE_FULL_RESYNC_HOURS)


def max_removal_share() -> float:
    """Read the removal limit Variable (a share of broker_phone between 0 and 1)."""
    from sublessor_airflow.variables import get_share

    return get_share(config.BROKER_PHONE_MAX_REMOVAL_SHARE)


@dataclass(frozen=True)
class Settings:
    """What one run was asked to do, read and checked before any database is opened."""

    full_resync: bool
    allowance: Allowance | None
    max_removal_share: float
    overlap_seconds: int
    full_resync_every_hours: int


def read_settings(
    params: Mapping[str, Any], *, run_id: str | None, run_type: str | None
) -> Settings:
    """Read the Variables and the run's Params; a SettingError says what to set."""
    return Settings(
        full_resync=bool(params.get("full_resync", False)),
        allowance=allowance_from_params(params, run_id=run_id, run_type=run_type),
        max_removal_share=max_removal_share(),
        overlap_seconds=overlap_seconds(),
        full_resync_every_hours=full_resync_every_hours(),
    )


def run_type_name(run_type: Any) -> str | None:
    """``DagRunType.MANUAL``, ``"manual"`` and ``"DagRunType.MANUAL"`` alike: ``"manual"``."""
    if run_type is None:
        return None
    name = str(getattr(run_type, "value", run_type)).lower()
    return name.rpartition(".")[2]


def run_broker_phone_sync(
    *,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    params: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    run_type: Any = None,
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
    A sync that would take more numbers out of broker_phone than the day's share
    (``broker_phone_max_removal_share``) or the run's ``allow_removals_up_to``
    writes nothing and fails without retries, as does a Variable or Param that
    cannot be used (``SettingError``).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from sublessor_airflow.hooks.mysql import anjuke_db, mysql_address, user_prop_db

    run_type = run_type_name(run_type)
    try:
        settings = read_settings(params or {}, run_id=run_id, run_type=run_type)
    except SettingError as exc:
        # A decision for a person: a retry in 30 s would read the same value.
        raise AirflowFailException(str(exc)) from exc
    full_requested = settings.full_resync
    has_interval = data_interval_start is not None and data_interval_end is not None
    source_name = f"{source_conn_id} ({mysql_address(source_conn_id)})"
    with (
        closing(anjuke_db(source_conn_id)) as source,
        closing(user_prop_db(target_conn_id)) as target,
    ):
        if not full_requested and high_water(target) is None:
            # First run ever: an interval alone would leave the blacklist almost empty
            # and brokers' calls would be charged.
            log.warning("broker_phone_sync has never completed a window: doing a full resync")
            full_requested = True
        periodic = False
        if not full_requested and run_type == "scheduled" and has_interval:
            every = settings.full_resync_every_hours
            if periodic_full_resync_due(source, target, every_hours=every, source_name=source_name):
                log.warning(
                    "broker_phone_sync: last full resync is %s h old or more (%s): doing one now",
                    every,
                    last_full_resync(target),
                )
                full_requested = periodic = True
        kwargs = {
            "page_size": page_size,
            "source_name": source_name,
            "max_removal_share": settings.max_removal_share,
            "allowance": settings.allowance,
        }

        def interval() -> SyncReport:
            return sync_interval(
                source,
                target,
                start=data_interval_start,
                end=data_interval_end,
                overlap_seconds=settings.overlap_seconds,
                **kwargs,
            )

        try:
            if periodic:
                try:
                    report = full_resync(source, target, **kwargs)
                except MassRemoval as refused:
                    _interval_after_refusal(refused, interval, ti)
            elif full_requested:
                report = full_resync(source, target, **kwargs)
            elif has_interval:
                report = interval()
            else:
                report = sync_since_high_water(
                    source, target, overlap_seconds=settings.overlap_seconds, **kwargs
                )
        except MalformedMobile as exc:
            if exc.report is not None and ti is not None:
                ti.xcom_push(key="return_value", value=exc.report.as_dict())
            raise
        except (MassRemoval, PermissionError) as exc:
            # A decision, or a grant, for a person: a retry in 30 s would fail the same way.
            raise AirflowFailException(str(exc)) from exc
    return report.as_dict()


def _interval_after_refusal(
    refused: MassRemoval, interval: Callable[[], SyncReport], ti: Any
) -> NoReturn:
    """A periodic full resync refused: sync the run's interval all the same, then fail.

    The full resync's cursor does not move, so every scheduled run tries it again
    until someone decides; meanwhile each run's interval (with its own guard)
    keeps new brokers blacklisted. The run fails without retries, naming the
    refusal, so the alert goes out every time.
    """
    from airflow.sdk.exceptions import AirflowFailException

    log.error(
        "broker_phone_sync: the periodic full resync refused; syncing the interval: %s", refused
    )
    try:
        report = interval()
    except MassRemoval as also:
        raise AirflowFailException(
            f"{refused} This run's interval was refused too, so nothing was synced: {also}"
        ) from refused
    except MalformedMobile as malformed:
        done = malformed.report
        if done is not None and ti is not None:
            ti.xcom_push(key="return_value", value=done.as_dict())
        raise AirflowFailException(
            f"{refused} This run synced its interval all the same, but: {malformed}"
        ) from refused
    if ti is not None:
        ti.xcom_push(key="return_value", value=report.as_dict())
    raise AirflowFailException(
        f"{refused} This run synced its interval [{report.window_start}, {report.window_end}) "
        f"all the same (added {report.added}, changed {report.changed}, removed "
        f"{report.removed}), so new brokers are blacklisted; the next scheduled run tries the "
        "full resync again."
    ) from refused
