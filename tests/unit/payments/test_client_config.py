"""How the payment client and the charge operator bound their time (no network)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sublessor_airflow.operators.charge import pass_deadline_s
from sublessor_billing.payments.api import PaymentApi
from sublessor_billing.signing import Signer


@pytest.mark.parametrize("timeout_ms", [20_000, 5_500, 1_250])
def test_the_request_deadline_is_exact_above_five_seconds(timeout_ms):
    """aiohttp rounds a deadline above ``ceil_threshold`` (default 5 s) up to a whole second."""

    async def session_timeout():
        client = PaymentApi(
            base_url="http://127.0.0.1:9", signer=Signer("a", "k"), timeout_ms=timeout_ms,
            conn_id="payment_api",
        )  # fmt: skip
        async with client:
            return client._session.timeout, client._session.headers

    timeout, headers = asyncio.run(session_timeout())
    assert timeout.total == timeout_ms / 1000
    assert timeout.ceil_threshold > timeout.total  # never rounded
    assert headers["Accept-Encoding"] == "identity"


def test_the_pass_deadline_stays_below_execution_timeout():
    assert pass_deadline_s(timedelta(hours=1)) == 3240
    assert pass_deadline_s(None) is None
