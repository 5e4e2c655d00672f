"""Who may see and who may act on the Billing page: the Airflow auth manager decides.

Seeing needs read access (GET) to the DAG ``call400_billing``; acting on the
quarantine (replay, discard) needs edit access (PUT) to it: the permission that
already lets a person clear or re-run the billing. With the simple auth manager
that is VIEWER to see and USER, OP or ADMIN to act; with FAB, "can read" /
"can edit" on DAG:call400_billing (a role can be given exactly that).
"""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, requires_access_dag
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

BILLING_DAG_ID = "call400_billing"

# Route dependencies, as the core API declares its own (403 when not allowed).
can_view = Depends(requires_access_dag("GET", param_dag_id=BILLING_DAG_ID))
can_act = Depends(requires_access_dag("PUT", param_dag_id=BILLING_DAG_ID))


def user_may(user: Any, method: str) -> bool:
    """Whether the auth manager lets ``user`` do ``method`` on the billing DAG (to show buttons)."""
    from airflow.models.dag import DagModel

    details = DagDetails(id=BILLING_DAG_ID, team_name=DagModel.get_team_name(BILLING_DAG_ID))
    return get_auth_manager().is_authorized_dag(method=method, details=details, user=user)


async def optional_user(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Any | None:
    """The logged-in user, or None when nobody is (the page then redirects to the login)."""
    try:
        return await get_user(request, None, bearer)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            return None
        raise


OptionalUserDep = Annotated[Any, Depends(optional_user)]


def login_url(request: Request) -> str:
    return get_auth_manager().get_url_login(next_url=str(request.url))


def actor_name(user: Any) -> str:
    """The name recorded with an action."""
    return str(user.get_name() or user.get_id())


def require_json(request: Request) -> None:
    """Actions take JSON only: a form posted from another site cannot reach them."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the action as application/json"
        )
