// The Profile Sync page: five views over the JSON API of the same FastAPI app (see app.py).
// Plain DOM, no framework, no build step; every value is inserted as text (never as HTML).
"use strict";

const PREFIX = document.body.dataset.prefix || "/profile-sync";
const view = document.getElementById("view");
let refreshTimer = null;

// ------------------------------------------------------------------ helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(PREFIX + path, {credentials: "same-origin", ...(options || {})});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail))
      : response.statusText;
    const error = new Error(`${response.status}: ${detail}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

const fmtTime = (iso) => (iso ? iso.replace("T", " ").replace(/\+00:00$/, " UTC") : "—");
const fmtNum = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
const fmtSec = (s) => (s === null || s === undefined ? "—" : `${Number(s).toFixed(1)} s`);
const chip = (state, label) => el("span", {class: `state ${state || ""}`, dataset: {state: state || ""}}, label || state || "—");

function value(v) {
  if (v === null || v === undefined || v === "") return el("span", {class: "muted"}, "(empty)");
  if (typeof v === "object" && v.binary) {
    return el("span", {class: "muted"}, v.not_read ? "binary (not shown)" : `binary, ${fmtNum(v.bytes)} bytes`);
  }
  if (Array.isArray(v)) return v.join("; ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// A link into Airflow's own UI. Inside Airflow's plugin frame the page may not navigate the top window
// (sandbox): it asks the Airflow UI's router to go there instead; opened on its own, a normal link.
function airflowLink(url, label) {
  if (!url) return label;
  return el("a", {href: url, target: "_top", onclick: (event) => {
    if (window.top === window) return;
    try {
      window.top.history.pushState({}, "", url);
      window.top.dispatchEvent(new PopStateEvent("popstate", {state: {}}));
      event.preventDefault();
    } catch (e) { /* not reachable: let the frame follow the link */ }
  }}, label);
}

function table(headers, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {class: h.num ? "num" : null},
      typeof h === "string" ? h : h.label)))),
    el("tbody", {}, rows));
}

function show(...nodes) {
  view.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function failure(error) {
  show(el("p", {class: "error", "data-testid": "error"}, `Could not load: ${error.message}`));
}

// ------------------------------------------------------------------ status

const STATE_TEXT = {
  idle: "Idle", running: "Running", waiting_for_approval: "Waiting for an approval",
  waiting_for_lease: "Waiting for the lease", starting: "Starting", queued: "Queued",
};

function activityText(a) {
  const run = a.run_id ? ` run ${a.run_id}` : "";
  switch (a.kind) {
    case "running": return `Running${run} (${a.dag_id || "?"}) — step ${(a.steps || []).join(", ") || "?"}`;
    case "waiting_for_approval": return `Waiting for an administrator's approval:${run}` +
      (a.requested_at ? ` since ${fmtTime(a.requested_at)}` : "") + (a.timeout_at ? `, until ${fmtTime(a.timeout_at)}` : "");
    case "waiting_for_lease": return `Waiting for the lease:${run} (${a.dag_id}) — held by ${a.held_by}`;
    case "queued": return `Queued:${run} (${a.dag_id})`;
    default: return `${a.kind}:${run}`;
  }
}

function lastRunCard(title, r, testid) {
  if (!r) return el("div", {class: "card", "data-testid": testid}, el("div", {class: "label"}, title), el("div", {}, "none yet"));
  return el("div", {class: "card", "data-testid": testid, dataset: {runId: r.run_id}},
    el("div", {class: "label"}, title),
    el("div", {}, chip(r.status), " ", r.dry_run ? chip("", "dry run") : null),
    el("div", {class: "mono"}, r.run_id),
    el("div", {class: "muted"}, `${fmtTime(r.started_at)} · ${fmtSec(r.duration_s)}`),
    el("div", {}, `+${r.changes.adds} ~${r.changes.updates} −${r.changes.deletes}`),
    r.full_reason && r.mode === "full" ? el("div", {class: "muted"}, `full because: ${r.full_reason}`) : null,
    r.error ? el("div", {class: "error"}, r.error) : null);
}

let lastStatus = null;

async function renderStatus(quiet) {
  const s = await api("/api/status");
  const seen = JSON.stringify(s);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { if ((location.hash.replace(/^#/, "") || "status") === "status") route(true); }, 5000);
  if (quiet && seen === lastStatus) return;  // refreshed, unchanged: leave the page as it is
  lastStatus = seen;
  const c = s.counts;
  const counts = [["people", "People"], ["groups", "Groups"], ["memberships", "Memberships"],
    ["marked_for_deletion", "Marked for deletion"], ["quarantined", "In quarantine"]];
  const cfg = s.configuration;
  show(
    el("h2", {}, "Now"),
    el("p", {"data-testid": "state"}, chip(s.state, STATE_TEXT[s.state] || s.state)),
    el("ul", {"data-testid": "activities"}, s.activities.map((a) => el("li", {dataset: {kind: a.kind, runId: a.run_id || ""}},
      activityText(a), " ", a.grid_url ? airflowLink(a.grid_url, "grid") : null))),
    el("h2", {}, "Last runs"),
    el("div", {class: "cards"}, lastRunCard("Last full synchronization", s.last_full, "last-full"),
      lastRunCard("Last incremental synchronization", s.last_incremental, "last-incremental")),
    el("h2", {}, "Profile store and quarantine"),
    el("div", {class: "cards"}, counts.map(([k, label]) => el("div", {class: "card", "data-testid": `count-${k}`},
      el("div", {class: "big"}, fmtNum(c[k])), el("div", {class: "label"}, label)))),
    el("p", {class: "muted"}, `as the last run left it (state version ${s.committed.version}, committed ${fmtTime(s.committed.committed_at)})`),
    el("h2", {}, "Next scheduled runs"),
    table(["DAG", "schedule", "next run", ""], s.schedules.map((d) => el("tr", {"data-testid": `schedule-${d.dag_id}`},
      el("td", {}, d.dag_id), el("td", {}, d.schedule_description || d.schedule || "—"),
      el("td", {}, d.paused ? "paused" : fmtTime(d.next_run_at)), el("td", {}, d.known ? "" : "not parsed yet")))),
    el("h2", {}, "Connections"),
    table(["connection", "type", "where"], [
      ...cfg.directories.map((d) => el("tr", {}, el("td", {}, d.name), el("td", {}, `directory (${d.type}, ${d.preset})`),
        el("td", {class: "mono"}, d.conn_id ? `Airflow Connection ${d.conn_id}` : d.path, " — ", d.containers.join("; ")))),
      ...cfg.business_systems.map((b) => el("tr", {}, el("td", {}, b.name), el("td", {}, `business system (${b.type})`),
        el("td", {class: "mono"}, b.conn_id ? `Airflow Connection ${b.conn_id}` : (b.url || b.path)))),
      el("tr", {}, el("td", {}, "profile store"), el("td", {}, "SQL"), el("td", {class: "mono", "data-testid": "profile-store"},
        cfg.profile_store.conn_id ? `Airflow Connection ${cfg.profile_store.conn_id}` : cfg.profile_store.url)),
      el("tr", {}, el("td", {}, "state store"), el("td", {}, ""), el("td", {class: "mono"}, cfg.state_store.url)),
    ]),
  );
}

// ------------------------------------------------------------------ run history

function chart(points) {
  const W = 860, H = 230, L = 48, R = 48, T = 14, B = 40;
  const n = points.length;
  const root = svg("svg", {class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-testid": "chart",
    role: "img", "aria-label": "run durations and changes"});
  if (!n) { root.append(svg("text", {x: 20, y: 30}, "no finished run yet")); return root; }
  const maxD = Math.max(1, ...points.map((p) => p.duration_s));
  const changes = points.map((p) => p.adds + p.updates + p.deletes);
  const maxC = Math.max(1, ...changes);
  const step = (W - L - R) / n, bw = Math.max(4, Math.min(36, step * 0.6));
  const y = (v, max) => T + (H - T - B) * (1 - v / max);
  root.append(svg("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#d1d5db"}));
  root.append(svg("text", {x: 4, y: T + 8}, fmtSec(maxD)), svg("text", {x: 4, y: H - B}, "0 s"));
  root.append(svg("text", {x: W - R + 4, y: T + 8}, fmtNum(maxC)), svg("text", {x: W - R + 4, y: H - B}, "0"));
  const line = [];
  points.forEach((p, i) => {
    const cx = L + step * i + step / 2;
    const top = y(p.duration_s, maxD);
    root.append(svg("rect", {x: cx - bw / 2, y: top, width: bw, height: H - B - top, class: "bar",
      fill: p.status === "failed" ? "#fca5a5" : "#93c5fd", "data-run-id": p.run_id, "data-duration": p.duration_s},
      svg("title", {}, `${p.run_id}\n${p.mode} · ${p.status} · ${fmtSec(p.duration_s)}\n+${p.adds} ~${p.updates} −${p.deletes}`)));
    line.push(`${cx},${y(changes[i], maxC)}`);
    if (n <= 16 || i % Math.ceil(n / 16) === 0) {
      root.append(svg("text", {x: cx - 18, y: H - B + 14}, (p.started_at || "").slice(5, 16).replace("T", " ")));
    }
  });
  root.append(svg("polyline", {points: line.join(" "), fill: "none", stroke: "#b45309", "stroke-width": 2, class: "changes"}));
  points.forEach((p, i) => root.append(svg("circle", {cx: L + step * i + step / 2, cy: y(changes[i], maxC), r: 3,
    fill: "#b45309", "data-run-id": p.run_id, "data-changes": changes[i]})));
  return root;
}

function who(r) {
  const a = r.airflow || {};
  const parts = [a.run_type || (r.triggered_by || "").split(" ")[0] || "?"];
  if (a.triggering_user) parts.push(`by ${a.triggering_user}`);
  return parts.join(" ");
}

function runRow(r) {
  const steps = r.steps.map((s) => el("tr", {dataset: {step: s.step, connection: s.connection || ""}},
    el("td", {}, s.step + (s.connection ? ` [${s.connection}]` : "")), el("td", {}, chip(s.status)),
    el("td", {class: "num"}, fmtNum(s.adds)), el("td", {class: "num"}, fmtNum(s.updates)),
    el("td", {class: "num"}, fmtNum(s.deletes)), el("td", {class: "num"}, fmtNum(s.errors)),
    el("td", {class: "num"}, fmtSec(s.duration_s)), el("td", {class: "error"}, s.error || "")));
  const delta = Object.entries(r.delta || {}).map(([c, m]) => el("div", {dataset: {delta: c}}, `${c}: ${m}`));
  const approval = r.approval ? el("div", {"data-testid": "run-approval"}, "Approval: ", chip(r.approval.status),
    r.approval.by ? ` by ${r.approval.by}` : "", r.approval.at ? ` at ${fmtTime(r.approval.at)}` : "",
    r.approval.comment ? ` — “${r.approval.comment}”` : "") : null;
  const overrides = (r.overrides || []).map((o) => el("div", {}, `Gate ${o.gate} let through ${o.via === "approval" ? "by approval" : "by override"} of ${o.by} at ${fmtTime(o.at)}: ${o.reason}`));
  return el("details", {class: "run", "data-testid": "run", dataset: {runId: r.run_id, status: r.status || "", mode: r.mode || ""}},
    el("summary", {}, chip(r.status), " ", el("strong", {}, r.mode || "?"), r.dry_run ? " (dry run)" : "", " ",
      el("span", {class: "mono"}, r.run_id), " · ", fmtTime(r.started_at), " · ", fmtSec(r.duration_s), " · ",
      `+${r.changes.adds} ~${r.changes.updates} −${r.changes.deletes}`, " · ", who(r)),
    el("div", {},
      el("p", {}, `DAG ${r.dag_id} · requested ${r.requested_mode || "?"}` + (r.full_reason ? ` · full because: ${r.full_reason}` : ""),
        " · ", r.airflow ? airflowLink(r.airflow.grid_url, "open in Airflow's grid") : el("span", {class: "muted"}, "not an Airflow run")),
      r.error ? el("p", {class: "error"}, `${r.failed_step || ""}: ${r.error}`) : null,
      approval, overrides, delta.length ? el("div", {}, el("h3", {}, "Directories read"), delta) : null,
      table([{label: "step"}, {label: "status"}, {label: "adds", num: 1}, {label: "updates", num: 1},
        {label: "deletes", num: 1}, {label: "errors", num: 1}, {label: "duration", num: 1}, {label: ""}], steps)));
}

async function renderRuns() {
  const data = await api("/api/runs?limit=100");
  show(
    el("h2", {}, "Durations and changes"),
    el("div", {class: "legend"}, el("span", {}, el("i", {style: "background:#93c5fd"}), "duration (left axis)"),
      el("span", {}, el("i", {style: "background:#b45309"}), "people added + updated + marked for deletion (right axis)")),
    chart(data.chart),
    el("h2", {}, `Runs (${data.runs.length})`, " ", el("button", {onclick: () => route()}, "Refresh")),
    el("div", {"data-testid": "runs"}, data.runs.map(runRow)),
  );
}

// ------------------------------------------------------------------ gates and approval

// Failed checks in a table; the passed ones folded below it.
function checksTable(checks) {
  const failed = checks.filter((c) => !c.passed), passed = checks.filter((c) => c.passed);
  return el("div", {},
    failed.length ? checkRows(failed) : el("p", {class: "muted"}, "Every check passed."),
    passed.length ? el("details", {"data-testid": "passed-checks"}, el("summary", {}, `${passed.length} passed checks`),
      checkRows(passed)) : null);
}

function checkRows(checks) {
  return table(["check", "connection", "outcome", "observed", "allowed", "message"], checks.map((c) =>
    el("tr", {dataset: {check: c.name, passed: String(c.passed)}},
      el("td", {}, c.name, c.overridable ? "" : el("span", {class: "muted"}, " (structural)")),
      el("td", {}, c.connection || "all"),
      el("td", {}, chip(c.passed ? "passed" : (c.overridden ? "overridden" : "failed"))),
      el("td", {class: "mono"}, value(c.observed)), el("td", {}, value(c.allowed)),
      el("td", {}, c.message || "", (c.samples || []).length ? el("details", {}, el("summary", {}, `${c.samples.length} samples`),
        el("ul", {}, c.samples.map((s) => el("li", {class: "mono"}, typeof s === "object" ? (s.dn || JSON.stringify(s)) : String(s))))) : null))));
}

function pendingCard(p, report, mayApprove) {
  const taskState = p.airflow ? p.airflow.approval_task_state : "awaiting_input";
  const parked = taskState === "awaiting_input";
  const allowed = mayApprove && parked;
  const comment = el("textarea", {"data-testid": "approval-comment", placeholder: "Comment (recorded with your name)"});
  const result = el("p", {"data-testid": "approval-result"});
  const answer = async (decision) => {
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    try {
      const r = await api(`/api/approvals/${encodeURIComponent(p.dag_id)}/${encodeURIComponent(p.run_id)}`, {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({decision, comment: comment.value})});
      result.replaceChildren(chip(r.decision), ` by ${r.responded_by.name} at ${fmtTime(r.responded_at)}; the run goes on in Airflow.`);
    } catch (e) {
      result.replaceChildren(el("span", {class: "error"}, e.message));
      for (const b of card.querySelectorAll("button")) b.disabled = !allowed;
    }
  };
  const card = el("div", {class: "approval", "data-testid": "pending-approval", dataset: {runId: p.run_id, dagId: p.dag_id}},
    el("h3", {}, "Waiting for your decision: run ", el("span", {class: "mono"}, p.run_id), ` (${p.dag_id})`),
    el("p", {}, `Stopped before the export at ${fmtTime(p.requested_at)}` + (p.timeout_at ? `; without an answer by ${fmtTime(p.timeout_at)} it ends failed and writes nothing.` : ".")),
    el("ul", {}, (p.checks || []).map((c) => {
      // A check's message may start with its own name (and connection): say each once.
      const head = c.name + (c.connection ? ` [${c.connection}]` : "");
      const msg = (c.message || "").startsWith(head) ? c.message.slice(head.length).replace(/^:\s*/, "") : c.message;
      return el("li", {"data-testid": "pending-check"}, el("strong", {}, c.name), c.connection ? ` [${c.connection}]` : "", ": ", msg);
    })),
    report ? checksTable(report.checks) : null,
    comment,
    el("div", {},
      el("button", {class: "approve", "data-testid": "approve", disabled: !allowed, onclick: () => answer("approve")}, "Approve: export"),
      " ",
      el("button", {class: "reject", "data-testid": "reject", disabled: !allowed, onclick: () => answer("reject")}, "Reject: write nothing"),
      " ", p.required_actions_url ? airflowLink(p.required_actions_url, "or answer in Airflow's Required Actions") : null),
    mayApprove ? null : el("p", {class: "muted", "data-testid": "not-allowed"}, "Your Airflow role may not run this DAG: you can read the report, not approve it."),
    parked ? null : el("p", {class: "muted"}, `The approval request is being opened in Airflow (task approve_export: ${taskState || "not started"}); refresh in a moment.`),
    result);
  return card;
}

async function renderGates() {
  const data = await api("/api/gates?limit=100");
  const byRun = Object.fromEntries(data.reports.filter((r) => r.step === "validate_export").map((r) => [r.run_id, r]));
  show(
    el("h2", {}, "Waiting for approval"),
    data.pending.length ? data.pending.map((p) => pendingCard(p, byRun[p.run_id], data.can_approve[p.dag_id]))
      : el("p", {class: "muted", "data-testid": "no-pending"}, "No run is waiting for an approval."),
    el("h2", {}, "Gate reports", " ", el("button", {onclick: () => route()}, "Refresh")),
    el("div", {"data-testid": "gate-reports"}, data.reports.map((r) => el("details", {"data-testid": "gate-report",
      dataset: {runId: r.run_id, step: r.step, outcome: r.outcome}, open: r.failed > 0 ? true : null},
      el("summary", {}, chip(r.outcome), " ", r.step + (r.connection ? ` [${r.connection}]` : ""), " · ",
        el("span", {class: "mono"}, r.run_id), ` · ${fmtTime(r.started_at)} · ${r.failed} failed check(s)`),
      r.approval && r.approval.status !== "waiting" ? el("p", {"data-testid": "gate-approval"}, "Approval: ", chip(r.approval.status),
        r.approval.by ? ` by ${r.approval.by}` : "", r.approval.at ? ` at ${fmtTime(r.approval.at)}` : "",
        r.approval.comment ? ` — “${r.approval.comment}”` : "") : null,
      r.error ? el("p", {class: "error"}, r.error) : null,
      checksTable(r.checks)))),
  );
}

// ------------------------------------------------------------------ quarantine

async function renderQuarantine() {
  const q = await api("/api/quarantine");
  show(
    el("h2", {}, `In quarantine: `, el("span", {"data-testid": "quarantine-total"}, fmtNum(q.total))),
    el("p", {class: "muted"}, "Objects held back with a reason; the rest of each run goes on. A held object keeps its last good state; every run retries it."),
    table(["connection", "object", "why", "level", "profile kept", "since", "last seen"], q.objects.map((o) =>
      el("tr", {"data-testid": "quarantined", dataset: {dn: o.dn || "", anchor: o.anchor || ""}},
        el("td", {}, o.connection), el("td", {class: "mono"}, o.dn || o.anchor), el("td", {}, o.reason),
        el("td", {}, o.level), el("td", {}, o.kept_last_good ? "yes (last good state)" : "no"),
        el("td", {}, fmtTime(o.first_seen)), el("td", {}, fmtTime(o.last_seen))))),
  );
}

// ------------------------------------------------------------------ a person

function searchBox(initial) {
  const input = el("input", {type: "search", "data-testid": "person-query", placeholder: "account name, name or e-mail", value: initial || ""});
  const form = el("form", {"data-testid": "person-search", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#person?q=${encodeURIComponent(input.value.trim())}`;
  }}, input, " ", el("button", {type: "submit"}, "Search"));
  return form;
}

async function renderPersonSearch(q) {
  const nodes = [el("h2", {}, "A person"), searchBox(q)];
  if (!q) { show(...nodes, el("p", {class: "muted"}, "Why does a property have its value? Why has someone no profile? Search to see.")); return; }
  const data = await api(`/api/people?q=${encodeURIComponent(q)}`);
  const rows = data.results.map((r) => r.kind === "profile"
    ? el("li", {"data-testid": "result", dataset: {kind: "profile", profileId: r.profile_id}},
      el("a", {href: `#person/${encodeURIComponent(r.profile_id)}`}, r.name || r.account_name), " ",
      el("span", {class: "mono"}, r.account_name || ""), " ", chip(r.state))
    : el("li", {"data-testid": "result", dataset: {kind: "object", why: r.why.code}},
      el("strong", {}, r.name || r.dn), " — no profile: ", chip(r.why.code, r.why.text), " ",
      el("span", {class: "muted mono"}, `${r.connection}: ${r.dn || r.anchor}`),
      r.why.profile_id ? el("a", {href: `#person/${encodeURIComponent(r.why.profile_id)}`}, " (profile)") : null));
  show(...nodes, data.why ? el("p", {"data-testid": "never-seen"}, chip(data.why.code, "never seen"), " ", data.why.text) : null,
    el("ul", {"data-testid": "results"}, rows));
}

async function renderPerson(profileId) {
  const p = await api(`/api/people/${encodeURIComponent(profileId)}`);
  const runLink = (id) => {
    if (!id) return el("span", {class: "muted"}, "—");
    const r = (p.runs || {})[id] || {};
    return el("span", {dataset: {run: id}}, r.grid_url ? airflowLink(r.grid_url, id) : id,
      r.started_at ? el("span", {class: "muted"}, ` (${fmtTime(r.started_at)})`) : null);
  };
  const rows = p.properties.map((x) => el("tr", {"data-testid": "property", dataset: {property: x.property, kind: x.kind}},
    el("td", {}, x.property), el("td", {"data-testid": "value"}, value(x.value),
      x.metaverse_value !== undefined ? el("div", {class: "muted"}, "metaverse: ", value(x.metaverse_value)) : null,
      x.reference_dn ? el("div", {class: "muted mono"}, `→ ${x.reference_dn}`) : null),
    el("td", {"data-testid": "connection"}, x.connection || el("span", {class: "muted"}, "profile store")),
    el("td", {"data-testid": "source"}, x.source_attribute || "—"), el("td", {"data-testid": "transform"}, x.transform || "—"),
    el("td", {"data-testid": "changed-in"}, runLink(x.last_changed_in)),
    el("td", {class: "muted"}, x.note || (x.candidates && x.candidates.length > 1 ?
      x.candidates.map((c) => `${c.connection}: ${c.value === null ? "(empty)" : JSON.stringify(c.value)}`).join("; ") : ""))));
  show(
    el("h2", {}, "A person"), searchBox(""),
    el("h2", {"data-testid": "person-name"}, p.name || p.account_name || p.profile_id),
    el("p", {}, chip(p.status.code), " ", el("span", {"data-testid": "person-status"}, p.status.text), " · ",
      el("span", {class: "mono"}, p.account_name || ""), " · profile ", el("span", {class: "mono"}, p.profile_id)),
    el("h3", {}, "Properties"),
    table(["property", "value", "connection", "source attribute", "transform", "last changed in", ""], rows, {"data-testid": "properties"}),
    el("h3", {}, "Connector-space objects"),
    table(["connection", "DN", "anchor", "in scope", "linked"], p.objects.map((o) => el("tr", {"data-testid": "object", dataset: {connection: o.connection}},
      el("td", {}, o.connection), el("td", {class: "mono"}, o.dn || "—"), el("td", {class: "mono"}, o.anchor),
      el("td", {}, o.in_scope ? "yes" : `no: ${o.why}`), el("td", {}, o.connected ? "connected" : "disconnected")))),
    p.quarantine.length ? el("div", {}, el("h3", {}, "Quarantine"), el("ul", {}, p.quarantine.map((q) => el("li", {}, `${q.reason} (since ${fmtTime(q.first_seen)})`)))) : null,
  );
}

// ------------------------------------------------------------------ routing

async function route(quiet) {
  clearTimeout(refreshTimer);
  if (!quiet) lastStatus = null;
  const hash = location.hash.replace(/^#/, "") || "status";
  const [name, rest] = hash.split(/[/?](.*)/s);
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === name);
  if (!quiet) show(el("p", {class: "muted"}, "Loading…"));
  try {
    if (name === "runs") await renderRuns();
    else if (name === "gates") await renderGates();
    else if (name === "quarantine") await renderQuarantine();
    else if (name === "person" && hash.startsWith("person/")) await renderPerson(decodeURIComponent(rest));
    else if (name === "person") await renderPersonSearch(new URLSearchParams(rest || "").get("q") || "");
    else await renderStatus(quiet);
    view.dataset.loaded = hash;
  } catch (error) {
    failure(error);
  }
}

window.addEventListener("hashchange", () => route());
api("/api/me").then((me) => { document.getElementById("who").textContent = `signed in as ${me.user}`; }).catch(() => {});
route();
