"""Signed JSON POSTs to the payment center and the listing service (payment-api.md, listing-api.md).

Built on the http provider's ``HttpHook`` for the connection handling (login =
app id, password = app key, host with scheme + port), with what the money path
needs on top: one keep-alive session per thread (parallel charging), the
request signed per the contract, a timeout in milliseconds, and every answer
that proves nothing (timeout, connection error, HTTP 5xx, a body that is not a
JSON object) raised as ``UnknownOutcome`` naming the connection and address.
The app key is only used to sign: it is never sent, logged or put in an error.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from sublessor_billing.config import LISTING_API, PAYMENT_API, PAYMENT_API_TIMEOUT
from sublessor_billing.payments.outcomes import UnknownOutcome, check_order_ids
from sublessor_billing.signing import sign_body


class SignedJsonHook(HttpHook):
    """Base: sign a JSON body with the connection's app id / key and POST it."""

    conn_type = "http"
    hook_name = "Signed JSON API (sublessor billing)"

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
        self._local = threading.local()
        self._lock = threading.Lock()
        self._app: tuple[str, str] | None = None
        self._sessions: list[Any] = []

    def _load_connection(self) -> tuple[str, str]:
        """Read the connection once (call from the task's main thread before going parallel)."""
        with self._lock:
            if self._app is None:
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
                self._app = (conn.login, conn.password)
            return self._app

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: Any = None) -> Any:
        """Return this thread's keep-alive session (no basic auth: the key only signs)."""
        self._load_connection()
        session = getattr(self._local, "session", None)
        if session is None:
            import requests
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            session.trust_env = False
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"Content-Type": "application/json", **(headers or {})})
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def post_signed(self, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
        """POST the signed body; return the JSON object or raise ``UnknownOutcome``."""
        import requests

        session = self.get_conn()
        app_id, key = self._load_connection()
        url = self.base_url.rstrip("/") + endpoint
        where = self.describe(endpoint)
        body = json.dumps(sign_body(fields, app_id, key), ensure_ascii=False).encode("utf-8")
        try:
            response = session.post(url, data=body, timeout=self.timeout_ms / 1000)
        except requests.Timeout:
            raise UnknownOutcome(f"no answer within {self.timeout_ms} ms from {where}") from None
        except requests.RequestException as exc:
            raise UnknownOutcome(
                f"cannot reach {where}: {type(exc).__name__}: {_short(exc)}"
            ) from None
        if response.status_code >= 500:
            raise UnknownOutcome(f"HTTP {response.status_code} from {where}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UnknownOutcome(
                f"unparseable answer (HTTP {response.status_code}) from {where}: {response.text[:120]!r}"
            )
        return data

    def describe(self, endpoint: str = "") -> str:
        """``connection '<id>' at <url>``: what every error of this hook names."""
        self._load_connection()
        return f"connection {self.http_conn_id!r} at {self.base_url.rstrip('/')}{endpoint}"

    def close(self) -> None:
        """Close every thread's session (their keep-alive connections)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()


def _short(exc: Exception) -> str:
    return str(exc)[:200]


class PaymentApiHook(SignedJsonHook):
    """The payment center: ``charge`` and ``query``."""

    default_conn_name = PAYMENT_API
    hook_name = "Payment center (sublessor billing)"

    def __init__(self, http_conn_id: str = PAYMENT_API, **kwargs: Any) -> None:
        super().__init__(http_conn_id, **kwargs)

    def charge(self, *, order_id: int, user_id: int, amount: int, subject: str) -> dict[str, Any]:
        """Charge one order; refuses (``OrderIdOutOfRange``) an id below 820000000000 unsent."""
        check_order_ids([order_id])
        fields = {"order_id": order_id, "user_id": user_id, "amount": amount, "subject": subject}
        return self.post_signed("/trade/charge", fields)

    def query(self, *, order_id: int) -> dict[str, Any]:
        return self.post_signed("/trade/query", {"order_id": order_id})


class ListingApiHook(SignedJsonHook):
    """The listing service: ``offline_all``."""

    default_conn_name = LISTING_API
    hook_name = "Listing service (sublessor billing)"

    def __init__(self, http_conn_id: str = LISTING_API, **kwargs: Any) -> None:
        super().__init__(http_conn_id, **kwargs)

    def offline_all(self, *, user_id: int, reason: str, request_id: str) -> dict[str, Any]:
        fields = {"user_id": user_id, "reason": reason, "request_id": request_id}
        return self.post_signed("/listing/offline_all", fields)
