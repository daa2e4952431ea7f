"""LDAP connection settings from an Airflow Connection: fields, extras, precedence, secrets kept out."""

from __future__ import annotations

import logging

import pytest
import yaml

from profile_sync.config import ConfigError, load_settings
from profile_sync.config.settings import DirectoryConnection
from profile_sync.directory.errors import DirectoryError
from profile_sync.directory.ldap import LdapConnectionSettings, effective_connection
from profile_sync.directory.ldap_filter import FilterError
from profile_sync.run.context import ConnectionInfo

SECRET = "S3cret-Passw0rd!"


def info(host="dc1.contoso.com", port=None, login="svc@contoso.com", password=SECRET, **extra) -> ConnectionInfo:
    return ConnectionInfo(conn_id="corp_ad", uri=f"ldap://svc:{SECRET}@{host}", host=host, port=port,
                          login=login, password=password, extra=extra)


def build(**kwargs) -> LdapConnectionSettings:
    return LdapConnectionSettings.from_connection_info("contoso", info(**kwargs))


def test_plain_ldap_defaults():
    s = build()
    assert (s.host, s.port, s.tls, s.verify, s.bind_dn) == ("dc1.contoso.com", 389, "none", True, "svc@contoso.com")
    assert (s.page_size, s.range_size, s.retries, s.server_type, s.delta_method) == (500, 1500, 3, "auto", "auto")
    assert s.password.get_secret_value() == SECRET
    assert s.url == "ldap://dc1.contoso.com:389"


@pytest.mark.parametrize(("kwargs", "tls", "port"), [
    ({"host": "ldaps://dc1.contoso.com"}, "ldaps", 636),
    ({"host": "ldaps://dc1.contoso.com:3269"}, "ldaps", 3269),
    ({"host": "ldap://dc1.contoso.com", "port": 1389}, "none", 1389),
    ({"use_ssl": True}, "ldaps", 636),
    ({"start_tls": True}, "start_tls", 389),
    ({"tls": "start_tls", "port": 10389}, "start_tls", 10389),
    ({"tls": "ldaps", "ca_file": "/etc/ssl/corp-ca.pem"}, "ldaps", 636),
])
def test_tls_modes_and_ports(kwargs, tls, port):
    s = build(**kwargs)
    assert (s.host, s.tls, s.port) == ("dc1.contoso.com", tls, port)


def test_extras_are_typed_and_split():
    s = build(base_dns="OU=People,DC=contoso,DC=com; OU=Groups,DC=contoso,DC=com", page_size=200,
              range_size=1000, receive_timeout=30, delta_method="usn", verify=False)
    assert s.extras.base_dns == ("OU=People,DC=contoso,DC=com", "OU=Groups,DC=contoso,DC=com")
    assert (s.page_size, s.range_size, s.receive_timeout, s.delta_method, s.verify) == (200, 1000, 30, "usn", False)


@pytest.mark.parametrize(("extra", "words"), [
    ({"pagesize": 100}, ["pagesize", "page_size"]),  # unknown key: the message lists the known ones
    ({"page_size": 0}, ["page_size"]),
    ({"tls": "ssl"}, ["tls", "ldaps", "start_tls"]),
    ({"delta_method": "poll"}, ["delta_method", "dirsync"]),
    ({"verify": False, "ca_file": "/x.pem"}, ["ca_file", "verify"]),
])
def test_bad_extras_name_the_connection_and_the_problem(extra, words):
    with pytest.raises(DirectoryError) as err:
        build(**extra)
    assert "corp_ad" in str(err.value)
    for w in words:
        assert w in str(err.value)
    assert SECRET not in str(err.value)


def test_host_is_required():
    with pytest.raises(DirectoryError, match="no host"):
        build(host="")
    with pytest.raises(DirectoryError, match="ftp"):
        build(host="ftp://dc1")


def test_password_never_in_repr_str_dump_or_logs(caplog):
    s = build()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("settings %s %r", s, s)
    for text in (repr(s), str(s), s.describe(), s.model_dump_json(), str(s.model_dump()), caplog.text,
                 repr(info())):
        assert SECRET not in text
    assert "svc@contoso.com" in s.describe()


def _conn(**kw) -> DirectoryConnection:
    return DirectoryConnection(name="contoso", type="ldap", conn_id="corp_ad", **kw)


def test_yaml_scope_wins_over_extras():
    s = build(base_dns=["OU=FromExtras,DC=contoso,DC=com"], filter="(department=*)",
              person_object_classes=["inetOrgPerson"])
    conn = effective_connection(_conn(containers=("OU=FromYaml,DC=contoso,DC=com",), filter="(title=*)",
                                      person_object_classes=("user",)), s)
    assert conn.containers == ("OU=FromYaml,DC=contoso,DC=com",)
    assert conn.filter == "(title=*)" and conn.person_object_classes == ("user",)


def test_extras_fill_what_the_yaml_leaves_out():
    s = build(base_dns=["OU=A,DC=contoso,DC=com", "OU=B,DC=contoso,DC=com"], filter="(department=*)",
              group_object_classes=["group", "groupOfNames"])
    conn = effective_connection(_conn(), s)
    assert conn.containers == ("OU=A,DC=contoso,DC=com", "OU=B,DC=contoso,DC=com")
    assert conn.filter == "(department=*)"
    assert conn.group_object_classes == ("group", "groupOfNames")
    assert conn.person_object_classes is None  # the preset's


def test_no_containers_anywhere_is_a_clear_error():
    with pytest.raises(DirectoryError, match="base_dns"):
        effective_connection(_conn(), build())


def test_a_bad_filter_in_the_extras_fails_early():
    with pytest.raises(FilterError, match="department"):
        effective_connection(_conn(), build(base_dns=["DC=x"], filter="(department=*"))


def _write(tmp_path, directory):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"directories": [directory]}))
    return path


def test_yaml_ldap_connection_may_leave_containers_to_the_extras(tmp_path):
    settings = load_settings(_write(tmp_path, {"name": "corp", "type": "ldap", "conn_id": "corp_ad"}))
    assert settings.directories[0].containers == ()
    with pytest.raises(ConfigError, match="containers"):
        load_settings(_write(tmp_path, {"name": "corp", "type": "ldif", "path": "x.ldif"}))


def test_write_back_mappings_must_be_reversible(tmp_path):
    ok = {"name": "corp", "type": "ldap", "conn_id": "corp_ad",
          "mappings": {"picture": {"source": "thumbnailPhoto", "direction": "both"}}}
    assert load_settings(_write(tmp_path, ok)).directories[0].mappings["picture"].direction == "both"
    bad = {**ok, "mappings": {"work_email": {"source": "proxyAddresses", "transform": "proxy_primary_smtp",
                                            "direction": "export"}}}
    with pytest.raises(ConfigError, match="cannot be reversed"):
        load_settings(_write(tmp_path, bad))
