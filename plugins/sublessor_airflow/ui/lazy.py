"""An ASGI app that imports the real one on its first request.

Every Airflow process that loads plugins (task runners too, for macros) imports
the plugin file; the Billing app pulls in the API server's security stack,
seconds of imports that only the api-server needs (where they are loaded already).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


class LazyAsgiApp:
    def __init__(self, target: str) -> None:
        self.target = target  # "package.module:attribute"
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            module, _, attribute = self.target.partition(":")
            self._app = getattr(import_module(module), attribute)
        await self._app(scope, receive, send)
