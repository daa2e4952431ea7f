"""Profile store → sites: the last link of the chain (DESIGN §6d).

A site keeps its own list of the people who use it (a *user information list*
in a SQL database). ``push_site`` pushes the changed profiles of the people
already listed there — only the properties ``config.SYNC_TO_SITES`` marks — in
one bulk statement, flags people whose profile is marked for deletion, and
moves the site's watermark in the same transaction. Modules, in the order a
push uses them: ``config`` (what goes to sites, the tables' shape),
``profiles`` (what changed in the profile store), ``site_list`` (the site's
database), ``plan`` (rows to write), ``gate`` (blast radius), ``push`` (the
entry point). The step that records a push in the run history is
``run/site_steps.py``.
"""

import profile_sync._pandas  # noqa: F401  (engine-wide pandas settings)

from profile_sync.sites.push import PushRequest, PushResult, push_site

__all__ = ["PushRequest", "PushResult", "push_site"]
