import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '@gc/platform';
import { describeAudit } from './server.js';

const record = (type: string, data: Record<string, unknown>): AuditRecord =>
  ({
    id: '1',
    time: new Date(0).toISOString(),
    node: 'b',
    app: 'orders',
    type,
    data,
  }) as unknown as AuditRecord;

describe('describeAudit (the dashboard timeline)', () => {
  it('shows where an activation spent its time', () => {
    expect(
      describeAudit(
        record('app.activated', { epoch: 7, ms: 812, phases: { database: 300, vip: 12, onActive: 5 } }),
      ),
    ).toBe('orders: b became active (epoch 7, 812 ms: database 300, vip 12, onActive 5)');
    expect(describeAudit(record('app.activated', { epoch: 7, ms: 3 }))).toBe(
      'orders: b became active (epoch 7, 3 ms)',
    );
  });

  it('shows a drill result, with the reason when it failed', () => {
    const base = { kind: 'failover', from: { node: 'a' }, to: { node: 'b' }, totalMs: 900, budgetMs: 5000 };
    expect(describeAudit(record('drill.result', { ...base, pass: true }))).toBe(
      'orders: drill failover passed: a → b in 900 ms (budget 5000 ms)',
    );
    expect(
      describeAudit(
        record('drill.result', {
          ...base,
          to: undefined,
          totalMs: undefined,
          pass: false,
          reason: 'no new leader became active within 60000 ms',
        }),
      ),
    ).toBe(
      'orders: drill failover FAILED: a → — in no new leader (budget 5000 ms) — no new leader became active within 60000 ms',
    );
  });
});
