"""Which rows Great Expectations validates: every row in a full run (the way to check everything again),
only what changed in an incremental run (the whole-set counts still see every row)."""

from __future__ import annotations

from tests.helpers.directory import USERS, team
from tests.helpers.sync import SyncHarness


def test_full_runs_validate_every_row_and_incremental_runs_the_changed_ones(tmp_path):
    h = SyncHarness(tmp_path)
    try:
        d = team(30)
        first = h.sync(d)["validate_export"]["timings"]["gx_rows"]
        d.entries[f"CN=Person 3,{USERS}"]["title"] = ["Changed"]
        incremental = h.sync(d, mode="incremental")["validate_export"]["timings"]["gx_rows"]
        d.entries[f"CN=Person 4,{USERS}"]["title"] = ["Changed too"]
        full = h.sync(d, mode="full")["validate_export"]["timings"]["gx_rows"]
        # Every row of the 30 people's connector space and profiles, each time (the first run also validates
        # the 30 profiles it adds; the second full run's export touches one).
        assert first >= full >= 60, (first, full)
        assert 0 < incremental <= 4, incremental  # the changed object and its profile, not the 30 people
    finally:
        h.close()
