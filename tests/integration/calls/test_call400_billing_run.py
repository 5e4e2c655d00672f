"""`airflow dags test call400_billing` with every task real: sandboxes for money and listings.

A wrong payment key must fail the run (not hide behind the recovery tasks that
run after it), leave the calls pending with their order ids, and the next run,
once the key is fixed, must charge each of them exactly once.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from call400_fixtures import call_body
from test_call400_quarantine_and_dag import AIRFLOW, airflow_env

from sublessor_billing.sandbox.listing_service import ListingService
from sublessor_billing.sandbox.payment_center import PaymentCenter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

APP, KEY = "sublessor", "sandbox-key"


def http_conn(server, key: str = KEY) -> str:
    return json.dumps(
        {"conn_type": "http", "host": "http://127.0.0.1", "port": server.port,
         "login": APP, "password": key}
    )  # fmt: skip


def dags_test(env: dict[str, str]) -> tuple[bool, str]:
    """Run once; `airflow dags test` exits non-zero ("DagRun failed") when the run failed."""
    run = subprocess.run(
        [str(AIRFLOW), "dags", "test", "call400_billing"],
        env=env,
        capture_output=True,
        timeout=240,
        text=True,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0 or "DagRun failed" in output, output[-3000:]
    return run.returncode == 0, output


def test_a_wrong_payment_key_fails_the_run_and_the_next_run_charges_once(call400) -> None:
    payment = PaymentCenter({APP: KEY}).start()
    listing = ListingService({APP: KEY}).start()
    try:
        payment.set_account(10086, 100 * 4000)
        env = airflow_env(call400)
        env["AIRFLOW_CONN_LISTING_API"] = http_conn(listing)
        env["AIRFLOW_CONN_PAYMENT_API"] = http_conn(payment, key="not-the-key")
        subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True)
        call400.publish(
            [
                call_body("r1", start_time="2026-03-01 10:00:00"),
                call_body("r2", start_time="2026-03-02 10:00:00"),
            ]
        )

        succeeded, output = dags_test(env)
        assert not succeeded, output[-3000:]
        rows = call400.query("SELECT call_id, status FROM sublessor_call_payment_log_201409")
        assert sorted(rows) == [("r1", "pending"), ("r2", "pending")]
        assert payment.state()["charges"] == 0

        env["AIRFLOW_CONN_PAYMENT_API"] = http_conn(payment)
        succeeded, output = dags_test(env)
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
