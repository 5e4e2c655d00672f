"""A real HTTP webhook receiver on loopback that keeps what it is sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """``with WebhookReceiver() as hook:`` ... ``hook.url``, ``hook.received``, ``hook.status = 500``.

    ``hook.answers = [503, 503]`` answers the next posts so, then ``status`` again;
    ``hook.posts`` counts every post, answered or refused.
    """

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.status = 200
        self.answers: list[int] = []
        self.posts = 0
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    receiver.posts += 1
                    status = receiver.answers.pop(0) if receiver.answers else receiver.status
                    if status == 200:
                        receiver.received.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/billing"

    def connection(self, **headers: str) -> dict:
        """The Airflow connection (type http) that posts to this receiver."""
        return {"conn_type": "http", "host": self.url, "extra": {**headers, "timeout": 5}}

    def alerts(self) -> list[tuple[str, str]]:
        return [(a["alert"], a["state"]) for a in self.received]

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
