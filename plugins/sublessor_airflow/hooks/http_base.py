"""The foundation of the project's HTTP hooks: the http provider's ``HttpHook``, used as intended.

The provider builds the ``requests.Session`` from the connection (``get_conn``):
the base URL from ``host`` (with its scheme) and ``port``, and the extras
``verify`` / ``verify_ssl`` (true, false, or a CA bundle path), ``cert`` (a client
certificate: one PEM path, or ``[cert, key]``), ``proxies`` (``{"https":
"http://proxy:3128"}``), ``trust_env`` and ``max_redirects``; every other extra
is sent as a request header; ``adapter`` and the TCP keep-alive settings are
constructor arguments. On top of it, ``BillingHttpHook``:

- reads ``verify`` written as text (``"false"``, ``"no"``, ``"0"``) as false, the
  way people type it in the UI (requests would take it for a CA bundle path), and
  refuses a CA bundle or client certificate path that does not exist, naming the
  connection;
- never sends the extras a hook reads itself (``own_extras``) as headers;
- never turns the login into basic auth: each hook passes the ``auth_type`` its
  contract asks for (a signed body; credentials in a login request).

See docs/architecture.md ("Connections of the HTTP hooks").
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

if TYPE_CHECKING:
    from requests import PreparedRequest, Session

_FALSE = {"false", "0", "no", "off"}
_TRUE = {"true", "1", "yes", "on", ""}


class NoHttpAuth(AuthBase):
    """Send no ``Authorization`` header: the login travels the way the service's contract says."""

    def __init__(self, *_credentials: Any) -> None:
        """Take (and drop) the login and password the provider offers."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        return request


def tls_verify(value: Any, conn_id: str) -> bool | str:
    """``verify`` as requests wants it: True, False, or the path of an existing CA bundle."""
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    if not os.path.exists(text):
        raise ValueError(
            f"Airflow connection {conn_id!r}: extra 'verify' = {text!r} is neither true/false nor "
            "a readable CA bundle (file or directory); fix the connection's extra."
        )
    return text


def client_cert(value: Any, conn_id: str) -> str | tuple[str, str] | None:
    """``cert`` as requests wants it (one PEM path, or cert and key paths), each path checked."""
    if not value:
        return None
    paths = [value] if isinstance(value, str) else [str(part) for part in value]
    if len(paths) > 2 or not all(os.path.isfile(path) for path in paths):
        raise ValueError(
            f"Airflow connection {conn_id!r}: extra 'cert' = {value!r} is not one PEM file or "
            "[certificate, key] files that exist; fix the connection's extra."
        )
    return paths[0] if len(paths) == 1 else (paths[0], paths[1])


class BillingHttpHook(HttpHook):
    """``HttpHook`` whose session keeps TLS, proxies and headers from the connection (see module)."""

    own_extras: ClassVar[frozenset[str]] = frozenset()  # read by the hook: never sent as headers

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> Session:
        """A ``requests.Session`` configured by the provider from the connection (see module)."""
        session = super().get_conn(headers, extra_options)
        session.verify = tls_verify(session.verify, self.http_conn_id)
        session.cert = client_cert(session.cert, self.http_conn_id)
        for key in self.own_extras:
            session.headers.pop(key, None)
        return session
