"""What the status page shows, computed from what the engine keeps (no Airflow imports).

- ``overview``: idle / running / waiting (lease, approval), last full and incremental runs, counts;
- ``runs``: the run history per run and step, the chart series;
- ``gates``: gate reports and approvals;
- ``quarantine``: what is held back, why, since when;
- ``lineage``: a person's properties and where each value came from; why someone has no profile;
- ``approval``: :func:`skip_while_waiting`, the hook ``start_run`` calls while a run waits for approval;
- ``redact``: nothing shown carries a secret.

State is read through the state store's API only (``frames.CommittedState``) and the run history's.
"""

from profile_sync.status.approval import skip_while_waiting, waiting_for_approval
from profile_sync.status.frames import CommittedState

__all__ = ["CommittedState", "skip_while_waiting", "waiting_for_approval"]
