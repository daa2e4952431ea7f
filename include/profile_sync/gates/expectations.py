"""Great Expectations, run inside the task (DESIGN §6): imported lazily, quiet, in memory.

The GX Airflow provider cannot be installed with Airflow 3.3, so the gate
calls GX itself: one ephemeral data context per gate run (nothing written to
disk, no analytics, no progress bars, GX's loggers at WARNING), one pandas data
source, and each staged frame validated as a whole-dataframe batch.

GX is imported only when a gate runs (it takes seconds to import); the time is
measured and reported with the gate, so its cost stays visible.

Frames are handed to GX with only the columns the expectations read and a
fresh ``RangeIndex``, so the row indexes GX reports for unexpected values are
positions in the frame the caller gave (used to show sample objects).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

Kind = Literal["not_null", "unique", "regex", "max_length"]


@dataclass(frozen=True)
class Expect:
    """One expectation on one column, in the project's words (mapped to a GX class by the runner)."""

    kind: Kind
    column: str
    regex: str | None = None
    max_length: int | None = None
    mostly: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What GX found for one expectation."""

    expect: Expect
    success: bool
    element_count: int
    unexpected_count: int
    missing_count: int
    unexpected_positions: list[int] = field(default_factory=list)
    """Row positions (in the frame as given) of up to ``sample`` unexpected values."""
    error: str | None = None
    """GX raised while evaluating: the check fails closed with this message."""

    @property
    def unexpected_percent(self) -> float:
        """Unexpected values in % of the non-missing ones."""
        base = self.element_count - self.missing_count
        return 100.0 * self.unexpected_count / base if base else 0.0


_GX_CLASSES = {
    "not_null": "ExpectColumnValuesToNotBeNull",
    "unique": "ExpectColumnValuesToBeUnique",
    "regex": "ExpectColumnValuesToMatchRegex",
    "max_length": "ExpectColumnValueLengthsToBeBetween",
}


class GxRunner:
    """An ephemeral, quiet Great Expectations context for one gate run."""

    def __init__(self, sample: int = 20) -> None:
        self.sample = sample
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # GX imports sre_constants/sre_parse
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )
        self.import_seconds = time.perf_counter() - t0
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            analytics_enabled=False,
        ))
        self._source = self.context.data_sources.add_pandas("profile_sync_gate")
        self._assets: dict[str, Any] = {}
        self.validate_seconds = 0.0

    def _batch_definition(self, name: str) -> Any:
        if name not in self._assets:
            asset = self._source.add_dataframe_asset(name)
            self._assets[name] = asset.add_batch_definition_whole_dataframe(f"{name}_whole")
        return self._assets[name]

    def _expectation(self, e: Expect) -> Any:
        cls = getattr(self._gx.expectations, _GX_CLASSES[e.kind])
        kwargs: dict[str, Any] = {"column": e.column,
                                  "result_format": {"result_format": "SUMMARY",
                                                    "partial_unexpected_count": self.sample}}
        if e.kind == "regex":
            kwargs["regex"] = e.regex
        if e.kind == "max_length":
            kwargs["max_value"] = e.max_length
        if e.mostly is not None:
            kwargs["mostly"] = e.mostly
        return cls(**kwargs)

    def validate(self, name: str, frame: pd.DataFrame, expectations: list[Expect]) -> list[Outcome]:
        """Validate ``frame`` (named ``name`` in GX) against ``expectations``; one outcome each."""
        if not expectations:
            return []
        t0 = time.perf_counter()
        columns = list(dict.fromkeys(e.column for e in expectations))
        data = frame[columns].reset_index(drop=True)
        suite = self._gx.ExpectationSuite(name=f"{name}_suite",
                                          expectations=[self._expectation(e) for e in expectations])
        batch = self._batch_definition(name).get_batch(batch_parameters={"dataframe": data})
        result = batch.validate(suite)
        by_type_and_column = {}
        for r in result.results:
            cfg = r.expectation_config
            by_type_and_column[(cfg.type, cfg.kwargs.get("column"))] = r
        out = []
        for e in expectations:
            gx_type = _snake(_GX_CLASSES[e.kind])
            r = by_type_and_column[(gx_type, e.column)]
            res = r.result or {}
            exc = r.exception_info or {}
            raised = exc.get("raised_exception") if isinstance(exc, dict) else False
            out.append(Outcome(
                expect=e,
                success=bool(r.success) and not raised,
                element_count=int(res.get("element_count") or len(data)),
                unexpected_count=int(res.get("unexpected_count") or 0),
                missing_count=int(res.get("missing_count") or 0),
                unexpected_positions=[int(i) for i in (res.get("partial_unexpected_index_list") or [])],
                error=str(exc.get("exception_message")) if raised else None,
            ))
        self.validate_seconds += time.perf_counter() - t0
        return out


def _snake(name: str) -> str:
    """``ExpectColumnValuesToBeUnique`` → ``expect_column_values_to_be_unique`` (GX's expectation type)."""
    return "".join(("_" + ch.lower()) if ch.isupper() else ch for ch in name).lstrip("_")
