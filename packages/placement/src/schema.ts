import { validateAppName, validateNodeId, type ConfigIssue } from '@gc/core';
import { z } from 'zod';
import { parseSelector } from './selector.js';
import { checkWindow } from './windows.js';

/** Largest absolute `preferLabel` weight. */
export const MAX_PREFERENCE = 100;

// Selector syntax and names are checked here too, so that a config file fails at load time. Their issues
// carry this tag: `compileApps` leaves them to `parseSelector` and the name validators, which throw the
// package's own errors (`SelectorSyntaxError`, `InvalidNameError`) with the full path.
const DEFERRED = 'gc.placement.deferred';

/** True for an issue of {@link placementSpecSchema} that `compileApps` reports with its own error class. */
export function isDeferredIssue(issue: ConfigIssue): boolean {
  return (
    issue.code === 'custom' && (issue.params as Record<string, unknown> | undefined)?.[DEFERRED] === true
  );
}

function refused(ctx: z.core.$RefinementCtx, err: unknown, path: PropertyKey[] = []): void {
  ctx.addIssue({ code: 'custom', message: (err as Error).message, path, params: { [DEFERRED]: true } });
}

const checked = (validate: (v: string) => unknown) =>
  z.string().superRefine((v, ctx) => {
    try {
      validate(v);
    } catch (err) {
      refused(ctx, err);
    }
  });

const selector = checked((s) => parseSelector(s));

const selectors = z
  .union([z.string(), z.array(z.string())])
  .describe('a label selector like "disk=ssd" or a list of them')
  .superRefine((v, ctx) => {
    const list = typeof v === 'string' ? [v] : v;
    list.forEach((s, i) => {
      try {
        parseSelector(s);
      } catch (err) {
        refused(ctx, err, typeof v === 'string' ? [] : [i]);
      }
    });
  });

/**
 * The placement of an app as configuration gives it (the `placement:` block of an app in `gc.yaml`; see
 * {@link PlacementSpec}): label selectors (their syntax checked), node ids and app names (checked as names),
 * the spread, and the node counts (`maxNodes ≥ minNodes`). Unknown keys are refused. What needs the app's
 * own name (an app cannot be co-located with or avoid itself) is checked by {@link schedule}.
 *
 * @example
 * const placement = placementSpecSchema.parse({ onLabel: 'disk=ssd', spread: { label: 'zone' }, minNodes: 2 });
 * schedule({ nodes, apps: [{ app: 'orders', mode: 'active-passive', placement }] });
 */
export const placementSpecSchema = z
  .object({
    onLabel: selectors.optional(),
    avoidLabel: selectors.optional(),
    preferLabel: z
      .array(
        z
          .object({
            selector,
            weight: z.number().min(-MAX_PREFERENCE).max(MAX_PREFERENCE),
          })
          .strict(),
      )
      .optional(),
    onNodes: z.array(checked(validateNodeId)).optional(),
    withApp: z.array(checked(validateAppName)).optional(),
    awayFromApp: z.array(checked(validateAppName)).optional(),
    spread: z
      .object({
        label: z.string().min(1).describe('a label name'),
        maxSkew: z.number().int().min(1).optional(),
      })
      .strict()
      .optional(),
    minNodes: z.number().int().min(1).optional(),
    maxNodes: z.number().int().min(1).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const min = spec.minNodes ?? 1;
    if (typeof spec.maxNodes === 'number' && typeof min === 'number' && spec.maxNodes < min)
      ctx.addIssue({
        code: 'custom',
        path: ['maxNodes'],
        message: `must be ≥ minNodes (${min}), got ${spec.maxNodes}`,
      });
  });

/**
 * An app's migration policy (`migrate:` in `gc.yaml`; see {@link MigrationPolicy}): a cooldown in ms and
 * maintenance windows whose cron expression and time zone are checked. Unknown keys are refused.
 *
 * @example
 * migrationPolicySchema.parse({ cooldownMs: 300_000, windows: [{ cron: '0 2 * * 6', durationMs: 14_400_000 }] });
 */
export const migrationPolicySchema = z
  .object({
    cooldownMs: z.number().int().nonnegative().optional(),
    windows: z
      .array(
        z
          .object({
            cron: z.string().min(1),
            durationMs: z.number().int().positive(),
            timezone: z.string().min(1).optional(),
          })
          .strict()
          .superRefine((w, ctx) => {
            const problem = checkWindow(w);
            if (problem) ctx.addIssue({ code: 'custom', path: ['cron'], message: problem });
          }),
      )
      .optional(),
  })
  .strict();
