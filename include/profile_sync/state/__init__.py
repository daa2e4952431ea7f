"""State: connector spaces, metaverse and watermarks (Parquet + manifest), lease, run history."""

from profile_sync.state.history import RunHistory
from profile_sync.state.lease import Lease, LeaseHeldError
from profile_sync.state.store import RunState, StateStore

__all__ = ["Lease", "LeaseHeldError", "RunHistory", "RunState", "StateStore"]
