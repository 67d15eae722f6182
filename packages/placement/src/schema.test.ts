import { describe, expect, expectTypeOf, it } from 'vitest';
import { schedule } from './schedule.js';
import { placementSpecSchema } from './schema.js';
import type { PlacementSpec } from './types.js';
import type { z } from 'zod';

const issues = (v: unknown) =>
  placementSpecSchema.safeParse(v).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('placementSpecSchema', () => {
  it('accepts a full spec, and its output is a PlacementSpec', () => {
    const spec = {
      onLabel: 'disk=ssd',
      avoidLabel: ['arch=arm'],
      preferLabel: [{ selector: 'zone in (a,b)', weight: -20 }],
      onNodes: ['n1', 'n2'],
      withApp: ['db'],
      awayFromApp: ['batch'],
      spread: { label: 'zone', maxSkew: 2 },
      minNodes: 2,
      maxNodes: 3,
    };
    expect(placementSpecSchema.parse(spec)).toEqual(spec);
    expect(placementSpecSchema.parse({})).toEqual({});
    expectTypeOf<z.output<typeof placementSpecSchema>>().toExtend<PlacementSpec>();
  });

  it('refuses bad selectors, bad names, unknown keys, bad counts with the path of each', () => {
    expect(issues({ onLabel: ['disk=ssd', 'zone='] })[0]).toMatch(
      /^onLabel\.1: invalid label selector "zone="/,
    );
    expect(issues({ withApp: ['Db'] })[0]).toMatch(/^withApp\.0: invalid app name "Db"/);
    expect(issues({ onNodes: ['a b'] })[0]).toMatch(/^onNodes\.0: invalid node id/);
    expect(issues({ minNodes: 3, maxNodes: 2 })).toEqual(['maxNodes: must be ≥ minNodes (3), got 2']);
    expect(issues({ onLabels: 'x' })[0]).toMatch(/Unrecognized key: "onLabels"/);
    expect(issues({ spread: { label: 'zone', skew: 1 } })[0]).toMatch(/^spread: Unrecognized key/);
    expect(issues({ preferLabel: [{ selector: 'a', weight: 101 }] })[0]).toMatch(/^preferLabel\.0\.weight/);
  });

  it('is what schedule checks each placement with: the error names the field, the value and what is allowed', () => {
    const run = (placement: unknown) => () =>
      schedule({ nodes: [], apps: [{ app: 'o', mode: 'pool', placement: placement as PlacementSpec }] });
    expect(run({ minNodes: 0 })).toThrow('apps.o.placement.minNodes: must be an integer ≥ 1, got 0');
    expect(run({ onLabel: 3 })).toThrow(
      'apps.o.placement.onLabel: must be a label selector like "disk=ssd" or a list of them, got 3',
    );
    expect(run({ colour: 'red' })).toThrow(
      /apps\.o\.placement: unknown key "colour"; allowed keys: onLabel, /,
    );
  });
});
