"""Never a mass delete from a bad import (issue 6, item 5), on LDIF connections.

The failures an LDAP server produces — a narrowed base DN, lost read access, a
server that dies during a paged search — are reproduced here with LDIF files
and a reader that fails part-way; after each one the profile store and the
committed state must be exactly as they were. The same scenarios against a real
slapd belong in tests/integration once the LDAP reader (issue 3) lands.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from profile_sync.directory.entries import Entry
from profile_sync.directory.errors import DirectoryError, DirectoryUnavailableError
from profile_sync.gates import GateFailedError
from profile_sync.run.local import run_sync
from tests.helpers.directory import USERS, FakeDirectory
from tests.helpers.sync import SyncHarness

N = 40
SALES = f"OU=Sales,{USERS}"


def forty() -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, N + 1):
        d.person(i, f"Person {i}", ou=SALES if i <= 10 else USERS, upn=f"p{i}@contoso.com", title=f"Title {i}",
                 proxyAddresses=[f"SMTP:p{i}@contoso.com"])
    d.group(1000, "Everyone", [f"CN=Person {i},{SALES if i <= 10 else USERS}" for i in range(1, N + 1)])
    return d


@pytest.fixture
def synced(tmp_path):
    h = SyncHarness(tmp_path)
    d = forty()
    h.sync(d)
    assert len(h.profiles()) == N
    return h, d


def state(h: SyncHarness) -> tuple:
    people = h.profiles().sort_index().to_dict("records")
    members = sorted(map(tuple, h.memberships().to_numpy().tolist()))
    return people, members, h.committed_manifest()


def last_run(h: SyncHarness) -> dict:
    return h.last_run()


def assert_nothing_written(h: SyncHarness, before: tuple, failed_step: str) -> None:
    assert state(h) == before
    doc = last_run(h)
    assert doc["status"] == "failed"
    failed = [s["step"] for s in doc["steps"] if s["status"] == "failed"]
    assert failed == [failed_step]
    assert not any(s["step"] == "export_profile_store" for s in doc["steps"])
    assert h.inspector().lease.holder() is None


def test_an_ldif_file_cut_mid_record_fails_the_import(synced):
    h, d = synced
    before = state(h)
    d.write(h.ldif)
    text = h.ldif.read_text()
    cut = text.index("userAccountControl", len(text) // 2) + len("userAccountCon")
    h.ldif.write_text(text[:cut])  # the copy stopped mid-line
    with pytest.raises(DirectoryError, match="not valid LDIF"):
        run_sync(h.context())
    assert_nothing_written(h, before, "import_directory")


def test_an_ldif_file_cut_between_records_is_stopped_by_the_gate(synced):
    h, d = synced
    before = state(h)
    d.write(h.ldif)
    text = h.ldif.read_text()
    cut = text.index("dn: CN=Person 16,")  # a well-formed file with the first 15 people only
    h.ldif.write_text(text[:cut])
    with pytest.raises(GateFailedError, match="source_shrink") as err:
        run_sync(h.context())
    assert "people_deletes" in str(err.value)
    assert_nothing_written(h, before, "validate_export")


class DyingReader:
    """Reads the LDIF, then the 'server' goes away part-way through the result set."""

    def __init__(self, real, after: int, error: Exception) -> None:
        self.real, self.after, self.error = real, after, error

    def __getattr__(self, name: str):
        return getattr(self.real, name)  # watermark, delta reads: the real reader's

    def file_hash(self) -> str:
        return "changed"  # never taken for an unchanged source

    def read_full(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        for n, entry in enumerate(self.real.read_full(attributes)):
            if n == self.after:
                raise self.error
            yield entry


@pytest.mark.parametrize("error", [
    DirectoryUnavailableError("connection reset by peer during a paged search"),
    ConnectionResetError(104, "Connection reset by peer"),
])
def test_a_reader_that_dies_part_way_commits_nothing(synced, monkeypatch, error):
    from profile_sync.run import steps

    h, d = synced
    before = state(h)
    d.entries[f"CN=Person 40,{USERS}"]["title"] = ["not applied"]
    real = steps.make_reader
    monkeypatch.setattr(steps, "make_reader", lambda directory, ctx: DyingReader(real(directory, ctx), 12, error))
    with pytest.raises(type(error)):
        h.sync(d, mode="incremental")
    assert_nothing_written(h, before, "import_directory")
    # The next run, with the server back, converges.
    monkeypatch.setattr(steps, "make_reader", real)
    h.sync(d)
    assert h.profile("p40@contoso.com")["title"] == "not applied"
    assert (h.profiles()["state"] == "active").all()


def test_a_narrowed_base_dn_is_stopped_and_an_override_lets_an_intended_one_through(synced):
    h, d = synced
    before = state(h)
    h.write_config(directory={"containers": [SALES]})  # 10 of 40 people left in scope
    with pytest.raises(GateFailedError) as err:
        h.sync(d, mode="incremental")
    assert "source_shrink [contoso]: 10 people in scope, 40 at the last good import: 30 fewer (75.0%)" in str(err.value)
    assert_nothing_written(h, before, "validate_export")
    assert "containers" in last_run(h)["full_reason"]

    d.write(h.ldif)
    ctx = h.context()
    ctx.override_gates, ctx.override_reason, ctx.triggering_user = True, "scope reduced to Sales", "admin"
    out = run_sync(ctx)
    assert out["export_profile_store"]["deletes"] == 30
    assert last_run(h)["overrides"][0]["by"] == "admin"


def test_lost_read_access_to_an_ou_is_stopped(synced):
    h, d = synced
    before = state(h)
    for i in range(11, N + 1):  # an ACL now hides every person outside OU=Sales
        d.remove(f"CN=Person {i},{USERS}")
    with pytest.raises(GateFailedError, match="source_shrink"):
        h.sync(d)
    assert_nothing_written(h, before, "validate_export")


def test_lost_read_access_to_attributes_is_stopped(synced):
    h, d = synced
    before = state(h)
    for record in d.entries.values():  # an ACL now hides title and proxyAddresses
        record.pop("title", None)
        record.pop("proxyAddresses", None)
    with pytest.raises(GateFailedError, match="property_blanking") as err:
        h.sync(d)
    for prop in ("title", "job_title", "work_email"):
        assert f"{prop} would be emptied for 40 profiles" in str(err.value)
    assert_nothing_written(h, before, "validate_export")


def test_an_empty_import_cannot_be_overridden(synced):
    h, d = synced
    before = state(h)
    FakeDirectory().write(h.ldif)  # the bind works but sees nothing
    ctx = h.context()
    ctx.override_gates, ctx.override_reason = True, "I am sure"
    with pytest.raises(GateFailedError, match="does not cover source_not_empty"):
        run_sync(ctx)
    assert_nothing_written(h, before, "validate_export")
