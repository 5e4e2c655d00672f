"""Benchmark broker_phone_sync: initial sync rate, an idle incremental run, peak memory.

Run: .venv/bin/python bench/bench_broker_sync.py [--rows 1000000] [--big-rows 3000000]

Creates two uniquely named databases on the local MariaDB (source and target),
fills the source from MariaDB's sequence engine, runs each sync in its own
subprocess (so each peak RSS figure is separate) and drops the databases.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_external_ddl, apply_migrations

SERVER = MySqlTarget(
    host=os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    port=int(os.environ.get("TEST_MYSQL_PORT", "3306")),
    user=os.environ.get("TEST_MYSQL_USER", "root"),
    password=os.environ.get("TEST_MYSQL_PASSWORD", ""),
)
# The newest source row is stamped 10:00:00 local (02:00 UTC); older rows one second apart.
NEWEST_UTC = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
NEWEST_LOCAL = "2026-03-01 10:00:00"


def fill_source(target: MySqlTarget, first: int, last: int) -> float:
    """Insert brokers first..last: mobiles in mixed formats, every 50th empty."""
    began = time.perf_counter()
    conn = connect(target)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ajk_brokerextend (BrokerId, UserMobile, TrueName, updated_datetime)"
            " SELECT seq,"
            "  CASE WHEN MOD(seq, 50) = 0 THEN ''"
            "       WHEN MOD(seq, 3) = 0 THEN CONCAT('+86 138-', LPAD(seq, 8, '0'))"
            "       ELSE CONCAT('138', LPAD(seq, 8, '0')) END,"
            "  CONCAT('broker ', seq),"
            f"  TIMESTAMP(%s) - INTERVAL (%s - seq) SECOND FROM seq_{first}_to_{last}",
            (NEWEST_LOCAL, last),
        )
    conn.commit()
    conn.close()
    return time.perf_counter() - began


def child(mode: str, source_db: str, target_db: str) -> None:
    """Run one sync in this process and print its figures as JSON."""
    from sublessor_billing.broker_sync import full_resync, sync_interval

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = connect(SERVER.with_database(source_db))
    target = connect(SERVER.with_database(target_db))
    began = time.perf_counter()
    if mode == "full":
        report = full_resync(source, target)
    elif mode == "history":  # one window over every row's timestamp (a long catch-up)
        report = sync_interval(
            source,
            target,
            start=NEWEST_UTC - timedelta(days=40),
            end=NEWEST_UTC + timedelta(minutes=5),
            overlap_seconds=900,
        )
    else:  # the last complete 5-minute interval, nothing changed since the full sync
        report = sync_interval(
            source,
            target,
            start=NEWEST_UTC - timedelta(minutes=4),
            end=NEWEST_UTC + timedelta(minutes=1),
            overlap_seconds=900,
        )
    seconds = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"seconds": seconds, "report": report.as_dict(), "base_kb": base_kb, "peak_kb": peak_kb}
        )
    )


def run_child(mode: str, source_db: str, target_db: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, source_db, target_db],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(label: str, result: dict) -> None:
    r = result["report"]
    print(
        f"{label}: {r['read']:,} rows read in {result['seconds']:.2f} s "
        f"({r['read'] / max(result['seconds'], 1e-9):,.0f} rows/s); added {r['added']:,}, "
        f"changed {r['changed']:,}, removed {r['removed']:,}, unchanged {r['unchanged']:,}; "
        f"peak RSS {result['peak_kb'] / 1024:.1f} MiB (interpreter + imports {result['base_kb'] / 1024:.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=3_000_000)
    args = parser.parse_args()

    tag = secrets.token_hex(3)
    source_db, target_db = f"bench_broker_src_{tag}", f"bench_broker_dst_{tag}"
    admin = connect(SERVER)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{source_db}` CHARACTER SET utf8mb4")
            cur.execute(f"CREATE DATABASE `{target_db}` CHARACTER SET utf8mb4")
        src = connect(SERVER.with_database(source_db))
        apply_external_ddl(src, "anjuke_db")
        src.close()
        dst = connect(SERVER.with_database(target_db))
        apply_migrations(dst)
        dst.close()

        print(f"MariaDB {SERVER.host}:{SERVER.port}, {os.cpu_count()} CPUs, page size 5000")
        took = fill_source(SERVER.with_database(source_db), 1, args.rows)
        print(f"generated {args.rows:,} source rows in {took:.1f} s")
        show(f"initial sync   {args.rows:>9,}", run_child("full", source_db, target_db))
        show(
            "idle incremental (5 min + 15 min overlap)",
            run_child("incremental", source_db, target_db),
        )
        show(f"full resync, no change {args.rows:>9,}", run_child("full", source_db, target_db))
        show(
            f"incremental over all {args.rows:>9,}, no change",
            run_child("history", source_db, target_db),
        )

        if args.big_rows > args.rows:
            took = fill_source(SERVER.with_database(source_db), args.rows + 1, args.big_rows)
            print(f"generated {args.big_rows - args.rows:,} more source rows in {took:.1f} s")
            with admin.cursor() as cur:
                cur.execute(f"TRUNCATE TABLE `{target_db}`.broker_phone")
            show(f"initial sync   {args.big_rows:>9,}", run_child("full", source_db, target_db))
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{source_db}`")
            cur.execute(f"DROP DATABASE IF EXISTS `{target_db}`")
        admin.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
    else:
        main()
