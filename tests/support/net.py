"""Sockets of the tests: a listener that counts who connects (servers bind port 0 themselves)."""

from __future__ import annotations

import socket
import threading


class ConnectionCounter:
    """Listen on 127.0.0.1 (a port the OS picks) and count the TCP connections made to it.

    Whoever connects (a MySQL client, pika, an HTTP client) is accepted and hung up
    on at once: an instrument for "nothing connects", not a server.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._count = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            with self._lock:
                self._count += 1
            conn.close()

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


class RefusingPort:
    """A loopback port that refuses every connection, held for as long as the block runs.

    The socket is bound but never listens: a connection gets "connection refused",
    and no other process can take the port meanwhile (unlike binding a free port,
    closing it and hoping nobody takes it before it is used).
    """

    def __enter__(self) -> int:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return self._sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
