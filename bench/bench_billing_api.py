"""Benchmark: the Billing API's summary of a day on a 1,000,000-row call log.

Builds a uniquely named database: a call log of ``--calls`` rows spread evenly
over ``--days`` days ending on the measured day (MariaDB's sequence engine), the
orders of the valid calls (some pending, refused), quarantined messages, offline
decisions and K3 states. Then measures ``ops.summary.day_summary`` in process
(the database's share) and ``GET /billing/api/summary?day=...`` through a real
Airflow api-server with the plugin (token from the simple auth manager), and
prints p50/p95, the machine's load, the plans of the day queries and what
building ``idx_received`` on the full log costs. Drops everything afterwards.

    .venv/bin/python bench/bench_billing_api.py [--calls 1000000] [--days 30] [--requests 60]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_migrations
from sublessor_billing.demo.airflow_server import AirflowApiServer
from sublessor_billing.ops.clock import Day
from sublessor_billing.ops.summary import SUMMARY_QUERIES, day_summary, hourly_params

REPO = Path(__file__).resolve().parents[1]

MYSQL = MySqlTarget(host=os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"))
DAY = date(2026, 3, 1)
STEP = 250_000


def fill(conn, calls: int, days: int) -> None:
    spacing = days * 86400 / calls
    end = f"{DAY + timedelta(days=1)} 00:00:00"
    with conn.cursor() as cur:
        for first in range(1, calls + 1, STEP):
            last = min(first + STEP - 1, calls)
            # rules: 40% valid, 20% not connected, 10% short, repeat, broker; 10% unjudged
            # (filter_rule 0 with judged_at NULL: a held call has judged_at set, below)
            cur.execute(
                "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller,"
                " caller_normalized, called, status, start_time, duration, filter_rule, judged_at,"
                " received_at)"
                " SELECT CONCAT('b-', seq), 1 + seq % 5000, CONCAT('139', LPAD(seq % 300000, 8, '0')),"
                " CONCAT('139', LPAD(seq % 300000, 8, '0')), '4008123456', 1, t, 60,"
                " ELT(1 + seq % 10, 1, 1, 1, 1, 2, 2, 3, 4, 5, 0), IF(seq % 10 = 9, NULL, NOW(3)),"
                " CONVERT_TZ(t + INTERVAL 65 SECOND, '+08:00', @@session.time_zone)"
                f" FROM (SELECT seq, TIMESTAMP('{end}') - INTERVAL CEIL(seq * {spacing}) SECOND AS t"
                f" FROM seq_{first}_to_{last}) s"
            )
            conn.commit()
        cur.execute(  # 20 calls the judge holds (calls.held), the newest unjudged ones
            "UPDATE sublessor_call_log_201409 SET judged_at = NOW(3), held_count = 1,"
            " held_reason = 'judge failed on this call' WHERE filter_rule = 0"
            " ORDER BY id LIMIT 20"
        )
        # each order made two minutes after its call started, on the server's clock
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject,"
            " status, created_at) SELECT call_id, sublessor_id, 4000, CONCAT('400 call ', call_id),"
            " ELT(1 + id % 50, 'insufficient', 'failed', " + ", ".join(["'success'"] * 48) + "),"
            " CONVERT_TZ(start_time + INTERVAL 2 MINUTE, '+08:00', @@session.time_zone)"
            " FROM sublessor_call_log_201409 WHERE filter_rule = 1 ORDER BY start_time, id"
        )
        cur.execute(  # the last 300 orders are still pending
            "UPDATE sublessor_call_payment_log_201409 SET status = 'pending'"
            " ORDER BY id DESC LIMIT 300"
        )
        cur.execute(  # 10,000 quarantined over time, the newest 1,000 still open
            "INSERT INTO call400_quarantine (body_sha256, raw_body, reason, status, received_at)"
            " SELECT SHA2(seq, 256), CONCAT('{\"call_id\": \"q', seq, '\"}'),"
            " ELT(1 + seq % 3, 'sublessor_id is missing', 'body is not JSON', 'caller is missing'),"
            " IF(seq > 9000, 'quarantined', 'discarded'),"
            f" TIMESTAMP('{DAY}') - INTERVAL (10000 - seq) MINUTE FROM seq_1_to_10000"
        )
        cur.execute(
            "INSERT INTO sublessor_offline_event (request_id, sublessor_id, trigger_order_id, reason,"
            " status, created_at) SELECT CONCAT('r-', seq), seq % 5000, seq, 'insufficient',"
            f" IF(seq % 7 = 0, 'pending', 'done'), TIMESTAMP('{DAY}') - INTERVAL seq * 20 MINUTE"
            " FROM seq_1_to_2000"
        )
        cur.execute(
            "INSERT INTO k3_contract_export_state (contract_id, contract_no, state, last_error)"
            " SELECT seq, CONCAT('HT-', seq), IF(seq % 100 = 0, 'refused', 'exported'),"
            " IF(seq % 100 = 0, 'FAmount: invalid', NULL) FROM seq_1_to_5000"
        )
        cur.execute(
            "INSERT INTO job_cursor (name, position_time) VALUES ('broker_phone_sync', NOW())"
        )
    conn.commit()


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (
        f"p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()

    name = f"bench_billing_api_{secrets.token_hex(4)}"
    admin = connect(MYSQL)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    target = MYSQL.with_database(name)
    try:
        conn = connect(target)
        apply_migrations(conn)
        started = time.perf_counter()
        fill(conn, args.calls, args.days)
        print(
            f"built {args.calls:,} calls over {args.days} days in {time.perf_counter() - started:.1f} s"
        )
        with conn.cursor() as cur:
            cur.execute(
                "ANALYZE TABLE sublessor_call_log_201409, sublessor_call_payment_log_201409"
            )
            cur.fetchall()
            started = time.perf_counter()
            cur.execute("ALTER TABLE sublessor_call_log_201409 DROP KEY idx_received")
            cur.execute(
                "ALTER TABLE sublessor_call_log_201409 ADD KEY idx_received (received_at, filter_rule)"
            )
            print(f"building idx_received on the full log: {time.perf_counter() - started:.1f} s")
            day = Day(DAY).on_database_clock(cur)
            for query, sql in SUMMARY_QUERIES.items():
                cur.execute("EXPLAIN " + sql, hourly_params(day))
                for row in cur.fetchall():
                    print(
                        f"EXPLAIN {query}: table={row[2]} type={row[3]} key={row[5]} rows={row[8]}"
                        f" extra={row[9]}"
                    )
        summary = day_summary(conn, DAY)
        print(
            f"day {DAY}: {summary['calls']['total']:,} calls, {summary['charges']['orders']:,} orders,"
            f" {summary['pending']['count']} pending, {summary['quarantine']['open']:,} quarantined"
        )
        samples = []
        for _ in range(args.requests):
            started = time.perf_counter()
            day_summary(conn, DAY)
            samples.append(time.perf_counter() - started)
        print(f"day_summary in process: {percentiles(samples)}; {load()}")
        conn.close()

        env = {"AIRFLOW_CONN_USER_PROP_DB": json.dumps(target.airflow_connection())}
        with AirflowApiServer(REPO, env=env) as server:
            token = server.token("viewer")
            path = f"/billing/api/summary?day={DAY}"
            for _ in range(5):  # first requests import the app and open the hook
                status, body = server.request("GET", path, token=token)
                assert status == 200, f"GET {path}: HTTP {status}: {body!r:.500}"
            samples, parts = [], {}
            before = load()
            for _ in range(args.requests):
                started = time.perf_counter()
                status, _ = server.request("GET", path, token=token)
                samples.append(time.perf_counter() - started)
                assert status == 200
                for part in server.last_headers["server-timing"].split(", "):
                    label, duration = part.split(";dur=")
                    parts.setdefault(label, []).append(float(duration) / 1000)
            print(f"GET {path} via the api-server: {percentiles(samples)}")
            for label, durations in parts.items():
                print(f"  of which {label}: {percentiles(durations)}")
            print(f"  before: {before}; after: {load()}")
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


if __name__ == "__main__":
    main()
