"""Write-back to an LDAP directory (step 7) and its confirmation (step 8).

One modify per object, replacing the values of the attributes pending for it (a missing value
removes the attribute). A refused write (insufficient access, constraint or syntax violation, object
gone) is recorded for that object with the server's reason and the others go on; a server that stops
answering raises DirectoryUnavailableError (the step is retried; replaces are idempotent).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from profile_sync.directory.ldap.client import LdapClient, WriteOutcome

if TYPE_CHECKING:
    from profile_sync.directory.ldap.config import LdapConnectionSettings

log = logging.getLogger(__name__)

OUTCOME_COLUMNS = ["profile_id", "anchor", "dn", "property", "attribute", "value_hash", "status", "reason"]
"""``status``: ``written`` or ``refused`` (``reason`` says why, as the server put it)."""


def apply_directory_exports(settings: "LdapConnectionSettings", pending: pd.DataFrame) -> pd.DataFrame:
    """Apply ``pending`` (``sync.writeback.PENDING_COLUMNS``) object by object; returns one outcome per row."""
    rows: list[tuple] = []
    if pending.empty:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    with LdapClient(settings) as client:
        for dn, group in pending.groupby("dn", sort=False):
            values = {a: ([v] if v is not None else []) for a, v in zip(group["attribute"], group["value"])}
            outcome: WriteOutcome = client.replace(str(dn), values)
            if not outcome.ok:
                log.warning("directory %r: write-back to %r refused: %s", settings.connection, dn, outcome.reason)
            for r in group.itertuples(index=False):
                rows.append((r.profile_id, r.anchor, r.dn, r.property, r.attribute, r.value_hash,
                             "written" if outcome.ok else "refused", None if outcome.ok else outcome.reason))
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS).astype(object)
