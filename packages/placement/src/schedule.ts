import { cmp, compileApps, compileNodes, resolveScheduleOptions } from './options.js';
import type { CompiledApp, CompiledNode } from './options.js';
import { defineLazyReasons, type Candidate } from './reasons.js';
import {
  AppMode,
  Constraint,
  type AppPlacement,
  type NodeReason,
  type ScheduleInput,
  type ScheduleOptions,
  type ScheduleResult,
  type Unsatisfiable,
} from './types.js';

/** Internal knobs of {@link schedule} used by `planDrain` (not part of the public API). */
export interface ScheduleInternals {
  /** Nodes excluded for every app (constraint `draining`). */
  draining?: ReadonlySet<string>;
}

const byScore = (a: Candidate, b: Candidate) => b.total - a.total || cmp(a.node.id, b.node.id);

/**
 * The order apps are scheduled in: an app after every app it is co-located with (`withApp`), otherwise
 * by name. Apps in a `withApp` cycle are returned separately.
 */
function scheduleOrder(apps: Map<string, CompiledApp>): { order: string[]; cyclic: string[] } {
  const indegree = new Map<string, number>();
  const followers = new Map<string, string[]>();
  for (const a of apps.values()) {
    let d = 0;
    for (const t of a.withApp) {
      if (!apps.has(t)) continue; // unknown target: unsatisfiable, reported when scheduled
      d++;
      const f = followers.get(t);
      if (f) f.push(a.app);
      else followers.set(t, [a.app]);
    }
    indegree.set(a.app, d);
  }
  // Kahn's algorithm with a sorted ready list: deterministic, by name among the ready apps.
  const ready = [...apps.keys()].filter((a) => indegree.get(a) === 0).reverse(); // a stack, smallest last
  const order: string[] = [];
  while (ready.length) {
    const a = ready.pop()!;
    order.push(a);
    const released: string[] = [];
    for (const f of followers.get(a) ?? []) {
      const d = indegree.get(f)! - 1;
      indegree.set(f, d);
      if (d === 0) released.push(f);
    }
    if (released.length) {
      ready.push(...released);
      ready.sort((x, y) => cmp(y, x));
    }
  }
  const placed = new Set(order);
  return { order, cyclic: [...apps.keys()].filter((a) => !placed.has(a)) };
}

function describeExclusions(
  total: number,
  excluded: Map<string, { constraint: string; nodes: string[] }>,
): { constraint: string; text: string } {
  const groups = [...excluded.values()].sort(
    (a, b) => b.nodes.length - a.nodes.length || cmp(a.constraint, b.constraint),
  );
  const shown = (ns: string[]) => (ns.length > 5 ? `${ns.slice(0, 5).join(', ')}, …` : ns.join(', '));
  const text = groups
    .map((g) => `${g.nodes.length} of ${total} node(s) fail ${g.constraint} (${shown(g.nodes)})`)
    .join('; ');
  return { constraint: groups[0]?.constraint.split(' ')[0] ?? Constraint.MinNodes, text };
}

/**
 * Computes where every app should run. Pure and deterministic: the same nodes, apps and current
 * placement give the same result whatever the order of the input arrays.
 *
 * For each app, in {@link ScheduleResult.order}: every node is checked against the hard constraints
 * (`onNodes`, `onLabel`, `avoidLabel`, cordon — a cordoned node keeps the apps it already runs —, the
 * spread label, `withApp`, `awayFromApp`, `capacity`); the eligible nodes are scored (preferences, load of
 * the apps scheduled before, CPU pressure, plus `hysteresis` points where the app already runs); then the
 * best `min(maxNodes, eligible)` are taken — with `spread`, as many as the max skew allows, evenly over the
 * label's values. Active-passive apps also get a preferred leader: the best candidate, the current leader
 * keeping it unless another scores more than `hysteresis` higher, and the leader of a `withApp` target
 * first. An app with fewer than `minNodes` possible nodes is unsatisfiable, with why.
 *
 * Throws `ConfigError`, `InvalidNameError` or `SelectorSyntaxError` for bad input. `reasons` are recorded
 * compactly and built when first read (a plain, JSON-serialisable object from then on).
 *
 * @param internals used by `planDrain`; not part of the public API.
 *
 * @example
 * ```ts
 * const { placements, unsatisfiable } = schedule({
 *   nodes: [{ nodeId: 'n1', labels: { disk: 'ssd' } }, { nodeId: 'n2', labels: { disk: 'hdd' } }],
 *   apps: [{ app: 'orders', mode: 'active-passive', placement: { onLabel: 'disk=ssd' } }],
 * });
 * placements.orders; // { nodes: ['n1'], leader: 'n1' }
 * ```
 */
export function schedule(input: ScheduleInput, internals: ScheduleInternals = {}): ScheduleResult {
  const opts: ScheduleOptions = resolveScheduleOptions(input.options);
  const nodes = compileNodes(input.nodes);
  const apps = compileApps(input.apps);
  const current = input.current ?? {};
  const draining = internals.draining ?? new Set<string>();

  const load = new Float64Array(nodes.length);
  const count = new Uint32Array(nodes.length);
  const placedOn = new Map<string, Set<string>>(); // app → its nodes
  const placements: Record<string, AppPlacement> = {};
  const reasons: Record<string, Record<string, NodeReason>> = {};
  const unsatisfiable: Record<string, Unsatisfiable> = {};
  const { order, cyclic } = scheduleOrder(apps);

  for (const app of cyclic) {
    reasons[app] = {};
    unsatisfiable[app] = {
      app,
      constraint: Constraint.WithApp,
      message: `no node set satisfies app "${app}": withApp forms a cycle (${cyclic.join(', ')}); co-location must point one way`,
    };
  }

  for (const app of order) {
    const a = apps.get(app)!;
    // Per node index: the (shared) reason of an excluded node; `defineLazyReasons` adds the eligible ones.
    const why: (NodeReason | number | undefined)[] = opts.explain
      ? new Array<NodeReason | number | undefined>(nodes.length)
      : [];
    reasons[app] = {};
    const fail = (constraint: Constraint, message: string) => {
      unsatisfiable[app] = { app, constraint, message: `no node set satisfies app "${app}": ${message}` };
    };
    const missing = a.withApp.find((t) => !placedOn.has(t));
    if (missing !== undefined) {
      fail(
        Constraint.WithApp,
        apps.has(missing)
          ? `it is co-located with app "${missing}" (withApp), which could not be placed (${unsatisfiable[missing]?.message.replace(/^no node set satisfies app "[^"]*": /, '') ?? 'unsatisfiable'})`
          : `it is co-located with app "${missing}" (withApp), which is not defined`,
      );
      continue;
    }

    const cur = current[app];
    const curNodes = new Set(cur?.nodes ?? []);
    const curLeader = cur?.leader;
    const targetLeaders = new Set<string>();
    for (const t of a.withApp) {
      const l = placements[t]?.leader;
      if (l !== undefined) targetLeaders.add(l);
    }

    const eligible: Candidate[] = [];
    const excluded = new Map<string, { constraint: string; nodes: string[] }>();
    // Nodes excluded for the same reason share one (frozen) reason object.
    const shared = new Map<string, NodeReason>();
    const exclude = (n: CompiledNode, constraint: Constraint, detail: string, group: string) => {
      if (opts.explain) {
        let r = shared.get(detail);
        if (!r) shared.set(detail, (r = Object.freeze({ status: 'excluded', constraint, detail })));
        why[n.index] = r;
      }
      const g = excluded.get(group);
      if (g) g.nodes.push(n.id);
      else excluded.set(group, { constraint: group, nodes: [n.id] });
    };
    const flush = () => {
      if (opts.explain) defineLazyReasons(reasons, app, nodes, why, eligible);
    };

    nodeLoop: for (const n of nodes) {
      if (a.onNodes && !a.onNodes.has(n.id)) {
        exclude(n, Constraint.OnNodes, `not one of onNodes`, 'onNodes');
        continue;
      }
      for (const s of a.on) {
        if (!s.matches(n.labels)) {
          exclude(n, Constraint.OnLabel, `labels do not match "${s.source}"`, `onLabel "${s.source}"`);
          continue nodeLoop;
        }
      }
      for (const s of a.avoid) {
        if (s.matches(n.labels)) {
          exclude(n, Constraint.AvoidLabel, `labels match "${s.source}"`, `avoidLabel "${s.source}"`);
          continue nodeLoop;
        }
      }
      if (draining.has(n.id)) {
        exclude(n, Constraint.Draining, 'the node is being drained', 'draining');
        continue;
      }
      if (n.cordoned && !curNodes.has(n.id)) {
        exclude(
          n,
          Constraint.Cordoned,
          'the node is cordoned (it keeps only apps it already runs)',
          'cordoned',
        );
        continue;
      }
      if (a.spread && !Object.prototype.hasOwnProperty.call(n.labels, a.spread.label)) {
        exclude(
          n,
          Constraint.Spread,
          `no label "${a.spread.label}" to spread over`,
          `spread (label "${a.spread.label}" missing)`,
        );
        continue;
      }
      for (const t of a.withApp) {
        if (!placedOn.get(t)!.has(n.id)) {
          exclude(n, Constraint.WithApp, `app "${t}" does not run here`, `withApp "${t}"`);
          continue nodeLoop;
        }
      }
      for (const o of a.away) {
        if (placedOn.get(o)?.has(n.id)) {
          exclude(n, Constraint.AwayFromApp, `app "${o}" runs here`, `awayFromApp "${o}"`);
          continue nodeLoop;
        }
      }
      if (count[n.index]! >= n.capacity) {
        exclude(n, Constraint.Capacity, `capacity ${n.capacity} reached`, 'capacity');
        continue;
      }
      let affinity = 0;
      for (const p of a.prefer) if (p.selector.matches(n.labels)) affinity += p.weight;
      const loadPts = -(opts.loadWeight * load[n.index]!) / n.weight;
      const inventory = -opts.inventoryWeight * n.cpuPressure;
      const sticky = curNodes.has(n.id) ? opts.hysteresis : 0;
      const base = affinity + loadPts + inventory;
      const c: Candidate = {
        node: n,
        base,
        affinity,
        load: loadPts,
        inventory,
        sticky,
        total: base + sticky,
        role: undefined,
        detail: undefined,
      };
      eligible.push(c);
    }

    // How many nodes, and which.
    let chosen: Candidate[];
    const passedOver = new Map<Candidate, string>();
    if (!a.spread) {
      eligible.sort(byScore);
      const k = Math.min(a.maxNodes, eligible.length);
      if (k < a.minNodes) {
        const ex = describeExclusions(nodes.length, excluded);
        fail(
          eligible.length === 0 ? (ex.constraint as Constraint) : Constraint.MinNodes,
          nodes.length === 0
            ? 'there are no nodes'
            : eligible.length === 0
              ? ex.text
              : `it needs minNodes ${a.minNodes} but only ${eligible.length} of ${nodes.length} node(s) qualify${ex.text ? `; ${ex.text}` : ''}`,
        );
        flush();
        continue;
      }
      chosen = eligible.slice(0, k);
      const detail = `maxNodes ${a.maxNodes} taken by higher scores`;
      for (const c of eligible.slice(k)) passedOver.set(c, detail);
    } else {
      const domains = new Map<string, Candidate[]>();
      for (const c of eligible) {
        const v = c.node.labels[a.spread.label]!;
        const d = domains.get(v);
        if (d) d.push(c);
        else domains.set(v, [c]);
      }
      const names = [...domains.keys()].sort(cmp);
      let minCap = Infinity;
      for (const d of domains.values()) minCap = Math.min(minCap, d.length);
      let feasible = 0;
      for (const d of domains.values()) feasible += Math.min(d.length, minCap + a.spread.maxSkew);
      const k = Math.min(a.maxNodes, feasible);
      if (k < a.minNodes) {
        const ex = describeExclusions(nodes.length, excluded);
        fail(
          eligible.length === 0 ? (ex.constraint as Constraint) : Constraint.Spread,
          eligible.length === 0
            ? nodes.length === 0
              ? 'there are no nodes'
              : ex.text
            : `it needs minNodes ${a.minNodes} but spread over "${a.spread.label}" with maxSkew ${a.spread.maxSkew} allows at most ${feasible} of the ${eligible.length} qualifying node(s) (${names.map((v) => `${v}: ${domains.get(v)!.length}`).join(', ')})${ex.text ? `; ${ex.text}` : ''}`,
        );
        flush();
        continue;
      }
      // Greedy, one node at a time: per domain its best remaining node, scored minus `spreadWeight` per
      // node already taken in that domain (so the spread is even where scores allow), taking the best
      // whose addition can still be completed to k nodes within the skew. Nodes the app runs on carry
      // their `sticky` points, so a valid placement it already has is kept unless others outscore it.
      const caps0 = names.map((v) => domains.get(v)!.length);
      const lists = names.map((v) => domains.get(v)!.sort(byScore));
      const heads = names.map(() => 0);
      const taken = names.map(() => 0);
      const skew = a.spread.maxSkew;
      const completable = (): boolean => {
        for (let m = 0; m <= minCap; m++) {
          let lo = 0;
          let hi = 0;
          let ok = true;
          for (let i = 0; i < names.length; i++) {
            const l = Math.max(taken[i]!, m);
            const h = Math.min(caps0[i]!, m + skew);
            if (l > h) {
              ok = false;
              break;
            }
            lo += l;
            hi += h;
          }
          if (ok && lo <= k && k <= hi) return true;
        }
        return false;
      };
      const picked = new Set<Candidate>();
      const domainIdx = names.map((_, i) => i);
      const value = (i: number) => lists[i]![heads[i]!]!.total - opts.spreadWeight * taken[i]!;
      while (picked.size < k) {
        const open = domainIdx.filter((i) => heads[i]! < lists[i]!.length);
        open.sort(
          (x, y) => value(y) - value(x) || cmp(lists[x]![heads[x]!]!.node.id, lists[y]![heads[y]!]!.node.id),
        );
        let took = false;
        for (const i of open) {
          taken[i]!++;
          if (completable()) {
            picked.add(lists[i]![heads[i]!]!);
            heads[i]!++;
            took = true;
            break;
          }
          taken[i]!--;
        }
        // Unreachable: from any completable state some domain still has room (k ≤ the feasible count).
        if (!took)
          throw new Error(
            `@gc/placement internal error: spread of app "${app}" stuck at ${picked.size} of ${k}`,
          );
      }
      eligible.sort(byScore);
      chosen = eligible.filter((c) => picked.has(c));
      const atMax = k >= a.maxNodes ? ` and maxNodes ${a.maxNodes}` : '';
      lists.forEach((list, i) => {
        if (heads[i]! >= list.length) return;
        const detail = `spread over "${a.spread!.label}": domain "${names[i]}" has its share (${taken[i]}) with maxSkew ${skew}${atMax}`;
        for (const c of list.slice(heads[i])) passedOver.set(c, detail);
      });
    }

    let leader: string | undefined;
    if (a.mode === AppMode.ActivePassive) {
      let best: Candidate | undefined;
      let bestScore = -Infinity;
      let bestFollows = false;
      // The current leader keeps leading unless another candidate scores more than `hysteresis` higher.
      // When it is no longer a candidate, a node that already holds a replica gets that bonus instead (a
      // warm standby takes over sooner). At most one bonus applies per run, which is what keeps a
      // re-run of the result from changing the leader again.
      const leaderStays = curLeader !== undefined && chosen.some((c) => c.node.id === curLeader);
      for (const c of chosen) {
        const follows = targetLeaders.has(c.node.id);
        const bonus = leaderStays ? c.node.id === curLeader : curNodes.has(c.node.id);
        const s = c.base + (bonus ? opts.hysteresis : 0);
        if (
          best === undefined ||
          (follows && !bestFollows) ||
          (follows === bestFollows &&
            (s > bestScore || (s === bestScore && cmp(c.node.id, best.node.id) < 0)))
        ) {
          best = c;
          bestScore = s;
          bestFollows = follows;
        }
      }
      leader = best!.node.id;
    }

    const ids: string[] = [];
    for (const c of chosen) {
      ids.push(c.node.id);
      const active = a.mode !== AppMode.ActivePassive || c.node.id === leader;
      load[c.node.index]! += active ? 1 : opts.standbyLoad;
      count[c.node.index]!++;
      c.role = a.mode !== AppMode.ActivePassive ? 'member' : active ? 'leader' : 'standby';
    }
    for (const [c, detail] of passedOver) c.detail = detail;
    flush();
    ids.sort(cmp);
    placedOn.set(app, new Set(ids));
    placements[app] = leader === undefined ? { nodes: ids } : { nodes: ids, leader };
  }
  return { placements, reasons, unsatisfiable, order: [...order, ...cyclic] };
}
