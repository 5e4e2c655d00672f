"""Judging and intake at and across every chunk boundary, and once at production sizes.

Judging works in batches of ``batch_size`` calls, looks history up
``pairs_per_query`` (caller, sublessor) pairs per query and writes rules in IN
lists of ``in_chunk`` ids; intake takes ``batch_size`` messages per transaction
and writes them in statements of ``statement_bytes``. Each boundary is tested
with size - 1, size and size + 1 items, with small sizes injected, and a repeat
pair whose two calls fall in different chunks (a missed repeat overcharges).
The last tests run the production sizes (5,000 per batch) on 5,000+ calls.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from support.amqp import publish_and_wait
from support.calls import call_body
from support.db import statements
from support.judging import DAY, RECEIVED, T0, log_calls, rules

from sublessor_billing.calls import judge as judge_module
from sublessor_billing.calls.history import IN_CHUNK, PAIRS_PER_QUERY
from sublessor_billing.calls.intake import DEFAULT_BATCH_SIZE, drain
from sublessor_billing.calls.message import parse_message
from sublessor_billing.calls.store import _call_values, insert_calls

pytestmark = pytest.mark.integration

VALID, REPEAT, BROKER = 1, 4, 5
HISTORY_QUERY = r"STRAIGHT_JOIN sublessor_call_log_201409"
BROKER_QUERY = r"FROM broker_phone WHERE phone IN"


def around(size: int) -> list[int]:
    return [size - 1, size, size + 1]


def caller(n: int) -> str:
    return f"139{n:08d}"


def body(call_id: str, seconds: float, who: int, **changes) -> bytes:
    start = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
    return call_body(call_id, start_time=start, caller=caller(who), **changes)


def add_brokers(conn, callers: list[int]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) "
            "VALUES (%s, %s, NOW())",
            [(i + 1, caller(n)) for i, n in enumerate(callers)],
        )
    conn.commit()


def judge(conn, **sizes) -> dict[str, int]:
    return judge_module.judge_pending(conn, short_threshold=8, repeat_window=DAY, **sizes)


def count_batches(monkeypatch) -> list[int]:
    """Record the number of calls each judge_batch transaction judged (empty ones left out)."""
    judged: list[int] = []
    real = judge_module.judge_batch

    def counting(conn, **kwargs):
        done = real(conn, **kwargs)
        if done:
            judged.append(sum(done.values()))
        return done

    monkeypatch.setattr(judge_module, "judge_batch", counting)
    return judged


# -- judging ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fillers", around(5))
def test_a_repeat_pair_split_by_the_judge_batch_boundary_is_still_a_repeat(
    user_prop_conn, monkeypatch, fillers
) -> None:
    """Batch size 5: the pair's first call is the last of a batch, its second the next's first."""
    batch = 5
    bodies = [body(f"f{i}", i * 60, 1000 + i) for i in range(fillers)]
    # Fillers 0..3 start before the pair: the pair takes places 4 and 5 of the order.
    bodies += [body("pair-a", 3 * 60 + 20, 7), body("pair-b", 3 * 60 + 40, 7)]
    log_calls(user_prop_conn, bodies)
    judged = count_batches(monkeypatch)

    counts = judge(user_prop_conn, batch_size=batch)

    total = fillers + 2
    assert judged == [batch] * (total // batch) + ([total % batch] if total % batch else [])
    expected = {f"f{i}": VALID for i in range(fillers)} | {"pair-a": VALID, "pair-b": REPEAT}
    assert rules(user_prop_conn) == expected
    assert (counts["judged"], counts["repeat"], counts["valid"]) == (total, 1, total - 1)


@pytest.mark.parametrize("pairs", around(3))
def test_history_lookups_split_into_pair_chunks_find_every_earlier_valid_call(
    user_prop_conn, pairs
) -> None:
    """Three pairs per history query: each pair's earlier valid call is found, whichever chunk."""
    log_calls(user_prop_conn, [body(f"old{i}", i, 100 + i) for i in range(pairs)])
    judge(user_prop_conn)  # the earlier calls are valid and in the log
    log_calls(user_prop_conn, [body(f"new{i}", 3600 + i, 100 + i) for i in range(pairs)])

    with statements(HISTORY_QUERY) as history_queries:
        counts = judge(user_prop_conn, batch_size=100, pairs_per_query=3)

    assert len(history_queries) == math.ceil(pairs / 3)
    assert counts["repeat"] == pairs and counts["valid"] == 0
    assert {k: v for k, v in rules(user_prop_conn).items() if k.startswith("new")} == {
        f"new{i}": REPEAT for i in range(pairs)
    }


@pytest.mark.parametrize("brokers", around(4))
def test_broker_lookups_split_into_in_lists_find_every_broker(user_prop_conn, brokers) -> None:
    """Four callers per IN list: every broker caller is rule 5, the others valid."""
    add_brokers(user_prop_conn, [200 + i for i in range(brokers)])
    others = 3
    log_calls(
        user_prop_conn,
        [body(f"b{i}", i, 200 + i) for i in range(brokers)]
        + [body(f"o{i}", 100 + i, 300 + i) for i in range(others)],
    )

    with statements(BROKER_QUERY) as broker_queries:
        counts = judge(user_prop_conn, batch_size=100, in_chunk=4)

    assert len(broker_queries) == math.ceil((brokers + others) / 4)
    assert (counts["broker"], counts["valid"]) == (brokers, others)
    decided = rules(user_prop_conn)
    assert all(decided[f"b{i}"] == BROKER for i in range(brokers))
    assert all(decided[f"o{i}"] == VALID for i in range(others))


@pytest.mark.parametrize("valid", around(4))
def test_rules_written_in_id_chunks_reach_every_call(user_prop_conn, valid) -> None:
    """Four ids per UPDATE: every call of every rule is written, each exactly once."""
    log_calls(
        user_prop_conn,
        [body(f"v{i}", i, 400 + i) for i in range(valid)]
        + [body(f"r{i}", 600 + i, 400 + i) for i in range(valid)],  # each repeats v{i}
    )

    with statements(r"UPDATE sublessor_call_log_201409 SET filter_rule") as updates:
        counts = judge(user_prop_conn, batch_size=100, in_chunk=4)

    assert len(updates) == 2 * math.ceil(valid / 4)
    assert (counts["valid"], counts["repeat"]) == (valid, valid)
    decided = rules(user_prop_conn)
    assert [decided[f"v{i}"] for i in range(valid)] == [VALID] * valid
    assert [decided[f"r{i}"] for i in range(valid)] == [REPEAT] * valid


def test_judging_at_production_sizes(user_prop_conn, monkeypatch) -> None:
    """5,000-call batches, 1,000-pair history queries, 2,000-value IN lists, on 5,004 calls.

    Repeats span the batch boundary (calls 4,999 and 5,000; calls 0 and 5,001) and
    hide in the last history chunk; brokers sit in every IN list.
    """
    assert (judge_module.DEFAULT_BATCH_SIZE, PAIRS_PER_QUERY, IN_CHUNK) == (5000, 1000, 2000)
    total = 5004
    who = list(range(total))
    who[5000] = who[4999]  # the pair split by the batch boundary
    who[5001] = who[0]  # first and second batch, through the log
    # Valid calls an hour before (history from the log), at the edges of the pair chunks.
    earlier = [999, 1000, 3000, 4998]
    # Brokers throughout, and at the edges of the IN lists (sorted callers 1,999 to 4,000).
    edges = {1999, 2000, 3999, 4000}
    brokers = sorted(n for n in range(total) if n % 7 == 3 or n in edges)
    assert not set(brokers) & {*earlier, 0, 4999}
    add_brokers(user_prop_conn, brokers)
    log_calls(user_prop_conn, [body(f"h{n}", -3600, n) for n in earlier])
    judge(user_prop_conn)
    log_calls(user_prop_conn, [body(f"c{i}", i, who[i]) for i in range(total)])
    judged = count_batches(monkeypatch)

    with statements(f"{HISTORY_QUERY}|{BROKER_QUERY}") as lookups:
        counts = judge(user_prop_conn)

    assert judged == [5000, 4]
    # 5,000 pairs: 5 history queries, 5,000 callers: 3 IN lists; then the batch of 4.
    assert sum("STRAIGHT_JOIN" in q for q in lookups) == 5 + 1
    assert sum("broker_phone" in q for q in lookups) == 3 + 1
    expected = {}
    for i in range(total):
        if i in (5000, 5001) or who[i] in earlier:
            expected[f"c{i}"] = REPEAT
        elif who[i] in brokers:
            expected[f"c{i}"] = BROKER
        else:
            expected[f"c{i}"] = VALID
    decided = rules(user_prop_conn)
    assert {k: v for k, v in decided.items() if k.startswith("c")} == expected
    assert counts["repeat"] == 2 + len(earlier)
    assert counts["judged"] == total


# -- intake ----------------------------------------------------------------------------------


def drain_all(call400, hook, expected: int, **options):
    """Drain exactly the ``expected`` messages (the cap ends the drain, not a silence)."""
    conn = call400.db()
    acks: list[int] = []
    channel = hook.channel()
    real_ack = channel.basic_ack

    def counting_ack(*args, **kwargs):
        acks.append(kwargs.get("delivery_tag", args[0] if args else None))
        return real_ack(*args, **kwargs)

    channel.basic_ack = counting_ack
    try:
        result = drain(
            channel, call400.queue, conn, max_messages=expected, idle_seconds=60, **options
        )
    finally:
        conn.close()
        hook.close()
    return result, acks


@pytest.mark.parametrize("messages", around(5))
def test_intake_batches_at_the_boundary_absorb_a_duplicate_split_across_them(
    call400, amqp_hook, messages
) -> None:
    """Five messages per batch; the duplicate's copies are the last of one batch and the next's first."""
    bodies = [body(f"m{i}", i, 500 + i) for i in range(messages)]
    bodies.insert(4, body("dup", 999, 9))
    bodies.insert(5, body("dup", 999, 9))  # a redelivered copy, in the next batch
    publish_and_wait(call400, bodies)

    result, acks = drain_all(call400, amqp_hook, len(bodies), batch_size=5, max_batch_age=3600)

    assert len(acks) == math.ceil(len(bodies) / 5)
    assert result.as_dict() == {
        "received": messages + 2,
        "logged": messages + 1,
        "duplicates": 1,
        "quarantined": 0,
    }
    assert call400.query("SELECT COUNT(*) FROM sublessor_call_log_201409") == [(messages + 1,)]
    assert call400.ready() == 0


@pytest.mark.parametrize("rows", around(3))
def test_insert_statements_at_the_byte_boundary_log_every_call_once(user_prop_conn, rows) -> None:
    """Statements that hold exactly three rows; a call logged earlier sits first in the second."""
    calls = [
        parse_message(body(f"s{i:03d}", i, 700 + i), received_at=RECEIVED) for i in range(rows)
    ]
    width = {len(v) for v in _call_values(user_prop_conn, calls, None)}
    assert len(width) == 1, "equal rows make the byte boundary exact"
    three_rows = 3 * width.pop() + 2  # rows plus the commas between them
    with user_prop_conn.cursor() as cur:
        insert_calls(cur, calls[3:4])  # already logged: absorbed where it falls
    user_prop_conn.commit()

    with (
        statements(r"^INSERT IGNORE INTO sublessor_call_log_201409") as inserts,
        user_prop_conn.cursor() as cur,
    ):
        inserted = insert_calls(cur, calls, statement_bytes=three_rows)
    user_prop_conn.commit()

    assert len(inserts) == math.ceil(rows / 3)
    assert inserted == rows - (1 if rows > 3 else 0)
    assert sorted(rules(user_prop_conn)) == [f"s{i:03d}" for i in range(rows)]


def test_intake_at_production_sizes(call400, amqp_hook) -> None:
    """5,003 messages, default 5,000-message batches: a duplicate split by the boundary."""
    assert DEFAULT_BATCH_SIZE == 5000
    bodies = [body(f"p{i}", i, 10_000 + i) for i in range(5001)]
    bodies.insert(5000, bodies[4999])  # copies at places 5,000 and 5,001
    bodies.append(b"not json")
    publish_and_wait(call400, bodies)

    result, acks = drain_all(call400, amqp_hook, len(bodies), max_batch_age=3600)

    assert acks and len(acks) == 2
    assert result.as_dict() == {
        "received": 5003,
        "logged": 5001,
        "duplicates": 1,
        "quarantined": 1,
    }
    assert call400.query("SELECT COUNT(DISTINCT call_id) FROM sublessor_call_log_201409") == [
        (5001,)
    ]
    assert call400.ready() == 0
