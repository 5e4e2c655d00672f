"""What the CeleryExecutor tests share: the workload's shape, waiting for the end, the ledger check."""

from __future__ import annotations

import time
import urllib.parse

from support.waiting import wait_until

from sublessor_billing.demo.billing_workload import PAYMENT_LOG, PRICE_FEN, BillingWorkload

DAG_ID = "call400_billing"
SUBLESSORS = 4
# Each sublessor's orders are sent one after another: 25 per run at 200 ms is ~5 s of
# charging per run (or per shard), a window wide enough to kill a worker in the middle.
LATENCY_MS = 200


def quote(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def by_deadline(predicate, deadline: float, what, *, interval: float = 0.1):
    """``wait_until`` with the test's overall ``deadline`` (a ``time.monotonic()`` instant)."""
    return wait_until(predicate, max(0.0, deadline - time.monotonic()), what, interval=interval)


def wait_all_billed(cluster, workload: BillingWorkload, run_id: str, calls: int, deadline: float):
    """Wait until every call is charged and run ``run_id`` succeeded (failing with the logs)."""

    def finished() -> bool:
        run = cluster.dag_run(DAG_ID, quote(run_id))
        return workload.statuses() == {"success": calls} and run["state"] == "success"

    by_deadline(
        finished,
        deadline,
        lambda: (
            f"all {calls} calls charged and run {run_id} succeeded: {workload.statuses()},"
            f" queued {workload.queued()}\n{cluster.logs()}"
        ),
        interval=1,
    )


def assert_charged_exactly_once(workload: BillingWorkload, calls: int) -> None:
    """Every call charged once, by the payment log and the sandbox ledger; nothing left over."""
    report = workload.verify()
    assert report["charged"] == calls and not report["not_charged"], report
    assert not report["not_success"], report
    assert report["double_charges"] == 0 and report["ledger_charges"] == calls, report
    assert not report["ledger_without_row"] and not report["rows_without_charge"], report
    assert report["charged_fen"] == calls * PRICE_FEN
    assert workload.queued() == 0
    assert workload.query(f"SELECT COUNT(*) FROM {PAYMENT_LOG} WHERE status = 'pending'") == [(0,)]
