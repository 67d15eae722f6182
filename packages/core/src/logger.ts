/** Log levels from most to least verbose; `silent` turns logging off. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
/** Output format: one JSON object a line, or a human-readable line. */
export type LogFormat = 'json' | 'pretty';

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

/** Where lines go; anything with a `write(string)` method. */
export interface LogSink {
  write(line: string): unknown;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. Default: `GC_LOG_LEVEL` from the environment, else `info`. */
  level: LogLevel;
  /** Output format. Default: `GC_LOG_FORMAT`, else `pretty` when stderr is a TTY and `json` otherwise. */
  format: LogFormat;
  /** Logger name, written as `name` on every line. Default `gc`. */
  name: string;
  /** Fields added to every line. Default none. */
  bindings: LogFields;
  /** Destination. Default `process.stderr`. */
  sink: LogSink;
  /** Wall-clock source for timestamps (ms since epoch). Default `Date.now`. */
  now: () => number;
}

function isLevel(v: string | undefined): v is LogLevel {
  return v !== undefined && v in LEVELS;
}

/** Defaults for {@link LoggerOptions}, read from the environment where it says so. */
export function defaultLoggerOptions(env: NodeJS.ProcessEnv = process.env): LoggerOptions {
  const envLevel = env.GC_LOG_LEVEL?.toLowerCase();
  const envFormat = env.GC_LOG_FORMAT?.toLowerCase();
  return {
    level: isLevel(envLevel) ? envLevel : 'info',
    format:
      envFormat === 'json' || envFormat === 'pretty' ? envFormat : process.stderr.isTTY ? 'pretty' : 'json',
    name: 'gc',
    bindings: {},
    sink: process.stderr,
    now: Date.now,
  };
}

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.stack) out.stack = value.stack;
    if (value.cause !== undefined) out.cause = serialize(value.cause);
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function formatPretty(time: number, level: LogLevel, name: string, msg: string, fields: LogFields): string {
  const extra = Object.entries(fields)
    .map(([k, v]) => {
      const s = serialize(v);
      return `${k}=${typeof s === 'string' ? s : JSON.stringify(s)}`;
    })
    .join(' ');
  const ts = new Date(time).toISOString().slice(11, 23);
  return `${ts} ${level.toUpperCase().padEnd(5)} ${name}: ${msg}${extra ? ` ${extra}` : ''}\n`;
}

class StructuredLogger implements Logger {
  readonly level: LogLevel;
  readonly #opts: LoggerOptions;
  readonly #threshold: number;

  constructor(opts: LoggerOptions) {
    this.#opts = opts;
    this.level = opts.level;
    this.#threshold = LEVELS[opts.level];
  }

  isEnabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.#threshold && level !== 'silent';
  }

  #write(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void {
    if (!this.isEnabled(level)) return;
    const all = { ...this.#opts.bindings, ...fields };
    const time = this.#opts.now();
    let line: string;
    if (this.#opts.format === 'pretty') {
      line = formatPretty(time, level, this.#opts.name, msg, all);
    } else {
      const record: Record<string, unknown> = { time, level, name: this.#opts.name, msg };
      for (const [k, v] of Object.entries(all)) record[k] = serialize(v);
      line = `${JSON.stringify(record)}\n`;
    }
    this.#opts.sink.write(line);
  }

  trace(msg: string, fields?: LogFields): void {
    this.#write('trace', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.#write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#write('error', msg, fields);
  }

  child(bindings: LogFields): Logger {
    return new StructuredLogger({ ...this.#opts, bindings: { ...this.#opts.bindings, ...bindings } });
  }
}

/**
 * Creates a structured logger.
 *
 * @example
 * const log = createLogger({ name: 'orders' });
 * log.info('leader acquired', { epoch: 7 });
 */
export function createLogger(opts: Partial<LoggerOptions> = {}): Logger {
  const merged = { ...defaultLoggerOptions(), ...opts };
  if (!isLevel(merged.level)) throw new RangeError(`unknown log level ${JSON.stringify(merged.level)}`);
  return new StructuredLogger(merged);
}

/** A logger that writes nothing: the default for library code that was given none. */
export const silentLogger: Logger = createLogger({ level: 'silent', sink: { write: () => undefined } });
