"""`airflow dags test call400_billing` with every task real: sandboxes for money and listings.

A wrong payment key must fail the run (not hide behind the recovery tasks that
run after it), leave the calls pending with their order ids, and the next run,
once the key is fixed, must charge each of them exactly once.
"""

from __future__ import annotations

import pytest
from support.airflow import airflow_env, dags_test
from support.calls import call_body
from support.connections import APP_ID, LISTING_KEY, PAYMENT_KEY

from sublessor_billing.sandbox.listing_service import ListingService
from sublessor_billing.sandbox.payment_center import PaymentCenter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def run_billing(call400, home, payment, listing, key: str) -> tuple[bool, str]:
    """One `airflow dags test call400_billing` with every task real; (succeeded, output)."""
    env = airflow_env(
        home,
        connections=call400.billing_connections(payment, listing, key),
        variables={"call400_sensor_timeout": 2},
    )
    run = dags_test(env, "call400_billing", timeout=240)
    # `airflow dags test` exits non-zero ("DagRun failed") when the run failed.
    assert run.state in ("success", "failed"), run.output[-3000:]
    return run.state == "success", run.output


def test_a_wrong_payment_key_fails_the_run_and_the_next_run_charges_once(
    call400, airflow_home
) -> None:
    payment = PaymentCenter({APP_ID: PAYMENT_KEY}).start()
    listing = ListingService({APP_ID: LISTING_KEY}).start()
    try:
        payment.set_account(10086, 100 * 4000)
        call400.publish(
            [
                call_body("r1", start_time="2026-03-01 10:00:00"),
                call_body("r2", start_time="2026-03-02 10:00:00"),
            ]
        )

        succeeded, output = run_billing(call400, airflow_home, payment, listing, "not-the-key")
        assert not succeeded, output[-3000:]
        rows = call400.query("SELECT call_id, status FROM sublessor_call_payment_log_201409")
        assert sorted(rows) == [("r1", "pending"), ("r2", "pending")]
        assert payment.state()["charges"] == 0

        succeeded, output = run_billing(call400, airflow_home, payment, listing, PAYMENT_KEY)
        assert succeeded, output[-3000:]
        rows = call400.query(
            "SELECT call_id, status, id FROM sublessor_call_payment_log_201409 ORDER BY id"
        )
        assert [(c, s) for c, s, _ in rows] == [("r1", "success"), ("r2", "success")]
        assert rows[0][2] >= 820000000000
        state = payment.state()
        assert state["charges"] == 2 and state["double_charged"] == []
        assert payment.balance(10086) == 98 * 4000
    finally:
        payment.stop()
        listing.stop()
