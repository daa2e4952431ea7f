"""State: connector spaces, metaverse and watermarks (Parquet objects + manifests), lease, run history."""

import profile_sync._pandas  # noqa: F401  (engine-wide pandas settings)

from profile_sync.state.coordination import Coordination
from profile_sync.state.history import RunHistory
from profile_sync.state.lease import Lease, LeaseHeldError, LeaseLostError
from profile_sync.state.location import Location
from profile_sync.state.store import RunState, StateStore

__all__ = ["Coordination", "Lease", "LeaseHeldError", "LeaseLostError", "Location", "RunHistory", "RunState",
           "StateStore"]
