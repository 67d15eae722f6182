import { GcError, isNoResponders, resourceNames, type Epoch } from '@gc/core';
import type { Audit, AuditRecord } from '@gc/audit';
import type { NatsConnection } from '@nats-io/nats-core';
import { AdminErrorCode, createAdminClient } from './admin.js';
import type { PlatformStatus } from './types.js';

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
  /**
   * The NATS server the leader is connected to restarts (with `DrillOptions.restartServer`: `gc dev`'s own
   * servers, or an operator's command). Every client of that server reconnects; the leader keeps its lease
   * if it is back within the TTL, otherwise a standby takes over. Measured until the app is active and
   * connected again and every replica follows with no lag.
   */
  ServerRestart: 'server-restart',
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
  /** `server-restart`: the server that was restarted (its `server_name`). */
  server?: string;
}

/** Options of {@link runDrill}. */
export interface DrillOptions {
  /** Give up waiting for the new leader after this long, in ms. Default 60000. */
  timeoutMs?: number;
  /** Check against this budget instead of the app's `recoveryBudgetMs`. */
  budgetMs?: number;
  /** Where the new leader's records are read, and the result recorded (`drill.result`). */
  audit: Audit;
  /**
   * `server-restart` drills: restarts the NATS server named `server` (the one the leader is connected to)
   * and resolves once it was restarted. See {@link devServerRestarter} for `gc dev`.
   */
  restartServer?: (target: { server: string | undefined; node: string }) => Promise<void>;
}

/** The subject on which `gc dev` restarts one of its own nats-servers for a drill (`{ server }` → `{ ok }`). */
export function devRestartServerSubject(platform: string): string {
  return `${resourceNames(platform).platform}._.dev.restart-server`;
}

/**
 * A `restartServer` for {@link runDrill} that asks a running `gc dev` to restart one of its servers. Fails
 * clearly when no `gc dev` of this platform answers.
 */
export function devServerRestarter(
  nc: NatsConnection,
  platform: string,
): NonNullable<DrillOptions['restartServer']> {
  return async ({ server }) => {
    let m;
    try {
      m = await nc.request(
        devRestartServerSubject(platform),
        new TextEncoder().encode(JSON.stringify({ server })),
        {
          timeout: 60_000,
        },
      );
    } catch (err) {
      throw new GcError(
        AdminErrorCode.Failed,
        isNoResponders(err)
          ? `nothing restarts the servers of platform ${platform}: run the drill against \`gc dev\`, or give the command that restarts a server (--restart-command)`
          : `restarting server ${server ?? '?'} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const body = JSON.parse(new TextDecoder().decode(m.data)) as { ok?: boolean; error?: string };
    if (!body.ok)
      throw new GcError(
        AdminErrorCode.Failed,
        `gc dev could not restart ${server ?? '?'}: ${body.error ?? '?'}`,
      );
  };
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
  if (kind !== DrillKind.Failover && kind !== DrillKind.Stepdown && kind !== DrillKind.ServerRestart)
    throw new GcError(
      AdminErrorCode.Failed,
      `unknown drill ${JSON.stringify(kind)}: use failover, stepdown or server-restart`,
    );
  const admin = createAdminClient(nc, platform);
  try {
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
    if (kind === DrillKind.ServerRestart) {
      const server = all.find((n) => n.nodeId === leader.node)?.server.name;
      return record(o.audit, await serverRestartDrill(admin, all, app, leader, server, budgetMs, o));
    }
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
    if (totalMs === undefined)
      report.reason = `no new leader became active within ${o.timeoutMs ?? 60_000} ms`;
    else if (data?.lost)
      report.reason = `the new leader ${activated!.node} is at txid ${data.after!.txid} (checksum ${data.after!.checksum ?? '?'}), the old one acknowledged txid ${data.before.txid} (checksum ${data.before.checksum ?? '?'}): committed data is missing`;
    else if (budgetMs !== undefined && totalMs > budgetMs)
      report.reason = `recovery took ${totalMs} ms, over the budget of ${budgetMs} ms (slowest phase: ${
        Object.entries(phases).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'detection'
      })`;
    return record(o.audit, report);
  } finally {
    await admin.close();
  }
}

/** Records a report as `drill.result` (severity `warn` when it failed) and returns it. */
async function record(audit: Audit, report: DrillReport): Promise<DrillReport> {
  await audit.record({
    type: 'drill.result',
    app: report.app,
    ...(report.to ? { epoch: report.to.epoch } : {}),
    severity: report.pass ? 'info' : 'warn',
    data: report,
  });
  return report;
}

/**
 * The server-restart drill: restarts the leader's server, then polls the platform until the app is active on
 * a connected node and every replica follows with no lag. Phases (ms from the start of the restart):
 * `restart` (the restarter's own time), `reconnected` (the old leader's node is seen reconnected),
 * `serving` (an active leader answers again), `replicas` (every replica caught up).
 */
async function serverRestartDrill(
  admin: ReturnType<typeof createAdminClient>,
  all: PlatformStatus[],
  app: string,
  leader: { node: string; status: PlatformStatus['apps'][number] },
  server: string | undefined,
  budgetMs: number | undefined,
  o: DrillOptions,
): Promise<DrillReport> {
  if (!o.restartServer)
    throw new GcError(
      AdminErrorCode.Failed,
      'a server-restart drill needs a way to restart the server: run it against `gc dev`, or give the command that restarts one (--restart-command)',
    );
  const r0 = leader.status.replication;
  const before = r0 ? { txid: r0.txid, ...(r0.checksum ? { checksum: r0.checksum } : {}) } : undefined;
  // Every node that runs the app must answer again, caught up: one still reconnecting is not "caught up".
  const expected = new Set(all.filter((n) => n.apps.some((a) => a.name === app)).map((n) => n.nodeId));
  // The old leader's node's last connection change before the fault (its own clock: compared only with itself).
  const sinceBefore = all.find((n) => n.nodeId === leader.node)?.server.since ?? 0;
  const t0 = Date.now();
  await o.restartServer({ server, node: leader.node });
  const phases: Record<string, number> = { restart: Date.now() - t0 };
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let to: { node: string; epoch: number } | undefined;
  let after: { txid: number; checksum?: string } | undefined;
  let totalMs: number | undefined;
  /** What the last look was still waiting for (named in the report when the drill times out). */
  let waiting = 'no node answered';
  const ok = (e: { connected: boolean; a: PlatformStatus['apps'][number] }) =>
    e.connected && e.a.replication!.state === 'following' && e.a.replication!.lagTx === 0;
  while (Date.now() < deadline) {
    // Requests fail while this client reconnects: asked again.
    const nodes = await admin.nodes(750).catch((): PlatformStatus[] => []);
    const entries = nodes.flatMap((n) =>
      n.apps.filter((a) => a.name === app).map((a) => ({ node: n.nodeId, connected: n.server.connected, a })),
    );
    // The fault must have happened: the old leader's node reconnected after the restart began (a restarter
    // that answers before restarting, or one that restarted another server, must not pass a drill).
    const old = nodes.find((n) => n.nodeId === leader.node);
    const sawRestart = !!old && old.server.connected && (old.server.since ?? 0) > sinceBefore;
    if (sawRestart) phases.reconnected ??= Date.now() - t0;
    const missing = [...expected].filter((id) => !entries.some((e) => e.node === id));
    const active = entries.filter((e) => e.a.role === 'active' && e.connected);
    if (nodes.length)
      waiting = !sawRestart
        ? `${leader.node} has not reconnected since the restart began${old ? ` (connected: ${old.server.connected})` : ' (it does not answer)'}`
        : active.length === 0
          ? 'no connected node is active'
          : `${active.length} active nodes`;
    if (sawRestart && active.length === 1) {
      const act = active[0]!;
      to ??= { node: act.node, epoch: act.a.epoch };
      phases.serving ??= Date.now() - t0;
      const rep = act.a.replication;
      const behind = entries.filter((e) => e !== act && e.a.replication && !ok(e));
      const caughtUp = missing.length === 0 && (!rep || (rep.role === 'primary' && behind.length === 0));
      if (!caughtUp)
        waiting = [
          ...missing.map((id) => `${id} does not answer`),
          ...(rep && rep.role !== 'primary'
            ? [`${act.node} is active but its database is ${rep.state}`]
            : []),
          ...behind.map(
            (e) =>
              `${e.node}: replica ${e.a.replication!.state}${e.a.replication!.reason ? ` (${e.a.replication!.reason})` : ''}, ${e.a.replication!.lagTx} behind${e.connected ? '' : ', disconnected'}`,
          ),
        ].join('; ');
      if (caughtUp) {
        if (rep) after = { txid: rep.txid, ...(rep.checksum ? { checksum: rep.checksum } : {}) };
        to = { node: act.node, epoch: act.a.epoch };
        totalMs = Date.now() - t0;
        if (rep) phases.replicas = totalMs;
        break;
      }
    }
    await sleep(250);
  }
  const diverged =
    !!before &&
    !!after &&
    after.txid === before.txid &&
    !!after.checksum &&
    !!before.checksum &&
    after.checksum !== before.checksum;
  const data = before
    ? {
        before,
        ...(after ? { after } : {}),
        lost: after ? Math.max(0, before.txid - after.txid) + (diverged ? 1 : 0) : 0,
      }
    : undefined;
  const report: DrillReport = {
    app,
    kind: DrillKind.ServerRestart,
    from: { node: leader.node, epoch: leader.status.epoch },
    to,
    startedAt: new Date(t0).toISOString(),
    // The leader keeps its lease through a short restart: an election happened only when the epoch moved.
    electedMs: to && to.epoch !== leader.status.epoch ? phases.serving : undefined,
    totalMs,
    phases,
    ...(data ? { data } : {}),
    budgetMs,
    pass: totalMs !== undefined && (budgetMs === undefined || totalMs <= budgetMs) && !data?.lost,
    ...(server ? { server } : {}),
  };
  if (totalMs === undefined)
    report.reason = `the app was not active with every replica caught up within ${o.timeoutMs ?? 60_000} ms of restarting ${server ?? 'the server'}: ${waiting}`;
  else if (data?.lost)
    report.reason = `the leader is at txid ${data.after!.txid}, txid ${data.before.txid} was acknowledged before the restart: committed data is missing`;
  else if (budgetMs !== undefined && totalMs > budgetMs)
    report.reason = `recovery took ${totalMs} ms, over the budget of ${budgetMs} ms`;
  return report;
}
