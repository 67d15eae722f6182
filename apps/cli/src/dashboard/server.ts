// The live dashboard's routes: the page, /api/cluster's snapshot and /api/stream's server-sent events.
import type { ServerResponse } from 'node:http';
import { isGcError, isStreamNotFound, realClock } from '@gc/core';
import { PlacementOpErrorCode, type AuditRecord, type PlatformStatus } from '@gc/platform';
import { summarize, type StatusJson } from '../status-summary.js';
import { describeAudit } from './describe-audit.js';
import { dashboardHtml } from './page.js';
import { toPlacementView } from './placement-view.js';
import type {
  ClusterSnapshot,
  Dashboard,
  DashboardEvent,
  DashboardOptions,
  PlacementSource,
  RingSource,
  RingView,
} from './types.js';

export type {
  ClusterSnapshot,
  Dashboard,
  DashboardEvent,
  DashboardOptions,
  PlacementAppView,
  PlacementNodeView,
  PlacementSource,
  PlacementView,
  RingSource,
  RingView,
} from './types.js';
export { describeReason, toPlacementView } from './placement-view.js';
export { describeAudit } from './describe-audit.js';

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
