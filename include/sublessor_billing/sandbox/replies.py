"""Answers of the sandbox faults that shape the reply: dripped, compressed, redirected, other statuses."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any


async def drip(request: Any, status: int, payload: dict[str, Any], seconds: float) -> Any:
    """Write the JSON answer one byte every ``seconds`` (until the client gives up)."""
    from aiohttp import web

    data = json.dumps(payload).encode()
    reply = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    reply.content_length = len(data)
    await reply.prepare(request)
    try:
        for i in range(len(data)):
            await reply.write(data[i : i + 1])
            await asyncio.sleep(seconds)
        await reply.write_eof()
    except ConnectionError:  # the client stopped waiting
        pass
    return reply


def accepts_gzip(request: Any) -> bool:
    """True when the request's Accept-Encoding allows gzip (as a compressing proxy reads it)."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*") and params.replace(" ", "") not in (
            "q=0",
            "q=0.0",
        ):
            return True
    return False


def proxy_reply(fault: Any, kind: str, request: Any, answer: tuple[int, dict] | None) -> Any:
    """The reply of a ``status_*``, ``redirect_before`` or ``gzip*_after`` fault; None: unchanged."""
    from aiohttp import web

    if kind == "status":
        return web.json_response(fault.body, status=fault.status or 400)
    if kind == "redirect":
        location = fault.location or "/moved"
        return web.Response(status=fault.status or 302, headers={"Location": location})
    if answer is None or (kind == "gzip" and not accepts_gzip(request)):
        return None
    status, payload = answer
    return web.Response(
        body=gzip.compress(json.dumps(payload).encode()),
        status=status,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
