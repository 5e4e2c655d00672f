"""Benchmark: the live billing workload on LocalExecutor and on CeleryExecutor with 1 and 2 workers,
charging in one task or spread over shards (Variable ``call400_charge_shards``).

For each configuration, a whole deployment on this machine
(``sublessor_billing.demo.celery_cluster.CeleryCluster``: scheduler, api-server,
dag-processor, triggerer, and the Celery workers), a fresh ``user_prop_db``,
queue and sandbox payment center (``BillingWorkload``); ``call400_billing`` is
unpaused and, once its first run waits for calls, valid calls are published at a
steady rate for a while, then the benchmark waits until every one is charged.
Configurations (``--configs``): ``local`` (LocalExecutor, 1 shard), ``celery1``
(1 worker, 1 shard), ``celery2`` (2 workers, 1 shard), ``celery2s2`` (2 workers,
2 shards: each run's charging in two ``charge_shard`` tasks).

Printed per configuration: publish-to-charge p50 / p95 (publish time of each call
to the ``settled_at`` of its success, same machine clock), charges/s (calls over
first publish to last charge), double charges (sandbox ledger), calls not charged,
and the load average before and after (the machine is shared; figures move with it).

    PYTHONPATH=include:plugins .venv/bin/python bench/bench_executors.py
        [--configs local,celery1,celery2s2] [--rate 20] [--seconds 60] [--latency-ms 5]
        [--sublessors 20] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from _support import load

from sublessor_billing.demo.billing_workload import BillingWorkload
from sublessor_billing.demo.celery_cluster import CeleryCluster

REPO = Path(__file__).resolve().parents[1]
# name: (executor, Celery workers, call400_charge_shards)
CONFIGS = {"local": ("LocalExecutor", 0, 1), "celery1": ("CeleryExecutor", 1, 1),
           "celery2": ("CeleryExecutor", 2, 1), "celery2s2": ("CeleryExecutor", 2, 2)}  # fmt: skip
DRAIN_LIMIT_S = 600


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def wait_for_sensor(cluster: CeleryCluster, limit_s: float = 300) -> None:
    """Until the first run's sensor waits for calls (deferred), so publishing measures billing."""
    deadline = time.monotonic() + limit_s
    while not any(
        ti["task_id"] == "wait_for_work"
        for ti in cluster.task_instances("call400_billing", state="deferred")
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"call400_billing never waited for calls:\n{cluster.logs()}")
        time.sleep(0.5)


def publish_steadily(workload: BillingWorkload, rate: float, seconds: float) -> int:
    """Publish ``rate`` calls a second for ``seconds`` (a batch every half second)."""
    started, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * (elapsed + 0.5)) - sent
        if due > 0:
            workload.publish(due)
            sent += due
        time.sleep(max(0.0, started + elapsed + 0.5 - time.monotonic()))
    return sent


def run_one(name: str, args: argparse.Namespace) -> dict:
    executor, workers, shards = CONFIGS[name]
    workload = BillingWorkload.create(sublessors=args.sublessors, latency_ms=args.latency_ms)
    try:
        calls = int(args.rate * args.seconds) + args.sublessors
        workload.fund(calls // args.sublessors + 1)
        variables = {"call400_sensor_timeout": 600, "call400_charge_shards": shards}
        env = workload.airflow_env(variables)
        with CeleryCluster(
            REPO, env=env, executor=executor, worker_concurrency=args.concurrency,
            fast_recovery=False,
        ) as cluster:  # fmt: skip
            cluster.start(n_workers=workers)
            cluster.unpause("call400_billing")
            wait_for_sensor(cluster)
            load_before = os.getloadavg()[0]
            sent = publish_steadily(workload, args.rate, args.seconds)
            deadline = time.monotonic() + DRAIN_LIMIT_S
            while workload.statuses().get("success", 0) < sent:
                if time.monotonic() > deadline:
                    print(f"{name}: not all charged after {DRAIN_LIMIT_S} s: {workload.statuses()}")
                    break
                time.sleep(0.5)
            load_after = os.getloadavg()[0]
        times = workload.charge_times()
        latencies = [charged - published for published, charged in times]
        report = workload.verify()
        span = max((c for _, c in times), default=0) - min(workload.published.values())
        return {
            "config": name, "executor": executor, "workers": workers, "shards": shards,
            "calls": sent,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "rate": report["charged"] / max(span, 1e-9),
            "double": report["double_charges"], "missing": len(report["not_charged"]),
            "load": f"{load_before:.2f} -> {load_after:.2f}",
        }  # fmt: skip
    finally:
        workload.drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="local,celery1,celery2s2", help=", ".join(CONFIGS))
    parser.add_argument("--rate", type=float, default=20, help="calls published per second")
    parser.add_argument("--seconds", type=float, default=60, help="how long to publish")
    parser.add_argument("--latency-ms", type=float, default=5, help="payment center latency")
    parser.add_argument("--sublessors", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4, help="tasks per Celery worker")
    args = parser.parse_args()
    rows = []
    for name in args.configs.split(","):
        print(f"== {name}: {load()}", flush=True)
        rows.append(run_one(name, args))
        print(rows[-1], flush=True)
    print(f"\n{args.rate:g} calls/s for {args.seconds:g} s, payment center {args.latency_ms:g} ms, "
          f"{args.sublessors} sublessors")  # fmt: skip
    print(f"{'executor':<15} {'workers':>7} {'shards':>6} {'calls':>6} {'p50 s':>7} {'p95 s':>7} "
          f"{'charges/s':>9} {'double':>6} {'missing':>7}  load (1 min, before -> after)")  # fmt: skip
    for r in rows:
        print(f"{r['executor']:<15} {r['workers']:>7} {r['shards']:>6} {r['calls']:>6} "
              f"{r['p50']:>7.2f} {r['p95']:>7.2f} {r['rate']:>9.1f} {r['double']:>6} "
              f"{r['missing']:>7}  "
              f"{r['load']}")  # fmt: skip
    return 0 if all(r["double"] == 0 and r["missing"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
