// The dashboard is one self-contained page (no build step for users, no external assets): it opens
// an EventSource on /api/stream and re-renders on every cluster snapshot the daemon sends.
export const dashboardHtml = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gc dashboard</title>
<style>
  :root { --bg:#0f1419; --panel:#182028; --line:#2a3540; --text:#e6edf3; --dim:#8b98a5; --ok:#3fb950; --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; font: 14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; gap:16px; align-items:baseline; padding:14px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  header .meta { color:var(--dim); }
  #conn { margin-left:auto; font-size:12px; }
  main { display:grid; grid-template-columns: 1fr 380px; gap:16px; padding:16px 20px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 10px; }
  table { width:100%; border-collapse:collapse; }
  td, th { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  .badge { display:inline-block; padding:1px 7px; border-radius:10px; font-size:12px; border:1px solid var(--line); margin:1px 2px; }
  .active { border-color:var(--ok); color:var(--ok); }
  .passive { color:var(--dim); }
  .activating, .deactivating { border-color:var(--warn); color:var(--warn); }
  .healthy { color:var(--ok); } .degraded { color:var(--warn); } .unhealthy { color:var(--bad); } .unknown { color:var(--dim); }
  .apps { display:grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap:12px; }
  .app { border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
  .app h3 { margin:0 0 6px; font-size:15px; }
  .kv { color:var(--dim); font-size:12px; }
  .kv b { color:var(--text); font-weight:500; }
  svg.lag { width:100%; height:60px; background:#11181f; border-radius:4px; margin-top:8px; }
  #events { list-style:none; margin:0; padding:0; max-height:70vh; overflow:auto; }
  #events li { padding:6px 0 6px 12px; border-left:2px solid var(--line); margin-left:4px; font-size:13px; }
  #events li.leader { border-left-color:var(--accent); }
  #events li.failed { border-left-color:var(--bad); }
  #events time { color:var(--dim); font-size:11px; display:block; }
  .empty { color:var(--dim); font-style:italic; }
  .ring { display:grid; grid-template-columns: repeat(auto-fill, 12px); gap:2px; margin-top:8px; }
  .ring i { width:12px; height:12px; border-radius:2px; display:block; }
  .ring i.moving { outline:1px solid var(--warn); opacity:.55; }
  .ring i.none { background:#2a3540; }
  .badge.cordoned, .badge.draining, .badge.warn { border-color:var(--warn); color:var(--warn); }
  .badge.placed { border-color:var(--accent); }
  .badge.unplaced { color:var(--dim); border-style:dashed; }
  .badge[title] { cursor:help; }
  .warn, .kv b.warn { color:var(--warn); }
  .drain { color:var(--warn); font-size:12px; margin-top:2px; }
</style>
</head>
<body>
<header>
  <h1>gc · <span id="platform">…</span></h1>
  <span class="meta" id="summary"></span>
  <span id="conn" class="unknown">connecting…</span>
</header>
<main>
  <div style="display:grid; gap:16px; align-content:start">
    <section><h2>Apps</h2><p id="placement-error" class="unhealthy" hidden></p><div id="apps" class="apps"><p class="empty">waiting for the first snapshot…</p></div></section>
    <section><h2>Nodes</h2><table><thead><tr><th>node</th><th>health</th><th>labels</th><th>apps</th></tr></thead><tbody id="nodes"></tbody></table></section>
  </div>
  <section><h2>Events</h2><ul id="events"><li class="empty">no events yet</li></ul></section>
</main>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const lagHistory = new Map(); // app -> [{t, lagMs}]
// The timeline merges the server's events with leader changes this page saw itself between two
// snapshots, so a failover of the node serving the page is still on the timeline after it reconnects.
const timeline = new Map(); // key -> event
let previous;
function deriveLocal(s) {
  if (previous) {
    for (const a of s.apps) {
      const old = previous.apps.find((x) => x.name === a.name);
      if (a.mode === 'active-passive' && old && a.leader && (old.leader !== a.leader || old.epoch !== a.epoch)) {
        const key = 'leader:' + a.name + ':' + a.epoch;
        if (!timeline.has(key)) timeline.set(key, { key, time: s.generatedAt, node: a.leader, app: a.name, type: 'app.leader', text: 'leader of ' + a.name + ': ' + (old.leader ?? '—') + ' → ' + a.leader + ' (epoch ' + a.epoch + ')' });
      }
    }
  }
  for (const e of s.events) if (!timeline.has(e.key)) timeline.set(e.key, e);
  previous = s;
  const all = [...timeline.values()].sort((x, y) => x.time - y.time);
  while (all.length > 100) timeline.delete(all.shift().key);
  return all;
}

function lagChart(app) {
  const pts = lagHistory.get(app) ?? [];
  if (pts.length < 2) return '<svg class="lag" viewBox="0 0 300 60"><text x="8" y="34" fill="#8b98a5" font-size="11">replication lag: collecting…</text></svg>';
  const max = Math.max(10, ...pts.map((p) => p.lagMs));
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
  const d = pts.map((p, i) => (i ? 'L' : 'M') + ((p.t - t0) / Math.max(1, t1 - t0)) * 296 + 2 + ',' + (56 - (p.lagMs / max) * 50)).join(' ');
  return '<svg class="lag" viewBox="0 0 300 60"><path d="' + d + '" fill="none" stroke="#58a6ff" stroke-width="1.5"/>' +
    '<text x="6" y="12" fill="#8b98a5" font-size="10">replication lag (max ' + max.toFixed(0) + ' ms)</text></svg>';
}

// One color per node, stable across snapshots (a hash of the node id, spread by the golden angle).
const colorOf = (n) => { let h = 0; for (const c of String(n)) h = (h * 31 + c.charCodeAt(0)) >>> 0; return 'hsl(' + Math.round((h * 137.508) % 360) + ' 60% 55%)'; };
function ringMap(r) {
  if (!r) return '';
  const moving = new Set(r.moving);
  const cells = r.owners.map((o, p) => '<i class="' + (o ? '' : 'none ') + (moving.has(p) ? 'moving' : '') + '" data-partition="' + p + '"' +
    (o ? ' style="background:' + colorOf(o) + '"' : '') + ' title="partition ' + p + ': ' + esc(o ?? 'moving') + (moving.has(p) ? ' → ' + esc(r.targets[p] ?? '?') : '') + (r.pins[p] ? ' (pinned to ' + esc(r.pins[p]) + ')' : '') + '"></i>').join('');
  const counts = Object.entries(r.counts).sort().map(([n, c]) => '<span class="badge" data-ring-node="' + esc(n) + '" style="border-color:' + colorOf(n) + '">' + esc(n) + ': ' + c + '</span>').join('');
  return '<div class="kv" style="margin-top:6px">' + r.partitions + ' partitions · coordinator <b>' + esc(r.coordinator ?? '—') + '</b> · <b class="ring-moving">' + r.moving.length + '</b> moving · map v' + r.mapVersion + '</div>' +
    '<div style="margin-top:4px">' + counts + '</div><div class="ring" data-ring="1">' + cells + '</div>';
}

// Placement: how long from now to ms (a drain's deadline), for people.
function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
}
// A node's cordon or drain (h: the snapshot's placement.nodes[id]), as badges and a line; now: the snapshot's time.
function nodeHoldHtml(h, now) {
  if (!h) return '';
  if (h.drain) {
    const d = h.drain;
    const left = d.forced ? 'forced' : d.since + d.deadlineMs > now ? duration(d.since + d.deadlineMs - now) + ' left' : 'deadline passed';
    return ' <span class="badge draining" data-hold="draining" title="' + esc('drained' + (h.by ? ' by ' + h.by : '') + ': ' + d.reason) + '">draining</span>' +
      '<div class="drain" data-drain="1">' + (d.seen ? d.remaining.length + ' app(s) left' + (d.remaining.length ? ': ' + esc(d.remaining.join(', ')) : '') : 'waiting for the scheduler') +
      (d.blocked.length ? ' · blocked: ' + esc(d.blocked.join('; ')) : '') + ' · <b class="drain-left">' + esc(left) + '</b></div>';
  }
  return h.cordoned ? ' <span class="badge cordoned" data-hold="cordoned" title="' + esc('cordoned' + (h.by ? ' by ' + h.by : '') + (h.cordonReason ? ': ' + h.cordonReason : '')) + '">cordoned</span>' : '';
}
// An app's placement (p: the snapshot's placement.apps[name]): its nodes, the preferred leader marked (★), why on hover.
function appPlacementHtml(p) {
  if (!p) return '';
  const nodes = [...new Set([...p.placed, ...Object.keys(p.reasons)])];
  const chips = nodes.map((n) => {
    const placed = p.placed.includes(n);
    const lead = placed && p.leader === n;
    return '<span class="badge ' + (placed ? 'placed' : 'unplaced') + (lead ? ' pref-leader' : '') + '" data-placed-node="' + esc(n) + '"' +
      (p.reasons[n] ? ' title="' + esc(p.reasons[n]) + '"' : '') + '>' + esc(n) + (lead ? ' ★' : '') + '</span>';
  }).join('');
  const warn = (kind, text) => '<div class="kv warn" data-placement-warn="' + kind + '">' + esc(text) + '</div>';
  return '<div class="kv placement" style="margin-top:6px">placement' + (p.leader ? ' · preferred leader <b>' + esc(p.leader) + '</b>' : '') +
    (p.placed.length ? '' : ' · <b class="warn">not placed</b>') + '</div><div>' + chips + '</div>' +
    (p.unsatisfiable ? warn('unsatisfiable', 'cannot be placed (' + p.unsatisfiable.constraint + '): ' + p.unsatisfiable.message) : '') +
    (p.deferred ? warn('deferred', 'migration deferred: ' + p.deferred) : '') +
    (p.refused ? warn('refused', 'migration refused: ' + p.refused) : '');
}

function render(s) {
  $('platform').textContent = s.platform;
  $('summary').textContent = s.nodes.length + ' node(s) · ' + s.apps.length + ' app(s) · nats-server ' + (s.nodes[0]?.server ?? '?') +
    (s.placement?.scheduler ? ' · placement decision ' + s.placement.generation + ' by ' + s.placement.scheduler : '') + ' · ' + new Date(s.generatedAt).toLocaleTimeString();
  const placement = s.placement ?? { apps: {}, nodes: {} };
  $('placement-error').hidden = !s.placementError;
  $('placement-error').textContent = s.placementError ? 'placement: ' + s.placementError : '';
  // Apps the scheduler decided on that no live node reports (unsatisfiable everywhere, say) still get a card.
  const apps = [...s.apps, ...Object.keys(placement.apps).filter((n) => !s.apps.some((a) => a.name === n)).map((name) => ({ name, mode: '—', leader: null, epoch: 0, roles: {} }))];
  $('apps').innerHTML = apps.length ? apps.map((a) => {
    const roles = Object.entries(a.roles).map(([n, r]) => '<span class="badge ' + esc(r) + '" data-node="' + esc(n) + '">' + esc(n) + ': ' + esc(r) + '</span>').join('');
    const broken = (r) => r.state === 'stalled' || r.state === 'refused' || r.state === 'publish-failing' || (r.role === 'replica' && r.reason);
    const repl = a.replication ? Object.entries(a.replication).map(([n, r]) => '<span class="' + (broken(r) ? 'unhealthy' : 'healthy') + '" data-repl-node="' + esc(n) + '">' + esc(n) + ' ' + esc(r.role) + ' txid ' + esc(r.txid) + (r.role === 'replica' ? ' lag ' + esc(r.lagTx) + ' tx / ' + esc(Math.round(r.lagMs)) + ' ms' : '') + ' · ' + esc(r.state) + (r.reason ? ' — ' + esc(r.reason) : '') + '</span>').join('<br>') : '';
    const backend = a.backend ? Object.entries(a.backend).map(([n, b]) => esc(n) + ': ' + esc(b)).join(', ') : '';
    return '<div class="app" data-app="' + esc(a.name) + '"><h3>' + esc(a.name) + '</h3>' +
      '<div class="kv">mode <b>' + esc(a.mode) + '</b>' + (a.mode === 'active-passive' ? ' · leader <b class="leader">' + esc(a.leader ?? '—') + '</b> · epoch <b>' + esc(a.epoch) + '</b>' : '') + '</div>' +
      '<div style="margin-top:6px">' + roles + '</div>' +
      (repl ? '<div class="kv" style="margin-top:6px">' + repl + '</div>' : '') +
      (backend ? '<div class="kv">backend ' + backend + '</div>' : '') +
      appPlacementHtml(placement.apps[a.name]) +
      (a.replication ? lagChart(a.name) : '') + (a.mode === 'ring' ? ringMap((s.rings ?? {})[a.name]) : '') + '</div>';
  }).join('') : '<p class="empty">no apps</p>';
  // Held nodes that stopped answering (a drained node shut down) stay listed: their cordon is still in force.
  const nodes = [...s.nodes, ...Object.keys(placement.nodes).filter((id) => !s.nodes.some((n) => n.id === id)).map((id) => ({ id, health: 'unknown', labels: {}, apps: [] }))];
  $('nodes').innerHTML = nodes.map((n) => '<tr data-node-row="' + esc(n.id) + '"><td>' + esc(n.id) + nodeHoldHtml(placement.nodes[n.id], s.generatedAt) + '</td><td class="' + esc(n.health) + '">' + esc(n.health) + '</td><td>' +
    Object.entries(n.labels).map(([k, v]) => '<span class="badge" data-label="' + esc(k) + '">' + esc(k) + '=' + esc(v) + '</span>').join('') + '</td><td>' +
    n.apps.map((a) => '<span class="badge ' + esc(a.role) + '">' + esc(a.name) + '</span>').join('') + '</td></tr>').join('');
  const events = deriveLocal(s);
  $('events').innerHTML = events.length ? events.slice().reverse().map((e) =>
    '<li class="' + (e.type.includes('leader') ? 'leader' : '') + (e.type.includes('failed') ? ' failed' : '') + '"><time>' + new Date(e.time).toLocaleTimeString() + ' · ' + esc(e.node) + '</time>' +
    esc(e.text) + '</li>').join('') : '<li class="empty">no events yet</li>';
}

function connect() {
  const es = new EventSource('api/stream');
  es.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'healthy'; };
  es.onerror = () => { $('conn').textContent = 'reconnecting…'; $('conn').className = 'unhealthy'; };
  es.onmessage = (m) => {
    const s = JSON.parse(m.data);
    for (const a of s.apps) {
      if (!a.replication) continue;
      const lag = Math.max(0, ...Object.values(a.replication).map((r) => r.lagMs ?? 0));
      const h = lagHistory.get(a.name) ?? [];
      h.push({ t: s.generatedAt, lagMs: lag });
      while (h.length > 120) h.shift();
      lagHistory.set(a.name, h);
    }
    render(s);
  };
}
connect();
</script>
</body>
</html>
`;
