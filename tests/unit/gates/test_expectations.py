"""Great Expectations inside the gate: lazy, quiet, and right about the frames it is given."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from profile_sync.gates.checks import EMAIL_REGEX
from profile_sync.gates.expectations import Expect, GxRunner


@pytest.fixture(scope="module")
def gx() -> GxRunner:
    return GxRunner(sample=5)


def test_duplicates_are_reported_by_row_position_whatever_the_index(gx):
    frame = pd.DataFrame({"anchor": ["a", None, "b", "a"], "other": [None] * 4}, index=[10, 11, 12, 13])
    (o,) = gx.validate("anchors", frame, [Expect("unique", "anchor")])
    assert (o.success, o.unexpected_count, o.missing_count) == (False, 2, 1)
    assert o.unexpected_positions == [0, 3]


def test_missing_values_and_their_rows(gx):
    frame = pd.DataFrame({"anchor": ["a", None, "c", None]})
    (o,) = gx.validate("anchors", frame, [Expect("not_null", "anchor")])
    assert not o.success and o.unexpected_count == 2 and o.unexpected_positions == [1, 3]


@pytest.mark.parametrize(("mostly", "success"), [(0.99, False), (0.97, True), (None, False)])
def test_email_syntax_with_a_tolerance(gx, mostly, success):
    emails = [f"user{i}@contoso.com" for i in range(98)] + ["SMTP:x@contoso.com", "no at sign"] + [None] * 5
    (o,) = gx.validate("people", pd.DataFrame({"work_email": emails}),
                       [Expect("regex", "work_email", regex=EMAIL_REGEX, mostly=mostly)])
    assert o.success is success
    assert (o.unexpected_count, o.missing_count, o.unexpected_percent) == (2, 5, 2.0)
    assert o.unexpected_positions == [98, 99]


@pytest.mark.parametrize(("value", "ok"), [
    ("jane.doe@contoso.com", True), ("o'brien+tag@mail.contoso.co.uk", True), ("x@localhost", False),
    ("SMTP:jane@contoso.com", False), ("jane doe@contoso.com", False), ("jane@-contoso.com", False),
])
def test_email_regex(value, ok):
    import re

    assert (re.match(EMAIL_REGEX, value) is not None) is ok


def test_value_lengths(gx):
    frame = pd.DataFrame({"title": ["short", "x" * 11, None], "office": ["a", "b", "c"]})
    o1, o2 = gx.validate("pending", frame, [Expect("max_length", "title", max_length=10),
                                            Expect("max_length", "office", max_length=10)])
    assert (o1.success, o1.unexpected_count, o1.unexpected_positions) == (False, 1, [1])
    assert o2.success


@pytest.mark.parametrize("mostly", [None, 0.5])
def test_value_lengths_as_gx_measures_them_on_the_text(gx, mostly):
    """The runner validates lengths it counted once (GX's between on them): the same outcome as GX's own
    length expectation on the text, nulls missing, lengths in characters, positions included."""
    values = ["short", "x" * 11, None, "", "é" * 10, "é" * 11, "y" * 10, None, "z" * 40]
    frame = pd.DataFrame({"title": pd.Series(values, dtype=object)})
    frame.index = [7, 3, 5, 1, 0, 2, 4, 6, 8]  # positions are reported, not labels
    (mine,) = gx.validate("lengths", frame, [Expect("max_length", "title", max_length=10, mostly=mostly)])
    kwargs = {"column": "title", "max_value": 10,
              "result_format": {"result_format": "SUMMARY", "partial_unexpected_count": 20}}
    if mostly is not None:
        kwargs["mostly"] = mostly
    suite = gx._gx.ExpectationSuite(name=f"text_{mostly}",
                                    expectations=[gx._gx.expectations.ExpectColumnValueLengthsToBeBetween(**kwargs)])
    theirs = gx._batch_definition(f"text_{mostly}").get_batch(
        batch_parameters={"dataframe": frame.reset_index(drop=True)}).validate(suite).results[0]
    res = theirs.result
    assert (mine.success, mine.element_count, mine.unexpected_count, mine.missing_count,
            mine.unexpected_positions) == (theirs.success, res["element_count"], res["unexpected_count"],
                                           res["missing_count"], res["partial_unexpected_index_list"])
    assert (mine.unexpected_count, mine.missing_count, mine.unexpected_positions) == (3, 2, [1, 5, 8])
    assert mine.success is (mostly is not None)


def test_gx_is_quiet(gx, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    gx.validate("quiet", pd.DataFrame({"a": range(500)}), [Expect("unique", "a"), Expect("not_null", "a")])
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no progress bars
    assert not [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]
    assert logging.getLogger("great_expectations").getEffectiveLevel() == logging.WARNING
    bars = gx.context.progress_bars
    assert bars.globally is False and bars.metric_calculations is False


def test_costs_are_measured(gx):
    before = gx.validate_seconds
    gx.validate("timed", pd.DataFrame({"a": [1, 2]}), [Expect("unique", "a")])
    assert gx.validate_seconds > before  # validations add up (the import's cost: test_export_gate.py)


def test_gx_does_not_fingerprint_the_frames_it_validates(gx):
    """GX hashed every batch it loaded (twice per validation) for a marker nothing reads: the runner turns
    that off, and the batch keeps its other markers."""
    import great_expectations.execution_engine.pandas_execution_engine as engine

    frame = pd.DataFrame({"a": ["x", "y", None]})
    (o,) = gx.validate("fingerprint", frame, [Expect("not_null", "a")])
    assert (o.success, o.unexpected_count) == (False, 1)
    batch = gx._batch_definition("fingerprint").get_batch(batch_parameters={"dataframe": frame})
    assert "ge_load_time" in batch.batch_markers
    assert "pandas_data_fingerprint" not in batch.batch_markers
    assert engine.HASH_THRESHOLD == 0


def test_gx_is_imported_only_when_a_gate_runs():
    code = ("import sys; import profile_sync.run.steps, profile_sync.gates.export_gate, profile_sync.run.gate_step; "
            "print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


# -- incremental runs: GX on the changed rows, whole-set counts vectorised ---------------------
WHOLE_SET_CASES = [
    ("unique", pd.DataFrame({"anchor": ["a", None, "b", "a", "c", "c", None]}), Expect("unique", "anchor")),
    ("not_null", pd.DataFrame({"anchor": ["a", None, "c", None]}), Expect("not_null", "anchor")),
    ("regex", pd.DataFrame({"work_email": [f"u{i}@contoso.com" for i in range(20)] + ["bad", None, "x@y"]}),
     Expect("regex", "work_email", regex=EMAIL_REGEX, mostly=0.9)),
    ("max_length", pd.DataFrame({"title": ["short", "x" * 11, None, "y" * 10]}), Expect("max_length", "title", max_length=10)),
]


@pytest.mark.parametrize(("name", "frame", "expect"), WHOLE_SET_CASES, ids=[c[0] for c in WHOLE_SET_CASES])
def test_whole_set_counts_as_gx_counts(gx, name, frame, expect):
    from profile_sync.gates.expectations import whole_set

    (g,) = gx.validate(name, frame, [expect])
    w = whole_set(frame, expect, sample=5)
    assert (w.success, w.element_count, w.unexpected_count, w.missing_count, w.unexpected_positions) == \
        (g.success, g.element_count, g.unexpected_count, g.missing_count, g.unexpected_positions)


def test_gx_validates_only_the_changed_rows_and_the_whole_set_still_counts():
    runner = GxRunner(sample=5)
    frame = pd.DataFrame({"anchor": ["a", "b", "c", "d", "b"]})
    changed = [False, False, False, False, True]  # the new "b" duplicates an unchanged row
    present, unique = runner.validate_changed("cs", frame, [Expect("not_null", "anchor"), Expect("unique", "anchor")],
                                              changed)
    assert runner.rows_validated == 1  # GX saw the changed row only
    assert present.success and present.element_count == 5
    assert not unique.success and unique.unexpected_count == 2 and unique.unexpected_positions == [1, 4]


def test_a_changed_row_gx_rejects_fails_the_expectation():
    runner = GxRunner(sample=5)
    frame = pd.DataFrame({"title": ["ok", "x" * 11, "fine"]})
    (o,) = runner.validate_changed("pending", frame, [Expect("max_length", "title", max_length=10)],
                                   [False, True, False])
    assert not o.success and o.unexpected_count == 1 and o.unexpected_positions == [1]


def test_a_mostly_share_is_the_whole_sets_not_the_changed_rows():
    runner = GxRunner(sample=5)
    emails = [f"u{i}@contoso.com" for i in range(99)] + ["not an address"]
    changed = [False] * 98 + [True, True]  # half of the changed rows are invalid, 1 % of all
    (o,) = runner.validate_changed("people", pd.DataFrame({"work_email": emails}),
                                   [Expect("regex", "work_email", regex=EMAIL_REGEX, mostly=0.98)], changed)
    assert o.success and o.unexpected_count == 1 and o.unexpected_positions == [99]
    assert runner.rows_validated == 2


def test_nothing_changed_means_gx_is_never_imported():
    code = ("import sys, pandas as pd; from profile_sync.gates.expectations import Expect, GxRunner; "
            "r = GxRunner(); (o,) = r.validate_changed('cs', pd.DataFrame({'a': ['x', 'x']}), "
            "[Expect('unique', 'a')], [False, False]); "
            "assert not o.success and o.unexpected_count == 2, o; "
            "print('great_expectations' in sys.modules, r.rows_validated)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "0"]



# -- GX's imports of what the gate never runs are deferred -----------------------------------
def _python(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_gate_never_loads_scipy_stats_or_altair():
    code = ("import sys, pandas as pd; from profile_sync.gates.expectations import Expect, GxRunner; "
            "r = GxRunner(); f = pd.DataFrame({'a': ['x', 'x', None], 'm': ['a@b.c', 'bad', None]}); "
            "o = r.validate('f', f, [Expect('unique', 'a'), Expect('not_null', 'a'), "
            "Expect('regex', 'm', regex='@'), Expect('max_length', 'm', max_length=4)]); "
            "print([(x.success, x.unexpected_count) for x in o] == "
            "[(False, 2), (False, 1), (False, 1), (False, 1)], 'great_expectations' in sys.modules, "
            "'scipy.stats._stats_py' in sys.modules, 'altair.vegalite' in sys.modules)")
    assert _python(code) == ["True", "True", "False", "False"]


def test_a_deferred_module_loads_when_it_is_used():
    code = textwrap.dedent("""
        import sys
        from profile_sync.gates.expectations import defer_imports
        print(defer_imports(("colorsys", "xml.dom", "no_such_module_here", "sys")) == ["colorsys", "xml.dom"])
        print(type(sys.modules["colorsys"]).__name__, "__file__" in vars(sys.modules["colorsys"]))
        import colorsys as c
        from colorsys import rgb_to_hsv
        print(c.rgb_to_hsv(1, 0, 0) == rgb_to_hsv(1, 0, 0) == (0.0, 1.0, 1.0), type(sys.modules["colorsys"]).__name__)
        import xml.dom.minidom as md
        print(md.parseString("<a/>").documentElement.tagName, type(sys.modules["xml.dom"]).__name__)
    """)
    assert _python(code) == ["True", "_Deferred", "False", "True", "module", "a", "module"]


def test_an_absent_module_is_not_deferred():
    code = ("from profile_sync.gates.expectations import defer_imports; print(defer_imports(('no_such_module_here',)))\n"
            "try:\n    import no_such_module_here\nexcept ImportError:\n    print('ImportError')")
    assert _python(code) == ["[]", "ImportError"]
