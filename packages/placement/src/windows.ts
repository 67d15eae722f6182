// Maintenance windows: when an app's automatic migrations may happen. A window opens at each time its cron
// expression matches (croner: five fields, or six with seconds first) and stays open for `durationMs`.
import { Cron } from 'croner';
import { ConfigError } from '@gc/core';
import type { MaintenanceWindow } from './types.js';

/** Whether migrations may happen now, by an app's maintenance windows (see {@link windowStatus}). */
export type WindowStatus =
  | { open: true; /** Wall-clock ms at which the window that is open now closes. */ closesAt: number }
  | {
      open: false;
      /** Wall-clock ms at which the next window opens (absent when no window ever opens again). */
      opensAt?: number;
    };

const crons = new Map<string, Cron>();

/** The compiled cron of a window; throws `ConfigError` naming the field for bad syntax or time zone. */
function compile(w: MaintenanceWindow): Cron {
  const key = `${w.timezone ?? 'UTC'}\u0000${w.cron}`;
  let c = crons.get(key);
  if (c) return c;
  try {
    // UTC unless said otherwise: every scheduler (they fail over between machines) reads it the same way.
    c = new Cron(w.cron, { paused: true, timezone: w.timezone ?? 'UTC' });
    // A bad time zone is found only when a date is computed; an expression that never matches (30 February)
    // would hold an app's migrations back for ever.
    if (c.nextRun() === null) throw new Error('it never matches a date from now on');
  } catch (err) {
    throw new ConfigError('migrate.windows', windowProblem(w, err), { cause: err });
  }
  if (crons.size > 1000) crons.clear(); // bounded: specs come from configuration, a handful in practice
  crons.set(key, c);
  return c;
}

function windowProblem(w: MaintenanceWindow, err: unknown): string {
  return `"${w.cron}"${w.timezone ? ` in ${w.timezone}` : ''} is not a usable cron expression (five fields "min hour day month weekday", or six with seconds first; an IANA time zone): ${(err as Error).message}`;
}

/** Why a window's cron expression or time zone cannot be used, or undefined when it can. */
export function checkWindow(w: MaintenanceWindow): string | undefined {
  try {
    compile(w);
    return undefined;
  } catch (err) {
    return (err as ConfigError).cause !== undefined
      ? windowProblem(w, (err as ConfigError).cause)
      : String(err);
  }
}

/** Throws `ConfigError` when a window's cron expression or time zone cannot be used. */
export function validateWindow(w: MaintenanceWindow): void {
  compile(w);
}

/**
 * Whether `now` (wall-clock ms) is inside one of `windows`: open when some window's latest start is at most
 * `now` and it has not lasted `durationMs` yet. No windows: always open.
 *
 * @example
 * windowStatus([{ cron: '0 2 * * 6', durationMs: 4 * 3600_000, timezone: 'Europe/Berlin' }], Date.now());
 * // { open: false, opensAt: <next Saturday 02:00 Berlin> }
 */
export function windowStatus(windows: readonly MaintenanceWindow[] | undefined, now: number): WindowStatus {
  if (!windows || windows.length === 0) return { open: true, closesAt: Number.POSITIVE_INFINITY };
  let closesAt: number | undefined;
  let opensAt: number | undefined;
  for (const w of windows) {
    const c = compile(w);
    const last = c.previousRuns(1, new Date(now + 1))[0]?.getTime();
    if (last !== undefined && now < last + w.durationMs)
      closesAt = Math.max(closesAt ?? 0, last + w.durationMs);
    const next = c.nextRun(new Date(now))?.getTime();
    if (next !== undefined) opensAt = Math.min(opensAt ?? next, next);
  }
  if (closesAt !== undefined) return { open: true, closesAt };
  return opensAt !== undefined ? { open: false, opensAt } : { open: false };
}
