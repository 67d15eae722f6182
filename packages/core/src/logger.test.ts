import { describe, expect, it } from 'vitest';
import { GcError } from './errors.js';
import { createLogger, defaultLoggerOptions } from './logger.js';

function capture() {
  const lines: string[] = [];
  return { lines, sink: { write: (l: string) => lines.push(l) } };
}

describe('logger', () => {
  it('writes JSON lines with bindings, fields and serialized errors', () => {
    const { lines, sink } = capture();
    const log = createLogger({ format: 'json', level: 'debug', sink, now: () => 0, name: 'test' }).child({
      app: 'orders',
    });
    log.debug('hello', { epoch: 3, err: new GcError('GC_X', 'boom') });
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({
      level: 'debug',
      name: 'test',
      msg: 'hello',
      app: 'orders',
      epoch: 3,
      err: { code: 'GC_X', message: 'boom' },
    });
  });

  it('filters below its level and writes nothing when silent', () => {
    const { lines, sink } = capture();
    createLogger({ level: 'warn', sink, format: 'json' }).info('dropped');
    createLogger({ level: 'silent', sink, format: 'json' }).error('dropped');
    expect(lines).toEqual([]);
  });

  it('pretty format is one readable line', () => {
    const { lines, sink } = capture();
    createLogger({ format: 'pretty', sink, now: () => 0 }).warn('careful', { node: 'a' });
    expect(lines[0]).toBe('00:00:00.000 WARN  gc: careful node=a\n');
  });

  it('reads level and format from the environment', () => {
    const o = defaultLoggerOptions({ GC_LOG_LEVEL: 'DEBUG', GC_LOG_FORMAT: 'json' });
    expect(o.level).toBe('debug');
    expect(o.format).toBe('json');
    expect(defaultLoggerOptions({ GC_LOG_LEVEL: 'loud' }).level).toBe('info');
  });

  it('refuses an unknown level', () => {
    expect(() => createLogger({ level: 'loud' as never })).toThrow(/unknown log level/);
  });
});
