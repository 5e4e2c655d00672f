"""Fixtures of the money-path tests: in-process sandboxes, Airflow connections, seeded valid calls."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from payment_fixtures import PRICE_FEN
from support.connections import APP_ID, LISTING_KEY, PAYMENT_KEY, signed_http_connection

from sublessor_billing.sandbox.listing_service import ListingService
from sublessor_billing.sandbox.payment_center import PaymentCenter


@pytest.fixture
def payment_center() -> Iterator[PaymentCenter]:
    server = PaymentCenter({APP_ID: PAYMENT_KEY}).start()
    yield server
    server.stop()


@pytest.fixture
def listing_service() -> Iterator[ListingService]:
    server = ListingService({APP_ID: LISTING_KEY}).start()
    yield server
    server.stop()


@pytest.fixture
def billing_env(
    user_prop_target, payment_center, listing_service, airflow_connections, airflow_variables
) -> dict[str, str]:
    """Connections for user_prop_db / payment_api / listing_api, a short request timeout."""
    conns = {
        "user_prop_db": json.dumps(user_prop_target.airflow_connection()),
        "payment_api": json.dumps(signed_http_connection(payment_center.url, PAYMENT_KEY)),
        "listing_api": json.dumps(signed_http_connection(listing_service.url, LISTING_KEY)),
    }  # fmt: skip
    for conn_id, value in conns.items():
        airflow_connections(conn_id, value)
    airflow_variables("payment_api_timeout", 1000)
    airflow_variables("payment_price_per_call", PRICE_FEN // 100)
    return {f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()}


@pytest.fixture
def seed_calls(user_prop_conn) -> Callable[..., list[str]]:
    """Insert valid calls (filter_rule = 1) straight into the call log; return their call ids."""
    counter = iter(range(1, 10**6))

    def seed(
        sublessor_id: int, count: int = 1, *, filter_rule: int = 1, judged_ago: int | None = 0
    ) -> list[str]:
        """``judged_ago``: seconds before NOW(3) the judge set ``judged_at``; None leaves it NULL."""
        ids = []
        with user_prop_conn.cursor() as cur:
            for _ in range(count):
                n = next(counter)
                call_id = f"c-{sublessor_id}-{n}"
                cur.execute(
                    "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, "
                    "status, start_time, duration, filter_rule, judged_at) VALUES (%s, %s, %s, '4008001234', 1, "
                    "TIMESTAMPADD(SECOND, %s, '2026-03-01 10:00:00'), 60, %s, "
                    "IF(%s IS NULL, NULL, NOW(3) - INTERVAL %s SECOND))",
                    (
                        call_id,
                        sublessor_id,
                        f"1380013{n:04d}",
                        n,
                        filter_rule,
                        judged_ago,
                        judged_ago,
                    ),
                )
                ids.append(call_id)
        user_prop_conn.commit()
        return ids

    return seed
