"""check_income and the two operators against a real MariaDB."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest

from sublessor_billing.accounting import (
    IncomeMismatchError,
    check_income,
    recognise_until_caught_up,
)

pytestmark = pytest.mark.integration

DAY = date(2014, 9, 15)
D = timedelta(days=1)


@pytest.fixture
def recognised(seed, accounting_conn):
    """Two allocated payments, one unallocated, one refused, one still pending."""
    contract = seed.contract(7, 6000, DAY - D, DAY + D)
    ids = {
        "split": seed.payment(7, 4000),
        "rest": seed.payment(7, 4000),
        "none": seed.payment(9, 2500),
        "refused": seed.payment(7, 4000, status="failed"),
        "pending": seed.payment(7, 4000, status="pending"),
    }
    recognise_until_caught_up(accounting_conn, batch_size=100)
    ids["contract"] = contract
    return ids


def test_consistent_income_passes_and_reports_unallocated_money(
    recognised, accounting_conn, caplog
) -> None:
    with caplog.at_level(logging.WARNING):
        report = check_income(accounting_conn)
    assert report.cursor == recognised["pending"]
    assert report.unallocated_amount == 2000 + 2500  # the rest of "rest", all of "none"
    assert (report.unallocated_payments, report.unallocated_sublessors) == (2, 2)
    assert report.unsettled_watched == 1
    assert any(
        "4500 fen" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


def test_a_tampered_amount_is_named(recognised, seed, accounting_conn) -> None:
    seed.execute(
        "UPDATE sublessor_accounting_income_201409 SET amount = amount - 1 WHERE payment_id = %s LIMIT 1",
        (recognised["split"],),
    )
    with pytest.raises(IncomeMismatchError, match=f"payment {recognised['split']} ") as caught:
        check_income(accounting_conn)
    assert str(recognised["rest"]) not in str(caught.value)


def test_a_deleted_row_income_for_refused_pending_or_future_payments_are_named(
    recognised, seed, accounting_conn
) -> None:
    seed.execute(
        "DELETE FROM sublessor_accounting_income_201409 WHERE payment_id = %s",
        (recognised["none"],),
    )
    insert = (
        "INSERT INTO sublessor_accounting_income_201409"
        " (payment_id, contract_id, sublessor_id, amount, call_date) VALUES (%s, NULL, 7, 1, '2014-09-15')"
    )
    beyond = seed.payment(7, 4000)  # after the cursor: not recognised yet
    for pid in (recognised["refused"], recognised["pending"], beyond):
        seed.execute(insert, (pid,))
    with pytest.raises(IncomeMismatchError) as caught:
        check_income(accounting_conn)
    message = str(caught.value)
    for pid in (recognised["none"], recognised["refused"], recognised["pending"], beyond):
        assert f"payment {pid} " in message


def test_operators_recognise_then_check(
    seed, user_prop_target, airflow_connections, airflow_variables
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from sublessor_airflow.operators.accounting import CheckIncomeOperator, RecogniseIncomeOperator

    airflow_connections("user_prop_db", user_prop_target.airflow_connection())
    airflow_variables("accounting_income_batch_size", "2")
    seed.contract(7, 5000, DAY - D, DAY + D)
    payments = [seed.payment(7, 2000) for _ in range(5)]

    counts = RecogniseIncomeOperator(task_id="recognise_income").execute({})
    assert counts["payments_processed"] == 5 and counts["batches"] == 4  # 2 + 2 + 1, then caught up
    assert counts["money_allocated"] == 5000 and counts["money_unallocated"] == 5000
    assert counts["cursor"] == payments[-1]

    report = CheckIncomeOperator(task_id="check_income").execute({})
    assert report["unallocated_amount_fen"] == 5000 and "5000 fen" in report["warning"]

    seed.execute(
        "DELETE FROM sublessor_accounting_income_201409 WHERE payment_id = %s", (payments[0],)
    )
    # An old row is beyond the routine (incremental) check; the full one finds it.
    assert CheckIncomeOperator(task_id="check_income").execute({})["full_check"] is False
    with pytest.raises(AirflowFailException, match=f"payment {payments[0]} "):
        CheckIncomeOperator(task_id="check_income", full_check="True").execute({})


def test_a_bad_batch_size_variable_is_refused_by_name(airflow_variables) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from sublessor_airflow.operators.accounting import RecogniseIncomeOperator

    airflow_variables("accounting_income_batch_size", "lots")
    with pytest.raises(AirflowFailException, match="accounting_income_batch_size.*'lots'"):
        RecogniseIncomeOperator(task_id="recognise_income").resolved_batch_size()
    with pytest.raises(AirflowFailException, match="accounting_income_batch_size.*'0'"):
        RecogniseIncomeOperator(task_id="recognise_income", batch_size="0").resolved_batch_size()
