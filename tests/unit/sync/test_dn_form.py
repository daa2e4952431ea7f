"""State written with another DN normalisation (an upgrade that changes ``directory/dn.py``'s canonical
spelling) makes the next incremental run a full one: DNs kept from before would not match DNs read now."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from profile_sync.config.loader import load_settings
from profile_sync.directory.dn import DN_FORM
from profile_sync.run.steps import decide_mode
from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness


def _decide(h: SyncHarness, manifest: dict) -> tuple[str, str | None]:
    """``decide_mode`` for an incremental request against ``manifest`` as the committed state."""
    ctx = SimpleNamespace(requested_mode="incremental", settings=load_settings(h.config),
                          store=SimpleNamespace(committed_manifest=lambda: manifest))
    return decide_mode(ctx)


def test_the_dn_form_is_recorded_and_an_older_one_means_a_full_run(tmp_path):
    h = SyncHarness(tmp_path)
    d = team(5)
    h.sync(d)
    manifest = h.context().store.committed_manifest()
    assert manifest["values"]["dn_form/contoso"] == DN_FORM
    assert _decide(h, manifest) == ("incremental", None)
    assert h.sync(d, mode="incremental")["start_run"]["mode"] == "incremental"

    for old in (None, DN_FORM - 1):
        before = copy.deepcopy(manifest)
        if old is None:
            del before["values"]["dn_form/contoso"]  # state from before the form was recorded
        else:
            before["values"]["dn_form/contoso"] = old
        assert _decide(h, before) == ("full", f"DN normalisation changed (form {DN_FORM}) since the last run of: "
                                              "contoso")
