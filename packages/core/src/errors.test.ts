import { describe, expect, it } from 'vitest';
import { causeSuffix, storeFailedMessage } from './errors.js';

describe('error message helpers', () => {
  it('causeSuffix appends the message of an Error cause, nothing for anything else', () => {
    expect(causeSuffix({ cause: new Error('connection refused') })).toBe(': connection refused');
    expect(causeSuffix({ cause: 'not an Error' })).toBe('');
    expect(causeSuffix({})).toBe('');
    expect(causeSuffix()).toBe('');
  });

  it('storeFailedMessage names the store and the operation, with the cause and what to check', () => {
    expect(storeFailedMessage('ring bucket KV_r', 'watch', { cause: new Error('timeout') })).toBe(
      'ring bucket KV_r: watch failed: timeout (check the NATS connection and that JetStream is up)',
    );
    expect(storeFailedMessage('audit stream GC_AUDIT', 'publish')).toBe(
      'audit stream GC_AUDIT: publish failed (check the NATS connection and that JetStream is up)',
    );
  });
});
