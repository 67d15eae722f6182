// Operators' label changes (`updateNodeLabels`, `gc node label`): kept in the placement bucket as
// `labels.<node>` and applied by the node itself over the labels of its configuration, so that membership
// (and every scheduler, dashboard and `gc node list`) shows the labels in force — also after a restart.
import { keepWatching, type Clock, type Logger } from '@gc/core';
import { validateLabels } from '@gc/membership';
import type { KvEntry } from '@nats-io/kv';
import type { PlacementBucket } from './bucket.js';
import { PlacementKey, nodeLabelsSchema, parseRecord, type NodeLabels } from './records.js';

/** A label change: `key → value` sets it, `key → null` removes it. */
export type LabelChanges = Readonly<Record<string, string | null>>;

/** `base` with an operator's changes applied (set wins over base; removed keys go). */
export function effectiveLabels(
  base: Readonly<Record<string, string>>,
  override: NodeLabels | undefined,
): Record<string, string> {
  const out: Record<string, string> = { ...base };
  for (const k of override?.remove ?? []) delete out[k];
  return { ...out, ...override?.set };
}

/**
 * The record after `changes` (validated: label names as membership's, values strings of at most 256
 * characters; throws `InvalidNameError` / `ConfigError`) are applied to `existing`.
 */
export function mergeLabelChanges(
  existing: NodeLabels | undefined,
  changes: LabelChanges,
  by: string,
  at: number,
): NodeLabels {
  const set: Record<string, string> = { ...existing?.set };
  const remove = new Set(existing?.remove ?? []);
  const toSet = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== null)) as Record<
    string,
    string
  >;
  validateLabels(toSet, 'labels');
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) {
      validateLabels({ [k]: '' }, 'labels');
      delete set[k];
      remove.add(k);
    } else {
      set[k] = v;
      remove.delete(k);
    }
  }
  return { set, remove: [...remove].sort(), by, at };
}

/**
 * Watches `labels.<nodeId>` and calls `apply` with the record (undefined once it is deleted): before it
 * resolves with the record as it is, then on every change. Records whose label names or values membership
 * would refuse are skipped (and logged). Returns a stop function.
 */
export async function watchLabelOverride(
  bucket: PlacementBucket,
  nodeId: string,
  apply: (override: NodeLabels | undefined) => void,
  o: { clock: Clock; logger: Logger },
): Promise<() => void> {
  const key = PlacementKey.labels(nodeId);
  const open = () => bucket.kv.watch({ key });
  const seen = (e: KvEntry) => {
    if (e.operation !== 'PUT') return apply(undefined);
    const rec = parseRecord<NodeLabels>(nodeLabelsSchema, e.value);
    try {
      if (!rec) throw new Error('it does not parse');
      validateLabels(rec.set, 'labels');
      for (const k of rec.remove) validateLabels({ [k]: '' }, 'labels');
    } catch (err) {
      return o.logger.warn('placement: a label record membership would refuse was ignored', { key, err });
    }
    apply(rec);
  };
  // The record as it is now, applied before this returns (the node joins membership with it); the watch
  // then delivers it again (the node ignores a record it already applied) and every change after.
  const now = await bucket.kv.get(key);
  if (now) seen(now);
  return keepWatching(await open(), open, seen, {
    clock: o.clock,
    logger: o.logger,
    what: 'label override watch',
    fields: { key },
  });
}
