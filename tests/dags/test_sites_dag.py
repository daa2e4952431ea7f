"""``profile_sync_sites`` through Airflow: a real synchronization emits the Asset, the Asset queues the sites
DAG, and its run pushes every site — a site that is down fails only its own mapped task, after its retries."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers.directory import USERS, team
from tests.helpers.sites import claims, list_people, site_rows

pytestmark = pytest.mark.timeout(600)

ASSET = "profile_sync_profile_store"


def _bag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))


def _history(tmp, doc_id):
    from tests.helpers.config import inspect_context

    return inspect_context(tmp / "profile_sync.yaml").history.get(doc_id)


def test_a_sync_run_triggers_the_sites_dag_which_pushes_each_site_on_its_own(airflow_db, project_config,
                                                                            monkeypatch):
    from sqlalchemy import delete, select, update

    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from profile_sync.run.site_steps import history_id
    from tests.servers._util import free_port

    tmp = project_config
    # beta is reached through an Airflow Connection; "down" names a PostgreSQL server that is not there.
    monkeypatch.setenv("AIRFLOW_CONN_SITE_BETA", f"sqlite:///{tmp / 'beta.db'}")
    monkeypatch.setenv("AIRFLOW_CONN_SITE_DOWN", f"postgresql://site:s3cret-pw@127.0.0.1:{free_port()}/site")
    config = tmp / "profile_sync.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["sites"] = [{"name": "alpha", "url": f"sqlite:///{tmp / 'alpha.db'}"},
                    {"name": "beta", "conn_id": "site_beta"},
                    {"name": "down", "conn_id": "site_down"}]
    config.write_text(yaml.safe_dump(doc))
    directory = team(6)
    directory.write(tmp / "directory.ldif")
    assert _bag().dags["profile_sync_full"].test().state == "success"

    # What the scheduler acts on: an unpaused DAG scheduled on the Asset gets a queued run per event.
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == "profile_sync_sites").values(is_paused=False))
        session.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == "profile_sync_sites"))
    list_people(f"sqlite:///{tmp / 'alpha.db'}", [claims(f"p{i}@contoso.com") for i in range(1, 5)] + ["guest"])
    list_people(f"sqlite:///{tmp / 'beta.db'}", [claims(f"p{i}@contoso.com") for i in range(3, 7)])
    directory.person(2, "Person 2", upn="p2@contoso.com", manager=f"CN=Person 1,{USERS}", title="Lead")
    directory.remove(f"CN=Person 6,{USERS}")
    directory.write(tmp / "directory.ldif")
    sync = _bag().dags["profile_sync_full"].test()
    assert sync.state == "success"
    try:
        with create_session() as session:
            events = session.scalars(select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                                     .where(AssetModel.name == ASSET, AssetEvent.source_run_id == sync.run_id)).all()
            assert [(e.source_dag_id, e.source_task_id) for e in events] == [("profile_sync_full", "finish_run")]
            queued = session.scalars(select(AssetDagRunQueue).where(
                AssetDagRunQueue.target_dag_id == "profile_sync_sites")).all()
            assert [q.asset_id for q in queued] == [events[0].asset_id]

        run = _bag().dags["profile_sync_sites"].test()
        with create_session() as session:
            tis = {ti.rendered_map_index: ti for ti in session.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == "profile_sync_sites", TaskInstance.run_id == run.run_id))}
            states = {k: (str(ti.state), ti.try_number) for k, ti in tis.items()}
    finally:
        with create_session() as session:
            session.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == "profile_sync_sites"))
            session.execute(update(DagModel).where(DagModel.dag_id == "profile_sync_sites").values(is_paused=True))

    assert run.state == "failed"  # one site failed...
    assert states == {"alpha": ("success", 1), "beta": ("success", 1), "down": ("failed", 3)}  # ...after retries
    alpha = site_rows(f"sqlite:///{tmp / 'alpha.db'}")
    assert alpha[claims("p2@contoso.com")]["title"] == "Lead"
    assert alpha[claims("p4@contoso.com")]["manager"] == claims("p2@contoso.com")
    assert alpha["guest"]["last_synced"] is None
    beta = site_rows(f"sqlite:///{tmp / 'beta.db'}")
    assert beta[claims("p6@contoso.com")]["deleted"] is True
    assert beta[claims("p3@contoso.com")]["deleted"] is False

    for site, status in (("alpha", "success"), ("beta", "success"), ("down", "failed")):
        doc = _history(tmp, history_id(run.run_id, site))
        assert (doc["dag_id"], doc["site"], doc["status"]) == ("profile_sync_sites", site, status)
    down = _history(tmp, history_id(run.run_id, "down"))
    assert len(down["attempts"]) == 3 and all(a["transient"] for a in down["attempts"])
    assert "site 'down' unavailable" in down["steps"][0]["error"]
    assert "s3cret-pw" not in json.dumps(down)
    assert _history(tmp, history_id(run.run_id, "beta"))["steps"][0]["deletes"] == 1


def test_with_no_site_a_manual_run_has_nothing_to_push(airflow_db, project_config):
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    run = _bag().dags["profile_sync_sites"].test()  # project_config has no sites
    assert run.state == "success"
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == "profile_sync_sites",
                                                         TaskInstance.run_id == run.run_id)).all()
    assert [(ti.task_id, str(ti.state)) for ti in tis] == [("push_site", "skipped")]
    from tests.helpers.config import inspect_context

    assert inspect_context(project_config / "profile_sync.yaml").history.runs() == []  # nothing pushed or recorded
