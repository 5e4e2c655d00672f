"""call400_billing's charging spread over two workers: two shards, one worker killed mid-charge.

A real CeleryExecutor deployment (``CeleryCluster``, two workers of one task slot
each, so the two ``charge_shard`` tasks of a run cannot share a worker) bills
calls with Variable ``call400_charge_shards`` = 2. While both shards of a run
charge, the worker running one of them is SIGKILLed with every process under it.
The two shards must have run on different workers at overlapping times (the REST
API's task instance tries: hostname, start and end); the killed shard is retried
on the survivor and re-sends its pending orders with their ids; the other shard's
work stands. Every call charged exactly once, by the payment log and the ledger.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from celery_billing_checks import (
    DAG_ID,
    SUBLESSORS,
    assert_charged_exactly_once,
    by_deadline,
    quote,
    wait_all_billed,
)

from sublessor_billing.demo.billing_workload import FIRST_SUBLESSOR, PAYMENT_LOG, BillingWorkload

pytestmark = [pytest.mark.integration, pytest.mark.celery, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
CALLS, PER_RUN, SHARDS = 200, 100, 2
VARIABLES = {"call400_max_messages_per_run": PER_RUN, "call400_sensor_timeout": 60,
             "payment_api_timeout": 5000, "call400_charge_shards": SHARDS}  # fmt: skip


def running_shards(cluster) -> list[dict]:
    """The ``charge_shard`` task instances running now (REST API), each with its pid."""
    running = cluster.task_instances(DAG_ID, state="running")
    return [ti for ti in running if ti["task_id"] == "charge_shard" and ti.get("pid")]


def shard_statuses(workload: BillingWorkload, index: int) -> dict[str, int]:
    rows = workload.query(
        f"SELECT status, COUNT(*) FROM {PAYMENT_LOG} WHERE MOD(sublessor_id, %s) = %s "
        "GROUP BY status",
        (SHARDS, index),
    )
    return {status: int(n) for status, n in rows}


def kill_a_shard_mid_charge(cluster, workload: BillingWorkload, deadline: float) -> dict:
    """SIGKILL the worker of one ``charge_shard`` once it charged some of its orders, not all,
    while the other shard runs too; the killed task instance."""
    seen: dict[tuple[str, int], int] = {}  # (run, map index) -> its successes when first seen

    def killed_mid_charge() -> dict | None:
        shards = running_shards(cluster)
        if len(shards) != SHARDS:
            return None
        for ti in shards:
            statuses = shard_statuses(workload, ti["map_index"])
            before = seen.setdefault(
                (ti["dag_run_id"], ti["map_index"]), statuses.get("success", 0)
            )
            worker = cluster.worker_of(int(ti["pid"]))
            if (
                statuses.get("success", 0) > before
                and statuses.get("pending")
                and worker is not None
            ):
                cluster.kill_worker(worker)
                return ti
        return None

    what = "a shard caught mid-charge while the other runs"
    return by_deadline(killed_mid_charge, deadline, lambda: f"{what}:\n{cluster.logs()}")


def tries(cluster, run_id: str, map_index: int) -> list[dict]:
    """Every try of one shard task (REST API), oldest first: hostname, start, end, state."""
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances/charge_shard"
    answer = cluster.api("GET", f"{path}/{map_index}/tries")
    return sorted(answer["task_instances"], key=lambda t: t["try_number"])


def when(value: str | None) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_two_shards_on_two_workers_one_killed_mid_charge_every_call_charged_exactly_once(
    workload, cluster_class
) -> None:
    workload.fund(CALLS // SUBLESSORS)
    workload.publish(CALLS)
    deadline = time.monotonic() + 600
    env = workload.airflow_env(VARIABLES)
    with cluster_class(REPO, env=env, worker_concurrency=1) as cluster:
        cluster.start(n_workers=2)
        cluster.unpause(DAG_ID)
        killed = kill_a_shard_mid_charge(cluster, workload, deadline)
        run_id, index = killed["dag_run_id"], killed["map_index"]
        at_kill = shard_statuses(workload, index)
        wait_all_billed(cluster, workload, run_id, CALLS, deadline)
        killed_tries, other_tries = tries(cluster, run_id, index), tries(cluster, run_id, 1 - index)

    assert at_kill.get("pending") and at_kill.get("success")
    # The two shards ran on the two workers at the same time ...
    first, other = killed_tries[0], other_tries[0]
    assert first["hostname"] != other["hostname"], (first, other)
    assert {first["hostname"].split("-")[0], other["hostname"].split("-")[0]} == {"w0", "w1"}
    assert when(first["start_date"]) < when(other["end_date"])
    assert when(other["start_date"]) < when(first["end_date"])
    # ... the killed one was retried on the survivor, the other ran once.
    assert len(killed_tries) >= 2 and killed_tries[-1]["state"] == "success"
    assert killed_tries[-1]["hostname"] == other["hostname"]
    assert [t["state"] for t in other_tries] == ["success"]

    assert_charged_exactly_once(workload, CALLS)
    assert {FIRST_SUBLESSOR + s for s in range(SUBLESSORS)} == {
        int(s) for (s,) in workload.query(f"SELECT DISTINCT sublessor_id FROM {PAYMENT_LOG}")
    }
