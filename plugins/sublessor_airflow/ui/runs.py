"""The latest runs of the billing DAGs, from Airflow's metadata database (api-server side)."""

from __future__ import annotations

from typing import Any


def last_run(dag_id: str, *, state: str | None = None) -> dict[str, Any] | None:
    """The most recently created run of ``dag_id`` (in ``state`` if given), or None."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(
        DagRun.run_id, DagRun.state, DagRun.start_date, DagRun.end_date, DagRun.run_after
    ).where(DagRun.dag_id == dag_id)
    if state:
        query = query.where(DagRun.state == state)
    with create_session() as session:
        row = session.execute(query.order_by(DagRun.id.desc()).limit(1)).first()
    if row is None:
        return None
    run_id, run_state, start, end, run_after = row
    return {
        "run_id": run_id,
        "state": str(getattr(run_state, "value", run_state)),
        "start_date": start,
        "end_date": end,
        "run_after": run_after,
    }
