"""Every DAG's schedule as the scheduler reads it, after Airflow parsed the DAG folder.

``airflow dags reserialize`` (once per test run) writes what the scheduler uses into
the metadata database: the timetable, when the next run is due, how many may run.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

# dag_id -> (timetable summary, minute the next run is due at: None when any minute)
SCHEDULES = {
    "accounting_income": ("Asset or */5 * * * *", "every fifth"),
    "billing_alerts": ("*/5 * * * *", "every fifth"),
    "broker_phone_sync": ("*/5 * * * *", "every fifth"),
    "call400_billing": ("@continuous", None),
    "k3_contract_export": ("17 * * * *", 17),
}


@pytest.mark.parametrize("dag_id", sorted(SCHEDULES))
def test_each_dag_is_scheduled_as_documented(serialized_dags, dag_id: str) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    summary, minute = SCHEDULES[dag_id]
    with create_session() as session:
        dag = session.get(DagModel, dag_id)
        assert dag is not None, f"{dag_id} is not in the metadata database after parsing"
        assert (dag.timetable_summary, dag.max_active_runs) == (summary, 1)
        due = dag.next_dagrun_create_after
        if minute == "every fifth":
            assert (due.minute % 5, due.second) == (0, 0), due
        elif minute is not None:
            assert (due.minute, due.second) == (minute, 0), due
