// Arguments and flags several commands share, defined once so that their help reads the same everywhere.
// (`--dry-run` of the placement commands is `dryRunFlag`, with the plan printer in placement-plan.ts.)
// oclif names an argument after its key: use each one under the key its name says (`app: appArg`).
import { Args, Flags } from '@oclif/core';

/** `<app>`: the app the command is about. */
export const appArg = Args.string({ description: 'app name', required: true });

/** `<app>` of the `gc ring` commands: an app running in ring mode. */
export const ringAppArg = Args.string({ description: 'app name (mode ring)', required: true });

/** `<partition>` of the `gc ring` commands. */
export const partitionArg = Args.integer({ description: 'partition number', required: true, min: 0 });

/** `<key>` of the `gc kv` commands. */
export const keyArg = Args.string({ description: 'key', required: true });

/** `<node>`: the node the command is about. */
export const nodeArg = Args.string({ description: 'node id', required: true });

/** `--reason` of an operator's change, recorded in the audit trail; `fallback` when none is given. */
export const reasonFlag = (fallback: string) =>
  Flags.string({ description: 'why (recorded in the audit trail)', default: fallback });

/** `--[no-]wait`, on by default: wait until the change shows, as `description` says. */
export const waitFlag = (description: string) => Flags.boolean({ description, default: true, allowNo: true });
