"""The Profile Sync page: a FastAPI app mounted in Airflow's API server at ``/profile-sync``.

Routes (every one checks the caller through Airflow's auth manager, ``access.py``):

==========================================  ========  =====================================================
route                                       method    what (permission)
==========================================  ========  =====================================================
``/profile-sync/``                          GET       the page (read: runs of the Profile Sync DAGs)
``/profile-sync/static/{name}``             GET       its script and style sheet (read)
``/profile-sync/api/me``                    GET       who is asking, may they approve (read)
``/profile-sync/api/status``                GET       running / waiting / idle, last runs, counts (read)
``/profile-sync/api/runs``                  GET       run history with steps, chart series (read)
``/profile-sync/api/runs/{run_id}``         GET       one run (read)
``/profile-sync/api/gates``                 GET       gate reports, runs waiting for approval (read)
``/profile-sync/api/approvals/{dag}/{run}`` POST      approve or reject (run the DAG + answer its required
                                                      actions)
``/profile-sync/api/quarantine``            GET       objects held back (read)
``/profile-sync/api/people?q=``             GET       search by account name, name, e-mail (read)
``/profile-sync/api/people/{profile_id}``   GET       a person's lineage (read)
``/profile-sync/api/objects/{connection}``  GET       a connector-space object, why it has no profile (read)
==========================================  ========  =====================================================

Anonymous callers get 401, users without read access 403. Nothing returned carries a secret
(``status.redact``). The data comes from the engine (``include/profile_sync/status``) and, for what only
Airflow knows (runs waiting for the lease, next scheduled runs, who triggered a run), ``orchestrator.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

import profile_sync_airflow  # noqa: F401  (puts include/ on sys.path)
from profile_sync_airflow.page import orchestrator
from profile_sync_airflow.page.access import DAG_IDS, Approver, Reader, can_approve, optional_user

URL_PREFIX = "/profile-sync"
"""Where the app is mounted (the same in plugins/profile_sync_plugin.py)."""
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"page.js": "text/javascript", "page.css": "text/css"}

app = FastAPI(title="Profile Sync", description="Status, run history, gate approval, quarantine, lineage.",
              docs_url=None, redoc_url=None, openapi_url=None)


def _context():  # noqa: ANN202
    from profile_sync.config import load_settings
    from profile_sync.run.context import RunContext

    return RunContext(run_id="status-page", settings=load_settings())


def _view(ctx):  # noqa: ANN001, ANN202
    from profile_sync.status.frames import CommittedState

    return CommittedState(ctx.store, cache_key=ctx.settings.state_store.url)


def _json(value: Any, code: int = 200) -> JSONResponse:
    from profile_sync.status.redact import redact
    from profile_sync.status.values import jsonable

    return JSONResponse(redact(jsonable(value)), status_code=code)


@app.exception_handler(Exception)
async def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    """An engine error (configuration, state) becomes a readable 500, never a stack trace."""
    from profile_sync.status.redact import mask_url

    return JSONResponse({"detail": mask_url(f"{type(exc).__name__}: {exc}")}, status_code=500)


# --------------------------------------------------------------------------- the page


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request, user=Depends(optional_user)) -> HTMLResponse:  # noqa: ANN001
    if user is None:
        from airflow.api_fastapi.app import get_auth_manager

        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return HTMLResponse(f'<!doctype html><title>Profile Sync</title><p>Not logged in. '
                            f'<a href="{login}" target="_top">Log in to Airflow</a></p>',
                            status_code=status.HTTP_401_UNAUTHORIZED)
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    from profile_sync_airflow.page.access import allowed

    if not allowed(user, "GET", DagAccessEntity.RUN):
        return HTMLResponse("<!doctype html><title>Profile Sync</title><p>Forbidden: your Airflow role may not read "
                            "the Profile Sync DAGs.</p>", status_code=status.HTTP_403_FORBIDDEN)
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html.replace("{{PREFIX}}", str(request.scope.get("root_path") or URL_PREFIX)))


@app.get("/static/{name}", include_in_schema=False)
def asset(name: str, user: Reader) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


# --------------------------------------------------------------------------- data


@app.get("/api/me")
def me(user: Reader) -> JSONResponse:
    return _json({"user": user.get_name(), "can_approve": {d: can_approve(user, d) for d in DAG_IDS}})


@app.get("/api/status")
def status_view(user: Reader) -> JSONResponse:
    from profile_sync.status import overview

    ctx = _context()
    engine = overview.overview(ctx, _view(ctx))
    active = orchestrator.active_runs()
    described = overview.describe(engine, active)
    for a in described["activities"]:
        if a.get("dag_id") in DAG_IDS and a.get("run_id"):
            a["grid_url"] = orchestrator.grid_url(a["dag_id"], a["run_id"])
    return _json({**engine, **described, "active_runs": active, "schedules": orchestrator.schedules()})


def _with_airflow(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    details = orchestrator.run_details([s["run_id"] for s in summaries if s.get("run_id")])
    return [{**s, "airflow": details.get(s["run_id"])} for s in summaries]


@app.get("/api/runs")
def runs_view(user: Reader, limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    from profile_sync.status.runs import chart_series, run_summary

    summaries = [run_summary(d) for d in _context().history.runs(limit)]
    return _json({"runs": _with_airflow(summaries), "chart": chart_series(summaries)})


@app.get("/api/runs/{run_id:path}")
def run_view(run_id: str, user: Reader) -> JSONResponse:
    """One run, by run key (``<dag id>/<run id>``) or by Airflow run id (the newest run with that id)."""
    from profile_sync.status.gates import gate_reports
    from profile_sync.status.runs import run_summary

    history = _context().history
    doc = history.get(run_id) or next((d for d in history.runs(500) if d.get("run_id") == run_id), None)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r} in the run history")
    (summary,) = _with_airflow([run_summary(doc)])
    return _json({**summary, "gates": gate_reports([doc])})


@app.get("/api/gates")
def gates_view(user: Reader, limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    from profile_sync.status.gates import gate_reports, pending_approvals

    docs = _context().history.runs(limit)
    details = orchestrator.run_details([d["run_id"] for d in docs if d.get("run_id")])
    pending = [{**p, "airflow": details.get(p["run_id"]),
                "required_actions_url": orchestrator.required_actions_url(p["dag_id"], p["run_id"])
                if p.get("dag_id") in DAG_IDS else None} for p in pending_approvals(docs)]
    reports = [{**r, "airflow": details.get(r["run_id"])} for r in gate_reports(docs)]
    return _json({"pending": pending, "reports": reports,
                  "can_approve": {d: can_approve(user, d) for d in DAG_IDS}})


class Decision(BaseModel):
    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=2000)


@app.post("/api/approvals/{dag_id}/{run_id}")
def approval(dag_id: str, run_id: str, body: Decision, request: Request, user: Approver) -> JSONResponse:
    """Approve or reject a run waiting for approval (answered as Airflow's required action, by this user)."""
    if "application/json" not in (request.headers.get("content-type") or ""):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send JSON")  # no cross-site form posts
    try:
        answer = orchestrator.answer_approval(dag_id, run_id, user, body.decision == "approve",
                                              (body.comment or "").strip() or None)
    except orchestrator.NotWaiting as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _json(answer)


@app.get("/api/quarantine")
def quarantine_view(user: Reader) -> JSONResponse:
    from profile_sync.status.quarantine import quarantine

    return _json(quarantine(_view(_context())))


@app.get("/api/people")
def people_search(user: Reader, q: str = Query("", max_length=200)) -> JSONResponse:
    from profile_sync.status.lineage import search

    ctx = _context()
    return _json(search(_view(ctx), ctx.settings, q))


@app.get("/api/people/{profile_id}")
def person_view(profile_id: str, user: Reader) -> JSONResponse:
    from profile_sync.status.lineage import person

    ctx = _context()
    found = person(_view(ctx), ctx.settings, profile_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no profile {profile_id!r}")
    runs = {r: ctx.history.get(r) for r in {p["last_changed_in"] for p in found["properties"]
                                            if p.get("last_changed_in")} | {found.get("state_last_changed_in")} if r}
    found["runs"] = {r: {"started_at": (d or {}).get("started_at"), "dag_id": (d or {}).get("dag_id"),
                         "mode": (d or {}).get("mode"),
                         "run_id": (d or {}).get("run_id"),
                         "grid_url": orchestrator.grid_url(d["dag_id"], d.get("run_id") or r)
                         if d and d.get("dag_id") in DAG_IDS else None} for r, d in runs.items()}
    return _json(found)


@app.get("/api/objects/{connection}")
def object_view(connection: str, user: Reader, anchor: str | None = None, dn: str | None = None) -> JSONResponse:
    from profile_sync.status.lineage import connector_object

    if not anchor and not dn:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "give anchor or dn")
    ctx = _context()
    return _json(connector_object(_view(ctx), ctx.settings, connection, anchor=anchor, dn=dn))


ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/"), ("GET", "/static/page.js"), ("GET", "/static/page.css"), ("GET", "/api/me"),
    ("GET", "/api/status"), ("GET", "/api/runs"), ("GET", "/api/runs/{run_id}"), ("GET", "/api/gates"),
    ("POST", "/api/approvals/{dag_id}/{run_id}"), ("GET", "/api/quarantine"), ("GET", "/api/people"),
    ("GET", "/api/people/{profile_id}"), ("GET", "/api/objects/{connection}"),
)
"""Every route of the app (the security tests call each one anonymously and as a user without access)."""
