"""Versioned, idempotent schema migrations for the tables this project owns.

Files in ``migrations/`` are named ``NNN_what.sql`` and applied in order, each
once, recorded in ``schema_version``. DDL commits implicitly, so a migration
interrupted half-way is simply applied again: CREATE statements say IF NOT
EXISTS, and an ALTER whose change is already there ("duplicate column", "can't
drop, does not exist"...) is skipped. Plain ALTERs keep the files portable to
MySQL 5.7/8, which lacks MariaDB's ``ADD COLUMN IF NOT EXISTS``; a migration
that needs more builds its statements from what the schema already has (060).
A named lock keeps two workers from migrating at once.

A statement that returns rows is a check: each row's first column, when not
NULL, says what is wrong, and the migration stops there (unrecorded) with it.
Migrations wait at most ``MIGRATION_LOCK_WAIT_S`` for a table's metadata lock
(``lock_wait_timeout``; the server's default is a year): a table held by a long
transaction fails the task, which retries, instead of queueing every other
task of the table behind the waiting ALTER.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sublessor_billing.db.named_lock import named_lock
from sublessor_billing.db.tables import SCHEMA_VERSION

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
EXTERNAL_DDL_DIR = Path(__file__).parent / "external"
_LOCK_JOB = "sublessor_billing.migrate"
_LOCK_TIMEOUT_S = 120
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# MySQL/MariaDB errors meaning "this change is already applied": table exists,
# duplicate column, duplicate key name, can't drop (column/key does not exist).
_ALREADY_APPLIED = frozenset({1050, 1060, 1061, 1091})
MIGRATION_LOCK_WAIT_S = 60
_LOCK_WAIT_TIMEOUT = 1205
_ONLINE_REFUSED = 1846  # ALTER ..., LOCK=NONE on a change the server can only make by copying


class MigrationCheckFailed(RuntimeError):
    """A migration's check statement returned what is wrong; the migration is not recorded."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        return split_sql(self.path.read_text(encoding="utf-8"))


def split_sql(text: str) -> list[str]:
    """Split a script into statements (one per ``;`` at the end of a line)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    body = "\n".join(lines)
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def available_migrations() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise RuntimeError(
                f"Migration file {path.name!r} is not named NNN_what.sql; rename it."
            )
        found.append(Migration(int(match.group(1)), path.stem, path))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"Two migration files share a version number in {MIGRATIONS_DIR}.")
    return found


def latest_version() -> int:
    return max((m.version for m in available_migrations()), default=0)


def applied_versions(conn: Any) -> set[int]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            (SCHEMA_VERSION,),
        )
        if cur.fetchone()[0] == 0:
            return set()
        cur.execute(f"SELECT version FROM {SCHEMA_VERSION}")
        return {int(row[0]) for row in cur.fetchall()}


def apply_migrations(conn: Any) -> list[str]:
    """Bring the connected database up to the latest schema; return what was applied."""
    pending = [m for m in available_migrations() if m.version not in applied_versions(conn)]
    if not pending:
        return []
    with (
        named_lock(conn, _LOCK_JOB, _LOCK_TIMEOUT_S),
        conn.cursor() as cur,
        _lock_wait(cur, MIGRATION_LOCK_WAIT_S),
    ):
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_VERSION} ("
            " version INT NOT NULL PRIMARY KEY,"
            " name VARCHAR(128) NOT NULL,"
            " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )
        done = applied_versions(conn)
        applied = []
        for migration in pending:
            if migration.version in done:
                continue
            log.info("Applying migration %s", migration.name)
            for statement in migration.statements():
                _execute_rerunnable(cur, statement, migration.name)
            cur.execute(
                f"INSERT IGNORE INTO {SCHEMA_VERSION} (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            conn.commit()
            applied.append(migration.name)
        return applied


@contextmanager
def _lock_wait(cur: Any, seconds: int) -> Iterator[None]:
    """Wait at most ``seconds`` for table locks in this session, then restore its setting."""
    cur.execute("SELECT @@SESSION.lock_wait_timeout")
    saved = int(cur.fetchone()[0])
    cur.execute(f"SET SESSION lock_wait_timeout = {int(seconds):d}")
    try:
        yield
    finally:
        cur.execute(f"SET SESSION lock_wait_timeout = {saved:d}")


def _execute_rerunnable(cur: Any, statement: str, migration: str) -> None:
    try:
        cur.execute(statement)
    except Exception as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code not in _ALREADY_APPLIED:
            raise RuntimeError(
                f"Migration {migration} failed on: {statement[:200]}... ({exc}). "
                f"{_what_to_do(code)}"
            ) from exc
        log.info("Migration %s: already applied, skipped (%s)", migration, exc.args[-1])
        return
    if cur.description is not None:
        wrong = [str(row[0]) for row in cur.fetchall() if row and row[0] is not None]
        if wrong:
            raise MigrationCheckFailed(f"Migration {migration} stopped: {'; '.join(wrong)}")


def _what_to_do(code: int | None) -> str:
    if code == _LOCK_WAIT_TIMEOUT:
        return (
            f"It waited {MIGRATION_LOCK_WAIT_S} s for a table that a long transaction or "
            "another ALTER holds, and gave up rather than queue billing behind it. The task "
            "retries; if this goes on, find the holder (SHOW PROCESSLIST) or apply the "
            "migration off-peak."
        )
    if code == _ONLINE_REFUSED:
        return (
            "This server cannot make the change without copying a large table, which would "
            "stop billing while it runs; nothing was changed. Apply the migration out of band "
            "first (its file says how); the runner then finds it applied and records it."
        )
    return "The schema is partly upgraded; fix the cause and run again: applied steps are skipped."


def ensure_schema(conn: Any) -> None:
    """Apply pending migrations; cheap when the schema is already current."""
    applied = apply_migrations(conn)
    if applied:
        log.info("Schema upgraded: %s", ", ".join(applied))


def apply_external_ddl(conn: Any, name: str) -> None:
    """Create tables owned by other systems (tests and the demo only): ``anjuke_db`` or ``user_prop_db``."""
    path = EXTERNAL_DDL_DIR / f"{name}.sql"
    with conn.cursor() as cur:
        for statement in split_sql(path.read_text(encoding="utf-8")):
            cur.execute(statement)
    conn.commit()
