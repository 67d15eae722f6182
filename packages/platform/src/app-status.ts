// An app's status on this node (`app.status()`, `gc status`): its role and leader, its activation failures,
// and what its started components report (backend, replication, VIP, the others by name).
import type { AppComponent } from '@gc/core';
import type { LeaderInfo } from '@gc/election';
import type { ReplicatedDatabase } from '@gc/wal';
import type { AppMode, AppRole, AppStatus } from './types.js';

/** What {@link appStatus} is built from. */
export interface AppStatusSource {
  name: string;
  mode: AppMode;
  role: AppRole;
  /** The election's view of the leader (active-passive only). */
  leader: LeaderInfo | undefined;
  hookFailures: number;
  activation: AppStatus['activation'];
  recoveryBudgetMs: number | undefined;
  /** The components started on this node. */
  started: AppComponent[];
  db: ReplicatedDatabase | undefined;
  lastActivation: Record<string, number> | undefined;
  /** Where placement puts the app here (apps with `placement` only). */
  placement?: AppStatus['placement'];
}

/** The status of one app on this node. */
export function appStatus(s: AppStatusSource): AppStatus {
  const l = s.leader;
  const byName = new Map(s.started.map((c) => [c.name, c.status?.()]));
  const others = Object.fromEntries(
    [...byName].filter(([n, v]) => v !== undefined && !['database', 'vip', 'backend'].includes(n)),
  );
  const backend = byName.get('backend') as AppStatus['backend'] | undefined;
  const vip = byName.get('vip') as AppStatus['vip'] | undefined;
  return {
    name: s.name,
    mode: s.mode,
    role: s.role,
    leader: l?.holder ?? null,
    epoch: l?.epoch ?? 0,
    hookFailures: s.hookFailures,
    ...(s.activation ? { activation: s.activation } : {}),
    ...(s.recoveryBudgetMs !== undefined ? { recoveryBudgetMs: s.recoveryBudgetMs } : {}),
    ...(backend ? { backend } : {}),
    ...(s.db ? { replication: s.db.status() } : {}),
    ...(vip ? { vip } : {}),
    ...(Object.keys(others).length ? { components: others } : {}),
    ...(s.lastActivation ? { lastActivation: s.lastActivation } : {}),
    ...(s.placement ? { placement: s.placement } : {}),
  };
}
