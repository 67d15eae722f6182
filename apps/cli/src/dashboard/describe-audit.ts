// The dashboard timeline's text for an audit record.
import type { AuditRecord } from '@gc/platform';

/** One line of text for an audit record on the timeline. */
export function describeAudit(r: AuditRecord): string {
  const raw = (r.data ?? {}) as Record<string, unknown>;
  const d = (k: string): string => {
    const v = raw[k];
    if (v === undefined || v === null) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
  const app = r.app ? `${r.app}: ` : '';
  switch (r.type) {
    case 'app.activated': {
      const phases = Object.entries((raw.phases ?? {}) as Record<string, number>)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return `${app}${r.node} became active (epoch ${d('epoch') || String(r.epoch)}, ${d('ms')} ms${phases ? `: ${phases}` : ''})`;
    }
    case 'drill.result': {
      const rep = raw as {
        kind?: string;
        pass?: boolean;
        totalMs?: number;
        budgetMs?: number;
        from?: { node?: string };
        to?: { node?: string };
        reason?: string;
      };
      const took = rep.totalMs === undefined ? 'no new leader' : `${rep.totalMs} ms`;
      const budget = rep.budgetMs === undefined ? '' : ` (budget ${rep.budgetMs} ms)`;
      return `${app}drill ${rep.kind ?? '?'} ${rep.pass ? 'passed' : 'FAILED'}: ${rep.from?.node ?? '?'} → ${rep.to?.node ?? '—'} in ${took}${budget}${rep.pass || !rep.reason ? '' : ` — ${rep.reason}`}`;
    }
    case 'app.deactivated':
      return `${app}${r.node} became passive (${d('reason')})`;
    case 'app.leader':
      return `${app}leader is ${d('leader') || 'nobody'} (epoch ${d('epoch')})`;
    case 'node.joined':
    case 'node.left':
      return `node ${d('node')} ${r.type === 'node.joined' ? 'joined' : `left (${d('reason')})`}`;
    case 'hook.failed':
      return `${app}${d('hook')} failed on ${r.node}: ${d('error')}`;
    case 'lock.forced':
      return `${app}lock ${d('lock')} force-released (${d('reason')})`;
    default:
      return `${app}${r.type} on ${r.node}`;
  }
}
