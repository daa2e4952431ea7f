"""tests/servers/install.sh waits while another apt/dpkg holds its lock (bounded) instead of failing at once.

``retry_on_lock`` is run from the script itself (sourced: it then only defines its functions) around a
command that behaves as apt-get does when another apt holds the lock: exit 100, "Could not get lock".
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "servers" / "install.sh"
LOCKED = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"


def retry(tmp_path: Path, fails: int, message: str, wait: int = 30) -> tuple[int, str, str]:
    """Run retry_on_lock around a command failing ``fails`` times with ``message``; (rc, log, stderr)."""
    counter, log = tmp_path / "count", tmp_path / "apt.log"
    fake = tmp_path / "fake-apt-get"
    fake.write_text(f"""#!/usr/bin/env bash
n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}
if (( n <= {fails} )); then echo "{message}" >&2; exit 100; fi
echo "installed on attempt $n"
""")
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; LOCK_WAIT={wait}; LOCK_POLL=0.1; retry_on_lock "{log}" "{fake}"'],
        capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, log.read_text(), done.stderr


def test_sourcing_the_script_installs_nothing():
    done = subprocess.run(["bash", "-c", f'source "{SCRIPT}"; type retry_on_lock >/dev/null && echo defined'],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "defined"  # main did not run: no package listing


def test_a_held_lock_is_waited_for(tmp_path):
    rc, log, err = retry(tmp_path, fails=3, message=LOCKED)
    assert rc == 0
    assert log.count("Could not get lock") == 3 and "installed on attempt 4" in log
    assert err.count("another apt/dpkg holds its lock; waiting") == 3


def test_other_failures_are_not_retried(tmp_path):
    rc, log, err = retry(tmp_path, fails=5, message="E: Unable to locate package slapd-nonexistent")
    assert rc == 100 and log.count("Unable to locate package") == 1 and "waiting" not in err


def test_the_wait_is_bounded(tmp_path):
    rc, log, _ = retry(tmp_path, fails=10_000, message=LOCKED, wait=1)
    assert rc == 100  # apt-get's own exit code once the wait is over
    assert 1 <= log.count("Could not get lock") < 10_000
