"""Run the sandbox services on fixed loopback ports: ``python -m sublessor_billing.sandbox``.

Every server in ``SERVERS`` is started; adding one is one more ``SandboxSpec`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sublessor_billing.config import K3_CLOUD, LISTING_API, PAYMENT_API
from sublessor_billing.sandbox.k3_cloud import DEFAULT_ACCT_ID, K3CloudSandbox
from sublessor_billing.sandbox.listing_service import ListingService
from sublessor_billing.sandbox.payment_center import PaymentCenter
from sublessor_billing.sandbox.server import SandboxServer

SANDBOX_APP_ID = "sublessor"
PAYMENT_KEY = "sandbox-payment-key"
LISTING_KEY = "sandbox-listing-key"
K3_USER = "api_user"
K3_PASSWORD = "api-secret"
K3_FORM_ID = "SUBL_Contract"


@dataclass(frozen=True)
class SandboxSpec:
    name: str
    conn_id: str
    port: int
    login: str
    password: str
    factory: Callable[[SandboxSpec], SandboxServer]
    path: str = ""
    extra: dict | None = None


SERVERS = [
    SandboxSpec("payment", PAYMENT_API, 18081, SANDBOX_APP_ID, PAYMENT_KEY,
                lambda s: PaymentCenter({s.login: s.password})),
    SandboxSpec("listing", LISTING_API, 18082, SANDBOX_APP_ID, LISTING_KEY,
                lambda s: ListingService({s.login: s.password})),
    SandboxSpec("k3", K3_CLOUD, 18083, K3_USER, K3_PASSWORD,
                lambda s: K3CloudSandbox(acct_id=DEFAULT_ACCT_ID, username=s.login,
                                         password=s.password, form_id=K3_FORM_ID),
                path=K3CloudSandbox.base_path,
                extra={"acct_id": DEFAULT_ACCT_ID, "lcid": 2052, "form_id": K3_FORM_ID}),
]  # fmt: skip


def airflow_conn(spec: SandboxSpec, port: int) -> dict:
    """The Airflow connection an operator defines to reach this sandbox."""
    conn = {"conn_type": "http", "host": f"http://127.0.0.1:{port}{spec.path}",
            "login": spec.login, "password": spec.password}  # fmt: skip
    if spec.extra:
        conn["extra"] = spec.extra
    return conn


def airflow_conn_json(spec: SandboxSpec, port: int) -> str:
    return json.dumps(airflow_conn(spec, port), ensure_ascii=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", help="start only these servers (by name)")
    parser.add_argument("--port-offset", type=int, default=0, help="added to every default port")
    parser.add_argument("--free-ports", action="store_true", help="listen on free ports instead")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="answer delay of every request"
    )
    parser.add_argument("--account", action="append", default=[], metavar="USER:FEN[:frozen]")
    parser.add_argument("--listings", action="append", default=[], metavar="USER:COUNT")
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):  # a faster loop when installed (it is, in the lock)
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    started = []
    for spec in SERVERS:
        if args.only and spec.name not in args.only:
            continue
        server = spec.factory(spec)
        server.configure(latency_ms=args.latency_ms)
        if isinstance(server, PaymentCenter):
            for item in args.account:
                user, fen, *flag = item.split(":")
                server.set_account(int(user), int(fen), frozen=flag == ["frozen"])
        if isinstance(server, ListingService):
            for item in args.listings:
                user, count = item.split(":")
                server.set_listings(int(user), int(count))
        server.start(0 if args.free_ports else spec.port + args.port_offset)
        started.append(server)
        print(f"{spec.name:8s} {server.url}  app id {spec.login!r}  key {spec.password!r}")
        print(
            f"  export AIRFLOW_CONN_{spec.conn_id.upper()}='{airflow_conn_json(spec, server.port)}'"
        )
    print(
        "Faults / state: POST {url}/_sandbox/faults, GET {url}/_sandbox/state. Ctrl-C stops.",
        flush=True,
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    for server in started:
        server.stop()


if __name__ == "__main__":
    main()
