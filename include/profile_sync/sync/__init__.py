"""Synchronization: connector spaces, scope, join rules, attribute flow, references, metaverse, pending exports."""

import profile_sync._pandas  # noqa: F401  (engine-wide pandas settings)
