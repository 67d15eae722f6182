import { Args, Flags } from '@oclif/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdminClient, type NodeLabels } from '@gc/platform';
import { nodeArg, waitFlag } from '../../flags.js';
import { PlacementCommand } from '../../placement-command.js';
import {
  LabelSyntaxError,
  USAGE_EXIT,
  dryRunFlag,
  formatLabelChanges,
  parseLabelChanges,
  type PrintedPlan,
} from '../../placement-plan.js';

/** What `gc node label` did (`--json`). */
interface Labelled {
  node: string;
  /** The changes asked for (`key → value` sets, `key → null` removes). */
  changes: Record<string, string | null>;
  reset: boolean;
  /** The operator's changes in force for the node now (absent: none, its configured labels apply). */
  recorded?: NodeLabels;
  /** The node's labels as membership showed them last (absent when not waited for). */
  labels?: Record<string, string>;
  /** Whether membership showed the changes (false: not waited for, or not seen in time). */
  seen: boolean;
}

export default class NodeLabel extends PlacementCommand<typeof NodeLabel> {
  static override summary =
    "Change a node's labels: key=value sets one, key- removes one (as kubectl label).";
  static override description = [
    "The changes are kept in the platform's placement bucket and applied by the node over the labels of its",
    'configuration, again after a restart; apps with placement follow them (within their maintenance windows',
    'and cooldown). A value is everything after the first "=" (a=b=c sets a to "b=c"; a= sets an empty value).',
    '--reset drops the earlier changes first; alone, it puts the node back to its configured labels. Waits',
    'until membership shows the node with the changed labels, unless --no-wait; not with --reset, whose',
    'result (the configured labels) the CLI cannot know. --dry-run prints what the change would move instead.',
    'Exit codes: 0 done (or planned), 1 refused or not seen in time, 2 a change that does not parse',
    '(=x, key, a bad label name, a key given twice) or no change without --reset, 3 NATS unreachable,',
    '4 unknown node.',
  ].join(' ');
  static override args = {
    node: nodeArg,
    changes: Args.string({ description: 'key=value to set a label, key- to remove it', multiple: true }),
  };
  static override flags = {
    reset: Flags.boolean({
      description: 'drop the earlier changes first (alone: back to the configured labels)',
      default: false,
    }),
    'dry-run': dryRunFlag,
    wait: waitFlag('wait until membership shows the changed labels'),
  };
  static override examples = [
    '<%= config.bin %> node label node-b disk=ssd rack-',
    '<%= config.bin %> node label node-b zone=eu-2 --dry-run',
    '<%= config.bin %> node label node-b --reset',
  ];

  async run(): Promise<Labelled | PrintedPlan> {
    const { node } = this.args;
    const words = this.args.changes ?? [];
    let changes: Record<string, string | null>;
    try {
      changes = parseLabelChanges(words);
    } catch (err) {
      if (err instanceof LabelSyntaxError) this.error(err.message, { exit: USAGE_EXIT });
      throw err;
    }
    const reset = this.flags.reset;
    if (!words.length && !reset)
      this.error('no label to change: give key=value to set or key- to remove (or --reset)', {
        exit: USAGE_EXIT,
      });
    if (this.flags['dry-run'] && reset)
      this.error('--dry-run does not plan a --reset (the configured labels are unknown to the CLI)', {
        exit: USAGE_EXIT,
      });
    if (this.flags['dry-run']) return this.plan({ op: 'label', node, changes });
    const control = await this.placement();
    const recorded: NodeLabels | undefined = (
      await this.orExit(() => control.label(node, changes, { reset }))
    ).changes;
    const out: Labelled = { node, changes, reset, ...(recorded ? { recorded } : {}), seen: false };
    const asked = formatLabelChanges(changes);
    if (reset) {
      this.log(
        `${node}: earlier label changes dropped${asked ? `, then ${asked}` : ''}; the node goes back to its configured labels${asked ? ' with these changes' : ''} (unknown to the CLI: see gc node list)`,
      );
      return out;
    }
    if (!this.flags.wait) {
      this.log(`${node}: ${asked} recorded`);
      return out;
    }
    const admin = createAdminClient(await this.nats(), this.flags.platform);
    const shows = (labels: Record<string, string>) =>
      Object.entries(changes).every(([k, v]) => (v === null ? !(k in labels) : labels[k] === v));
    const limit = this.waitLimitMs();
    const t0 = Date.now();
    let last: Record<string, string> | undefined;
    while (Date.now() - t0 < limit) {
      last = (await admin.nodes(this.flags.timeout)).find((n) => n.nodeId === node)?.labels ?? last;
      if (last && shows(last)) {
        this.log(`${node}: ${asked} (labels now ${formatLabels(last)})`);
        return { ...out, labels: last, seen: true };
      }
      await sleep(200);
    }
    return this.failed(
      `${node}: ${asked} is recorded, but membership did not show it within ${limit} ms (labels: ${last ? formatLabels(last) : 'the node did not answer'})`,
      { ...out, ...(last ? { labels: last } : {}) },
    );
  }
}

function formatLabels(labels: Record<string, string>): string {
  return (
    Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-'
  );
}
