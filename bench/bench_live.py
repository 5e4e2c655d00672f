"""Benchmark: call400_billing as a live service under `airflow standalone`.

Set-up (not timed): ``BillingWorkload`` (a fresh user_prop_db, a unique queue,
the sandbox payment center answering after ``--latency-ms``, 20, and listing
service in this process, 200 sublessors with ample balance), an anjuke_db with
brokers, and ``AirflowStandalone`` (scheduler, dag-processor, triggerer,
api-server; LocalExecutor on SQLite) on a temporary AIRFLOW_HOME, with
call400_billing and broker_phone_sync unpaused.

1. Fixed costs of a run: one run with nothing to do (its wait skipped after
   Variable ``call400_sensor_timeout``, then the pass), and runs with 1 call
   published while the DAG waits: publish to charge, and each run's timeline
   (what Airflow's hops cost against the tasks' own time).
2. For each share of lost answers (``--lost``, default 0 and 0.02: the payment
   center's answer replaced by an HTTP 500 after the money moved): ``--waves``
   waves of ``--per-wave`` valid calls ``--apart`` seconds apart, then wait
   until every call is settled. Prints publish-to-charge p50/p95/max (from each
   call's publish to its order's ``settled_at``), double charges (sandbox
   ledger), calls not charged, the runs' states and retries, Airflow's CPU.

Target at 2% lost: p95 <= 30 s, no failed run, 0 double charges. Every figure
is printed with the load average (the machine is shared).

    PYTHONPATH=include:plugins .venv/bin/python bench/bench_live.py [--waves 6]
        [--per-wave 200] [--apart 20] [--latency-ms 20] [--lost 0 0.02]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from pathlib import Path

from _support import MYSQL, load

from sublessor_billing.db.connect import connect
from sublessor_billing.db.migrate import apply_external_ddl
from sublessor_billing.demo.billing_workload import BillingWorkload
from sublessor_billing.demo.standalone import AirflowStandalone, parse_time
from sublessor_billing.sandbox.server import Fault

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "call400_billing"
SUBLESSORS = 200
SENSOR_TIMEOUT_S = 30


def airflow_cpu_seconds(airflow: AirflowStandalone) -> float:
    """User + system CPU of every process of the standalone's group, finished children included."""
    total = 0.0
    pgid = airflow.process.pid
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timeline(airflow: AirflowStandalone, run: dict) -> str:
    s = airflow.run_summary(DAG_ID, run)
    wait, bill = s["tasks"].get("wait_for_work", {}), s["tasks"].get("bill", {})
    return (
        f"{s['state']:7s} {s['seconds'] or 0:5.1f}s: wait {wait.get('state')} ended {wait.get('end')}s,"
        f" bill queued {bill.get('queued')}s, ran {bill.get('start')}-{bill.get('end')}s"
        f" (try {bill.get('try_number')})"
    )


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def fixed_costs(airflow: AirflowStandalone, workload: BillingWorkload) -> None:
    print(f"\n== fixed costs of a run ({load()})")
    # a run with nothing to do: its wait skips after the timeout, then the pass runs anyway
    wait_for(lambda: any(r["state"] == "success" for r in airflow.dag_runs(DAG_ID)),
             SENSOR_TIMEOUT_S * 3)  # fmt: skip
    for run in airflow.dag_runs(DAG_ID)[-2:]:
        if run["state"] == "success":
            print(f"  idle run     {timeline(airflow, run)}")
    for _ in range(3):
        time.sleep(3)  # the next run is waiting by now
        ids = workload.publish(1)
        wait_for(lambda ids=ids: workload.settled(ids), 120)
        ((published, charged),) = workload.charge_times(ids)
        runs = airflow.dag_runs(DAG_ID)
        run = next((r for r in reversed(runs) if r["state"] == "success"), runs[-1])
        print(f"  1 call       publish to charge {charged - published:5.2f}s;"
              f" run {timeline(airflow, run)}")  # fmt: skip


def scenario(airflow: AirflowStandalone, workload: BillingWorkload, lost: float, args) -> None:
    payment = workload.payment
    payment.clear_faults()
    if lost:
        payment.add_fault(Fault("error_after", path="/trade/charge", probability=lost))
    charges_before = payment.state()["charges"]
    cpu0, started = airflow_cpu_seconds(airflow), time.time()
    print(
        f"\n== {args.waves} waves of {args.per_wave} calls {args.apart:g}s apart, payment center"
        f" {args.latency_ms:g} ms, {lost:.0%} of answers lost after the charge ({load()})"
    )
    ids: list[str] = []
    for _ in range(args.waves):
        t0 = time.time()
        ids += workload.publish(args.per_wave)
        time.sleep(max(0.0, args.apart - (time.time() - t0)))
    complete = wait_for(lambda: workload.settled(ids), 300)
    latencies = [charged - published for published, charged in workload.charge_times(ids)]
    state = payment.state()
    runs = [
        r
        for r in airflow.dag_runs(DAG_ID)
        if (parse_time(r.get("start_date")) or parse_time(r["run_after"])).timestamp() >= started
    ]
    states = {s: sum(r["state"] == s for r in runs) for s in ("success", "failed", "running")}
    retried = sum(1 for r in runs for ti in airflow.task_instances(DAG_ID, r["dag_run_id"])
                  if (ti.get("try_number") or 0) > 1)  # fmt: skip
    print(f"  all settled: {complete}; charged {len(latencies)} of {len(ids)}")
    if latencies:
        print(
            f"  publish to charge: p50 {quantile(latencies, 0.5):.1f}s, p95"
            f" {quantile(latencies, 0.95):.1f}s, max {max(latencies):.1f}s, mean"
            f" {statistics.mean(latencies):.1f}s"
        )
    lost_answers = sum(f.fired for f in payment.faults)
    print(
        f"  double charges: {len(state['double_charged'])}; money moved"
        f" {state['charges'] - charges_before} times for {len(ids)} calls;"
        f" answers lost {lost_answers}"
    )
    print(
        f"  runs: {states}, task retries {retried};"
        f" Airflow CPU {airflow_cpu_seconds(airflow) - cpu0:.0f}s in {time.time() - started:.0f}s;"
        f" {load()}"
    )
    for run in runs[-3:]:
        print(f"    {timeline(airflow, run)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waves", type=int, default=6)
    parser.add_argument("--per-wave", type=int, default=200)
    parser.add_argument("--apart", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--lost", type=float, nargs="*", default=[0.0, 0.02])
    parser.add_argument("--no-fixed-costs", action="store_true")
    args = parser.parse_args()

    workload = BillingWorkload.create(sublessors=SUBLESSORS, latency_ms=args.latency_ms)
    anjuke = MYSQL.with_database(f"bench_live_aj_{secrets.token_hex(3)}")
    admin = connect(MYSQL)
    airflow = None
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{anjuke.database}` CHARACTER SET utf8mb4")
        conn = connect(anjuke)
        apply_external_ddl(conn, "anjuke_db")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO ajk_brokerextend (BrokerId, UserMobile) VALUES (%s, %s)",
                            [(n, f"139{n:08d}") for n in range(1, 301)])  # fmt: skip
        conn.commit()
        conn.close()
        workload.fund(args.waves * args.per_wave * len(args.lost) + 10)
        env = workload.airflow_env({"call400_sensor_timeout": SENSOR_TIMEOUT_S})
        env["AIRFLOW_CONN_ANJUKE_DB"] = json.dumps(anjuke.airflow_connection())
        t0 = time.monotonic()
        airflow = AirflowStandalone(REPO, env=env).start()
        print(f"airflow standalone healthy in {time.monotonic() - t0:.0f}s ({load()})")
        airflow.unpause("broker_phone_sync")
        airflow.unpause(DAG_ID)
        if not args.no_fixed_costs:
            fixed_costs(airflow, workload)
        for lost in args.lost:
            scenario(airflow, workload, lost, args)
        syncs = [r["state"] for r in airflow.dag_runs("broker_phone_sync")]
        print(f"\nbroker_phone_sync runs: {syncs}")
    finally:
        if airflow is not None:
            airflow.stop()
        workload.drop()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{anjuke.database}`")
        admin.close()


if __name__ == "__main__":
    main()
