"""The commit protocol and the lease, on every combination the product supports.

Objects in a local folder or in a real S3-compatible server (moto's, from tests/servers);
manifests, parts and the lease in SQLite or in a real PostgreSQL. Several tests stand in for
two workers with two separate store objects (each with its own engine where it matters), as
two tasks on two machines would be.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pandas as pd
import pytest
from sqlalchemy import create_engine

from profile_sync.profile_store.engine import make_engine
from profile_sync.state.coordination import Coordination
from profile_sync.state.errors import LeaseLostError, StateConflictError, StateError
from profile_sync.state.lease import Lease
from profile_sync.state.location import Location
from profile_sync.state import patches
from profile_sync.state.patches import Patch
from profile_sync.state.store import CHECK_PATCHES, OBJECTS, StateStore, object_names

BACKENDS = ["file-sqlite", "s3-sqlite", "file-postgresql", "s3-postgresql"]


@pytest.fixture(params=BACKENDS)
def env(request, tmp_path):
    """(make a StateStore, make a Lease) sharing one state store and one coordination database."""
    objects, db = request.param.split("-")
    url = f"sqlite:///{tmp_path / 'coord.db'}" if db == "sqlite" else request.getfixturevalue("postgres_url")
    if objects == "file":
        def location() -> Location:
            return Location.from_url(f"file://{tmp_path / 'state'}", tmp_path)
    else:
        s3 = request.getfixturevalue("s3_server")
        bucket = s3.bucket(f"state-{uuid.uuid4().hex[:12]}")
        url_s3 = f"s3://{bucket}/profile-sync"

        def location() -> Location:
            return Location.from_url(url_s3, tmp_path, "s3_conn", lambda u, c: s3.filesystem())
    name = f"test-store-{uuid.uuid4().hex[:8]}"

    def store() -> StateStore:
        return StateStore(location(), Coordination(make_engine(url), name))

    def lease(ttl: float = 60, is_active=None) -> Lease:  # noqa: ANN001
        return Lease(Coordination(make_engine(url), name), ttl, is_active)

    yield store, lease
    make_engine(url).dispose()


def _objects(store: StateStore) -> set[str]:
    return {o.name for o in store.location.list("objects")}


def _run(store: StateStore, lease, run_key: str, part: str = "step"):  # noqa: ANN001, ANN202
    assert lease().try_acquire(run_key).acquired
    return store.open_run(run_key, part, owner=run_key)


def test_a_run_that_never_promotes_leaves_the_committed_state(env):
    make, lease = env
    store = make()
    run = _run(store, lease, "dag/r1")
    run.write_frame("cs/x", pd.DataFrame({"a": [1]}))
    run.commit_step(base_version=0)
    assert store.promote("dag/r1", "dag/r1") == 1
    assert lease().release("dag/r1")
    failed = _run(make(), lease, "dag/r2")
    failed.write_frame("cs/x", pd.DataFrame({"a": [2]}))
    failed.commit_step(base_version=1)
    make().discard_run("dag/r2")
    assert make().collect_garbage() == 1
    fresh = make()
    assert fresh.read_committed_frame("cs/x")["a"].tolist() == [1]
    assert _objects(fresh) == {n for e in fresh.committed_manifest()["frames"].values() for n in object_names(e)}


def test_a_step_sees_earlier_steps_parts_and_its_retry_starts_clean(env):
    make, lease = env
    first = _run(make(), lease, "dag/r1", "import")
    first.write_frame("a", pd.DataFrame({"v": [1]}))
    first.commit_step(base_version=0)
    second = make().open_run("dag/r1", "sync", owner="dag/r1")
    assert second.read_frame("a")["v"].tolist() == [1]
    second.write_frame("b", pd.DataFrame({"v": [2]}))  # the step dies before committing its part
    retry = make().open_run("dag/r1", "sync", owner="dag/r1")
    assert retry.read_frame("a")["v"].tolist() == [1]
    assert retry.read_frame("b") is None
    assert make().read_committed_frame("a") is None  # nothing is visible outside the run before promotion


def test_parallel_tasks_of_one_run_never_lose_each_others_part(env):
    """Two mapped import tasks open the run at the same moment and commit in either order."""
    make, lease = env
    assert lease().try_acquire("dag/r1").acquired
    a = make().open_run("dag/r1", "import_directory[a]", owner="dag/r1")
    b = make().open_run("dag/r1", "import_directory[b]", owner="dag/r1")
    a.write_frame("cs/a", pd.DataFrame({"v": ["a"]}))
    b.write_frame("cs/b", pd.DataFrame({"v": ["b"]}))
    a.set_value("watermark/a", 1)
    b.set_value("watermark/b", 2)
    b.commit_step()
    a.commit_step()
    after = make().open_run("dag/r1", "synchronize", owner="dag/r1")
    assert after.read_frame("cs/a")["v"].tolist() == ["a"] and after.read_frame("cs/b")["v"].tolist() == ["b"]
    make().promote("dag/r1", "dag/r1")
    committed = make().committed_manifest()
    assert committed["values"] == {"watermark/a": 1, "watermark/b": 2}
    assert set(committed["frames"]) == {"cs/a", "cs/b"}


def test_promote_refuses_when_another_run_committed_meanwhile(env):
    make, lease = env
    r1 = _run(make(), lease, "dag/r1")
    r1.commit_step(base_version=0)
    r2 = make().open_run("dag/r2", "step", owner="dag/r2")
    make().promote("dag/r1", "dag/r1")
    assert lease().release("dag/r1")
    assert lease().try_acquire("dag/r2").acquired
    r2.commit_step(base_version=0)
    with pytest.raises(StateConflictError, match="version 1 was committed since"):
        make().promote("dag/r2", "dag/r2")
    assert make().committed_manifest()["version"] == 1


def test_a_run_that_lost_the_lease_can_neither_commit_a_step_nor_promote(env):
    make, lease = env
    zombie = _run(make(), lease, "dag/slow")
    zombie.commit_step(base_version=0)
    assert lease().release("dag/slow")  # as if it had been taken over
    assert lease().try_acquire("dag/next").acquired
    zombie.write_frame("cs/x", pd.DataFrame({"a": [1]}))
    with pytest.raises(LeaseLostError, match="held by 'dag/next'"):
        zombie.commit_step()
    with pytest.raises(LeaseLostError):
        make().promote("dag/slow", "dag/slow")
    assert make().committed_manifest()["version"] == 0


def test_strings_read_back_as_objects_with_none(env):
    make, lease = env
    run = _run(make(), lease, "dag/r1")
    run.write_frame("f", pd.DataFrame({"s": ["x", None]}, dtype=object))
    assert run.read_frame("f")["s"].tolist() == ["x", None]


def test_a_step_can_read_only_the_columns_it_needs(env):
    make, lease = env
    run = _run(make(), lease, "dag/r1")
    run.write_frame("ps/people", pd.DataFrame({"profile_id": ["a"], "state": ["active"], "picture": [b"\xff"]}))
    frame = run.read_frame("ps/people", ["profile_id", "state", "not_there"])
    assert list(frame.columns) == ["profile_id", "state"]
    assert list(run.read_frame("ps/people").columns) == ["profile_id", "state", "picture"]


def test_a_step_can_read_only_the_rows_it_needs(env):
    make, lease = env
    run = _run(make(), lease, "dag/r1")
    people = pd.DataFrame({"profile_id": ["a", "b", "c", "d"], "state": ["active", "deleted", "active", None],
                           "picture": [b"\x01", None, b"\x03", b"\x04"]})
    run.write_frame("ps/people", people)
    rows = run.read_frame("ps/people", where=("profile_id", {"c", "a", "nobody"}))
    whole = run.read_frame("ps/people")
    pd.testing.assert_frame_equal(rows, whole.iloc[[0, 2]].reset_index(drop=True))  # as read whole, in order
    assert rows["profile_id"].tolist() == ["a", "c"] and rows["picture"].tolist() == [b"\x01", b"\x03"]
    both = run.read_frame("ps/people", ["profile_id", "state"], where=("state", ["deleted"]))
    assert both.to_dict("records") == [{"profile_id": "b", "state": "deleted"}]
    assert list(run.read_frame("ps/people", where=("profile_id", set())).columns) == list(people.columns)
    assert run.read_frame("ps/people", where=("profile_id", set())).empty
    assert run.read_frame("ps/people", where=("not_there", {"a"})).empty  # no such column: no such row
    run.write_frame("ps/empty", pd.DataFrame({"profile_id": pd.Series([], dtype=object)}))
    assert run.read_frame("ps/empty", where=("profile_id", {"a"})).empty


def test_an_object_missing_from_the_store_is_named(env):
    make, lease = env
    store = make()
    run = _run(store, lease, "dag/r1")
    run.write_frame("mv/people", pd.DataFrame({"mv_id": ["a"]}))
    name = run.manifest["frames"]["mv/people"]
    store.location.delete(OBJECTS, [name])
    with pytest.raises(StateError, match=f"object {OBJECTS}/{name} is missing"):
        run.read_frame("mv/people")
    with pytest.raises(StateError, match="is missing"):
        run.read_frame("mv/people", ["mv_id"], where=("mv_id", {"a"}))


# -- frames written as patches (state/patches.py) ------------------------------------------
def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"anchor": [f"a{i:04d}" for i in range(n)],
                         "name": pd.Series([None if i % 7 == 0 else f"Person {i} é" for i in range(n)], dtype=object),
                         "number": range(n),
                         "member": [[f"cn=g{i % 3}", f"cn=x{i}"] if i % 5 else [] for i in range(n)]})


def _commit(make, lease, run_key: str, frame: pd.DataFrame, patch: Patch | None = None):  # noqa: ANN001, ANN202
    store = make()
    run = _run(store, lease, run_key)
    run.write_frame("cs/x", frame, patch)
    run.commit_step(base_version=store.committed_manifest()["version"])
    store.promote(run_key, run_key)
    assert lease().release(run_key)
    return make().committed_manifest()["frames"]["cs/x"]


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v for k, v in r.items()}
            for r in frame.to_dict("records")]


def test_a_delta_writes_only_its_changed_rows_and_reads_back_the_same_frame(env):
    make, lease = env
    first = _frame(200)
    assert isinstance(_commit(make, lease, "dag/r1", first), str)
    changed = first.drop(index=[3, 150]).copy()  # two deleted
    changed.loc[10, "name"] = "Renamed"  # one changed in place
    moved = changed.loc[[20]].assign(number=-20)  # one changed and moved last (as a delta re-appends it)
    new = pd.DataFrame({"anchor": ["new"], "name": pd.Series([None], dtype=object), "number": [999],
                        "member": [["cn=g1"]]})
    changed = pd.concat([changed.drop(index=[20]), moved, new], ignore_index=True)
    entry = _commit(make, lease, "dag/r2", changed, Patch("anchor", appended=2, replaced=["a0010", "nobody"]))
    assert isinstance(entry, list) and len(entry) == 2 and entry[1].endswith(".patch.parquet")
    patch_rows = make().location.read_table(f"{OBJECTS}/{entry[1]}")
    assert patch_rows.num_rows == 5  # replaced 1, appended 2, deleted 2: not 199 rows
    store = make()
    assert _records(store.read_committed_frame("cs/x")) == _records(changed)
    assert store.read_committed_frame("cs/x", ["name"]).columns.tolist() == ["name"]
    assert store.read_committed_frame("cs/x", ["name"])["name"].tolist() == changed["name"].tolist()
    rows = store.read(store.committed_manifest(), "cs/x", ["number"], where=("anchor", {"a0020", "a0003", "new"}))
    assert rows["number"].tolist() == [-20, 999]  # in the frame's order; a deleted row is not there
    assert make().collect_garbage() == 0  # the base is referenced by the chain
    assert _objects(make()) == set(entry)
    again = changed.copy()
    again.loc[0, "number"] = -1
    entry2 = _commit(make, lease, "dag/r3", again, Patch("anchor", replaced=["a0000"]))
    assert entry2[:2] == entry and len(entry2) == 3
    assert _records(make().read_committed_frame("cs/x")) == _records(again)
    whole = _commit(make, lease, "dag/r4", again)  # a full run writes whole: the chain becomes garbage
    assert isinstance(whole, str)
    assert make().collect_garbage() == 3 and _objects(make()) == {whole}


@pytest.mark.parametrize("case", ["order", "duplicate keys", "columns", "type", "too many", "appended", "no key"])
def test_a_patch_whose_description_does_not_hold_is_written_whole(env, case):
    make, lease = env
    first = _frame(100)
    _commit(make, lease, "dag/r1", first)
    frame, patch = first.copy(), Patch("anchor", replaced=["a0001"])
    if case == "order":
        frame = first.iloc[[1, 0, *range(2, 100)]].reset_index(drop=True)
    elif case == "duplicate keys":
        frame = pd.concat([first, first.iloc[[5]]], ignore_index=True)
        patch = Patch("anchor", appended=1)
    elif case == "columns":
        frame = first.assign(extra=pd.Series("x", index=first.index, dtype=object))
    elif case == "type":
        frame = first.assign(number=pd.Series([f"n{i}" for i in range(100)], dtype=object))
    elif case == "too many":
        patch = Patch("anchor", replaced=list(first["anchor"][:30]))
    elif case == "appended":
        patch = Patch("anchor", appended=101)
    elif case == "no key":
        patch = Patch("not_a_column")
    entry = _commit(make, lease, "dag/r2", frame, patch)
    assert isinstance(entry, str)
    assert _records(make().read_committed_frame("cs/x")) == _records(frame)


def test_a_chain_is_written_whole_again_after_max_chain_patches(env):
    make, lease = env
    frame = _frame(100)
    _commit(make, lease, "dag/r0", frame)
    lengths = []
    for i in range(1, patches.MAX_CHAIN + 2):
        frame = frame.copy()
        frame.loc[i, "number"] = -i
        entry = _commit(make, lease, f"dag/r{i}", frame, Patch("anchor", replaced=[frame.at[i, "anchor"]]))
        lengths.append(len(entry) if isinstance(entry, list) else 1)
        assert _records(make().read_committed_frame("cs/x")) == _records(frame)
    assert lengths == [*range(2, patches.MAX_CHAIN + 2), 1]


def test_a_step_whose_patch_misdescribes_its_frame_fails_when_patches_are_checked(env, monkeypatch):
    make, lease = env
    first = _frame(100)
    _commit(make, lease, "dag/r1", first)
    frame = first.copy()
    frame.loc[4, "name"] = "not declared"
    run = _run(make(), lease, "dag/r2")
    monkeypatch.setenv(CHECK_PATCHES, "1")
    with pytest.raises(StateError, match="patch of 'cs/x' does not reproduce"):
        run.write_frame("cs/x", frame, Patch("anchor", replaced=["a0005"]))
    monkeypatch.setenv(CHECK_PATCHES, "0")  # unchecked, the store trusts the step (what production does)
    run.write_frame("cs/x", frame, Patch("anchor", replaced=["a0005"]))
    assert run.read_frame("cs/x")["name"][4] == first["name"][4]


# -- the lease -------------------------------------------------------------------------------
def test_lease_excludes_a_second_owner_and_is_released(env):
    _, lease = env
    assert lease().try_acquire("dag_a/run").acquired
    refused = lease().try_acquire("dag_b/run")  # another DAG, the same run id: another owner
    assert not refused.acquired and refused.holder["owner"] == "dag_a/run"
    assert lease().try_acquire("dag_a/run").acquired  # renewal (a retried task of the same run)
    assert not lease().release("dag_b/run")
    assert lease().release("dag_a/run")
    assert lease().try_acquire("dag_b/run").acquired


def test_an_expired_lease_is_taken_over_only_when_its_run_is_not_running(env):
    _, lease = env
    assert lease(ttl=0.5).try_acquire("dag/dead").acquired
    time.sleep(0.7)
    between_tasks = lease(is_active=lambda key: key == "dag/dead").try_acquire("dag/new")
    assert not between_tasks.acquired and between_tasks.holder["between_tasks"]
    taken = lease(is_active=lambda key: False).try_acquire("dag/new")
    assert taken.acquired and taken.taken_from["owner"] == "dag/dead"
    assert lease().holder()["owner"] == "dag/new"
    with pytest.raises(LeaseLostError):
        lease().renew("dag/dead")


def test_a_heartbeat_keeps_a_long_step_holding_the_lease(env):
    _, lease = env
    short = lease(ttl=1.0)
    assert short.try_acquire("dag/long").acquired
    with short.heartbeat("dag/long") as beat:
        time.sleep(2.5)  # longer than the ttl: only the heartbeat keeps it
        assert not lease(ttl=1.0).try_acquire("dag/other").acquired
    assert beat.lost is None


def _race(url: str, name: str, owner: str, start: float, queue) -> None:  # noqa: ANN001 - in a child process
    engine = create_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
    lease = Lease(Coordination(engine, name), 60)
    while time.time() < start:
        time.sleep(0.001)
    try:
        queue.put((owner, lease.try_acquire(owner).acquired))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put((owner, repr(exc)))


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_racing_workers_never_both_hold_the_lease(db, tmp_path, request):
    """Eight processes (eight workers) ask for a free lease at the same instant: exactly one gets it."""
    url = f"sqlite:///{tmp_path / 'coord.db'}" if db == "sqlite" else request.getfixturevalue("postgres_url")
    name = "race"
    Coordination(make_engine(url), name).ensure()
    ctx = multiprocessing.get_context("fork")  # children build their own engines
    queue = ctx.Queue()
    start = time.time() + 3
    procs = [ctx.Process(target=_race, args=(url, name, f"dag/run-{i}", start, queue)) for i in range(8)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    winners = [owner for owner, won in results if won is True]
    assert all(won in (True, False) for _, won in results), results
    assert len(winners) == 1
    assert Lease(Coordination(make_engine(url), name)).holder()["owner"] == winners[0]
    make_engine(url).dispose()
