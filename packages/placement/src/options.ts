import { checkConfig, ConfigError, validateAppName, validateNodeId } from '@gc/core';
import { isDeferredIssue, placementSpecSchema } from './schema.js';
import { parseSelector, type LabelSelector } from './selector.js';
import {
  AppMode,
  type DisruptionBudget,
  type PlacementApp,
  type PlacementNode,
  type PlacementSpec,
  type ScheduleOptions,
} from './types.js';

/** Largest node weight. */
export const MAX_WEIGHT = 1000;
// The bound lives with the schema; re-exported here, where it has always been.
export { MAX_PREFERENCE } from './schema.js';

/** Defaults of {@link ScheduleOptions}. */
export function defaultScheduleOptions(): ScheduleOptions {
  return {
    hysteresis: 25,
    loadWeight: 10,
    standbyLoad: 0.2,
    inventoryWeight: 10,
    spreadWeight: 10,
    explain: true,
  };
}

function nonNegative(path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ConfigError(path, `must be a finite number ≥ 0, got ${JSON.stringify(v)}`);
  }
  return v;
}

function int(path: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new ConfigError(path, `must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Merges `init` over {@link defaultScheduleOptions} and validates; throws `ConfigError` (`placement.<option>`). */
export function resolveScheduleOptions(init: Partial<ScheduleOptions> = {}): ScheduleOptions {
  const given = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined));
  const o: ScheduleOptions = { ...defaultScheduleOptions(), ...given };
  for (const k of ['hysteresis', 'loadWeight', 'standbyLoad', 'inventoryWeight', 'spreadWeight'] as const)
    nonNegative(`placement.${k}`, o[k]);
  if (typeof o.explain !== 'boolean') throw new ConfigError('placement.explain', 'must be a boolean');
  return o;
}

/** A node after validation, with defaults filled in. */
export interface CompiledNode {
  id: string;
  index: number;
  labels: Readonly<Record<string, string>>;
  weight: number;
  capacity: number;
  cordoned: boolean;
  /** load1 ÷ cpus, capped at 2; 0 without inventory. */
  cpuPressure: number;
}

/** An app after validation: selectors parsed, sets built, defaults filled in. */
export interface CompiledApp {
  app: string;
  mode: AppMode;
  on: readonly LabelSelector[];
  avoid: readonly LabelSelector[];
  prefer: readonly { selector: LabelSelector; weight: number }[];
  onNodes: ReadonlySet<string> | undefined;
  withApp: readonly string[];
  /** Declared `awayFromApp` plus every app that declares this one (anti-affinity holds both ways). */
  away: Set<string>;
  spread: { label: string; maxSkew: number } | undefined;
  minNodes: number;
  maxNodes: number;
  budget: DisruptionBudget | undefined;
}

function labelsOf(path: string, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError(path, 'must be an object of label → string value');
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string')
      throw new ConfigError(`${path}.${k}`, `label values are strings, got ${typeof x}`);
  }
  return v as Record<string, string>;
}

/** Validates nodes (unique ids, sane numbers) and returns them sorted by id. */
export function compileNodes(nodes: readonly PlacementNode[]): CompiledNode[] {
  if (!Array.isArray(nodes)) throw new ConfigError('nodes', 'must be an array');
  const sorted: PlacementNode[] = [...(nodes as readonly PlacementNode[])].sort((a, b) =>
    cmp(a?.nodeId, b?.nodeId),
  );
  const out: CompiledNode[] = [];
  for (const n of sorted) {
    const id = validateNodeId(n?.nodeId);
    const path = `nodes.${id}`;
    if (out.length && out[out.length - 1]!.id === id)
      throw new ConfigError(path, 'appears twice in the inventory; node ids are unique');
    const weight = n.weight ?? 1;
    if (typeof weight !== 'number' || !(weight > 0) || weight > MAX_WEIGHT)
      throw new ConfigError(
        `${path}.weight`,
        `must be a number in (0, ${MAX_WEIGHT}], got ${JSON.stringify(weight)}`,
      );
    const capacity = n.capacity === undefined ? Infinity : int(`${path}.capacity`, n.capacity, 0);
    let cpuPressure = 0;
    if (n.inventory !== undefined) {
      const inv = n.inventory;
      for (const k of ['cpus', 'memoryBytes', 'diskFreeBytes', 'load1'] as const)
        nonNegative(`${path}.inventory.${k}`, inv[k]);
      cpuPressure = inv.cpus > 0 ? Math.min(2, inv.load1 / inv.cpus) : 0;
    }
    out.push({
      id,
      index: out.length,
      labels: labelsOf(`${path}.labels`, n.labels),
      weight,
      capacity,
      cordoned: n.cordoned === true,
      cpuPressure,
    });
  }
  return out;
}

const list = (v: string | readonly string[] | undefined): readonly string[] =>
  v === undefined ? [] : typeof v === 'string' ? [v] : v;

function budgetOf(path: string, b: DisruptionBudget | undefined): DisruptionBudget | undefined {
  if (b === undefined) return undefined;
  if (b.minAvailable !== undefined && b.maxUnavailable !== undefined)
    throw new ConfigError(path, 'set minAvailable or maxUnavailable, not both');
  for (const k of ['minAvailable', 'maxUnavailable'] as const) {
    const v = b[k];
    if (v === undefined) continue;
    if (typeof v === 'number') int(`${path}.${k}`, v, 0);
    else if (typeof v !== 'string' || !/^\d+(\.\d+)?%$/.test(v) || parseFloat(v) > 100)
      throw new ConfigError(
        `${path}.${k}`,
        `must be an integer ≥ 0 or a percentage like "50%", got ${JSON.stringify(v)}`,
      );
  }
  return b;
}

/**
 * Validates apps (names, modes, each placement with {@link placementSpecSchema}, budgets) and returns them
 * keyed by name, sorted. Selectors are parsed once per distinct text. Throws `ConfigError` (naming the
 * field, its value and what is allowed), `InvalidNameError` or `SelectorSyntaxError`.
 */
export function compileApps(apps: readonly PlacementApp[]): Map<string, CompiledApp> {
  if (!Array.isArray(apps)) throw new ConfigError('apps', 'must be an array');
  const cache = new Map<string, LabelSelector>();
  const sel = (src: string, path: string) => {
    let s = cache.get(src);
    if (!s) cache.set(src, (s = parseSelector(src, path)));
    return s;
  };
  const sorted: PlacementApp[] = [...(apps as readonly PlacementApp[])].sort((a, b) => cmp(a?.app, b?.app));
  const out = new Map<string, CompiledApp>();
  const modes = Object.values(AppMode) as string[];
  for (const a of sorted) {
    const app = validateAppName(a?.app);
    const path = `apps.${app}`;
    if (out.has(app)) throw new ConfigError(path, 'appears twice; app names are unique');
    if (!modes.includes(a.mode))
      throw new ConfigError(
        `${path}.mode`,
        `must be one of ${modes.join(', ')}, got ${JSON.stringify(a.mode)}`,
      );
    const pp = `${path}.placement`;
    // Types, ranges and counts; selector syntax and names are left to the steps below, which throw
    // SelectorSyntaxError and InvalidNameError with the full path.
    const p: PlacementSpec = checkConfig(placementSpecSchema, a.placement ?? {}, pp, isDeferredIssue);
    const on = list(p.onLabel).map((s, i) => sel(s, `${pp}.onLabel[${i}]`));
    const avoid = list(p.avoidLabel).map((s, i) => sel(s, `${pp}.avoidLabel[${i}]`));
    const prefer = (p.preferLabel ?? []).map((x, i) => ({
      selector: sel(x.selector, `${pp}.preferLabel[${i}].selector`),
      weight: x.weight,
    }));
    const onNodes = p.onNodes === undefined ? undefined : new Set(p.onNodes.map((n) => validateNodeId(n)));
    const withApp = [...new Set((p.withApp ?? []).map((x) => validateAppName(x)))].sort();
    if (withApp.includes(app))
      throw new ConfigError(`${pp}.withApp`, 'an app cannot be co-located with itself');
    const away = new Set((p.awayFromApp ?? []).map((x) => validateAppName(x)));
    if (away.has(app)) throw new ConfigError(`${pp}.awayFromApp`, 'an app cannot avoid itself');
    const spread = p.spread && { label: p.spread.label, maxSkew: p.spread.maxSkew ?? 1 };
    const minNodes = p.minNodes ?? 1;
    const maxNodes = p.maxNodes ?? Infinity;
    out.set(app, {
      app,
      mode: a.mode,
      on,
      avoid,
      prefer,
      onNodes,
      withApp,
      away,
      spread,
      minNodes,
      maxNodes,
      budget: budgetOf(`${path}.budget`, a.budget),
    });
  }
  for (const a of out.values()) for (const b of a.away) out.get(b)?.away.add(a.app);
  return out;
}

/** Deterministic string order (code units), independent of locale. */
export function cmp(a: unknown, b: unknown): number {
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
