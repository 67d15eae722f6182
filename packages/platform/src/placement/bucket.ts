// The placement bucket `{platform}_placement`, opened, and what operators do with it: cordon, uncordon,
// drain, and read the scheduler's decision. Used by the platform (its nodes and scheduler) and by the CLI.
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, type KV } from '@nats-io/kv';
import { ConfigError, resourceNames, validateNodeId } from '@gc/core';
import { PlacementNotFoundError } from './errors.js';
import { UnknownNodeError } from '@gc/placement';
import {
  PlacementKey,
  nodeAdminSchema,
  nodeDeclarationSchema,
  parseRecord,
  placementStateSchema,
  appMoveSchema,
  appRebalanceSchema,
  nodeLabelsSchema,
  type AppMove,
  type AppRebalance,
  type NodeLabels,
  type NodeAdmin,
  type NodeDeclaration,
  type PlacementState,
} from './records.js';
import { decodeFenced } from '@gc/core';

/** Default time a drain may take before it forces the moves a budget holds back: 1 h, as Nomad's. */
export const DEFAULT_DRAIN_DEADLINE_MS = 3_600_000;

/** The placement bucket of a platform, opened (see {@link openPlacementBucket}). */
export interface PlacementBucket {
  /** `{platform}_placement`. */
  readonly bucket: string;
  readonly kv: KV;
  /** The scheduler's last decision, or undefined before the first one. */
  state(): Promise<PlacementState | undefined>;
  /** The last decision with the revision of its record (0 when there is none): for a read-modify-write. */
  stateEntry(): Promise<{ state: PlacementState | undefined; revision: number }>;
  /** Every node's declaration, by node id (records that do not parse are left out). */
  declarations(): Promise<Map<string, NodeDeclaration>>;
  /**
   * The revision and server time (ms) of each record under `prefix` (`decl`, `rebalance`, …), by the rest of
   * its key: for deletes that must not remove a record written after it was read.
   */
  revisions(prefix: string): Promise<Map<string, { revision: number; created: number }>>;
  /** Every cordon and drain, by node id. */
  admins(): Promise<Map<string, NodeAdmin>>;
  /** Moves in progress, by app. */
  moves(): Promise<Map<string, AppMove>>;
  /** Rebalances not applied yet, by app. */
  rebalances(): Promise<Map<string, AppRebalance>>;
  /** Operators' label changes, by node. */
  labels(): Promise<Map<string, NodeLabels>>;
  /**
   * Cordons `nodeId`: it takes no new apps; those it runs stay. Throws `UnknownNodeError` when no live node
   * has that id (`known` lists the live ones).
   */
  cordon(nodeId: string, o: { reason: string; by: string; known: readonly string[] }): Promise<void>;
  /** Lifts a cordon or a drain; the scheduler may place apps on the node again. */
  uncordon(nodeId: string, o: { by: string }): Promise<void>;
  /**
   * Drains `nodeId`: every app leaves it (switchovers first wait for a ready standby), within `deadlineMs`
   * (default {@link DEFAULT_DRAIN_DEADLINE_MS}); after it, moves a disruption budget still holds back are
   * forced. The node stays cordoned afterwards, until {@link PlacementBucket.uncordon}.
   */
  drain(
    nodeId: string,
    o: { reason: string; by: string; known: readonly string[]; deadlineMs?: number },
  ): Promise<void>;
}

/** Opens `{platform}_placement`, creating it when missing. */
export async function openPlacementBucket(
  nc: NatsConnection,
  platform: string,
  o: { replicas?: number; create?: boolean } = {},
): Promise<PlacementBucket> {
  const bucket = resourceNames(platform).placement;
  const kvm = new Kvm(nc);
  const kv =
    o.create === false
      ? await kvm.open(bucket).catch((err: unknown) => {
          throw new PlacementNotFoundError(platform, bucket, { cause: err });
        })
      : await kvm.create(bucket, { history: 1, replicas: o.replicas ?? 1 }).catch(
          // Created elsewhere with other settings (replicas): use it as it is.
          () => kvm.open(bucket),
        );
  const readAll = async <T>(
    prefix: string,
    schema:
      | typeof nodeAdminSchema
      | typeof nodeDeclarationSchema
      | typeof appMoveSchema
      | typeof appRebalanceSchema
      | typeof nodeLabelsSchema,
  ) => {
    const out = new Map<string, T>();
    const keys = await kv.keys(`${prefix}.*`);
    for await (const key of keys) {
      const e = await kv.get(key);
      if (!e || e.operation !== 'PUT') continue;
      const r = parseRecord<T>(schema, e.value);
      if (r) out.set(key.slice(prefix.length + 1), r);
    }
    return out;
  };
  const stateEntry = async () => {
    const e = await kv.get(PlacementKey.state);
    if (!e || e.operation !== 'PUT') return { state: undefined, revision: e?.revision ?? 0 };
    return {
      state: parseRecord<PlacementState>(placementStateSchema, decodeFenced(e.value).value),
      revision: e.revision,
    };
  };
  const put = (key: string, value: unknown) => kv.put(key, JSON.stringify(value)).then(() => undefined);
  const check = (nodeId: string, known: readonly string[]) => {
    validateNodeId(nodeId);
    if (!known.includes(nodeId)) throw new UnknownNodeError(nodeId, [...known].sort());
  };
  return {
    bucket,
    kv,
    async state() {
      return (await stateEntry()).state;
    },
    stateEntry,
    declarations: () => readAll<NodeDeclaration>('decl', nodeDeclarationSchema),
    async revisions(prefix) {
      const out = new Map<string, { revision: number; created: number }>();
      for await (const key of await kv.keys(`${prefix}.*`)) {
        const e = await kv.get(key);
        if (e?.operation === 'PUT')
          out.set(key.slice(prefix.length + 1), { revision: e.revision, created: e.created.getTime() });
      }
      return out;
    },
    admins: () => readAll<NodeAdmin>('admin', nodeAdminSchema),
    moves: () => readAll<AppMove>('move', appMoveSchema),
    rebalances: () => readAll<AppRebalance>('rebalance', appRebalanceSchema),
    labels: () => readAll<NodeLabels>('labels', nodeLabelsSchema),
    async cordon(nodeId, c) {
      check(nodeId, c.known);
      const held = await kv.get(PlacementKey.admin(nodeId));
      const cur = held?.operation === 'PUT' ? parseRecord<NodeAdmin>(nodeAdminSchema, held.value) : undefined;
      if (cur?.drain)
        throw new ConfigError(
          'cordon',
          `node ${nodeId} is being drained (${cur.drain.reason}); it stays cordoned — uncordon it to cancel the drain`,
        );
      const rec: NodeAdmin = { cordoned: true, reason: c.reason, by: c.by, at: Date.now() };
      await put(PlacementKey.admin(nodeId), rec);
    },
    async uncordon(nodeId) {
      validateNodeId(nodeId);
      await kv.delete(PlacementKey.admin(nodeId));
    },
    async drain(nodeId, c) {
      check(nodeId, c.known);
      const deadlineMs = c.deadlineMs ?? DEFAULT_DRAIN_DEADLINE_MS;
      if (!Number.isInteger(deadlineMs) || deadlineMs <= 0)
        throw new ConfigError(
          'drain.deadline',
          `must be a whole number of ms > 0, got ${String(deadlineMs)}`,
        );
      const now = Date.now();
      const rec: NodeAdmin = {
        cordoned: true,
        drain: { since: now, deadlineMs, reason: c.reason },
        reason: c.reason,
        by: c.by,
        at: now,
      };
      await put(PlacementKey.admin(nodeId), rec);
    },
  };
}
