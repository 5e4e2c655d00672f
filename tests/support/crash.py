"""One way to crash a run: a child Python process SIGKILLed at a chosen point.

The test starts the child with ``run_child`` (waits) or ``start_child`` (the test
kills it with ``kill`` once the state it waits for is reached). The child's code
is a string; it imports ``support.crash`` for ``kill_self``, ``KillAt`` and
``target_from_env`` (the database the test gave it). A SIGKILL leaves no chance to
clean up: no rollback, no acknowledgement, no finally block, as when the machine
dies.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from sublessor_billing.db.connect import MySqlTarget

TESTS = Path(__file__).resolve().parents[1]
TARGET_ENV = "CRASH_TARGET"


def kill_self() -> None:
    """SIGKILL this process (in the child)."""
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt:
    """Proxy whose method ``name`` kills the process, before delegating or after it."""

    def __init__(self, inner: Any, name: str, *, after: bool = False) -> None:
        self._inner, self._name, self._after = inner, name, after

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr != self._name:
            return value

        def fatal(*args: Any, **kwargs: Any) -> None:
            if not self._after:
                kill_self()
            value(*args, **kwargs)
            kill_self()

        return fatal


def target_from_env() -> MySqlTarget:
    """The database the test gave the child (in the child)."""
    return MySqlTarget(**json.loads(os.environ[TARGET_ENV]))


def _env(target: MySqlTarget | None, env: dict[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ if env is None else env)
    merged["PYTHONPATH"] = os.pathsep.join([str(TESTS), *sys.path])
    if target is not None:
        merged[TARGET_ENV] = json.dumps(dataclasses.asdict(target))
    return merged


def start_child(
    code: str, *args: str, target: MySqlTarget | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``python -c code args...``; its output is captured (text)."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=_env(target, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_child(
    code: str,
    *args: str,
    target: MySqlTarget | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run the child to its end (or its death) and return what it did."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=_env(target, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kill(child: subprocess.Popen) -> None:
    """SIGKILL a child the test started, and reap it."""
    child.kill()
    child.communicate(timeout=30)


def assert_killed(child: subprocess.CompletedProcess | subprocess.Popen) -> None:
    """The child died of SIGKILL (not an exception, not a clean exit: the kill point was hit)."""
    output = getattr(child, "stderr", "") or ""
    if not isinstance(output, str):
        output = ""
    assert child.returncode == -signal.SIGKILL, f"exit {child.returncode}: {output[-3000:]}"
