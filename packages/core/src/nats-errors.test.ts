import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { isCasConflict, isStreamNotFound, isWrongLastSequence, jsApiCode, JsApiCode } from './nats-errors.js';

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
