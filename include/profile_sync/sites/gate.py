"""The blast-radius gate of one site's push (DESIGN §5, per site).

Same report shape as the export gate (``gates/report.py``): a push that would
flag more of a site's people ``deleted`` than the site's ``gates`` allow fails
with a report in the run history, and nothing is written. An administrator may
let one run through (``override_gates`` with a reason), as with the export gate.
"""

from __future__ import annotations

from profile_sync.config.sites import SiteGateLimits
from profile_sync.gates.report import CheckResult, GateOverride, GateReport
from profile_sync.sites.plan import SitePlan, records

GATE = "validate_site_push"
CHECK = "site_deletes"
DESCRIPTION = "Not too many of a site's people are flagged deleted in one push (a broken import upstream, a " \
              "mass leave of scope)."


def _pct(n: int, whole: int) -> float:
    return round(100.0 * n / whole, 2) if whole else 0.0


def site_gate(site: str, plan: SitePlan, listed_active: int, limits: SiteGateLimits,
              override: GateOverride | None = None) -> GateReport:
    """Check the deletes of ``plan`` against ``limits``; ``listed_active``: listed people not flagged yet."""
    n = len(plan.flagged)
    over_count = limits.max_deletes is not None and n > limits.max_deletes
    over_pct = (limits.max_delete_percent is not None and listed_active > 0
                and n > limits.min_count_for_percent_limits
                and 100.0 * n / listed_active > limits.max_delete_percent)
    count_text = f"≤ {limits.max_deletes}" if limits.max_deletes is not None else "no count limit"
    pct_text = (f"≤ {limits.max_delete_percent}% of the listed people, once more than "
                f"{limits.min_count_for_percent_limits}" if limits.max_delete_percent is not None
                else "no percentage limit")
    allowed = f"{count_text}, and {pct_text}"
    failed = over_count or over_pct
    check = CheckResult(
        name=CHECK, passed=not failed,
        observed={"flagged": n, "listed": listed_active, "percent": _pct(n, listed_active)},
        allowed=allowed, samples=records(plan.flagged, ["account_name", "profile_id"]) if failed else [],
        description=DESCRIPTION, connection=site, stage="export", engine="metric", overridable=True,
        message=f"{CHECK} [{site}]: {n} listed people would be flagged deleted ({_pct(n, listed_active)}% of "
                f"{listed_active}); allowed {allowed}")
    return GateReport(GATE, [check]).apply_override(override)


__all__ = ["CHECK", "GATE", "site_gate"]
