import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { parseSelector, plan, planDrain, schedule } from './index.js';
import type { PlacementApp, PlacementNode } from './index.js';

// The README's example runs here: the code between the markers below is the README's code block (with
// `log` for console.log and a relative import), checked line for line.
it('runs the README example', () => {
  const out: unknown[] = [];
  const log = (...v: unknown[]) => out.push(v.length === 1 ? v[0] : v);

  // README:start
  const nodes: PlacementNode[] = [
    { nodeId: 'n1', labels: { disk: 'ssd', zone: 'a' } },
    { nodeId: 'n2', labels: { disk: 'ssd', zone: 'b' } },
    { nodeId: 'n3', labels: { disk: 'hdd', zone: 'b' }, cordoned: true },
  ];
  const apps: PlacementApp[] = [
    { app: 'orders', mode: 'active-passive', placement: { onLabel: 'disk=ssd' } },
    {
      app: 'web',
      mode: 'pool',
      placement: { spread: { label: 'zone' }, awayFromApp: ['batch'] },
      budget: { minAvailable: 2 },
    },
    { app: 'batch', mode: 'pool', placement: { onLabel: 'gpu, arch in (x86,arm)' } },
  ];
  const first = schedule({ nodes, apps });
  log(first.placements);
  log(first.reasons.orders!.n3);
  log(first.unsatisfiable.batch!.message);

  // n1 loses its SSD: orders leaves it (its leader moves to n2), web stays where it is.
  const relabelled = nodes.map((n) => (n.nodeId === 'n1' ? { ...n, labels: { disk: 'hdd', zone: 'a' } } : n));
  const next = schedule({ nodes: relabelled, apps, current: first.placements });
  for (const c of plan(first.placements, next).changes)
    log(c.app, c.kind, c.from, c.to, c.leader, c.reasons[0]);

  // Drain n2: what may move now, and what blocks the rest.
  const drain = planDrain('n2', { nodes, apps, current: first.placements });
  log(drain.steps.map((s) => `${s.action} ${s.app} ${s.from} → ${s.to ?? 'nowhere'}`));
  log(drain.blocked.map((b) => b.message));
  log(parseSelector('zone in (a,b), !gpu').matches({ zone: 'a' }));
  // README:end

  expect(out).toEqual([
    { orders: { nodes: ['n1', 'n2'], leader: 'n1' }, web: { nodes: ['n1', 'n2'] } },
    { status: 'excluded', constraint: 'onLabel', detail: 'labels do not match "disk=ssd"' },
    'no node set satisfies app "batch": 3 of 3 node(s) fail onLabel "gpu, arch in (x86,arm)" (n1, n2, n3)',
    [
      'orders',
      'shrink',
      ['n1'],
      [],
      { from: 'n1', to: 'n2' },
      'n1: excluded by onLabel (labels do not match "disk=ssd")',
    ],
    ['stop orders n2 → nowhere'],
    [
      'app "web" (pool) blocks the drain of n2: stopping its instance on n2 (no other node can take it) leaves 1 of 2 available; its disruption budget minAvailable 2 (= 2) forbids that. Wait until more instances are available, add a node that qualifies, relax the budget, or let the drain deadline force it',
    ],
    true,
  ]);

  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
  const own = readFileSync(new URL(import.meta.url), 'utf8');
  const example = own
    .slice(own.indexOf('// README:start\n') + 16, own.indexOf('  // README:end'))
    .split('\n')
    .map((l) => l.slice(2))
    .join('\n')
    .replace(/\blog\(/g, 'console.log(');
  const header =
    "import { parseSelector, plan, planDrain, schedule } from '@gc/placement';\n" +
    "import type { PlacementApp, PlacementNode } from '@gc/placement';\n\n";
  expect(block).toBe(header + example);
});
