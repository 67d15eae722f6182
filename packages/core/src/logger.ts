import { createRequire } from 'node:module';
import { types } from 'node:util';
import pino from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import type PinoPretty from 'pino-pretty';

/** Log levels from most to least verbose; `silent` turns logging off. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
/** Output format: one JSON object a line, or a human-readable line. */
export type LogFormat = 'json' | 'pretty';

// The same numbers as pino's levels; `silent` is above every other.
const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, silent: 100 };

/** Structured fields attached to a log line. Errors are serialized with name, message, code and stack. */
export type LogFields = Record<string, unknown>;

/** A structured logger. Every method takes a message and optional fields. */
export interface Logger {
  readonly level: LogLevel;
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `bindings` to every line (for example `{ app: 'orders' }`). */
  child(bindings: LogFields): Logger;
  /** True when a line at `level` would be written. */
  isEnabled(level: LogLevel): boolean;
}

/** Where lines go; anything with a `write(string)` method. Each call gets one whole line ending in `\n`. */
export interface LogSink {
  write(line: string): unknown;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. Default: `GC_LOG_LEVEL`, else `LOG_LEVEL` from the environment, else `info`. */
  level: LogLevel;
  /** Output format. Default: `GC_LOG_FORMAT`, else `pretty` when stderr is a TTY and `json` otherwise. */
  format: LogFormat;
  /** Logger name, written as `name` on every line. Default `gc`. */
  name: string;
  /** Fields added to every line. Default none. */
  bindings: LogFields;
  /**
   * Destination. Default `process.stderr`, which (like `process.stdout`) is written to synchronously through
   * its file descriptor, so a line is out before the next statement runs, even when the process exits right
   * after.
   */
  sink: LogSink;
  /** Wall-clock source for timestamps (ms since epoch). Default `Date.now`. */
  now: () => number;
}

function isLevel(v: string | undefined): v is LogLevel {
  return v !== undefined && Object.prototype.hasOwnProperty.call(LEVELS, v);
}

/** Defaults for {@link LoggerOptions}, read from the environment where it says so. */
export function defaultLoggerOptions(env: NodeJS.ProcessEnv = process.env): LoggerOptions {
  // The gc-specific variable wins over the generic one; an unknown value is ignored.
  const gcLevel = env.GC_LOG_LEVEL?.trim().toLowerCase();
  const level = env.LOG_LEVEL?.trim().toLowerCase();
  const envFormat = env.GC_LOG_FORMAT?.trim().toLowerCase();
  return {
    level: isLevel(gcLevel) ? gcLevel : isLevel(level) ? level : 'info',
    format:
      envFormat === 'json' || envFormat === 'pretty' ? envFormat : process.stderr.isTTY ? 'pretty' : 'json',
    name: 'gc',
    bindings: {},
    sink: process.stderr,
    now: Date.now,
  };
}

function serializeError(err: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  // Other own scalar properties (a ConfigError's `path`, an HTTP status, …) are kept too.
  for (const k of Object.keys(err)) {
    const v = (err as unknown as Record<string, unknown>)[k];
    if (k in out || k === 'stack' || k === 'cause') continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  if (err.stack) out.stack = err.stack;
  if (err.cause !== undefined) out.cause = depth < 5 ? serializeValue(err.cause, depth + 1) : '[cause]';
  return out;
}

function serializeValue(value: unknown, depth = 0): unknown {
  if (value instanceof Error || types.isNativeError(value)) return serializeError(value, depth);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * pino's `formatters.log`, and applied to child bindings: the top-level values JSON cannot show (errors, which
 * `JSON.stringify` turns into `{}`, and bigints, which it refuses) are replaced in a copy; the caller's
 * object is left alone. Nested values go through pino's safe stringify.
 */
function serializeFields(fields: Record<string, unknown>): Record<string, unknown> {
  let out = fields;
  for (const k in fields) {
    const v = fields[k];
    if (
      typeof v === 'bigint' ||
      (typeof v === 'object' && v !== null && (v instanceof Error || types.isNativeError(v)))
    ) {
      if (out === fields) out = { ...fields };
      out[k] = serializeValue(v);
    }
  }
  return out;
}

// Loads pino-pretty only when a pretty logger is made: JSON-only processes never pay for it.
const require = createRequire(import.meta.url);
const prettifiers = new Map<boolean, (line: string) => string>();

function prettifier(colorize: boolean): (line: string) => string {
  let fn = prettifiers.get(colorize);
  if (!fn) {
    const { prettyFactory } = require('pino-pretty') as typeof PinoPretty;
    const opts: PinoPretty.PrettyOptions = {
      colorize,
      singleLine: true,
      translateTime: 'UTC:HH:MM:ss.l',
      ignore: 'pid,hostname',
      messageKey: 'msg',
      errorLikeObjectKeys: ['err', 'error'],
    };
    fn = prettyFactory(opts) as (line: string) => string;
    prettifiers.set(colorize, fn);
  }
  return fn;
}

// One synchronous writer per standard stream, shared by every logger: no worker thread (pino's `transport`
// would start one per logger), no open handle keeping the process alive, nothing left to flush at exit.
const stdDestinations = new Map<1 | 2, DestinationStream>();

function stdDestination(fd: 1 | 2): DestinationStream {
  let d = stdDestinations.get(fd);
  if (!d) {
    const boom = pino.destination({ dest: fd, sync: true });
    // A closed or broken stream must not crash the process over a log line (pino already drops EPIPE).
    boom.on('error', () => undefined);
    d = boom;
    stdDestinations.set(fd, d);
  }
  return d;
}

function isTty(sink: LogSink): boolean {
  return (sink as { isTTY?: unknown }).isTTY === true;
}

/** Colours for a TTY (or, with `FORCE_COLOR`, for stdout/stderr whatever they are), never with `NO_COLOR`. */
function colorsWanted(sink: LogSink, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const std = sink === process.stderr || sink === process.stdout;
  if (std && env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return isTty(sink) && env.TERM !== 'dumb';
}

function destinationFor(opts: LoggerOptions): DestinationStream {
  const sink = opts.sink;
  const base: LogSink =
    sink === process.stderr ? stdDestination(2) : sink === process.stdout ? stdDestination(1) : sink;
  if (opts.format !== 'pretty') return base;
  const pretty = prettifier(colorsWanted(sink, process.env));
  return { write: (line: string) => void base.write(pretty(line)) };
}

function createPino(opts: LoggerOptions): PinoLogger<never, boolean> {
  const now = opts.now;
  return pino(
    {
      level: opts.level,
      name: opts.name,
      base: {}, // no pid and hostname: the records keep the fields they had before pino
      messageKey: 'msg',
      timestamp: () => `,"time":${now()}`,
      formatters: {
        level: (label) => ({ level: label }),
        log: serializeFields, // pino applies no formatter to a child's bindings: child() does it
      },
      // serializeFields has already turned errors into plain objects; pino's own `err` serializer would
      // rename `name` to `type` and fold the cause into the message.
      serializers: { err: (v: unknown) => v },
    },
    destinationFor(opts),
  );
}

type Method = Exclude<LogLevel, 'silent'>;

class PinoBackedLogger implements Logger {
  readonly level: LogLevel;
  readonly #pino: PinoLogger<never, boolean> | undefined; // undefined when silent: nothing to write to
  readonly #threshold: number;

  constructor(level: LogLevel, p: PinoLogger<never, boolean> | undefined) {
    this.level = level;
    this.#threshold = LEVELS[level];
    this.#pino = p;
  }

  isEnabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.#threshold && level !== 'silent';
  }

  #write(level: Method, msg: string, fields: LogFields | undefined): void {
    const p = this.#pino!;
    if (fields === undefined) p[level](msg);
    else p[level](fields, msg);
  }

  // The threshold check comes first, so a filtered call costs a comparison.
  trace(msg: string, fields?: LogFields): void {
    if (this.#threshold <= 10) this.#write('trace', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    if (this.#threshold <= 20) this.#write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    if (this.#threshold <= 30) this.#write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    if (this.#threshold <= 40) this.#write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    if (this.#threshold <= 50) this.#write('error', msg, fields);
  }

  child(bindings: LogFields): Logger {
    if (!this.#pino) return this;
    return new PinoBackedLogger(this.level, this.#pino.child(serializeFields(bindings)));
  }
}

/**
 * Creates a structured logger: a thin layer over pino. JSON lines (`time` in ms, `level` as a name, `name`,
 * the bindings and fields, `msg`) or, for `format: 'pretty'`, pino-pretty's single-line output. Writes are
 * synchronous and no worker thread is started.
 *
 * @example
 * const log = createLogger({ name: 'orders' });
 * log.info('leader acquired', { epoch: 7 });
 */
export function createLogger(opts: Partial<LoggerOptions> = {}): Logger {
  if (opts.level === 'silent') return new PinoBackedLogger('silent', undefined);
  const merged = { ...defaultLoggerOptions(), ...opts };
  if (!isLevel(merged.level)) throw new RangeError(`unknown log level ${JSON.stringify(merged.level)}`);
  if (merged.level === 'silent') return new PinoBackedLogger('silent', undefined);
  let p = createPino(merged);
  if (Object.keys(merged.bindings).length > 0) p = p.child(serializeFields(merged.bindings));
  return new PinoBackedLogger(merged.level, p);
}

/** A logger that writes nothing: the default for library code that was given none. */
export const silentLogger: Logger = createLogger({ level: 'silent', sink: { write: () => undefined } });
