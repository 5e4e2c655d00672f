"""Benchmark: one whole call400_billing pass over 20,000 queued calls, vs the legacy consumer.

Set-up (not timed): a fresh, uniquely named database with the migrations applied,
a unique exchange with two queues (connection ``call400_amqp`` defined through
``AIRFLOW_CONN_*``), the sandbox payment center in its own process answering
after 5 ms (connection ``payment_api``), sublessors with ample balance, brokers in
``broker_phone``, and the messages queued: mostly valid calls, some not connected,
too short, repeats, broker callers, redeliveries and a few malformed ones.

Measured, from the first take off the queue to the last charge recorded: what one
run of call400_billing does, in order, through the functions its tasks call:
intake ``drain`` (on ``Call400AmqpHook``'s channel), ``judge_pending``, and
``charge_valid_calls`` with the client ``PaymentApiHook`` builds (as
``ChargeValidCallsOperator`` does: Variable defaults, 64 workers). The cap
``call400_max_messages_per_run`` (default 10,000) is set to the number queued.
There is nothing for the ``offline`` task to do (every balance stays ample).

Checked after: the filter_rule of every call is what ``rules.judge_calls`` gives
the messages as generated; every valid call has exactly one payment row, a
success, and no other call has one; the sandbox ledger charged every order id
once (double charges printed).

Legacy baseline, same run, same database and sandbox, on its own queue: a
per-message consumer doing what the legacy PHP consumer did: get one, insert one
(``store.insert_calls``), judge one (``judge.judge_batch`` on a batch of one),
charge one synchronously (a pending row, one blocking signed POST with
``requests``, ``store.record_outcomes``), ack one.

Targets: >= 2,000 calls/s, >= 12x the legacy consumer. Every figure is printed
with the load average (the machine is shared), then CPU per process and peak RSS.
``--profile`` runs the measured pass under cProfile (main thread) and prints where
its time goes; figures of a profiled pass are not comparable.

    PYTHONPATH=include:plugins .venv/bin/python bench/bench_run.py [--messages 20000]
        [--legacy 500] [--sublessors 1000] [--latency-ms 5] [--workers 64] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import secrets
import shutil
import tempfile
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pika
from _support import (
    AMQP_URL,
    MYSQL,
    call_body,
    control,
    cpu_seconds,
    load,
    one_by_one,
    peak_rss_mib,
    pids_named,
    publish,
    settle,
    start_sandbox,
    wait_queued,
)

from sublessor_billing import config
from sublessor_billing.calls.intake import DEFAULT_BATCH_SIZE, drain
from sublessor_billing.calls.judge import RULE_NAMES, judge_batch, judge_pending
from sublessor_billing.calls.message import Call, body_sha256, intake_clock, parse_message
from sublessor_billing.calls.rules import Candidate, judge_calls
from sublessor_billing.calls.store import insert_calls, quarantine
from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_external_ddl, apply_migrations
from sublessor_billing.payments import store
from sublessor_billing.payments.charging import charge_valid_calls
from sublessor_billing.payments.outcomes import PaymentStatus, classify_charge
from sublessor_billing.sandbox.__main__ import PAYMENT_KEY, SANDBOX_APP_ID
from sublessor_billing.signing import Signer

SHORT = int(config.FILTER_CALL_TIME_RULE_THRESHOLD.default)
WINDOW = int(config.FILTER_LAST_CALL_TIME_RULE_THRESHOLD.default)
PRICE_FEN = int(config.PAYMENT_PRICE_PER_CALL.default) * 100
TIMEOUT_MS = int(config.PAYMENT_API_TIMEOUT.default)
TARGET_RATE, TARGET_RATIO = 2000, 12
# The share of each kind of message in the mix.
MIX = {
    "valid": 0.765,
    "not_connected": 0.07,
    "too_short": 0.06,
    "repeat": 0.05,
    "broker": 0.04,
    "redelivery": 0.01,
    "malformed": 0.005,
}
BROKERS = 300


# -- the messages -------------------------------------------------------------------------
def dialled(mobile: str, rng: random.Random) -> str:
    """A mobile number the way carriers hand it over: +86, 0086, a leading 0, dashes, spaces."""
    return rng.choice(
        (
            f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
            f"0086{mobile}",
            f"0{mobile}",
            mobile,
            f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}",
        )
    )


def broker_mobiles() -> list[str]:
    return [f"139{n * 7919 % 10**8:08d}" for n in range(1, BROKERS + 1)]


def mixed_calls(
    count: int, prefix: str, rng: random.Random, *, sublessors: int, now: datetime
) -> tuple[list[bytes], Counter]:
    """``count`` message bodies of the MIX, started up to three days before ``now``."""
    bodies: list[bytes] = []
    calls: list[bytes] = []
    kinds: Counter = Counter()
    valid: list[tuple[str, int, datetime]] = []
    brokers = broker_mobiles()
    names, weights = list(MIX), list(MIX.values())
    for i in range(count):
        kind = rng.choices(names, weights)[0]
        if (kind == "repeat" and not valid) or (kind == "redelivery" and not calls):
            kind = "valid"
        kinds[kind] += 1
        if kind == "redelivery":  # at-least-once delivery: the same body again
            bodies.append(rng.choice(calls))
            continue
        if kind == "malformed":
            bodies.append(b'{"call_id": "%s-%d", "sublessor_id": "ten", "status": 1}' % (
                prefix.encode(), i))  # fmt: skip
            continue
        mobile, sublessor = f"15{rng.randrange(10**9):09d}", 1 + rng.randrange(sublessors)
        start = now - timedelta(seconds=rng.uniform(120, 3 * 86400))
        status, duration = 1, rng.randint(SHORT + 1, 600)
        if kind == "not_connected":
            status, duration = rng.choice((0, 2, 3)), rng.choice((0, 30))
        elif kind == "too_short":
            duration = rng.randint(0, SHORT)
        elif kind == "broker":
            mobile = rng.choice(brokers)
        elif kind == "repeat":  # the same caller to the same sublessor within the window
            mobile, sublessor, first = rng.choice(valid)
            offset = timedelta(seconds=rng.uniform(60, WINDOW - 3600))
            start = first + offset if first + offset < now else first - offset
        else:
            valid.append((mobile, sublessor, start))
        body = call_body(
            f"{prefix}-{i}",
            sublessor,
            dialled(mobile, rng),
            prop_id=rng.randrange(1, 10**6),
            status=status,
            start=start,
            duration=duration,
            call_type="callback" if rng.random() < 0.1 else "normal",
        )
        calls.append(body)
        bodies.append(body)
    return bodies, kinds


def expected_rules(bodies: list[bytes]) -> dict[str, int]:
    """call_id -> filter_rule by the rules alone (empty history), messages in arrival order."""
    received_at = intake_clock()
    first: dict[str, Call] = {}
    for body in bodies:
        call = parse_message(body, received_at=received_at)
        if isinstance(call, Call):
            first.setdefault(call.call_id, call)
    calls = list(first.values())
    candidates = [
        Candidate(n, c.caller_normalized, c.sublessor_id, c.status, c.start_time, c.duration)
        for n, c in enumerate(calls)
    ]
    decided = judge_calls(
        candidates, {}, set(broker_mobiles()), short_threshold=SHORT, repeat_window=WINDOW
    )
    return {c.call_id: decided[n] for n, c in enumerate(calls)}


# -- the measured pass --------------------------------------------------------------------
class Meter:
    """Wall clock and CPU seconds of every process doing the work, at named marks."""

    def __init__(self, sandbox_pid: int) -> None:
        self.pids = {"sandbox": sandbox_pid, **pids_named("mariadbd", "mysqld", "beam.smp")}
        self.marks: list[tuple[str, float, dict[str, float]]] = []

    def mark(self, name: str) -> None:
        cpu = {n: cpu_seconds(pid) for n, pid in self.pids.items()}
        self.marks.append((name, time.perf_counter(), {"bench": time.process_time(), **cpu}))

    def seconds(self) -> float:
        return self.marks[-1][1] - self.marks[0][1]

    def phases(self) -> list[tuple[str, float, dict[str, float]]]:
        """(phase, wall seconds, CPU seconds per process) from each mark to the next."""
        return [
            (name, end - start, {n: used[n] - before[n] for n in before})
            for (_, start, before), (name, end, used) in zip(
                self.marks, self.marks[1:], strict=False
            )
        ]


@dataclass
class Pass:
    intake: dict[str, int]
    judged: dict[str, int]
    charged: dict[str, Any]


def billing_pass(target: MySqlTarget, meter: Meter, *, cap: int, workers: int) -> Pass:
    """One run of call400_billing's work: intake, judge, charge, each as its task does it."""
    from sublessor_airflow.hooks.amqp import Call400AmqpHook
    from sublessor_airflow.hooks.signed_http import PaymentApiHook

    hook = Call400AmqpHook()
    hook.ensure_topology()
    channel = hook.channel()
    try:
        with closing(connect(target)) as db:
            meter.mark("start")
            intake = drain(
                channel,
                hook.settings.queue,
                db,
                max_messages=cap,
                batch_size=DEFAULT_BATCH_SIZE,
                short_threshold=SHORT,
            )
            meter.mark("intake")
    finally:
        hook.close()
    with closing(connect(target)) as db:
        judged = judge_pending(db, short_threshold=SHORT, repeat_window=WINDOW)
    meter.mark("judge")
    client = PaymentApiHook(timeout_ms=TIMEOUT_MS, pool_size=workers).get_async_conn()
    with closing(connect(target)) as db:
        report = charge_valid_calls(db, client, price_fen=PRICE_FEN, workers=workers)
    meter.mark("charge")
    return Pass(intake.as_dict(), judged, report.as_dict())


# -- the legacy consumer -------------------------------------------------------------------
class Legacy:
    """Per message: insert one, judge one, charge one synchronously (the ack is one_by_one's)."""

    def __init__(self, conn: Any, url: str) -> None:
        import requests

        self.conn, self.url = conn, url + "/trade/charge"
        self.http = requests.Session()
        self.signer = Signer(SANDBOX_APP_ID, PAYMENT_KEY)
        self.rules: Counter = Counter()

    def handle(self, body: bytes, routing_key: str | None) -> None:
        call = parse_message(body, received_at=intake_clock())
        with self.conn.cursor() as cur:
            if isinstance(call, Call):
                inserted = insert_calls(cur, [call])
            else:
                quarantine(cur, [(body_sha256(body), body, call, routing_key)])
                inserted = 0
        self.conn.commit()
        if not inserted:
            return
        judged = judge_batch(self.conn, short_threshold=SHORT, repeat_window=WINDOW, batch_size=1)
        self.rules.update(judged)
        if judged["valid"]:
            self.charge(call.call_id)

    def charge(self, call_id: str) -> None:
        with self.conn.cursor() as cur:  # the order id, stored before the request
            cur.execute(
                f"{store.INSERT_ORDERS} {store.ORDER_VALUES} FROM {store.CALL_LOG} c "
                "WHERE c.call_id = %s",
                (PRICE_FEN, call_id),
            )
        self.conn.commit()
        (order,) = store.load_pending(self.conn)
        fields = {
            "order_id": order.order_id,
            "user_id": order.sublessor_id,
            "amount": order.amount,
            "subject": order.subject,
        }
        answer = self.http.post(self.url, json=self.signer.sign(fields), timeout=TIMEOUT_MS / 1000)
        answer.raise_for_status()
        outcome = classify_charge(order, answer.json(), self.url)
        store.record_outcomes(self.conn, [outcome], price_fen=PRICE_FEN)


# -- checks -------------------------------------------------------------------------------
def verify(conn: Any, prefix: str, expected: dict[str, int], ledger: dict) -> dict[str, Any]:
    """Rules as expected, one success row per valid call and none for others, ledger agrees."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT call_id, filter_rule FROM {store.CALL_LOG} WHERE call_id LIKE %s",
            (prefix + "-%",),
        )
        actual = {str(cid): int(rule) for cid, rule in cur.fetchall()}
        cur.execute(
            f"SELECT c.filter_rule, p.status, COUNT(*) FROM {store.CALL_LOG} c "
            f"JOIN {store.PAYMENT_LOG} p ON p.call_id = c.call_id GROUP BY 1, 2"
        )
        rows = {(int(r), str(s)): int(n) for r, s, n in cur.fetchall()}
    conn.commit()
    valid = sum(1 for rule in actual.values() if rule == 1)
    # call_id is unique in the payment log: at most one row per call
    paid_valid = rows.get((1, PaymentStatus.SUCCESS), 0)
    payment_rows = sum(store.count_by_status(conn).values())
    return {
        "rules": Counter(RULE_NAMES.get(r, f"unjudged({r})") for r in actual.values()),
        "rule_mismatches": sum(1 for cid, rule in expected.items() if actual.get(cid) != rule)
        + len(actual.keys() - expected.keys()),
        "valid": valid,
        "success_rows": paid_valid,
        "other_rows": payment_rows - paid_valid,
        "ledger_charges": ledger["charges"],
        "ledger_orders": ledger["orders"],
        "double_charges": len(ledger["double_charged"]),
    }


def print_phases(meter: Meter, messages: int) -> None:
    """Wall and CPU seconds of each phase per process; CPU per message over the whole pass."""
    total: Counter = Counter()
    for name, wall, cpu in meter.phases():
        total.update(cpu)
        used = ", ".join(f"{n} {s:.1f}" for n, s in cpu.items())
        print(f"  {name:7s}              {wall:6.2f}s wall; CPU s: {used}")
    per_call = ", ".join(f"{n} {s / messages * 1e6:.0f}" for n, s in total.items())
    print(f"  CPU per message      {per_call} us (mariadbd and beam.smp: shared with other work)")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# Where a profiled pass spends its time, by the code that spends it (first match wins).
PROFILE_GROUPS = (
    ("waiting for MariaDB (Connection.query)", "Connection.query"),
    ("MySQLdb (rows in and out)", "MySQLdb"),
    ("pika (AMQP frames)", "pika"),
    ("aiohttp / yarl / multidict (HTTP client)", "aiohttp", "yarl", "multidict"),
    ("socket calls", "socket", "_ssl"),
    ("asyncio / uvloop (event loop)", "asyncio", "uvloop"),
    ("json", "json"),
    ("signing (hmac)", "signing.py", "hmac", "_hashlib"),
    ("sublessor_billing: intake / judge", "sublessor_billing/calls"),
    ("sublessor_billing: payments", "sublessor_billing/payments"),
)


def top_of(profile: cProfile.Profile, count: int = 25) -> None:
    """Own time per group of code, then the top functions (main thread only: the recorder
    thread's SQL building is not in it)."""
    stats = pstats.Stats(profile)
    groups: Counter = Counter()
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():
        where = f"{filename} {name}"
        label = next((g[0] for g in PROFILE_GROUPS if any(key in where for key in g[1:])), "other")
        groups[label] += own
    total = sum(groups.values())
    print(f"own time of the profiled pass by code, {total:.1f}s in all (main thread):")
    for label, own in groups.most_common():
        print(f"  {own:6.2f}s {own / total:5.1%}  {label}")
    stats.sort_stats("tottime").print_stats(count)


# -- main ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--legacy", type=int, default=500)
    parser.add_argument("--sublessors", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--profile", action="store_true", help="cProfile the measured pass")
    args = parser.parse_args()

    token = secrets.token_hex(4)
    database, prefix, legacy_prefix = f"bench_run_{token}", f"run-{token}", f"legacy-{token}"
    exchange, key, queue = f"bench_run_ex_{token}", f"bench_run_rk_{token}", f"bench_run_q_{token}"
    legacy_queue = f"bench_run_legacy_q_{token}"
    home = tempfile.mkdtemp(prefix="bench-run-airflow-")
    os.environ.setdefault("AIRFLOW_HOME", home)
    proc, url = start_sandbox(args.latency_ms)
    host, port = url.rsplit(":", 1)
    os.environ["AIRFLOW_CONN_PAYMENT_API"] = json.dumps(
        {"conn_type": "http", "host": host, "port": int(port), "login": SANDBOX_APP_ID,
         "password": PAYMENT_KEY}
    )  # fmt: skip
    os.environ["AIRFLOW_CONN_CALL400_AMQP"] = json.dumps(
        {"conn_type": "amqp", "host": "127.0.0.1", "port": 5672, "login": "guest",
         "password": "guest", "schema": "/",
         "extra": {"exchange": exchange, "exchange_type": "direct", "routing_key": key,
                   "queue": queue}}
    )  # fmt: skip
    # Airflow reads its configuration on import: load it now, not inside the measured pass.
    import sublessor_airflow.hooks.amqp  # noqa: F401
    import sublessor_airflow.hooks.signed_http  # noqa: F401

    target = MYSQL.with_database(database)
    admin = connect(MYSQL)
    broker = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = broker.channel()
    conn = None
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        conn = connect(target)
        apply_migrations(conn)
        apply_external_ddl(conn, "user_prop_db")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) "
                "VALUES (%s, %s, NOW())",
                list(enumerate(broker_mobiles(), start=1)),
            )
        conn.commit()
        accounts = [{"user_id": s, "balance": 10**12} for s in range(1, args.sublessors + 1)]
        control(url, "/_sandbox/setup", {"accounts": accounts})

        channel.exchange_declare(exchange, "direct", durable=True)
        for name, routing in ((queue, key), (legacy_queue, key + ".legacy")):
            channel.queue_declare(name, durable=True)
            channel.queue_bind(name, exchange, routing)
        rng, now = random.Random(400), intake_clock()
        bodies, kinds = mixed_calls(args.messages, prefix, rng, sublessors=args.sublessors, now=now)
        legacy_bodies, _ = mixed_calls(
            args.legacy, legacy_prefix, rng, sublessors=args.sublessors, now=now
        )
        t = time.perf_counter()
        publish(channel, exchange, key, bodies)
        publish(channel, exchange, key + ".legacy", legacy_bodies)
        wait_queued(channel, queue, len(bodies))
        wait_queued(channel, legacy_queue, len(legacy_bodies))
        expected = expected_rules(bodies)
        print(f"queued {len(bodies):,} + {len(legacy_bodies):,} messages in "
              f"{time.perf_counter() - t:.1f}s; mix {dict(kinds)}")  # fmt: skip
        print(f"machine                {os.cpu_count()} cores; before the pass: {load()}")

        meter = Meter(proc.pid)
        profile = cProfile.Profile() if args.profile else None
        if profile:
            profile.enable()
        run = billing_pass(target, meter, cap=len(bodies), workers=args.workers)
        if profile:
            profile.disable()
        pass_load = load()
        checked = verify(conn, prefix, expected, control(url, "/_sandbox/state"))
        seconds = meter.seconds()
        rate = run.intake["received"] / seconds

        settle(conn)
        legacy = Legacy(conn, url)
        t = time.perf_counter()
        legacy_done = one_by_one(channel, legacy_queue, args.legacy, legacy.handle)
        legacy_rate = legacy_done / (time.perf_counter() - t)
        legacy_load = load()
        after = control(url, "/_sandbox/state")
        legacy_paid = (
            store.count_by_status(conn).get(PaymentStatus.SUCCESS, 0) - checked["success_rows"]
        )

        print(f"pass                   {run.intake['received']:,} messages in {seconds:.2f}s "
              f"= {rate:,.0f} calls/s ({pass_load}); cap {len(bodies):,}, "
              f"sandbox {args.latency_ms:g} ms, {args.workers} workers"
              f"{' [PROFILED: not comparable]' if profile else ''}")  # fmt: skip
        print(f"  intake               {run.intake}")
        print(f"  judge                {run.judged}")
        print(f"  charge               {run.charged}")
        print_phases(meter, run.intake["received"])
        print(f"legacy per-message     {legacy_done:,} messages = {legacy_rate:,.1f} calls/s "
              f"({legacy_load}); rules {dict(legacy.rules)}, charged {legacy_paid}")  # fmt: skip
        print(f"ratio                  {rate / legacy_rate:.1f}x")
        print(f"target {TARGET_RATE:,} calls/s     {verdict(rate >= TARGET_RATE)}")
        print(f"target {TARGET_RATIO}x legacy        {verdict(rate / legacy_rate >= TARGET_RATIO)}")
        print(f"filter_rule counts     {dict(sorted(checked['rules'].items()))}")
        print(f"rules vs expected      {checked['rule_mismatches']} call(s) differ")
        print(f"valid calls            {checked['valid']:,}: {checked['success_rows']:,} with "
              f"one success row; payment rows of other calls or statuses: "
              f"{checked['other_rows']}")  # fmt: skip
        print(f"sandbox ledger         {checked['ledger_charges']:,} charges over "
              f"{checked['ledger_orders']:,} order ids after the pass; "
              f"{after['charges']:,} with the legacy sample")  # fmt: skip
        print(f"double charges         {len(after['double_charged'])}")
        print(f"peak RSS               bench {peak_rss_mib():.0f} MiB, "
              f"sandbox {peak_rss_mib(proc.pid):.0f} MiB")  # fmt: skip
        consistent = (
            checked["rule_mismatches"] == 0
            and checked["success_rows"] == checked["valid"]
            and checked["other_rows"] == 0
            and checked["ledger_charges"] == checked["ledger_orders"] == checked["valid"]
            and after["charges"] == checked["valid"] + legacy_paid
            and not after["double_charged"]
        )
        print(f"correctness            {'OK' if consistent else 'FAILED: see the lines above'}")
        if profile:
            top_of(profile)
        if not consistent:
            raise SystemExit(1)
    finally:
        if conn is not None:
            conn.close()  # before DROP DATABASE: an open transaction would block it
        for name in (queue, legacy_queue):
            channel.queue_delete(name)
        channel.exchange_delete(exchange)
        broker.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
