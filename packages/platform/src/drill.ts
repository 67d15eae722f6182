import { GcError, type Epoch } from '@gc/core';
import type { Audit, AuditRecord } from '@gc/audit';
import type { NatsConnection } from '@nats-io/nats-core';
import { AdminErrorCode, createAdminClient } from './admin.js';

/** What a drill does to the app's current leader. */
export const DrillKind = {
  /**
   * The leader behaves as if its process died: it stops renewing its lease without releasing it and stops
   * acting at once (its components are stopped in reverse), so the standbys detect the failure the way they
   * would detect a crash — after the lease's TTL, or sooner with fast failover — then elect, promote the
   * data, take the VIP, start the backend. The drilled node sits the election out until a new leader is
   * active. Nothing is lost: the leader's last commits are in the stream before it stops (unlike a crash).
   */
  Failover: 'failover',
  /** A graceful step-down: the leader hands over at once (one KV round trip). */
  Stepdown: 'stepdown',
} as const;
/** One of {@link DrillKind}. */
export type DrillKindValue = (typeof DrillKind)[keyof typeof DrillKind];

/** The measured phases of one drill, in ms from the moment the fault was injected. */
export interface DrillReport {
  app: string;
  kind: DrillKindValue;
  /** The leader before the drill. */
  from: { node: string; epoch: Epoch };
  /** The leader after it (undefined when none became active in time). */
  to: { node: string; epoch: Epoch } | undefined;
  /** Wall-clock time the fault was injected (ISO). */
  startedAt: string;
  /** Fault → a new leader elected (detection plus election). */
  electedMs: number | undefined;
  /** Fault → the new leader active (every phase done). */
  totalMs: number | undefined;
  /** The new leader's activation phases (database, vip, backend, components, onActive), in ms each. */
  phases: Record<string, number>;
  /**
   * Apps with a replicated database: the old leader's last acknowledged transaction at the fault, and the
   * new leader's position once active. The drill fails when the new leader is behind (`lost` > 0).
   */
  data?: {
    before: { txid: number; checksum?: string };
    after?: { txid: number; checksum?: string };
    lost: number;
  };
  /** The budget checked against (the app's `recoveryBudgetMs`, or the one given). */
  budgetMs: number | undefined;
  pass: boolean;
  /** Why it failed, when it did. */
  reason?: string;
}

/** Options of {@link runDrill}. */
export interface DrillOptions {
  /** Give up waiting for the new leader after this long, in ms. Default 60000. */
  timeoutMs?: number;
  /** Check against this budget instead of the app's `recoveryBudgetMs`. */
  budgetMs?: number;
  /** Where the new leader's records are read, and the result recorded (`drill.result`). */
  audit: Audit;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The new leader's replicated position, read from its status once it reports itself the primary. */
async function newLeaderPosition(
  admin: ReturnType<typeof createAdminClient>,
  app: string,
  node: string,
): Promise<{ txid: number; checksum?: string } | undefined> {
  for (let i = 0; i < 10; i++) {
    // A node that does not answer this round (busy promoting) is asked again.
    const nodes = await admin.nodes(750).catch(() => []);
    const r = nodes.find((n) => n.nodeId === node)?.apps.find((a) => a.name === app)?.replication;
    if (r?.role === 'primary') return { txid: r.txid, ...(r.checksum ? { checksum: r.checksum } : {}) };
    await sleep(200);
  }
  return undefined;
}

/**
 * Runs a failover drill on a running platform: performs the fault on the app's current leader, follows the
 * audit trail until a new leader is active, measures each phase, checks the total against the app's
 * recovery-time budget, and records the report as the audit record `drill.result` (severity `warn` when it
 * failed).
 *
 * @example
 * const report = await runDrill(nc, 'prod', 'orders', 'failover', { audit });
 * console.log(report.pass, report.totalMs, report.phases);
 */
export async function runDrill(
  nc: NatsConnection,
  platform: string,
  app: string,
  kind: DrillKindValue,
  o: DrillOptions,
): Promise<DrillReport> {
  if (kind !== DrillKind.Failover && kind !== DrillKind.Stepdown)
    throw new GcError(
      AdminErrorCode.Failed,
      `unknown drill ${JSON.stringify(kind)}: use failover or stepdown`,
    );
  const admin = createAdminClient(nc, platform);
  const all = await admin.nodes(750);
  const before = all.flatMap((n) =>
    n.apps.filter((a) => a.name === app && a.role === 'active').map((a) => ({ node: n.nodeId, status: a })),
  );
  const mode = all.flatMap((n) => n.apps).find((a) => a.name === app)?.mode;
  if (mode !== undefined && mode !== 'active-passive')
    throw new GcError(
      AdminErrorCode.Failed,
      `app ${app} is a ${mode} app: only active-passive apps have a leader to drill`,
    );
  const leader = before[0];
  if (!leader)
    throw new GcError(
      AdminErrorCode.NoLeader,
      `app ${app} has no active leader: nothing to drill (gc app status ${app})`,
    );
  const budgetMs = o.budgetMs ?? leader.status.recoveryBudgetMs;
  const done = await admin.drill(app, kind, o.timeoutMs ?? 60_000);
  const t0 = done.atMs;
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let elected: AuditRecord | undefined;
  let activated: AuditRecord | undefined;
  while (Date.now() < deadline && !activated) {
    await sleep(200);
    const records = await o.audit.query({ app, since: t0 - 1000, type: 'app.*', limit: 500 });
    elected ??= records.find(
      (r) =>
        r.type === 'app.leader' &&
        (r.epoch ?? 0) > done.epoch &&
        (r.data as { leader?: string }).leader === r.node,
    );
    activated = records.find((r) => r.type === 'app.activated' && (r.epoch ?? 0) > done.epoch);
  }
  const at = (r: AuditRecord | undefined) => (r ? Date.parse(r.time) - t0 : undefined);
  let data: DrillReport['data'];
  if (done.txid !== undefined) {
    const before = { txid: done.txid, ...(done.checksum ? { checksum: done.checksum } : {}) };
    const after = activated ? await newLeaderPosition(admin, app, activated.node) : undefined;
    // The same txid must carry the same checksum; a later one cannot be compared, only counted.
    const diverged =
      after !== undefined &&
      after.txid === before.txid &&
      !!after.checksum &&
      !!before.checksum &&
      after.checksum !== before.checksum;
    data = {
      before,
      ...(after ? { after } : {}),
      lost: after ? Math.max(0, before.txid - after.txid) + (diverged ? 1 : 0) : 0,
    };
  }
  const phases = (activated?.data as { phases?: Record<string, number> } | undefined)?.phases ?? {};
  const totalMs = at(activated);
  const report: DrillReport = {
    app,
    kind,
    from: { node: done.node, epoch: done.epoch },
    to: activated ? { node: activated.node, epoch: activated.epoch ?? 0 } : undefined,
    startedAt: new Date(t0).toISOString(),
    electedMs: at(elected),
    totalMs,
    phases,
    ...(data ? { data } : {}),
    budgetMs,
    pass: totalMs !== undefined && (budgetMs === undefined || totalMs <= budgetMs) && !data?.lost,
  };
  if (totalMs === undefined) report.reason = `no new leader became active within ${o.timeoutMs ?? 60_000} ms`;
  else if (data?.lost)
    report.reason = `the new leader ${activated!.node} is at txid ${data.after!.txid} (checksum ${data.after!.checksum ?? '?'}), the old one acknowledged txid ${data.before.txid} (checksum ${data.before.checksum ?? '?'}): committed data is missing`;
  else if (budgetMs !== undefined && totalMs > budgetMs)
    report.reason = `recovery took ${totalMs} ms, over the budget of ${budgetMs} ms (slowest phase: ${
      Object.entries(phases).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'detection'
    })`;
  await o.audit.record({
    type: 'drill.result',
    app,
    ...(report.to ? { epoch: report.to.epoch } : {}),
    severity: report.pass ? 'info' : 'warn',
    data: report,
  });
  return report;
}
