"""Sandbox listing service: ``/listing/offline_all`` as listing-api.md says, idempotent by request_id.

``user_id`` must be a JSON integer and ``request_id`` / ``reason`` JSON strings (1000 otherwise).
"""

from __future__ import annotations

from typing import Any

from sublessor_billing.sandbox.payment_center import json_int
from sublessor_billing.sandbox.server import SandboxServer
from sublessor_billing.signing import verify


class ListingService(SandboxServer):
    name = "listing"

    def __init__(self, apps: dict[str, str], *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.apps = dict(apps)
        self.online: dict[int, int] = {}  # user_id -> listings online
        self.requests: dict[str, dict[str, Any]] = {}  # request_id -> first answer
        self.offline_calls: dict[int, int] = {}  # user_id -> requests that took effect
        self.received: dict[str, int] = {}  # request_id -> valid requests that reached the service

    def set_listings(self, user_id: int, count: int) -> None:
        with self.lock:
            self.online[int(user_id)] = int(count)

    def setup(self, body: dict[str, Any]) -> None:
        """``{"listings": {"<user_id>": 3}, "reset": true}``."""
        if body.get("reset"):
            self.online.clear()
            self.requests.clear()
            self.offline_calls.clear()
            self.received.clear()
        for user_id, count in body.get("listings", {}).items():
            self.online[int(user_id)] = int(count)

    def state(self) -> dict[str, Any]:
        return {
            "requests": len(self.requests),
            "offline_calls": {str(k): v for k, v in self.offline_calls.items()},
            "online": {str(k): v for k, v in self.online.items()},
        }

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = self.apps.get(str(body.get("app_id")))
        if key is None or not verify(body, key):
            return 200, {"code": 1003, "message": "bad signature"}
        if path != "/listing/offline_all":
            return 404, {"code": 404, "message": f"no such endpoint {path}"}
        try:
            user_id = json_int(body, "user_id")
            request_id, reason = body["request_id"], body["reason"]
            if not isinstance(request_id, str) or not isinstance(reason, str):
                raise TypeError("request_id and reason must be JSON strings")
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"code": 1000, "message": f"bad request: {exc!r}"}
        self.received[request_id] = self.received.get(request_id, 0) + 1
        if request_id in self.requests:
            return 200, self.requests[request_id]
        offlined = self.online.get(user_id, 0)
        self.online[user_id] = 0
        self.offline_calls[user_id] = self.offline_calls.get(user_id, 0) + 1
        answer = {"code": 0, "offlined": offlined}
        self.requests[request_id] = answer
        return 200, answer
