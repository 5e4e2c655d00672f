"""Hooks of the payment center and the listing service (payment-api.md, listing-api.md).

Both are ``HttpHook`` s (``http_base.BillingHttpHook``): the connection gives the
base URL (host with scheme, port), login = app id, password = app key, and the
provider's extras (TLS ``verify`` / ``cert``, ``proxies``, headers).

- ``get_conn()`` is the provider's ``requests.Session``; its auth
  (``SignedBody``) signs every JSON body it sends, so ``run(endpoint,
  json=fields)`` makes a contract request (``test_connection`` too).
- ``get_async_conn()`` is the charging client of ``sublessor_billing.payments.api``
  (aiohttp keep-alive pool, one total deadline per request), built from that same
  session: it honours ``verify`` and ``cert``; it refuses ``proxies`` (the money
  path would bypass the proxy) and warns that header extras are not sent. The
  provider's ``HttpAsyncHook`` is not used: it sends login / password as basic auth
  (the app key must only sign).
- ``charge`` / ``query`` / ``offline_all`` are synchronous one-off calls for people
  investigating a row, through the charging client (the same answer rules).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import threading
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowNotFoundException
from requests.auth import AuthBase
from requests.utils import default_headers as requests_headers

from sublessor_airflow.hooks.http_base import BillingHttpHook
from sublessor_billing.config import LISTING_API, PAYMENT_API, PAYMENT_API_TIMEOUT
from sublessor_billing.payments.api import ListingApi, PaymentApi, SignedJsonClient
from sublessor_billing.signing import Signer

if TYPE_CHECKING:
    from requests import PreparedRequest, Session

_ClientSettings = tuple[str, Signer, ssl.SSLContext | bool]  # base URL, signer, aiohttp ``ssl``


class SignedBody(AuthBase):
    """Sign the JSON body (payment-api.md): add app_id, timestamp and sign; the key is never sent."""

    def __init__(self, app_id: str, app_key: str) -> None:
        self.signer = Signer(app_id, app_key)

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        fields = json.loads(request.body or b"{}")
        body = json.dumps(self.signer.sign(fields), ensure_ascii=False).encode("utf-8")
        request.body = body
        request.headers["Content-Type"] = "application/json"
        request.prepare_content_length(body)
        return request


class SignedJsonHook(BillingHttpHook):
    """Base: one connection of a signed JSON service (see the module)."""

    conn_type = "http"
    hook_name = "Signed JSON API (sublessor billing)"
    # identity: a compressing proxy in front of the service must leave the answer readable
    default_headers = {"Accept-Encoding": "identity"}
    client_class: type[SignedJsonClient] = SignedJsonClient

    def __init__(
        self,
        http_conn_id: str,
        *,
        timeout_ms: int = PAYMENT_API_TIMEOUT.default,
        pool_size: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="POST", http_conn_id=http_conn_id, auth_type=SignedBody, **kwargs)
        self.timeout_ms = timeout_ms
        self.pool_size = pool_size
        self._client_settings: _ClientSettings | None = None
        self._lock = threading.Lock()  # one-off calls may come from several threads

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> Session:
        """The provider's session for the connection; every JSON body it sends is signed."""
        conn_id = self.http_conn_id
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException:
            raise ValueError(
                f"Airflow connection {conn_id!r} is not defined; create it with "
                "host = scheme://host, port, login = app id, password = app key."
            ) from None
        if not conn.login or not conn.password:
            raise ValueError(
                f"Airflow connection {conn_id!r} ({conn.host}) needs login = app id "
                "and password = app key to sign requests."
            )
        return super().get_conn(headers, extra_options)

    def get_async_conn(self) -> SignedJsonClient:
        """The charging client for this connection; open it inside the event loop (``async with``)."""
        base_url, signer, tls = self._settings()
        return self.client_class(
            base_url=base_url,
            signer=signer,
            timeout_ms=self.timeout_ms,
            conn_id=self.http_conn_id,
            limit=self.pool_size,
            ssl_context=tls,
        )

    def _settings(self) -> _ClientSettings:
        """What the charging client takes from the provider's session (the connection is read once)."""
        with self._lock:
            if self._client_settings is None:
                with self.get_conn() as session:
                    self._client_settings = (
                        self.base_url,
                        session.auth.signer,
                        self._client_tls(session),
                    )
            return self._client_settings

    def _client_tls(self, session: Session) -> ssl.SSLContext | bool:
        """aiohttp's ``ssl`` for the session's TLS settings; refuse what the client cannot honour."""
        conn_id = self.http_conn_id
        if session.proxies:
            raise ValueError(
                f"Airflow connection {conn_id!r} sets extra 'proxies' ({', '.join(session.proxies)})"
                ": the charging client does not send through a proxy, so payments would bypass it. "
                "Remove the extra, or let the service be reached directly."
            )
        plain = {key.lower() for key in (*requests_headers(), *self.default_headers)}
        if extra := sorted(key for key in session.headers if key.lower() not in plain):
            self.log.warning(
                "Connection %r: header extra(s) %s are not sent by the charging client "
                "(only by get_conn()'s session)",
                conn_id,
                ", ".join(extra),
            )
        try:
            return aiohttp_tls(session.verify, session.cert)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"Airflow connection {conn_id!r}: extras 'verify' / 'cert' cannot be loaded "
                f"({exc}); fix the connection's extra."
            ) from None

    def describe(self, endpoint: str = "") -> str:
        """``connection '<id>' at <url>``: what every error of this hook names."""
        base_url = self._settings()[0]
        return f"connection {self.http_conn_id!r} at {base_url.rstrip('/')}{endpoint}"

    def call_once(self, method: str, **fields: Any) -> dict[str, Any]:
        """Run one request of the charging client synchronously (own event loop and connection)."""

        async def once() -> dict[str, Any]:
            async with self.get_async_conn() as client:
                return await getattr(client, method)(**fields)

        return asyncio.run(once())


def aiohttp_tls(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl`` argument for requests' ``verify`` and ``cert`` (same meaning)."""
    if not cert and isinstance(verify, bool):
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        context = ssl.create_default_context()
    elif os.path.isdir(verify):
        context = ssl.create_default_context(capath=verify)
    else:
        context = ssl.create_default_context(cafile=verify)
    if cert:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        context.load_cert_chain(certfile, keyfile)
    return context


class PaymentApiHook(SignedJsonHook):
    """The payment center: ``get_async_conn()`` for charging, ``charge`` / ``query`` one-off."""

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
    """The listing service: ``get_async_conn()`` for the operator, ``offline_all`` one-off."""

    default_conn_name = LISTING_API
    hook_name = "Listing service (sublessor billing)"
    client_class = ListingApi

    def __init__(self, http_conn_id: str = LISTING_API, **kwargs: Any) -> None:
        super().__init__(http_conn_id, **kwargs)

    def offline_all(self, *, user_id: int, reason: str, request_id: str) -> dict[str, Any]:
        """Take every listing of ``user_id`` offline (idempotent per ``request_id``)."""
        fields = {"user_id": user_id, "reason": reason, "request_id": request_id}
        return self.call_once("offline_all", **fields)
