import { restartDecision } from '@gc/backends';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from './config.js';
import { devNodeConfig, devRestartPolicy } from './dev.js';

const input = {
  platform: 'dev',
  nodeId: 'node-b',
  zone: 'zone-2',
  servers: ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223'],
  httpPort: 8082,
  servicePort: 8092,
  replicas: 3,
};

describe('devNodeConfig (the gc run config of a dev node)', () => {
  it('is a valid gc.yaml with the example apps, whatever characters the state folder has', () => {
    // A folder name YAML would otherwise read as a comment (" #") or a mapping (": ").
    const dataDir = '/tmp/my #dev: cluster/nodes/node-b-data';
    const text = devNodeConfig({ ...input, dataDir });
    const config = parseConfig(parse(text), {});
    expect(config).toMatchObject({
      platform: 'dev',
      node: { id: 'node-b', labels: { zone: 'zone-2' } },
      nats: { servers: input.servers },
      http: { host: '127.0.0.1', port: 8082 },
      dataDir,
    });
    expect(config.apps.orders).toMatchObject({
      mode: 'active-passive',
      kvReplicas: 3,
      recoveryBudgetMs: 10_000,
      election: { ttlMs: 3000, replicas: 3 },
      sqlite: { path: `${dataDir}/orders.db`, worker: true, replicas: 3 },
      backend: {
        type: 'process',
        options: {
          command: process.execPath,
          // environment values are strings, the port too
          env: { PORT: '8092', DB: `${dataDir}/orders.db`, NODE_ID: 'node-b' },
          health: { type: 'http', url: 'http://127.0.0.1:8092/health' },
        },
      },
    });
    expect(config.apps.workers).toMatchObject({ mode: 'pool', kvReplicas: 3 });
    // What the example apps show is explained in the file itself.
    expect(text).toMatch(/^ {2}# active-passive: the leader promotes its replica/m);
    expect(text).toMatch(/^ {2}# pool: active on every node\n {2}workers:/m);
    expect(text).toMatch(/^ {4}election: \{ ttlMs: 3000,/m);
  });

  it('with one server: no replicas settings, one replica of the buckets', () => {
    const config = parseConfig(parse(devNodeConfig({ ...input, replicas: 1, dataDir: '/d' })), {});
    expect(config.apps.orders!.kvReplicas).toBe(1);
    expect(devNodeConfig({ ...input, dataDir: '/d' }).match(/replicas: 3/g)).toHaveLength(2);
    expect(devNodeConfig({ ...input, replicas: 1, dataDir: '/d' })).not.toMatch(/ replicas:/);
  });
});

describe('devRestartPolicy (the dev nodes supervisor, @gc/backends restart policy)', () => {
  /** The delays of successive restarts of a node that dies right away, until the policy gives up. */
  function delays(policy: ReturnType<typeof devRestartPolicy>, exits = 10): Array<number | string> {
    const history: number[] = [];
    const out: Array<number | string> = [];
    let now = 0;
    for (let i = 0; i < exits; i++) {
      const d = restartDecision(policy, { exitCode: null, signal: 'SIGKILL' }, history, now);
      if (!d.restart) {
        out.push(d.reason);
        break;
      }
      out.push(d.delayMs);
      history.push(now);
      now += d.delayMs + 1000; // it runs a second, then dies again
    }
    return out;
  }

  it('restarts after restartDelayMs, backs off, and gives up on a node crash-looping within a minute', () => {
    expect(delays(devRestartPolicy(2000))).toEqual([
      2000,
      4000,
      8000,
      10_000,
      10_000,
      'restarted 5 times within 60000 ms (limit 5)',
    ]);
    // A clean exit restarts too (a node has no business exiting while gc dev runs).
    expect(restartDecision(devRestartPolicy(2000), { exitCode: 0, signal: null }, [], 0)).toMatchObject({
      restart: true,
      delayMs: 2000,
    });
  });

  it('a node that dies now and then is restarted after restartDelayMs every time', () => {
    const policy = devRestartPolicy(2000);
    const history = [0, 61_000, 122_000];
    expect(restartDecision(policy, { exitCode: 1, signal: null }, history, 183_000)).toMatchObject({
      restart: true,
      delayMs: 2000,
    });
  });

  it('restartDelayMs 0 never restarts; the chaos overrides keep the delay and never give up', () => {
    expect(restartDecision(devRestartPolicy(0), { exitCode: 1, signal: null }, [], 0)).toMatchObject({
      restart: false,
    });
    const chaos = delays(devRestartPolicy(2000, { factor: 1, maxRestarts: Number.POSITIVE_INFINITY }), 20);
    expect(chaos).toEqual(Array.from({ length: 20 }, () => 2000));
  });
});
