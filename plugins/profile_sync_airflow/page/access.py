"""Who may see and do what on the Profile Sync page: Airflow's auth manager decides, on every route.

Airflow does not authenticate plugin apps; every route of the page depends on one of these:

- :func:`reader` — an authenticated user (JWT cookie of the Airflow UI, or ``Authorization: Bearer``;
  none → 401) allowed to read the runs of every Profile Sync DAG (``DagAccessEntity.RUN``, ``GET``;
  otherwise 403);
- :func:`approver` — a reader who may also trigger runs of that DAG (``RUN``, ``POST``) and answer its
  human-in-the-loop tasks (``HITL_DETAIL``, ``PUT``): only they may approve or reject an export.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, bearer_scheme, get_auth_manager, get_user

DAG_IDS = ("profile_sync_full", "profile_sync_incremental")
"""The DAGs whose permissions guard the page."""


def _team(dag_id: str) -> str | None:
    from airflow.models.dag import DagModel

    try:
        return DagModel.get_team_name(dag_id)
    except Exception:  # noqa: BLE001 - no DAG row yet (never parsed): no team
        return None


def allowed(user: BaseUser, method: str, entity: DagAccessEntity, dag_ids: tuple[str, ...] = DAG_IDS) -> bool:
    """Whether the auth manager lets ``user`` do ``method`` on ``entity`` of every DAG in ``dag_ids``."""
    manager = get_auth_manager()
    return all(manager.is_authorized_dag(method=method, access_entity=entity,  # type: ignore[arg-type]
                                         details=DagDetails(id=d, team_name=_team(d)), user=user)
               for d in dag_ids)


def can_approve(user: BaseUser, dag_id: str) -> bool:
    return (allowed(user, "POST", DagAccessEntity.RUN, (dag_id,))
            and allowed(user, "PUT", DagAccessEntity.HITL_DETAIL, (dag_id,)))


def reader(user: GetUserDep) -> BaseUser:
    """An authenticated user who may read the Profile Sync DAGs' runs (401 / 403 otherwise)."""
    if not allowed(user, "GET", DagAccessEntity.RUN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: reading the Profile Sync DAGs' runs is not allowed")
    return user


Reader = Annotated[BaseUser, Depends(reader)]


def approver(dag_id: str, user: Reader) -> BaseUser:
    """A reader who may also run ``dag_id`` and answer its approvals (403 otherwise)."""
    if dag_id not in DAG_IDS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"not a Profile Sync DAG: {dag_id!r}")
    if not can_approve(user, dag_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"Forbidden: approving needs the right to run {dag_id} and to answer its required actions")
    return user


Approver = Annotated[BaseUser, Depends(approver)]


async def optional_user(request: Request) -> BaseUser | None:
    """The caller, or None when anonymous (for the HTML page, which answers 401 with a login link)."""
    try:
        return await get_user(request, None, await bearer_scheme(request))
    except HTTPException as exc:
        if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            return None
        raise
