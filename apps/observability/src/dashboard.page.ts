/**
 * `GET /`: the web dashboard, one self-contained page (inline CSS and script,
 * no fonts, no CDN: Muse runs on machines without internet access). It opens
 * the `v1/live` WebSocket (relative, so it also works behind a path prefix):
 * a snapshot first, then every run event as the live view applies it, and
 * agents and queues after every poll. Changes are drawn on the next animation
 * frame. While the socket is down it polls `v1/snapshot` every second and
 * retries the socket. Every string from the server goes through `esc()`
 * before it reaches `innerHTML`: workflow names, step ids and agent ids are
 * user data.
 *
 * Event-to-screen latency: for every pushed event the page records, once the
 * DOM shows it, `Date.now() - event.at` (the coordinator's append time; both
 * clocks are wall clocks, the same one when browser and cluster share a
 * machine) in `window.__museLatency`, and shows the median and p99 in the
 * header.
 *
 * Kept as a TypeScript string rather than an .html file so that `tsc -b` is
 * the whole build (it copies no assets to dist/).
 */
import { createHash } from 'node:crypto';
import { dagLayers } from './dag-layout.js';

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
.runs tr[data-run] { cursor:pointer; } .runs tr[data-run]:hover td { background:#f3f4f6; }
.runs tr.sel td { background:#eef2ff; }
.runhead { display:flex; gap:12px; align-items:center; flex-wrap:wrap; margin-bottom:8px; }
.runhead .mono { color:var(--muted); }
.dagwrap { overflow:auto; border:1px solid var(--line); border-radius:6px; background:#fbfbfc; }
svg.dag text { font: 12px ui-monospace, "DejaVu Sans Mono", Menlo, monospace; fill:#fff; pointer-events:none; }
svg.dag .edge { fill:none; stroke:#9ca3af; stroke-width:1.5; }
svg.dag .node rect { stroke:#00000022; }
svg.dag .n-pending rect { fill:var(--pending); } svg.dag .n-queued rect { fill:var(--queued); } svg.dag .n-running rect { fill:var(--running); }
svg.dag .n-waiting rect { fill:var(--waiting); } svg.dag .n-succeeded rect { fill:var(--succeeded); } svg.dag .n-failed rect { fill:var(--failed); }
svg.dag .n-skipped rect { fill:var(--skipped); } svg.dag .n-skipped text { fill:#374151; } svg.dag .n-cancelled rect { fill:var(--cancelled); }
svg.dag .n-running rect { animation: pulse 1.2s ease-in-out infinite; }
@keyframes pulse { 50% { opacity:.65; } }
.spend .big { font-size:20px; font-weight:600; font-variant-numeric: tabular-nums; }
header .lat { font-size:12px; color:#9ca3af; }
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
    $('runs').innerHTML = '<table class="runs"><thead><tr><th>status</th><th>run</th><th>workflow</th><th>updated</th><th>steps</th></tr></thead><tbody>' +
      s.runs.recent.map(function (r) {
        var wf = r.workflow ? esc(r.workflow.name) + ' <span class="meta">v' + esc(r.workflow.version) + '</span>' : '<span class="empty">unknown</span>';
        var chips = r.steps.map(function (st) {
          var tip = st.id + ': ' + st.status + (st.attempts > 1 ? ' (attempt ' + st.attempts + ')' : '') + (st.agent ? ' on ' + st.agent : '');
          return '<span class="chip ' + cls(st.status) + '" title="' + esc(tip) + '">' + esc(st.id) + (st.attempts > 1 ? '\\u00d7' + esc(st.attempts) : '') + '</span>';
        }).join('') + (r.stepsOmitted ? ' <span class="meta">+' + esc(r.stepsOmitted) + ' more</span>' : '');
        return '<tr data-run="' + esc(r.id) + '" data-status="' + esc(r.status) + '"' + (r.id === selectedId() ? ' class="sel"' : '') + '><td><span class="badge ' + cls(r.status) + '">' + esc(r.status) + '</span></td>' +
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

  var dagLayers = ${dagLayers.toString()};
  var NODE_W = 150, NODE_H = 34, COL_GAP = 56, ROW_GAP = 14, PAD = 12;

  /** The run the run view shows: the one named in the URL (#run=<id>), else the newest active run, else the newest. */
  function selectedId() { var m = /^#run=(.+)$/.exec(location.hash); return m ? decodeURIComponent(m[1]) : null; }
  var lastShown = null;
  function shownRun(s) {
    var want = selectedId();
    var runs = s.runs.recent;
    if (want) {
      for (var i = 0; i < runs.length; i++) if (runs[i].id === want) return (lastShown = runs[i]);
      return lastShown && lastShown.id === want ? lastShown : null;
    }
    for (var j = 0; j < runs.length; j++) if (['pending', 'running', 'waiting'].indexOf(runs[j].status) >= 0) return (lastShown = runs[j]);
    return (lastShown = runs[0] || null);
  }

  function renderDag(run) {
    var steps = run.steps;
    var layers = dagLayers(steps);
    var pos = {};
    var rows = layers.reduce(function (m, l) { return Math.max(m, l.length); }, 1);
    var height = PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP;
    var width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * COL_GAP;
    layers.forEach(function (ids, col) {
      var top = PAD + ((rows - ids.length) * (NODE_H + ROW_GAP)) / 2;
      ids.forEach(function (id, row) { pos[id] = { x: PAD + col * (NODE_W + COL_GAP), y: top + row * (NODE_H + ROW_GAP) }; });
    });
    var edges = [], nodes = [];
    steps.forEach(function (st) {
      (st.needs || []).forEach(function (n) {
        var a = pos[n], b = pos[st.id];
        if (!a || !b) return;
        var x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
        edges.push('<path class="edge" data-from="' + esc(n) + '" data-to="' + esc(st.id) + '" d="M' + x1 + ' ' + y1 + ' C' + mx + ' ' + y1 + ' ' + mx + ' ' + y2 + ' ' + x2 + ' ' + y2 + '"/>');
      });
    });
    steps.forEach(function (st) {
      var p = pos[st.id];
      var status = STEP_STATUSES.indexOf(st.status) >= 0 ? st.status : 'pending';
      var label = short(st.id) + (st.attempts > 1 ? ' \u00d7' + st.attempts : '');
      var tip = st.id + ': ' + st.status + (st.role ? ' \u00b7 ' + st.role : '') + (st.agent ? ' on ' + st.agent : '');
      nodes.push('<g class="node n-' + status + '" data-step="' + esc(st.id) + '" data-status="' + status + '" transform="translate(' + p.x + ',' + p.y + ')">' +
        '<title>' + esc(tip) + '</title><rect rx="6" width="' + NODE_W + '" height="' + NODE_H + '"/>' +
        '<text x="10" y="15">' + esc(label) + '</text><text x="10" y="28" opacity=".85">' + esc(status) + '</text></g>');
    });
    return '<svg class="dag" id="dag-svg" xmlns="http://www.w3.org/2000/svg" width="' + width + '" height="' + height + '" viewBox="0 0 ' + width + ' ' + height + '">' +
      edges.join('') + nodes.join('') + '</svg>';
  }

  function renderRunView(s) {
    var run = shownRun(s);
    if (!run) { $('runview').innerHTML = '<div class="empty">no run selected</div>'; return; }
    var wf = run.workflow ? esc(run.workflow.name) + ' v' + esc(run.workflow.version) : 'unknown workflow';
    var done = run.steps.filter(function (st) { return st.status === 'succeeded'; }).length;
    var tokens = run.tokens ? ' \u00b7 tokens ' + esc(run.tokens.input) + ' in / ' + esc(run.tokens.output) + ' out' : '';
    $('runview').innerHTML = '<div class="runhead"><span class="badge ' + cls(run.status) + '" id="run-status" data-status="' + esc(run.status) + '">' + esc(run.status) + '</span>' +
      '<strong>' + wf + '</strong><span class="mono" id="run-id">' + esc(run.id) + '</span>' +
      '<span class="meta">' + done + '/' + run.steps.length + ' steps succeeded' + tokens + (selectedId() ? '' : ' \u00b7 following the newest run') + '</span></div>' +
      (run.steps.length ? '<div class="dagwrap" id="dag">' + renderDag(run) + '</div>' : '<div class="empty">no steps known</div>') +
      (run.stepsOmitted ? '<div class="legend">+' + esc(run.stepsOmitted) + ' more steps not shown</div>' : '');
  }

  function renderSpend(s) {
    var sp = s.spend || { inputTokens: 0, outputTokens: 0, byModel: [] };
    $('spend').innerHTML = '<div class="counters"><div class="counter"><div class="v" id="tokens-in">' + esc(sp.inputTokens) + '</div><div class="l">input tokens*</div></div>' +
      '<div class="counter"><div class="v" id="tokens-out">' + esc(sp.outputTokens) + '</div><div class="l">output tokens*</div></div></div>' +
      (sp.byModel.length ? '<table><thead><tr><th>model</th><th class="num">steps</th><th class="num">in</th><th class="num">out</th></tr></thead><tbody>' +
        sp.byModel.map(function (m) {
          return '<tr><td class="mono">' + esc(m.model) + '</td><td class="num">' + esc(m.steps) + '</td><td class="num">' + esc(m.inputTokens) + '</td><td class="num">' + esc(m.outputTokens) + '</td></tr>';
        }).join('') + '</tbody></table>' : '<div class="empty">no model calls yet</div>');
  }

  var snap = null;
  var dirty = {};
  var pendingLatency = [];
  var scheduled = false;
  var lat = (window.__museLatency = []);
  var LAT_CAP = 10000;

  function markAll() { dirty = { counters: 1, agents: 1, queues: 1, runs: 1, runview: 1, events: 1, spend: 1 }; }

  function flush() {
    scheduled = false;
    if (!snap) return;
    var nowMs = Date.parse(snap.generatedAt) || Date.now();
    $('ns').textContent = snap.namespace;
    if (dirty.counters) renderCounters(snap);
    if (dirty.agents) renderAgents(snap, Math.max(nowMs, Date.now()));
    if (dirty.queues) renderQueues(snap);
    if (dirty.runs) renderRuns(snap, Date.now());
    if (dirty.runview) renderRunView(snap);
    if (dirty.events) renderEvents(snap);
    if (dirty.spend) renderSpend(snap);
    dirty = {};
    if (pendingLatency.length) {
      var shown = Date.now();
      pendingLatency.forEach(function (e) {
        var at = Date.parse(e.at);
        if (isNaN(at)) return;
        lat.push({ ms: shown - at, type: e.type, runId: e.runId, seq: e.seq, stepId: e.stepId });
      });
      if (lat.length > LAT_CAP) lat.splice(0, lat.length - LAT_CAP);
      pendingLatency = [];
      renderLatency();
    }
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    // A hidden tab gets no animation frames; draw anyway so the page is current when shown.
    if (document.hidden) setTimeout(flush, 0); else requestAnimationFrame(flush);
  }

  function quantile(sorted, q) { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : 0; }
  function renderLatency() {
    var xs = lat.slice(-1000).map(function (x) { return x.ms; }).sort(function (a, b) { return a - b; });
    $('lat').textContent = 'event\u2192screen p50 ' + quantile(xs, 0.5) + ' ms \u00b7 p99 ' + quantile(xs, 0.99) + ' ms (' + xs.length + ')';
  }

  function upsertRun(run) {
    var list = snap.runs.recent;
    for (var i = 0; i < list.length; i++) if (list[i].id === run.id) { list.splice(i, 1); break; }
    list.unshift(run);
    if (list.length > 50) list.length = 50;
  }

  function onMessage(msg) {
    if (msg.type === 'snapshot') { snap = msg.snapshot; markAll(); }
    else if (!snap) return;
    else if (msg.type === 'event') {
      if (msg.run) upsertRun(msg.run);
      snap.events.unshift(msg.event);
      if (snap.events.length > 200) snap.events.length = 200;
      snap.runs.byStatus = msg.runs.byStatus; snap.runs.active = msg.runs.active;
      snap.totals = msg.totals; snap.spend = msg.spend;
      dirty.counters = dirty.runs = dirty.runview = dirty.events = dirty.spend = 1;
      pendingLatency.push(msg.event);
    } else if (msg.type === 'state') {
      snap.generatedAt = msg.generatedAt; snap.agents = msg.agents; snap.queues = msg.queues;
      snap.runs.byStatus = msg.runs.byStatus; snap.runs.active = msg.runs.active;
      snap.totals = msg.totals; snap.spend = msg.spend;
      dirty.counters = dirty.agents = dirty.queues = dirty.runs = dirty.spend = 1;
    }
    schedule();
  }

  function conn(ok, text) {
    $('dot').className = 'dot ' + (ok ? 'ok' : 'err');
    $('conn-text').textContent = text;
    document.body.setAttribute('data-conn', ok ? text.split(' ')[0] : 'down');
  }

  // The WebSocket; while it is down, the snapshot is polled every second.
  var ws = null, pollTimer = null, retryMs = 500;
  function poll() {
    fetch('v1/snapshot', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (s) { onMessage({ type: 'snapshot', snapshot: s }); conn(true, 'polling \u00b7 ' + clock(s.generatedAt) + ' UTC'); })
      .catch(function (err) { conn(false, 'snapshot unavailable: ' + err.message); });
  }
  function startPolling() { if (!pollTimer) { poll(); pollTimer = setInterval(poll, 1000); } }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }
  function connect() {
    var url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + location.pathname.replace(/[^/]*$/, '') + 'v1/live';
    try { ws = new WebSocket(url); } catch (e) { startPolling(); setTimeout(connect, retryMs); return; }
    ws.onopen = function () { retryMs = 500; stopPolling(); conn(true, 'live'); };
    ws.onmessage = function (m) { try { onMessage(JSON.parse(m.data)); } catch (e) { /* a bad frame is dropped */ } };
    ws.onclose = function () {
      ws = null;
      startPolling();
      setTimeout(connect, retryMs);
      retryMs = Math.min(10000, retryMs * 2);
    };
  }

  document.addEventListener('click', function (e) {
    var tr = e.target.closest ? e.target.closest('tr[data-run]') : null;
    if (tr) location.hash = 'run=' + encodeURIComponent(tr.getAttribute('data-run'));
  });
  window.addEventListener('hashchange', function () { dirty.runs = dirty.runview = 1; schedule(); });
  document.addEventListener('visibilitychange', function () { if (!document.hidden) schedule(); });
  connect();
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
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>Muse</h1><span class="ns" id="ns"></span><span class="lat" id="lat"></span><span class="conn"><span class="dot" id="dot"></span><span id="conn-text">connecting…</span></span></header>
<main>
<section class="wide"><h2>Counters</h2><div class="counters" id="counters"></div><div class="legend" id="since"></div></section>
<section><h2>Agents</h2><div class="agents" id="agents"></div></section>
<section><h2>Queues</h2><div id="queues"></div></section>
<section class="wide"><h2>Recent runs</h2><div id="runs"></div><div class="legend">${LEGEND} \u00b7 click a run to follow it</div></section>
<section class="wide"><h2>Run</h2><div id="runview"></div></section>
<section><h2>Spend</h2><div class="spend" id="spend"></div><div class="legend">* model tokens of agent steps seen live by this process; no prices are configured, so no cost in money.</div></section>
<section><h2>Recent events</h2><div class="events" id="events"></div></section>
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
