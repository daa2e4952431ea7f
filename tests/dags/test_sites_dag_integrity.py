"""DAG integrity of ``profile_sync_sites``: it parses with and without sites, follows the sync's Asset, is mapped
over the configured sites, and keeps out of the synchronization's one-slot pool."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture(scope="module")
def sites_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sites-dags")
    config = tmp / "profile_sync.yaml"
    config.write_text(yaml.safe_dump({
        "directories": [{"name": "contoso", "type": "ldif", "path": str(tmp / "d.ldif"),
                         "containers": ["DC=contoso,DC=com"]}],
        "sites": [{"name": "intranet", "url": "sqlite:///.local/sites/intranet.db"},
                  {"name": "hr_portal", "conn_id": "hr_site", "table": "portal.people"}],
    }))
    return config


def _bag(config=None):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    with pytest.MonkeyPatch.context() as mp:
        if config is not None:
            mp.setenv("PROFILE_SYNC_CONFIG", str(config))
        return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def bag(sites_config):
    return _bag(sites_config)


def test_parses_with_sites(bag):
    assert bag.import_errors == {}
    assert {"profile_sync_full", "profile_sync_incremental", "profile_sync_sites"} <= set(bag.dag_ids)


def test_scheduled_on_the_asset_the_sync_emits(bag):
    dag = bag.dags["profile_sync_sites"]
    outlets = bag.dags["profile_sync_full"].get_task("finish_run").outlets
    assert outlets == bag.dags["profile_sync_incremental"].get_task("finish_run").outlets
    assert list(dag.timetable.asset_condition.objects) == outlets  # same name and URI


def test_mapped_over_the_sites_in_order(bag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = bag.dags["profile_sync_sites"]
    assert dag.task_ids == ["push_site"]
    push = dag.get_task("push_site")
    assert isinstance(push, MappedOperator)
    assert push.op_kwargs_expand_input.value == {"site": ["intranet", "hr_portal"]}
    assert push.map_index_template == "{{ site_name }}"


def test_policies(bag):
    dag = bag.dags["profile_sync_sites"]
    push = dag.get_task("push_site")
    assert push.retries >= 1  # a site that is down is tried again
    assert push.pool != "profile_sync"  # never holds up a synchronization
    assert dag.max_active_runs == 1
    assert {"profile_sync", "sites"} <= set(dag.tags)
    dag.params.validate()
    assert dag.params["mode"] == "incremental"
    assert dag.params.get_param("mode").schema["enum"] == ["incremental", "full"]
    assert dag.params["override_reason"] is None


def test_parses_without_sites_and_is_then_not_scheduled():
    bag = _bag()  # the shipped configuration has no sites
    assert bag.import_errors == {}
    dag = bag.dags["profile_sync_sites"]
    from airflow.sdk.definitions.timetables.simple import NullTimetable

    assert dag.schedule is None and isinstance(dag.timetable, NullTimetable)
    assert dag.get_task("push_site").op_kwargs_expand_input.value == {"site": []}


def test_no_pandas_at_parse_time(sites_config):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "PROFILE_SYNC_CONFIG": str(sites_config)}
    code = ("import sys, runpy; g = runpy.run_path(%r); assert g['profile_sync_sites'].task_ids == ['push_site']; "
            "print('pandas' in sys.modules, 'sqlalchemy' in sys.modules)" % str(ROOT / "dags" / "profile_sync_sites.py"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env=env)
    assert out.stdout.strip().splitlines()[-1].split()[0] == "False"
