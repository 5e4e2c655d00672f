"""The broker_phone_sync DAG end to end: its task callable and a dag.test() run."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.utils.types import DagRunType
from broker_sync_db import T0, put_brokers, run_context, source_phones, target_phones

pytestmark = pytest.mark.integration

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "broker_phone_sync.py"


def load_dag():
    spec = importlib.util.spec_from_file_location("broker_phone_sync_dag_under_test", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.broker_phone_sync()


@pytest.fixture
def connections(anjuke_target, user_prop_target, airflow_connections, airflow_variables):
    for conn_id, target in (("anjuke_db", anjuke_target), ("user_prop_db", user_prop_target)):
        airflow_connections(conn_id, target.airflow_connection())
    airflow_variables("broker_phone_sync_overlap_seconds", 600)


def test_dag_shape() -> None:
    dag = load_dag()
    assert dag.dag_id == "broker_phone_sync"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.get_task("sync_broker_phones").retries >= 2
    assert dag.params["full_resync"] is False
    assert dag.params["allow_removals_up_to"] == 0
    assert "allow_mass_removal" not in dag.params


def first_full_resync() -> None:
    """Complete the first sync on an empty source, so later runs are incremental."""
    load_dag().get_task("sync_broker_phones").execute(
        run_context(params={"full_resync": True}, data_interval_start=None, data_interval_end=None)
    )


def test_the_first_run_ever_is_a_full_resync(source, target, connections) -> None:
    """With no completed window yet, an interval alone would leave brokers out of the blacklist."""
    put_brokers(source, [(1, "13800000001", "2025-01-01 08:00:00"), (2, "", "2025-01-01 08:00:00")])
    task = load_dag().get_task("sync_broker_phones")
    result = task.execute(
        run_context(
            params={"full_resync": False},
            data_interval_start=T0,
            data_interval_end=T0 + timedelta(minutes=5),
        )
    )
    assert result["mode"] == "full"
    assert target_phones(target) == source_phones(source) == {(1, "13800000001")}
    result = task.execute(
        run_context(
            params={"full_resync": False},
            data_interval_start=T0,
            data_interval_end=T0 + timedelta(minutes=5),
        )
    )
    assert result["mode"] == "incremental"


def test_task_callable_syncs_its_interval_and_full_resync(
    source, target, connections, airflow_variables
) -> None:
    airflow_variables("broker_phone_max_removal_share", 1)  # 1 of 2 rows goes: no limit
    first_full_resync()
    put_brokers(
        source,
        [
            (1, "13800000001", "2026-03-01 10:04:00"),
            (2, "13800000002", "2026-03-01 09:50:00"),  # inside the 600 s overlap
            (3, "13800000003", "2026-03-01 09:49:59"),  # outside it
        ],
    )
    task = load_dag().get_task("sync_broker_phones")
    result = task.execute(
        run_context(
            params={"full_resync": False},
            data_interval_start=T0,
            data_interval_end=T0 + timedelta(minutes=5),
        )
    )
    assert (result["added"], result["changed"], result["removed"]) == (2, 0, 0)
    assert result["window_start"] == "2026-03-01 09:50:00"
    assert target_phones(target) == {(1, "13800000001"), (2, "13800000002")}

    put_brokers(source, [(1, "", "2026-03-01 11:00:00")])
    result = task.execute(
        run_context(params={"full_resync": True}, data_interval_start=None, data_interval_end=None)
    )
    assert (result["mode"], result["added"], result["removed"], result["unchanged"]) == (
        "full",
        1,
        1,
        1,
    )
    assert target_phones(target) == source_phones(source)


def test_a_dag_run_syncs_its_data_interval(source, target, connections, airflow_home) -> None:
    first_full_resync()
    put_brokers(
        source,
        [
            (1, "13800000001", "2026-03-01 10:04:59"),
            (2, "13800000002", "2026-03-01 10:05:00"),  # belongs to the next interval
        ],
    )
    dag = load_dag()
    # A manual run at 02:05 UTC covers the last complete interval, [02:00, 02:05).
    run = dag.test(logical_date=T0 + timedelta(minutes=5))
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert (run.data_interval_start, run.data_interval_end) == (T0, T0 + timedelta(minutes=5))
    assert target_phones(target) == {(1, "13800000001")}

    run = dag.test(logical_date=T0 + timedelta(minutes=6), run_conf={"full_resync": True})
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert target_phones(target) == source_phones(source)


def set_full_resync_time(target, when) -> None:
    with target.cursor() as cur:
        cur.execute(
            "UPDATE job_cursor SET position_time = %s WHERE name = 'broker_phone_sync_full'",
            (when,),
        )
    target.commit()


def test_a_scheduled_run_does_a_full_resync_once_the_last_is_too_old(
    source, target, connections, airflow_variables
) -> None:
    """A commit stamped before the overlap is caught by the periodic full resync."""
    first_full_resync()
    task = load_dag().get_task("sync_broker_phones")

    def scheduled_run(run_type: DagRunType = DagRunType.SCHEDULED) -> dict:
        return task.execute(
            run_context(
                params={"full_resync": False},
                data_interval_start=T0,
                data_interval_end=T0 + timedelta(minutes=5),
                dag_run=SimpleNamespace(run_type=run_type),
            )
        )

    # A long transaction commits a row stamped a day before the interval.
    put_brokers(source, [(7, "13800000007", "2026-02-28 10:00:00")])
    assert scheduled_run()["mode"] == "incremental"  # the last full resync is fresh
    assert target_phones(target) == set()

    # The last full resync 25 hours ago by the source clock (whatever today's date is).
    set_full_resync_time(target, source_clock(source) - timedelta(hours=25))
    airflow_variables("broker_phone_full_resync_hours", 0)  # turned off
    assert scheduled_run()["mode"] == "incremental"
    airflow_variables("broker_phone_full_resync_hours", 24)
    assert scheduled_run(DagRunType.BACKFILL_JOB)["mode"] == "incremental"  # backfills stay exact
    assert scheduled_run(DagRunType.MANUAL)["mode"] == "incremental"  # only the timetable's runs
    result = scheduled_run()
    assert (result["mode"], result["added"]) == ("full", 1)
    assert target_phones(target) == source_phones(source)
    assert scheduled_run()["mode"] == "incremental"


def source_clock(source) -> datetime:
    with source.cursor() as cur:
        cur.execute("SELECT NOW()")
        now = cur.fetchone()[0]
    source.rollback()
    return now


def test_a_row_stamped_now_by_the_source_clock_is_in_the_current_utc_interval(
    source, target, connections
) -> None:
    """The source clock is Asia/Shanghai: a row stamped at NOW() belongs to the interval of now."""
    first_full_resync()
    with source.cursor() as cur:
        cur.execute("SELECT NOW(), UTC_TIMESTAMP()")
        local_now, utc_now = cur.fetchone()
    source.rollback()
    assert local_now - utc_now == timedelta(hours=8)
    put_brokers(source, [(5, "13800000005", local_now)])
    start = utc_now.replace(minute=utc_now.minute - utc_now.minute % 5, second=0, tzinfo=UTC)
    result = (
        load_dag()
        .get_task("sync_broker_phones")
        .execute(
            run_context(
                params={"full_resync": False},
                data_interval_start=start,
                data_interval_end=start + timedelta(minutes=5),
            )
        )
    )
    assert (result["mode"], result["added"]) == ("incremental", 1)
    assert target_phones(target) == {(5, "13800000005")}


def test_a_plain_manual_trigger_syncs_from_the_high_water_to_now(
    source, target, connections, airflow_home
) -> None:
    dag = load_dag()
    # No high-water yet: a plain trigger does a full resync.
    put_brokers(source, [(1, "13800000001", "2025-01-01 08:00:00")])
    run = dag.test(logical_date=None)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert run.data_interval_start is None
    assert target_phones(target) == {(1, "13800000001")}

    now = source_clock(source)
    put_brokers(
        source,
        [
            (2, "13800000002", now - timedelta(seconds=30)),  # inside the overlap
            (3, "13800000003", now - timedelta(hours=2)),  # before it: the full resync's job
            (4, "13800000004", now + timedelta(hours=1)),  # stamped after now
        ],
    )
    result = (
        load_dag()
        .get_task("sync_broker_phones")
        .execute(
            run_context(
                params={"full_resync": False}, data_interval_start=None, data_interval_end=None
            )
        )
    )
    assert result["mode"] == "since_high_water"
    assert result["added"] == 1
    assert target_phones(target) == {(1, "13800000001"), (2, "13800000002")}


def test_a_run_with_a_malformed_row_fails_and_its_report_is_in_xcom(
    source, target, connections, airflow_home
) -> None:
    first_full_resync()
    put_brokers(
        source,
        [(1, "13800000001", "2026-03-01 10:01:00"), (2, "n/a", "2026-03-01 10:02:00")],
    )
    dag = load_dag()
    dag.get_task("sync_broker_phones").retries = 0  # a retry fails the same way, after 30 s
    run = dag.test(logical_date=T0 + timedelta(minutes=5))
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    assert target_phones(target) == {(1, "13800000001")}
    ti = run.get_task_instance("sync_broker_phones")
    report = ti.xcom_pull(task_ids="sync_broker_phones")
    assert (report["added"], report["malformed"]) == (1, 1)


def test_a_mass_removal_fails_the_run_and_the_param_lets_one_run_through(
    source, target, connections, airflow_home
) -> None:
    put_brokers(source, [(i, f"1380000{i:04d}", "2025-06-01 08:00:00") for i in range(1, 6)])
    first_full_resync()
    before = target_phones(target)
    with source.cursor() as cur:
        cur.execute("DELETE FROM ajk_brokerextend")  # the source was restored empty
    source.commit()

    dag = load_dag()
    run = dag.test(logical_date=T0 + timedelta(minutes=5), run_conf={"full_resync": True})
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    assert run.get_task_instance("sync_broker_phones").try_number == 1  # no retry: it is a decision
    assert target_phones(target) == before

    # An allowance below what the run would remove refuses as well: it is a bound.
    run = dag.test(
        logical_date=T0 + timedelta(minutes=6),
        run_conf={"full_resync": True, "allow_removals_up_to": 4},
    )
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    assert target_phones(target) == before

    # The operator checked: the 5 brokers really left. One run may remove 5 numbers.
    run = dag.test(
        logical_date=T0 + timedelta(minutes=7),
        run_conf={"full_resync": True, "allow_removals_up_to": 5},
    )
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert target_phones(target) == set() == source_phones(source)
    with target.cursor() as cur:
        cur.execute("SELECT run_id, up_to, removed FROM broker_phone_removal_allowance")
        assert cur.fetchall() == ((run.run_id, 5, 5),)
    target.rollback()


def call_task(params: dict, run_type: str = "manual", run_id: str = "manual__t") -> dict:
    return (
        load_dag()
        .get_task("sync_broker_phones")
        .execute(
            run_context(
                params={"full_resync": True, **params},
                data_interval_start=None,
                data_interval_end=None,
                dag_run=SimpleNamespace(run_type=DagRunType(run_type), run_id=run_id),
            )
        )
    )


@pytest.mark.parametrize(
    ("params", "run_type", "says"),
    [
        ({"allow_removals_up_to": 3}, "backfill", "not on a backfill"),
        ({"allow_removals_up_to": 3}, "scheduled", "only on a manually triggered run"),
        ({"allow_removals_up_to": -1}, "manual", "a whole number of phone numbers, 0 or more"),
        ({"allow_removals_up_to": "5"}, "manual", "a whole number of phone numbers, 0 or more"),
        ({"allow_removals_up_to": True}, "manual", "a whole number of phone numbers, 0 or more"),
        ({"allow_removals_up_to": 2.5}, "manual", "a whole number of phone numbers, 0 or more"),
        ({"allow_mass_removal": True}, "manual", "replaced by allow_removals_up_to"),
    ],
)
def test_a_bad_or_misplaced_allowance_fails_without_retries(
    source, target, connections, params, run_type, says
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    put_brokers(source, [(1, "13800000001", "2025-06-01 08:00:00")])
    with pytest.raises(AirflowFailException, match="allow_removals_up_to") as failure:
        call_task(params, run_type)
    assert says in str(failure.value)
    assert target_phones(target) == set()  # refused before anything was read or written


@pytest.mark.parametrize("raw", ["1.5", "-0.1", "20%", "nan", "a fifth"])
def test_a_removal_share_outside_0_to_1_fails_without_retries(
    source, target, connections, airflow_variables, raw
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    first_full_resync()
    airflow_variables("broker_phone_max_removal_share", raw)
    with pytest.raises(AirflowFailException, match="broker_phone_max_removal_share") as failure:
        call_task({})
    assert "between 0 and 1" in str(failure.value)
    assert "Admin -> Variables" in str(failure.value)


def test_a_run_with_a_bad_variable_is_not_retried(
    source, target, connections, airflow_variables, airflow_home
):
    airflow_variables("broker_phone_max_removal_share", "20%")
    run = load_dag().test(logical_date=T0 + timedelta(minutes=5))
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    assert run.get_task_instance("sync_broker_phones").try_number == 1
    airflow_variables("broker_phone_sync_overlap_seconds", "ten minutes")
    airflow_variables("broker_phone_max_removal_share", "0.2")
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="broker_phone_sync_overlap_seconds"):
        load_dag().get_task("sync_broker_phones").execute(
            run_context(
                params={}, data_interval_start=T0, data_interval_end=T0 + timedelta(minutes=5)
            )
        )


def test_a_share_of_1_warns_that_the_guard_is_off(
    source, target, connections, airflow_variables, caplog
) -> None:
    airflow_variables("broker_phone_max_removal_share", "1")
    with caplog.at_level("WARNING"):
        call_task({})
    assert any(
        "broker_phone_max_removal_share is 1" in r.getMessage() and "guard is off" in r.getMessage()
        for r in caplog.records
    )
