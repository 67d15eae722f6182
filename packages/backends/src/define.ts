import { realClock, silentLogger } from '@gc/core';
import { BackendLoadError } from './errors.js';
import type { Backend, BackendContext } from './types.js';

const PLUGIN = Symbol.for('gc.backend-plugin');

/** What {@link defineBackend} takes. */
export interface BackendDefinition<O extends object> {
  /** Kind name, for example `process` or `convex`. */
  name: string;
  /** Default options (an object, or a function returning a fresh one). */
  options: O | (() => O);
  /**
   * Builds a backend from merged options. Import heavy dependencies here (`await import(...)`)
   * so that loading the plugin stays cheap.
   */
  factory: (options: O, context: BackendContext) => Backend | Promise<Backend>;
}

/** A backend kind that can create instances; what plugin packages export (as `default` or `backend`). */
export interface BackendPlugin<O extends object = Record<string, unknown>> {
  readonly [PLUGIN]: true;
  /** Kind name. */
  readonly name: string;
  /** A fresh copy of the default options. */
  defaults(): O;
  /**
   * Creates an instance: `options` are merged over {@link BackendPlugin.defaults} (one level deep
   * for nested objects), `context` over the defaults (silent logger, real clock).
   */
  create(options?: Partial<O>, context?: Partial<BackendContext>): Promise<Backend>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  );
}

/** Merges `over` onto `base`, one level deep for plain objects, ignoring `undefined` values. */
export function mergeOptions<O extends object>(base: O, over: Partial<O> | undefined): O {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over ?? {})) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? { ...b, ...v } : v;
  }
  return out as O;
}

const BACKEND_METHODS = ['start', 'stop', 'health', 'status', 'logs', 'close'] as const;

/** Throws {@link BackendLoadError} unless `b` has every method of the {@link Backend} contract. */
export function assertBackendShape(b: unknown, source: string): asserts b is Backend {
  const missing =
    typeof b === 'object' && b !== null
      ? BACKEND_METHODS.filter((m) => typeof (b as Record<string, unknown>)[m] !== 'function')
      : [...BACKEND_METHODS];
  if (missing.length) {
    throw new BackendLoadError(
      source,
      `its factory returned an object without ${missing.join(', ')}; a backend must implement start, stop, health, status, logs and close`,
    );
  }
}

/**
 * Defines a backend kind. Third-party packages export the result (as `default` or `backend`) and
 * gc loads it by package name.
 *
 * @example
 * export default defineBackend({
 *   name: 'convex',
 *   options: () => ({ port: 3210 }),
 *   async factory(options, context) {
 *     const { processBackend } = await import('@gc/backends');
 *     return processBackend.create({ command: 'convex-local-backend', args: ['--port', String(options.port)] }, context);
 *   },
 * });
 */
export function defineBackend<O extends object>(definition: BackendDefinition<O>): BackendPlugin<O> {
  if (!definition.name || typeof definition.factory !== 'function') {
    throw new TypeError('defineBackend needs a name and a factory function');
  }
  const defaults = (): O =>
    typeof definition.options === 'function' ? definition.options() : structuredClone<O>(definition.options);
  return {
    [PLUGIN]: true,
    name: definition.name,
    defaults,
    async create(options, context) {
      const ctx: BackendContext = {
        name: definition.name,
        logger: silentLogger,
        clock: realClock,
        onEvent: () => undefined,
        ...context,
      };
      const backend = await definition.factory(mergeOptions(defaults(), options), ctx);
      assertBackendShape(backend, definition.name);
      return backend;
    },
  };
}

/** True when `v` looks like a {@link BackendPlugin} (also one made by another copy of this package). */
export function isBackendPlugin(v: unknown): v is BackendPlugin {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string | symbol, unknown>;
  return (
    p[PLUGIN] === true &&
    typeof p.name === 'string' &&
    typeof p.create === 'function' &&
    typeof p.defaults === 'function'
  );
}
