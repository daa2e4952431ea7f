"""``python -m profile_sync.sample``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from profile_sync.sample import generate, render_ldif
from profile_sync.sample.__main__ import main


def test_writes_the_file_and_reports_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "sample.ldif"
    status = main(["--people", "120", "--groups", "9", "--seed", "5",
                   "--flavour", "inetorgperson", "--out", str(out)])
    assert status == 0
    assert out.read_bytes() == render_ldif(generate(120, 9, seed=5), "inetorgperson")
    report = capsys.readouterr().out
    assert "wrote 120 people, 9 groups" in report and str(out) in report


def test_stdout_gets_the_ldif_and_stderr_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--people", "12", "--groups", "2", "--out", "-", "--no-version-line"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# Profile Sync sample directory")
    assert "wrote 12 people, 2 groups" in captured.err


@pytest.mark.parametrize("argv", [["--people", "-1", "--out", "x"],
                                  ["--flavour", "openldap", "--out", "x"], []])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2


def test_runs_as_a_module(tmp_path: Path) -> None:
    include = Path(__file__).resolve().parents[3] / "include"
    env = {**os.environ, "PYTHONPATH": str(include)}
    out = tmp_path / "s.ldif"
    done = subprocess.run(
        [sys.executable, "-m", "profile_sync.sample", "--people", "30", "--groups", "3",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 30 people, 3 groups" in done.stdout
    assert out.read_bytes().startswith(b"version: 1\n")
