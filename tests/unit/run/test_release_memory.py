"""Steps run one after the other in one process hand back what the step before freed (``_gc.release_memory``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

INCLUDE = Path(__file__).resolve().parents[3] / "include"


def _python(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(INCLUDE), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_freed_heap_goes_back_to_the_system():
    # 300 MB of 1 kB objects (glibc's heap, not Python's small-object arenas), one in a hundred kept so the
    # heap cannot shrink by itself: without release_memory the process keeps the ~300 MB it freed.
    before, after = map(float, _python("""
        import os
        from profile_sync._gc import release_memory

        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

        blocks = [bytes(1000) + i.to_bytes(4, "little") for i in range(300_000)]
        kept = blocks[::100]
        del blocks
        before = rss()
        release_memory()
        print(before, rss())
    """))
    assert before > 250 and after < before - 200, (before, after)


def test_arrow_memory_cached_by_its_allocator_goes_back_to_the_system():
    # ~300 MB of Arrow buffers (computed by Arrow: allocated from its pool), freed: the pool keeps the pages.
    before, after = map(float, _python("""
        import os
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        from profile_sync._gc import release_memory

        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

        arrays = [pc.add(pa.array(np.arange(1_000_000, dtype=np.int64)), 1) for _ in range(40)]
        del arrays
        before = rss()
        release_memory()
        print(before, rss())
    """))
    assert before > 300 and after < before - 200, (before, after)


def test_the_runner_releases_after_every_step(monkeypatch):
    from profile_sync.run import local

    calls: list[str] = []
    monkeypatch.setattr(local, "release_memory", lambda: calls.append("released"))
    monkeypatch.setattr(local, "step_calls", lambda ctx: [("a", local.plan.FINISH, None), ("b", local.plan.FINISH, None)])
    monkeypatch.setattr(local.plan, "engine_function", lambda s: lambda ctx: calls.append("step") or {"ok": True})

    class Ctx:
        def fresh(self):  # noqa: ANN202
            return self

    assert local.run_steps(Ctx()) == {"a": {"ok": True}, "b": {"ok": True}}
    assert calls == ["step", "released", "step", "released"]
