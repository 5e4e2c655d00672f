"""Charging one shard of the sublessors (sublessor_id % count == index): the others are left alone."""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls
from sublessor_billing.payments.store import Shard
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration


def charge_shard(target, shard: Shard):
    conn = connect(target)
    try:
        return charge_valid_calls(
            conn, PaymentApiHook(timeout_ms=1000).get_async_conn(), price_fen=PRICE_FEN, workers=4,
            flush_seconds=0.05, shard=shard,
        )  # fmt: skip
    finally:
        conn.close()


def statuses(target) -> dict[int, set[str]]:
    by_sublessor: dict[int, set[str]] = {}
    for row in payment_rows(target).values():
        by_sublessor.setdefault(row["sublessor_id"], set()).add(row["status"])
    return by_sublessor


def test_a_shard_charges_only_its_sublessors_and_fails_only_on_its_own_pending(
    billing_env, user_prop_target, payment_center, seed_calls
) -> None:
    for sub in (3, 4, 5, 6):
        payment_center.set_account(sub, 10 * PRICE_FEN)
        seed_calls(sub, 2)
    # every order of sublessor 4 (shard 1 of 3) answers 500 whatever the retries
    payment_center.add_fault(Fault("error_before", path="/trade/charge", match={"user_id": 4}))

    report = charge_shard(user_prop_target, Shard(0, 3))  # sublessors 3 and 6
    assert report.allocation.allocated == 8  # every shard allocates every new call first
    assert statuses(user_prop_target) == {3: {"success"}, 4: {"pending"}, 5: {"pending"},
                                          6: {"success"}}  # fmt: skip

    assert charge_shard(user_prop_target, Shard(2, 3)).counts["success"] == 2  # sublessor 5
    with pytest.raises(ChargesPending) as pending:
        charge_shard(user_prop_target, Shard(1, 3))
    assert pending.value.report.counts["pending"] == 2  # its own, and nothing of the others
    assert statuses(user_prop_target)[5] == {"success"}
    assert payment_center.full_state()["double_charged"] == []


def test_a_shard_index_must_be_below_its_count() -> None:
    with pytest.raises(ValueError, match="shard 3 of 3"):
        Shard(3, 3)
    assert str(Shard()) == "all sublessors"
