"""Offline decisions follow each sublessor's latest charge, whatever the listing service does.

Invariant (docs/payments.md, "Offline decisions"): after every pass, a sublessor
whose latest charge that says something about the account (1001, 1002, or a
success with its balance) was refused or left less than one call's price (the
price of the pass that recorded it: Variable ``payment_price_per_call`` may
change between passes) has had, or will have on the next try, an
``offline_all`` request sent after that charge; a sublessor whose latest such
charge left at least one call's price has nothing waiting to be sent.
"""

from __future__ import annotations

import itertools
from contextlib import closing

import pytest
from airflow.sdk.exceptions import AirflowFailException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payment_fixtures import offline_rows, payment_rows
from support.connections import APP_ID, PAYMENT_KEY

from sublessor_airflow.hooks.signed_http import ListingApiHook
from sublessor_airflow.operators.charge import ChargeValidCallsOperator, TakeListingsOfflineOperator
from sublessor_billing import config
from sublessor_billing.db.connect import connect
from sublessor_billing.payments import store
from sublessor_billing.payments.offline import OfflinePending, send_offline_decisions
from sublessor_billing.payments.outcomes import PaymentStatus
from sublessor_billing.sandbox.payment_center import PaymentCenter
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration

LISTING_DOWN = Fault("error_before", path="/listing/offline_all")
# the service acts on the request, then the answer is lost (HTTP 500)
ANSWER_LOST = Fault("error_after", path="/listing/offline_all")


def charge_task():
    return ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)


def offline_task():
    return TakeListingsOfflineOperator(task_id="take_listings_offline", workers=2)


@pytest.mark.parametrize(
    ("passes", "offline_between"),
    [(1, False), (2, False), (2, True)],
    ids=["one_pass", "two_passes", "two_passes_offline_step_between"],
)
def test_low_balance_after_a_top_up_is_taken_offline_once_the_service_is_back(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls, passes,
    offline_between,
):  # fmt: skip
    sub = 31
    payment_center.set_account(sub, 3000)
    listing_service.set_listings(sub, 5)
    seed_calls(sub, 1)
    assert charge_task().execute({})["insufficient"] == 1  # 1001, balance 3000: a decision
    listing_service.add_fault(LISTING_DOWN)
    with pytest.raises(OfflinePending):
        offline_task().execute({})

    payment_center.set_account(sub, 9000)  # topped up while the listing service is down
    for calls in [2] if passes == 1 else [1, 1]:
        seed_calls(sub, calls)
        charge_task().execute({})
        if offline_between and payment_center.balance(sub) == 5000:
            # enough for a call: the refusal's decision is stale, nothing waits to be sent
            assert offline_task().execute({})["sent"] == 0
    orders = sorted(payment_rows(user_prop_target).values(), key=lambda r: r["id"])
    assert [(r["status"], r["balance_after"]) for r in orders] == [
        ("insufficient", 3000),
        ("success", 5000),
        ("success", 1000),
    ]
    with pytest.raises(OfflinePending):  # 1000 fen left: a decision waits for the service
        offline_task().execute({})

    listing_service.clear_faults()
    assert offline_task().execute({})["sent"] == 1
    assert listing_service.online[sub] == 0 and listing_service.offline_calls == {sub: 1}
    (done,) = [e for e in offline_rows(user_prop_target) if e["status"] == "done"]
    assert done["trigger_order_id"] == orders[-1]["id"], "sent for the 1000-fen charge"
    assert done["request_id"] in listing_service.requests
    assert not [e for e in offline_rows(user_prop_target) if e["status"] == "pending"]


# -- the invariant over sequences of outcomes ----------------------------------------------
# What one charge answered: (status, result_code, balance_after); None in the last place is
# a success whose answer carried no balance. Only 1001, 1002 and a success with a balance
# say something about the account; 1004 and a balance-less success do not. Whether a
# success left "less than one call's price" depends on the price of the pass that records
# it: the balances sit on both sides of every price the passes use.
KINDS = {
    "refused": (PaymentStatus.INSUFFICIENT, 1001, 300),
    "frozen": (PaymentStatus.FAILED, 1002, None),
    **{f"left_{b}": (PaymentStatus.SUCCESS, 0, b) for b in (2999, 3000, 3999, 4000, 4999, 5000)},
    "plenty": (PaymentStatus.SUCCESS, 0, 20000),
    "no_balance": (PaymentStatus.SUCCESS, 0, None),
    "reused": (PaymentStatus.FAILED, 1004, None),
}
PRICES_YUAN = (30, 40, 50)


def dry(kind: str, price_fen: int) -> bool | None:
    """Whether the charge needs the listings offline at ``price_fen``; None: it says nothing."""
    status, code, balance = KINDS[kind]
    if code in (1001, 1002):
        return True
    if status != PaymentStatus.SUCCESS or balance is None:
        return None
    return balance < price_fen


batches = st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=4)
# a pass: the price Variable it reads, its batches of answers, then how the listing service
# answers the offline step
listing = st.sampled_from(["up", "down", "answer_lost"])
passes = st.lists(
    st.tuples(st.sampled_from(PRICES_YUAN), st.lists(batches, min_size=1, max_size=3), listing),
    max_size=6,
)
SUBLESSORS = itertools.count(1000)


class ScriptedPaymentCenter(PaymentCenter):
    """The payment center sandbox answering what the test scripts per call (``subject`` is
    ``400 call <call_id>``); calls it has no script for are charged as usual."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.script: dict[str, tuple[str, int, int | None]] = {}

    def _charge(self, body):
        kind = self.script.get(str(body.get("subject", "")).removeprefix("400 call "))
        if kind is None:
            return super()._charge(body)
        _status, code, balance = kind
        answer = {"code": code, "message": "scripted"}
        return 200, answer if balance is None else {**answer, "balance": balance}


@pytest.fixture
def payment_center():
    """Overrides the conftest's: ``billing_env`` points the payment_api connection at it."""
    server = ScriptedPaymentCenter({APP_ID: PAYMENT_KEY}).start()
    yield server
    server.stop()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=passes)
def test_every_sequence_of_outcomes_and_prices_keeps_the_offline_invariant(
    billing_env, user_prop_target, payment_center, listing_service, airflow_variables, seed_calls,
    history,
):  # fmt: skip
    """After every pass, a sublessor whose latest informative charge was refused or left less
    than one call's price (the price of the pass that recorded it) has had, or will have on the
    next try, an offline_all sent after that charge; otherwise nothing of it waits.

    Each batch of answers is a run of the charge task: it reads Variable
    payment_price_per_call itself, allocates the calls, sends them to the payment center
    (scripted per call) and records the answers with the offline decisions they cause.
    """
    sub = next(SUBLESSORS)  # each example is its own sublessor: examples do not interfere
    clock = itertools.count(1)
    dry_since: int | None = None  # when the latest informative charge left the account dry
    delivered_at: int | None = None  # when an offline_all last took effect for this sublessor

    def deliver(conn, listing: str) -> None:
        nonlocal delivered_at
        listing_service.clear_faults()
        if listing != "up":
            listing_service.add_fault(LISTING_DOWN if listing == "down" else ANSWER_LOST)
        before = listing_service.offline_calls.get(sub, 0)
        client = ListingApiHook(timeout_ms=5000, pool_size=2).get_async_conn()
        try:
            send_offline_decisions(conn, client, workers=2)
        except OfflinePending:
            assert listing != "up"
        if listing_service.offline_calls.get(sub, 0) > before:
            assert dry_since is not None, "listings taken offline while the account had money"
            delivered_at = next(clock)

    with closing(connect(user_prop_target)) as conn:
        for yuan, pass_batches, listing in history:
            airflow_variables(config.PAYMENT_PRICE_PER_CALL.name, yuan)  # changed between passes
            for kinds in pass_batches:
                calls = seed_calls(sub, len(kinds))
                payment_center.script.update(
                    (call_id, KINDS[kind]) for call_id, kind in zip(calls, kinds, strict=True)
                )
                try:
                    result = charge_task().execute({})
                except AirflowFailException as failed:  # a 1004 fails the task until checked
                    assert "reused" in kinds and "1004" in str(failed), failed
                    reused_checked(conn)
                else:
                    assert "reused" not in kinds and result["pending"] == 0
                for kind in kinds:
                    signal = dry(kind, yuan * 100)
                    if signal is not None:
                        dry_since = next(clock) if signal else None
            deliver(conn, listing)

            waiting = [
                e
                for e in offline_rows(user_prop_target)
                if e["sublessor_id"] == sub and e["status"] == "pending"
            ]
            assert len(waiting) <= 1, "at most one decision waits per sublessor"
            if dry_since is None:
                assert not waiting, "a decision waits although the latest charge left money"
            elif delivered_at is None or delivered_at < dry_since:
                # not taken offline since it ran dry: the next try must send a fresh request
                assert waiting and waiting[0]["request_id"] not in listing_service.requests
        deliver(conn, "up")
        if dry_since is not None:
            assert delivered_at is not None and delivered_at > dry_since


def reused_checked(conn) -> None:
    """What the person on call does once a 1004 is understood (docs/payments.md)."""
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE {store.PAYMENT_LOG} SET last_error = NULL WHERE result_code = 1004 "
            "AND status = 'failed'"
        )
    conn.commit()
