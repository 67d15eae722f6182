import { describe, expect, it } from 'vitest';
import { PlacementErrorCode, SelectorSyntaxError } from './errors.js';
import { parseSelector } from './selector.js';

describe('parseSelector', () => {
  const node = { disk: 'ssd', zone: 'eu-1', arch: 'x86' };

  it.each([
    ['disk=ssd', true],
    ['disk==ssd', true],
    ['disk=hdd', false],
    ['arch!=arm', true],
    ['gpu!=yes', true], // a missing label is "not equal"
    ['zone in (eu-1,eu-2)', true],
    ['zone in ( us-1 , us-2 )', false],
    ['zone notin (us-1)', true],
    ['gpu notin (yes)', true],
    ['gpu in (yes)', false],
    ['disk', true],
    ['gpu', false],
    ['!gpu', true],
    ['!disk', false],
    ['disk=ssd, zone in (eu-1), !gpu', true],
    ['disk=ssd,arch=arm', false],
    ['zone="eu-1"', true],
    ['path=a/b:c', false],
  ])('%s → %s', (src, expected) => {
    expect(parseSelector(src).matches(node)).toBe(expected);
  });

  it('returns the parsed requirements', () => {
    expect(parseSelector('disk=ssd, zone in (a,b), !gpu, arch').requirements).toEqual([
      { key: 'disk', op: 'eq', value: 'ssd' },
      { key: 'zone', op: 'in', values: ['a', 'b'] },
      { key: 'gpu', op: 'notExists' },
      { key: 'arch', op: 'exists' },
    ]);
  });

  it('does not match inherited object properties as labels', () => {
    expect(parseSelector('constructor').matches({})).toBe(false);
    expect(parseSelector('!toString').matches({})).toBe(true);
  });

  it.each([
    ['', /empty selector/, 0],
    ['   ', /empty selector/, 3],
    ['disk=', /expected a label value, found nothing at the end/, 5],
    ['=ssd', /expected a label key, found "=" at position 0/, 0],
    ['disk=ssd,', /expected a label key, found nothing/, 9],
    ['disk=ssd zone=a', /expected "," between terms, found "z" at position 9/, 9],
    ['zone in (a,b', /expected "," or "\)" in the value list/, 12],
    ['zone in a,b', /expected "\(" to open the value list/, 8],
    ['zone inside (a)', /expected an operator/, 5],
    ['zone ~ a', /expected an operator \(=, ==, !=, in, notin\) or "," after label key "zone", found "~"/, 5],
    ['disk="ssd', /unterminated quoted value/, 5],
    ['zone in ()', /expected a label value, found "\)"/, 9],
    ['!', /expected a label key/, 1],
  ])('refuses %j with a typed error', (src, message, position) => {
    let err: unknown;
    try {
      parseSelector(src, 'apps.orders.placement.onLabel');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SelectorSyntaxError);
    const e = err as SelectorSyntaxError;
    expect(e.code).toBe(PlacementErrorCode.InvalidSelector);
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/^apps\.orders\.placement\.onLabel: invalid label selector/);
    expect(e.message).toContain('selectors are comma-separated terms like disk=ssd');
    expect(e.position).toBe(position);
    expect(e.selector).toBe(src);
  });

  it('refuses a non-string', () => {
    expect(() => parseSelector(42 as unknown as string)).toThrow(SelectorSyntaxError);
  });
});
