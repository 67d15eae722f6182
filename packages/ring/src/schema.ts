import { z } from 'zod';
import { MAX_PARTITIONS, MIN_PARTITIONS } from './hash.js';

/** Smallest member lease TTL accepted, in ms. */
export const MIN_TTL_MS = 300;
/** Largest member weight. */
export const MAX_WEIGHT = 1000;

const positiveMs = z.number().int().positive();

/**
 * The ring options that can come from configuration (the `ring:` block of a ring-mode app in `gc.yaml`),
 * each checked on its own: types and ranges, unknown keys refused. {@link resolveRingOptions} parses these
 * fields with it and then applies the rules between fields (`renewIntervalMs < renewDeadlineMs < ttlMs`).
 * Names, callbacks, the clock, the logger and the registry are not configuration and are not in it.
 *
 * @example
 * const ring = ringConfigSchema.parse({ partitions: 64, weight: 2 });
 * await createRing(nc, { platform: 'prod', app: 'cache', nodeId: 'n1', ...ring });
 */
export const ringConfigSchema = z
  .object({
    partitions: z.number().int().min(MIN_PARTITIONS).max(MAX_PARTITIONS).optional(),
    weight: z.number().positive().max(MAX_WEIGHT).optional(),
    ttlMs: z.number().int().min(MIN_TTL_MS).optional(),
    maxConcurrentMoves: z.number().int().min(1).optional(),
    settleMs: z.number().int().nonnegative().optional(),
    stuckMoveMs: positiveMs.optional(),
    holdTimeoutMs: positiveMs.optional(),
    maxHeldCalls: z.number().int().min(1).optional(),
    ownTimeoutMs: positiveMs.optional(),
    releaseTimeoutMs: positiveMs.optional(),
    leaveTimeoutMs: positiveMs.optional(),
    replicas: z.literal([1, 3, 5]).optional(),
  })
  .strict();

/** Ring options as configuration gives them: the output of {@link ringConfigSchema}. */
export type RingConfig = z.infer<typeof ringConfigSchema>;
