// A gc candidate of the election-vs-etcd bench: one `@gc/election` on the 3-node JetStream cluster (R3
// bucket), reporting `elected` (its `acquired` event) with the wall-clock time over IPC.
// env: NATS_URLS (comma list, this candidate's own server first), BUCKET, NODE_ID, TTL_MS, FAST ('1' for
// fast failover).
import { connect } from '@gc/core';
import { createElection } from '@gc/election';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const nodeId = process.env.NODE_ID!;
const nc = await connect({
  servers: process.env.NATS_URLS!.split(','),
  name: nodeId,
  // Like each etcd candidate talking to its own member: this candidate's server first.
  nats: { noRandomize: true },
});
const election = await createElection(nc, {
  bucket: process.env.BUCKET!,
  nodeId,
  ttlMs: Number(process.env.TTL_MS),
  fastFailover: process.env.FAST === '1',
  replicas: 3,
});
election.on('error', ({ op, error }) => process.stderr.write(`${op}: ${error.message}\n`));
election.on('acquired', ({ epoch }) => process.send?.({ type: 'elected', epoch, at: now() }));
process.send?.({ type: 'ready', at: now() });
process.on('SIGTERM', () => {
  void election
    .close()
    .then(() => nc.close())
    .then(() => process.exit(0));
});
