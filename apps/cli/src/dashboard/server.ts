import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '@gc/core';
import { realClock } from '@gc/core';
import type { AdminClient, Audit, AuditRecord, PlatformStatus } from '@gc/platform';
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

/** What `/api/cluster` returns and `/api/stream` pushes. */
export interface ClusterSnapshot extends StatusJson {
  generatedAt: number;
  nodes: Array<StatusJson['nodes'][number] & { apps: Array<{ name: string; role: string }> }>;
  events: DashboardEvent[];
}

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
  clock?: Clock;
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
    inflight ??= Promise.all([o.admin.nodes(o.collectMs ?? 300), auditEvents()])
      .then(([nodes, audited]: [PlatformStatus[], DashboardEvent[]]) => {
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
        };
        derive(previous, snap);
        previous = snap;
        const seen = new Set(events.map((e) => e.key));
        snap.events = [...events, ...audited.filter((e) => !seen.has(e.key))]
          .sort((a, b) => a.time - b.time)
          .slice(-(o.maxEvents ?? 100));
        return snap;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  const broadcast = async () => {
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
    },
  };
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
    case 'app.activated':
      return `${app}${r.node} became active (epoch ${d('epoch') || String(r.epoch)}, ${d('ms')} ms)`;
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
