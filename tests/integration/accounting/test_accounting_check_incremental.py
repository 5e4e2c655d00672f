"""The routine check covers what is new since the last passed check; the full one, all."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sublessor_billing.accounting import (
    CHECK_CURSOR_NAME,
    CHECK_INCOME_MARK_NAME,
    IncomeMismatchError,
    check_income,
    recognise_until_caught_up,
)

pytestmark = pytest.mark.integration

DAY = date(2014, 9, 15)
D = timedelta(days=1)
TAMPER = "UPDATE sublessor_accounting_income_201409 SET amount = amount + 1 WHERE payment_id = %s"


def marks(seed) -> dict[str, tuple]:
    rows = seed.query(
        "SELECT name, position_id, position_time FROM job_cursor WHERE name IN (%s, %s)",
        (CHECK_CURSOR_NAME, CHECK_INCOME_MARK_NAME),
    )
    return {name: (pid, at) for name, pid, at in rows}


@pytest.fixture
def checked(seed, accounting_conn):
    """Two payments recognised and fully checked; the marks stand after them."""
    seed.contract(7, 100_000, DAY - D, DAY + D)
    old = [seed.payment(7, 3000), seed.payment(7, 3000)]
    recognise_until_caught_up(accounting_conn, batch_size=10)
    first = check_income(accounting_conn)
    assert first.full  # no check ever passed: the first one covers everything
    assert marks(seed)[CHECK_CURSOR_NAME][0] == old[-1]
    return old


def test_a_tampered_row_in_the_new_range_fails_and_the_marks_stay(
    checked, seed, accounting_conn
) -> None:
    new = [seed.payment(7, 2000), seed.payment(7, 2000)]
    recognise_until_caught_up(accounting_conn, batch_size=10)
    seed.execute(TAMPER, (new[1],))
    before = marks(seed)

    with pytest.raises(IncomeMismatchError, match=f"payment {new[1]} ") as caught:
        check_income(accounting_conn)
    assert f"checked from payment {checked[-1]}" in str(caught.value)
    assert str(new[0]) not in str(caught.value)
    assert marks(seed) == before

    seed.execute(TAMPER.replace("+ 1", "- 1"), (new[1],))  # corrected
    report = check_income(accounting_conn)
    assert (report.full, report.checked_from, report.cursor) == (False, checked[-1], new[-1])
    assert marks(seed)[CHECK_CURSOR_NAME][0] == new[-1]
    assert marks(seed)[CHECK_CURSOR_NAME][1] == before[CHECK_CURSOR_NAME][1]  # not a full one
    assert marks(seed)[CHECK_INCOME_MARK_NAME][0] > before[CHECK_INCOME_MARK_NAME][0]


def test_a_tampered_row_in_the_old_range_is_found_by_the_full_check(
    checked, seed, accounting_conn
) -> None:
    seed.execute(TAMPER, (checked[0],))
    assert not check_income(accounting_conn).full  # routine check: the old range is not read
    with pytest.raises(IncomeMismatchError, match=f"payment {checked[0]} "):
        check_income(accounting_conn, full=True)

    # A full check older than a day makes the routine run a full one by itself.
    seed.execute(
        "UPDATE job_cursor SET position_time = NOW() - INTERVAL 25 HOUR WHERE name = %s",
        (CHECK_CURSOR_NAME,),
    )
    with pytest.raises(IncomeMismatchError, match=f"full check.*payment {checked[0]} "):
        check_income(accounting_conn)


def test_late_settlements_and_new_rows_in_the_old_range_are_checked(
    checked, seed, accounting_conn
) -> None:
    late = seed.payment(7, 2500, status="pending")
    refused = seed.payment(7, 2500, status="failed")
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert check_income(accounting_conn).unsettled_watched == 1
    seed.set_status(late, "success")
    recognise_until_caught_up(accounting_conn, batch_size=10)
    seed.execute(TAMPER, (late,))  # the late allocation, in the already checked range
    with pytest.raises(IncomeMismatchError, match=f"payment {late} ") as caught:
        check_income(accounting_conn)
    assert not str(caught.value).count(f"payment {refused} ")

    seed.execute(TAMPER.replace("+ 1", "- 1"), (late,))
    assert check_income(accounting_conn).checked_from == refused
    seed.execute(
        "INSERT INTO sublessor_accounting_income_201409"
        " (payment_id, contract_id, sublessor_id, amount, call_date) VALUES (%s, NULL, 7, 1, %s)",
        (refused, DAY),
    )
    with pytest.raises(IncomeMismatchError, match=f"payment {refused} "):
        check_income(accounting_conn)  # a new row for an old refused payment


def test_a_routine_check_reports_the_unallocated_money_new_since_the_last(
    checked, seed, accounting_conn
) -> None:
    seed.payment(9, 700)  # sublessor 9 has no contract
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert check_income(accounting_conn).unallocated_amount == 700
    seed.payment(9, 300)
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert check_income(accounting_conn).unallocated_amount == 300
    full = check_income(accounting_conn, full=True)
    assert (full.unallocated_amount, full.unallocated_payments) == (1000, 2)
