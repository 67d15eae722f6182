import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ReplicatedDatabaseOptions } from './component.js';
import { replicatedDatabaseConfigSchema, type ReplicatedDatabaseConfig } from './schema.js';

describe('replicatedDatabaseConfigSchema', () => {
  it('accepts the sqlite block; without its worker switch the output fits replicatedDatabase', () => {
    const c = replicatedDatabaseConfigSchema.parse({ path: '/data/orders.db', replicas: 3, worker: true });
    expect(c).toEqual({ path: '/data/orders.db', replicas: 3, worker: true });
    expectTypeOf<Omit<ReplicatedDatabaseConfig, 'worker'>>().toExtend<ReplicatedDatabaseOptions>();
  });

  it('refuses a missing path, unknown keys and values out of range', () => {
    for (const bad of [
      {},
      { path: '' },
      { path: '/d.db', replicas: 2 },
      { path: '/d.db', snapshotIntervalMs: -1 },
      { path: '/d.db', worker: { connect: {} } },
      { path: '/d.db', sync: true },
    ])
      expect(replicatedDatabaseConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });
});
