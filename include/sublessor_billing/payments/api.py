"""Asynchronous clients of the payment center and the listing service (payment-api.md, listing-api.md).

One ``aiohttp`` keep-alive pool per client (``limit`` connections), opened with
``async with client:`` inside the event loop that uses it. Every request is
signed per the contract and bounded by ONE deadline, ``timeout_ms``, covering
connect, send and the complete answer: a service that drips its answer cannot
hold a request past it. Every answer that proves nothing (deadline, connection
error, any HTTP status but 200, a compressed body, a body that is not a JSON
object) raises ``UnknownOutcome`` naming the connection and address: only a
plain HTTP 200 JSON answer is classified. Redirects are never followed (a 302
would be re-sent as a GET, a 307 would send the signed body elsewhere), and the
answer is asked for uncompressed (``Accept-Encoding: identity``). The app key only signs: it is never sent,
logged or put in an error. The Airflow hooks build these from connections
(``sublessor_airflow.hooks.signed_http``).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

from sublessor_billing.payments.outcomes import ChargeCode, UnknownOutcome, check_order_ids
from sublessor_billing.signing import Signer

# identity: a compressing proxy in front of the service must leave the answer readable
_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}


class SignedJsonClient:
    """POST signed JSON bodies to one service over a keep-alive pool, each within a total deadline."""

    def __init__(
        self,
        *,
        base_url: str,
        signer: Signer,
        timeout_ms: int,
        conn_id: str,
        limit: int = 64,
        ssl_context: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.timeout_ms = timeout_ms
        self.conn_id = conn_id
        self.limit = max(1, limit)
        self.ssl_context = ssl_context
        self._session: Any = None
        self._urls: dict[str, Any] = {}

    def describe(self, endpoint: str = "") -> str:
        """``connection '<id>' at <url>``: what every error of this client names."""
        return f"connection {self.conn_id!r} at {self.base_url}{endpoint}"

    async def __aenter__(self) -> SignedJsonClient:
        try:
            import aiohttp
        except ImportError as exc:  # pinned in requirements.txt
            raise RuntimeError(f"aiohttp is required to reach {self.describe()}: {exc}") from None
        seconds = self.timeout_ms / 1000
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.limit, ssl=self.ssl_context),
            # exact: aiohttp would round a deadline above 5 s up to the next whole second
            timeout=aiohttp.ClientTimeout(total=seconds, ceil_threshold=seconds + 1),
            headers=_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),  # nothing per request that the API does not need
            auto_decompress=False,
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _url(self, endpoint: str) -> Any:
        """The parsed URL of ``endpoint``, built once (aiohttp would parse the string per request)."""
        url = self._urls.get(endpoint)
        if url is None:
            from yarl import URL

            url = self._urls[endpoint] = URL(self.base_url + endpoint)
        return url

    async def post(self, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
        """POST the signed body; return the JSON object or raise ``UnknownOutcome``."""
        import aiohttp

        if self._session is None:
            raise RuntimeError(f"{type(self).__name__} is not open: use 'async with client:'")
        body = json.dumps(self.signer.sign(fields), ensure_ascii=False).encode("utf-8")
        try:
            async with self._session.post(
                self._url(endpoint), data=body, allow_redirects=False
            ) as response:
                status = response.status
                encoding = response.headers.get("Content-Encoding", "identity")
                raw = await response.read()
        except TimeoutError:  # aiohttp's total deadline (connect + send + whole answer)
            raise UnknownOutcome(
                f"no complete answer within {self.timeout_ms} ms from {self.describe(endpoint)}"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise UnknownOutcome(
                f"cannot reach {self.describe(endpoint)}: {type(exc).__name__}: {_short(exc)}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UnknownOutcome(
                f"connection lost before a complete answer from {self.describe(endpoint)}: "
                f"{type(exc).__name__}: {_short(exc)}"
            ) from None
        if status != 200:
            raise UnknownOutcome(self._not_200(endpoint, status))
        if encoding.strip().lower() != "identity":
            raise UnknownOutcome(
                f"answer with Content-Encoding {encoding!r} from {self.describe(endpoint)} although "
                "we ask for 'identity': a proxy in front of it compresses; have it pass answers "
                "through uncompressed"
            )
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UnknownOutcome(
                f"unparseable answer (HTTP {status}) from {self.describe(endpoint)}: "
                f"{raw[:120].decode('utf-8', 'replace')!r}"
            )
        return data

    def _not_200(self, endpoint: str, status: int) -> str:
        """Why an answer that is not HTTP 200 proves nothing (only a 200's code is classified)."""
        where = self.describe(endpoint)
        if 300 <= status < 400:
            return (
                f"HTTP {status} (a redirect, not followed) from {where}: fix the host of "
                f"connection {self.conn_id!r} (Admin -> Connections) to the service's own address"
            )
        return f"HTTP {status} from {where}: only an HTTP 200 answer is classified"


def event_loop() -> asyncio.Runner:
    """The loop the passes run on: the standard asyncio loop, never uvloop.

    Airflow's ``execution_timeout`` raises ``AirflowTaskTimeout`` from a SIGALRM
    handler; uvloop runs that handler inside one of its callbacks and logs the
    exception instead of raising it, so the task would run on past its timeout
    (``tests/unit/payments/test_event_loop.py``). uvloop stays for the sandbox
    server process of the benchmark only.
    """
    return asyncio.Runner()


def _short(exc: BaseException) -> str:
    return str(exc)[:200]


class PaymentApi(SignedJsonClient):
    """The payment center: ``charge`` and ``query``."""

    async def charge(
        self, *, order_id: int, user_id: int, amount: int, subject: str
    ) -> dict[str, Any]:
        """Charge one order; refuses (``OrderIdOutOfRange``) an id below 820000000000 unsent."""
        check_order_ids([order_id])
        fields = {"order_id": order_id, "user_id": user_id, "amount": amount, "subject": subject}
        return await self.post("/trade/charge", fields)

    async def query(self, *, order_id: int) -> dict[str, Any]:
        return await self.post("/trade/query", {"order_id": order_id})


class ListingApi(SignedJsonClient):
    """The listing service: ``offline_all``."""

    refused_signature = False  # a 1003 answer: our app id / key is wrong (checked by the operator)

    async def offline_all(self, *, user_id: int, reason: str, request_id: str) -> dict[str, Any]:
        fields = {"user_id": user_id, "reason": reason, "request_id": request_id}
        body = await self.post("/listing/offline_all", fields)
        if body.get("code") == ChargeCode.BAD_SIGN:
            self.refused_signature = True
        return body
