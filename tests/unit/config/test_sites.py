"""Sites in the configuration: validated when loaded, errors naming the key."""

from __future__ import annotations

import pytest
import yaml

from profile_sync.config import ConfigError, load_settings

DIRECTORY = {"name": "contoso", "type": "ldif", "path": "x.ldif", "containers": ["DC=contoso,DC=com"]}
SITE = {"name": "intranet", "url": "sqlite:///.local/sites/intranet.db"}


def load(tmp_path, *sites, **top):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"directories": [DIRECTORY], "sites": list(sites), **top}))
    return load_settings(path)


def test_defaults(tmp_path):
    site = load(tmp_path, SITE).site("intranet")
    assert (site.table, site.conn_id) == ("user_information_list", None)
    assert (site.gates.max_deletes, site.gates.max_delete_percent, site.gates.min_count_for_percent_limits) == (
        500, 5.0, 10)
    assert load(tmp_path).sites == ()


def test_a_connection_and_own_limits(tmp_path):
    site = load(tmp_path, {"name": "hr_portal", "conn_id": "hr_site", "table": "portal.people",
                           "gates": {"max_delete_percent": 2, "min_count_for_percent_limits": 0}}).sites[0]
    assert (site.conn_id, site.table, site.gates.max_delete_percent, site.gates.max_deletes) == (
        "hr_site", "portal.people", 2.0, 500)


def test_an_unknown_site_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown site 'extranet'; known values: intranet"):
        load(tmp_path, SITE).site("extranet")


@pytest.mark.parametrize(("change", "key", "problem"), [
    ({"name": "Intranet"}, "sites[0].name", "not a valid connection name"),
    ({"url": None}, "sites[0]", "needs 'conn_id'"),
    ({"url": "postgresql://site:secret@db/site"}, "sites[0].url", "holds a password"),
    ({"table": "users; DROP TABLE x"}, "sites[0].table", "not a table name"),
    ({"gates": {"max_delete_percent": 150}}, "sites[0].gates.max_delete_percent", "less than or equal to 100"),
    ({"gates": {"max_deletes": -1}}, "sites[0].gates.max_deletes", "greater than or equal to 0"),
    ({"gates": {"max_delete": 5}}, "sites[0].gates.max_delete", "Extra inputs are not permitted"),
    ({"push_pictures": True}, "sites[0].push_pictures", "Extra inputs are not permitted"),
    ({"name": "contoso"}, "sites", "differ from directory and business-system names; repeated: contoso"),
])
def test_errors_name_the_key(tmp_path, change, key, problem):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {**SITE, **change})
    assert info.value.key == key
    assert problem in info.value.problem


def test_site_names_are_unique(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, SITE, {**SITE, "url": "sqlite:///other.db"})
    assert info.value.key == "sites"
    assert "repeated: intranet" in info.value.problem
