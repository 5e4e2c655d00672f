"""Start a real Airflow api-server on the project (temporary AIRFLOW_HOME, free port) for tests and benchmarks.

The api-server alone serves the UI, the public REST API, the simple auth
manager's login and our plugin's /billing app: enough for the Billing page.
It runs in its own process group, killed as a whole by ``stop()``.

    with AirflowApiServer(REPO, env={"AIRFLOW_CONN_USER_PROP_DB": ...}) as server:
        token = server.token("editor")
        server.request("GET", "/billing/api/summary", token=token)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
USERS = "editor:op,viewer:viewer"
AIRFLOW = Path(sys.executable).parent / "airflow"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowApiServer:
    def __init__(self, repo: Path, *, env: dict[str, str] | None = None, users: str = USERS):
        self.repo = repo
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="billing-ui-airflow-"))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "api-server.log"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(repo / "plugins"),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "PYTHONPATH": os.pathsep.join(
                [str(repo / "include"), str(repo / "plugins"), str(repo)]
            ),
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.last_headers: dict[str, str] = {}  # of the last request()

    def __enter__(self) -> AirflowApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``airflow`` command against this server's AIRFLOW_HOME."""
        return subprocess.run(
            [str(AIRFLOW), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def start(self, *, timeout: float = 240) -> None:
        migrated = self.airflow("db", "migrate")
        if migrated.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed: {migrated.stderr[-3000:]}")
        log = open(self.log_path, "wb")  # noqa: SIM115 (kept open for the child)
        self.process = subprocess.Popen(
            [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"api-server exited ({self.process.returncode}): {self.log()}")
            try:
                if self.request("GET", "/api/v2/monitor/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"api-server did not answer within {timeout} s: {self.log()}")

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None
        shutil.rmtree(self.home, ignore_errors=True)

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

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """(status, decoded JSON or text) of one HTTP request to the server."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw, kind = resp.status, resp.read(), resp.headers.get_content_type()
                self.last_headers = dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
            self.last_headers = dict(exc.headers)
        text = raw.decode("utf-8", "replace")
        return status, json.loads(text) if kind == "application/json" and text else text
