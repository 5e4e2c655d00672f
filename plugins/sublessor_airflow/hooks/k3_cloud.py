"""Kingdee K3 Cloud WebAPI hook (contracts/k3-cloud.md): login, Save, ExecuteBillQuery."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from sublessor_airflow.hooks.http_base import BillingHttpHook, NoHttpAuth
from sublessor_billing.config import K3_CLOUD
from sublessor_billing.k3 import api


class K3CloudError(RuntimeError):
    """K3 did not answer usably (down, HTTP error, not JSON): the outcome of a Save is unknown."""


class K3QueryRejected(K3CloudError, api.QueryRejected):
    """K3 answered a look-up with an error: maybe K3 is failing, maybe one number upsets its filter."""


class K3LoginError(K3CloudError):
    """K3 refused the API user's login."""


@dataclass(frozen=True)
class K3Settings:
    """What K3 takes from the connection besides the provider's URL, TLS and proxies."""

    username: str
    password: str = field(repr=False)
    acct_id: str
    lcid: int
    form_id: str


def _operation(path: str) -> str:
    """``...AuthService.ValidateUser.common.kdsvc`` -> ``ValidateUser``."""
    return path.rsplit(".", 3)[-3]


def _host_problem(host: str, schema: str | None, port: int | None) -> str | None:
    """Why the provider cannot make the K3 url of this host (None: it can)."""
    if "://" not in host:
        return "has no scheme: write the K3 url whole, e.g. https://k3.example.com/k3cloud/"
    if schema:
        return (
            f"comes with schema {schema!r}, which the http provider would use as the url's "
            "scheme or path: leave schema empty and write the K3 url whole in host"
        )
    if port and host.partition("://")[2].strip("/").count("/"):
        return (
            f"has a path and port {port} is set apart: put the port inside the url "
            "(https://k3.example.com:8443/k3cloud/) and leave port empty"
        )
    return None


class K3CloudHook(BillingHttpHook):
    """Talk to K3 Cloud with one logged-in session, re-logging in once when it expired.

    An ``HttpHook``: the provider's session (``get_conn``) carries the connection's
    TLS ``verify`` / ``cert``, ``proxies`` and header extras; ``acct_id``, ``lcid``
    and ``form_id`` go into the request bodies, never into headers; the login and
    password go into the ValidateUser body, never into an ``Authorization`` header.
    """

    conn_name_attr = "k3_conn_id"
    default_conn_name = K3_CLOUD
    conn_type = "http"
    hook_name = "Kingdee K3 Cloud"
    own_extras = frozenset({"acct_id", "lcid", "form_id"})

    def __init__(
        self, k3_conn_id: str = default_conn_name, *, timeout: float = 30.0, **kwargs: Any
    ) -> None:
        super().__init__(method="POST", http_conn_id=k3_conn_id, auth_type=NoHttpAuth, **kwargs)
        self.timeout = timeout
        self.login_count = 0
        self._settings: K3Settings | None = None
        self._session: requests.Session | None = None

    @property
    def k3_conn_id(self) -> str:
        return self.http_conn_id

    @property
    def settings(self) -> K3Settings:
        if self._settings is None:
            conn = self.get_connection(self.k3_conn_id)
            extra = conn.extra_dejson
            missing = [
                name
                for name, value in (
                    ("host", conn.host),
                    ("login", conn.login),
                    ("extra.acct_id", extra.get("acct_id")),
                    ("extra.form_id", extra.get("form_id")),
                )
                if not value
            ]
            if missing:
                raise K3CloudError(
                    f"Connection {self.k3_conn_id!r} lacks {', '.join(missing)}; "
                    "set them in Admin -> Connections (see contracts/k3-cloud.md)."
                )
            if problem := _host_problem(conn.host, conn.schema, conn.port):
                raise K3CloudError(f"Connection {self.k3_conn_id!r}: host {conn.host!r} {problem}.")
            self._settings = K3Settings(
                username=conn.login,
                password=conn.password or "",
                acct_id=str(extra["acct_id"]),
                lcid=int(extra.get("lcid") or 2052),
                form_id=str(extra["form_id"]),
            )
        return self._settings

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the logged-in session (the provider's, made and logged in on first use)."""
        if self._session is None:
            self._session = super().get_conn(headers, extra_options)
            try:
                self.login()
            except BaseException:
                self.close()
                raise
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def login(self) -> None:
        """Log in (again), replacing the session cookie."""
        if self._session is None:
            self.get_conn()  # logs in
            return
        s = self.settings
        session = self._session
        session.cookies.clear()
        answer = self._post(
            api.LOGIN_PATH, api.login_body(s.acct_id, s.username, s.password, s.lcid)
        )
        self.login_count += 1
        result = answer.get("LoginResultType") if isinstance(answer, Mapping) else None
        if result != api.LOGIN_OK:
            raise K3LoginError(
                f"K3 Cloud at {self.base_url} ({self.k3_conn_id!r}) refused the login of user "
                f"{s.username!r} to account set {s.acct_id!r}: LoginResultType={result!r}, "
                f"Message={answer.get('Message') if isinstance(answer, Mapping) else answer!r}. "
                f"Check login, password and extra.acct_id of connection {self.k3_conn_id!r}."
            )
        if not session.cookies.get(api.SESSION_COOKIE):
            raise K3CloudError(
                f"K3 Cloud at {self.base_url} ({self.k3_conn_id!r}) accepted the login but sent "
                f"no {api.SESSION_COOKIE} cookie; is host the K3 url (…/k3cloud/)?"
            )
        self.log.info("Logged in to K3 Cloud %s as %s", self.base_url, s.username)

    def save(
        self, model: Mapping[str, Any], need_return_fields: Sequence[str] = ()
    ) -> api.SaveResult:
        """Save one bill (a create without ``FID``, an update with it); refusals are returned."""
        body = api.save_body(self.settings.form_id, model, need_return_fields)
        return api.parse_save(self._call(api.SAVE_PATH, body))

    def execute_bill_query(
        self, field_keys: Sequence[str], filter_string: str, *, page_size: int = 2000
    ) -> list[list[Any]]:
        """All rows matching ``filter_string``, fetched page by page until a page is empty."""
        return [
            row for page in self._query_pages(field_keys, filter_string, page_size) for row in page
        ]

    def find_bills(self, bill_numbers: Iterable[str]) -> list[tuple[int, str]]:
        """``(FID, FBillNo)`` of every bill K3 holds under these numbers, in FID order.

        One filtered query (paged); K3 decides what matches (its collation, see
        ``sublessor_billing.k3.lookup``). The caller bounds how many numbers go into
        one query. Any answer that is not rows of ``[FID, FBillNo]`` in FID order
        raises ``K3CloudError``: a look-up that cannot be read never passes for "no bill".
        """
        numbers = list(dict.fromkeys(bill_numbers))
        if not numbers:
            return []
        bills: list[tuple[int, str]] = []
        pages = self._query_pages(["FID", "FBillNo"], api.bill_number_filter(numbers), 2000)
        for page in pages:
            try:
                rows = api.parse_bill_rows(page)
            except ValueError as exc:
                raise self._unusable_query(f"{exc} ({api.extract(page)})") from None
            for fid, number in rows:
                last_fid = bills[-1][0] if bills else 0
                if fid <= last_fid:  # StartRow or OrderString ignored: paging would never end
                    raise self._unusable_query(f"FID {fid} after FID {last_fid}, not in FID order")
                bills.append((fid, number))
        return bills

    def _query_pages(
        self, field_keys: Sequence[str], filter_string: str, page_size: int
    ) -> Iterator[list[list[Any]]]:
        """Pages of rows, each checked before the next is asked for, until K3 returns none.

        A short page is not the end: a K3 server may return fewer rows per call
        than ``Limit`` asks (its own cap), and stopping there would hide bills.
        """
        start_row = 0
        while True:
            body = api.query_body(
                self.settings.form_id,
                field_keys,
                filter_string,
                start_row=start_row,
                limit=page_size,
            )
            try:
                page = api.parse_query_rows(self._call(api.QUERY_PATH, body), len(field_keys))
            except api.QueryRejected as exc:
                raise self._unusable_query(str(exc), K3QueryRejected) from None
            except ValueError as exc:
                raise self._unusable_query(str(exc)) from None
            if not page:
                return
            yield page
            start_row += len(page)

    def _unusable_query(
        self, detail: str, error: type[K3CloudError] = K3CloudError
    ) -> K3CloudError:
        return error(
            f"{self._where} answered ExecuteBillQuery with {detail}. The look-up is unusable, so "
            f"nothing was created; check K3 and extra.form_id of {self.k3_conn_id!r}. "
            "The next run looks the bills up again."
        )

    @property
    def _where(self) -> str:
        return f"K3 Cloud connection {self.k3_conn_id!r} at {self.base_url}"

    def _call(self, path: str, body: Mapping[str, Any]) -> Any:
        self.get_conn()
        answer = self._post(path, body)
        if api.is_session_expired(answer):
            self.log.info("K3 Cloud session expired; logging in again")
            self.login()
            answer = self._post(path, body)
            if api.is_session_expired(answer):
                raise K3CloudError(
                    f"K3 Cloud at {self.base_url} ({self.k3_conn_id!r}) reports the session "
                    "expired right after a fresh login; check the K3 server's session settings."
                )
        return answer

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        where = self._where
        session = self._session
        request = requests.Request("POST", self.url_from_endpoint(path), json=body)
        try:
            # The provider's send: the connection's verify / cert / proxies win over the
            # environment's (a bare session.post would let REQUESTS_CA_BUNDLE replace verify).
            response = self.run_and_check(
                session,
                session.prepare_request(request),
                {"timeout": self.timeout, "check_response": False},
            )
        except requests.RequestException as exc:
            raise K3CloudError(
                f"{where} did not answer {_operation(path)}: {type(exc).__name__}: {exc}. "
                "Is K3 up and the host right? A Save's outcome is unknown; the next run checks it."
            ) from None
        if response.status_code >= 400:
            raise K3CloudError(
                f"{where} answered HTTP {response.status_code} to {_operation(path)}: "
                f"{response.text[:300]!r}. A Save's outcome is unknown; the next run checks it."
            )
        try:
            return response.json()
        except ValueError:
            raise K3CloudError(
                f"{where} answered non-JSON to {_operation(path)}: {response.text[:300]!r}"
            ) from None
