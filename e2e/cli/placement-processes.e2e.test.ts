// Issue 14: placement under process faults, on the real thing. Four `gc run` node processes (the built
// binary, one gc.yaml each, labels disk=ssd on n1 and n3, disk=hdd on n2 and n4) on a real nats-server,
// operated with the `gc` CLI; the faults are real signals to the node processes (SIGSTOP/SIGCONT, SIGKILL).
// The test watches every write of the scheduler's decision (the fenced `state` key of `{platform}_placement`)
// from before the first node starts, and checks over that whole history that it never goes back: the
// epoch never decreases and the generation strictly increases (a deposed scheduler's late write is fenced).
// The scheduler's own election is not configurable (ttlMs 3000 by default): a frozen or killed scheduler is
// replaced within about 3.5 s.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeFenced, fencedKv } from '@gc/core';
import type { AppWhere } from '@gc/platform';
import { makeTempDir, startServer, waitFor, type NatsServer } from '@gc/testkit';
import {
  fenceViolations,
  startProcessPlatform,
  type ProcessPlatform,
  type StateWrite,
} from './placement-processes.js';

const LABELS = {
  n1: { disk: 'ssd' },
  n2: { disk: 'hdd' },
  n3: { disk: 'ssd' },
  n4: { disk: 'hdd' },
};

/** `gc status --json`, the parts read here. */
interface StatusJson {
  nodes: Array<{ id: string; labels: Record<string, string> }>;
  apps: Array<{
    name: string;
    roles: Record<string, string>;
    placement?: Record<string, { placed: boolean; reason: string }>;
  }>;
}

let server: NatsServer;
let dir: string;
let current: ProcessPlatform | undefined;
beforeAll(async () => {
  server = await startServer();
  dir = await makeTempDir('placement-processes');
});
// Every node process ends, even after a failure (a SIGSTOPped one is continued first, then killed).
afterEach(async () => {
  const p = current;
  current = undefined;
  await p?.close();
});
afterAll(async () => {
  await server?.close();
});

async function platform(name: string, apps: string): Promise<ProcessPlatform> {
  current = await startProcessPlatform({ platform: name, url: server.url, dir, nodes: LABELS, apps });
  return current;
}

/** Waits until `check` returns a value, saying what it last saw on a timeout. */
async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<{ ok: T | undefined; seen: unknown }>,
): Promise<T> {
  let seen: unknown;
  return waitFor(
    async () => {
      const r = await check();
      seen = r.seen;
      return r.ok;
    },
    { timeoutMs, intervalMs: 100, message: () => `${what} (last seen: ${JSON.stringify(seen)})` },
  );
}

/** Where each app is active, as the nodes declare it. */
async function activeMap(p: ProcessPlatform, apps: string[]): Promise<Record<string, string[]>> {
  return Object.fromEntries(await Promise.all(apps.map(async (a) => [a, await p.activeOn(a)] as const)));
}

const summary = (w: StateWrite) =>
  w.state ? `${w.state.scheduler}@${w.state.epoch}#${w.state.generation}` : `rev ${w.revision}: no decision`;

describe('placement with gc run node processes under process faults', () => {
  it('places a disk=ssd app on n1 and n3 only, and keeps awayFromApp apps apart', async () => {
    const p = await platform(
      'plcproc-labels',
      `  ssd:
    mode: pool
    placement: { onLabel: disk=ssd }
  web:
    mode: pool
    placement: { maxNodes: 2 }
  batch:
    mode: pool
    placement: { awayFromApp: [web], maxNodes: 1 }
`,
    );
    const apps = ['ssd', 'web', 'batch'];
    const on = await until('ssd active on n1,n3, web on two nodes, batch on one', 20_000, async () => {
      const m = await activeMap(p, apps);
      return {
        ok: m.ssd!.join() === 'n1,n3' && m.web!.length === 2 && m.batch!.length === 1 ? m : undefined,
        seen: m,
      };
    });
    expect(
      on.web!.filter((n) => on.batch!.includes(n)),
      'web and batch on one node',
    ).toEqual([]);

    // The hdd nodes are excluded by the label. A decision made before one of them declared ssd (the nodes
    // start together) names the implicit onNodes at first; the next decision says the label.
    const ssd = await until('explain ssd: n2 and n4 excluded by onLabel', 10_000, async () => {
      const w = await p.gcJson<AppWhere>(['explain', 'ssd']);
      const byLabel = ['n2', 'n4'].every(
        (n) =>
          w.reasons[n]?.status === 'excluded' &&
          w.reasons[n]?.constraint === 'onLabel' &&
          /disk=ssd/.test(String(w.reasons[n]?.detail)),
      );
      return { ok: byLabel ? w : undefined, seen: w.reasons };
    });
    expect(ssd).toMatchObject({ app: 'ssd', placed: ['n1', 'n3'], active: ['n1', 'n3'] });
    // Anti-affinity holds both ways (batch is scheduled first, by name): web is kept off batch's node.
    const web = await p.gcJson<AppWhere>(['explain', 'web']);
    expect(web.placed).toEqual(on.web);
    expect(web.reasons[on.batch![0]!]).toMatchObject({ status: 'excluded', constraint: 'awayFromApp' });

    const status = await p.gcJson<StatusJson>(['status', '--timeout', '3000']);
    expect(status.nodes.map((n) => `${n.id}:${n.labels.disk}`).sort()).toEqual([
      'n1:ssd',
      'n2:hdd',
      'n3:ssd',
      'n4:hdd',
    ]);
    const ssdStatus = status.apps.find((a) => a.name === 'ssd')!;
    expect(
      Object.entries(ssdStatus.roles)
        .filter(([, r]) => r === 'active')
        .map(([n]) => n)
        .sort(),
    ).toEqual(['n1', 'n3']);
    expect(ssdStatus.placement?.n2).toMatchObject({
      placed: false,
      reason: expect.stringMatching(/disk=ssd/),
    });
    // Over the whole test, as the nodes declared it: the hdd nodes never ran ssd.
    expect([...(p.everActive.get('ssd') ?? [])].sort()).toEqual(['n1', 'n3']);
    expect(fenceViolations(p.writes), p.writes.map(summary).join(' ')).toEqual([]);
  });

  it('the scheduler SIGSTOPped across its election TTL: another node takes over with a higher epoch, a drain goes on, no write goes back', async () => {
    const p = await platform(
      'plcproc-stop',
      `  ssd:
    mode: pool
    placement: { onLabel: disk=ssd }
  web:
    mode: pool
    placement: { maxNodes: 2 }
  everywhere:
    mode: pool
    placement: {}
`,
    );
    const apps = ['ssd', 'web', 'everywhere'];
    await until('ssd on n1,n3, web on two nodes, everywhere on four', 20_000, async () => {
      const m = await activeMap(p, apps);
      return {
        ok: m.ssd!.join() === 'n1,n3' && m.web!.length === 2 && m.everywhere!.length === 4 ? m : undefined,
        seen: m,
      };
    });
    const before = p.last()!;
    const old = before.scheduler;
    // A node other than the scheduler, whose apps can all leave while the scheduler is frozen (ssd keeps a
    // node when the frozen one is the other ssd node).
    const drained = ['n1', 'n3'].includes(old) ? 'n2' : 'n1';
    const running = await p.activeHere(drained);
    expect(running, `apps on ${drained} before the drain`).toContain('everywhere');

    const stoppedAt = performance.now();
    p.stop(old);
    const drain = await p.gc([
      'node',
      'drain',
      drained,
      '--no-wait',
      '--deadline',
      '10m',
      '--reason',
      'scheduler frozen',
      '--timeout',
      '3000',
      '--json',
    ]);
    expect(drain.code, drain.stderr).toBe(0);
    expect(JSON.parse(drain.stdout)).toMatchObject({ node: drained, drained: false });

    // Another node is elected (after the frozen one's lease ran out), decides with a higher epoch, and the
    // drain empties the node while the old scheduler is still frozen.
    const next = await until(`a scheduler other than ${old} drains ${drained}`, 20_000, async () => {
      const s = p.last();
      return {
        ok: s && s.scheduler !== old && s.epoch > before.epoch && s.draining[drained] ? s : undefined,
        seen: s && { scheduler: s.scheduler, epoch: s.epoch, draining: s.draining },
      };
    });
    const tookOverMs = performance.now() - stoppedAt;
    await until(`${drained} empty, its drain reported done`, 20_000, async () => {
      const here = await p.activeHere(drained);
      const d = p.last()!.draining[drained];
      return { ok: here.length === 0 && d?.remaining.length === 0 ? true : undefined, seen: { here, d } };
    });
    expect(p.node(old).stopped).toBe(true);
    const drainedBy = p.last()!;
    expect(drainedBy.epoch).toBeGreaterThanOrEqual(next.epoch);
    expect(drainedBy.draining[drained]).toMatchObject({ remaining: [], forced: false });

    // The old scheduler comes back: it finds the lease taken (its epoch is the old one) and writes nothing.
    p.cont(old);
    const contAt = p.writes.length;
    // It runs again (answers on its status port).
    await until(`${old} answering again after SIGCONT`, 10_000, async () => {
      const r = await fetch(`${p.httpUrl(old)}/status`, { signal: AbortSignal.timeout(1000) });
      return { ok: r.ok || undefined, seen: r.status };
    });
    // It gets its apps back: it declares again at once when it finds its declaration removed while it was
    // frozen, and the scheduler keeps a fresh declaration of a node membership has not seen again yet.
    await until(`everywhere active on ${old} again`, 10_000, async () => {
      const m = await p.activeOn('everywhere');
      return { ok: m.includes(old) || undefined, seen: m };
    });
    // Time for a late write of its (a tick of the deposed scheduler would be 2 s).
    await new Promise((r) => setTimeout(r, 2500));
    // The invariant over every write of the test (a late write of the old scheduler breaks it).
    expect(fenceViolations(p.writes), p.writes.map(summary).join(' ')).toEqual([]);
    const after = p.writes.slice(contAt);
    expect(
      after.filter((w) => w.state?.scheduler === old),
      `writes by ${old} after SIGCONT: ${after.map(summary).join(' ')}`,
    ).toEqual([]);
    const metrics = await (await fetch(`${p.httpUrl(old)}/metrics`)).text();
    console.log(
      `placement-processes: ${old} frozen ${Math.round(tookOverMs)} ms until ${next.scheduler} took over (epoch ${before.epoch} → ${next.epoch}); writes: ${p.writes.map(summary).join(' ')}; ${old}'s decisions: ${
        metrics
          .split('\n')
          .filter((l) => l.startsWith('gc_placement_decisions_total'))
          .join(', ') || 'none'
      }`,
    );

    // A write with the old scheduler's epoch now is refused by the server-side fence: the key keeps the new one.
    const stale = fencedKv(p.kv, { epoch: () => before.epoch });
    await expect(stale.put('state', JSON.stringify(before))).rejects.toMatchObject({ code: 'GC_FENCED' });
    const kept = (await p.kv.get('state'))!;
    expect(decodeFenced(kept.value).epoch).toBeGreaterThanOrEqual(next.epoch);

    // The invariant still holds; and the check would catch the old scheduler's write landing late.
    expect(fenceViolations(p.writes), p.writes.map(summary).join(' ')).toEqual([]);
    const lateOld: StateWrite = {
      ...p.writes.find((w) => w.state?.scheduler === old && w.fencedEpoch === before.epoch)!,
      revision: kept.revision + 1,
    };
    expect(fenceViolations([...p.writes, lateOld])).not.toEqual([]);
  });

  it('the scheduler SIGKILLed while a budget holds a drain back: the next scheduler forces it after the deadline and the node ends empty', async () => {
    const p = await platform(
      'plcproc-kill',
      `  held:
    mode: pool
    placement: {}
    budget: { minAvailable: 4 }
  web:
    mode: pool
    placement: { maxNodes: 2 }
`,
    );
    const apps = ['held', 'web'];
    // The drain must start once every held instance is declared active: a drain decided earlier counts an
    // undeclared one as unavailable already, and may let another go without a block.
    await until('held on four nodes, web on two', 20_000, async () => {
      const m = await activeMap(p, apps);
      return { ok: m.held!.length === 4 && m.web!.length === 2 ? m : undefined, seen: m };
    });
    const victim = p.last()!.scheduler;
    // Another node, one that runs web if there is one (its instance is replaced before it stops).
    const web = await p.activeOn('web');
    const drained = web.find((n) => n !== victim) ?? ['n1', 'n2'].find((n) => n !== victim)!;
    const deadlineMs = 10_000;
    const drainStart = Date.now();
    // The operator's drain waits until the node is empty (the CLI polls the decision and the declarations).
    const drain = p.gc(
      [
        'node',
        'drain',
        drained,
        '--deadline',
        `${deadlineMs}ms`,
        '--grace',
        '40s',
        '--timeout',
        '3000',
        '--json',
      ],
      70_000,
    );
    const blocked = await until(`the drain of ${drained} blocked by held's budget`, 15_000, async () => {
      const s = p.last();
      const d = s?.draining[drained];
      return {
        ok: s && d && d.blocked.length > 0 && !d.forced ? s : undefined,
        seen: s && { scheduler: s.scheduler, draining: s.draining },
      };
    });
    expect(blocked.scheduler).toBe(victim);
    expect(blocked.draining[drained]!.blocked.join('\n')).toMatch(/held.*minAvailable 4/);
    expect(blocked.draining[drained]!.remaining).toContain('held');

    await p.kill(victim); // SIGKILL, mid-drain
    const killedAt = Date.now();
    expect(killedAt, 'the scheduler was killed before the drain deadline').toBeLessThan(
      drainStart + deadlineMs,
    );

    // The next scheduler takes the drain over and forces it once the deadline passed.
    const forced = await until(`the drain of ${drained} forced by the next scheduler`, 30_000, async () => {
      const w = p.writes.find((x) => x.state?.draining[drained]?.forced);
      const s = p.last();
      return { ok: w?.state, seen: s && { scheduler: s.scheduler, epoch: s.epoch, draining: s.draining } };
    });
    expect(forced.scheduler).not.toBe(victim);
    expect(forced.epoch).toBeGreaterThan(blocked.epoch);
    expect(forced.at).toBeGreaterThanOrEqual(drainStart + deadlineMs);
    await until(`${drained} empty`, 20_000, async () => {
      const here = await p.activeHere(drained);
      return { ok: here.length === 0 || undefined, seen: here };
    });

    const r = await drain;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      node: drained,
      drained: true,
      remaining: [],
      blocked: [],
      forced: true,
    });
    // gc status: no app is active on the drained node; held runs on the two nodes left.
    const status = await p.gcJson<StatusJson>(['status', '--timeout', '3000']);
    expect(
      status.apps.filter((a) => a.roles[drained] === 'active').map((a) => a.name),
      `apps active on ${drained}`,
    ).toEqual([]);
    const held = await p.gcJson<AppWhere>(['explain', 'held']);
    expect(held.placed).not.toContain(drained);
    expect(held.active).not.toContain(drained);
    expect(held.active).not.toContain(victim);
    expect(fenceViolations(p.writes), p.writes.map(summary).join(' ')).toEqual([]);
  });
});
