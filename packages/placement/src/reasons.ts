// Why each node was or was not chosen for an app: the candidate record of an eligible node, and the
// compact per-app reasons that `schedule` records and builds into `NodeReason`s when first read.
import type { CompiledNode } from './options.js';
import type { NodeReason, ScoreBreakdown } from './types.js';

/** An eligible node for one app: its score parts, then what became of it (one object per node). */
export interface Candidate {
  node: CompiledNode;
  /** Score without `sticky`. */
  base: number;
  affinity: number;
  load: number;
  inventory: number;
  sticky: number;
  total: number;
  role: 'leader' | 'standby' | 'member' | undefined;
  /** Why it was passed over (when not selected). */
  detail: string | undefined;
}

const ROLES = [undefined, 'leader', 'standby', 'member'] as const;
const ROLE_CODE = { leader: 1, standby: 2, member: 3 } as const;

/** The eligible nodes of one app in a few flat arrays (cheap to keep: no object per node). */
interface CompactScores {
  /** affinity, load, inventory, sticky, total per candidate. */
  nums: Float64Array;
  roles: Uint8Array;
  details: (string | undefined)[];
}

function reasonOf(c: CompactScores, i: number): NodeReason {
  const o = i * 5;
  const score: ScoreBreakdown = {
    affinity: c.nums[o]!,
    load: c.nums[o + 1]!,
    inventory: c.nums[o + 2]!,
    sticky: c.nums[o + 3]!,
    total: c.nums[o + 4]!,
  };
  const role = ROLES[c.roles[i]!];
  return role !== undefined
    ? { status: 'selected', role, score }
    : { status: 'not-selected', score, detail: c.details[i] ?? '' };
}

/**
 * Keeps one app's reasons compact (shared objects for excluded nodes, flat arrays for the eligible
 * ones) and defines `reasons[app]` as a property that builds the public shape when first read. Recording
 * reasons then costs almost nothing; a scheduler that stores them reads them once. A function of its
 * own so that the getter holds on to these arrays only, not to the scheduling loop's objects.
 */
export function defineLazyReasons(
  reasons: Record<string, Record<string, NodeReason>>,
  app: string,
  nodes: readonly CompiledNode[],
  why: (NodeReason | number | undefined)[],
  eligible: readonly Candidate[],
): void {
  const m = eligible.length;
  const compact: CompactScores = { nums: new Float64Array(m * 5), roles: new Uint8Array(m), details: [] };
  for (let i = 0; i < m; i++) {
    const c = eligible[i]!;
    const o = i * 5;
    compact.nums[o] = c.affinity;
    compact.nums[o + 1] = c.load;
    compact.nums[o + 2] = c.inventory;
    compact.nums[o + 3] = c.sticky;
    compact.nums[o + 4] = c.total;
    if (c.role !== undefined) compact.roles[i] = ROLE_CODE[c.role];
    if (c.detail !== undefined) compact.details[i] = c.detail;
    why[c.node.index] = i;
  }
  Object.defineProperty(reasons, app, {
    enumerable: true,
    configurable: true,
    get() {
      const value: Record<string, NodeReason> = {};
      for (const n of nodes) {
        const r = why[n.index];
        if (r !== undefined) value[n.id] = typeof r === 'number' ? reasonOf(compact, r) : r;
      }
      Object.defineProperty(reasons, app, { value, enumerable: true, configurable: true, writable: true });
      return value;
    },
  });
}
