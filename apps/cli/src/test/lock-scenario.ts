// The command lines of the "force-release a held lock, then find it in the audit trail" scenario, which
// both the in-process command tests (src/commands.test.ts) and the built binary's e2e test
// (e2e/cli/cli.e2e.test.ts) run. Connection and platform flags are added by each test.

/** `gc lock release migrate --app orders --force --reason <reason>`. */
export function forceReleaseMigrate(reason: string): string[] {
  return ['lock', 'release', 'migrate', '--app', 'orders', '--force', '--reason', reason];
}

/** `gc audit tail` of the last `lock.forced` record of the past hour, as JSON. */
export const TAIL_LAST_FORCED = [
  'audit',
  'tail',
  '--since',
  '1h',
  '--type',
  'lock.forced',
  '--count',
  '1',
  '--json',
] as const;
