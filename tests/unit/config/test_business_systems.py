"""Business-system configuration: validated at load against closed vocabularies and the profile properties."""

from __future__ import annotations

import pytest
import yaml

from profile_sync.config import ConfigError, load_settings

DIRECTORY = {"name": "contoso", "type": "ldif", "path": "x.ldif", "containers": ["DC=contoso,DC=com"]}
HR = {"name": "hr", "type": "sql", "conn_id": "hr_db", "table": "hr.employees",
      "join": {"profile_property": "user_name", "source_column": "login"},
      "mappings": {"employee_id": "emp_no"}}
CUSTOM = {"employee_id": {"max_length": 16}, "skills_hr": {"multi_valued": True}, "badge": {"type": "binary"}}


def load(tmp_path, *systems, custom=None, directory=None):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"directories": [{**DIRECTORY, **(directory or {})}],
                                    "custom_properties": CUSTOM if custom is None else custom,
                                    "business_systems": list(systems)}))
    return load_settings(path)


def test_defaults_and_shorthand(tmp_path):
    bs = load(tmp_path, HR).business_system("hr")
    assert bs.join.normalize == ("strip", "lower")
    assert bs.mappings["employee_id"].column == "emp_no"
    assert bs.columns == ["login", "emp_no"]
    assert bs.gates.max_clear_percent == 10.0
    assert load(tmp_path).business_systems == ()


def test_a_file_source(tmp_path):
    bs = load(tmp_path, {"name": "hr", "type": "file", "path": "hr.parquet", "join": {"source_column": "upn"},
                         "mappings": {"skills_hr": {"column": "skill"}}}).business_systems[0]
    assert (bs.format, bs.join.profile_property) == ("auto", "account_name")


@pytest.mark.parametrize(("change", "key", "problem"), [
    ({"join": {"source_column": "x", "normalize": ["trim"]}}, "business_systems[0].join.normalize[0]",
     "'strip', 'lower', 'domain_user', 'upn_local_part', 'claims' or 'strip_leading_zeros'"),
    ({"table": None}, "business_systems[0]", "exactly one of 'table' and 'query'"),
    ({"query": "SELECT 1"}, "business_systems[0]", "exactly one of 'table' and 'query'"),
    ({"table": "hr.employees; DROP TABLE x"}, "business_systems[0].table", "not a table or view name"),
    ({"conn_id": None}, "business_systems[0]", "needs 'conn_id'"),
    ({"conn_id": None, "url": "postgresql://hr:secret@db/hr"}, "business_systems[0].url", "holds a password"),
    ({"type": "file", "conn_id": None, "table": None}, "business_systems[0]", "needs 'path'"),
    ({"type": "file", "path": "x.csv"}, "business_systems[0]", "conn_id, table are for sql connections"),
    ({"join": {"profile_property": "user_name"}}, "business_systems[0]", "join.source_column"),
    ({"mappings": {}}, "business_systems[0]", "at least one property"),
    ({"name": "HR"}, "business_systems[0].name", "valid connection name"),
    ({"name": "contoso"}, "(top level)", "unique across directories and business_systems"),
    ({"mappings": {"shoe_size": "x"}}, "business_systems[0].mappings", "unknown profile properties ['shoe_size']"),
    ({"mappings": {"title": "job"}}, "business_systems[0].mappings", "'title' is fed by directory 'contoso'"),
    ({"join": {"profile_property": "nickname", "source_column": "x"}}, "business_systems[0].join.profile_property",
     "unknown profile property 'nickname'"),
    ({"join": {"profile_property": "skills_hr", "source_column": "x"}},
     "business_systems[0].join.profile_property", "multi-valued"),
    ({"join": {"profile_property": "employee_id", "source_column": "x"}},
     "business_systems[0].join.profile_property", "fed by business system 'hr'"),
    ({"join": {"profile_property": "picture", "source_column": "x"}},
     "business_systems[0].join.profile_property", "binary"),
    ({"gates": {"max_clear_percent": 101}}, "business_systems[0].gates.max_clear_percent", "less than or equal"),
])
def test_invalid_business_systems_name_the_key(tmp_path, change, key, problem):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {**HR, **change})
    assert err.value.key == key
    assert problem in err.value.problem


def test_one_owner_per_property(tmp_path):
    erp = {**HR, "name": "erp"}
    with pytest.raises(ConfigError, match="already fed by business system 'hr'") as err:
        load(tmp_path, HR, erp)
    assert err.value.key == "business_systems[1].mappings"


def test_multi_valued_properties_only_from_a_business_system(tmp_path):
    with pytest.raises(ConfigError, match=r"multi-valued properties \['skills_hr'\] can only be fed by a business"):
        load(tmp_path, directory={"mappings": {"skills_hr": "otherTelephone"}})
    with pytest.raises(ConfigError, match="a binary property cannot be multi_valued"):
        load(tmp_path, custom={"x": {"type": "binary", "multi_valued": True}})
