import { spawnNode } from '@gc/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, GcError } from './errors.js';
import { createLogger, defaultLoggerOptions, silentLogger, type LogLevel } from './logger.js';

function capture() {
  const lines: string[] = [];
  return { lines, sink: { write: (l: string) => lines.push(l) } };
}

const records = (lines: string[]) => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/;

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('logger', () => {
  it('writes one JSON line a record with time, level name, name, bindings, fields and msg', () => {
    const { lines, sink } = capture();
    const log = createLogger({ format: 'json', level: 'debug', sink, now: () => 1234, name: 'test' }).child({
      app: 'orders',
    });
    log.debug('hello', { epoch: 3, ok: true, tags: ['a', 'b'], nested: { x: 1 } });
    log.info('no fields');
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l.endsWith('\n')).toBe(true);
      expect(l.slice(0, -1)).not.toContain('\n');
    }
    const [a, b] = records(lines);
    // Exactly the fields the hand-written logger wrote: no pid, hostname or numeric level.
    expect(a).toEqual({
      time: 1234,
      level: 'debug',
      name: 'test',
      msg: 'hello',
      app: 'orders',
      epoch: 3,
      ok: true,
      tags: ['a', 'b'],
      nested: { x: 1 },
    });
    expect(b).toEqual({ time: 1234, level: 'info', name: 'test', msg: 'no fields', app: 'orders' });
  });

  it('takes the message literally (no printf interpolation) and keeps it over a `msg` field', () => {
    const { lines, sink } = capture();
    const log = createLogger({ format: 'json', sink, level: 'info' });
    log.info('100%s done %d', { msg: 'not this' });
    expect(JSON.parse(lines[0]!).msg).toBe('100%s done %d');
  });

  it('default name is gc and bindings from the options come on every line', () => {
    const { lines, sink } = capture();
    createLogger({ format: 'json', sink, level: 'info', bindings: { node: 'n1' } }).info('x');
    expect(JSON.parse(lines[0]!)).toMatchObject({ name: 'gc', node: 'n1', msg: 'x' });
  });

  it('filters below its level and writes nothing when silent', () => {
    const { lines, sink } = capture();
    const warn = createLogger({ level: 'warn', sink, format: 'json' });
    warn.trace('dropped');
    warn.debug('dropped');
    warn.info('dropped');
    warn.warn('kept');
    warn.error('kept too');
    const silent = createLogger({ level: 'silent', sink, format: 'json' });
    silent.error('dropped');
    silent.child({ a: 1 }).error('dropped');
    silentLogger.error('dropped');
    silentLogger.child({ a: 1 }).error('dropped');
    expect(records(lines).map((r) => [r.level, r.msg])).toEqual([
      ['warn', 'kept'],
      ['error', 'kept too'],
    ]);
    expect(silent.level).toBe('silent');
    expect(silentLogger.child({}).level).toBe('silent');
  });

  it('isEnabled follows the level and is never true for silent', () => {
    const log = createLogger({ level: 'info', sink: capture().sink, format: 'json' });
    expect(log.level).toBe('info');
    expect(
      ['trace', 'debug', 'info', 'warn', 'error', 'silent'].map((l) => log.isEnabled(l as LogLevel)),
    ).toEqual([false, false, true, true, true, false]);
    expect(silentLogger.isEnabled('error')).toBe(false);
    expect(createLogger({ level: 'trace', sink: capture().sink }).isEnabled('trace')).toBe(true);
  });

  it('child loggers add their bindings, nest, and leave the parent alone', () => {
    const { lines, sink } = capture();
    const root = createLogger({ format: 'json', level: 'info', sink, now: () => 0 });
    const app = root.child({ app: 'orders', node: 'a' });
    const leader = app.child({ epoch: 7 });
    expect(leader.level).toBe('info');
    leader.info('leader', { extra: 1 });
    app.info('app');
    root.info('root');
    const [l, a, r] = records(lines);
    expect(l).toMatchObject({ app: 'orders', node: 'a', epoch: 7, extra: 1, msg: 'leader' });
    expect(a).toMatchObject({ app: 'orders', node: 'a', msg: 'app' });
    expect(a).not.toHaveProperty('epoch');
    expect(r).not.toHaveProperty('app');
  });

  it('a field wins over a binding of the same name', () => {
    const { lines, sink } = capture();
    createLogger({ format: 'json', level: 'info', sink }).child({ node: 'a' }).info('x', { node: 'b' });
    expect(JSON.parse(lines[0]!).node).toBe('b');
  });

  it('serializes errors with name, message, code, stack, scalar properties and cause, in any field', () => {
    const { lines, sink } = capture();
    const log = createLogger({ format: 'json', level: 'debug', sink, name: 'test' });
    const cause = new Error('socket closed');
    const err = new GcError('GC_X', 'boom', { cause });
    const fields = { err, reason: new ConfigError('apps.orders', 'bad'), big: 12345678901234567890n };
    log.error('failed', fields);
    const rec = JSON.parse(lines[0]!);
    expect(rec.err).toMatchObject({ name: 'GcError', code: 'GC_X', message: 'boom' });
    expect(rec.err.stack).toContain('GcError: boom');
    expect(rec.err.stack).toContain('logger.test.ts');
    expect(rec.err.cause).toMatchObject({ name: 'Error', message: 'socket closed' });
    expect(rec.err.cause.stack).toContain('Error: socket closed');
    expect(rec.reason).toMatchObject({
      name: 'ConfigError',
      code: 'GC_INVALID_CONFIG',
      path: 'apps.orders',
      message: 'apps.orders: bad',
    });
    expect(rec.big).toBe('12345678901234567890');
    // The caller's object is not changed.
    expect(fields.err).toBe(err);
    expect(typeof fields.big).toBe('bigint');
  });

  it('errors in bindings are serialized too, and circular values do not throw', () => {
    const { lines, sink } = capture();
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    createLogger({ format: 'json', level: 'info', sink })
      .child({ lastError: new Error('earlier') })
      .info('x', { circular, nested: { n: 1n } });
    const rec = JSON.parse(lines[0]!);
    expect(rec.lastError).toMatchObject({ name: 'Error', message: 'earlier' });
    expect(rec.circular).toMatchObject({ a: 1, self: '[Circular]' });
    expect(rec.nested).toEqual({ n: 1 });
  });

  it('pretty format: a readable line with time, level, name, message and fields, no colours off a TTY', () => {
    const { lines, sink } = capture();
    const log = createLogger({ format: 'pretty', sink, now: () => 0, level: 'info' });
    log.warn('careful', { node: 'a' });
    log.child({ app: 'orders' }).info('started');
    expect(lines).toEqual([
      '[00:00:00.000] WARN (gc): careful {"node":"a"}\n',
      '[00:00:00.000] INFO (gc): started {"app":"orders"}\n',
    ]);
  });

  it('pretty format shows an error with its stack on the lines below', () => {
    const { lines, sink } = capture();
    createLogger({ format: 'pretty', sink, level: 'info' }).error('failed', { err: new Error('boom') });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ERROR \(gc\): failed/);
    expect(lines[0]).toContain('"message": "boom"');
    expect(lines[0]).toContain('Error: boom');
    expect(lines[0]).toContain('logger.test.ts');
  });

  it('pretty format is coloured for a TTY sink unless NO_COLOR is set', () => {
    vi.stubEnv('NO_COLOR', '');
    vi.stubEnv('FORCE_COLOR', '');
    vi.stubEnv('TERM', 'xterm-256color');
    const tty = { isTTY: true, lines: [] as string[], write: (l: string) => tty.lines.push(l) };
    createLogger({ format: 'pretty', sink: tty, level: 'info' }).info('coloured');
    expect(tty.lines[0]).toMatch(ANSI);
    expect(tty.lines[0]).toContain('coloured');
    vi.stubEnv('NO_COLOR', '1');
    createLogger({ format: 'pretty', sink: tty, level: 'info' }).info('plain');
    expect(tty.lines[1]).not.toMatch(ANSI);
  });

  it('a custom sink gets each record synchronously as one string', () => {
    const got: unknown[] = [];
    const log = createLogger({ format: 'json', level: 'info', sink: { write: (l: string) => got.push(l) } });
    for (let i = 0; i < 3; i++) {
      log.info('n', { i });
      expect(got).toHaveLength(i + 1); // already written when the call returns
    }
    expect(got.every((l) => typeof l === 'string')).toBe(true);
    expect(records(got as string[]).map((r) => r.i)).toEqual([0, 1, 2]);
  });

  it('reads level and format from the environment; GC_LOG_LEVEL wins over LOG_LEVEL', () => {
    const o = defaultLoggerOptions({ GC_LOG_LEVEL: 'DEBUG', GC_LOG_FORMAT: 'json' });
    expect(o.level).toBe('debug');
    expect(o.format).toBe('json');
    expect(defaultLoggerOptions({ GC_LOG_FORMAT: 'Pretty' }).format).toBe('pretty');
    expect(defaultLoggerOptions({}).level).toBe('info');
    expect(defaultLoggerOptions({ GC_LOG_LEVEL: 'loud' }).level).toBe('info');
    expect(defaultLoggerOptions({ LOG_LEVEL: 'trace' }).level).toBe('trace');
    expect(defaultLoggerOptions({ LOG_LEVEL: 'trace', GC_LOG_LEVEL: 'error' }).level).toBe('error');
    // An unknown gc value falls back to the generic one, then to info.
    expect(defaultLoggerOptions({ LOG_LEVEL: 'warn', GC_LOG_LEVEL: 'loud' }).level).toBe('warn');
    expect(defaultLoggerOptions({ LOG_LEVEL: 'loud' }).level).toBe('info');
    expect(defaultLoggerOptions({}).name).toBe('gc');
    expect(defaultLoggerOptions({}).sink).toBe(process.stderr);
  });

  it('createLogger filters by the level in the environment when none is given', () => {
    const levelsWritten = () => {
      const { lines, sink } = capture();
      const log = createLogger({ format: 'json', sink });
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      return records(lines).map((r) => r.msg);
    };
    vi.stubEnv('GC_LOG_LEVEL', '');
    vi.stubEnv('LOG_LEVEL', 'debug');
    expect(levelsWritten()).toEqual(['d', 'i', 'w', 'e']);
    vi.stubEnv('GC_LOG_LEVEL', 'warn');
    expect(levelsWritten()).toEqual(['w', 'e']);
    vi.stubEnv('LOG_LEVEL', '');
    vi.stubEnv('GC_LOG_LEVEL', '');
    expect(levelsWritten()).toEqual(['i', 'w', 'e']);
    expect(createLogger({ format: 'json', sink: capture().sink, level: 'error' }).level).toBe('error'); // options win
  });

  it('refuses an unknown level', () => {
    expect(() => createLogger({ level: 'loud' as never })).toThrow(/unknown log level/);
  });

  it('starts no thread and holds no handle or exit hook, however many loggers are made', () => {
    const resources = process.getActiveResourcesInfo().length;
    const exitHooks = process.listenerCount('exit');
    for (let i = 0; i < 200; i++) {
      // Default sink (stderr) in both formats; nothing is written at this level.
      createLogger({ level: 'error', format: i % 2 ? 'pretty' : 'json' })
        .child({ i })
        .debug('not written');
    }
    expect(process.getActiveResourcesInfo().length).toBe(resources);
    expect(process.listenerCount('exit')).toBe(exitHooks);
  });

  const fixture = new URL('./fixtures/log-and-exit.ts', import.meta.url).pathname;
  async function runFixture(args: string[]): Promise<{ code: number | null; output: string }> {
    const child = spawnNode(fixture, { args, env: { GC_LOG_LEVEL: 'info', NO_COLOR: '1' } });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the child did not exit by itself:\n${child.output()}`)),
        30_000,
      );
    });
    try {
      const { code } = await Promise.race([child.exited, timeout]);
      return { code, output: child.output() };
    } finally {
      clearTimeout(timer);
      await child.kill();
    }
  }

  it('a process that exits right after logging has its lines out (default sink, synchronous)', async () => {
    const { code, output } = await runFixture(['json', 'exit']);
    expect(code).toBe(0);
    const recs = output
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((r) => [r.level, r.name, r.msg])).toEqual([
      ['info', 'fixture', 'first line'],
      ['warn', 'fixture', 'second line'],
    ]);
    expect(recs[1]).toMatchObject({ app: 'orders', err: { message: 'boom' } });
  });

  it('a pretty logger on stderr does not keep the process alive', async () => {
    const { code, output } = await runFixture(['pretty']);
    expect(code).toBe(0);
    expect(output).toMatch(/INFO \(fixture\): first line \{"n":1\}/);
    expect(output).toMatch(/WARN \(fixture\): second line \{"app":"orders"\}/);
    expect(output).not.toContain('filtered out');
  });
});
