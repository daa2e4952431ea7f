"""Great Expectations, run inside the task (DESIGN §6): imported lazily, quiet, in memory.

The GX Airflow provider cannot be installed with Airflow 3.3, so the gate
calls GX itself: one ephemeral data context per gate run (nothing written to
disk, no analytics, no progress bars, GX's loggers at WARNING), one pandas data
source, and each staged frame validated as a whole-dataframe batch.

GX is imported only when a gate runs (it takes seconds to import); the time is
measured and reported with the gate, so its cost stays visible. Under Airflow the
scheduler and Celery workers have preloaded it (plugins/airflow_local_settings.py):
a task forked from them finds it loaded and reports ~0 s.

Frames are handed to GX with only the columns the expectations read and a
fresh ``RangeIndex``, so the row indexes GX reports for unexpected values are
positions in the frame the caller gave (used to show sample objects).

Two of GX's module-level imports serve only expectations and renderers the gate never runs
(``scipy.stats`` for the KL-divergence and KS-test expectations, ``altair`` for charts): they are
deferred (:class:`_Deferred`) — loaded on first use, if ever — which takes ~0.85 s and ~75 MB off
every gate (measured: GX import 2.2 s → 1.35 s, 266 → 189 MB, pandas and SQLAlchemy already loaded).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import sys
import time
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
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
    "max_length": "ExpectColumnValuesToBeBetween",  # on the values' lengths: see _gx_column
}


def _gx_column(e: Expect) -> str:
    """The column of the frame handed to GX that ``e`` is validated on.

    A ``max_length`` expectation is GX's ``ExpectColumnValuesToBeBetween`` (``max_value``) on a column of the
    values' lengths, counted once by pandas (``str.len``; null stays null: missing, as for GX's own length
    expectation), rather than ``ExpectColumnValueLengthsToBeBetween`` on the text: the same verdict, counts and
    row positions, but GX measured each value's length again for each of the metrics it computes (unexpected
    count, values, row indexes): 2.06 s against 0.42 s (0.19 s of it the lengths) for 16 columns of 96,000
    values, the first full run's ``values_fit_columns`` check at 100,000 people."""
    return f"length of {e.column}" if e.kind == "max_length" else e.column


def _lengths(values: pd.Series) -> pd.Series:
    """The length of each non-null value as text (``whole_set``'s measure), null where the value is null."""
    present = values.notna().to_numpy()
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    if present.any():
        out[present] = values[present].astype(str).str.len().to_numpy(dtype="float64")
    return out


DEFERRED_BY_GX = ("scipy.stats", "altair")
"""Imported at module level by GX modules whose code the gate never runs; see the module docstring."""


class _Deferred(types.ModuleType):
    """A module not loaded yet: its first attribute lookup imports it for real and becomes it.

    It stands in ``sys.modules`` with the real module's spec (so ``import x`` and ``from x import y``
    return it without loading anything); the first attribute the module itself lacks — ``stats.entropy``,
    ``alt.Chart``, ``__path__`` for a submodule import — imports the real module, puts it in
    ``sys.modules``, copies its namespace here (references taken meanwhile keep working) and answers."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def defer_imports(names: tuple[str, ...] = DEFERRED_BY_GX) -> list[str]:
    """Put a :class:`_Deferred` in ``sys.modules`` for each of ``names`` not imported yet (and installed);
    the names deferred."""
    out = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        module = _Deferred(name)
        module.__spec__ = spec
        sys.modules[name] = module
        out.append(name)
    return out


def skip_fingerprints() -> None:
    """Keep GX's pandas engine from fingerprinting each batch it loads.

    GX records, as a batch marker, an md5 of ``pd.util.hash_pandas_object`` of the whole frame whenever the
    frame's shallow size is below ``HASH_THRESHOLD`` (1 GB: always here), and it loads the batch twice per
    validation (when it is got, when it is validated). Nothing reads that marker (it is not a cache key), so
    the gate's whole-frame validations of a full run hashed 100,000 rows twice per frame for nothing
    (1.1 s of a full run's gate, profiled). A threshold of 0 turns the fingerprint off; the batch, the
    metrics and the results are GX's own as before."""
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


class GxRunner:
    """An ephemeral, quiet Great Expectations context for one gate run.

    GX is imported when the first frame is validated (never when nothing needs GX: an incremental run
    whose gate finds no changed row), once per runner, so once per gate task.
    """

    def __init__(self, sample: int = 20) -> None:
        self.sample = sample
        self.import_seconds = 0.0
        self.validate_seconds = 0.0
        self.whole_set_seconds = 0.0
        """Time of the vectorised whole-set counts (``validate_changed``)."""
        self.rows_validated = 0
        """Rows handed to GX (all expectations of a frame count its rows once)."""
        self._gx: Any = None
        self._context: Any = None
        self._source: Any = None
        self._assets: dict[str, Any] = {}

    def _load(self) -> None:
        if self._gx is not None:
            return
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # GX imports sre_constants/sre_parse
            defer_imports()
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )
        self.import_seconds = time.perf_counter() - t0
        skip_fingerprints()
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self._gx = gx
        self._context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            analytics_enabled=False,
        ))
        self._source = self._context.data_sources.add_pandas("profile_sync_gate")

    @property
    def context(self) -> Any:
        """The ephemeral GX data context (GX is imported on first use)."""
        self._load()
        return self._context

    def _batch_definition(self, name: str) -> Any:
        if name not in self._assets:
            asset = self._source.add_dataframe_asset(name)
            self._assets[name] = asset.add_batch_definition_whole_dataframe(f"{name}_whole")
        return self._assets[name]

    def _expectation(self, e: Expect) -> Any:
        cls = getattr(self._gx.expectations, _GX_CLASSES[e.kind])
        kwargs: dict[str, Any] = {"column": _gx_column(e),
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
        self._load()
        t0 = time.perf_counter()
        columns: dict[str, pd.Series] = {}
        for e in expectations:
            if _gx_column(e) not in columns:
                column = frame[e.column].reset_index(drop=True)
                columns[_gx_column(e)] = _lengths(column) if e.kind == "max_length" else column
        data = pd.DataFrame(columns) if columns else frame.iloc[:, :0].reset_index(drop=True)
        self.rows_validated += len(data)
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
            r = by_type_and_column[(gx_type, _gx_column(e))]
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

    def validate_changed(self, name: str, frame: pd.DataFrame, expectations: list[Expect],
                         changed: Any = None) -> list[Outcome]:
        """Like :meth:`validate`, with GX validating only the ``changed`` rows (a boolean mask over ``frame``).

        ``changed`` None: GX validates every row (full runs). Otherwise every expectation is also counted
        on the whole frame, vectorised with pandas (:func:`whole_set`): the counts, the verdict of set-wide
        expectations (uniqueness, a ``mostly`` share) and the samples cover every row, while GX validates
        the rows that changed since the last committed run (the others passed its gate then). A check
        fails when either fails (for a ``mostly`` expectation the share is the whole set's), and fails
        closed when GX raises.
        """
        if changed is None:
            return self.validate(name, frame, expectations)
        if not expectations:
            return []
        t0 = time.perf_counter()
        whole = [whole_set(frame, e, self.sample) for e in expectations]
        self.whole_set_seconds += time.perf_counter() - t0
        rows = np.flatnonzero(np.asarray(changed, dtype=bool))
        if not len(rows):
            return whole
        subset = self.validate(name, frame.iloc[rows],
                               [dataclasses.replace(e, mostly=None) for e in expectations])
        out = []
        for w, g in zip(whole, subset):
            positions = list(dict.fromkeys([int(rows[i]) for i in g.unexpected_positions] + w.unexpected_positions))
            success = w.success and not g.error and (g.success or w.expect.mostly is not None)
            out.append(dataclasses.replace(w, success=success, error=g.error,
                                           unexpected_positions=positions[:self.sample]))
        return out


def whole_set(frame: pd.DataFrame, e: Expect, sample: int = 20) -> Outcome:
    """``e`` counted on every row of ``frame`` with vectorised pandas, as GX counts it.

    ``not_null``: null values are unexpected. ``unique``: every row whose value another row shares
    (nulls are missing, not compared). ``regex``: non-null values (as ``str``) ``re.search`` does not
    match. ``max_length``: non-null values longer than ``max_length``. ``mostly``: the share of
    expected among the non-missing values that must be reached.
    """
    column = frame[e.column]
    null = column.isna().to_numpy()
    if e.kind == "not_null":
        bad, missing = null, 0
    else:
        missing = int(null.sum())
        present = column[~null]
        if e.kind == "unique":
            bad_present = present.duplicated(keep=False).to_numpy()
        elif e.kind == "regex":
            bad_present = ~present.astype(str).str.contains(e.regex, regex=True).to_numpy(dtype=bool)
        elif e.kind == "max_length":
            bad_present = (present.astype(str).str.len() > e.max_length).to_numpy(dtype=bool)
        else:  # pragma: no cover - Kind is closed
            raise ValueError(f"unknown expectation kind {e.kind!r}")
        bad = np.zeros(len(column), dtype=bool)
        bad[np.flatnonzero(~null)[bad_present]] = True
    unexpected = int(bad.sum())
    base = len(column) - missing
    if e.mostly is None:
        success = unexpected == 0
    else:
        success = base == 0 or (base - unexpected) / base >= e.mostly
    return Outcome(expect=e, success=success, element_count=len(column), unexpected_count=unexpected,
                   missing_count=missing, unexpected_positions=[int(i) for i in np.flatnonzero(bad)[:sample]])


def _snake(name: str) -> str:
    """``ExpectColumnValuesToBeUnique`` → ``expect_column_values_to_be_unique`` (GX's expectation type)."""
    return "".join(("_" + ch.lower()) if ch.isupper() else ch for ch in name).lstrip("_")
