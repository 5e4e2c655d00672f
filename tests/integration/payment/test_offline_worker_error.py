"""An unexpected error while delivering one offline decision (a bug, not an HTTP answer).

The decision stays pending with the error and its claim released, so the next
try claims it at once and sends the same request_id; every other sublessor's
decision is still delivered, and the step fails (``OfflinePending``, which
Airflow retries).
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payment_fixtures import offline_rows
from support.clients import RaisingFor

from sublessor_airflow.hooks.signed_http import ListingApiHook
from sublessor_airflow.operators.charge import ChargeValidCallsOperator, TakeListingsOfflineOperator
from sublessor_billing.payments.offline import OfflinePending

pytestmark = pytest.mark.integration


def offline_task():
    return TakeListingsOfflineOperator(task_id="take_listings_offline", workers=2)


def test_an_offline_worker_that_raises_keeps_its_decision_claimable_and_the_others_go_out(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls, monkeypatch
):
    subs = (41, 42, 43)
    for sub in subs:  # no account: 1002 for each, a decision each
        listing_service.set_listings(sub, 3)
        seed_calls(sub, 1)
    ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4).execute({})
    request_id = {e["sublessor_id"]: e["request_id"] for e in offline_rows(user_prop_target)}
    assert sorted(request_id) == list(subs)
    crashing: list[RaisingFor] = []
    real_client = ListingApiHook.get_async_conn

    def crashing_client(hook):
        crashing.append(
            RaisingFor(real_client(hook), 42, "offline_all", RuntimeError("listing client bug"))
        )
        return crashing[-1]

    monkeypatch.setattr(ListingApiHook, "get_async_conn", crashing_client)
    with pytest.raises(
        OfflinePending, match=f"{request_id[42]}: unexpected RuntimeError"
    ) as failed:
        offline_task().execute({})

    assert not isinstance(failed.value, AirflowFailException), "Airflow retries it"
    assert str(failed.value).startswith("1 offline decision(s) not delivered")
    assert crashing[0].calls == 1
    events = {e["sublessor_id"]: e for e in offline_rows(user_prop_target)}
    assert (events[41]["status"], events[43]["status"]) == ("done", "done")
    stuck = events[42]
    assert (stuck["status"], stuck["attempts"]) == ("pending", 1)
    assert stuck["last_error"] == "unexpected RuntimeError: listing client bug"
    assert (stuck["claimed_by"], stuck["claimed_until"]) == (None, None), "claim released"
    assert listing_service.offline_calls == {41: 1, 43: 1}
    assert listing_service.online == {41: 0, 42: 3, 43: 0}

    monkeypatch.setattr(ListingApiHook, "get_async_conn", real_client)  # the bug is fixed
    # the next try claims it at once: no lease to wait for
    assert offline_task().execute({})["sent"] == 1
    events = {e["sublessor_id"]: e for e in offline_rows(user_prop_target)}
    assert {e["status"] for e in events.values()} == {"done"}
    assert events[42]["attempts"] == 2 and events[42]["request_id"] == request_id[42]
    assert listing_service.offline_calls == {41: 1, 42: 1, 43: 1}
    assert listing_service.online == {41: 0, 42: 0, 43: 0}
