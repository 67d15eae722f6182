import { GcError, storeFailedMessage } from '@gc/core';

/**
 * Stable error codes of `@gc/ring`, on top of the `@gc/core` codes it also uses (`GC_INVALID_NAME`,
 * `GC_INVALID_CONFIG`, `GC_CLOSED`) and `GC_RPC_NOT_OWNER` (`NotOwnerError` from `@gc/rpc`, the refusal
 * of a call by a node that does not serve the key).
 */
export const RingErrorCode = {
  /** A key that is not a string. */
  InvalidKey: 'GC_RING_INVALID_KEY',
  /** A partition number outside `0 … partitions-1` (or not an integer). */
  UnknownPartition: 'GC_RING_UNKNOWN_PARTITION',
  /** A node that is not a live member of the ring (pin target). */
  UnknownNode: 'GC_RING_UNKNOWN_NODE',
  /** A member asked for another partition count than the one the running ring has. */
  PartitionCountMismatch: 'GC_RING_PARTITION_COUNT_MISMATCH',
  /** A call was held for a moving partition longer than `holdTimeoutMs`. */
  Unavailable: 'GC_RING_UNAVAILABLE',
  /** The router already holds `maxHeldCalls` calls. */
  HoldBufferFull: 'GC_RING_HOLD_FULL',
  /** Another live process uses this node id in the ring. */
  NodeIdInUse: 'GC_RING_NODE_ID_IN_USE',
  /** The ring bucket failed an operation (connection, JetStream). */
  StoreUnavailable: 'GC_RING_STORE_UNAVAILABLE',
} as const;
/** One of {@link RingErrorCode}. */
export type RingErrorCodeValue = (typeof RingErrorCode)[keyof typeof RingErrorCode];

/** A key of the wrong type was given to `partitionOf`, `ownerOf`, `owns` or the router. */
export class InvalidKeyError extends GcError {
  /** `typeof` the value given. */
  readonly got: string;

  constructor(got: unknown) {
    const t = got === null ? 'null' : typeof got;
    super(
      RingErrorCode.InvalidKey,
      `ring keys are strings, got ${t}${typeof got === 'number' || typeof got === 'bigint' ? ` (${String(got)}); pass String(key)` : ''}`,
    );
    this.name = 'InvalidKeyError';
    this.got = t;
  }
}

/** A partition number outside the ring's range. */
export class UnknownPartitionError extends GcError {
  readonly partition: unknown;
  readonly partitions: number;

  constructor(partition: unknown, partitions: number) {
    super(
      RingErrorCode.UnknownPartition,
      `unknown partition ${JSON.stringify(partition) ?? String(partition)}: this ring has partitions 0 … ${partitions - 1} (integers)`,
    );
    this.name = 'UnknownPartitionError';
    this.partition = partition;
    this.partitions = partitions;
  }
}

/** A pin named a node that is not a live member of the ring. */
export class UnknownNodeError extends GcError {
  readonly node: string;
  /** The live members when it was refused. */
  readonly members: readonly string[];

  constructor(node: unknown, members: readonly string[]) {
    super(
      RingErrorCode.UnknownNode,
      `node ${JSON.stringify(node)} is not a live member of this ring (members: ${members.join(', ') || 'none'}); pin to one of them, or start the node first`,
    );
    this.name = 'UnknownNodeError';
    this.node = String(node);
    this.members = members;
  }
}

/** The ring runs with another partition count than the one this member asked for. */
export class PartitionCountMismatchError extends GcError {
  readonly bucket: string;
  readonly stored: number;
  readonly requested: number;

  constructor(bucket: string, stored: number, requested: number) {
    super(
      RingErrorCode.PartitionCountMismatch,
      `ring ${bucket} runs with ${stored} partitions; this member asked for ${requested}. The count is fixed for the life of an app's ring (keys would move to other partitions): start the member with partitions: ${stored} (or leave it unset), or stop every member of the app and delete the bucket ${bucket} to start over with ${requested} (ownership epochs restart)`,
    );
    this.name = 'PartitionCountMismatchError';
    this.bucket = bucket;
    this.stored = stored;
    this.requested = requested;
  }
}

/** A call for a moving partition was held longer than `holdTimeoutMs` without the partition getting an owner. */
export class PartitionUnavailableError extends GcError {
  readonly app: string;
  readonly partition: number;
  readonly waitedMs: number;

  constructor(app: string, partition: number, waitedMs: number, state: string) {
    super(
      RingErrorCode.Unavailable,
      `partition ${partition} of app ${app} had no serving owner for ${Math.round(waitedMs)} ms (${state}); the call was held and not sent. Check the ring's moves (stuck moves are reported) and retry`,
    );
    this.name = 'PartitionUnavailableError';
    this.app = app;
    this.partition = partition;
    this.waitedMs = waitedMs;
  }
}

/** The router holds `maxHeldCalls` calls already: this one fails at once instead of queueing. */
export class HoldBufferFullError extends GcError {
  readonly app: string;
  readonly maxHeldCalls: number;

  constructor(app: string, maxHeldCalls: number) {
    super(
      RingErrorCode.HoldBufferFull,
      `already holding ${maxHeldCalls} calls for moving partitions (app ${app}); this call was not sent. Slow down or raise maxHeldCalls`,
    );
    this.name = 'HoldBufferFullError';
    this.app = app;
    this.maxHeldCalls = maxHeldCalls;
  }
}

/** Another live process is a member of the ring under this node id. */
export class NodeIdInUseError extends GcError {
  readonly nodeId: string;

  constructor(nodeId: string, bucket: string, waitedMs: number) {
    super(
      RingErrorCode.NodeIdInUse,
      `node id ${nodeId} is held in ring ${bucket} by another live process (its lease kept being renewed for ${Math.round(waitedMs)} ms); node ids must be unique: stop the other process or use another id`,
    );
    this.name = 'NodeIdInUseError';
    this.nodeId = nodeId;
  }
}

/** The ring bucket failed an operation; `op` names it. */
export class RingStoreError extends GcError {
  readonly op: string;

  constructor(op: string, bucket: string, options?: ErrorOptions) {
    super(RingErrorCode.StoreUnavailable, storeFailedMessage(`ring bucket ${bucket}`, op, options), options);
    this.name = 'RingStoreError';
    this.op = op;
  }
}
