// What the placement commands share beyond the control API: `--dry-run` (one plan printer for `gc node
// drain|cordon|uncordon|label` and `gc app move|rebalance`, like `nomad job plan`), the syntax of label
// changes (`gc node label`), and an app's placement as its nodes declare it (`gc app placement`,
// `gc app rebalance`).
import { Flags, type Command } from '@oclif/core';
import { windowStatus } from '@gc/placement';
import {
  createAdminClient,
  openPlacementBucket,
  type DisruptionBudget,
  type MigrationPolicy,
  type OperationPlan,
  type PlacementControl,
  type PlacementOperation,
  type PlacementSpec,
  type PlatformStatus,
} from '@gc/platform';
import { validateToken } from '@gc/core';
import type { NatsConnection } from '@nats-io/nats-core';
import { cliPlacement, placementExit } from './placement-control.js';
import { ExitCode } from './base.js';

/** Exit code of a bad label change: a command line that does not parse (as oclif's own flag errors). */
export const USAGE_EXIT = ExitCode.Usage;

/** How far a switchover's target replica is behind, as its node reports it (apps with a database). */
export interface ReplicaLag {
  app: string;
  /** The switchover's target. */
  node: string;
  /** Transactions it has not applied yet, and for how long it has been behind. */
  lagTx: number;
  lagMs: number;
  /** Its replication state (`following`, `bootstrapping`, `stalled`, …). */
  state: string;
}

/** A plan as `--dry-run --json` prints it: the control API's plan, with the lag of each switchover's target. */
export type PrintedPlan = OperationPlan & { replicaLag?: ReplicaLag[] };

/**
 * What `operation` would do now (nothing is written), with the replica lag of each switchover's target read
 * from the nodes' status. Throws what `control.plan` throws (unknown node, refused move: see `placementExit`).
 */
export async function planWithLag(
  control: PlacementControl,
  nc: NatsConnection,
  platform: string,
  timeoutMs: number,
  operation: PlacementOperation,
): Promise<PrintedPlan> {
  const plan = await control.plan(operation);
  const targets = plan.disruption.flatMap((d) =>
    d.switchover?.to !== undefined ? [{ app: d.app, node: d.switchover.to }] : [],
  );
  if (!targets.length) return plan;
  const lag = replicaLag(targets, await createAdminClient(nc, platform).nodes(timeoutMs));
  return lag.length ? { ...plan, replicaLag: lag } : plan;
}

function replicaLag(targets: Array<{ app: string; node: string }>, nodes: PlatformStatus[]): ReplicaLag[] {
  return targets.flatMap(({ app, node }) => {
    const r = nodes.find((n) => n.nodeId === node)?.apps.find((a) => a.name === app)?.replication;
    return r ? [{ app, node, lagTx: r.lagTx, lagMs: r.lagMs, state: r.state }] : [];
  });
}

/** `--dry-run` of the placement commands. */
export const dryRunFlag = Flags.boolean({
  description: 'print what would move where and the disruption (a plan), changing nothing',
  default: false,
});

/**
 * `--dry-run`: plans `operation`, prints the plan and returns it (the `--json` result). Exit 0 for a plan,
 * also one with blocked or unsatisfiable apps; errors keep their exit codes (`placementExit`: 4 for an
 * unknown node, 1 for a refused move).
 */
export async function dryRun(
  cmd: Command,
  nc: NatsConnection,
  flags: { platform: string; timeout: number },
  operation: PlacementOperation,
): Promise<PrintedPlan> {
  let plan: PrintedPlan;
  try {
    const control = cliPlacement(nc, flags.platform, flags.timeout);
    plan = await planWithLag(control, nc, flags.platform, flags.timeout, operation);
  } catch (err) {
    cmd.error((err as Error).message, { exit: placementExit(err) });
  }
  cmd.log(formatPlan(plan));
  return plan;
}

/** The operation in words: `drain a`, `move routed to b`. */
export function describeOperation(op: PlacementOperation): string {
  switch (op.op) {
    case 'drain':
      return `drain ${op.node}`;
    case 'cordon':
    case 'uncordon':
      return `${op.op} ${op.node}`;
    case 'label':
      return `label ${op.node} ${formatLabelChanges(op.changes)}`;
    case 'move':
      return `move ${op.app} to ${op.to}`;
    case 'rebalance':
      return `rebalance ${op.app}`;
    case 'none':
      return 'no operation';
  }
}

const nodes = (ns: readonly string[]) => (ns.length ? ns.join(',') : '-');

/**
 * The plan as text, one section per kind: what would move where (with the leader and why), the disruption
 * (instances that stop, switchovers and whether the target's standby is caught up, its replica lag), the
 * migrations that would wait, what would hold a drain back, what no node could run — or `no change`.
 */
export function formatPlan(plan: PrintedPlan): string {
  const out = [
    `plan: ${describeOperation(plan.operation)} (against decision ${plan.generation}; nothing was changed)`,
  ];
  if (!plan.changes.length) out.push('no change');
  else {
    out.push('changes:');
    for (const c of plan.changes) {
      const leader = c.leader ? `leader ${c.leader.from ?? '-'} → ${c.leader.to ?? '-'}` : '';
      out.push(
        c.kind === 'leader'
          ? `  ${c.app}: ${leader}`
          : `  ${c.app}: ${nodes(c.from)} → ${nodes(c.to)}${leader ? ` (${leader})` : ''}`,
      );
      for (const r of c.reasons) out.push(`      ${r}`);
    }
  }
  if (plan.disruption.length) {
    out.push('disruption:');
    for (const d of plan.disruption) {
      if (d.stops.length) out.push(`  ${d.app}: stops on ${d.stops.join(', ')}`);
      const s = d.switchover;
      if (!s) continue;
      const lag = plan.replicaLag?.find((l) => l.app === d.app && l.node === s.to);
      const behind = lag ? ` (replica ${lag.state}, ${lag.lagTx} tx / ${lag.lagMs} ms behind)` : '';
      const from = s.from ?? 'no leader';
      out.push(
        s.to === undefined
          ? `  ${d.app}: the lead leaves ${from} and no node takes it over`
          : s.standbyReady
            ? `  ${d.app}: switchover ${from} → ${s.to}: standby on ${s.to} caught up${behind}`
            : `  ${d.app}: switchover ${from} → ${s.to}: standby on ${s.to} NOT caught up${behind}: the switchover waits for it (data at risk if ${from} fails meanwhile)`,
      );
    }
  }
  const section = (title: string, lines: string[]) => {
    if (lines.length) out.push(`${title}:`, ...lines.map((l) => `  ${l}`));
  };
  section(
    'deferred',
    Object.entries(plan.deferred).map(([app, why]) => `${app}: ${why}`),
  );
  section('blocked', plan.blocked);
  section(
    'unsatisfiable',
    Object.entries(plan.unsatisfiable).map(([app, why]) => `${app}: ${why}`),
  );
  return out.join('\n');
}

/** A bad label change on the command line (exit {@link USAGE_EXIT}). */
export class LabelSyntaxError extends Error {
  override name = 'LabelSyntaxError';
}

const MAX_LABEL_VALUE = 256;

/**
 * Parses `gc node label` changes, as kubectl's: `key=value` sets (the value is everything after the first
 * `=`, so `a=b=c` sets `a` to `b=c`; `key=` sets an empty value), `key-` removes. Keys are label names as
 * membership's (letters, digits, `-`, `_`, starting with a letter or digit). Throws
 * {@link LabelSyntaxError} for anything else (`=x`, `key`, an empty word, a key given twice).
 */
export function parseLabelChanges(words: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const usage = 'use key=value to set a label, key- to remove it';
  for (const w of words) {
    const eq = w.indexOf('=');
    let key: string;
    let value: string | null;
    if (eq >= 0) {
      key = w.slice(0, eq);
      value = w.slice(eq + 1);
    } else if (w.length > 1 && w.endsWith('-')) {
      key = w.slice(0, -1);
      value = null;
    } else throw new LabelSyntaxError(`label change ${JSON.stringify(w)}: ${usage}`);
    if (!key) throw new LabelSyntaxError(`label change ${JSON.stringify(w)} has no key: ${usage}`);
    try {
      validateToken('label', key);
    } catch (err) {
      throw new LabelSyntaxError(`label change ${JSON.stringify(w)}: ${(err as Error).message}`);
    }
    if (value !== null && value.length > MAX_LABEL_VALUE)
      throw new LabelSyntaxError(
        `label change ${JSON.stringify(w)}: the value is longer than ${MAX_LABEL_VALUE} characters`,
      );
    if (key in out) throw new LabelSyntaxError(`label ${key} is changed twice: give each key once`);
    out[key] = value;
  }
  return out;
}

/** The changes as typed: `tier=gold disk-`. */
export function formatLabelChanges(changes: Readonly<Record<string, string | null>>): string {
  return Object.entries(changes)
    .map(([k, v]) => (v === null ? `${k}-` : `${k}=${v}`))
    .join(' ');
}

/** An app's placement as the live nodes declare it (see {@link declaredApp}). */
export interface DeclaredPlacement {
  mode: 'active-passive' | 'pool' | 'ring';
  placement: PlacementSpec;
  budget?: DisruptionBudget;
  migrate?: MigrationPolicy;
  /** Nodes that declare the app (sorted). */
  declaredBy: string[];
  /**
   * Nodes that declare another spec than the first one's (by id), whose spec the scheduler uses; absent
   * when they all agree.
   */
  conflicting?: string[];
}

/**
 * `app` as the nodes declare it in the placement bucket (the scheduler uses the first node's spec, by id),
 * or undefined when no node declares it with placement. Throws `PlacementNotFoundError` when the platform has
 * no placement bucket.
 */
export async function declaredApp(
  nc: NatsConnection,
  platform: string,
  app: string,
): Promise<DeclaredPlacement | undefined> {
  const bucket = await openPlacementBucket(nc, platform, { create: false });
  const decls = [...(await bucket.declarations())]
    .filter(([, d]) => d.apps[app] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  if (!decls.length) return undefined;
  const spec = decls[0]![1].apps[app]!;
  const key = (s: typeof spec) => JSON.stringify([s.mode, s.placement, s.budget ?? null, s.migrate ?? null]);
  const conflicting = decls.filter(([, d]) => key(d.apps[app]!) !== key(spec)).map(([n]) => n);
  return {
    mode: spec.mode,
    placement: spec.placement,
    ...(spec.budget ? { budget: spec.budget } : {}),
    ...(spec.migrate ? { migrate: spec.migrate } : {}),
    declaredBy: decls.map(([n]) => n),
    ...(conflicting.length ? { conflicting } : {}),
  };
}

/** Whether an app's maintenance windows are open at `now`, with ISO times (see `@gc/placement`'s `windowStatus`). */
export type WindowNow =
  { open: true; closesAt: string } | { open: false; opensAt?: string } | { error: string };

/** {@link WindowNow} of `policy`'s windows; undefined when it has none (migrations may happen any time). */
export function windowNow(policy: MigrationPolicy | undefined, now: number): WindowNow | undefined {
  if (!policy?.windows?.length) return undefined;
  try {
    const w = windowStatus(policy.windows, now);
    if (w.open) return { open: true, closesAt: new Date(w.closesAt).toISOString() };
    return w.opensAt !== undefined
      ? { open: false, opensAt: new Date(w.opensAt).toISOString() }
      : { open: false };
  } catch (err) {
    // A window this CLI cannot evaluate (a cron syntax or time zone of a newer gc): say so, show the rest.
    return { error: (err as Error).message };
  }
}
