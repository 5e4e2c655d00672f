"""A real HTTP client of ours that raises an unexpected error for one sublessor's requests."""

from __future__ import annotations

from typing import Any


class RaisingFor:
    """Wraps the real client; ``method`` (``charge``, ``offline_all``) raises ``error`` for
    ``sublessor_id`` and counts it, every other request goes through unchanged."""

    def __init__(self, client: Any, sublessor_id: int, method: str, error: Exception) -> None:
        self.client, self.sublessor_id = client, sublessor_id
        self.method, self.error = method, error
        self.timeout_ms = getattr(client, "timeout_ms", None)
        self.calls = 0

    def describe(self, endpoint: str = "") -> str:
        return self.client.describe(endpoint)

    async def __aenter__(self) -> RaisingFor:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        if name != self.method:
            return real

        async def raising(**fields: Any) -> Any:
            if fields["user_id"] == self.sublessor_id:
                self.calls += 1
                raise self.error
            return await real(**fields)

        return raising
