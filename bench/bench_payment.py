"""Charging throughput: the parallel pipeline vs a sequential client, same sandbox, same run.

The payment center sandbox runs in its own process (so client and server each
get a core) and answers every request after 20 ms. N valid calls spread over
many sublessors are charged by ``charge_valid_calls``; then a smaller sample is
charged one request at a time (each answer recorded before the next request, as
the legacy job did). Prints charges/s of both, the ratio, the CPU each side
spent per charge, the machine's load average with each figure (the machine is
shared), and the double charges read from the sandbox ledger. Targets: >= 2,500
charges/s and >= 40x the sequential client.

Then order allocation on a long history (``--history`` valid calls already
charged, judged two days ago, plus ``--new`` just judged): the previous
full-scan allocation (run and rolled back) vs ``allocation.allocate_orders`` from a
high-water, with the EXPLAIN row of the call log; flagging ``order_allocated`` on
that history (``flags.flag_history``, chunks of 10,000 calls, unbudgeted); and the allocation with
its sweep (``payments/sweep.py``) on a pass with nothing new or missed and on one
after a clock step back (``--missed`` calls judged an hour behind the high-water),
against an anti-join over every valid call.

    .venv/bin/python bench/bench_payment.py [--calls 8000] [--sequential-calls 300] [--workers 64]
        [--history 1000000 (0: skip the allocation part)] [--new 2000] [--missed 100]
        [--allocation-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time

from _support import MYSQL, control, cpu_seconds, load, start_sandbox

from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_migrations
from sublessor_billing.payments import allocation, flags, store
from sublessor_billing.payments.charging import charge_valid_calls
from sublessor_billing.payments.sending import RETRY, charge_until_known
from sublessor_billing.sandbox.__main__ import PAYMENT_KEY, SANDBOX_APP_ID

PRICE_FEN = 4000


def make_db(
    admin, calls: int, sublessors: int, first_sublessor: int, first_order_id: int
) -> MySqlTarget:
    name = f"bench_payment_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    target = MYSQL.with_database(name)
    conn = connect(target)
    apply_migrations(conn)
    rows = [
        (f"b-{name}-{i}", first_sublessor + i % sublessors, f"1390000{i:04d}", i)
        for i in range(calls)
    ]
    with conn.cursor() as cur:
        # each database gets its own order id range: the sandbox is shared
        cur.execute(
            f"ALTER TABLE sublessor_call_payment_log_201409 AUTO_INCREMENT = {first_order_id}"
        )
        cur.executemany(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status, "
            "start_time, duration, filter_rule) VALUES (%s, %s, %s, '4008001234', 1, "
            "TIMESTAMPADD(SECOND, %s, '2026-03-01 00:00:00'), 60, 1)",
            rows,
        )
    conn.commit()
    conn.close()
    return target


# The allocation this replaces: every valid call ever, NOT EXISTS per call, filesort.
FULL_SCAN_ALLOCATE = f"""
INSERT INTO {store.PAYMENT_LOG} (call_id, sublessor_id, amount, subject, call_type, status)
SELECT c.call_id, c.sublessor_id, %s, CONCAT('400 call ', c.call_id), c.call_type, 'pending'
FROM {store.CALL_LOG} c
WHERE c.filter_rule = 1
  AND NOT EXISTS (SELECT 1 FROM {store.PAYMENT_LOG} p WHERE p.call_id = c.call_id)
ORDER BY c.start_time, c.id
"""


def timed(conn, sql: str, params: tuple | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    with conn.cursor() as cur:
        rows = cur.execute(sql, params)
    conn.commit()
    return int(rows), time.perf_counter() - started


def wait_for_purge(conn, limit: int = 100, timeout_s: float = 300) -> None:
    """Wait until InnoDB purged the old index entries of mass updates (the steady state)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count FROM information_schema.INNODB_METRICS "
                "WHERE name = 'trx_rseg_history_len'"
            )
            row = cur.fetchone()
        conn.commit()
        if row is None or row[0] < limit:
            return
        time.sleep(0.5)


def bench_sweep(conn, missed: int) -> str:
    """The allocation (sweep included) with nothing new or missed, then with ``missed`` calls
    judged an hour behind the high-water."""
    plan = next(
        r for r in allocation.sweep_plan(conn) if (r["table"], r["select_type"]) == ("c", "DERIVED")
    )
    started = time.perf_counter()
    idle = allocation.allocate_orders(conn, PRICE_FEN)
    idle_s = time.perf_counter() - started
    timed(
        conn,
        f"INSERT INTO {store.CALL_LOG} (call_id, sublessor_id, caller, called, status, start_time, "
        "duration, filter_rule, judged_at) SELECT CONCAT('m-', seq), 1 + seq % 800, '13900000000', "
        "'4008001234', 1, TIMESTAMPADD(SECOND, seq, '2026-02-01'), 60, 1, NOW(3) - INTERVAL 1 HOUR "
        f"FROM seq_1_to_{missed}",
    )
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT COUNT(*) FROM {store.CALL_LOG} c {store.WITHOUT_ORDER} "
            f"WHERE c.filter_rule = 1 AND {store.NO_ORDER}"
        )
        by_anti_join = cur.fetchone()[0]
    conn.commit()
    anti_s = time.perf_counter() - started
    started = time.perf_counter()
    stepped = allocation.allocate_orders(conn, PRICE_FEN)
    stepped_s = time.perf_counter() - started
    return (
        f"  allocation + sweep, nothing new or missed    {idle.found_by_sweep} found in "
        f"{idle_s * 1000:.1f} ms; sweep EXPLAIN type={plan['type']} key={plan['key']} "
        f"rows={plan['rows']}\n"
        f"  allocation + sweep, {missed} missed       {stepped.found_by_sweep} found and allocated in "
        f"{stepped_s * 1000:.1f} ms\n"
        f"  anti-join, every valid call (not used): {by_anti_join} found in {anti_s:.2f} s"
    )


def bench_allocation(admin, history: int, new: int, missed: int) -> str:
    """Allocation on ``history`` charged calls + ``new`` fresh ones: full scan, high-water, sweep."""
    target = make_db(admin, 0, 1, 1, 820000000000)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            for first, count, judged in (
                (1, history, "INTERVAL 2 DAY"),
                (history + 1, new, "0 SECOND"),
            ):
                cur.execute(
                    f"INSERT INTO {store.CALL_LOG} (call_id, sublessor_id, caller, called, status, "
                    "start_time, duration, filter_rule, judged_at) "
                    "SELECT CONCAT('h-', seq), 1 + seq % 800, '13900000000', '4008001234', 1, "
                    "TIMESTAMPADD(SECOND, seq, '2026-01-01'), 60, 1 + (seq % 5 = 0), "
                    f"NOW(3) - {judged} FROM seq_{first}_to_{first + count - 1}"
                )
                conn.commit()
                if first == 1:  # the history is charged already, before migration 080
                    cur.execute(
                        f"INSERT INTO {store.PAYMENT_LOG} (call_id, sublessor_id, amount, subject, "
                        "status) SELECT call_id, sublessor_id, 4000, 'h', 'success' "
                        f"FROM {store.CALL_LOG} WHERE filter_rule = 1"
                    )
                    cur.execute(
                        "INSERT INTO job_cursor (name, position_time) VALUES (%s, NOW() - INTERVAL 1 MINUTE)",
                        (allocation.ALLOCATION_CURSOR,),
                    )
                    conn.commit()
                    started = time.perf_counter()
                    flagged = flags.flag_history(conn, budget_s=float("inf")).flagged
                    backfill_s = time.perf_counter() - started
                    wait_for_purge(conn)
            started = time.perf_counter()
            full = cur.execute(FULL_SCAN_ALLOCATE, (PRICE_FEN,))
            full_s = time.perf_counter() - started
            conn.rollback()
        plan = next(r for r in allocation.allocation_plan(conn) if r["table"] == "c")
        started = time.perf_counter()
        bounded = allocation.allocate_orders(conn, PRICE_FEN).allocated
        bounded_s = time.perf_counter() - started
        wait_for_purge(conn)
        sweeping = bench_sweep(conn, missed)
    finally:
        conn.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{target.database}`")
    return (
        f"allocation, {history} calls of history + {new} new (4/5 valid):\n"
        f"  history flagged          {flagged} calls in {backfill_s:.2f} s (once, in chunks)\n"
        f"  full scan (previous)     {full} orders in {full_s:.2f} s\n"
        f"  high-water (index)       {bounded} orders in {bounded_s:.3f} s = "
        f"{full_s / max(bounded_s, 1e-6):.0f}x; EXPLAIN type={plan['type']} key={plan['key']} "
        f"rows={plan['rows']}\n{sweeping}"
    )


def sequential(conn, client) -> int:
    """One request at a time, each answer recorded before the next request (the legacy job)."""
    allocation.allocate_orders(conn, PRICE_FEN)
    orders = store.load_pending(conn)
    where = client.describe("/trade/charge")

    async def run() -> None:
        async with client:
            for order in orders:
                outcome = await charge_until_known(client, order, RETRY, where)
                store.record_outcomes(conn, [outcome], price_fen=PRICE_FEN)

    asyncio.run(run())
    return len(orders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=8000)
    parser.add_argument("--sequential-calls", type=int, default=300)
    parser.add_argument("--sublessors", type=int, default=800)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=2000)
    parser.add_argument("--missed", type=int, default=100)
    parser.add_argument("--allocation-only", action="store_true")
    args = parser.parse_args()
    if args.allocation_only:
        admin = connect(MYSQL)
        try:
            print(bench_allocation(admin, args.history, args.new, args.missed))
        finally:
            admin.close()
        return

    proc, url = start_sandbox(args.latency_ms)
    admin = connect(MYSQL)
    databases = []
    try:
        accounts = [{"user_id": s, "balance": 10**12} for s in range(1, 2 * args.sublessors + 1)]
        control(url, "/_sandbox/setup", {"accounts": accounts})
        host, port = url.rsplit(":", 1)
        os.environ["AIRFLOW_CONN_PAYMENT_API"] = json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "login": SANDBOX_APP_ID,
             "password": PAYMENT_KEY}
        )  # fmt: skip
        from sublessor_airflow.hooks.signed_http import PaymentApiHook

        pipe_db = make_db(admin, args.calls, args.sublessors, 1, 820000000000)
        seq_db = make_db(
            admin, args.sequential_calls, args.sublessors, args.sublessors + 1, 830000000000
        )
        databases = [pipe_db.database, seq_db.database]

        client = PaymentApiHook(timeout_ms=20000, pool_size=args.workers).get_async_conn()
        conn = connect(pipe_db)
        load_before = load()
        cpu_before, sandbox_before = time.process_time(), cpu_seconds(proc.pid)
        started = time.perf_counter()
        report = charge_valid_calls(conn, client, price_fen=PRICE_FEN, workers=args.workers)
        pipe_s = time.perf_counter() - started
        client_us = (time.process_time() - cpu_before) / args.calls * 1e6
        sandbox_us = (cpu_seconds(proc.pid) - sandbox_before) / args.calls * 1e6
        pipe_load = load()
        conn.close()

        client = PaymentApiHook(timeout_ms=20000, pool_size=1).get_async_conn()
        conn = connect(seq_db)
        started = time.perf_counter()
        seq_done = sequential(conn, client)
        seq_s = time.perf_counter() - started
        seq_load = load()
        statuses = store.count_by_status(conn)
        conn.close()

        state = control(url, "/_sandbox/state")
        pipe_rate = report.counts["success"] / pipe_s
        seq_rate = seq_done / seq_s
        print(f"sandbox latency            {args.latency_ms:.0f} ms per request (separate process)")
        print(f"machine                    {os.cpu_count()} cores; before the run: {load_before}")
        print(f"pipeline                   {report.counts['success']} charges over {args.sublessors} "
              f"sublessors, {args.workers} workers: {pipe_s:.2f} s = {pipe_rate:.0f} charges/s "
              f"({pipe_load})")  # fmt: skip
        print(f"CPU per charge             client {client_us:.0f} us (requests, signing, recording), "
              f"sandbox {sandbox_us:.0f} us")  # fmt: skip
        print(f"sequential client          {seq_done} charges: {seq_s:.2f} s = {seq_rate:.1f} charges/s "
              f"(statuses {statuses}; {seq_load})")  # fmt: skip
        print(f"ratio                      {pipe_rate / seq_rate:.1f}x (target >= 40x)")
        print(f"target 2500 charges/s      {'met' if pipe_rate >= 2500 else 'NOT met'}")
        print(f"double charges (ledger)    {len(state['double_charged'])}")
        print(f"charges in ledger          {state['charges']} (expected {args.calls + seq_done})")
        if args.history:
            print(bench_allocation(admin, args.history, args.new, args.missed))
    finally:
        with admin.cursor() as cur:
            for name in databases:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
