"""A refused periodic full resync still syncs the run's interval, then fails (real MariaDB)."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.utils.types import DagRunType
from broker_sync_db import T0, brokers, job_cursor, put_brokers, run_context, target_phones

pytestmark = pytest.mark.integration

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "broker_phone_sync.py"
LONG_AGO = datetime(2026, 1, 1)


def sync_task():
    spec = importlib.util.spec_from_file_location("broker_phone_sync_dag_refusal", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.broker_phone_sync().get_task("sync_broker_phones")


class TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key, value) -> None:
        self.pushed[key] = value


@pytest.fixture
def connections(anjuke_target, user_prop_target, airflow_connections, airflow_variables):
    for conn_id, target in (("anjuke_db", anjuke_target), ("user_prop_db", user_prop_target)):
        airflow_connections(conn_id, target.airflow_connection())
    airflow_variables("broker_phone_sync_overlap_seconds", 600)


def scheduled_run(ti, start: datetime = T0) -> dict:
    return sync_task().execute(
        run_context(
            params={"full_resync": False},
            data_interval_start=start,
            data_interval_end=start + timedelta(minutes=5),
            dag_run=SimpleNamespace(run_type=DagRunType.SCHEDULED, run_id="scheduled__t"),
            ti=ti,
        )
    )


def full_resync_is_due(target) -> None:
    with target.cursor() as cur:
        cur.execute(
            "UPDATE job_cursor SET position_time = %s WHERE name = 'broker_phone_sync_full'",
            (LONG_AGO,),
        )
    target.commit()


def test_a_refused_periodic_full_resync_still_blacklists_new_brokers(
    source, target, connections
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    put_brokers(source, brokers(range(1, 11)))
    sync_task().execute(
        run_context(params={"full_resync": True}, data_interval_start=None, data_interval_end=None)
    )
    # The source was restored from an old backup: brokers 6..10 are missing from it,
    # so the daily full resync would remove 5 of 10 numbers and refuses.
    with source.cursor() as cur:
        cur.execute("DELETE FROM ajk_brokerextend WHERE BrokerId > 5")
    source.commit()
    put_brokers(source, [(11, "13800000011", "2026-03-01 10:01:00")])  # a new broker
    full_resync_is_due(target)

    ti = TaskInstance()
    with pytest.raises(AirflowFailException) as failure:
        scheduled_run(ti)
    message = str(failure.value)
    assert "(full) refused: it would remove 5 numbers" in message
    assert "synced its interval" in message and "added 1" in message
    # The new broker is blacklisted; the numbers the full resync would remove stay.
    assert len(target_phones(target)) == 11 and (11, "13800000011") in target_phones(target)
    assert (ti.pushed["return_value"]["mode"], ti.pushed["return_value"]["added"]) == (
        "incremental",
        1,
    )
    assert job_cursor(target, "broker_phone_sync_full")[1] == LONG_AGO  # still due

    # The next scheduled run tries the full resync again, and still syncs its interval.
    put_brokers(source, [(12, "13800000012", "2026-03-01 10:06:00")])
    with pytest.raises(AirflowFailException, match="refused"):
        scheduled_run(TaskInstance(), T0 + timedelta(minutes=5))
    assert (12, "13800000012") in target_phones(target)
    assert len(target_phones(target)) == 12
