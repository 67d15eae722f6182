// A snapshot's placement section (decision, cordons, drains) and the line on why a node was picked or not.
import type { NodeAdmin, PlacementState } from '@gc/platform';
import type { PlacementAppView, PlacementNodeView, PlacementView } from './types.js';

/** The placement section of a snapshot, from the scheduler's last decision and the operators' holds. */
export function toPlacementView(
  state: PlacementState | undefined,
  admins: ReadonlyMap<string, NodeAdmin>,
): PlacementView {
  const apps: Record<string, PlacementAppView> = {};
  if (state) {
    const names = new Set([
      ...Object.keys(state.placements),
      ...Object.keys(state.unsatisfiable),
      ...Object.keys(state.reasons),
      ...Object.keys(state.deferred ?? {}),
      ...Object.keys(state.refused ?? {}),
    ]);
    for (const app of [...names].sort()) {
      const p = state.placements[app];
      const u = state.unsatisfiable[app];
      const deferred = state.deferred?.[app];
      const refused = state.refused?.[app];
      const reasons: Record<string, string> = {};
      for (const [node, r] of Object.entries(state.reasons[app] ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))
        reasons[node] = describeReason(r);
      apps[app] = {
        placed: [...(p?.nodes ?? [])],
        ...(p?.leader ? { leader: p.leader } : {}),
        ...(u ? { unsatisfiable: { constraint: u.constraint, message: u.message } } : {}),
        ...(deferred ? { deferred } : {}),
        ...(refused ? { refused } : {}),
        reasons,
      };
    }
  }
  const nodes: Record<string, PlacementNodeView> = {};
  for (const [node, a] of [...admins].sort(([x], [y]) => (x < y ? -1 : 1))) {
    const d = state?.draining[node];
    nodes[node] = {
      cordoned: a.cordoned,
      ...(a.reason ? { cordonReason: a.reason } : {}),
      ...(a.by ? { by: a.by } : {}),
      ...(a.drain
        ? {
            drain: {
              // The deadline runs from when the scheduler first saw this drain (its clock), once it has.
              since: d?.requested === a.drain.since && d.since !== undefined ? d.since : a.drain.since,
              deadlineMs: a.drain.deadlineMs,
              reason: a.drain.reason,
              remaining: [...(d?.remaining ?? [])],
              blocked: [...(d?.blocked ?? [])],
              forced: d?.forced ?? false,
              seen: d !== undefined,
            },
          }
        : {}),
    };
  }
  return {
    scheduler: state?.scheduler ?? null,
    epoch: state?.epoch ?? 0,
    generation: state?.generation ?? 0,
    at: state?.at ?? null,
    apps,
    nodes,
  };
}

/**
 * One line for why the scheduler selected, passed over or excluded a node for an app (a `NodeReason` of
 * `@gc/placement`): `selected as leader — score 12 (affinity 10, load -1, inventory 0, sticky 3)`,
 * `excluded — onLabel: labels do not match "disk=ssd"`, `not selected — maxNodes 2 reached…; score 4 (…)`.
 */
export function describeReason(r: Record<string, unknown> & { status: string }): string {
  const n = (v: unknown) => (typeof v === 'number' ? String(Math.round(v * 100) / 100) : '0');
  const s = r.score as Record<string, unknown> | undefined;
  const score =
    s && typeof s === 'object'
      ? `score ${n(s.total)} (affinity ${n(s.affinity)}, load ${n(s.load)}, inventory ${n(s.inventory)}, sticky ${n(s.sticky)})`
      : '';
  const text = (v: unknown) => (typeof v === 'string' && v ? v : '');
  switch (r.status) {
    case 'selected':
      return `selected${text(r.role) ? ` as ${text(r.role)}` : ''}${score ? ` — ${score}` : ''}`;
    case 'excluded':
      return `excluded — ${[text(r.constraint), text(r.detail)].filter(Boolean).join(': ') || 'no reason given'}`;
    case 'not-selected':
      return `not selected — ${[text(r.detail), score].filter(Boolean).join('; ') || 'no reason given'}`;
    default:
      return [r.status, text(r.detail), score].filter(Boolean).join(' — ');
  }
}
