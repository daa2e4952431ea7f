"""Delta equals full: compare the profile stores of two harnesses (every column but timestamps, every
membership). Used by the LDIF property test and by the one against the real servers."""

from __future__ import annotations

import pandas as pd

# Random changes trip the blast-radius limits of the safety gate; a delta-equals-full test is about
# delta = full, so those limits are off (the structural checks of the gate still run).
NO_LIMITS = {k: None for k in ("max_deletes", "max_delete_percent", "max_update_percent", "max_blank_percent",
                               "max_shrink_percent", "min_reference_resolution_percent", "max_invalid_email_percent")}
TIMESTAMPS = ["created_at", "updated_at", "marked_for_deletion_at"]


def snapshot(h) -> tuple[pd.DataFrame, pd.DataFrame, set]:  # noqa: ANN001
    """People and groups (every column but timestamps, sorted by id) and memberships of a harness's store."""
    snap = h.store.read_all(timestamps=True)
    people = snap.people.drop(columns=TIMESTAMPS).sort_values("profile_id").reset_index(drop=True)
    groups = snap.groups.drop(columns=TIMESTAMPS).sort_values("group_id").reset_index(drop=True)
    members = set(map(tuple, snap.memberships[["group_id", "member_type", "member_id"]].to_numpy()))
    return people, groups, members


def assert_same(a, b, label: str) -> None:  # noqa: ANN001
    pd.testing.assert_frame_equal(a[0], b[0], check_dtype=False, obj=f"profiles after {label}")
    pd.testing.assert_frame_equal(a[1], b[1], check_dtype=False, obj=f"groups after {label}")
    assert a[2] == b[2], f"memberships differ after {label}: {sorted(a[2] ^ b[2])[:5]}"


def unresolved_rows(h) -> list[tuple]:  # noqa: ANN001
    """The committed ``mv/unresolved`` of a harness: (connection, source DN, property, target DN, reason), in
    the order the synchronization wrote them."""
    frame = h.inspector().store.read_committed_frame("mv/unresolved")
    cols = ["source_connection", "source_dn", "property", "target_dn", "reason"]
    return list(map(tuple, frame[cols].astype(str).to_numpy().tolist()))
