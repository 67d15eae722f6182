import { describe, expect, it } from 'vitest';
import { ConfigError } from '@gc/core';
import { migrationPolicySchema } from './schema.js';
import { validateWindow, windowStatus } from './windows.js';

const at = (iso: string) => Date.parse(iso);
const H = 3_600_000;

describe('windowStatus', () => {
  const nightly = [{ cron: '0 2 * * *', durationMs: 2 * H, timezone: 'UTC' }];

  it('is open from a start for durationMs, and closed outside with the next opening', () => {
    expect(windowStatus(nightly, at('2026-12-03T02:00:00Z'))).toEqual({
      open: true,
      closesAt: at('2026-12-03T04:00:00Z'),
    });
    expect(windowStatus(nightly, at('2026-12-03T03:59:59.999Z'))).toMatchObject({ open: true });
    expect(windowStatus(nightly, at('2026-12-03T04:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-04T02:00:00Z'),
    });
    expect(windowStatus(nightly, at('2026-12-03T01:59:59Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-03T02:00:00Z'),
    });
  });

  it('without windows is always open', () => {
    expect(windowStatus(undefined, 0).open).toBe(true);
    expect(windowStatus([], 0).open).toBe(true);
  });

  it('takes the union of several windows, each in its time zone', () => {
    const ws = [
      { cron: '0 2 * * 6', durationMs: H, timezone: 'UTC' }, // Saturdays 02:00-03:00 UTC
      { cron: '0 9 * * *', durationMs: H, timezone: 'Asia/Tokyo' }, // 00:00-01:00 UTC every day
    ];
    expect(windowStatus(ws, at('2026-12-03T00:30:00Z'))).toEqual({
      open: true,
      closesAt: at('2026-12-03T01:00:00Z'),
    });
    // Thursday 02:30 UTC: not Saturday; next is Tokyo's 09:00 (00:00 UTC Friday).
    expect(windowStatus(ws, at('2026-12-03T02:30:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-04T00:00:00Z'),
    });
    expect(windowStatus(ws, at('2026-12-05T02:30:00Z'))).toMatchObject({ open: true });
  });

  it('supports seconds (six fields)', () => {
    const ws = [{ cron: '*/10 * * * * *', durationMs: 5000, timezone: 'UTC' }];
    expect(windowStatus(ws, at('2026-12-03T00:00:14Z')).open).toBe(true);
    expect(windowStatus(ws, at('2026-12-03T00:00:15Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-03T00:00:20Z'),
    });
  });

  it('refuses bad expressions and time zones with the field named', () => {
    expect(() => validateWindow({ cron: 'at night', durationMs: H })).toThrow(ConfigError);
    expect(() => validateWindow({ cron: 'at night', durationMs: H })).toThrow(/migrate\.windows: "at night"/);
    expect(() => validateWindow({ cron: '0 2 * * *', durationMs: H, timezone: 'Mars/Olympus' })).toThrow(
      /Mars\/Olympus/,
    );
    expect(() => validateWindow({ cron: '0 25 * * *', durationMs: H })).toThrow(ConfigError);
  });
});

describe('migrationPolicySchema', () => {
  it('accepts a cooldown and windows', () => {
    expect(
      migrationPolicySchema.parse({ cooldownMs: 0, windows: [{ cron: '0 2 * * 6', durationMs: 60_000 }] }),
    ).toEqual({ cooldownMs: 0, windows: [{ cron: '0 2 * * 6', durationMs: 60_000 }] });
  });

  it('refuses unknown keys, bad crons, durations of zero', () => {
    const bad = [
      { cooldown: 5 },
      { windows: [{ cron: 'nope', durationMs: 1000 }] },
      { windows: [{ cron: '0 2 * * *', durationMs: 0 }] },
      { windows: [{ cron: '0 2 * * *' }] },
      { cooldownMs: -1 },
    ];
    for (const b of bad) expect(migrationPolicySchema.safeParse(b).success, JSON.stringify(b)).toBe(false);
    const r = migrationPolicySchema.safeParse({ windows: [{ cron: 'nope', durationMs: 1000 }] });
    expect(r.error?.issues[0]).toMatchObject({ path: ['windows', 0, 'cron'] });
    expect(r.error?.issues[0]?.message).toMatch(/"nope" is not a usable cron expression/);
  });
});

describe('windows, edge cases', () => {
  it('reads a window without a time zone as UTC, on any machine', () => {
    expect(
      windowStatus([{ cron: '0 2 * * *', durationMs: 60_000 }], Date.parse('2026-12-03T02:00:30Z')).open,
    ).toBe(true);
  });

  it('refuses an expression that never matches', () => {
    expect(() => validateWindow({ cron: '0 0 30 2 *', durationMs: 60_000 })).toThrow(/never matches/);
  });

  it("handles a daylight-saving change in the window's time zone", () => {
    // Europe/Berlin leaves summer time on 2026-10-25 (03:00 CEST → 02:00 CET): 01:30 local is 23:30 UTC before.
    const ws = [{ cron: '30 1 * * *', durationMs: 30 * 60_000, timezone: 'Europe/Berlin' }];
    expect(windowStatus(ws, Date.parse('2026-10-24T23:40:00Z')).open).toBe(true); // 01:40 CEST
    expect(windowStatus(ws, Date.parse('2026-10-26T00:40:00Z')).open).toBe(true); // 01:40 CET
    expect(windowStatus(ws, Date.parse('2026-10-26T00:10:00Z'))).toEqual({
      open: false,
      opensAt: Date.parse('2026-10-26T00:30:00Z'),
    });
  });
});

describe('the README example of windows', () => {
  it('gives what the README says', () => {
    const policy = migrationPolicySchema.parse({
      windows: [{ cron: '0 2 * * 6', durationMs: 4 * 3600_000, timezone: 'Europe/Berlin' }],
    });
    expect(windowStatus(policy.windows, Date.parse('2026-12-05T01:30:00Z'))).toEqual({
      open: true,
      closesAt: Date.parse('2026-12-05T05:00:00Z'), // 06:00 Berlin (CET, UTC+1)
    });
    expect(windowStatus(policy.windows, Date.parse('2026-12-03T12:00:00Z'))).toEqual({
      open: false,
      opensAt: Date.parse('2026-12-05T01:00:00Z'), // Saturday 02:00 Berlin
    });
  });
});
