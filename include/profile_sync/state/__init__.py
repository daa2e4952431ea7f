"""State: connector spaces, metaverse and watermarks (Parquet + manifest), lease, run history."""

import profile_sync._pandas  # noqa: F401  (engine-wide pandas settings)

from profile_sync.state.history import RunHistory
from profile_sync.state.lease import Lease, LeaseHeldError
from profile_sync.state.store import RunState, StateStore

__all__ = ["Lease", "LeaseHeldError", "RunHistory", "RunState", "StateStore"]
