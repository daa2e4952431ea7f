"""The order of the steps — written once: the DAGs and the in-process runner both read it (DESIGN §2).

``start_run`` (take the lease, choose the mode) comes before, ``finish_run`` (promote the
state) after, and ``release_run`` (the teardown) always last; between them the directory
steps, then — when business systems are configured — the business-system chain, once per
business system.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Per = Literal["run", "directory", "business_system"]


@dataclass(frozen=True)
class Step:
    """One task of the run."""

    name: str
    """The engine function (``run/steps.py`` or ``run/bcs_steps.py``) and the task id."""
    per: Per = "run"
    """``run``: once; ``directory``: once per directory connection (mapped); ``business_system``: per system."""
    retries: int | None = None
    """Task retries; None: the DAG's default. Gates never retry (a failed check is not transient)."""

    @property
    def module(self) -> str:
        return "profile_sync.run.bcs_steps" if self.per == "business_system" else "profile_sync.run.steps"


DIRECTORY_STEPS: tuple[Step, ...] = (
    Step("import_directory", per="directory"),
    Step("import_profile_store"),
    Step("synchronize"),
    Step("validate_export", retries=0),
    Step("export_profile_store"),
    Step("confirm_profile_store"),
    Step("synchronize_writeback"),
    Step("export_directory", per="directory"),
    Step("confirm_directory", per="directory"),
)
"""Steps 1–8 and the export gate."""

BUSINESS_SYSTEM_STEPS: tuple[Step, ...] = (
    Step("import_bcs", per="business_system"),
    Step("synchronize_bcs", per="business_system"),
    Step("validate_bcs", per="business_system", retries=0),
    Step("export_bcs", per="business_system"),
    Step("confirm_bcs", per="business_system"),
)
"""Steps 9–12 and their gate, one chain per business system."""

FINISH = Step("finish_run")


@dataclass(frozen=True)
class Fused:
    """One task of the ``fused`` layout (``tasks.full`` / ``tasks.incremental``): the run's steps from
    ``first`` through ``last`` (None: from the start / to ``finish_run``), run one after the other."""

    task_id: str
    first: str | None
    last: str | None


FUSED: tuple[Fused, Fused] = (
    Fused("import_and_synchronize", None, "validate_export"),  # steps 1–3 and the gate: approve_export reads it
    Fused("export_and_confirm", "export_profile_store", None),  # steps 4–8, 9–12, finish_run
)
"""The fused layout's two engine tasks, around ``approve_export``."""


def engine_function(step: Step):  # noqa: ANN201
    """The engine function a task of ``step`` calls."""
    import importlib

    return getattr(importlib.import_module(step.module), step.name)
