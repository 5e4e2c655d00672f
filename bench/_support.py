"""What several benchmarks share: services, the sandbox process, messages, machine figures.

Imported by the scripts of this folder (``python bench/<script>.py`` puts the
folder on ``sys.path``); not a benchmark itself (``make bench`` runs ``bench_*.py``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from sublessor_billing.db.connect import MySqlTarget

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MYSQL = MySqlTarget(
    host=os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    port=int(os.environ.get("TEST_MYSQL_PORT", "3306")),
    user=os.environ.get("TEST_MYSQL_USER", "root"),
    password=os.environ.get("TEST_MYSQL_PASSWORD", ""),
)


# -- the machine ---------------------------------------------------------------------------
def load() -> str:
    """The load average, printed with every figure: the development machine is shared."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_named(*names: str) -> dict[str, int]:
    """``{name: pid}`` of running processes with one of these command names (first found)."""
    found: dict[str, int] = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the process ended meanwhile
            continue
        if name in names and name not in found:
            found[name] = int(comm.parent.name)
    return found


def peak_rss_mib(pid: int | None = None) -> float:
    """Peak resident memory of this process, or of ``pid`` (VmHWM), in MiB."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the sandbox payment center in its own process ----------------------------------------
def control(url: str, path: str, body: dict | None = None) -> dict:
    """Call a sandbox's control endpoint (``/_sandbox/setup``, ``/_sandbox/state``, ...)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def start_sandbox(latency_ms: float) -> tuple[subprocess.Popen, str]:
    """Start the payment center sandbox in its own process (so it gets its own core); its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sublessor_billing.sandbox", "--only", "payment", "--free-ports",
         "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    return proc, line.split()[1]


# -- 400 call messages ------------------------------------------------------------------
def call_body(
    call_id: str,
    sublessor_id: int,
    caller: str,
    *,
    status: int,
    start: datetime,
    duration: int,
    prop_id: int = 0,
    call_type: str = "normal",
) -> bytes:
    """One message body as the 400 platform publishes it (contracts/call400-message.md)."""
    return json.dumps(
        {
            "call_id": call_id,
            "sublessor_id": sublessor_id,
            "prop_id": prop_id,
            "caller": caller,
            "called": "4008123456",
            "ext": "",
            "status": status,
            "start_time": start.strftime("%Y-%m-%d %H:%M:%S"),
            "duration": duration,
            "call_type": call_type,
        }
    ).encode()


def publish(channel, exchange: str, key: str, bodies: Iterable[bytes]) -> None:
    for body in bodies:
        channel.basic_publish(exchange, key, body)


def wait_queued(channel, queue: str, count: int) -> None:
    """Wait until the broker holds ``count`` messages in ``queue`` (publishing is asynchronous)."""
    while channel.queue_declare(queue, passive=True).method.message_count < count:
        time.sleep(0.2)


def one_by_one(channel, queue: str, limit: int, handle: Callable[[bytes, str | None], None]) -> int:
    """The per-message consumer: get one, ``handle(body, routing_key)``, ack one; how many."""
    done = 0
    while done < limit:
        method, _props, body = channel.basic_get(queue)
        if method is None:
            break
        handle(body, method.routing_key)
        channel.basic_ack(method.delivery_tag)
        done += 1
    return done


# -- the database -----------------------------------------------------------------------
def settle(conn, *, below: int = 1000, limit_s: float = 60.0) -> None:
    """Let InnoDB purge the batched phase's old row versions before the naive one runs.

    Otherwise the naive consumer shares the server with that purge and looks slower.
    """
    t = time.perf_counter()
    with conn.cursor() as cur:
        while True:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")
            row = cur.fetchone()
            if row is None or int(row[1]) < below or time.perf_counter() - t > limit_s:
                break
            time.sleep(0.5)
    conn.commit()
    print(f"purge backlog {row[1] if row else '?'} after waiting {time.perf_counter() - t:.1f}s")
