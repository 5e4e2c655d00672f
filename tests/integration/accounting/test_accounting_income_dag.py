"""`airflow dags test accounting_income`: income in the database, the full_check Param, the schedule.

The DAG runs as runtime.md describes it (a migrated Airflow home, connections in
the environment); its effect is read back from the database and its XComs from
Airflow's metadata database. The Asset trigger is Airflow's own: an event on the
payments asset makes the scheduler's query find the DAG due (its timetable is
checked with every DAG's in tests/integration/test_dag_schedules.py).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from support.airflow import airflow_env, dags_test

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DAY = date(2014, 9, 15)
D = timedelta(days=1)


def check_time(seed) -> datetime | None:
    """When the last full income check passed (job_cursor.position_time)."""
    rows = seed.query("SELECT position_time FROM job_cursor WHERE name = 'accounting_income_check'")
    return rows[0][0] if rows else None


def test_dags_test_recognises_income_and_the_full_check_param_reaches_the_check(
    seed, user_prop_target, airflow_home
) -> None:
    """One run with full_check=true, an hour after the last full check (a routine run, without
    the Param, checks only what is new: test_accounting_check.py)."""
    contract = seed.contract(7, 6000, DAY - D, DAY + D)
    p1, p2 = seed.payment(7, 4000), seed.payment(7, 4000)
    pending = seed.payment(8, 4000, status="pending")
    seed.execute(
        "INSERT INTO job_cursor (name, position_id, position_time)"
        " VALUES ('accounting_income_check', 0, NOW() - INTERVAL 1 HOUR)"
    )
    hour_ago = check_time(seed)
    env = airflow_env(
        airflow_home,
        connections={"user_prop_db": user_prop_target.airflow_connection()},
        variables={"accounting_income_batch_size": 2},
    )

    run = dags_test(env, "accounting_income", conf={"full_check": True})

    assert (run.returncode, run.state) == (0, "success"), run.output[-4000:]
    assert run.tasks == {"recognise_income": "success", "check_income": "success"}
    assert seed.income() == [(p1, contract, 4000), (p2, contract, 2000), (p2, None, 2000)]
    assert seed.balances() == {contract: 0}
    assert (seed.cursor(), seed.watched()) == (pending, [pending])
    recognised = run.xcom(airflow_home, "recognise_income")
    # Batches of the Variable's 2 payments: two with payments, then one that finds none.
    assert (recognised["batches"], recognised["payments_processed"]) == (3, 3)
    # The Param, through the template "{{ params.full_check }}": the whole history.
    checked = run.xcom(airflow_home, "check_income")
    assert (checked["full_check"], checked["checked_from"], checked["cursor"]) == (True, 0, pending)
    assert check_time(seed) > hour_ago


def test_a_payments_asset_event_makes_the_scheduler_find_the_dag_due(serialized_dags) -> None:
    """What the scheduler reads: the producer of the asset, and the DAG due after an event."""
    from airflow.assets.manager import AssetManager
    from airflow.models.asset import AssetModel, TaskOutletAssetReference
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    from sublessor_airflow.assets import SUBLESSOR_PAYMENTS

    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.name == SUBLESSOR_PAYMENTS.name))
        producers = session.scalars(
            select(TaskOutletAssetReference.dag_id).where(
                TaskOutletAssetReference.asset_id == asset.id
            )
        ).all()
        assert producers and set(producers) == {"call400_billing"}

        session.execute(
            update(DagModel).where(DagModel.dag_id == "accounting_income").values(is_paused=False)
        )
        _, asset_triggered = DagModel.dags_needing_dagruns(session)
        assert "accounting_income" not in asset_triggered
        # What a charge task's outlet does when it settles payments.
        AssetManager.register_asset_change(asset=asset, session=session)
        _, asset_triggered = DagModel.dags_needing_dagruns(session)
        assert "accounting_income" in asset_triggered
        session.rollback()  # leave the metadata database as it was
