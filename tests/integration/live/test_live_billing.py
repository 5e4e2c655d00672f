"""call400_billing under the scheduler (`airflow standalone`): calls charged once, no failed run.

A few small waves of valid calls with 2% of the payment center's answers lost
after the money moved (HTTP 500): every call is charged exactly once (the
payment log against the sandbox ledger) and no run fails, every ``bill`` on
its first try (the lost answers are absorbed inside the task, not by an Airflow
retry). Then, with no new traffic, an order a crashed pass left pending (the
money moved, the answer never recorded) is settled within a minute, with the
same order id and without charging again, by a run that ``wait_for_work``
started for it: the sensor's timeout is 300 s, so no skipped wait can stand in
for the leftovers query.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.waiting import wait_until

from sublessor_billing.db.connect import connect
from sublessor_billing.demo.billing_workload import (
    APP_ID,
    FIRST_SUBLESSOR,
    PAYMENT_KEY,
    PRICE_FEN,
    BillingWorkload,
)
from sublessor_billing.demo.standalone import AirflowStandalone, parse_time
from sublessor_billing.sandbox.payment_center import PaymentCenter
from sublessor_billing.sandbox.server import Fault
from sublessor_billing.signing import Signer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "call400_billing"
SUBLESSORS, WAVES, PER_WAVE, APART_S = 10, 3, 40, 4
SUBLESSOR = FIRST_SUBLESSOR
# A wait that ends skipped still runs bill: 300 s keeps that from settling the crashed order.
VARIABLES = {"call400_sensor_timeout": 300, "payment_api_timeout": 2000}


@pytest.fixture
def workload():
    # seed 11: the 21st and 50th answers are lost, so the test always proves something
    made = BillingWorkload.create(sublessors=SUBLESSORS, latency_ms=5, seed=11)
    yield made
    made.drop()


def charge_behind_the_dags_back(target, payment: PaymentCenter) -> int:
    """What a pass that crashed after the money moved leaves: a pending order, answered but not
    recorded. Written and sent in one transaction, so the DAG never sees it half-made."""
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called,"
                " status, start_time, duration, filter_rule, judged_at, order_allocated)"
                " VALUES ('crashed', %s, '15000000001', '4008123456', 1, NOW(), 95, 1, NOW(3), 1)",
                (SUBLESSOR,),
            )
            cur.execute(
                "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount,"
                " subject) VALUES ('crashed', %s, %s, '400 call crashed')",
                (SUBLESSOR, PRICE_FEN),
            )
            order_id = int(cur.lastrowid)
            body = {"order_id": order_id, "user_id": SUBLESSOR, "amount": PRICE_FEN,
                    "subject": "400 call crashed"}  # fmt: skip
            with payment.lock:
                status, answer = payment.handle(
                    "/trade/charge", Signer(APP_ID, PAYMENT_KEY).sign(body)
                )
            assert (status, answer["code"]) == (200, 0), answer
        conn.commit()
        return order_id
    finally:
        conn.close()


def test_every_call_is_charged_once_and_no_run_fails(workload) -> None:
    workload.fund(WAVES * PER_WAVE)
    payment = workload.payment
    payment.add_fault(Fault("error_after", path="/trade/charge", probability=0.02))
    with AirflowStandalone(REPO, env=workload.airflow_env(VARIABLES)) as airflow:
        airflow.unpause(DAG_ID)
        call_ids = []
        for _ in range(WAVES):
            call_ids += workload.publish(PER_WAVE)
            time.sleep(APART_S)  # deliberate: waves apart in time, caught by different runs
        wait_until(
            lambda: workload.settled(call_ids),
            90,
            lambda: f"every published call settled: {workload.statuses()}",
            interval=0.5,
        )
        report = workload.verify()
        assert report["charged"] == len(call_ids) and not report["not_charged"], report
        assert report["double_charges"] == 0 and report["ledger_charges"] == len(call_ids), report
        assert not report["ledger_without_row"] and not report["rows_without_charge"], report
        assert payment.faults[0].fired > 0, "no answer was lost: the test proves nothing"

        order_id = charge_behind_the_dags_back(workload.target, payment)
        left_at, left_clock = time.time(), time.monotonic()
        wait_until(
            lambda: workload.statuses() == {"success": len(call_ids) + 1},
            60,
            lambda: (
                f"the crashed pass's pending order settled with no new traffic:"
                f" {workload.statuses()}"
            ),
            interval=0.5,
        )
        seconds = time.monotonic() - left_clock
        assert payment.ledger[order_id] == 1  # the same order id, answered as a duplicate
        assert payment.state()["double_charged"] == []

        # The run that settled it was started by the leftovers query, not by a skipped wait.
        settling = run_started_for(airflow, "pending_orders", after=left_at)
        airflow.wait_for_run_end(DAG_ID, settling["dag_run_id"], timeout=30)
        runs = airflow.dag_runs(DAG_ID)
        summaries = [airflow.run_summary(DAG_ID, r) for r in runs]
        finished = [s for s in summaries if s["state"] in ("success", "failed")]
        # at most the newest run is still going, waiting for work (its bill not started)
        assert len(finished) >= len(summaries) - 1, summaries
        assert all(s["state"] == "success" for s in finished), summaries
        for summary in finished:  # every pass green on its first try: no lost answer left over
            bill = summary["tasks"]["bill"]
            assert (bill["state"], bill["try_number"]) == ("success", 1), summary
        print(f"crashed order settled {seconds:.1f} s after it was left; runs {len(runs)}")


def run_started_for(airflow, kind: str, *, after: float, timeout: float = 30) -> dict:
    """The run whose wait_for_work ended after ``after`` having found ``kind`` (its XCom)."""

    def found() -> dict | None:
        for run in reversed(airflow.dag_runs(DAG_ID)):
            tasks = {ti["task_id"]: ti for ti in airflow.task_instances(DAG_ID, run["dag_run_id"])}
            ended = parse_time((tasks.get("wait_for_work") or {}).get("end_date"))
            if ended is None or ended.timestamp() < after:
                continue
            if kind in (airflow.xcom(DAG_ID, run["dag_run_id"], "wait_for_work") or {}):
                return run
        return None

    return wait_until(
        found, timeout, f"a wait_for_work that found {kind} after the crash", interval=0.5
    )
