"""Start real Airflow on the project (temporary AIRFLOW_HOME, free ports) for tests and benchmarks.

Two ways, sharing the environment, the REST client and the stop:

- ``AirflowApiServer``: ``airflow api-server`` alone (UI, public REST API, the
  simple auth manager's login, our plugin's /billing app): the Billing page.
- ``AirflowStandalone`` (``demo.standalone``): ``airflow standalone``, i.e. the
  scheduler, dag-processor, triggerer and api-server, DAGs run as in production.

Either runs in its own process group, killed as a whole by ``stop()``, which
also removes the temporary AIRFLOW_HOME. A port taken by another process between
its pick and the bind (``demo.ports``) is seen in the log at once and the start
is tried again on fresh ports. Connections come from ``AIRFLOW_CONN_*``
variables in ``env`` (or the REST API). Nothing here imports Airflow: it is driven
through its command line and REST API only, never its metadata tables.

    with AirflowApiServer(REPO, env={"AIRFLOW_CONN_USER_PROP_DB": ...}) as server:
        token = server.token("editor")
        server.request("GET", "/billing/api/summary", token=token)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sublessor_billing.demo.airflow_cli import AIRFLOW, BIN, migrate_metadata, run_airflow
from sublessor_billing.demo.ports import PortTaken, api_server_env, free_port, port_taken

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
USERS = "editor:op,viewer:viewer"


class RestApi:
    """Airflow's public REST API at ``base_url`` (a token per call, or every user an admin)."""

    base_url: str
    last_headers: dict[str, str]  # of the last request()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 60,
    ) -> tuple[int, Any]:
        """(status, decoded JSON or text) of one HTTP request to the api-server."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw, kind = resp.status, resp.read(), resp.headers.get_content_type()
                self.last_headers = dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
            self.last_headers = dict(exc.headers)
        text = raw.decode("utf-8", "replace")
        return status, json.loads(text) if kind == "application/json" and text else text

    def api(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """The JSON answer of a REST call that must succeed (2xx), else RuntimeError naming it."""
        status, answer = self.request(method, path, body=body, **kwargs)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path} answered {status}: {str(answer)[:1000]}")
        return answer

    # -- DAGs and runs ------------------------------------------------------------------
    def unpause(self, dag_id: str, *, timeout: float = 180) -> None:
        """Unpause ``dag_id`` once the dag-processor has parsed it (RuntimeError on an import error)."""
        deadline = time.monotonic() + timeout
        while True:
            status, _ = self.request("GET", f"/api/v2/dags/{dag_id}")
            if status == 200:
                break
            errors = self.api("GET", "/api/v2/importErrors").get("import_errors", [])
            if errors or time.monotonic() > deadline:
                raise RuntimeError(f"DAG {dag_id} not parsed within {timeout} s: {errors}")
            time.sleep(1)
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})

    def dag_runs(self, dag_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` runs of ``dag_id``, oldest first."""
        answer = self.api(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit={int(limit)}"
        )
        return list(reversed(answer.get("dag_runs", [])))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(
        self, dag_id: str, run_id: str = "~", *, state: str | None = None
    ) -> list[dict[str, Any]]:
        """Task instances of one run (``~``: of every run), of one ``state`` if given."""
        query = f"?state={state}&limit=1000" if state else "?limit=1000"
        answer = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances{query}")
        return answer.get("task_instances", [])


class AirflowProcess(RestApi):
    """What both ways share: the home, the environment, ``airflow`` commands, HTTP, the stop."""

    prefix = "billing-airflow-"

    def __init__(self, repo: Path, *, env: dict[str, str] | None = None) -> None:
        self.repo = Path(repo)
        self.home = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.log_path = self.home / "airflow.log"
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.last_headers: dict[str, str] = {}  # of the last request()
        self.choose_ports()

    def choose_ports(self) -> None:
        """Pick free ports and build the environment that names them (again after PortTaken)."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.repo / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.repo / "plugins"),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            **api_server_env(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # this checkout's packages first, whatever the virtualenv's .pth points at
            "PYTHONPATH": os.pathsep.join(
                [str(self.repo / "include"), str(self.repo / "plugins"), str(self.repo)]
            ),
            **self.settings(),
            **self.extra_env,
        }

    def settings(self) -> dict[str, str]:
        """Environment of this way (overridden)."""
        return {}

    def command(self) -> list[str]:
        """The long-running command (overridden)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the process is up and serving (overridden)."""
        raise NotImplementedError

    def __enter__(self) -> AirflowProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``airflow`` command against this AIRFLOW_HOME."""
        return run_airflow(self.env, *args, timeout=timeout)

    def start(self, *, timeout: float = 240, attempts: int = 3) -> AirflowProcess:
        """Migrate, start, wait until ready; on fresh ports again when a port was taken."""
        try:
            migrate_metadata(self.env)
        except RuntimeError:
            self.stop()
            raise
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except PortTaken:
                self._kill_group()
                if attempt == attempts:
                    self.stop()
                    raise
                self.choose_ports()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> AirflowProcess:
        log = open(self.log_path, "wb")  # noqa: SIM115 (kept open for the child)
        self.process = subprocess.Popen(
            self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        what = self.command()[1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = self.process.poll() is not None
            text = self.log(chars=10**7)
            tail = text[-4000:]
            if port_taken(text):
                raise PortTaken(f"{what} could not bind its port (api-server {self.port}): {tail}")
            if exited:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(f"{what} exited ({code}): {tail}")
            try:
                if self.ready():
                    return self
            except OSError:
                pass
            time.sleep(0.5)  # the next look at the process and its log
        tail = self.log()
        self.stop()
        raise RuntimeError(f"{what} was not ready within {timeout} s: {tail}")

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the process group (SIGINT, then SIGTERM, then SIGKILL) and remove the home."""
        self._kill_group()
        shutil.rmtree(self.home, ignore_errors=True)

    def _kill_group(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for sig, wait in ((signal.SIGINT, 30), (signal.SIGTERM, 15), (signal.SIGKILL, 15)):
                try:
                    os.killpg(self.process.pid, sig)
                    self.process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
        if self.process is not None:
            # whatever the group leader left behind (workers, children of components)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


class AirflowApiServer(AirflowProcess):
    """``airflow api-server`` alone, with the simple auth manager's ``users`` (name:role,...)."""

    prefix = "billing-ui-airflow-"

    def __init__(
        self, repo: Path, *, env: dict[str, str] | None = None, users: str = USERS
    ) -> None:
        self.users = users
        super().__init__(repo, env=env)

    def settings(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": self.users,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        }

    def command(self) -> list[str]:
        return [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(self.port)]

    def ready(self) -> bool:
        return self.request("GET", "/api/v2/monitor/health", timeout=5)[0] == 200

    def password(self, user: str) -> str:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(path.read_text())[user]

    def token(self, user: str) -> str:
        """A JWT for ``user``, from the simple auth manager's login API."""
        status, body = self.request(
            "POST", "/auth/token", body={"username": user, "password": self.password(user)}
        )
        if status != 201:
            raise RuntimeError(f"login of {user!r} failed: {status} {body!r}")
        return body["access_token"]
