"""A billing day as the pipeline leaves it: calls of every rule, charges of every outcome,
pending orders, offline decisions, quarantined messages, sync cursors and K3 errors.

The day is yesterday in Asia/Shanghai (a whole day, and pending orders of a
realistic age). Deterministic otherwise (seeded random). Calls on the
neighbouring days, some a second from midnight, check that the page keeps to its
day. Times the database writes (``created_at``) are given in Asia/Shanghai and
converted to the server's zone, as the server's own clock would have written them.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).date()  # the seeded day
DB_CLOCK = "CONVERT_TZ(%s, '+08:00', @@session.time_zone)"
# Calls per hour of the day (a daytime curve).
HOURLY = [2, 1, 0, 0, 1, 2, 6, 14, 26, 34, 38, 36, 30, 32, 36, 35, 31, 28, 22, 16, 12, 8, 5, 3]
RULE_WEIGHTS = {1: 46, 2: 20, 3: 14, 4: 10, 5: 5, 0: 5}
OUTCOME_WEIGHTS = {"success": 84, "insufficient": 6, "failed": 3, "pending": 7}
PRICE_FEN = 4000
FIXABLE_REASON = (
    "the call log refused it: (1366, \"Incorrect string value: '\\xF0\\x9F' for column 'ext'\")"
)
NOT_JSON_REASON = "body is not JSON: Expecting value: line 1 column 1 (char 0)"


def call_message(call_id: str, start: datetime, sublessor: int = 10086) -> bytes:
    return json.dumps(
        {
            "call_id": call_id,
            "sublessor_id": sublessor,
            "prop_id": 552301,
            "caller": "+86 138-0013-8000",
            "called": "4008123456",
            "ext": "2301",
            "status": 1,
            "start_time": start.strftime("%Y-%m-%d %H:%M:%S"),
            "duration": 95,
            "call_type": "normal",
        }
    ).encode()


def seed(conn, day: date) -> None:
    rnd = random.Random(20260301)
    midnight = datetime.combine(day, time())
    calls = []
    for hour, count in enumerate(HOURLY):
        for n in range(count * 3):
            start = midnight + timedelta(hours=hour, seconds=rnd.randrange(3600))
            calls.append((f"d-{hour:02d}-{n}", start, _pick(rnd, RULE_WEIGHTS)))
    # the neighbouring days, right at the edges
    calls += [
        ("prev-last", midnight - timedelta(seconds=1), 1),
        ("next-first", midnight + timedelta(days=1), 1),
        ("prev-noon", midnight - timedelta(hours=12), 2),
    ]
    with conn.cursor() as cur:
        # each call received when it ended (its duration after it started)
        cur.executemany(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, caller_normalized,"
            " called, status, start_time, duration, filter_rule, judged_at, received_at)"
            " VALUES (%s, %s, %s, %s, '4008123456', %s, %s, %s, %s, IF(%s = 0, NULL, NOW(3)),"
            f" {DB_CLOCK})",
            [
                (cid, 10001 + i % 40, f"1390000{i:04d}", f"1390000{i:04d}",
                 0 if rule == 2 else 1, start, 5 if rule == 3 else 95, rule, rule,
                 start + timedelta(seconds=5 if rule == 3 else 95))
                for i, (cid, start, rule) in enumerate(calls)
            ],
        )  # fmt: skip
        # each valid call's order is made two minutes after the call started
        payments = [
            (cid, 10001 + i % 40, PRICE_FEN, f"400 call {cid}", _pick(rnd, OUTCOME_WEIGHTS),
             start + timedelta(minutes=2))
            for i, (cid, start, rule) in enumerate(calls)
            if rule == 1
        ]  # fmt: skip
        cur.executemany(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject,"
            " status, last_error, created_at)"
            " VALUES (%s, %s, %s, %s, %s, IF(%s = 'pending', 'HTTP 503 from payment center', NULL),"
            f" {DB_CLOCK})",
            [(c, s, a, subj, st, st, made) for c, s, a, subj, st, made in payments],
        )
        cur.execute(
            "SELECT id, sublessor_id FROM sublessor_call_payment_log_201409"
            " WHERE status IN ('insufficient', 'failed') ORDER BY id LIMIT 4"
        )
        refused = cur.fetchall()
        for n, (order_id, sublessor) in enumerate(refused):
            status = ("done", "done", "pending", "superseded")[n]
            cur.execute(
                "INSERT INTO sublessor_offline_event (request_id, sublessor_id, trigger_order_id,"
                " reason, status, offlined, attempts, last_error, created_at, done_at)"
                f" VALUES (%s, %s, %s, 'insufficient balance', %s, %s, 1, %s, {DB_CLOCK}, {DB_CLOCK})",
                (
                    f"sublessor-offline-{order_id}", sublessor, order_id, status,
                    3 if status == "done" else None,
                    "listing service timed out" if status == "pending" else None,
                    midnight + timedelta(hours=10 + n), midnight + timedelta(hours=10 + n, minutes=1),
                ),
            )  # fmt: skip
        # a pending row below the order id range (inserted by hand): held back, never sent
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount,"
            f" subject, status, created_at) VALUES (7, 'by-hand', 10001, 4000, 's', 'pending', {DB_CLOCK})",
            (midnight - timedelta(days=3),),
        )
        # a call of the day the judge held aside (rule 0, not waiting to be judged)
        cur.execute(
            "UPDATE sublessor_call_log_201409 SET filter_rule = 0, judged_at = NOW(3),"
            " held_reason = 'start_time is not a readable date', held_count = 1"
            " WHERE filter_rule = 0 AND call_id LIKE 'd-%' ORDER BY id LIMIT 1"
        )
        cur.execute(  # a decision of the previous day
            "INSERT INTO sublessor_offline_event (request_id, sublessor_id, trigger_order_id, reason,"
            " status, offlined, created_at)"
            f" VALUES ('sublessor-offline-1', 7, 1, 'x', 'done', 2, {DB_CLOCK})",
            (midnight - timedelta(hours=2),),
        )
        quarantine = [
            (call_message("q-fix-1", midnight + timedelta(hours=9)), FIXABLE_REASON),
            (call_message("q-fix-2", midnight + timedelta(hours=10)), FIXABLE_REASON),
            (call_message("q-fix-3", midnight + timedelta(hours=11)), FIXABLE_REASON),
            (b"\x00not json", NOT_JSON_REASON),
            (b'{"call_id": "q-bad", "duration": "95"}', "sublessor_id is missing"),
            (b"<script>alert('x')</script>", NOT_JSON_REASON),
        ]
        cur.executemany(
            "INSERT INTO call400_quarantine (body_sha256, raw_body, reason, call_id, received_at)"
            f" VALUES (SHA2(%s, 256), %s, %s, NULL, {DB_CLOCK})",
            [
                (b, b, r, midnight + timedelta(hours=9, minutes=i))
                for i, (b, r) in enumerate(quarantine)
            ],
        )
        cur.execute(
            "INSERT INTO job_cursor (name, position_id, position_time) VALUES"
            " ('broker_phone_sync', NULL, %s), ('broker_phone_sync_full', 812345, %s)",
            (midnight + timedelta(hours=17, minutes=55), midnight + timedelta(hours=3)),
        )
        cur.executemany(
            "INSERT INTO k3_contract_export_state (contract_id, contract_no, k3_id, state, last_error,"
            " attempts) VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (1, "HT-2026-0001", 100234, "exported", None, 1),
                (2, "HT-2026-0002", 100235, "exported", None, 1),
                (3, "HT-2026-0003", None, "refused", "FContractAmount: 金额不能为负数", 2),
                (4, "HT-2026-0004", None, "refused", "FCustomerId: customer 552 not found", 1),
                (5, "HT-2026-0005", None, "in_flight", None, 1),
            ],
        )
    conn.commit()


def _pick(rnd: random.Random, weights: dict) -> object:
    return rnd.choices(list(weights), weights=list(weights.values()))[0]
