"""`airflow dags test call400_billing` with Variable call400_charge_shards = 2, every task real.

``bill`` takes in, judges and allocates; two mapped ``charge_shard`` tasks each
charge the sublessors of their shard (``sublessor_id % 2``) and deliver their
offline decisions. One shard's answers are lost after the money moved in every
in-task attempt: that shard fails its first try alone (the other commits), and
Airflow's retry settles its orders with the same ids. Then a run at the default
(one shard) skips ``charge_shard`` and is green; and a shard that fails for good
fails the run while the other shard's charges stand.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from support.airflow import airflow_env, dags_test
from support.calls import call_body
from support.connections import APP_ID, LISTING_KEY, PAYMENT_KEY

from sublessor_billing.sandbox.listing_service import ListingService
from sublessor_billing.sandbox.payment_center import PaymentCenter
from sublessor_billing.sandbox.server import Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

PRICE = 40 * 100
SUBLESSORS = (20, 21, 22, 23)  # shard 0: 20, 22; shard 1: 21, 23


def metadata(env: dict[str, str], sql: str) -> list[tuple]:
    """Read the dags-test metadata database (SQLite in the test's AIRFLOW_HOME)."""
    path = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def bill_once(env: dict[str, str]) -> tuple[bool, str, str]:
    """One `airflow dags test call400_billing`: (succeeded, output, run_id)."""
    run = dags_test(env, "call400_billing", timeout=240)
    assert run.state in ("success", "failed"), run.output[-3000:]
    return run.state == "success", run.output, run.run_id


def tasks(env: dict[str, str], run_id: str) -> dict[tuple[str, int], tuple]:
    rows = metadata(
        env,
        "SELECT task_id, map_index, state, try_number, rendered_map_index FROM task_instance "
        f"WHERE run_id = '{run_id}'",
    )
    return {(t, m): (s, n, r) for t, m, s, n, r in rows}


def xcom(env: dict[str, str], run_id: str, task_id: str, key: str, map_index: int = -1):
    rows = metadata(
        env,
        f"SELECT value FROM xcom WHERE run_id = '{run_id}' AND task_id = '{task_id}' "
        f"AND key = '{key}' AND map_index = {map_index}",
    )
    return json.loads(rows[0][0]) if rows else None


def test_two_shard_tasks_charge_their_own_sublessors_and_a_failed_one_is_retried(
    call400, airflow_home
) -> None:
    payment = PaymentCenter({APP_ID: PAYMENT_KEY}).start()
    listing = ListingService({APP_ID: LISTING_KEY}).start()
    try:
        for sub in SUBLESSORS:
            payment.set_account(sub, 10 * PRICE)
        payment.set_account(23, PRICE + 100)  # runs dry at its first call: taken offline
        listing.set_listings(23, 3)
        # Every answer for sublessor 21 (shard 1) lost after the money moved, in all four
        # in-task attempts: shard 1's first try fails with its orders pending.
        payment.add_fault(
            Fault("error_after", path="/trade/charge", match={"user_id": 21}, times=4)
        )
        env = airflow_env(
            airflow_home,
            connections=call400.billing_connections(payment, listing, PAYMENT_KEY),
            variables={"call400_sensor_timeout": 2, "call400_charge_shards": 2},
        )
        call400.publish(
            [
                call_body(f"s{sub}-{n}", sublessor_id=sub, caller=f"1390000{sub}{n:02d}",
                          start_time=f"2026-03-01 10:{n:02d}:00")
                for sub in SUBLESSORS for n in range(2)
            ]
        )  # fmt: skip

        succeeded, output, run_id = bill_once(env)
        assert succeeded, output[-3000:]
        ran = tasks(env, run_id)
        assert ran[("charge_shard", 0)] == ("success", 1, "shard 0 of 2")
        assert ran[("charge_shard", 1)] == ("success", 2, "shard 1 of 2")  # retried once
        assert ran[("bill", -1)][:2] == ("success", 1) and ran[("done", -1)][0] == "success"

        assert xcom(env, run_id, "bill", "return_value") == [
            {"index": 0, "count": 2}, {"index": 1, "count": 2}
        ]  # fmt: skip
        assert xcom(env, run_id, "bill", "allocate")["allocated"] == 8
        assert xcom(env, run_id, "bill", "charge") is None  # the shards charged
        # shard 0 charged its four calls in its one try; shard 1's retry the two of 21
        assert xcom(env, run_id, "charge_shard", "charge", 0)["success"] == 4
        assert xcom(env, run_id, "charge_shard", "charge", 1)["success"] == 2
        assert xcom(env, run_id, "charge_shard", "offline", 0)["sent"] == 0

        rows = call400.query(
            "SELECT sublessor_id, status FROM sublessor_call_payment_log_201409 ORDER BY id"
        )
        statuses: dict[int, list[str]] = {}
        for sub, status in rows:
            statuses.setdefault(sub, []).append(status)
        assert statuses == {20: ["success"] * 2, 21: ["success"] * 2, 22: ["success"] * 2,
                            23: ["success", "insufficient"]}  # fmt: skip
        state = payment.state()
        assert state["charges"] == 7 and state["double_charged"] == []
        assert listing.offline_calls == {23: 1}  # delivered by shard 1 in its first try

        # The default, one shard: bill charges, charge_shard is skipped, the run is green.
        del env["AIRFLOW_VAR_CALL400_CHARGE_SHARDS"]
        call400.publish([call_body("s20-9", sublessor_id=20, caller="13900002099")])
        succeeded, output, run_id = bill_once(env)
        assert succeeded, output[-3000:]
        ran = tasks(env, run_id)
        assert ran[("charge_shard", -1)][0] == "skipped" and ran[("done", -1)][0] == "success"
        assert xcom(env, run_id, "bill", "return_value") == []
        assert xcom(env, run_id, "bill", "charge")["success"] == 1
        assert payment.state()["charges"] == 8

        # A shard that fails for good (a reused order id: a person must act, not retried)
        # fails the run; the other shard's charges stand.
        env["AIRFLOW_VAR_CALL400_CHARGE_SHARDS"] = "2"
        reused = {"code": 1004, "message": "order_id already used with different parameters"}
        payment.add_fault(Fault("status_before", path="/trade/charge", match={"user_id": 21},
                                status=200, body=reused))  # fmt: skip
        call400.publish([call_body("s20-8", sublessor_id=20, caller="13900002088"),
                         call_body("s21-8", sublessor_id=21, caller="13900002188")])  # fmt: skip
        succeeded, output, run_id = bill_once(env)
        assert not succeeded, output[-3000:]
        ran = tasks(env, run_id)
        assert ran[("charge_shard", 1)][:2] == ("failed", 1), ran  # not retried
        assert ran[("charge_shard", 0)][0] == "success" and ran[("done", -1)][0] == "success"
        assert dict(call400.query(
            "SELECT call_id, status FROM sublessor_call_payment_log_201409"
            " WHERE call_id IN ('s20-8', 's21-8')"
        )) == {"s20-8": "success", "s21-8": "failed"}  # fmt: skip
        assert payment.state()["charges"] == 9
    finally:
        payment.stop()
        listing.stop()
