import type { AuditSeverity } from '@gc/core';
import type { CoordinatorEvent } from '@gc/backends';

// Every audit record the platform writes goes through here: its severity by type, and how the active
// sequence's events become records. Components name their own types (`<component>.<what>`).

/** Types recorded at `warn`: something an operator should look at, nothing lost. */
const WARN = new Set([
  'wal.unreplicated_writes',
  'wal.replica_refused',
  'wal.replica_error',
  'wal.primary_error',
  'wal.resync',
  'wal.not_leader',
  'wal.recover_armed',
  'wal.recovered',
  'backend.restart',
  'backend.unhealthy',
]);
/** Types recorded at `error`: something is broken until someone or something acts. */
const ERROR = new Set(['wal.replica_stalled', 'wal.promotion_refused', 'hook.failed']);

/** Severity of an audit record by its type. */
export function auditSeverity(type: string): AuditSeverity {
  if (ERROR.has(type) || type.endsWith('failed')) return 'error';
  if (WARN.has(type) || type.startsWith('lock.forced')) return 'warn';
  return 'info';
}

/** The audit record (type and data) of an active-sequence event; undefined for events not audited. */
export function coordinatorAudit(
  e: CoordinatorEvent,
): { type: string; data: Record<string, unknown> } | undefined {
  if (e.type === 'phase')
    return {
      type: `app.phase.${e.direction}`,
      data: {
        phase: e.phase,
        epoch: e.epoch,
        ok: e.ok,
        ms: Math.round(e.durationMs),
        ...(e.error ? { error: e.error } : {}),
      },
    };
  if (e.type === 'backend-restart' || e.type === 'backend-unhealthy')
    return { type: `backend.${e.type.slice(8)}`, data: { ...e } };
  if (e.type === 'backend-failed')
    return { type: 'backend.failed', data: { epoch: e.epoch, reason: e.reason } };
  return undefined;
}
