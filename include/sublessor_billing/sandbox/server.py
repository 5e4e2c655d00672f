"""Base for the loopback sandbox servers: JSON over HTTP/1.1, fault injection, in-process control.

Subclass ``SandboxServer``, set ``name`` and implement ``handle(path, body)``
(synchronous, called under ``self.lock``, returns ``(http_status, json_dict)``)
plus ``state()`` and optionally ``setup(body)``. The base runs an aiohttp
server on 127.0.0.1 in a background thread (keep-alive, many concurrent
requests, latency with ``asyncio.sleep``) and wraps every request with the
configured faults::

    server = PaymentCenter(apps={"app": "key"}).start()   # port=0: a free port
    server.url                      # "http://127.0.0.1:<port>" ("https" with start(tls=...))
    server.add_fault(Fault("error_after", path="/trade/charge", nth=[2]))
    server.configure(latency_ms=20)
    server.stop()

The same control exists over HTTP (for a server in another process):
``POST /_sandbox/faults`` (one fault or ``{"faults": [...]}``), ``DELETE
/_sandbox/faults``, ``POST /_sandbox/config`` (``{"latency_ms": 20}``),
``POST /_sandbox/setup`` (subclass data, e.g. accounts), ``GET /_sandbox/state``.

Fault actions: ``delay_before`` / ``delay_after`` (sleep ``seconds`` before
or after the request is processed: "after" means the state already changed),
``error_before`` / ``error_after`` (HTTP 500), ``garbage_before`` /
``garbage_after`` (HTTP 200 with a non-JSON body), ``drop_before`` /
``drop_after`` (connection closed without an answer), ``drip_after`` (the state
changed, then the answer is written one byte every ``seconds``: a deadline per
socket read never fires, only a deadline on the whole answer); what a proxy in
front of the service may do (``sandbox.replies``): ``gzip_after`` /
``gzip_forced_after`` (the answer gzip-compressed when the request's
Accept-Encoding allows it / regardless), ``status_before`` / ``status_after``
(HTTP ``status`` with the JSON ``body``), ``redirect_before`` (HTTP ``status``,
default 302, to ``location``). A fault fires for
requests to ``path`` that match every field of ``match`` in the JSON body,
whose per-path request number is in ``nth`` (1-based) if given, with
``probability``, at most ``times`` times (None: unlimited).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from sublessor_billing.sandbox import replies

ACTIONS = {
    f"{k}_{w}" for k in ("delay", "error", "garbage", "drop", "status") for w in ("before", "after")
}
ACTIONS |= {"drip_after", "gzip_after", "gzip_forced_after", "redirect_before"}


@dataclass
class Fault:
    action: str
    path: str | None = None
    seconds: float = 0.0
    match: dict[str, Any] = field(default_factory=dict)
    nth: list[int] | None = None
    probability: float = 1.0
    times: int | None = None
    fired: int = 0
    status: int = 0  # status_* and redirect_before (0: 302 for a redirect)
    body: dict[str, Any] = field(default_factory=dict)  # status_*
    location: str = ""  # redirect_before

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"Unknown fault action {self.action!r}; one of {sorted(ACTIONS)}")

    def applies(self, path: str, number: int, body: dict[str, Any], rng: random.Random) -> bool:
        if self.path is not None and self.path != path:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.nth is not None and number not in self.nth:
            return False
        if any(body.get(k) != v for k, v in self.match.items()):
            return False
        return self.probability >= 1.0 or rng.random() < self.probability


class _Drop(Exception):
    pass


class SandboxServer:
    """A JSON-over-HTTP fake of an external service, with faults; see the module docstring."""

    name = "sandbox"

    def __init__(self, *, seed: int = 0) -> None:
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.latency_ms = 0.0
        self.request_counts: dict[str, int] = {}
        self.in_flight = 0
        self._rng = random.Random(seed)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self.port: int | None = None
        self.tls: Any = None  # an ssl.SSLContext: serve HTTPS

    # -- to implement ---------------------------------------------------------------
    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {}

    def setup(self, body: dict[str, Any]) -> None:
        raise ValueError(f"{self.name} has no setup")

    # -- control (in-process) -------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} sandbox is not started")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def add_fault(self, fault: Fault | dict[str, Any]) -> Fault:
        fault = fault if isinstance(fault, Fault) else Fault(**fault)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def configure(self, *, latency_ms: float | None = None) -> None:
        if latency_ms is not None:
            self.latency_ms = float(latency_ms)

    def full_state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "name": self.name,
                "latency_ms": self.latency_ms,
                "request_counts": dict(self.request_counts),
                "in_flight": self.in_flight,
                "faults": [asdict(f) for f in self.faults],
                **self.state(),
            }

    # -- lifecycle --------------------------------------------------------------------
    def start(self, port: int = 0, *, tls: Any = None) -> SandboxServer:
        """Serve on 127.0.0.1:``port`` (0: a free port; HTTPS with ``tls``) in a thread; return self."""
        self.tls = tls
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve(port))
            except BaseException as exc:  # reported to the caller of start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"{self.name}-sandbox", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise RuntimeError(
                f"{self.name} sandbox could not listen on 127.0.0.1:{port}: {errors[0]}"
            )
        return self

    def stop(self) -> None:
        """Stop serving; requests still held by a fault are cancelled."""
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread:
                self._thread.join(10)
            self._loop = None

    async def _shutdown(self) -> None:
        await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def __enter__(self) -> SandboxServer:
        return self if self.port is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, port: int) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024, ssl_context=self.tls)
        await site.start()
        self.port = self._runner.addresses[0][1]

    # -- request path -------------------------------------------------------------------
    async def _dispatch(self, request: Any) -> Any:
        from aiohttp import web

        path = request.path
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as exc:
            return web.json_response({"code": 400, "message": f"bad JSON: {exc}"}, status=400)
        if path.startswith("/_sandbox/"):
            return self._control(request.method, path, body)
        with self.lock:
            number = self.request_counts[path] = self.request_counts.get(path, 0) + 1
            fired = [f for f in self.faults if f.applies(path, number, body, self._rng)]
            for fault in fired:
                fault.fired += 1
            self.in_flight += 1
        try:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            reply = await self._apply(fired, "before", request)
            if reply is not None:
                return reply
            with self.lock:
                status, payload = self.handle(path, body)
            reply = await self._apply(fired, "after", request, (status, payload))
            return reply if reply is not None else web.json_response(payload, status=status)
        except _Drop:
            request.transport.close()
            return web.Response(status=500)  # never reaches the client: the socket is closed
        finally:
            with self.lock:
                self.in_flight -= 1

    async def _apply(
        self, fired: list[Fault], when: str, request: Any, answer: tuple[int, dict] | None = None
    ) -> Any:
        from aiohttp import web

        for fault in fired:
            kind, fault_when = fault.action.rsplit("_", 1)
            if fault_when != when:
                continue
            if kind == "delay":
                await asyncio.sleep(fault.seconds)
            elif kind == "error":
                return web.json_response({"code": 500, "message": "injected error"}, status=500)
            elif kind == "garbage":
                return web.Response(text="<html>502 proxy garbage", content_type="text/html")
            elif kind == "drop":
                raise _Drop()
            elif kind == "drip" and answer is not None:
                return await replies.drip(request, *answer, fault.seconds)
            elif kind in ("status", "redirect") or (kind.startswith("gzip") and answer is not None):
                return replies.proxy_reply(fault, kind, request, answer)
        return None

    def _control(self, method: str, path: str, body: dict[str, Any]) -> Any:
        from aiohttp import web

        try:
            if path == "/_sandbox/faults" and method == "POST":
                for spec in body.get("faults", [body]):
                    self.add_fault(spec)
            elif path == "/_sandbox/faults" and method == "DELETE":
                self.clear_faults()
            elif path == "/_sandbox/config" and method == "POST":
                self.configure(**body)
            elif path == "/_sandbox/setup" and method == "POST":
                with self.lock:
                    self.setup(body)
            elif path != "/_sandbox/state":
                return web.json_response(
                    {"code": 404, "message": f"no {method} {path}"}, status=404
                )
        except (TypeError, ValueError) as exc:
            return web.json_response({"code": 400, "message": str(exc)}, status=400)
        return web.json_response(self.full_state())
