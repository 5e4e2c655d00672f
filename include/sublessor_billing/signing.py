"""Request signing shared by the payment center and the listing service (payment-api.md).

``sign`` is the lowercase hex HMAC-SHA256, keyed with the app key, of the
canonical string: every other field sorted by name, ``name=value`` joined
with ``&``, each value as its JSON scalar text without quotes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SIGN_FIELD = "sign"


def scalar_text(value: Any) -> str:
    """Render one value the way the canonical string wants it (JSON scalar, no quotes)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:  # not bool: type(True) is bool
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    raise TypeError(f"Cannot sign a field of type {type(value).__name__}: only JSON scalars")


def canonical_string(body: Mapping[str, Any]) -> str:
    """Every field except ``sign``, sorted by name, as ``name=value`` joined with ``&``."""
    return "&".join(
        [f"{name}={scalar_text(body[name])}" for name in sorted(body) if name != SIGN_FIELD]
    )


def compute_sign(body: Mapping[str, Any], key: str) -> str:
    return hmac.new(
        key.encode("utf-8"), canonical_string(body).encode("utf-8"), hashlib.sha256
    ).hexdigest()


class Signer:
    """Sign request bodies for one app id / key; the keyed HMAC state is built once and copied."""

    __slots__ = ("_mac", "app_id")

    def __init__(self, app_id: str, key: str) -> None:
        self.app_id = app_id
        self._mac = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)

    def __repr__(self) -> str:  # never the key
        return f"Signer(app_id={self.app_id!r})"

    def sign(self, body: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
        """Return a copy of ``body`` with ``app_id``, ``timestamp`` (unix seconds) and ``sign``."""
        signed = {k: v for k, v in body.items() if k != SIGN_FIELD}
        signed["app_id"] = self.app_id
        signed["timestamp"] = int(time.time() if now is None else now)
        mac = self._mac.copy()
        mac.update(canonical_string(signed).encode("utf-8"))
        signed[SIGN_FIELD] = mac.hexdigest()
        return signed


def sign_body(
    body: Mapping[str, Any], app_id: str, key: str, now: float | None = None
) -> dict[str, Any]:
    """Return a copy of ``body`` with ``app_id``, ``timestamp`` (unix seconds) and ``sign``."""
    return Signer(app_id, key).sign(body, now)


def verify(body: Mapping[str, Any], key: str) -> bool:
    """True when ``body['sign']`` matches its other fields under ``key`` (constant-time)."""
    sign = body.get(SIGN_FIELD)
    if not isinstance(sign, str):
        return False
    try:
        expected = compute_sign(body, key)
    except TypeError:
        return False
    return hmac.compare_digest(expected, sign.lower()) and sign == sign.lower()
