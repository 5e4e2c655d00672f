"""Offline decisions are claimed one at a time before their request goes out.

Two offline passes at once (a manual run next to the scheduled one, or a retry
next to a run that hangs) must never send the same decision twice, and a pass
that dies between claiming a decision and recording its answer must leave it to
a later pass, which sends the same request_id (docs/payments.md, "Claims").
"""

from __future__ import annotations

import threading
from contextlib import closing

import pytest
from payment_fixtures import offline_rows
from support.waiting import Worker, wait_until

from sublessor_airflow.hooks.signed_http import ListingApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments import decisions
from sublessor_billing.payments.offline import send_offline_decisions

pytestmark = pytest.mark.integration


def pending_decisions(conn, subs: range) -> list[str]:
    with conn.cursor() as cur:
        for sub in subs:
            cur.execute(
                "INSERT INTO sublessor_offline_event (request_id, sublessor_id, trigger_order_id, "
                "reason) VALUES (%s, %s, %s, 'insufficient balance (1001)')",
                (f"sublessor-offline-{820000000000 + sub}", sub, 820000000000 + sub),
            )
    conn.commit()
    return [f"sublessor-offline-{820000000000 + sub}" for sub in subs]


def listing_client():
    return ListingApiHook(timeout_ms=5000, pool_size=3).get_async_conn()


def test_two_offline_passes_at_once_send_each_decision_once(
    billing_env, user_prop_target, user_prop_conn, listing_service
):
    request_ids = pending_decisions(user_prop_conn, range(300, 312))
    listing_service.configure(latency_ms=150)  # every request in flight a while: the passes overlap
    start = threading.Barrier(2)
    reports, errors = [], []

    def one_pass() -> None:
        try:
            with closing(connect(user_prop_target)) as conn:
                start.wait()
                reports.append(send_offline_decisions(conn, listing_client(), workers=3))
        except BaseException as exc:  # reported below
            errors.append(exc)

    passes = [threading.Thread(target=one_pass) for _ in range(2)]
    for p in passes:
        p.start()
    for p in passes:
        p.join(60)
    assert not errors, errors
    assert {rid: listing_service.received.get(rid) for rid in request_ids} == dict.fromkeys(
        request_ids, 1
    ), "a decision was sent by both passes"
    assert sum(r.sent for r in reports) == len(request_ids)
    events = offline_rows(user_prop_target)
    assert {e["status"] for e in events} == {"done"}
    assert {e["attempts"] for e in events} == {1}
    assert {e["claimed_until"] for e in events} == {None}


def test_a_pass_that_died_after_claiming_leaves_the_decision_to_a_later_pass(
    billing_env, user_prop_target, user_prop_conn, listing_service
):
    (request_id,) = pending_decisions(user_prop_conn, range(320, 321))
    # What a pass killed between its claim and the answer leaves: a committed claim, no answer.
    with closing(connect(user_prop_target)) as dying:
        (event,) = decisions.load_pending(dying)
        assert decisions.claim(dying, event, "host:1:dead", lease_s=1.5)

    with closing(connect(user_prop_target)) as conn:
        report = send_offline_decisions(conn, listing_client(), workers=2)
    assert (report.sent, report.claimed_elsewhere) == (0, 1), "sent while another pass holds it"
    assert listing_service.received == {}

    with closing(connect(user_prop_target)) as conn:  # by the database's clock
        wait_until(lambda: decisions.claimed_elsewhere(conn) == 0, 10, "the claim to lapse")
    with closing(connect(user_prop_target)) as conn:
        report = send_offline_decisions(conn, listing_client(), workers=2)
    assert (report.sent, report.claimed_elsewhere) == (1, 0)
    assert listing_service.received == {request_id: 1}, "the same request_id, once"
    (event,) = offline_rows(user_prop_target)
    assert (event["status"], event["attempts"], event["claimed_by"]) == ("done", 2, None)


def test_a_claim_is_refused_once_another_pass_took_it_or_the_decision_moved_on(
    user_prop_target, user_prop_conn
):
    pending_decisions(user_prop_conn, range(330, 331))
    with closing(connect(user_prop_target)) as a, closing(connect(user_prop_target)) as b:
        (seen_by_a,) = decisions.load_pending(a)
        (seen_by_b,) = decisions.load_pending(b)
        assert decisions.claim(a, seen_by_a, "a", lease_s=60)
        assert not decisions.claim(b, seen_by_b, "b", lease_s=60), "claimed twice"
        decisions.record_delivery(a, seen_by_a.id, "a", offlined=None, error="HTTP 500")
        # released by the failure, but b read it before a's attempt: b must read it again
        assert not decisions.claim(b, seen_by_b, "b", lease_s=60)
        (again,) = decisions.load_pending(b)
        assert again.attempts == 1 and decisions.claim(b, again, "b", lease_s=60)
        with b.cursor() as cur:
            cur.execute("UPDATE sublessor_offline_event SET status = 'superseded'")
        b.commit()
        assert decisions.load_pending(a) == []


def test_a_decision_superseded_while_its_request_is_in_flight_changes_nothing_when_answered(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls
):
    """A charge recorded while the offline pass sends the sublessor's decision supersedes it
    (the service may act on it, or may have already): the late answer of that request must not
    mark it done, and the new decision is sent by the next pass."""
    from payment_fixtures import PRICE_FEN

    from sublessor_airflow.operators.charge import ChargeValidCallsOperator

    sub = 340
    payment_center.set_account(sub, PRICE_FEN - 1000)
    listing_service.set_listings(sub, 3)
    charge = ChargeValidCallsOperator(task_id="charge_valid_calls", workers=2)
    seed_calls(sub, 1)
    assert charge.execute({})["insufficient"] == 1
    (first,) = offline_rows(user_prop_target)

    listing_service.configure(latency_ms=2000)

    def offline_pass():
        with closing(connect(user_prop_target)) as conn:
            return send_offline_decisions(conn, listing_client(), workers=2)

    sending = Worker(offline_pass, name="offline pass").start()
    wait_until(  # claimed: its request is out
        lambda: offline_rows(user_prop_target)[0]["attempts"] > 0, 10, "the decision claimed"
    )
    seed_calls(sub, 1)
    assert charge.execute({})["insufficient"] == 1  # refused again while the request is out
    superseded, second = offline_rows(user_prop_target)
    assert (superseded["status"], second["status"], second["attempts"]) == (
        "superseded", "pending", 0,
    )  # fmt: skip
    assert sending.join(30).sent == 1, "the service did act on it"

    late, second = offline_rows(user_prop_target)
    assert (late["status"], late["offlined"], late["done_at"]) == (
        "superseded", None, superseded["done_at"],
    ), "the late answer changed the superseded decision"  # fmt: skip
    assert second["status"] == "pending"

    listing_service.configure(latency_ms=0)
    with closing(connect(user_prop_target)) as conn:
        assert send_offline_decisions(conn, listing_client(), workers=2).sent == 1
    assert listing_service.received == {first["request_id"]: 1, second["request_id"]: 1}
    assert [e["status"] for e in offline_rows(user_prop_target)] == ["superseded", "done"]
