/**
 * Pure builders of `systemctl`/`journalctl` command lines and parsers of their output for the
 * systemd backend.
 */

/** Where the unit lives: the system manager or the calling user's (`--user`). */
export interface SystemdScope {
  user: boolean;
}

/** Properties the backend reads with `systemctl show`. */
export const SHOW_PROPERTIES = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'Type',
  'MainPID',
  'ExecMainStatus',
  'ExecMainCode',
  'Result',
  'NRestarts',
  'LoadError',
] as const;

/** Adds `.service` to a bare unit name; leaves names with a unit suffix alone. */
export function normalizeUnit(unit: string): string {
  if (!/^[A-Za-z0-9:_.\\@-]+$/.test(unit)) {
    throw new RangeError(`systemd unit name ${JSON.stringify(unit)} has characters systemd does not allow`);
  }
  return /\.(service|socket|target|timer|mount|scope|slice|path)$/.test(unit) ? unit : `${unit}.service`;
}

/** `systemctl [--user] VERB [--no-block] UNIT`. `--no-block` lets gc bound the wait itself. */
export function systemctlVerbArgs(
  scope: SystemdScope,
  verb: 'start' | 'stop' | 'restart',
  unit: string,
): string[] {
  return [...(scope.user ? ['--user'] : []), verb, '--no-block', normalizeUnit(unit)];
}

/** `systemctl [--user] is-active UNIT`. */
export function systemctlIsActiveArgs(scope: SystemdScope, unit: string): string[] {
  return [...(scope.user ? ['--user'] : []), 'is-active', normalizeUnit(unit)];
}

/** `systemctl [--user] show UNIT --no-pager -p ...`. */
export function systemctlShowArgs(scope: SystemdScope, unit: string): string[] {
  return [
    ...(scope.user ? ['--user'] : []),
    'show',
    normalizeUnit(unit),
    '--no-pager',
    `--property=${SHOW_PROPERTIES.join(',')}`,
  ];
}

/** `systemctl [--user] reset-failed UNIT`: clears a failed state left by an earlier run. */
export function systemctlResetFailedArgs(scope: SystemdScope, unit: string): string[] {
  return [...(scope.user ? ['--user'] : []), 'reset-failed', normalizeUnit(unit)];
}

/** `systemctl [--user] kill --signal=SIG UNIT` (every process of the unit's cgroup). */
export function systemctlKillArgs(scope: SystemdScope, unit: string, signal: string): string[] {
  return [...(scope.user ? ['--user'] : []), 'kill', `--signal=${signal}`, normalizeUnit(unit)];
}

/** `journalctl [--user-unit|-u] UNIT -n N --no-pager -o cat`. */
export function journalctlArgs(scope: SystemdScope, unit: string, lines: number): string[] {
  return [
    ...(scope.user ? ['--user-unit', normalizeUnit(unit)] : ['-u', normalizeUnit(unit)]),
    '-n',
    String(Math.max(1, Math.floor(lines))),
    '--no-pager',
    '-o',
    'cat',
  ];
}

/** Parsed `systemctl show` output. */
export interface UnitInfo {
  id: string;
  loadState: string;
  activeState: string;
  subState: string;
  type: string;
  mainPid: number | undefined;
  execMainStatus: number | undefined;
  result: string;
  restarts: number;
  loadError: string;
  /** Every property as printed. */
  raw: Record<string, string>;
}

/** Parses `systemctl show` KEY=VALUE lines. */
export function parseShow(text: string): UnitInfo {
  const raw: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) raw[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  const num = (v: string | undefined) =>
    v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined;
  const pid = num(raw.MainPID);
  return {
    id: raw.Id ?? '',
    loadState: raw.LoadState ?? '',
    activeState: raw.ActiveState ?? '',
    subState: raw.SubState ?? '',
    type: raw.Type ?? '',
    mainPid: pid && pid > 0 ? pid : undefined,
    execMainStatus: num(raw.ExecMainStatus),
    result: raw.Result ?? '',
    restarts: num(raw.NRestarts) ?? 0,
    loadError: raw.LoadError ?? '',
    raw,
  };
}

/** The classes of systemctl failures with their own error. */
export type SystemctlFailure = 'no-systemd' | 'not-found' | 'permission' | 'other';

/** Classifies a systemctl/journalctl failure by its stderr. */
export function classifySystemctlError(stderr: string): SystemctlFailure {
  if (
    /not been booted with systemd|Failed to connect to bus|Host is down|System has not been booted/i.test(
      stderr,
    )
  )
    return 'no-systemd';
  if (/not found|could not be found|No such file or directory.*unit|not loaded/i.test(stderr))
    return 'not-found';
  if (/Access denied|Interactive authentication required|Permission denied/i.test(stderr))
    return 'permission';
  return 'other';
}
