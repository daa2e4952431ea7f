"""Configuration: validated at load, errors name the file, the key and the problem."""

from __future__ import annotations

import pytest
import yaml

from profile_sync.config import ConfigError, load_settings, resolved_directories
from profile_sync.config.loader import DEFAULT_CONFIG, fingerprint

GOOD = {
    "directories": [{"name": "contoso", "type": "ldif", "path": "x.ldif", "containers": ["DC=contoso,DC=com"]}],
}


def write(tmp_path, doc):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def test_the_shipped_default_configuration_loads():
    settings = load_settings(DEFAULT_CONFIG)
    assert settings.directories[0].type == "ldif"
    assert settings.profile_store.url.startswith("sqlite:///")


def test_defaults_are_applied(tmp_path):
    s = load_settings(write(tmp_path, GOOD))
    d = resolved_directories(s)[0]
    assert d.anchor == "objectguid"
    assert d.mappings["work_email"].transform == "proxy_primary_smtp"
    assert s.deletion.disabled_accounts == "leave_scope"


@pytest.mark.parametrize(("doc", "key", "problem"), [
    ({}, "directories", "Field required"),
    ({"directories": [{**GOOD["directories"][0], "type": "ftp"}]}, "directories[0].type", "'ldif' or 'ldap'"),
    ({"directories": [{**GOOD["directories"][0], "containers": []}]}, "directories[0]", "containers"),
    ({"directories": [{**GOOD["directories"][0], "name": "Bad Name"}]}, "directories[0].name", "valid connection name"),
    ({"directories": [{**GOOD["directories"][0], "mappings": {"title": {"source": "title", "transform": "upper"}}}]},
     "directories[0].mappings.title.transform", "account_name"),
    ({"directories": [{**GOOD["directories"][0], "mappings": {"shoe_size": "x"}}]},
     "directories[0].mappings", "unknown profile properties ['shoe_size']"),
    ({"directories": [{**GOOD["directories"][0], "filter": "(department=x"}]}, "directories[0].filter",
     "invalid LDAP filter"),
    ({**GOOD, "state_store": {"url": "ftp://host/x"}}, "state_store.url", "must start with one of file://"),
        ({**GOOD, "state_store": {"url": "s3://key:secret@bucket/x"}}, "state_store.url", "must not hold credentials"),
    ({**GOOD, "deletion": {"disabled_accounts": "explode"}}, "deletion.disabled_accounts", "'leave_scope' or 'freeze'"),
    ({**GOOD, "surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ({"directories": GOOD["directories"] * 2}, "directories", "repeated: contoso"),
])
def test_errors_name_file_key_and_problem(tmp_path, doc, key, problem):
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message
    assert key in message
    assert problem in message


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "directories: [\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_environment_variable_selects_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, {"directories": [{**GOOD["directories"][0], "name": "from_env"}]})
    monkeypatch.setenv("PROFILE_SYNC_CONFIG", str(path))
    assert load_settings().directories[0].name == "from_env"


def test_mapping_shorthand_and_removal(tmp_path):
    doc = {"directories": [{**GOOD["directories"][0], "mappings": {"office": "l", "sip_address": None}}]}
    d = resolved_directories(load_settings(write(tmp_path, doc)))[0]
    assert d.mappings["office"].source == "l"
    assert "sip_address" not in d.mappings
    assert "l" in d.attributes


def test_fingerprint_changes_with_mappings_and_containers(tmp_path):
    base = fingerprint(load_settings(write(tmp_path, GOOD)))
    changed = {"directories": [{**GOOD["directories"][0], "containers": ["OU=x,DC=contoso,DC=com"]}]}
    assert fingerprint(load_settings(write(tmp_path, changed))) != base
    mapped = {"directories": [{**GOOD["directories"][0], "mappings": {"office": "l"}}]}
    assert fingerprint(load_settings(write(tmp_path, mapped))) != base
    assert fingerprint(load_settings(write(tmp_path, GOOD))) == base
