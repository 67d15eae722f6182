// An etcd candidate of the election-vs-etcd bench, the way a Go program using clientv3/concurrency runs an
// election: a lease with TTL_S seconds kept alive every TTL/3 (what `concurrency.NewSession` does), then
// `Campaign(name, value)` on that lease. Campaign is etcd's own v3election service (the server runs
// `concurrency.Election.Campaign` for the caller's lease: create `name/<lease>` if absent, wait until
// every key with a lower create revision is gone), reached through etcd's gRPC gateway as JSON over HTTP,
// so no client library is needed. Reports `elected` with the wall-clock time over IPC.
// env: ETCD_URL (this candidate's own member), ELECTION, NODE_ID, TTL_S.
const now = () => Number(process.hrtime.bigint()) / 1e6;
const base = process.env.ETCD_URL!;
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function post<T>(path: string, body: unknown, timeoutMs: number): Promise<T> {
  const r = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`POST ${path}: HTTP ${r.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

const ttlS = Number(process.env.TTL_S);
const grant = await post<{ ID: string; TTL: string }>('/v3/lease/grant', { TTL: ttlS }, 5000);
const lease = grant.ID;
const grantedTtlS = Number(grant.TTL);

// Keep-alive every TTL/3 of the granted TTL, like clientv3's lease keeper. A keep-alive that finds the
// lease gone (TTL 0 or missing) means this candidate is no longer in the race: exit so the bench sees it.
const keepAlive = setInterval(
  () => {
    post<{ result?: { TTL?: string } }>(
      '/v3/lease/keepalive',
      { ID: lease },
      Math.round((grantedTtlS * 1000) / 3),
    ).then(
      (r) => {
        if (!r.result?.TTL || Number(r.result.TTL) <= 0) {
          process.stderr.write(`lease ${lease} expired\n`);
          process.exit(3);
        }
      },
      (err: Error) => process.stderr.write(`keepalive: ${err.message}\n`),
    );
  },
  (grantedTtlS * 1000) / 3,
);

process.send?.({ type: 'ready', at: now(), grantedTtlS, lease });
process.on('SIGTERM', () => {
  clearInterval(keepAlive);
  void post('/v3/lease/revoke', { ID: lease }, 2000)
    .catch(() => undefined)
    .then(() => process.exit(0));
});

// Campaign blocks until this candidate leads. A request that ends without an answer (an HTTP timeout) is
// sent again with the same lease: the server reuses the candidate's key `name/<lease>`, so the place in
// line is kept. Bounded: the bench stops every candidate long before 50 ten-minute waits.
for (let attempt = 0; attempt < 50; attempt++) {
  try {
    const r = await post<{ leader?: { rev?: string } }>(
      '/v3/election/campaign',
      { name: b64(process.env.ELECTION!), lease, value: b64(process.env.NODE_ID!) },
      600_000,
    );
    process.send?.({ type: 'elected', at: now(), rev: r.leader?.rev });
    break;
  } catch (err) {
    process.stderr.write(`campaign: ${(err as Error).message}\n`);
    await new Promise((res) => setTimeout(res, 200));
  }
}
