"""Benchmark: call400_billing as a live service under `airflow standalone`.

Set-up (not timed): a fresh user_prop_db and anjuke_db (brokers), a unique queue,
the sandbox payment center in its own process answering after ``--latency-ms``
(20), the sandbox listing service, and ``AirflowStandalone`` (scheduler,
dag-processor, triggerer, api-server; LocalExecutor on SQLite) on a temporary
AIRFLOW_HOME, with call400_billing and broker_phone_sync unpaused.

1. Fixed costs of a run: one run with nothing to do (its wait skipped after
   Variable ``call400_sensor_timeout``, then the pass), and runs with 1 call
   published while the DAG waits: publish to charge, and each run's timeline
   (what Airflow's hops cost against the tasks' own time).
2. For each share of lost answers (``--lost``, default 0 and 0.02: the payment
   center's answer replaced by an HTTP 500 after the money moved): ``--waves``
   waves of ``--per-wave`` valid calls ``--apart`` seconds apart, then wait
   until every call is settled. Prints publish-to-charge p50/p95/max (from the
   wave's publish to the order's ``settled_at``), double charges (sandbox
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
import urllib.request
from pathlib import Path

from _support import MYSQL, control, load, start_sandbox

from sublessor_billing.db.connect import connect
from sublessor_billing.db.migrate import apply_external_ddl, apply_migrations
from sublessor_billing.demo import live
from sublessor_billing.demo.standalone import AirflowStandalone, parse_time
from sublessor_billing.sandbox.__main__ import PAYMENT_KEY, SANDBOX_APP_ID
from sublessor_billing.sandbox.listing_service import ListingService

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "call400_billing"
PRICE_FEN = 4000
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


def settled(target, call_ids: list[str]) -> bool:
    rows = live.orders(target)
    return all(rows.get(c) and rows[c][0].status != "pending" for c in call_ids)


def fixed_costs(airflow: AirflowStandalone, target, amqp: dict[str, str]) -> None:
    print(f"\n== fixed costs of a run ({load()})")
    # a run with nothing to do: its wait skips after the timeout, then the pass runs anyway
    wait_for(lambda: any(r["state"] == "success" and r.get("end_date")
                         for r in airflow.dag_runs(DAG_ID)), SENSOR_TIMEOUT_S * 3)  # fmt: skip
    for run in airflow.dag_runs(DAG_ID)[-2:]:
        if run["state"] == "success":
            print(f"  idle run     {timeline(airflow, run)}")
    for n in range(3):
        call_id = f"one-{secrets.token_hex(3)}"
        time.sleep(3)  # the next run is waiting by now
        published = live.publish(amqp, [live.valid_call(call_id, 1, 10**6 + n)])
        wait_for(lambda c=call_id: settled(target, [c]), 120)
        order = live.orders(target)[call_id][0]
        runs = airflow.dag_runs(DAG_ID)
        run = next((r for r in reversed(runs) if r["state"] == "success"), runs[-1])
        print(f"  1 call       publish to charge {order.settled_at - published:5.2f}s;"
              f" run {timeline(airflow, run)}")  # fmt: skip


def scenario(
    airflow: AirflowStandalone, target, amqp: dict[str, str], url: str, lost: float, args
) -> None:
    with urllib.request.urlopen(urllib.request.Request(url + "/_sandbox/faults", method="DELETE")):
        pass
    if lost:
        control(url, "/_sandbox/faults",
                {"action": "error_after", "path": "/trade/charge", "probability": lost})  # fmt: skip
    before = control(url, "/_sandbox/state")
    cpu0, started = airflow_cpu_seconds(airflow), time.time()
    print(
        f"\n== {args.waves} waves of {args.per_wave} calls {args.apart:g}s apart, payment center"
        f" {args.latency_ms:g} ms, {lost:.0%} of answers lost after the charge ({load()})"
    )
    published: dict[str, float] = {}
    tag = secrets.token_hex(2)
    for wave in range(args.waves):
        t0 = time.time()
        ids = [f"w{tag}-{wave}-{i}" for i in range(args.per_wave)]
        live.publish(amqp, [live.valid_call(c, 1 + hash(c) % SUBLESSORS, wave * 10**5 + i)
                            for i, c in enumerate(ids)])  # fmt: skip
        published.update(dict.fromkeys(ids, t0))
        time.sleep(max(0.0, args.apart - (time.time() - t0)))
    complete = wait_for(lambda: settled(target, list(published)), 300)
    rows = live.orders(target)
    latencies = [rows[c][0].settled_at - t for c, t in published.items()
                 if rows.get(c) and rows[c][0].status == "success"]  # fmt: skip
    missing = [c for c in published if not (rows.get(c) and rows[c][0].status == "success")]
    state = control(url, "/_sandbox/state")
    runs = [
        r
        for r in airflow.dag_runs(DAG_ID)
        if (parse_time(r.get("start_date")) or parse_time(r["run_after"])).timestamp() >= started
    ]
    states = {s: sum(r["state"] == s for r in runs) for s in ("success", "failed", "running")}
    retried = sum(1 for r in runs for ti in airflow.task_instances(DAG_ID, r["dag_run_id"])
                  if (ti.get("try_number") or 0) > 1)  # fmt: skip
    print(
        f"  all settled: {complete}; charged {len(latencies)}, not charged {len(missing)}"
        f" {missing[:5]}"
    )
    if latencies:
        print(
            f"  publish to charge: p50 {quantile(latencies, 0.5):.1f}s, p95"
            f" {quantile(latencies, 0.95):.1f}s, max {max(latencies):.1f}s, mean"
            f" {statistics.mean(latencies):.1f}s"
        )
    print(
        f"  double charges: {len(state['double_charged'])}; money moved"
        f" {state['charges'] - before['charges']} times for {len(published)} calls;"
        f" answers lost {sum(f['fired'] for f in state['faults'])}"
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

    tag = secrets.token_hex(3)
    names = {"user_prop": f"bench_live_up_{tag}", "anjuke": f"bench_live_aj_{tag}"}
    amqp = {"exchange": f"bench_live_ex_{tag}", "exchange_type": "direct",
            "routing_key": f"bench_live_rk_{tag}", "queue": f"bench_live_q_{tag}"}  # fmt: skip
    admin = connect(MYSQL)
    sandbox, listing, airflow = None, None, None
    try:
        with admin.cursor() as cur:
            for db in names.values():
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        target, anjuke = (MYSQL.with_database(names[k]) for k in ("user_prop", "anjuke"))
        for t, ddl in ((target, "user_prop_db"), (anjuke, "anjuke_db")):
            conn = connect(t)
            apply_external_ddl(conn, ddl)
            if t is target:
                apply_migrations(conn)
            else:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO ajk_brokerextend (BrokerId, UserMobile) VALUES (%s, %s)",
                        [(n, f"139{n:08d}") for n in range(1, 301)],
                    )
                conn.commit()
            conn.close()
        sandbox, url = start_sandbox(args.latency_ms)
        control(
            url,
            "/_sandbox/setup",
            {
                "accounts": [
                    {"user_id": s, "balance": 10**7 * PRICE_FEN} for s in range(1, SUBLESSORS + 1)
                ]
            },
        )
        listing = ListingService({SANDBOX_APP_ID: "listing-key"}).start()
        live.declare_queue(amqp)
        env = live.billing_env(
            target, amqp,
            live.Service(int(url.rsplit(":", 1)[1]), SANDBOX_APP_ID, PAYMENT_KEY),
            live.Service(listing.port, SANDBOX_APP_ID, "listing-key"),
            variables={"call400_sensor_timeout": SENSOR_TIMEOUT_S,
                       "payment_price_per_call": PRICE_FEN // 100},
            extra={"AIRFLOW_CONN_ANJUKE_DB": json.dumps(anjuke.airflow_connection())},
        )  # fmt: skip
        t0 = time.monotonic()
        airflow = AirflowStandalone(REPO, env=env).start()
        print(f"airflow standalone healthy in {time.monotonic() - t0:.0f}s ({load()})")
        airflow.unpause("broker_phone_sync")
        airflow.unpause(DAG_ID)
        if not args.no_fixed_costs:
            fixed_costs(airflow, target, amqp)
        for lost in args.lost:
            scenario(airflow, target, amqp, url, lost, args)
        syncs = [r["state"] for r in airflow.dag_runs("broker_phone_sync")]
        print(f"\nbroker_phone_sync runs: {syncs}")
    finally:
        if airflow is not None:
            airflow.stop()
        if listing is not None:
            listing.stop()
        if sandbox is not None:
            sandbox.terminate()
            sandbox.wait(10)
        live.delete_queue(amqp)
        with admin.cursor() as cur:
            for db in names.values():
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()


if __name__ == "__main__":
    main()
