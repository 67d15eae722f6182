import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '@gc/core';
import { isGcError, isStreamNotFound, realClock } from '@gc/core';
import {
  PlacementOpErrorCode,
  type AdminClient,
  type Audit,
  type AuditRecord,
  type NodeAdmin,
  type PlacementBucket,
  type PlacementState,
  type PlatformStatus,
} from '@gc/platform';
import { summarize, type StatusJson } from '../status-summary.js';
import { dashboardHtml } from './page.js';

/** One line of the dashboard's timeline. */
export interface DashboardEvent {
  /** Identifies the event so the page can merge what it derived itself with what the server sends. */
  key: string;
  time: number;
  node: string;
  type: string;
  app?: string;
  text: string;
}

/** The partition map of a ring-mode app, as the dashboard shows it. */
export interface RingView {
  partitions: number;
  /** Serving owner per partition (null while it moves or has no owner). */
  owners: Array<string | null>;
  /** The coordinator's target per partition. */
  targets: Array<string | null>;
  /** Partitions served per node. */
  counts: Record<string, number>;
  /** Partitions whose target is not yet their serving owner. */
  moving: number[];
  pins: Record<number, string>;
  coordinator: string | null;
  mapVersion: number;
}

/** One app of the placement section: where the scheduler placed it, and why (or why not). */
export interface PlacementAppView {
  /** Nodes the last decision placed it on (empty when it cannot be placed). */
  placed: string[];
  /** Active-passive: the preferred leader. */
  leader?: string;
  /** No node set satisfies the app: the deciding constraint and the scheduler's message. */
  unsatisfiable?: { constraint: string; message: string };
  /** Its automatic migration waits (cooldown, maintenance window, too many in flight): why. */
  deferred?: string;
  /** `onMigrationStart` refused to leave a node: "node: reason". */
  refused?: string;
  /** Node → why it was selected, passed over or excluded, one line each (see {@link describeReason}). */
  reasons: Record<string, string>;
}

/** A node an operator holds: cordoned (takes no new apps) or drained (every app leaves it). */
export interface PlacementNodeView {
  cordoned: boolean;
  /** The operator's reason. */
  cordonReason?: string;
  /** Who cordoned or drained it. */
  by?: string;
  /** Present while the node is drained. */
  drain?: {
    /** Wall-clock ms the drain started. */
    since: number;
    /** How long it may take before the moves a budget holds back are forced. */
    deadlineMs: number;
    reason: string;
    /** Apps still placed on the node. */
    remaining: string[];
    /** Why some of them cannot leave yet (a budget, no other node). */
    blocked: string[];
    /** The deadline passed: the moves are forced. */
    forced: boolean;
    /** Whether the scheduler's last decision saw the drain yet (remaining/blocked/forced are its view). */
    seen: boolean;
  };
}

/** The placement section of a snapshot: the scheduler's last decision and the operators' holds. */
export interface PlacementView {
  /** Node that made the decision (null before the first decision). */
  scheduler: string | null;
  epoch: number;
  /** Increases with every decision (0: none yet). */
  generation: number;
  /** Wall-clock ms of the decision (null before the first one). */
  at: number | null;
  apps: Record<string, PlacementAppView>;
  /** Cordoned and drained nodes, by node id (nodes nobody holds are left out). */
  nodes: Record<string, PlacementNodeView>;
}

/** What `/api/cluster` returns and `/api/stream` pushes. */
export interface ClusterSnapshot extends StatusJson {
  generatedAt: number;
  nodes: Array<StatusJson['nodes'][number] & { apps: Array<{ name: string; role: string }> }>;
  events: DashboardEvent[];
  /** Ring-mode apps' partition maps, by app (when the dashboard was given `ring`). */
  rings: Record<string, RingView>;
  /**
   * Placement: the scheduler's decision, cordons and drains (when the dashboard was given `placement` and
   * the platform has a placement bucket; absent when no app uses placement).
   */
  placement?: PlacementView;
  /** Why the placement bucket could not be read for this snapshot (the section is then absent). */
  placementError?: string;
}

/** What the dashboard reads of the placement bucket (a {@link PlacementBucket} is one). */
export type PlacementSource = Pick<PlacementBucket, 'state' | 'admins'>;

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  platform: string;
  /** The node serving the dashboard (named in events it derives). */
  nodeId: string;
  admin: AdminClient;
  /** The platform's audit trail: its recent records are the timeline (leader changes derived from snapshots are added). */
  audit?: Audit;
  /** How far back the timeline reads the audit trail, in ms. Default 30 minutes. */
  auditWindowMs?: number;
  /** How long to collect node answers per snapshot, in ms. Default 300. */
  collectMs?: number;
  /** Snapshot period while a browser is connected, in ms. Default 1000. */
  periodMs?: number;
  /** Events kept for the timeline. Default 100. */
  maxEvents?: number;
  /**
   * Opens a read-only view of a ring-mode app's partition map (`openRingObserver` of `@gc/ring`); undefined
   * when the app has no ring yet. Without it the dashboard shows no partition maps.
   */
  ring?: (app: string) => Promise<RingSource | undefined>;
  /**
   * Opens the platform's placement bucket (`openPlacementBucket(nc, platform, { create: false })` of
   * `@gc/platform`); undefined, a `PlacementNotFoundError` or a "stream not found" read means the platform
   * has none (no app uses placement): the snapshot then has no placement section. Read once per snapshot.
   * Without it the dashboard shows no placement.
   */
  placement?: () => Promise<PlacementSource | undefined>;
  clock?: Clock;
}

/** What the dashboard reads of a ring (a `RingObserver` of `@gc/ring` is one). */
export interface RingSource {
  snapshot(): RingView;
  close(): Promise<void>;
}

/** The dashboard's routes for the node's HTTP server, and a close() that ends live streams. */
export interface Dashboard {
  routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void | Promise<void>>;
  /** Adds an event to the timeline (audit events, failovers seen by this node). */
  push(event: DashboardEvent): void;
  close(): void;
}

/**
 * Serves the live dashboard: `/` (the page), `/api/cluster` (a snapshot of every node's status, the apps'
 * leaders and the recent events) and `/api/stream` (server-sent events, one snapshot a second while a
 * browser is connected; nothing runs when nobody watches). Leader changes, joins and leaves are
 * derived from consecutive snapshots and added to the timeline.
 */
export function createDashboard(o: DashboardOptions): Dashboard {
  const clock = o.clock ?? realClock;
  const events: DashboardEvent[] = [];
  const clients = new Set<ServerResponse>();
  let previous: ClusterSnapshot | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let inflight: Promise<ClusterSnapshot> | undefined;
  /** Ring views opened so far, by app (kept open: each is a watch of the ring bucket). */
  const rings = new Map<string, Promise<RingSource | undefined>>();

  const ringViews = async (apps: StatusJson['apps']): Promise<Record<string, RingView>> => {
    const out: Record<string, RingView> = {};
    if (!o.ring) return out;
    for (const a of apps) {
      if (a.mode !== 'ring') continue;
      let r = rings.get(a.name);
      if (!r) {
        r = o.ring(a.name).catch((): undefined => undefined);
        rings.set(a.name, r);
      }
      const source = await r;
      if (!source) {
        rings.delete(a.name); // no ring yet: look again next time
        continue;
      }
      const x = source.snapshot();
      out[a.name] = {
        partitions: x.partitions,
        owners: x.owners,
        targets: x.targets,
        counts: x.counts,
        moving: x.moving,
        pins: x.pins,
        coordinator: x.coordinator,
        mapVersion: x.mapVersion,
      };
    }
    return out;
  };

  /** The placement bucket opened so far: kept across snapshots, dropped when it is missing or did not open. */
  let placementSource: Promise<PlacementSource | undefined> | undefined;
  const placementView = async (): Promise<Pick<ClusterSnapshot, 'placement' | 'placementError'>> => {
    if (!o.placement) return {};
    const absent = (err: unknown) => isGcError(err, PlacementOpErrorCode.NotFound) || isStreamNotFound(err);
    const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
    let source: PlacementSource | undefined;
    try {
      placementSource ??= o.placement();
      source = await placementSource;
    } catch (err) {
      placementSource = undefined; // open it again next time
      // No placement bucket: no app uses placement, so no section (and no error).
      if (absent(err)) return {};
      return { placementError: `cannot open the placement bucket: ${message(err)}` };
    }
    if (!source) {
      placementSource = undefined; // no bucket yet: look again next time
      return {};
    }
    try {
      const [state, admins] = await Promise.all([source.state(), source.admins()]);
      return state || admins.size ? { placement: toPlacementView(state, admins) } : {};
    } catch (err) {
      if (absent(err)) {
        placementSource = undefined; // the bucket does not exist (yet): look again next time
        return {};
      }
      return { placementError: `cannot read the placement bucket: ${message(err)}` };
    }
  };

  const push = (e: DashboardEvent) => {
    events.push(e);
    if (events.length > (o.maxEvents ?? 100)) events.splice(0, events.length - (o.maxEvents ?? 100));
  };

  const derive = (prev: ClusterSnapshot | undefined, next: ClusterSnapshot) => {
    if (!prev) return;
    const time = next.generatedAt;
    const before = new Set(prev.nodes.map((n) => n.id));
    const after = new Set(next.nodes.map((n) => n.id));
    for (const n of after)
      if (!before.has(n))
        push({ key: `join:${n}:${time}`, time, node: n, type: 'node.joined', text: `node ${n} joined` });
    for (const n of before)
      if (!after.has(n))
        push({
          key: `gone:${n}:${time}`,
          time,
          node: n,
          type: 'node.gone',
          text: `node ${n} stopped answering`,
        });
    for (const a of next.apps) {
      const old = prev.apps.find((x) => x.name === a.name);
      if (
        a.mode === 'active-passive' &&
        old &&
        (old.leader !== a.leader || old.epoch !== a.epoch) &&
        a.leader
      ) {
        push({
          key: `leader:${a.name}:${a.epoch}`,
          time,
          node: a.leader,
          app: a.name,
          type: 'app.leader',
          text: `leader of ${a.name}: ${old.leader ?? '—'} → ${a.leader} (epoch ${a.epoch})`,
        });
      }
    }
  };

  const auditEvents = async (): Promise<DashboardEvent[]> => {
    if (!o.audit) return [];
    const records = await o.audit
      .query({ since: clock.wallNow() - (o.auditWindowMs ?? 30 * 60_000), limit: o.maxEvents ?? 100 })
      .catch((): AuditRecord[] => []);
    return records.map((r) => ({
      key: `audit:${r.id}`,
      time: Date.parse(r.time),
      node: r.node,
      type: r.type,
      ...(r.app ? { app: r.app } : {}),
      text: describeAudit(r),
    }));
  };

  const snapshot = (): Promise<ClusterSnapshot> => {
    inflight ??= Promise.all([o.admin.nodes(o.collectMs ?? 300), auditEvents(), placementView()])
      .then(
        ([nodes, audited, placed]: [
          PlatformStatus[],
          DashboardEvent[],
          Awaited<ReturnType<typeof placementView>>,
        ]) => {
          const s = summarize(o.platform, nodes);
          const snap: ClusterSnapshot = {
            ...s,
            generatedAt: clock.wallNow(),
            nodes: s.nodes.map((n) => ({
              ...n,
              apps: (nodes.find((x) => x.nodeId === n.id)?.apps ?? []).map((a) => ({
                name: a.name,
                role: a.role,
              })),
            })),
            events: [],
            rings: {},
            ...placed,
          };
          derive(previous, snap);
          previous = snap;
          const seen = new Set(events.map((e) => e.key));
          snap.events = [...events, ...audited.filter((e) => !seen.has(e.key))]
            .sort((a, b) => a.time - b.time)
            .slice(-(o.maxEvents ?? 100));
          return ringViews(snap.apps).then((r) => ({ ...snap, rings: r }));
        },
      )
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  const broadcast = async () => {
    // NATS away: nothing to push; the page's summary keeps the last snapshot's time and /api/cluster answers the error.
    const snap = await snapshot().catch(() => undefined);
    if (!snap) return;
    const data = `data: ${JSON.stringify(snap)}\n\n`;
    for (const c of clients) c.write(data);
  };

  const json = (res: ServerResponse, body: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  return {
    routes: {
      '/': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(dashboardHtml);
      },
      '/api/cluster': async (_req, res) => json(res, await snapshot()),
      '/api/stream': (req, res) => {
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        res.write('retry: 1000\n\n');
        clients.add(res);
        void broadcast();
        timer ??= setInterval(() => void broadcast(), o.periodMs ?? 1000);
        req.on('close', () => {
          clients.delete(res);
          if (clients.size === 0 && timer) {
            clearInterval(timer);
            timer = undefined;
          }
        });
      },
    },
    push,
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const c of clients) c.end();
      clients.clear();
      for (const r of rings.values()) void r.then((x) => x?.close());
      rings.clear();
    },
  };
}

/** The placement section of a snapshot, from the scheduler's last decision and the operators' holds. */
export function toPlacementView(
  state: PlacementState | undefined,
  admins: ReadonlyMap<string, NodeAdmin>,
): PlacementView {
  const apps: Record<string, PlacementAppView> = {};
  if (state) {
    const names = new Set([
      ...Object.keys(state.placements),
      ...Object.keys(state.unsatisfiable),
      ...Object.keys(state.reasons),
      ...Object.keys(state.deferred ?? {}),
      ...Object.keys(state.refused ?? {}),
    ]);
    for (const app of [...names].sort()) {
      const p = state.placements[app];
      const u = state.unsatisfiable[app];
      const deferred = state.deferred?.[app];
      const refused = state.refused?.[app];
      const reasons: Record<string, string> = {};
      for (const [node, r] of Object.entries(state.reasons[app] ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))
        reasons[node] = describeReason(r);
      apps[app] = {
        placed: [...(p?.nodes ?? [])],
        ...(p?.leader ? { leader: p.leader } : {}),
        ...(u ? { unsatisfiable: { constraint: u.constraint, message: u.message } } : {}),
        ...(deferred ? { deferred } : {}),
        ...(refused ? { refused } : {}),
        reasons,
      };
    }
  }
  const nodes: Record<string, PlacementNodeView> = {};
  for (const [node, a] of [...admins].sort(([x], [y]) => (x < y ? -1 : 1))) {
    const d = state?.draining[node];
    nodes[node] = {
      cordoned: a.cordoned,
      ...(a.reason ? { cordonReason: a.reason } : {}),
      ...(a.by ? { by: a.by } : {}),
      ...(a.drain
        ? {
            drain: {
              // The deadline runs from when the scheduler first saw this drain (its clock), once it has.
              since: d?.requested === a.drain.since && d.since !== undefined ? d.since : a.drain.since,
              deadlineMs: a.drain.deadlineMs,
              reason: a.drain.reason,
              remaining: [...(d?.remaining ?? [])],
              blocked: [...(d?.blocked ?? [])],
              forced: d?.forced ?? false,
              seen: d !== undefined,
            },
          }
        : {}),
    };
  }
  return {
    scheduler: state?.scheduler ?? null,
    epoch: state?.epoch ?? 0,
    generation: state?.generation ?? 0,
    at: state?.at ?? null,
    apps,
    nodes,
  };
}

/**
 * One line for why the scheduler selected, passed over or excluded a node for an app (a `NodeReason` of
 * `@gc/placement`): `selected as leader — score 12 (affinity 10, load -1, inventory 0, sticky 3)`,
 * `excluded — onLabel: labels do not match "disk=ssd"`, `not selected — maxNodes 2 reached…; score 4 (…)`.
 */
export function describeReason(r: Record<string, unknown> & { status: string }): string {
  const n = (v: unknown) => (typeof v === 'number' ? String(Math.round(v * 100) / 100) : '0');
  const s = r.score as Record<string, unknown> | undefined;
  const score =
    s && typeof s === 'object'
      ? `score ${n(s.total)} (affinity ${n(s.affinity)}, load ${n(s.load)}, inventory ${n(s.inventory)}, sticky ${n(s.sticky)})`
      : '';
  const text = (v: unknown) => (typeof v === 'string' && v ? v : '');
  switch (r.status) {
    case 'selected':
      return `selected${text(r.role) ? ` as ${text(r.role)}` : ''}${score ? ` — ${score}` : ''}`;
    case 'excluded':
      return `excluded — ${[text(r.constraint), text(r.detail)].filter(Boolean).join(': ') || 'no reason given'}`;
    case 'not-selected':
      return `not selected — ${[text(r.detail), score].filter(Boolean).join('; ') || 'no reason given'}`;
    default:
      return [r.status, text(r.detail), score].filter(Boolean).join(' — ');
  }
}

/** One line of text for an audit record on the timeline. */
export function describeAudit(r: AuditRecord): string {
  const raw = (r.data ?? {}) as Record<string, unknown>;
  const d = (k: string): string => {
    const v = raw[k];
    if (v === undefined || v === null) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
  const app = r.app ? `${r.app}: ` : '';
  switch (r.type) {
    case 'app.activated': {
      const phases = Object.entries((raw.phases ?? {}) as Record<string, number>)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return `${app}${r.node} became active (epoch ${d('epoch') || String(r.epoch)}, ${d('ms')} ms${phases ? `: ${phases}` : ''})`;
    }
    case 'drill.result': {
      const rep = raw as {
        kind?: string;
        pass?: boolean;
        totalMs?: number;
        budgetMs?: number;
        from?: { node?: string };
        to?: { node?: string };
        reason?: string;
      };
      const took = rep.totalMs === undefined ? 'no new leader' : `${rep.totalMs} ms`;
      const budget = rep.budgetMs === undefined ? '' : ` (budget ${rep.budgetMs} ms)`;
      return `${app}drill ${rep.kind ?? '?'} ${rep.pass ? 'passed' : 'FAILED'}: ${rep.from?.node ?? '?'} → ${rep.to?.node ?? '—'} in ${took}${budget}${rep.pass || !rep.reason ? '' : ` — ${rep.reason}`}`;
    }
    case 'app.deactivated':
      return `${app}${r.node} became passive (${d('reason')})`;
    case 'app.leader':
      return `${app}leader is ${d('leader') || 'nobody'} (epoch ${d('epoch')})`;
    case 'node.joined':
    case 'node.left':
      return `node ${d('node')} ${r.type === 'node.joined' ? 'joined' : `left (${d('reason')})`}`;
    case 'hook.failed':
      return `${app}${d('hook')} failed on ${r.node}: ${d('error')}`;
    case 'lock.forced':
      return `${app}lock ${d('lock')} force-released (${d('reason')})`;
    default:
      return `${app}${r.type} on ${r.node}`;
  }
}
