import { connect } from '@gc/core';
import { startCluster, waitFor, type Cluster } from '@gc/testkit';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { now, Scenario } from './fixtures.js';
import { checkHistory } from './history.js';

// The election on a 3-node JetStream cluster with an R3 bucket, when the server leading the bucket's
// stream is killed (SIGKILL) and later restarted.

const TTL = 3000;
let cluster: Cluster;
let nc: NatsConnection;
beforeAll(async () => {
  cluster = await startCluster();
  // The meta leader is known, but the JetStream API can still time out for a moment on a busy machine.
  nc = await waitFor(() => connect({ servers: cluster.urls, name: 'e2e-cluster', timeoutMs: 10_000 }), {
    timeoutMs: 40_000,
    intervalMs: 500,
    message: 'a JetStream connection to the cluster',
  });
});
afterAll(async () => {
  await nc?.close();
  await cluster?.close();
});

it('keeps a single, fenced leader when the KV stream leader server is killed, and after it returns', async () => {
  await new Kvm(nc).create('cl', { history: 1, replicas: 3, markerTTL: TTL });
  const sc = new Scenario();
  const env = {
    NATS_URLS: cluster.urls.join(','),
    BUCKET: 'cl',
    TTL_MS: String(TTL),
    POLL_MS: '200',
    REPLICAS: '3',
  };
  await Promise.all(['a', 'b', 'c'].map((id) => sc.start(id, env)));
  await waitFor(() => sc.leader(), { timeoutMs: 15_000, message: 'a leader' });
  const jsm = await jetstreamManager(nc);
  const streamLeader = (await jsm.streams.info('KV_cl')).cluster?.leader;
  const victim = cluster.servers.find((s) => s.name === streamLeader)!;
  expect(victim).toBeDefined();
  await victim.kill();
  const killedAt = now();
  // Some leader acts again (renewing on the new stream leader, or a new grant) within TTL + 10 s.
  await waitFor(
    () => sc.history().some((e) => (e.type === 'renewed' || e.type === 'acquired') && e.at > killedAt + 100),
    { timeoutMs: TTL + 10_000, message: 'a renewing leader after the stream leader died' },
  );
  const newStreamLeader = await waitFor(async () => (await jsm.streams.info('KV_cl')).cluster?.leader, {
    timeoutMs: 10_000,
  });
  expect(newStreamLeader).not.toBe(streamLeader);
  await victim.start();
  const restartedAt = now();
  await waitFor(() => sc.history().some((e) => e.type === 'renewed' && e.at > restartedAt + 500), {
    timeoutMs: TTL + 10_000,
    message: 'renewing after the server came back',
  });
  // Hand-over still works, and watches did not pile up consumers.
  const leader = sc.leader()!;
  const before = now();
  leader.child.send({ cmd: 'stepDown' });
  const next = await waitFor(() => sc.acquisitions(before)[0], { timeoutMs: 10_000, message: 'hand-over' });
  expect(next.node).not.toBe(leader.id);
  await waitFor(async () => (await jsm.streams.info('KV_cl')).state.consumer_count <= 3, {
    timeoutMs: 15_000,
  });
  const epochs = sc.acquisitions(0).map((e) => e.epoch!);
  for (let i = 1; i < epochs.length; i++) expect(epochs[i]).toBeGreaterThan(epochs[i - 1]!);
  expect(checkHistory(sc.history())).toEqual([]);
  await sc.stopAll();
});
