// A node process for the failover benchmark: runs one election and reports `active` (its onActive moment)
// over IPC. env: NATS_URL, BUCKET, NODE_ID, TTL_MS.
import { connect } from '@gc/core';
import { createElection } from '@gc/election';

const nc = await connect({ servers: process.env.NATS_URL!, name: process.env.NODE_ID! });
const election = await createElection(nc, {
  bucket: process.env.BUCKET!,
  nodeId: process.env.NODE_ID!,
  ttlMs: Number(process.env.TTL_MS),
});
election.on('error', ({ op, error }) => process.stderr.write(`${op}: ${error.message}\n`));
election.on('acquired', ({ epoch }) =>
  process.send?.({ type: 'active', epoch, at: Number(process.hrtime.bigint()) / 1e6 }),
);
process.send?.({ type: 'ready', leader: election.isLeader() });
process.on('SIGTERM', () => {
  void election
    .close()
    .then(() => nc.close())
    .then(() => process.exit(0));
});
