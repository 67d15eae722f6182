import { z } from 'zod';

/**
 * The replicated-database options that can come from configuration (the `sqlite:` block of an
 * active-passive app in `gc.yaml`), the serialisable side of {@link ReplicatedDatabaseOptions}: the
 * database file, synchronous commits, the snapshot interval, the worker switch and the replica count.
 * Types and ranges only, unknown keys refused. `worker` is a switch here: the platform turns `true` into
 * `ReplicatedDatabaseOptions.worker` with its own NATS connection options.
 *
 * @example
 * const sqlite = replicatedDatabaseConfigSchema.parse({ path: '/data/orders.db', replicas: 3 });
 * platform.app('orders', { sqlite });
 */
export const replicatedDatabaseConfigSchema = z
  .object({
    path: z.string().min(1),
    synchronous: z.boolean().optional(),
    snapshotIntervalMs: z.number().int().nonnegative().optional(),
    worker: z.boolean().optional(),
    replicas: z.literal([1, 3, 5]).optional(),
  })
  .strict();

/** Replicated-database options as configuration gives them: the output of {@link replicatedDatabaseConfigSchema}. */
export type ReplicatedDatabaseConfig = z.infer<typeof replicatedDatabaseConfigSchema>;
