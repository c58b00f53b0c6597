/**
 * `GET /`: the web dashboard, one self-contained page (inline CSS and script,
 * no fonts, no CDN: Muse runs on machines without internet access). It polls
 * `v1/snapshot` (relative, so it also works behind a path prefix) every
 * second and redraws. Every string from the snapshot goes through `esc()`
 * before it reaches `innerHTML`: workflow names, step ids and agent ids are
 * user data.
 *
 * Kept as a TypeScript string rather than an .html file so that `tsc -b` is
 * the whole build (it copies no assets to dist/).
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { --bg:#f6f7f9; --card:#fff; --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb;
  --pending:#9ca3af; --queued:#60a5fa; --running:#2563eb; --waiting:#8b5cf6; --succeeded:#16a34a;
  --failed:#dc2626; --skipped:#d1d5db; --cancelled:#d97706; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:12px; padding:10px 20px; background:#111827; color:#f9fafb; }
header h1 { font-size:18px; margin:0; font-weight:600; }
header .ns { color:#9ca3af; }
header .conn { margin-left:auto; display:flex; align-items:center; gap:6px; font-size:13px; color:#d1d5db; }
.dot { width:10px; height:10px; border-radius:50%; background:#6b7280; display:inline-block; }
.dot.ok { background:#22c55e; } .dot.err { background:#ef4444; }
main { padding:16px 20px; display:grid; gap:16px; grid-template-columns: 1fr 1fr; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 10px; font-weight:600; }
.counters { display:grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap:10px; }
.counter { border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.counter .v { font-size:24px; font-weight:600; font-variant-numeric: tabular-nums; }
.counter .l { color:var(--muted); font-size:12px; }
.counter.bad .v { color:var(--failed); } .counter.good .v { color:var(--succeeded); } .counter.live .v { color:var(--running); }
.agents { display:grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap:8px; }
.agent { border:1px solid var(--line); border-left:4px solid var(--succeeded); border-radius:6px; padding:6px 8px; font-size:12px; }
.agent.busy { border-left-color: var(--cancelled); } .agent.full { border-left-color: var(--failed); } .agent.stale { opacity:.55; }
.agent .id { font-weight:600; font-size:13px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.agent .meta { color:var(--muted); }
.bar { height:6px; background:var(--line); border-radius:3px; overflow:hidden; margin:4px 0; }
.bar > span { display:block; height:100%; background:var(--running); }
table { width:100%; border-collapse:collapse; font-size:13px; }
th { text-align:left; color:var(--muted); font-weight:600; font-size:12px; border-bottom:1px solid var(--line); padding:4px 6px; }
td { border-bottom:1px solid var(--line); padding:4px 6px; vertical-align:top; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12px; }
.badge { display:inline-block; padding:1px 7px; border-radius:9px; color:#fff; font-size:12px; font-weight:600; }
.chip { display:inline-block; padding:1px 6px; margin:1px 2px 1px 0; border-radius:4px; color:#fff; font-size:11px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.s-pending { background:var(--pending); } .s-queued { background:var(--queued); } .s-running { background:var(--running); }
.s-waiting { background:var(--waiting); } .s-succeeded { background:var(--succeeded); } .s-failed { background:var(--failed); }
.s-skipped { background:var(--skipped); color:#374151; } .s-cancelled { background:var(--cancelled); }
.legend { color:var(--muted); font-size:12px; margin-top:8px; }
.empty { color:var(--muted); font-style:italic; }
.events { max-height:420px; overflow:auto; }
.events td { white-space:nowrap; }
.t-run\\.completed { color:var(--succeeded); } .t-run\\.failed, .t-step\\.failed { color:var(--failed); } .t-run\\.cancelled { color:var(--cancelled); }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
`;

const SCRIPT = `
(function () {
  'use strict';
  var STEP_STATUSES = ['pending', 'queued', 'running', 'waiting', 'succeeded', 'failed', 'skipped', 'cancelled'];
  function $(id) { return document.getElementById(id); }
  function esc(v) {
    return String(v == null ? '' : v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function cls(status) { return STEP_STATUSES.indexOf(status) >= 0 ? 's-' + status : 's-pending'; }
  function ago(iso, nowMs) {
    var t = Date.parse(iso);
    if (isNaN(t)) return '?';
    var s = Math.max(0, Math.round((nowMs - t) / 1000));
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 86400) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }
  function clock(iso) { var d = new Date(iso); return isNaN(d.getTime()) ? esc(iso) : d.toISOString().slice(11, 23); }
  function short(id) { id = String(id); return id.length > 14 ? id.slice(0, 13) + '\\u2026' : id; }
  function counter(label, value, kind) {
    return '<div class="counter ' + (kind || '') + '"><div class="v">' + esc(value) + '</div><div class="l">' + esc(label) + '</div></div>';
  }

  function renderCounters(s) {
    var b = s.runs.byStatus, t = s.totals;
    $('counters').innerHTML = [
      counter('active runs', s.runs.active, 'live'),
      counter('runs succeeded', b.succeeded, 'good'),
      counter('runs failed', b.failed, b.failed ? 'bad' : ''),
      counter('runs cancelled', b.cancelled),
      counter('agents alive', s.agents.length, 'live'),
      counter('queued work', s.queues.reduce(function (n, q) { return n + q.waiting; }, 0)),
      counter('runs started*', t.runsStarted),
      counter('steps completed*', t.stepsCompleted, 'good'),
      counter('steps failed*', t.stepsFailed, t.stepsFailed ? 'bad' : ''),
      counter('steps retried*', t.stepsRetried),
      counter('events seen*', t.eventsSeen),
    ].join('');
    $('since').textContent = '* since ' + t.since + ' (this process); run counts by status include runs from the read model.';
  }

  function renderAgents(s, nowMs) {
    if (!s.agents.length) { $('agents').innerHTML = '<div class="empty">no live agents</div>'; return; }
    $('agents').innerHTML = s.agents.map(function (a) {
      var pct = Math.min(100, Math.round(a.load * 100));
      var state = a.inFlight === 0 ? 'idle' : pct >= 100 ? 'full' : 'busy';
      var age = (nowMs - Date.parse(a.lastSeenAt)) / 1000;
      return '<div class="agent ' + state + (age > 5 ? ' stale' : '') + '" title="' + esc(a.agentId) + '">' +
        '<div class="id">' + esc(a.agentId) + '</div>' +
        '<div class="meta">' + esc(a.roles.join(', ')) + '</div>' +
        '<div class="bar"><span style="width:' + pct + '%"></span></div>' +
        '<div class="meta">' + esc(state) + ' \\u00b7 ' + esc(a.inFlight) + ' in flight \\u00b7 load ' + pct + '%</div>' +
        '<div class="meta">' + esc(a.host) + ':' + esc(a.pid) + ' \\u00b7 seen ' + esc(ago(a.lastSeenAt, nowMs)) + '</div>' +
        '<div class="meta">done ' + esc(a.completed) + ' \\u00b7 failed ' + esc(a.failed) + '</div>' +
        '</div>';
    }).join('');
  }

  function renderQueues(s) {
    var max = s.queues.reduce(function (m, q) { return Math.max(m, q.waiting + q.active + q.delayed); }, 1);
    $('queues').innerHTML = '<table><thead><tr><th>role</th><th class="num">waiting</th><th class="num">active</th><th class="num">delayed</th><th style="width:40%"></th></tr></thead><tbody>' +
      s.queues.map(function (q) {
        var pct = Math.round(((q.waiting + q.active + q.delayed) / max) * 100);
        return '<tr><td>' + esc(q.role) + '</td><td class="num">' + esc(q.waiting) + '</td><td class="num">' + esc(q.active) +
          '</td><td class="num">' + esc(q.delayed) + '</td><td><div class="bar"><span style="width:' + pct + '%"></span></div></td></tr>';
      }).join('') + '</tbody></table>';
  }

  function renderRuns(s, nowMs) {
    if (!s.runs.recent.length) { $('runs').innerHTML = '<div class="empty">no runs yet</div>'; return; }
    $('runs').innerHTML = '<table><thead><tr><th>status</th><th>run</th><th>workflow</th><th>updated</th><th>steps</th></tr></thead><tbody>' +
      s.runs.recent.map(function (r) {
        var wf = r.workflow ? esc(r.workflow.name) + ' <span class="meta">v' + esc(r.workflow.version) + '</span>' : '<span class="empty">unknown</span>';
        var chips = r.steps.map(function (st) {
          var tip = st.id + ': ' + st.status + (st.attempts > 1 ? ' (attempt ' + st.attempts + ')' : '') + (st.agent ? ' on ' + st.agent : '');
          return '<span class="chip ' + cls(st.status) + '" title="' + esc(tip) + '">' + esc(st.id) + (st.attempts > 1 ? '\\u00d7' + esc(st.attempts) : '') + '</span>';
        }).join('') + (r.stepsOmitted ? ' <span class="meta">+' + esc(r.stepsOmitted) + ' more</span>' : '');
        return '<tr><td><span class="badge ' + cls(r.status) + '">' + esc(r.status) + '</span></td>' +
          '<td class="mono" title="' + esc(r.id) + '">' + esc(short(r.id)) + '</td><td>' + wf + '</td>' +
          '<td title="' + esc(r.updatedAt) + '">' + esc(ago(r.updatedAt, nowMs)) + '</td><td>' + chips + '</td></tr>';
      }).join('') + '</tbody></table>';
  }

  function renderEvents(s) {
    if (!s.events.length) { $('events').innerHTML = '<div class="empty">no events yet</div>'; return; }
    $('events').innerHTML = '<table class="mono"><tbody>' + s.events.map(function (e) {
      var extra = [];
      if (e.stepId) extra.push(e.stepId + (e.attempt ? '#' + e.attempt : ''));
      if (e.role) extra.push('role=' + e.role);
      if (e.agentId) extra.push('agent=' + e.agentId);
      if (e.errorCode) extra.push(e.errorCode + (e.final === false ? ' (will retry)' : ''));
      return '<tr><td>' + clock(e.at) + '</td><td class="t-' + esc(e.type) + '">' + esc(e.type) + '</td><td title="' + esc(e.runId) + '">' +
        esc(short(e.runId)) + '</td><td>' + esc(extra.join(' ')) + '</td></tr>';
    }).join('') + '</tbody></table>';
  }

  function render(s) {
    var nowMs = Date.parse(s.generatedAt);
    $('ns').textContent = s.namespace;
    renderCounters(s);
    renderAgents(s, nowMs);
    renderQueues(s);
    renderRuns(s, nowMs);
    renderEvents(s);
  }

  function conn(ok, text) {
    $('dot').className = 'dot ' + (ok ? 'ok' : 'err');
    $('conn-text').textContent = text;
  }

  function tick() {
    fetch('v1/snapshot', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (s) { render(s); conn(true, 'live \\u00b7 ' + clock(s.generatedAt) + ' UTC'); })
      .catch(function (err) { conn(false, 'snapshot unavailable: ' + err.message); })
      .then(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
`;

const LEGEND = ['pending', 'queued', 'running', 'waiting', 'succeeded', 'failed', 'skipped', 'cancelled']
  .map((s) => `<span class="chip s-${s}">${s}</span>`)
  .join(' ');

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Muse dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>Muse</h1><span class="ns" id="ns"></span><span class="conn"><span class="dot" id="dot"></span><span id="conn-text">connecting…</span></span></header>
<main>
<section class="wide"><h2>Counters</h2><div class="counters" id="counters"></div><div class="legend" id="since"></div></section>
<section><h2>Agents</h2><div class="agents" id="agents"></div></section>
<section><h2>Queues</h2><div id="queues"></div></section>
<section class="wide"><h2>Recent runs</h2><div id="runs"></div><div class="legend">${LEGEND}</div></section>
<section class="wide"><h2>Recent events</h2><div class="events" id="events"></div></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * Only this page's own script may run, and it may only talk to this origin:
 * the hash pins the inline script, so injected markup could not execute even
 * if an escape were missed. Inline styles are allowed (bar widths are style
 * attributes) since they cannot run code.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
