import {
  ClosedError,
  ConfigError,
  ClosableResource,
  realClock,
  silentLogger,
  validateToken,
  type TimerHandle,
} from '@gc/core';
import {
  HealthState,
  type CheckFn,
  type CheckOptions,
  type CheckResult,
  type CheckStatus,
  type Health,
  type HealthChange,
  type HealthOptions,
  type HealthReport,
} from './types.js';

/** Defaults for {@link CheckOptions}. */
export function defaultCheckOptions(): CheckOptions {
  return {
    intervalMs: 10_000,
    timeoutMs: 2_000,
    dependsOn: [],
    critical: true,
    failureThreshold: 1,
    readiness: true,
  };
}

/** Defaults for {@link HealthOptions}. */
export function defaultHealthOptions(): HealthOptions {
  return { clock: realClock, logger: silentLogger, historySize: 20 };
}

interface Entry {
  name: string;
  fn: CheckFn;
  opts: CheckOptions;
  status: CheckStatus;
  timer?: TimerHandle;
  running?: Promise<void>;
}

function interpret(r: CheckResult): { healthy: boolean; detail?: string } {
  if (r === undefined || r === true) return { healthy: true };
  if (r === false) return { healthy: false, detail: 'check returned false' };
  if (typeof r === 'string') return { healthy: false, detail: r };
  return r.detail === undefined ? { healthy: r.healthy } : { healthy: r.healthy, detail: r.detail };
}

class HealthImpl extends ClosableResource implements Health {
  readonly #o: HealthOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(c: HealthChange) => void>();
  #closed = false;

  constructor(o: HealthOptions) {
    super();
    this.#o = o;
  }

  register(name: string, fn: CheckFn, partial: Partial<CheckOptions> = {}): void {
    if (this.#closed) throw new ClosedError('health');
    validateToken('health check', name);
    if (this.#entries.has(name))
      throw new ConfigError(`health.${name}`, 'a check with this name is already registered');
    const opts = { ...defaultCheckOptions(), ...partial };
    for (const [k, v] of [
      ['intervalMs', opts.intervalMs],
      ['timeoutMs', opts.timeoutMs],
      ['failureThreshold', opts.failureThreshold],
    ] as const) {
      if (!(Number.isFinite(v) && v > 0))
        throw new ConfigError(`health.${name}.${k}`, `must be a positive number, got ${v}`);
    }
    const entry: Entry = {
      name,
      fn,
      opts,
      status: {
        name,
        state: HealthState.Unknown,
        critical: opts.critical,
        consecutiveFailures: 0,
        history: [],
      },
    };
    this.#entries.set(name, entry);
    const cycle = this.#findCycle(name);
    if (cycle) {
      this.#entries.delete(name);
      throw new ConfigError(`health.${name}.dependsOn`, `dependency cycle: ${cycle.join(' -> ')}`);
    }
    this.#schedule(entry, 0);
  }

  #findCycle(start: string): string[] | undefined {
    const path: string[] = [];
    const visit = (n: string): string[] | undefined => {
      if (path.includes(n)) return [...path.slice(path.indexOf(n)), n];
      const e = this.#entries.get(n);
      if (!e) return undefined;
      path.push(n);
      for (const d of e.opts.dependsOn) {
        const c = visit(d);
        if (c) return c;
      }
      path.pop();
      return undefined;
    };
    return visit(start);
  }

  unregister(name: string): void {
    const e = this.#entries.get(name);
    if (!e) return;
    if (e.timer) this.#o.clock.clearTimeout(e.timer);
    this.#entries.delete(name);
  }

  #schedule(e: Entry, delayMs: number): void {
    if (this.#closed) return;
    e.timer = this.#o.clock.setTimeout(() => {
      void this.#run(e).finally(() => {
        if (this.#entries.get(e.name) === e) this.#schedule(e, e.opts.intervalMs);
      });
    }, delayMs);
  }

  #run(e: Entry): Promise<void> {
    e.running ??= this.#execute(e).finally(() => {
      e.running = undefined;
    });
    return e.running;
  }

  async #execute(e: Entry): Promise<void> {
    const { clock } = this.#o;
    const blocked = e.opts.dependsOn.filter(
      (d) => this.#entries.get(d)?.status.state !== HealthState.Healthy,
    );
    const start = clock.now();
    let healthy: boolean;
    let detail: string | undefined;
    if (blocked.length) {
      healthy = false;
      detail = `waiting for ${blocked.join(', ')} to be healthy`;
    } else {
      const ac = new AbortController();
      let timer: TimerHandle | undefined;
      const timeout = new Promise<{ healthy: boolean; detail: string }>((resolve) => {
        timer = clock.setTimeout(() => {
          ac.abort();
          resolve({ healthy: false, detail: `timed out after ${e.opts.timeoutMs} ms` });
        }, e.opts.timeoutMs);
      });
      const run = (async () => interpret(await e.fn(ac.signal)))().catch((err: unknown) => ({
        healthy: false,
        detail: err instanceof Error ? err.message : String(err),
      }));
      ({ healthy, detail } = await Promise.race([run, timeout]));
      if (timer) clock.clearTimeout(timer);
    }
    const durationMs = clock.now() - start;
    const s = e.status;
    s.consecutiveFailures = healthy ? 0 : s.consecutiveFailures + 1;
    const prev = s.state;
    let next: HealthState = prev;
    if (healthy) next = HealthState.Healthy;
    else if (s.consecutiveFailures >= e.opts.failureThreshold || blocked.length) next = HealthState.Unhealthy;
    s.lastRunAt = clock.wallNow();
    s.durationMs = durationMs;
    if (detail === undefined) delete s.detail;
    else s.detail = detail;
    s.history.push({
      at: s.lastRunAt,
      state: healthy ? HealthState.Healthy : HealthState.Unhealthy,
      durationMs,
      ...(detail ? { detail } : {}),
    });
    if (s.history.length > this.#o.historySize) s.history.splice(0, s.history.length - this.#o.historySize);
    s.state = next;
    if (next !== prev) {
      const change: HealthChange = {
        check: e.name,
        from: prev,
        to: next,
        overall: this.report().state,
        ...(detail ? { detail } : {}),
      };
      this.#o.logger[next === HealthState.Healthy ? 'info' : 'warn']('health check changed', { ...change });
      for (const l of this.#listeners) {
        try {
          l(change);
        } catch (err) {
          this.#o.logger.error('health change listener failed', { err });
        }
      }
    }
  }

  async runAll(): Promise<HealthReport> {
    // Dependencies first: run in topological order so a dependent sees its dependency's new state.
    const done = new Set<string>();
    const visit = async (name: string): Promise<void> => {
      if (done.has(name)) return;
      done.add(name);
      const e = this.#entries.get(name);
      if (!e) return;
      for (const d of e.opts.dependsOn) await visit(d);
      await this.#run(e);
    };
    for (const name of this.#entries.keys()) await visit(name);
    return this.report();
  }

  report(): HealthReport {
    const checks = [...this.#entries.values()].map((e) => ({ ...e.status, history: [...e.status.history] }));
    let state: HealthState = HealthState.Healthy;
    let ready = true;
    for (const e of this.#entries.values()) {
      const st = e.status.state;
      if (st !== HealthState.Healthy) {
        if (e.opts.readiness) ready = false;
        if (e.opts.critical) state = HealthState.Unhealthy;
        else if (state === HealthState.Healthy) state = HealthState.Degraded;
      }
    }
    return { state, ready, checks };
  }

  onChange(fn: (change: HealthChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  protected async closeResources(): Promise<void> {
    this.#closed = true;
    const running: Array<Promise<void>> = [];
    for (const e of this.#entries.values()) {
      if (e.timer) this.#o.clock.clearTimeout(e.timer);
      if (e.running) running.push(e.running);
    }
    this.#listeners.clear();
    await Promise.allSettled(running);
  }
}

/**
 * Creates a set of health checks. Each check runs on its own interval with a timeout; a check whose
 * dependencies are not healthy is not run and reports why. Critical failures make the node unhealthy
 * and not ready; non-critical ones make it degraded.
 *
 * @example
 * const health = createHealth();
 * health.register('nats', () => nc.isClosed() ? 'connection closed' : true, { intervalMs: 5000 });
 * health.register('db', () => db.prepare('select 1').get() !== undefined, { dependsOn: ['nats'] });
 */
export function createHealth(opts: Partial<HealthOptions> = {}): Health {
  return new HealthImpl({ ...defaultHealthOptions(), ...opts });
}
