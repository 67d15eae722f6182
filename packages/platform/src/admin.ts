import { GcError, resourceNames, validateAppName, validateNodeId, isNoResponders } from '@gc/core';
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { SnapshotInfo } from '@gc/snapshot';
import type { PlatformStatus } from './types.js';

/** Error codes of the admin API. */
export const AdminErrorCode = {
  NoLeader: 'GC_ADMIN_NO_LEADER',
  Failed: 'GC_ADMIN_FAILED',
} as const;

/** Control subjects of a platform (answered by every running node). A public contract. */
export function controlSubjects(platform: string): {
  status: string;
  stepDown: (app: string) => string;
  snapshot: (app: string) => string;
  recover: (app: string, node: string) => string;
  drill: (app: string) => string;
} {
  const p = resourceNames(platform).platform;
  return {
    /** Every node answers with its {@link PlatformStatus}. */
    status: `${p}._.control.status`,
    /** The app's current leader steps down and answers; standbys stay silent. */
    stepDown: (app: string) => `${p}._.control.stepdown.${validateAppName(app)}`,
    /** The app's current leader takes a snapshot of its database and answers with it. */
    snapshot: (app: string) => `${p}._.control.snapshot.${validateAppName(app)}`,
    /** The named node allows its next promotion of `app` to publish its copy unproven (`gc app recover`). */
    recover: (app: string, node: string) =>
      `${p}._.control.recover.${validateAppName(app)}.${validateNodeId(node)}`,
    /** The app's leader performs a failover drill's fault on itself and answers when (see `runDrill`). */
    drill: (app: string) => `${p}._.control.drill.${validateAppName(app)}`,
  };
}

/** Result of a remote step-down. */
export interface StepDownResult {
  app: string;
  /** The node that stepped down. */
  node: string;
  /** The epoch it held. */
  epoch: number;
}

/** Operator API over NATS: what `gc status`, `gc node`, `gc app stepdown` use. */
export interface AdminClient {
  /** Asks every node for its status; collects answers for up to `waitMs` (default 750). Sorted by node id. */
  nodes(waitMs?: number): Promise<PlatformStatus[]>;
  /** Makes the current leader of `app` step down; rejects with code `GC_ADMIN_NO_LEADER` when none answers. */
  stepDown(app: string, timeoutMs?: number): Promise<StepDownResult>;
  /** Makes the current leader of `app` take a snapshot of its database now. */
  snapshot(app: string, timeoutMs?: number): Promise<SnapshotInfo & { node: string }>;
  /**
   * Lets `node` publish its copy of `app`'s database the next time it becomes leader, although the copy is
   * not proven to be the history's tip — the way out when the WAL stream and every snapshot are gone and
   * no node can prove it is current. `reason` is audited. Rejects with `GC_ADMIN_NO_LEADER` when the node
   * does not answer (not running, or it does not run the app with a database).
   */
  recover(app: string, node: string, reason: string, timeoutMs?: number): Promise<RecoverResult>;
  /**
   * Makes the leader of `app` perform a drill's fault on itself (`failover`: behave as if its process died;
   * `stepdown`: hand over). Resolves with the node, its epoch and the wall time of the fault. Prefer
   * `runDrill`, which also measures the recovery.
   */
  drill(app: string, kind: 'failover' | 'stepdown', timeoutMs?: number): Promise<DrillAck>;
}

/** What a leader answers to a drill request. */
export interface DrillAck {
  app: string;
  node: string;
  epoch: number;
  /** Wall-clock ms when the fault was injected. */
  atMs: number;
  /** The replicated database's last acknowledged transaction at the fault (apps with a database). */
  txid?: number;
  /** Its checksum. */
  checksum?: string;
}

/** Result of {@link AdminClient.recover}. */
export interface RecoverResult {
  app: string;
  node: string;
  /** The node's replication state when it accepted (txid of its copy, why it was refused before). */
  replication: { txid: number; state: string; reason?: string } | undefined;
}

/**
 * Creates the operator client for `platform` on an existing connection.
 *
 * @example
 * const admin = createAdminClient(nc, 'prod');
 * for (const n of await admin.nodes()) console.log(n.nodeId, n.apps.map((a) => `${a.name}:${a.role}`));
 */
export function createAdminClient(nc: NatsConnection, platform: string): AdminClient {
  const subjects = controlSubjects(platform);
  const dec = new TextDecoder();
  return {
    async nodes(waitMs = 750) {
      const out: PlatformStatus[] = [];
      try {
        const replies = await nc.requestMany(subjects.status, undefined, {
          strategy: 'timer',
          maxWait: waitMs,
        });
        for await (const m of replies) {
          try {
            out.push(JSON.parse(dec.decode(m.data)) as PlatformStatus);
          } catch {
            // a reply that is not JSON is not a gc node's: ignore it
          }
        }
      } catch (err) {
        // no node answering at all shows up as "no responders": that is an empty platform, not an error
        if (!isNoResponders(err)) throw err;
      }
      return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    },
    stepDown(app, timeoutMs = 5000) {
      return askLeader<StepDownResult>(nc, subjects.stepDown(app), app, 'step-down', timeoutMs);
    },
    async recover(app, node, reason, timeoutMs = 5000) {
      let m: Msg;
      try {
        m = await nc.request(
          subjects.recover(app, node),
          new TextEncoder().encode(JSON.stringify({ reason })),
          {
            timeout: timeoutMs,
          },
        );
      } catch (err) {
        throw new GcError(
          AdminErrorCode.NoLeader,
          `node ${node} did not answer for app ${app} within ${timeoutMs} ms (is it running the app with a sqlite database?)`,
          { cause: err },
        );
      }
      const body = JSON.parse(dec.decode(m.data)) as RecoverResult | { error: string };
      if ('error' in body)
        throw new GcError(AdminErrorCode.Failed, `recover of ${app} on ${node} failed: ${body.error}`);
      return body;
    },
    async drill(app, kind, timeoutMs = 30_000) {
      let m: Msg;
      try {
        m = await nc.request(subjects.drill(app), new TextEncoder().encode(JSON.stringify({ kind })), {
          timeout: timeoutMs,
        });
      } catch (err) {
        throw new GcError(
          AdminErrorCode.NoLeader,
          `no node is the leader of app ${app} (nobody answered the drill)`,
          {
            cause: err,
          },
        );
      }
      const body = JSON.parse(dec.decode(m.data)) as DrillAck | { error: string };
      if ('error' in body) throw new GcError(AdminErrorCode.Failed, `drill of ${app} failed: ${body.error}`);
      return body;
    },
    snapshot(app, timeoutMs = 120_000) {
      return askLeader<SnapshotInfo & { node: string }>(
        nc,
        subjects.snapshot(app),
        app,
        'snapshot',
        timeoutMs,
      );
    },
  };
}

async function askLeader<T>(
  nc: NatsConnection,
  subject: string,
  app: string,
  what: string,
  timeoutMs: number,
): Promise<T> {
  let m: Msg;
  try {
    m = await nc.request(subject, undefined, { timeout: timeoutMs });
  } catch (err) {
    throw new GcError(
      AdminErrorCode.NoLeader,
      `no node is the leader of app ${app} (nobody answered within ${timeoutMs} ms)`,
      { cause: err },
    );
  }
  const body = JSON.parse(new TextDecoder().decode(m.data)) as T | { error: string };
  if (typeof body === 'object' && body !== null && 'error' in body)
    throw new GcError(AdminErrorCode.Failed, `${what} of ${app} failed: ${body.error}`);
  return body;
}

/** Serves the control subjects for a node; returns the subscriptions to close. */
export function serveControl(
  nc: NatsConnection,
  platform: string,
  node: {
    status(): Promise<PlatformStatus>;
    stepDown(app: string): Promise<StepDownResult | undefined>;
    snapshot(app: string): Promise<(SnapshotInfo & { node: string }) | undefined>;
    nodeId: string;
    recover(app: string, reason: string): Promise<RecoverResult | undefined>;
    drill(app: string, kind: string): Promise<DrillAck | undefined>;
  },
): Subscription[] {
  const subjects = controlSubjects(platform);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const statusSub = nc.subscribe(subjects.status, {
    callback: (_err, m) => {
      node.status().then(
        (st) => m.respond(enc.encode(JSON.stringify(st))),
        () => undefined, // a node that cannot build its status stays silent rather than answer garbage
      );
    },
  });
  // Only the app's leader answers these; the others stay silent, so "no answer" means "no leader".
  const leaderOnly = (verb: string, fn: (app: string) => Promise<unknown>) =>
    nc.subscribe(`${resourceNames(platform).platform}._.control.${verb}.*`, {
      callback: (_err, m) => {
        const app = m.subject.split('.').pop()!;
        fn(app).then(
          (r) => {
            if (r) m.respond(enc.encode(JSON.stringify(r)));
          },
          (err: unknown) =>
            m.respond(
              enc.encode(JSON.stringify({ error: err instanceof Error ? err.message : String(err) })),
            ),
        );
      },
    });
  const recoverSub = nc.subscribe(`${resourceNames(platform).platform}._.control.recover.*.${node.nodeId}`, {
    callback: (_err, m) => {
      const app = m.subject.split('.').at(-2)!;
      let reason = '';
      try {
        const r = (JSON.parse(dec.decode(m.data)) as { reason?: unknown }).reason;
        reason = typeof r === 'string' ? r : '';
      } catch {
        // no body: refused below
      }
      const answer = (body: unknown) => m.respond(enc.encode(JSON.stringify(body)));
      if (!reason.trim()) {
        answer({ error: 'a reason is required (it goes to the audit trail)' });
        return;
      }
      node.recover(app, reason).then(
        (r) => {
          if (r) answer(r);
        },
        (err: unknown) => answer({ error: err instanceof Error ? err.message : String(err) }),
      );
    },
  });
  const drillSub = nc.subscribe(`${resourceNames(platform).platform}._.control.drill.*`, {
    callback: (_err, m) => {
      const app = m.subject.split('.').pop()!;
      let kind = '';
      try {
        const k = (JSON.parse(dec.decode(m.data)) as { kind?: unknown }).kind;
        kind = typeof k === 'string' ? k : '';
      } catch {
        // refused below
      }
      node.drill(app, kind).then(
        (r) => {
          if (r) m.respond(enc.encode(JSON.stringify(r)));
        },
        (err: unknown) =>
          m.respond(enc.encode(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }))),
      );
    },
  });
  return [
    statusSub,
    recoverSub,
    drillSub,
    leaderOnly('stepdown', (app) => node.stepDown(app)),
    leaderOnly('snapshot', (app) => node.snapshot(app)),
  ];
}
