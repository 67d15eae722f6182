import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import {
  isCasConflict,
  isStreamNotFound,
  isWrongLastSequence,
  jsApiCode,
  JsApiCode,
  withoutStacks,
} from './nats-errors.js';

const apiError = (err_code: number, description = 'x') =>
  new JetStreamApiError({ code: 400, err_code, description });

describe('NATS errors told apart by JetStream API code', () => {
  it('reads the code through a chain of causes', () => {
    const wrapped = new Error('write failed', { cause: new Error('inner', { cause: apiError(10071) }) });
    expect(jsApiCode(wrapped)).toBe(10071);
    expect(jsApiCode(new Error('wrong last sequence: 5'))).toBeUndefined(); // message text is not a code
  });

  it('isCasConflict: both ways a compare-and-set loses, nothing else', () => {
    expect(isCasConflict(apiError(JsApiCode.WrongLastSequence))).toBe(true);
    expect(isCasConflict(apiError(JsApiCode.WrongLastSequenceUnknown))).toBe(true);
    expect(isCasConflict(new Error('kv', { cause: apiError(JsApiCode.WrongLastSequenceUnknown) }))).toBe(
      true,
    );
    expect(isCasConflict(apiError(JsApiCode.StreamNotFound))).toBe(false);
    expect(isCasConflict(new Error('wrong last sequence'))).toBe(false);
    expect(isWrongLastSequence(apiError(JsApiCode.WrongLastSequenceUnknown))).toBe(false);
    expect(isStreamNotFound(apiError(JsApiCode.StreamNotFound))).toBe(true);
  });
});

describe('withoutStacks', () => {
  it('captures no stack in the synchronous part, then restores the limit (also after a throw)', async () => {
    const limit = Error.stackTraceLimit;
    const made = withoutStacks(() => new Error('inside'));
    expect(
      made.stack
        ?.split('\n')
        .slice(1)
        .filter((l) => l.includes(' at ')),
    ).toEqual([]);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(() =>
      withoutStacks(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(Error.stackTraceLimit).toBe(limit);
    // After the first await the usual limit applies again.
    const later = await withoutStacks(async () => {
      await Promise.resolve();
      return new Error('later');
    });
    expect(later.stack).toContain(' at ');
    expect(new Error('outside').stack).toContain(' at ');
  });
});
