"""Business-system augmentation (DESIGN §2 steps 9–12, §3): HR/ERP rows → profile properties.

One bulk read (``sources``) into a connector space (``connector_space``), an
in-memory join on a normalised key (``keys``) planned into pending exports
(``synchronize``, with ``values`` for types and lengths), a gate (``gate``).
The export and the confirming import are ``profile_store.augmentation``; the
steps are ``run.bcs_steps``.
"""

import profile_sync._pandas  # noqa: F401  (engine-wide pandas settings)

from profile_sync.bcs.synchronize import BcsPlan, plan_bcs_exports

__all__ = ["BcsPlan", "plan_bcs_exports"]
