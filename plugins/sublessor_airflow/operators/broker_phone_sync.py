"""Operator of broker_phone_sync: Variables, Params and Connections in, a report out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException
from airflow.utils.types import DagRunType

from sublessor_airflow.operators.base import UserPropDbOperator
from sublessor_billing import config
from sublessor_billing.broker_sync import (
    MIN_OVERLAP_SECONDS,
    PAGE_SIZE,
    MalformedMobile,
    MassRemoval,
    PeriodicResyncRefused,
    RunRequest,
    allowance_from_params,
    sync_run,
)
from sublessor_billing.config import SettingError

if TYPE_CHECKING:
    from airflow.sdk import Context


def read_request(
    params: Mapping[str, Any],
    *,
    start: datetime | None,
    end: datetime | None,
    run_id: str | None,
    run_type: DagRunType | None,
) -> RunRequest:
    """Read the Variables and the run's Params; a SettingError says what to set.

    The overlap is at least ten minutes (late commits on the broker system); the
    periodic full resync is in hours (0 turns it off); the removal limit is a
    share of broker_phone between 0 and 1.
    """
    from sublessor_airflow.variables import get_int, get_share

    return RunRequest(  # the Param first, then the Variables: the first bad one is named
        full_resync=bool(params.get("full_resync", False)),
        allowance=allowance_from_params(
            params, run_id=run_id, run_type=None if run_type is None else run_type.value
        ),
        max_removal_share=get_share(config.BROKER_PHONE_MAX_REMOVAL_SHARE),
        overlap_seconds=get_int(config.BROKER_PHONE_SYNC_OVERLAP, minimum=MIN_OVERLAP_SECONDS),
        full_resync_every_hours=get_int(config.BROKER_PHONE_FULL_RESYNC_HOURS),
        scheduled=run_type == DagRunType.SCHEDULED,
        start=start,
        end=end,
    )


def run_type_of(dag_run: Any) -> DagRunType | None:
    """The run's ``DagRunType`` (scheduled, manual, backfill, ...); None outside a DAG run
    and for a type this code does not know (so neither the periodic resync nor an allowance)."""
    run_type = getattr(dag_run, "run_type", None)
    try:
        return None if run_type is None else DagRunType(run_type)
    except ValueError:  # a type newer than this code: not scheduled, not manual
        return None


class BrokerPhoneSyncOperator(UserPropDbOperator):
    """Sync the run's data interval of broker mobiles into broker_phone, or everything; the report.

    Param ``full_resync`` rebuilds the whole table; a scheduled run does that
    instead once the last full resync is Variable ``broker_phone_full_resync_hours``
    old; a run with no data interval (a plain manual trigger) syncs from the
    high-water to now (``sublessor_billing.broker_sync.run``). Malformed rows fail
    the task after everything else is written, the report pushed to XCom first. A
    sync that would take more numbers out of broker_phone than the day's share
    (Variable ``broker_phone_max_removal_share``) or the manual run's Param
    ``allow_removals_up_to`` writes nothing and fails without retries, as does a
    Variable or Param that cannot be used.

    :param anjuke_conn_id: the MySQL connection of ``anjuke_db``, the source (templated).
    :param page_size: source rows read, and written, at a time.
    """

    template_fields: Sequence[str] = ("anjuke_conn_id", *UserPropDbOperator.template_fields)

    def __init__(
        self, *, anjuke_conn_id: str = config.ANJUKE_DB, page_size: int = PAGE_SIZE, **kwargs: Any
    ) -> None:
        # The report's keys as XComs of their own too (mode, added, removed, ...).
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.anjuke_conn_id = anjuke_conn_id
        self.page_size = page_size

    def execute(self, context: Context) -> dict[str, Any]:
        from sublessor_airflow.hooks.mysql import anjuke_db, mysql_address

        dag_run = context.get("dag_run")
        try:
            request = read_request(
                context.get("params") or {},
                start=context.get("data_interval_start"),
                end=context.get("data_interval_end"),
                run_id=getattr(dag_run, "run_id", None),
                run_type=run_type_of(dag_run),
            )
        except SettingError as exc:
            # A decision for a person: a retry in 30 s would read the same value.
            raise AirflowFailException(str(exc)) from exc
        ti = context.get("ti")
        source_name = f"{self.anjuke_conn_id} ({mysql_address(self.anjuke_conn_id)})"
        with (
            closing(anjuke_db(self.anjuke_conn_id)) as source,
            closing(self.connect()) as target,
        ):
            try:
                report = sync_run(
                    source, target, request, page_size=self.page_size, source_name=source_name
                )
            except (MalformedMobile, PeriodicResyncRefused) as exc:
                if exc.report is not None and ti is not None:  # what was written, for XCom
                    ti.xcom_push(key="return_value", value=exc.report.as_dict())
                if isinstance(exc, PeriodicResyncRefused):  # alert every run, no retries
                    raise AirflowFailException(str(exc)) from exc
                raise
            except (MassRemoval, PermissionError) as exc:
                # A decision, or a grant, for a person: a retry in 30 s would fail the same way.
                raise AirflowFailException(str(exc)) from exc
        return report.as_dict()
