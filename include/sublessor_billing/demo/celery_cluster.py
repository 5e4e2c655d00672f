"""An Airflow deployment on CeleryExecutor on this machine, for tests and benchmarks.

Scheduler, api-server, dag-processor, triggerer and N ``airflow celery worker``
processes on a temporary AIRFLOW_HOME, the local RabbitMQ as the broker:

    with CeleryCluster(REPO, env={"AIRFLOW_CONN_USER_PROP_DB": ...}) as cluster:
        cluster.start(n_workers=2)
        cluster.unpause("call400_billing")
        cluster.kill_worker(0)  # SIGKILL: the worker and every process under it
        cluster.task_instances("call400_billing", state="running")  # REST API, as everywhere

Runs and task instances are read through the REST API (``RestApi``: every user
is an admin, no login), never the metadata tables. The metadata database is SQLite in the home (WAL): in Airflow 3 workers never
touch it (they talk to the api-server's Execution API), so it serves one machine;
the Celery result backend is a second SQLite file there. The Celery queue (and
its exchange) has a unique name, workers skip mingle and gossip, so clusters of
parallel runs on the same broker never take each other's tasks; ``stop()`` deletes
the queue. Needs ``make install-celery``. ``executor="LocalExecutor"`` with no
workers starts the same deployment on the default executor, for comparisons.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from sublessor_billing.demo.airflow_cli import AIRFLOW, migrate_metadata, run_airflow
from sublessor_billing.demo.airflow_server import SIMPLE_AUTH_MANAGER, RestApi
from sublessor_billing.demo.ports import PortTaken, api_server_env, free_port, port_taken
from sublessor_billing.demo.worker_name import HOSTNAME_CALLABLE, WORKER_ENV

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

# Short enough that a killed worker's task is retried within a test; the supervisor
# kills a task after 3 failed heartbeats 5 s apart ([workers]), well before these.
FAST_RECOVERY = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
}


def amqp_url_for_celery(url: str) -> str:
    """Celery spells the default vhost ``//``, pika ``/%2F``."""
    return url.replace("/%2F", "//")


class CeleryCluster(RestApi):
    """Start, observe and break a CeleryExecutor deployment; ``stop()`` removes every trace."""

    def __init__(
        self,
        repo: Path,
        *,
        env: dict[str, str] | None = None,
        worker_concurrency: int = 4,
        executor: str = "CeleryExecutor",
        fast_recovery: bool = True,
        keep_home: bool = False,
    ) -> None:
        self.repo = Path(repo)
        self.tag = secrets.token_hex(4)
        self.queue = f"airflow_celery_{self.tag}"
        self.home = Path(tempfile.mkdtemp(prefix="billing-celery-airflow-"))
        self.last_headers: dict[str, str] = {}
        self.keep_home = keep_home
        self.worker_concurrency = worker_concurrency
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.repo / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.repo / "plugins"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CELERY__BROKER_URL": amqp_url_for_celery(AMQP_URL),
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+sqlite:///{self.home}/celery-results.db",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "PYTHONPATH": os.pathsep.join(
                [str(self.repo / "include"), str(self.repo / "plugins"), str(self.repo)]
            ),
            **(FAST_RECOVERY if fast_recovery else {}),
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen | None] = []
        self._use_port(free_port())

    def _use_port(self, port: int) -> None:
        self.port, self.base_url = port, f"http://127.0.0.1:{port}"
        self.env.update(api_server_env(port))

    def __enter__(self) -> CeleryCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle ------------------------------------------------------------------------
    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run one ``airflow`` command against this cluster's home."""
        return run_airflow(self.env, *args, timeout=timeout)

    def start(
        self, n_workers: int = 2, *, timeout: float = 300, attempts: int = 3
    ) -> CeleryCluster:
        """Migrate the metadata database, start every component and wait until all are up;
        everything again on a fresh port when the api-server's was taken (``PortTaken``)."""
        migrate_metadata(self.env)
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(n_workers, timeout)
            except PortTaken:
                self._stop_processes()
                self.workers = []
                if attempt == attempts:
                    raise
                self._use_port(free_port())
        raise AssertionError("unreachable")

    def _start_once(self, n_workers: int, timeout: float) -> CeleryCluster:
        self._spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port))
        self._spawn("scheduler", "scheduler")
        self._spawn("dag-processor", "dag-processor")
        self._spawn("triggerer", "triggerer", "--skip-serve-logs")
        for _ in range(n_workers):
            self.add_worker()
        deadline = time.monotonic() + timeout
        self._wait(self._healthy, deadline, "scheduler, dag-processor and triggerer healthy")
        for i in range(n_workers):
            self._wait(lambda i=i: self._worker_ready(i), deadline, f"worker {i} ready")
        return self

    def add_worker(self) -> int:
        """Start one more ``airflow celery worker`` on the cluster's queue; its index."""
        i = len(self.workers)
        args = ["celery", "worker", "--celery-hostname", f"w{i}-{self.tag}@%h",
                "--queues", self.queue, "--concurrency", str(self.worker_concurrency),
                "--pid", str(self.home / f"worker-{i}.pid"),
                "--skip-serve-logs", "--without-mingle", "--without-gossip"]  # fmt: skip
        # its tries report "w<i>-<tag>@<host>" as their hostname (demo/worker_name.py)
        named = {
            WORKER_ENV: f"w{i}-{self.tag}",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        }
        self.workers.append(self._spawn(f"worker-{i}", *args, env=named))
        return i

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` and every process under it (its tasks run in their own groups)."""
        proc = self.workers[i]
        if proc is None:
            return
        members = _tree(proc.pid)
        _signal(members, signal.SIGKILL)
        proc.wait(timeout=30)
        if alive := _wait_gone(members, 30):
            raise RuntimeError(f"worker {i}: processes {alive} survived SIGKILL")
        self.workers[i] = None

    def worker_of(self, pid: int) -> int | None:
        """The index of the live worker whose process tree holds ``pid``."""
        for i, proc in enumerate(self.workers):
            if proc is not None and pid in {p.pid for p in _tree(proc.pid)}:
                return i
        return None

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), delete the queue, remove the home."""
        self._stop_processes()
        self._delete_queue()
        if not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def _stop_processes(self) -> None:
        procs = [p for p in self.workers if p is not None] + list(self.processes.values())
        members = [member for proc in procs for member in _tree(proc.pid)]
        _signal(members, signal.SIGTERM)
        _wait_gone(members, 20)
        _signal(members, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=30)
        self.processes.clear()
        self.workers = [None] * len(self.workers)

    # -- observing ------------------------------------------------------------------------
    def log(self, name: str, chars: int = 4000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def logs(self, chars: int = 1500) -> str:
        """The tail of every component's log, for an assertion message."""
        names = [*COMPONENTS, *(f"worker-{i}" for i in range(len(self.workers)))]
        return "\n".join(f"--- {n}\n{self.log(n, chars)}" for n in names)

    # -- internals ------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 (kept open for the child)
        proc = subprocess.Popen(
            [str(AIRFLOW), *args], env={**self.env, **(env or {})}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        if not name.startswith("worker-"):
            self.processes[name] = proc
        return proc

    def _healthy(self) -> bool:
        try:
            status, health = self.request("GET", "/api/v2/monitor/health", timeout=10)
        except OSError:
            return False
        parts = ("scheduler", "triggerer", "dag_processor")
        return status == 200 and all(
            (health.get(p) or {}).get("status") == "healthy" for p in parts
        )

    def _worker_ready(self, i: int) -> bool:
        return " ready." in self.log(f"worker-{i}", chars=10**7)  # Celery's "<name> ready."

    def _wait(self, ready, deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    if port_taken(self.log(name)):
                        raise PortTaken(f"{name} could not bind port {self.port}")
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.log(name)}")
            if ready():
                return
            time.sleep(0.5)  # the next look at the processes and the state awaited
        raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")

    def _delete_queue(self) -> None:
        import pika

        try:
            conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        except pika.exceptions.AMQPError:
            return
        try:
            channel = conn.channel()
            channel.queue_delete(self.queue)
            channel.exchange_delete(self.queue)
        finally:
            conn.close()


def _tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal(members: list[psutil.Process], sig: int) -> None:
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(sig)  # psutil checks it is still the same process


def _wait_gone(members: list[psutil.Process], timeout: float) -> list[int]:
    """Wait until none of ``members`` runs any more; the pids still running at the timeout."""
    deadline = time.monotonic() + timeout
    while (alive := [m.pid for m in members if _alive(m)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _alive(proc: psutil.Process) -> bool:
    """Still running (a killed process waiting to be reaped is not)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
