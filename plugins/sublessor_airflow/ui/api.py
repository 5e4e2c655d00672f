"""The Billing page and its JSON API, mounted by the plugin under ``/billing``.

Every route needs a logged-in Airflow user; reading needs read access to the DAG
call400_billing, the quarantine actions edit access (see ``access``). The
database is the Airflow connection ``user_prop_db``, opened per request through
the project's hook (the same credentials as the DAGs and the quarantine command).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from sublessor_airflow.ui import access, runs
from sublessor_airflow.ui.database import open_user_prop, user_prop
from sublessor_airflow.ui.page import render_page
from sublessor_billing.calls.quarantine import (
    AlreadyResolved,
    QuarantineRowMissing,
    StillInvalid,
    discard,
    replay,
)
from sublessor_billing.calls.store import is_data_error
from sublessor_billing.db.transaction import read_only
from sublessor_billing.ops import audit, quarantine_ops
from sublessor_billing.ops.clock import TIMEZONE, in_shanghai, shift_of, today
from sublessor_billing.ops.summary import day_summary

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"billing.js": "text/javascript", "billing.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

app = FastAPI(
    title="Billing operations",
    description="The sublessor billing figures of a day and the quarantine actions "
    "(docs/billing_operations.md).",
    docs_url=None,  # Swagger UI loads from a CDN; /billing/openapi.json stays
    redoc_url=None,
)


@app.middleware("http")
async def security_headers(request: Request, call_next):
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class ReplayBody(BaseModel):
    body: str | None = Field(None, description="corrected JSON; absent: the body as received")


class ReasonBody(BaseModel):
    reason: str = Field(..., min_length=1)
    limit: int = Field(quarantine_ops.MAX_REPLAY_BATCH, ge=1, le=quarantine_ops.MAX_REPLAY_BATCH)


class DiscardBody(BaseModel):
    note: str = Field(..., min_length=1, max_length=500, description="why it is discarded")


class ServerTiming:
    """Durations of a request's parts, for the ``Server-Timing`` header (monitoring, benchmark)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.parts.append(f"{name};dur={(time.perf_counter() - started) * 1000:.1f}")

    def header(self) -> str:
        return ", ".join(self.parts)


def parse_day(day: str | None) -> date:
    if not day:
        return today()
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, f"day must be YYYY-MM-DD, got {day[:40]!r}"
        ) from None


def summary_of(conn: Any, day: date, timing: ServerTiming | None = None) -> dict:
    """The day's figures plus the DAG runs Airflow knows of."""
    timing = timing or ServerTiming()
    with timing("figures"):
        summary = day_summary(conn, day)
    summary["timezone"] = str(TIMEZONE)
    summary["generated_at"] = datetime.now(TIMEZONE)
    with timing("runs"):
        summary["broker_phone_sync"]["last_run"] = runs.last_run("broker_phone_sync")
        summary["billing_runs"] = {
            "last": runs.last_run(access.BILLING_DAG_ID),
            "last_success": runs.last_run(access.BILLING_DAG_ID, state="success"),
        }
    return summary


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request, user: access.OptionalUserDep, day: str | None = None):
    if user is None:
        return RedirectResponse(access.login_url(request), status.HTTP_303_SEE_OTHER)
    if not access.user_may(user, "GET"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    chosen = parse_day(day)
    with user_prop() as conn:
        summary = summary_of(conn, chosen)
        with read_only(conn) as cur:
            actions = in_shanghai(audit.recent_actions(cur), shift_of(cur))
    html = render_page(
        summary, actions, user=access.actor_name(user), can_act=access.user_may(user, "PUT")
    )
    return HTMLResponse(html)


@app.get("/static/{name}", include_in_schema=False)
def static(name: str):
    if name not in STATIC_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name])


@app.get("/api/summary", dependencies=[access.can_view])
def api_summary(
    response: Response, day: str | None = Query(None, description="YYYY-MM-DD, default today")
) -> dict:
    """The figures of a day (Asia/Shanghai): calls, charges, pending, offline, quarantine, syncs."""
    chosen = parse_day(day)
    timing = ServerTiming()
    with timing("connect"):
        conn = open_user_prop()
    try:
        summary = summary_of(conn, chosen, timing)
    finally:
        conn.close()
    response.headers["Server-Timing"] = timing.header()
    return summary


@app.get("/api/quarantine", dependencies=[access.can_view])
def api_quarantine(
    status_: str = Query("quarantined", alias="status"),
    before_id: int | None = Query(None, ge=1),
    limit: int = Query(50, ge=1, le=500),
) -> dict:
    """Quarantined messages newest first (``status=all`` for every row)."""
    if status_ != "all" and status_ not in quarantine_ops.STATUSES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"status must be all or one of {', '.join(quarantine_ops.STATUSES)}",
        )
    with user_prop() as conn, read_only(conn) as cur:
        rows = quarantine_ops.list_rows(
            cur, status=None if status_ == "all" else status_, before_id=before_id, limit=limit
        )
        by_reason = quarantine_ops.open_by_reason(cur)
        open_rows = quarantine_ops.open_count(cur)
        shift = shift_of(cur)
    return {"open": open_rows, "by_reason": by_reason, "rows": in_shanghai(rows, shift)}


@app.get("/api/quarantine/{quarantine_id}/body", dependencies=[access.can_view])
def api_body(quarantine_id: int, user: GetUserDep) -> dict:
    """One quarantined message: raw for users who may act, caller masked for the others."""
    unmasked = access.user_may(user, "PUT")
    with user_prop() as conn, read_only(conn) as cur:
        found = quarantine_ops.body(cur, quarantine_id, unmasked=unmasked)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No quarantine row {quarantine_id}")
    return found


@app.post(
    "/api/quarantine/{quarantine_id}/replay",
    dependencies=[access.can_act, Depends(access.require_json)],
)
def api_replay(quarantine_id: int, body: ReplayBody, user: GetUserDep) -> dict:
    """Replay one message: its body as received, or the corrected ``body``."""
    actor = access.actor_name(user)
    corrected = body.body.encode("utf-8") if body.body is not None else None
    with user_prop() as conn, _refusals():
        outcome = replay(conn, quarantine_id, corrected, actor=actor)
    log.info(
        "Quarantine row %s replayed by %s as call_id %s", quarantine_id, actor, outcome.call_id
    )
    return {"id": quarantine_id, "call_id": outcome.call_id, "logged": outcome.logged}


@app.post(
    "/api/quarantine/replay-reason", dependencies=[access.can_act, Depends(access.require_json)]
)
def api_replay_reason(body: ReasonBody, user: GetUserDep) -> dict:
    """Replay, as received, every open message with exactly this reason (at most ``limit``)."""
    actor = access.actor_name(user)
    with user_prop() as conn:
        result = quarantine_ops.replay_all_of_reason(
            conn, body.reason, actor=actor, limit=body.limit
        )
    log.info("Replay of reason %r by %s: %s", body.reason, actor, result.as_dict())
    return result.as_dict()


@app.post(
    "/api/quarantine/{quarantine_id}/discard",
    dependencies=[access.can_act, Depends(access.require_json)],
)
def api_discard(quarantine_id: int, body: DiscardBody, user: GetUserDep) -> dict:
    """Discard one message, with a note saying why."""
    actor = access.actor_name(user)
    with user_prop() as conn, _refusals():
        discard(conn, quarantine_id, body.note, actor=actor)
    log.info("Quarantine row %s discarded by %s", quarantine_id, actor)
    return {"id": quarantine_id, "status": "discarded"}


@app.get("/api/actions", dependencies=[access.can_view])
def api_actions(limit: int = Query(50, ge=1, le=500)) -> dict:
    """The latest quarantine actions: who, when, what."""
    with user_prop() as conn, read_only(conn) as cur:
        actions = in_shanghai(audit.recent_actions(cur, limit=limit), shift_of(cur))
    return {"actions": actions}


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except QuarantineRowMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except AlreadyResolved as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except StillInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    except Exception as exc:
        if not is_data_error(exc):
            raise
        detail = (
            f"{quarantine_ops.refused_reason(exc)}. Nothing changed: correct the body and replay."
        )
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail) from None
