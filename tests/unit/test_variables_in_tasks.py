"""Tasks refuse a Variable outside its range before doing anything, and without retries.

Every reader goes through ``sublessor_airflow.variables``; a refusal is an
``AirflowFailException`` (Airflow does not retry it) naming the Variable, the value
given and the range. No database, broker or server is reached: the Variables are
read first, and the connections named here do not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sublessor_billing.config import (
    ALL_TUNABLES,
    BILLING_ALERT_TUNABLES,
    BROKER_PHONE_MAX_REMOVAL_SHARE,
)

INT_TUNABLES = [
    t for t in ALL_TUNABLES + BILLING_ALERT_TUNABLES if t is not BROKER_PHONE_MAX_REMOVAL_SHARE
]


@pytest.mark.parametrize("tunable", INT_TUNABLES, ids=lambda t: t.name)
def test_get_int_reads_the_range_and_fails_the_task_outside_it(tunable, airflow_variables) -> None:
    from sublessor_airflow.variables import get_int

    assert get_int(tunable) == tunable.default  # not set
    airflow_variables(tunable.name, tunable.maximum)
    assert get_int(tunable) == tunable.maximum
    airflow_variables(tunable.name, tunable.maximum + 1)
    with pytest.raises(AirflowFailException) as refused:
        get_int(tunable)
    message = str(refused.value)
    assert tunable.name in message and repr(str(tunable.maximum + 1)) in message
    assert f"from {tunable.minimum} to {tunable.maximum}" in message


def test_get_share_fails_the_task_outside_0_to_1(airflow_variables) -> None:
    from sublessor_airflow.variables import get_share

    airflow_variables(BROKER_PHONE_MAX_REMOVAL_SHARE.name, "1.5")
    with pytest.raises(AirflowFailException, match="broker_phone_max_removal_share.*'1.5'"):
        get_share(BROKER_PHONE_MAX_REMOVAL_SHARE)


def _judge():
    from sublessor_airflow.operators.intake import Call400JudgeOperator

    Call400JudgeOperator(task_id="judge", user_prop_conn_id="nowhere").execute({})


def _intake():
    from sublessor_airflow.operators.intake import Call400IntakeOperator

    Call400IntakeOperator(
        task_id="intake", amqp_conn_id="nowhere", user_prop_conn_id="nowhere"
    ).execute({})


def _recognise():
    from sublessor_airflow.operators.accounting import RecogniseIncomeOperator

    RecogniseIncomeOperator(task_id="recognise_income", user_prop_conn_id="nowhere").execute({})


def _alerts():
    from sublessor_airflow.alerts.checks import read_settings

    read_settings()


def _broker_sync():
    from sublessor_airflow.operators.broker_phone_sync import BrokerPhoneSyncOperator

    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    BrokerPhoneSyncOperator(
        task_id="sync_broker_phones", anjuke_conn_id="nowhere", user_prop_conn_id="nowhere"
    ).execute({"data_interval_start": start, "data_interval_end": start})


def _k3_export():
    from sublessor_airflow.operators.k3_contract_export import K3ContractExportOperator

    K3ContractExportOperator(
        task_id="export_contracts", k3_conn_id="nowhere", user_prop_conn_id="nowhere"
    ).execute({})


@pytest.mark.parametrize(
    ("task", "variable", "value", "says"),
    [
        (_judge, "filter_last_call_time_rule_threshold", "0", "from 60 to 2592000"),
        (_judge, "filter_call_time_rule_threshold", "0", "from 1 to 3600"),
        (_intake, "call400_max_messages_per_run", "0", "from 1 to 1000000"),
        (_recognise, "accounting_income_batch_size", "0", "from 1 to 100000"),
        (_alerts, "billing_alert_pending_minutes", "0", "from 1 to 1440"),
        (_alerts, "billing_alert_repeat_minutes", "10080", "from 1 to 1440"),
        (_broker_sync, "broker_phone_sync_overlap_seconds", "599", "from 600 to 86400"),
        (_broker_sync, "broker_phone_full_resync_hours", "-1", "from 0 to 8760"),
        (_k3_export, "k3_contract_field_map", "{not json", "not valid JSON"),
        (_k3_export, "k3_contract_field_map", '{"FNumber": "contract_no"}', "FBillNo"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_task_refuses_a_variable_outside_its_range_without_retries(
    airflow_variables, task, variable, value, says
) -> None:
    airflow_variables(variable, value)
    with pytest.raises(AirflowFailException) as refused:
        task()
    assert variable in str(refused.value) and says in str(refused.value)
