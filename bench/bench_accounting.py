"""Benchmark accounting income: recognise N successful payments over M contracts.

Creates its own uniquely named database on the MariaDB at TEST_MYSQL_HOST (default
127.0.0.1:3306, root), fills it with INSERT ... SELECT from MariaDB's sequence
engine, runs the recognition in batches, checks the result (a full check), then adds
``--more`` payments, recognises them and times the incremental and the full check,
and drops the database.

    .venv/bin/python bench/bench_accounting.py [--payments 100000] [--contracts 5000] [--more N]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import time

from sublessor_billing.accounting import check_income, recognise_until_caught_up
from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_external_ddl, apply_migrations

CONTRACTS_PER_SUBLESSOR = 5
TARGET_RATE = 5000  # payments per second


def seed(conn, payments: int, contracts: int) -> None:
    sublessors = max(1, contracts // CONTRACTS_PER_SUBLESSOR)
    with conn.cursor() as cur:
        # Each sublessor: 5 contracts of 10 days staggered by 6 over September 2014 (overlapping),
        # balances of 15-21 calls plus an odd amount, so payments split and some find nothing.
        cur.execute(
            "INSERT INTO sublessor_contract (sublessor_id, contract_no, total_amount, balance,"
            " start_date, end_date, status, signed_at, updated_datetime)"
            " SELECT 1 + (seq - 1) DIV %s, CONCAT('B', seq), b, b,"
            " '2014-09-01' + INTERVAL ((seq - 1) MOD %s) * 6 DAY,"
            " '2014-09-01' + INTERVAL ((seq - 1) MOD %s) * 6 + 9 DAY,"
            " IF(seq MOD 97 = 0, 0, 1), '2014-08-01', '2014-08-01'"
            " FROM (SELECT seq, 4000 * (15 + seq MOD 7) + 1234 AS b FROM seq_1_to_%s) s",
            (CONTRACTS_PER_SUBLESSOR,) * 3 + (contracts,),
        )
    conn.commit()
    seed_payments(conn, 0, payments, sublessors)


def seed_payments(conn, first: int, count: int, sublessors: int) -> None:
    """``count`` successful payments (and their calls) numbered after ``first``."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
            " start_time, duration, filter_rule)"
            " SELECT CONCAT('bench-', seq), 1 + seq MOD %s, '13800138000', '4008', 1,"
            " '2014-09-01' + INTERVAL (seq * 25) MOD (30 * 86400) SECOND, 60, 1"
            " FROM seq_1_to_%s WHERE seq > %s",
            (sublessors, first + count, first),
        )
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject, status)"
            " SELECT call_id, sublessor_id, 4000, 'call', 'success' FROM sublessor_call_log_201409"
            " WHERE id > %s ORDER BY id",
            (first,),
        )
    conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--contracts", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument(
        "--more", type=int, default=None, help="payments added after the first check (default 10%%)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    server = MySqlTarget(
        host=os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("TEST_MYSQL_PORT", "3306")),
        user=os.environ.get("TEST_MYSQL_USER", "root"),
        password=os.environ.get("TEST_MYSQL_PASSWORD", ""),
    )
    name = f"bench_accounting_{secrets.token_hex(4)}"
    admin = connect(server)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        conn = connect(server.with_database(name))
        apply_migrations(conn)
        apply_external_ddl(conn, "user_prop_db")
        t0 = time.perf_counter()
        seed(conn, args.payments, args.contracts)
        print(
            f"seeded {args.payments} payments, {args.contracts} contracts in {time.perf_counter() - t0:.1f}s"
        )

        t0 = time.perf_counter()
        counts = recognise_until_caught_up(conn, batch_size=args.batch_size)
        elapsed = time.perf_counter() - t0
        rate = counts.payments_processed / elapsed
        print(
            f"recognised {counts.payments_processed} payments in {counts.batches} batches "
            f"(batch size {args.batch_size}): {counts.income_rows} income rows, "
            f"{counts.money_allocated} fen allocated, {counts.money_unallocated} fen unallocated"
        )
        print(
            f"elapsed {elapsed:.2f}s -> {rate:,.0f} payments/s (target >= {TARGET_RATE:,})",
            flush=True,
        )

        t0 = time.perf_counter()
        report = check_income(conn)  # none passed yet: a full check
        print(
            f"check_income (full={report.full}) up to {report.cursor}: consistent, "
            f"{time.perf_counter() - t0:.2f}s",
            flush=True,
        )

        # Then a routine run: more payments arrive, are recognised and checked incrementally.
        more = args.more if args.more is not None else args.payments // 10
        if more:
            seed_payments(
                conn, args.payments, more, max(1, args.contracts // CONTRACTS_PER_SUBLESSOR)
            )
            t0 = time.perf_counter()
            extra = recognise_until_caught_up(conn, batch_size=args.batch_size)
            print(f"recognised {extra.payments_processed} more in {time.perf_counter() - t0:.2f}s")
            t0 = time.perf_counter()
            report = check_income(conn)
            print(
                f"check_income (full={report.full}) of payments {report.checked_from}..{report.cursor} "
                f"({more} new, {args.payments} already checked): {time.perf_counter() - t0:.2f}s"
            )
            t0 = time.perf_counter()
            report = check_income(conn, full=True)
            print(
                f"check_income (full={report.full}) of all {args.payments + more} payments: "
                f"{time.perf_counter() - t0:.2f}s",
                flush=True,
            )
        conn.close()
        if counts.payments_processed != args.payments:
            raise SystemExit(
                f"expected {args.payments} payments, recognised {counts.payments_processed}"
            )
        if rate < TARGET_RATE:
            raise SystemExit(f"below target: {rate:,.0f} < {TARGET_RATE:,} payments/s")
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


if __name__ == "__main__":
    main()
