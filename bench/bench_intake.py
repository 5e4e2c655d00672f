"""Benchmark: intake + judging of queued 400 calls against a call log of 1,000,000 rows.

Creates a uniquely named database and queues on the local MariaDB / RabbitMQ,
fills the log with INSERT ... SELECT from MariaDB's sequence engine, queues
100,000 messages, then measures the batched pipeline (drain + judge_pending)
and, on a 2,000-message sample, a naive per-message consumer (basic_get one,
insert one, judge one, ack one). Prints calls/s, the ratio and peak memory;
drops everything afterwards.

    .venv/bin/python bench/bench_intake.py [--log-rows 1000000] [--messages 100000] [--naive 2000]
"""

from __future__ import annotations

import argparse
import random
import resource
import secrets
import time
from datetime import datetime, timedelta

import pika
from _support import AMQP_URL, call_body, one_by_one, publish, settle, wait_queued

from sublessor_billing.calls.intake import DEFAULT_BATCH_SIZE, drain
from sublessor_billing.calls.judge import judge_pending
from sublessor_billing.calls.message import Call, intake_clock, parse_message
from sublessor_billing.calls.rules import FilterRule, base_rule
from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_migrations

SHORT, WINDOW = 8, 86400
CALLERS = 200_000
SUBLESSORS = 1000
NOW = datetime(2026, 3, 1, 12, 0, 0)


def fill_log(conn, rows: int) -> None:
    """1M judged calls over 30 days: ~CALLERS callers, SUBLESSORS sublessors, 1% brokers."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) "
            f"SELECT seq, CONCAT('139', LPAD(seq * 7 % {CALLERS}, 8, '0')), NOW() FROM seq_1_to_2000"
        )
        step = 250_000
        for start in range(1, rows + 1, step):
            end = min(start + step - 1, rows)
            cur.execute(
                "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, prop_id, caller,"
                " caller_normalized, called, ext, status, start_time, duration, call_type,"
                " filter_rule, judged_at) "
                "SELECT CONCAT('hist-', seq), 1 + seq * 31 %% %s, seq %% 100000,"
                " CONCAT('+86 139', LPAD(seq * 13 %% %s, 8, '0')),"
                " CONCAT('139', LPAD(seq * 13 %% %s, 8, '0')), '4008123456', '', 1,"
                " %s - INTERVAL (seq * 2.592) SECOND, 60, 'normal', 1 + seq %% 5, NOW(3) "
                f"FROM seq_{start}_to_{end}",
                (SUBLESSORS, CALLERS, CALLERS, NOW),
            )
            conn.commit()


def message(i: int, rng: random.Random, prefix: str, log_rows: int) -> bytes:
    """Half the calls come from a (caller, sublessor) pair of the log, near its last call."""
    if rng.random() < 0.5:
        seq = rng.randrange(1, log_rows + 1)
        caller, sublessor = seq * 13 % CALLERS, 1 + seq * 31 % SUBLESSORS
        start = NOW - timedelta(seconds=seq * 2.592) + timedelta(hours=rng.uniform(-30, 30))
    else:
        caller, sublessor = rng.randrange(CALLERS), 1 + rng.randrange(SUBLESSORS)
        start = NOW - timedelta(seconds=rng.randrange(0, 2 * 86400))
    return call_body(
        f"{prefix}-{i}",
        sublessor,
        f"+86 139-{caller:08d}",
        prop_id=rng.randrange(100000),
        status=rng.choice((1, 1, 1, 0)),
        start=start,
        duration=rng.choice((5, 8, 9, 30, 120)),
    )


def naive_consume(channel, queue: str, conn, limit: int) -> int:
    """The per-message design: one get, one insert, rule queries, one update, one ack each."""
    cur = conn.cursor()

    def handle(body: bytes, _routing_key: str | None) -> None:
        call = parse_message(body, received_at=intake_clock())
        if not isinstance(call, Call):
            return
        cur.execute(
            "INSERT IGNORE INTO sublessor_call_log_201409 (call_id, sublessor_id, prop_id,"
            " caller, caller_normalized, called, ext, status, start_time, duration, call_type)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            call.row(),
        )
        conn.commit()
        rule = base_rule(call.status, call.duration, SHORT)
        if rule is None and call.caller_normalized:
            cur.execute(
                "SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE caller_normalized = %s"
                " AND sublessor_id = %s AND filter_rule = 1 AND start_time > %s"
                " AND start_time < %s",
                (
                    call.caller_normalized,
                    call.sublessor_id,
                    call.start_time - timedelta(seconds=WINDOW),
                    call.start_time + timedelta(seconds=WINDOW),
                ),
            )
            if cur.fetchone()[0]:
                rule = FilterRule.REPEAT
            else:
                cur.execute(
                    "SELECT COUNT(*) FROM broker_phone WHERE phone = %s",
                    (call.caller_normalized,),
                )
                rule = FilterRule.BROKER if cur.fetchone()[0] else None
        cur.execute(
            "UPDATE sublessor_call_log_201409 SET filter_rule = %s WHERE call_id = %s"
            " AND filter_rule = 0",
            (int(rule or FilterRule.VALID), call.call_id),
        )
        conn.commit()

    try:
        return one_by_one(channel, queue, limit, handle)
    finally:
        cur.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH_SIZE, help="intake batch size")
    args = parser.parse_args()
    token = secrets.token_hex(3)
    database = f"bench_intake_{token}"
    exchange, key = f"bench_ex_{token}", f"bench_rk_{token}"
    fast_q, naive_q = f"bench_q_{token}", f"bench_naive_q_{token}"
    admin = connect(MySqlTarget())
    conn = None
    broker = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = broker.channel()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        conn = connect(MySqlTarget(database=database))
        apply_migrations(conn)
        t = time.perf_counter()
        fill_log(conn, args.log_rows)
        print(f"call log filled with {args.log_rows:,} rows in {time.perf_counter() - t:.1f}s")

        channel.exchange_declare(exchange, "direct", durable=True)
        for queue, routing in ((fast_q, key), (naive_q, key + ".naive")):
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, exchange, routing)
        rng = random.Random(7)
        t = time.perf_counter()
        publish(
            channel,
            exchange,
            key,
            (message(i, rng, "fast", args.log_rows) for i in range(args.messages)),
        )
        publish(
            channel,
            exchange,
            key + ".naive",
            (message(i, rng, "naive", args.log_rows) for i in range(args.naive)),
        )
        wait_queued(channel, fast_q, args.messages)
        print(
            f"queued {args.messages:,} + {args.naive:,} messages in {time.perf_counter() - t:.1f}s"
        )

        t = time.perf_counter()
        # As the intake task runs it: rules 2 and 3 applied on arrival.
        intake = drain(
            channel,
            fast_q,
            conn,
            max_messages=args.messages,
            batch_size=args.batch,
            idle_seconds=0.5,
            short_threshold=SHORT,
        )
        t_intake = time.perf_counter() - t
        t = time.perf_counter()
        judged = judge_pending(conn, short_threshold=SHORT, repeat_window=WINDOW)
        t_judge = time.perf_counter() - t
        fast_rate = intake.received / (t_intake + t_judge)
        print(
            f"batched: intake {intake.as_dict()} in {t_intake:.1f}s"
            f", then judge task {judged} in {t_judge:.1f}s"
        )

        settle(conn)
        t = time.perf_counter()
        naive_done = naive_consume(channel, naive_q, conn, args.naive)
        naive_rate = naive_done / (time.perf_counter() - t)

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"batched intake+judge: {fast_rate:,.0f} calls/s (target >= 5,000)")
        print(f"naive per-message:    {naive_rate:,.0f} calls/s on {naive_done:,} messages")
        print(f"ratio:                {fast_rate / naive_rate:.1f}x (target >= 20x)")
        print(f"peak memory (ru_maxrss): {peak_mb:.0f} MiB")
    finally:
        if conn is not None:
            conn.close()  # before DROP DATABASE: an open transaction would block it
        for queue in (fast_q, naive_q):
            channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        broker.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()


if __name__ == "__main__":
    main()
