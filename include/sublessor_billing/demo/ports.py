"""Loopback ports for Airflow's servers, which take a port number instead of binding port 0.

``airflow api-server --port`` (and the log servers) must be told their port before
they start, and the environment of every component names it, so the port is
picked first (``free_port``) and may be taken by another process before the
server binds it. The harnesses then see ``PortTaken`` within seconds (the
server's log says so, or it exits saying so) and start again on fresh ports.
"""

from __future__ import annotations

import socket

# uvicorn: "[Errno 98] error while attempting to bind on address ...: address already in use"
# gunicorn: "Connection in use: ('127.0.0.1', 8080)"
IN_USE_MARKERS = ("address already in use", "connection in use")


class PortTaken(RuntimeError):
    """A server could not bind its port: another process took it after it was picked."""


def free_port() -> int:
    """A loopback port nobody listens on now (the OS's pick); bind it soon, or retry on PortTaken."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken(log_text: str) -> bool:
    """Whether a server's log says its bind failed because the port is in use."""
    text = log_text.lower()
    return any(marker in text for marker in IN_USE_MARKERS)


def api_server_env(port: int) -> dict[str, str]:
    """The settings that name the api-server's port: its own, its URL, the Execution API's URL."""
    base_url = f"http://127.0.0.1:{port}"
    return {
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
    }
