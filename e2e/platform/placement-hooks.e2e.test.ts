// The placement hooks on platforms sharing one real nats-server: `onMigrationStart` refuses a move and the
// app stays (the node declares the refusal), lets it go later and `onMigrationComplete` names the new
// leader; a forced drain overrides a refusal; `onPlacementInvalid` is called once per unsatisfiable reason.
import { afterEach, describe, expect, it } from 'vitest';
import { fastElection, makeTempDir, sleep, waitFor } from '@gc/testkit';
import {
  createPlatform,
  openPlacementBucket,
  type App,
  type AppHooks,
  type AppOptions,
  type NodeDeclaration,
  type Platform,
} from '@gc/platform';
import { useServer } from '../test/server.js';

type Started = Parameters<AppHooks['onMigrationStart']>[0];
type Completed = Parameters<AppHooks['onMigrationComplete']>[0];
type Invalid = Parameters<AppHooks['onPlacementInvalid']>[0];

const nats = useServer({ connect: false });

const election = fastElection();

interface Node {
  id: string;
  p: Platform;
  app: App;
  /** What onMigrationStart answers: a refusal while set. */
  refuse: string | undefined;
  starts: Started[];
  /** When each onMigrationStart call came (performance.now()). */
  startedAt: number[];
  completes: Completed[];
  invalid: Invalid[];
}
let nodes: Node[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.p.close()));
  nodes = [];
});

/** Nodes `ids` of `platform`, each declaring app `name` with `o` and recording its placement hooks. */
async function cluster(
  platform: string,
  ids: string[],
  name: string,
  o: Partial<AppOptions>,
  refuse?: string,
): Promise<Node[]> {
  for (const id of ids) {
    const p = await createPlatform({
      name: platform,
      nodeId: id,
      nats: { servers: nats.server.url },
      dataDir: await makeTempDir(`placement-hooks-${id}`),
      http: false,
      heartbeatMs: 300,
    });
    const app = p.app(name, o);
    const n: Node = { id, p, app, refuse, starts: [], startedAt: [], completes: [], invalid: [] };
    app.on('onMigrationStart', (ctx) => {
      n.starts.push(ctx);
      n.startedAt.push(performance.now());
      return n.refuse !== undefined ? { refuse: n.refuse } : undefined;
    });
    app.on('onMigrationComplete', (ctx) => void n.completes.push(ctx));
    app.on('onPlacementInvalid', (ctx) => void n.invalid.push(ctx));
    nodes.push(n);
  }
  await Promise.all(nodes.map((n) => n.p.start()));
  return nodes;
}

const active = () => nodes.filter((n) => n.app.isActive()).map((n) => n.id);
const declaration = async (platform: string, node: string): Promise<NodeDeclaration | undefined> =>
  (await (await openPlacementBucket(nodes[0]!.p.nc, platform)).declarations()).get(node);

describe('placement hooks', () => {
  it('onMigrationStart refuses a move (declared as refused), then lets it go; onMigrationComplete names the new leader', async () => {
    await cluster('plh-move', ['n1', 'n2'], 'orders', { election, placement: {} }, 'nightly batch running');
    const from = await waitFor(() => (active().length === 1 ? active()[0] : undefined), {
      timeoutMs: 20_000,
      message: 'orders active on one node',
    });
    const leader = nodes.find((n) => n.id === from)!;
    const other = nodes.find((n) => n.id !== from)!;
    const control = nodes[0]!.p.placement();
    await waitFor(
      () =>
        control.move('orders', other.id, { reason: 'test' }).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 15_000, message: `the move to ${other.id} accepted (its standby ready)` },
    );

    // Asked before the hand-over: it refuses, the leader stays, and its declaration says why.
    const asked = await waitFor(() => leader.starts[0], { timeoutMs: 15_000, message: 'onMigrationStart' });
    expect(asked).toMatchObject({
      app: 'orders',
      nodeId: from,
      to: other.id,
      reason: 'moved',
      forced: false,
    });
    expect(asked.generation).toBeGreaterThan(0);
    await waitFor(
      async () => (await declaration('plh-move', from))?.refused?.orders === 'nightly batch running',
      { timeoutMs: 5_000, message: `decl.${from} refused.orders` },
    );
    await sleep(2_500);
    expect(active()).toEqual([from]);
    // Once per migration, not per gate tick (asked again only after 5 s while it refuses).
    expect(leader.starts).toHaveLength(1);
    expect(leader.completes).toEqual([]);
    expect(other.starts).toEqual([]);

    // The hook stops refusing: asked again, the lead goes, and the migration is reported done.
    leader.refuse = undefined;
    await waitFor(() => active().join() === other.id, {
      timeoutMs: 20_000,
      message: () => `orders on ${other.id} (active: ${active().join()})`,
    });
    const done = await waitFor(() => leader.completes[0], {
      timeoutMs: 10_000,
      message: 'onMigrationComplete',
    });
    expect(done).toMatchObject({
      app: 'orders',
      nodeId: from,
      from,
      to: other.id,
      reason: 'moved',
      result: 'completed',
    });
    expect(done.tookMs).toBeGreaterThanOrEqual(0);
    expect(done.tookMs).toBeLessThan(15_000);
    // Asked again by the retry (5 s after it refused), not by a gate tick.
    expect(leader.starts.length).toBeGreaterThanOrEqual(2);
    expect(leader.startedAt[1]! - leader.startedAt[0]!).toBeGreaterThan(4_500);
    await waitFor(async () => (await declaration('plh-move', from))?.refused === undefined, {
      timeoutMs: 5_000,
      message: `decl.${from} without refused`,
    });
    const wanted = [
      'placement.migration_refused',
      'placement.migration_start',
      'placement.migration_complete',
    ];
    await waitFor(
      async () => {
        const types = (await leader.p.audit.query({ app: 'orders', type: 'placement.>' })).map((r) => r.type);
        return wanted.every((t) => types.includes(t));
      },
      { timeoutMs: 5_000, message: `audit records ${wanted.join(', ')}` },
    );
  }, 60_000);

  it('a forced drain overrides a refusal of onMigrationStart', async () => {
    await cluster('plh-drain', ['n1', 'n2'], 'web', { mode: 'pool', placement: { maxNodes: 1 } }, 'busy');
    const from = await waitFor(() => (active().length === 1 ? active()[0] : undefined), {
      timeoutMs: 20_000,
      message: 'web active on one node',
    });
    const drained = nodes.find((n) => n.id === from)!;
    const other = nodes.find((n) => n.id !== from)!;
    await waitFor(async () => (await declaration('plh-drain', from))?.active?.includes('web'), {
      timeoutMs: 10_000,
      message: `${from} declares web active`,
    });

    await nodes[0]!.p.placement().drain(from, { deadlineMs: 8_000, reason: 'kernel upgrade' });
    // The replacement starts; the drained instance is asked to leave, refuses and stays (declared).
    const asked = await waitFor(() => drained.starts[0], {
      timeoutMs: 8_000,
      message: 'onMigrationStart on the drained node',
    });
    expect(asked).toMatchObject({ app: 'web', nodeId: from, reason: 'drain', forced: false });
    expect(asked.to).toBeUndefined();
    await waitFor(async () => (await declaration('plh-drain', from))?.refused?.web === 'busy', {
      timeoutMs: 5_000,
      message: `decl.${from} refused.web`,
    });
    expect(active()).toEqual([drained.id, other.id].sort());

    // The deadline passes: asked once more with forced, the refusal is overridden and the instance stops.
    await waitFor(() => !active().includes(from), {
      timeoutMs: 25_000,
      message: () => `web off ${from} after the deadline (active: ${active().join()})`,
    });
    expect(active()).toEqual([other.id]);
    expect(drained.starts.at(-1)).toMatchObject({ reason: 'drain', forced: true });
    const done = await waitFor(() => drained.completes[0], {
      timeoutMs: 5_000,
      message: 'onMigrationComplete',
    });
    expect(done).toMatchObject({ from, reason: 'drain', result: 'completed' });
    await waitFor(async () => (await declaration('plh-drain', from))?.refused === undefined, {
      timeoutMs: 5_000,
      message: `decl.${from} without refused`,
    });
    const overridden = await waitFor(
      async () => (await drained.p.audit.query({ app: 'web', type: 'placement.migration_overridden' }))[0],
      { timeoutMs: 5_000, message: 'the placement.migration_overridden audit record' },
    );
    expect(overridden.data).toMatchObject({ refused: 'busy', forced: true });
  }, 60_000);

  it('onPlacementInvalid is called once per unsatisfiable reason on every node declaring the app', async () => {
    await cluster('plh-invalid', ['n1', 'n2'], 'gpu', { mode: 'pool', placement: { onLabel: 'gpu=yes' } });
    await waitFor(() => nodes.every((n) => n.invalid.length === 1), {
      timeoutMs: 15_000,
      message: 'onPlacementInvalid on both nodes',
    });
    for (const n of nodes) {
      expect(n.invalid[0]).toMatchObject({ app: 'gpu', nodeId: n.id, constraint: 'onLabel' });
      expect(n.invalid[0]!.reason).toMatch(/gpu=yes/);
    }
    // Not per decision or tick: still once after a few seconds.
    await sleep(2_500);
    expect(nodes.map((n) => n.invalid.length)).toEqual([1, 1]);

    // Placeable again: nothing is called; unsatisfiable once more: called again.
    await nodes[0]!.p.setLabels({ gpu: 'yes' });
    await waitFor(() => active().join() === 'n1', { timeoutMs: 15_000, message: 'gpu active on n1' });
    expect(nodes.map((n) => n.invalid.length)).toEqual([1, 1]);
    await nodes[0]!.p.setLabels({});
    await waitFor(() => nodes.every((n) => n.invalid.length === 2), {
      timeoutMs: 15_000,
      message: 'onPlacementInvalid again on both nodes',
    });
    expect(nodes.flatMap((n) => n.starts)).toEqual([]); // unsatisfiable: the app is left where it is
  }, 60_000);
});
