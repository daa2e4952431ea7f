"""Never a mass delete from a bad import, against a real slapd (issue 6, item 5).

A narrowed base DN, lost read access and a server killed during a paged
search must each leave the profile store unchanged, each failing with the error
that says what happened. The LDIF versions of these scenarios run in
tests/unit/gates/test_no_mass_delete.py. They use only the engine's interfaces:
the configuration (``type: ldap``, ``conn_id``, ``containers``), the run
context's connection resolver (``ConnectionInfo``), ``steps.make_reader``, and
the state store's and run history's APIs.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from profile_sync.config.loader import load_settings
from profile_sync.directory.errors import DirectoryError, DirectoryUnavailableError
from profile_sync.gates import GateFailedError
from profile_sync.run.context import ConnectionInfo, RunContext
from profile_sync.run.local import run_sync
from tests.helpers.sync import SyncHarness

BASE = "dc=example,dc=org"
PEOPLE_OU = f"ou=people,{BASE}"
SALES_OU = f"ou=sales,{PEOPLE_OU}"
PEOPLE = 1500  # more than one page at any usual page size, so a search killed after one page is cut short
SALES = 100


def _entries() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [(SALES_OU, {"objectClass": ["top", "organizationalUnit"], "ou": "sales"})]
    for i in range(PEOPLE):
        uid = f"p{i:04d}"
        out.append((f"uid={uid},{SALES_OU if i < SALES else PEOPLE_OU}", {
            "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
            "uid": uid, "cn": f"Person {i:04d}", "sn": f"Person{i:04d}", "mail": f"{uid}@example.org",
            "title": "Engineer"}))
    return out


@pytest.fixture
def slapd(slapd_factory):
    server = slapd_factory(base_dn=BASE)
    server.load_entries(_entries())
    server.start()
    server.add_bind_user("sync", "sync-pw", "reader")
    server.add_bind_user("blind", "blind-pw", "no-people")
    return server


def _directory(containers: list[str]) -> dict[str, Any]:
    return {"type": "ldap", "conn_id": "slapd_test", "preset": "inetorgperson", "containers": containers}


def _context(h: SyncHarness, server, user: str = "sync", password: str = "sync-pw") -> RunContext:
    dn = server.bind_user_dn(user, "no-people" if user == "blind" else "reader")
    ctx = h.context()
    ctx.resolve_connection = lambda conn_id: ConnectionInfo(
        conn_id=conn_id, uri=server.uri, host="127.0.0.1", port=server.port, login=dn, password=password)
    return ctx


def _state(h: SyncHarness) -> tuple:
    return h.profiles().sort_index().to_dict("records"), h.committed_manifest()


def _failed_step(h: SyncHarness) -> str:
    doc = h.last_run()
    assert doc["status"] == "failed"
    (step,) = [s["step"] for s in doc["steps"] if s["status"] == "failed"]
    return step


@pytest.fixture
def synced(tmp_path, slapd):
    h = SyncHarness(tmp_path, directory=_directory([PEOPLE_OU]))
    run_sync(_context(h, slapd))
    assert (h.profiles()["state"] == "active").sum() == PEOPLE
    return h, slapd


def test_a_narrowed_base_dn_changes_nothing(synced):
    h, server = synced
    before = _state(h)
    h.write_config(directory=_directory([SALES_OU]))  # 100 of 1,500 people left in scope
    with pytest.raises(GateFailedError, match="source_shrink"):
        run_sync(_context(h, server))
    assert _failed_step(h) == "validate_export"
    assert _state(h) == before


def test_lost_read_access_changes_nothing(synced):
    h, server = synced
    before = _state(h)
    with pytest.raises(DirectoryError) as err:  # slapd hides what the account may not read: noSuchObject
        run_sync(_context(h, server, "blind", "blind-pw"))
    assert err.value.terminal and "noSuchObject (32)" in str(err.value)
    assert "may not see it" in str(err.value)  # the message says the rights may be why
    assert _failed_step(h) == "import_directory"
    assert _state(h) == before


class _KillingReader:
    """The real reader; slapd is killed (SIGKILL) as soon as the first entry arrives."""

    def __init__(self, real: Any, server: Any) -> None:
        self._real, self._server = real, server
        self.after_kill = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def read_full(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for n, entry in enumerate(self._real.read_full(*args, **kwargs)):
            if n == 0:
                self._server.kill()
            else:
                self.after_kill += 1
            yield entry


def test_slapd_killed_during_a_paged_search_changes_nothing(synced, monkeypatch):
    from profile_sync.run import steps

    h, server = synced
    conn = server.connect()
    conn.modify(f"uid=p0500,{PEOPLE_OU}", {"title": [("MODIFY_REPLACE", ["Changed"])]})
    conn.unbind()
    before = _state(h)
    real = steps.make_reader
    readers: list[_KillingReader] = []

    def killing(directory, ctx):  # noqa: ANN001, ANN202
        readers.append(_KillingReader(real(directory, ctx), server))
        return readers[-1]

    monkeypatch.setattr(steps, "make_reader", killing)
    with pytest.raises(DirectoryUnavailableError) as err:  # transient: Airflow retries the step
        run_sync(_context(h, server))
    assert not err.value.terminal
    assert readers and readers[0].after_kill < PEOPLE - 1, "the reader read every entry before the server died"
    assert _failed_step(h) == "import_directory"
    assert _state(h) == before

    # The server comes back: the next run converges.
    monkeypatch.setattr(steps, "make_reader", real)
    server.start()
    run_sync(_context(h, server))
    people = h.profiles()
    assert (people["state"] == "active").sum() == PEOPLE
    assert people.set_index("user_name").loc["p0500", "title"] == "Changed"

