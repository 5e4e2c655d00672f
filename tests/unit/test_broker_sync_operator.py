"""The broker_phone_sync operator's reading of its run: the run type as the worker hands it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.api.datamodels._generated import DagRunType as SdkDagRunType
from airflow.utils.types import DagRunType

from sublessor_airflow.operators.broker_phone_sync import BrokerPhoneSyncOperator, run_type_of


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (SdkDagRunType.SCHEDULED, DagRunType.SCHEDULED),  # what a worker's dag_run carries
        (SdkDagRunType.MANUAL, DagRunType.MANUAL),
        (SdkDagRunType.BACKFILL, DagRunType.BACKFILL_JOB),
        (DagRunType.ASSET_TRIGGERED, DagRunType.ASSET_TRIGGERED),
        ("scheduled", DagRunType.SCHEDULED),
    ],
)
def test_the_run_type_is_read_as_a_dag_run_type(given, expected) -> None:
    assert run_type_of(SimpleNamespace(run_type=given, run_id="scheduled__x")) is expected


def test_a_manual_run_whose_id_looks_scheduled_is_manual() -> None:
    dag_run = SimpleNamespace(run_type=SdkDagRunType.MANUAL, run_id="scheduled__2026-03-01")
    assert run_type_of(dag_run) is DagRunType.MANUAL


def test_no_dag_run_has_no_run_type() -> None:
    assert run_type_of(None) is None
    assert run_type_of(SimpleNamespace(run_id="manual__x")) is None


def test_the_operator_templates_its_connections() -> None:
    task = BrokerPhoneSyncOperator(task_id="sync_broker_phones")
    assert set(task.template_fields) == {"anjuke_conn_id", "user_prop_conn_id"}
    assert (task.anjuke_conn_id, task.user_prop_conn_id) == ("anjuke_db", "user_prop_db")


def test_a_run_type_this_code_does_not_know_is_neither_scheduled_nor_manual() -> None:
    assert run_type_of(SimpleNamespace(run_type="something_new", run_id="x")) is None


def test_the_report_keys_are_xcoms_of_their_own_as_with_the_former_task() -> None:
    assert BrokerPhoneSyncOperator(task_id="sync_broker_phones").multiple_outputs is True
