// What the parts of a ring member (its coordinator role, its hand-off) use of the member.
import type { StreamPublisher } from '@gc/core';
import type { KV } from '@nats-io/kv';
import type { RingMetrics } from './metrics.js';
import type { RingNames } from './records.js';
import type { RingEvent, RingOptions } from './types.js';
import type { RingView } from './view.js';

/** The ring member as its parts see it: identity, bucket, view, options, metrics and events. */
export interface MemberContext {
  readonly nodeId: string;
  readonly partitionCount: number;
  readonly kv: KV;
  /** Compare-and-set writes of partition records (see `Handoff`). */
  readonly publisher: StreamPublisher;
  readonly names: RingNames;
  readonly view: RingView;
  readonly o: RingOptions;
  readonly metrics: RingMetrics;
  emit(event: RingEvent): void;
  closed(): boolean;
}
