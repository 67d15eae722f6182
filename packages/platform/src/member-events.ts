// Other nodes joining and leaving, as the membership watch reports them: each is audited and runs every app's
// onMemberJoin / onMemberLeave hook on this node.
import type { Logger } from '@gc/core';
import type { MembershipWatcher } from '@gc/membership';
import type { AppImpl } from './app.js';

/**
 * Forwards `watch`'s joins and leaves of other nodes (not updates, not this node) to `audit` and to the hooks
 * of the apps in `apps` (read at each event), until the watch ends.
 */
export function forwardMemberEvents(
  watch: MembershipWatcher,
  o: {
    apps: ReadonlyMap<string, AppImpl>;
    audit: (type: string, data: Record<string, unknown>) => void;
    logger: Logger;
  },
): void {
  void (async () => {
    for await (const e of watch) {
      if (e.type === 'update' || e.member.self) continue;
      const change = {
        nodeId: e.member.nodeId,
        labels: e.member.labels,
        reason:
          e.type === 'join'
            ? ('joined' as const)
            : e.reason === 'left'
              ? ('left' as const)
              : ('lost' as const),
      };
      o.audit(e.type === 'join' ? 'node.joined' : 'node.left', {
        node: change.nodeId,
        reason: change.reason,
      });
      for (const app of o.apps.values())
        void app.runHook(e.type === 'join' ? 'onMemberJoin' : 'onMemberLeave', change);
    }
  })().catch((err: unknown) => o.logger.error('membership watch ended', { err }));
}
