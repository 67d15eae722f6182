import { connect, isCasConflict, StreamPublisher } from '@gc/core';
import { headers } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { isConflict, kvEditSubject, openRingBucket } from './bucket.js';
import { rejection, useRingServer } from './test/helpers.js';

const rig = useRingServer('bk');

describe('partition record writes through the shared publisher (real nats-server)', () => {
  it('update the key as kv.update does, and a stale revision is a conflict', async () => {
    const nc = await connect({ servers: rig.server.url });
    const publisher = new StreamPublisher(nc);
    try {
      const kv = await openRingBucket(nc, 'bk_app_ring', 1, 2000);
      expect(kvEditSubject(kv, 'bk_app_ring', 'p.7')).toBe('$KV.bk_app_ring.p.7');
      const rev = await kv.create('p.7', 'a');
      const cas = (value: string, expected: number) => {
        const h = headers();
        h.set('Nats-Expected-Last-Subject-Sequence', String(expected));
        const subject = kvEditSubject(kv, 'bk_app_ring', 'p.7');
        return publisher.publish(subject, new TextEncoder().encode(value), h, 2000);
      };
      const ack = await cas('b', rev);
      const entry = await kv.get('p.7');
      expect(entry?.string()).toBe('b');
      expect(entry?.revision).toBe(ack.seq);
      // The revision it expected is gone: refused, and told apart as a lost compare-and-set.
      const err = await rejection(cas('c', rev));
      expect(isConflict(err)).toBe(true);
      expect(isCasConflict(err)).toBe(true);
      expect((await kv.get('p.7'))?.string()).toBe('b');
    } finally {
      publisher.close();
      await nc.close();
    }
  });
});
