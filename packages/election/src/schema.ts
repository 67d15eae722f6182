import { z } from 'zod';

const positiveMs = z.number().int().positive();

/**
 * The election options that can come from configuration (the `election:` block of an app in `gc.yaml`),
 * each checked on its own: types and ranges, unknown keys refused. {@link resolveElectionOptions} parses
 * these fields with it and then applies the rules that tie them together or are stricter than a single
 * range (`renewIntervalMs < renewDeadlineMs < ttlMs`, `ttlMs ≥ MIN_TTL_MS`, `priority ≤ MAX_PRIORITY`,
 * `replicas` 1, 3 or 5). Names, the clock and the logger are not configuration and are not in it.
 *
 * @example
 * const election = electionConfigSchema.parse({ ttlMs: 3000, fastFailover: true });
 * createElection(nc, { bucket: 'orders', nodeId: 'n1', ...election });
 */
export const electionConfigSchema = z
  .object({
    ttlMs: positiveMs.optional(),
    renewIntervalMs: positiveMs.optional(),
    renewDeadlineMs: positiveMs.optional(),
    pollIntervalMs: positiveMs.optional(),
    cooldownMs: z.number().int().nonnegative().optional(),
    priority: z.number().int().nonnegative().optional(),
    observeOnly: z.boolean().optional(),
    fastFailover: z.boolean().optional(),
    fastFailoverIntervalMs: positiveMs.optional(),
    fastFailoverProbes: z.number().int().min(1).max(10).optional(),
    replicas: z.number().int().min(1).max(5).optional(),
  })
  .strict();

/** Election options as configuration gives them: the output of {@link electionConfigSchema}. */
export type ElectionConfig = z.infer<typeof electionConfigSchema>;
