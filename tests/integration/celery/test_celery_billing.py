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
from celery_billing_checks import (
    DAG_ID,
    SUBLESSORS,
    assert_charged_exactly_once,
    by_deadline,
    wait_all_billed,
)

from sublessor_billing.demo.billing_workload import BillingWorkload

pytestmark = [pytest.mark.integration, pytest.mark.celery, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
CALLS, PER_RUN = 300, 100
VARIABLES = {"call400_max_messages_per_run": PER_RUN, "call400_sensor_timeout": 60,
             "payment_api_timeout": 5000}  # fmt: skip


def running_charge(cluster) -> tuple[str, int] | None:
    """(run id, pid) of the ``bill`` task running now, from the REST API."""
    running = [
        (ti["dag_run_id"], int(ti["pid"]))
        for ti in cluster.task_instances(DAG_ID, state="running")
        if ti["task_id"] == "bill" and ti.get("pid")
    ]
    return running[0] if running else None


def kill_a_worker_mid_charge(cluster, workload: BillingWorkload, deadline: float) -> str:
    """SIGKILL the worker running ``bill`` once this try charged some orders, not all."""
    settled_before: dict[tuple[str, int], int] = {}  # (run, pid) -> successes when first seen

    def killed_mid_charge() -> str | None:
        charge = running_charge(cluster)
        statuses = workload.statuses()
        if charge:
            before = settled_before.setdefault(charge, statuses.get("success", 0))
            if statuses.get("success", 0) > before and statuses.get("pending"):
                worker = cluster.worker_of(charge[1])
                if worker is not None:
                    cluster.kill_worker(worker)
                    return charge[0]
        return None

    what = "a bill task caught mid-charge (some orders charged, some pending)"
    return by_deadline(killed_mid_charge, deadline, lambda: f"{what}:\n{cluster.logs()}")


def test_two_workers_one_killed_mid_charge_every_call_charged_exactly_once(
    workload, cluster_class
) -> None:
    workload.fund(CALLS // SUBLESSORS)
    workload.publish(CALLS)
    deadline = time.monotonic() + 600
    with cluster_class(REPO, env=workload.airflow_env(VARIABLES)) as cluster:
        cluster.start(n_workers=2)
        cluster.unpause(DAG_ID)
        killed_run = kill_a_worker_mid_charge(cluster, workload, deadline)
        at_kill = workload.statuses()
        wait_all_billed(cluster, workload, killed_run, CALLS, deadline)
        tries = [
            ti["try_number"]
            for ti in cluster.task_instances(DAG_ID, killed_run)
            if ti["task_id"] == "bill"
        ]

    assert at_kill.get("pending") and at_kill.get("success")
    assert tries[0] >= 2, "the killed bill task was retried"
    assert_charged_exactly_once(workload, CALLS)
