"""call400_billing on CeleryExecutor: two workers, one killed mid-charge, every call charged once.

A real deployment on this machine (``CeleryCluster``: scheduler, api-server,
dag-processor, triggerer, two ``airflow celery worker`` processes on the local
RabbitMQ) bills calls published to a fresh queue through the sandbox payment
center. While a ``bill`` task is half-way through charging its orders, the worker
running it is SIGKILLed with every process under it, as if its machine died. The
scheduler finds the task without heartbeats, the retry runs on the surviving
worker and re-sends the still pending orders with their order ids: the payment
log and the sandbox ledger must agree that every call was charged exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sublessor_billing.demo.billing_workload import PAYMENT_LOG, PRICE_FEN, BillingWorkload

pytestmark = [pytest.mark.integration, pytest.mark.celery, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
CALLS, SUBLESSORS, PER_RUN = 300, 4, 100
# Each sublessor's orders are sent one after another: 25 per run at 200 ms is ~5 s of
# charging per run, a window wide enough to kill the worker in the middle of it.
LATENCY_MS = 200
VARIABLES = {"call400_max_messages_per_run": PER_RUN, "call400_sensor_timeout": 60,
             "payment_api_timeout": 5000}  # fmt: skip


@pytest.fixture
def workload():
    made = BillingWorkload.create(sublessors=SUBLESSORS, latency_ms=LATENCY_MS)
    yield made
    made.drop()


@pytest.fixture
def cluster_class():
    try:
        import airflow.providers.celery  # noqa: F401

        from sublessor_billing.demo.celery_cluster import CeleryCluster
    except ImportError as exc:  # pragma: no cover - an incomplete install
        pytest.fail(f"the Celery extra is missing ({exc}): run `make install-celery`")
    return CeleryCluster


def running_charge(cluster) -> tuple[str, int] | None:
    """(run id, pid) of the ``bill`` task running now, from the REST API."""
    running = [
        (ti["dag_run_id"], int(ti["pid"]))
        for ti in cluster.task_instances("call400_billing", state="running")
        if ti["task_id"] == "bill" and ti.get("pid")
    ]
    return running[0] if running else None


def kill_a_worker_mid_charge(cluster, workload: BillingWorkload, deadline: float) -> str:
    """SIGKILL the worker running ``bill`` once this try charged some orders, not all."""
    settled_before: dict[tuple[str, int], int] = {}  # (run, pid) -> successes when first seen
    while time.monotonic() < deadline:
        charge = running_charge(cluster)
        statuses = workload.statuses()
        if charge:
            before = settled_before.setdefault(charge, statuses.get("success", 0))
            if statuses.get("success", 0) > before and statuses.get("pending"):
                worker = cluster.worker_of(charge[1])
                if worker is not None:
                    cluster.kill_worker(worker)
                    return charge[0]
        time.sleep(0.1)
    raise AssertionError(f"no charge task was caught mid-way:\n{cluster.logs()}")


def test_two_workers_one_killed_mid_charge_every_call_charged_exactly_once(
    workload, cluster_class
) -> None:
    workload.fund(CALLS // SUBLESSORS)
    workload.publish(CALLS)
    deadline = time.monotonic() + 600
    with cluster_class(REPO, env=workload.airflow_env(VARIABLES)) as cluster:
        cluster.start(n_workers=2)
        cluster.unpause("call400_billing")
        killed_run = kill_a_worker_mid_charge(cluster, workload, deadline)
        at_kill = workload.statuses()

        def finished() -> bool:
            run = cluster.dag_run("call400_billing", killed_run)
            return workload.statuses() == {"success": CALLS} and run["state"] == "success"

        while not finished():
            assert time.monotonic() < deadline, (
                f"not billed in time: {workload.statuses()}, queued {workload.queued()}\n"
                f"{cluster.logs()}"
            )
            time.sleep(1)
        tries = [
            ti["try_number"]
            for ti in cluster.task_instances("call400_billing", killed_run)
            if ti["task_id"] == "bill"
        ]

    assert at_kill.get("pending") and at_kill.get("success")
    assert tries[0] >= 2, "the killed bill task was retried"
    report = workload.verify()
    assert report["charged"] == CALLS and not report["not_charged"], report
    assert not report["not_success"], report
    assert report["double_charges"] == 0 and report["ledger_charges"] == CALLS, report
    assert not report["ledger_without_row"] and not report["rows_without_charge"], report
    assert report["charged_fen"] == CALLS * PRICE_FEN
    assert workload.queued() == 0
    assert workload.query(f"SELECT COUNT(*) FROM {PAYMENT_LOG} WHERE status = 'pending'") == [(0,)]
