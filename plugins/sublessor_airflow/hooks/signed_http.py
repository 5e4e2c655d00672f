"""Hooks of the payment center and the listing service (payment-api.md, listing-api.md).

Built on the http provider's ``HttpHook`` for the connection (host with scheme,
port; login = app id, password = app key; extra ``verify`` / ``verify_ssl``:
false, or a CA bundle path, as the provider reads it). The connection is read
once; ``get_conn()`` returns the asynchronous client of
``sublessor_billing.payments.api`` (aiohttp keep-alive pool, signed bodies, one
total deadline per request). The provider's ``HttpAsyncHook`` is not used: it
sends login / password as basic auth (the app key must only sign) and opens a
session per call. ``charge`` / ``query`` / ``offline_all`` are synchronous
one-off calls for people investigating a row; the operators use ``get_conn()``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from sublessor_billing.config import LISTING_API, PAYMENT_API, PAYMENT_API_TIMEOUT
from sublessor_billing.payments.api import ListingApi, PaymentApi, SignedJsonClient
from sublessor_billing.signing import Signer

_FALSE = {"false", "0", "no", "off"}
_TRUE = {"true", "1", "yes", "on"}


class SignedJsonHook(HttpHook):
    """Base: one connection, read once, turned into a signed async JSON client."""

    conn_type = "http"
    hook_name = "Signed JSON API (sublessor billing)"
    client_class: type[SignedJsonClient] = SignedJsonClient

    def __init__(
        self,
        http_conn_id: str,
        *,
        timeout_ms: int = PAYMENT_API_TIMEOUT.default,
        pool_size: int = 64,
    ) -> None:
        super().__init__(method="POST", http_conn_id=http_conn_id)
        self.timeout_ms = timeout_ms
        self.pool_size = pool_size
        self._settings: tuple[Signer, ssl.SSLContext | bool] | None = None
        self._lock = threading.Lock()  # one-off calls may come from several threads

    def _load_connection(self) -> tuple[Signer, ssl.SSLContext | bool]:
        """Read the connection (once): base URL, app id / key, TLS verification."""
        with self._lock:
            return self._settings or self._read_connection()

    def _read_connection(self) -> tuple[Signer, ssl.SSLContext | bool]:
        conn_id = self.http_conn_id
        try:
            conn = self.get_connection(conn_id)
        except Exception as exc:
            raise ValueError(
                f"Airflow connection {conn_id!r} is not defined ({exc}); create it with "
                "host = scheme://host, port, login = app id, password = app key."
            ) from None
        self._set_base_url(conn)
        if not conn.login or not conn.password:
            raise ValueError(
                f"Airflow connection {conn_id!r} ({self.base_url}) needs login = app id "
                "and password = app key to sign requests."
            )
        extra = conn.extra_dejson
        verify = extra.get("verify", extra.get("verify_ssl", True))
        self._settings = (Signer(conn.login, conn.password), _ssl_context(conn_id, verify))
        return self._settings

    def get_conn(self, headers: Any = None, extra_options: Any = None) -> Any:
        """A client for this connection; open it inside the event loop (``async with``)."""
        signer, ssl_context = self._load_connection()
        return self.client_class(
            base_url=self.base_url,
            signer=signer,
            timeout_ms=self.timeout_ms,
            conn_id=self.http_conn_id,
            limit=self.pool_size,
            ssl_context=ssl_context,
        )

    def describe(self, endpoint: str = "") -> str:
        """``connection '<id>' at <url>``: what every error of this hook names."""
        self._load_connection()
        return f"connection {self.http_conn_id!r} at {self.base_url.rstrip('/')}{endpoint}"

    def call_once(self, method: str, **fields: Any) -> dict[str, Any]:
        """Run one request of the client synchronously (own event loop and connection)."""

        async def once() -> dict[str, Any]:
            async with self.get_conn() as client:
                return await getattr(client, method)(**fields)

        return asyncio.run(once())


def _ssl_context(conn_id: str, verify: Any) -> ssl.SSLContext | bool:
    """``verify`` of the connection extras: true (default), false, or a CA bundle path."""
    if isinstance(verify, bool):
        return verify
    text = str(verify).strip()
    if text.lower() in _TRUE or not text:
        return True
    if text.lower() in _FALSE:
        return False
    try:
        return ssl.create_default_context(cafile=text)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"Airflow connection {conn_id!r}: extra 'verify' = {text!r} is neither true/false nor "
            f"a readable CA bundle ({exc}); fix the connection's extra."
        ) from None


class PaymentApiHook(SignedJsonHook):
    """The payment center: ``get_conn()`` for charging, ``charge`` / ``query`` for one-off calls."""

    default_conn_name = PAYMENT_API
    hook_name = "Payment center (sublessor billing)"
    client_class = PaymentApi

    def __init__(self, http_conn_id: str = PAYMENT_API, **kwargs: Any) -> None:
        super().__init__(http_conn_id, **kwargs)

    def charge(self, *, order_id: int, user_id: int, amount: int, subject: str) -> dict[str, Any]:
        """Charge one order; refuses (``OrderIdOutOfRange``) an id below 820000000000 unsent."""
        fields = {"order_id": order_id, "user_id": user_id, "amount": amount, "subject": subject}
        return self.call_once("charge", **fields)

    def query(self, *, order_id: int) -> dict[str, Any]:
        """What the payment center knows about one order (``not_found``: never charged)."""
        return self.call_once("query", order_id=order_id)


class ListingApiHook(SignedJsonHook):
    """The listing service: ``offline_all`` (one request, within the deadline)."""

    default_conn_name = LISTING_API
    hook_name = "Listing service (sublessor billing)"
    client_class = ListingApi

    def __init__(self, http_conn_id: str = LISTING_API, **kwargs: Any) -> None:
        super().__init__(http_conn_id, **kwargs)

    def offline_all(self, *, user_id: int, reason: str, request_id: str) -> dict[str, Any]:
        fields = {"user_id": user_id, "reason": reason, "request_id": request_id}
        return self.call_once("offline_all", **fields)
