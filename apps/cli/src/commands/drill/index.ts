import { Args, Flags } from '@oclif/core';
import { Cron } from 'croner';
import { createAudit } from '@gc/audit';
import { isGcError } from '@gc/core';
import { spawn } from 'node:child_process';
import {
  AdminErrorCode,
  DrillKind,
  devServerRestarter,
  runDrill,
  type DrillKindValue,
  type DrillReport,
} from '@gc/platform';
import { BaseCommand, ExitCode } from '../../base.js';
import { table } from '../../table.js';

export default class Drill extends BaseCommand<typeof Drill> {
  static override summary =
    "Rehearse a failover of an app on the running platform and check it against the app's recovery budget.";
  static override description = [
    'failover: the leader behaves as if its process died (stops renewing its lease without releasing it and',
    'stops acting; its last commits reach the stream first, so nothing is lost); the standbys detect it, elect,',
    'promote the data, take the VIP, start the backend. stepdown: a graceful hand-over. Each phase is measured',
    "from the fault and the total is checked against the app's recoveryBudgetMs (or --budget-ms); the report is",
    'recorded in the audit trail as drill.result. With --schedule the command keeps running and drills at',
    'every tick of the cron expression. Exit 1 when a drill fails its budget or no new leader becomes active.',
    "server-restart: the NATS server the leader is connected to restarts (gc dev's own, or --restart-command);",
    'measured until the app is active on a connected node and every replica follows with no lag.',
  ].join(' ');
  static override args = {
    kind: Args.string({
      description: 'failover | stepdown | server-restart',
      required: true,
      options: Object.values(DrillKind),
    }),
  };
  static override flags = {
    app: Flags.string({ char: 'a', description: 'app to drill', required: true }),
    'budget-ms': Flags.integer({
      description: "check against this budget instead of the app's recoveryBudgetMs",
      min: 1,
    }),
    'wait-ms': Flags.integer({
      description: 'give up waiting for the new leader after this long',
      default: 60_000,
      min: 1000,
    }),
    schedule: Flags.string({
      description: 'run on a cron schedule (e.g. "0 3 * * 1" for Mondays at 03:00) until stopped',
    }),
    'restart-command': Flags.string({
      description:
        "server-restart: the shell command that restarts the leader's NATS server and returns once it was restarted; $GC_DRILL_SERVER holds its server_name, $GC_DRILL_NODE the leader (default: ask a running gc dev)",
    }),
  };
  static override examples = [
    '<%= config.bin %> drill failover --app orders',
    '<%= config.bin %> drill stepdown --app orders --budget-ms 2000 --json',
    '<%= config.bin %> drill failover --app orders --schedule "0 3 * * 1"',
    '<%= config.bin %> drill server-restart --app orders',
    '<%= config.bin %> drill server-restart --app orders --restart-command \'ssh "$GC_DRILL_SERVER" sudo systemctl restart nats-server\'',
  ];

  async run(): Promise<DrillReport | DrillReport[]> {
    const kind = this.args.kind as DrillKindValue;
    let schedule: Cron | undefined;
    if (this.flags.schedule) {
      try {
        schedule = new Cron(this.flags.schedule, { paused: true });
      } catch (err) {
        this.error(
          `--schedule ${JSON.stringify(this.flags.schedule)} is not a cron expression: ${(err as Error).message}`,
          {
            exit: ExitCode.Failed,
          },
        );
      }
    }
    // The drill may restart the very server this connection is on, and --schedule runs for days.
    const nc = await this.nats({ reconnect: true });
    const audit = await createAudit(nc, { platform: this.flags.platform, nodeId: 'gc-drill' });
    const once = async (): Promise<DrillReport> => {
      const command = this.flags['restart-command'];
      const report = await runDrill(nc, this.flags.platform, this.flags.app, kind, {
        audit,
        restartServer: command
          ? ({ server, node }) => runRestartCommand(command, server, node, this.flags['wait-ms'])
          : devServerRestarter(nc, this.flags.platform),
        timeoutMs: this.flags['wait-ms'],
        ...(this.flags['budget-ms'] ? { budgetMs: this.flags['budget-ms'] } : {}),
      });
      this.log(
        `${report.pass ? 'PASS' : 'FAIL'} ${report.kind} of ${report.app}: ${report.from.node} → ${report.to?.node ?? '(none)'} in ${
          report.totalMs ?? '-'
        } ms${report.budgetMs !== undefined ? ` (budget ${report.budgetMs} ms)` : ''}${report.reason ? ` — ${report.reason}` : ''}`,
      );
      this.log(
        table(
          ['PHASE', 'MS'],
          [
            ...(report.kind === DrillKind.ServerRestart
              ? [['server restarted', report.server ?? '?']]
              : [['elected (detect + election)', String(report.electedMs ?? '-')]]),
            ...Object.entries(report.phases).map(([k, v]) => [k, String(v)]),
            ['total', String(report.totalMs ?? '-')],
            ...(report.data
              ? [
                  [
                    'data (txid before → after)',
                    `${report.data.before.txid} → ${report.data.after?.txid ?? '?'}${report.data.lost ? ` (${report.data.lost} lost)` : ''}`,
                  ],
                ]
              : []),
          ],
        ),
      );
      if (!report.pass) process.exitCode = ExitCode.Failed;
      return report;
    };
    if (!schedule) {
      try {
        return await once();
      } catch (err) {
        this.error((err as Error).message, {
          exit: isGcError(err, AdminErrorCode.NoLeader) ? ExitCode.NotFound : ExitCode.Failed,
        });
      } finally {
        await audit.close();
      }
    }
    const reports: DrillReport[] = [];
    this.log(
      `drilling ${kind} of ${this.flags.app} on "${this.flags.schedule}"; next: ${schedule.nextRun()?.toISOString() ?? 'never'}`,
    );
    await new Promise<void>((resolve) => {
      // A failed drill (no leader at that tick, a timeout) is reported and the schedule goes on.
      const job = new Cron(this.flags.schedule!, { protect: true }, async () => {
        try {
          reports.push(await once());
        } catch (err) {
          process.exitCode = ExitCode.Failed;
          this.warn(`drill at ${new Date().toISOString()} failed: ${(err as Error).message}`);
        }
        this.log(`next drill: ${job.nextRun()?.toISOString() ?? 'never'}`);
      });
      const stop = () => {
        job.stop();
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await audit.close();
    return reports;
  }
}

/** Runs an operator's server-restart command (`sh -c`), resolving when it exits 0 within `timeoutMs`. */
function runRestartCommand(
  command: string,
  server: string | undefined,
  node: string,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      env: { ...process.env, GC_DRILL_SERVER: server ?? '', GC_DRILL_NODE: node },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a timeout kills what it started too (an ssh, a systemctl).
      detached: true,
    });
    let out = '';
    const keep = (b: Buffer) => void (out = (out + b.toString()).slice(-2000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`--restart-command could not run: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `--restart-command failed (${signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` after ${timeoutMs} ms` : ''}` : `exit ${code}`}): ${out.trim().slice(-500)}`,
          ),
        );
    });
  });
}
