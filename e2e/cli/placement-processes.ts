// Helpers of placement-processes.e2e.test.ts: a platform of real `gc run` node processes (the built binary)
// on one nats-server, the `gc` CLI against it, and a recorder of every write of the scheduler's decision
// (the fenced `state` key of `{platform}_placement`), with the fence's invariant over that history.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeFenced } from '@gc/core';
import {
  openPlacementBucket,
  type NodeDeclaration,
  type PlacementBucket,
  type PlacementState,
} from '@gc/platform';
import { spawnNode, waitFor, type ChildNode } from '@gc/testkit';

const bin = fileURLToPath(new URL('../../apps/cli/bin/run.js', import.meta.url));

/** What a `gc` command did. */
export interface GcResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `gc` binary with `args`; never rejects (a failure is in `code`). */
export function gcCli(args: string[], timeoutMs = 30_000): Promise<GcResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** One write of the `state` key, as a watch from the test saw it. */
export interface StateWrite {
  /** KV revision (stream sequence) of the write. */
  revision: number;
  /** The epoch in the fenced record's prefix (what the server-side fence compared). */
  fencedEpoch: number;
  /** The decision, or undefined when the record is a deletion or does not parse. */
  state: PlacementState | undefined;
  /** Test-clock ms when the watch delivered it. */
  seenAt: number;
}

/**
 * The fence's invariant over every write of `state`, in revision order: the epoch (the record's and the
 * decision's, which must agree) never decreases, the generation strictly increases, one epoch belongs to one
 * scheduler, and every write is a decision. Returns the violations (empty when it holds), each naming the
 * two writes.
 */
export function fenceViolations(writes: readonly StateWrite[]): string[] {
  const out: string[] = [];
  const owner = new Map<number, string>();
  const show = (w: StateWrite) =>
    `rev ${w.revision} (record epoch ${w.fencedEpoch}, ${
      w.state
        ? `scheduler ${w.state.scheduler} epoch ${w.state.epoch} generation ${w.state.generation}`
        : 'no decision'
    })`;
  let prev: StateWrite | undefined;
  for (const w of writes) {
    if (!w.state) out.push(`${show(w)} is not a decision`);
    else {
      if (w.state.epoch !== w.fencedEpoch) out.push(`${show(w)}: the decision's epoch is not the record's`);
      const o = owner.get(w.state.epoch);
      if (o !== undefined && o !== w.state.scheduler)
        out.push(`${show(w)}: epoch ${w.state.epoch} was already ${o}'s`);
      owner.set(w.state.epoch, w.state.scheduler);
    }
    if (prev) {
      if (w.revision <= prev.revision) out.push(`${show(w)} after ${show(prev)}: revisions out of order`);
      if (w.fencedEpoch < prev.fencedEpoch) out.push(`${show(w)} after ${show(prev)}: the epoch went back`);
      if (w.state && prev.state && w.state.generation <= prev.state.generation)
        out.push(`${show(w)} after ${show(prev)}: the generation did not increase`);
    }
    prev = w;
  }
  return out;
}

/** One declaration of a node, as the watch saw it. */
export interface DeclSeen {
  node: string;
  /** Apps the node declared active. */
  active: string[];
  /** Wall-clock ms (`Date.now()`) when the watch delivered it: the nodes' and the schedulers' clock. */
  at: number;
}

/** A `gc run` node process. */
export interface GcNode {
  id: string;
  child: ChildNode;
  /** True between {@link ProcessPlatform.stop} and {@link ProcessPlatform.cont}. */
  stopped: boolean;
}

/** Options of {@link startProcessPlatform}. */
export interface ProcessPlatformOptions {
  /** Platform name (one per test: the buckets are its own). */
  platform: string;
  /** nats-server URL. */
  url: string;
  /** Temporary directory for configs and data. */
  dir: string;
  /** Node id → labels. */
  nodes: Record<string, Record<string, string>>;
  /** The `apps:` block of every node's gc.yaml (indented by two spaces). */
  apps: string;
  /** More top-level keys of every node's gc.yaml (e.g. `migrations: { cooldownMs: 0 }`). */
  config?: string;
}

/** Real node processes of one platform, the CLI against them, and the recorded history of `state`. */
export class ProcessPlatform {
  readonly platform: string;
  readonly nodes = new Map<string, GcNode>();
  /** Every write of `state` since before the first node started, in the order the watch delivered them. */
  readonly writes: StateWrite[];
  /** App → every node whose declaration ever said it ran the app (from a watch of `decl.>`). */
  readonly everActive: Map<string, Set<string>>;
  /** What the watch saw, in order (`+1234ms decl.n2 PUT active=web`), for the messages of failed waits. */
  readonly timeline: string[];
  /** Every declaration the watch saw, in order, with when (wall clock). */
  readonly declLog: DeclSeen[];
  readonly #o: ProcessPlatformOptions;
  /** Node id → its configured labels (the ones given at start and to {@link ProcessPlatform.addNode}). */
  readonly #labels: Map<string, Record<string, string>>;
  readonly #nc: NatsConnection;
  readonly #bucket: PlacementBucket;
  readonly #stopWatch: () => void;
  readonly #watching: Promise<void>;

  private constructor(
    o: ProcessPlatformOptions,
    nc: NatsConnection,
    bucket: PlacementBucket,
    writes: StateWrite[],
    everActive: Map<string, Set<string>>,
    timeline: string[],
    declLog: DeclSeen[],
    stopWatch: () => void,
    watching: Promise<void>,
  ) {
    this.writes = writes;
    this.everActive = everActive;
    this.timeline = timeline;
    this.declLog = declLog;
    this.#o = o;
    this.#labels = new Map(Object.entries(o.nodes));
    this.platform = o.platform;
    this.#nc = nc;
    this.#bucket = bucket;
    this.#stopWatch = stopWatch;
    this.#watching = watching;
  }

  /** Opens the placement bucket, watches `state`, then starts every node and waits until each runs. */
  static async start(o: ProcessPlatformOptions): Promise<ProcessPlatform> {
    const nc = await connect({ servers: o.url, name: `placement-processes-${o.platform}` });
    // The bucket as the nodes create it (history 1): the watch then sees every write from the first one.
    const bucket = await openPlacementBucket(nc, o.platform);
    const watch = await bucket.kv.watch({ key: ['state', 'decl.>'] });
    const writes: StateWrite[] = [];
    const everActive = new Map<string, Set<string>>();
    const timeline: string[] = [];
    const declLog: DeclSeen[] = [];
    const t0 = performance.now();
    const at = () => `+${Math.round(performance.now() - t0)}ms`;
    const watching = (async () => {
      for await (const e of watch) {
        if (e.key.startsWith('decl.')) {
          if (e.operation !== 'PUT') {
            timeline.push(`${at()} ${e.key} ${e.operation}`);
            continue;
          }
          const d = parseJson(e.value) as Partial<NodeDeclaration> | undefined;
          timeline.push(`${at()} ${e.key} active=${(d?.active ?? []).join(',')}`);
          const active = Array.isArray(d?.active) ? d.active : [];
          declLog.push({ node: e.key.slice('decl.'.length), active, at: Date.now() });
          for (const app of active) {
            const on = everActive.get(app) ?? new Set<string>();
            everActive.set(app, on.add(e.key.slice('decl.'.length)));
          }
          continue;
        }
        const f = e.operation === 'PUT' ? decodeFenced(e.value) : undefined;
        const state = f && !f.deleted ? asState(parseJson(f.value)) : undefined;
        writes.push({ revision: e.revision, fencedEpoch: f?.epoch ?? 0, state, seenAt: performance.now() });
        timeline.push(
          `${at()} state ${state ? `${state.scheduler}@${state.epoch}#${state.generation} nodes=${state.nodes.join(',')}` : e.operation}`,
        );
      }
    })();
    const p = new ProcessPlatform(
      o,
      nc,
      bucket,
      writes,
      everActive,
      timeline,
      declLog,
      () => watch.stop(),
      watching,
    );
    try {
      await Promise.all(Object.keys(o.nodes).map((id) => p.#spawn(id)));
    } catch (err) {
      await p.close();
      throw err;
    }
    return p;
  }

  /**
   * Starts one more node process (same apps and settings, these labels) and waits until it runs; it joins
   * the platform like a machine added later.
   */
  async addNode(id: string, labels: Record<string, string>): Promise<GcNode> {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists already`);
    this.#labels.set(id, labels);
    this.timeline.push(`start ${id}`);
    await this.#spawn(id);
    return this.node(id);
  }

  async #spawn(id: string): Promise<void> {
    const file = join(this.#o.dir, `${this.platform}-${id}.yaml`);
    const labels = Object.entries(this.#labels.get(id)!)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    writeFileSync(
      file,
      `platform: ${this.platform}
node: { id: ${id}, labels: { ${labels} } }
nats: { servers: [${this.#o.url}] }
http: { port: 0 }
dataDir: ${join(this.#o.dir, `${this.platform}-${id}-data`)}
log: { level: warn }
${this.#o.config ?? ''}
apps:
${this.#o.apps}`,
    );
    const child = spawnNode(bin, { args: ['run', '-c', file], label: `gc-run-${this.platform}-${id}` });
    this.nodes.set(id, { id, child, stopped: false });
    await waitFor(() => child.output().includes('is running') || !child.running, {
      timeoutMs: 30_000,
      message: () => `node ${id} running\n${child.output()}`,
    });
    if (!child.running) throw new Error(`node ${id} exited at start:\n${child.output()}`);
  }

  /** `gc <args> --platform … --server …`. */
  gc(args: string[], timeoutMs?: number): Promise<GcResult> {
    return gcCli([...args, '--platform', this.platform, '--server', this.#o.url], timeoutMs);
  }

  /** `gc <args> --json …`: the parsed output; throws with the command's output when it failed. */
  async gcJson<T>(args: string[]): Promise<T> {
    const r = await this.gc([...args, '--json']);
    if (r.code !== 0) throw new Error(`gc ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  }

  /** The last decision the watch saw. */
  last(): PlacementState | undefined {
    return this.writes.at(-1)?.state;
  }

  /** Every node's declaration (what it says it runs), read from the bucket. */
  declarations(): Promise<Map<string, NodeDeclaration>> {
    return this.#bucket.declarations();
  }

  /** The placement bucket's KV (for a write the test makes itself). */
  get kv(): PlacementBucket['kv'] {
    return this.#bucket.kv;
  }

  /** Apps active on `node`, as its declaration says (none when it has no declaration). */
  async activeHere(node: string): Promise<string[]> {
    return [...((await this.declarations()).get(node)?.active ?? [])].sort();
  }

  /** Nodes where `app` is active, as their declarations say. */
  async activeOn(app: string): Promise<string[]> {
    return [...(await this.declarations())]
      .filter(([, d]) => d.active?.includes(app))
      .map(([n]) => n)
      .sort();
  }

  /** The node's HTTP base URL (/status, /metrics), as its start-up line printed it. */
  httpUrl(id: string): string {
    const m = /status at (http:\/\/\S+)\/status/.exec(this.node(id).child.output());
    if (!m) throw new Error(`node ${id} printed no status URL:\n${this.node(id).child.output()}`);
    return m[1]!;
  }

  /** The node's process. */
  node(id: string): GcNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** SIGSTOP to the node's process: it freezes with its connection open. */
  stop(id: string): void {
    const n = this.node(id);
    process.kill(n.child.pid, 'SIGSTOP');
    n.stopped = true;
    this.timeline.push(`SIGSTOP ${id}`);
  }

  /** SIGCONT after {@link ProcessPlatform.stop}. */
  cont(id: string): void {
    const n = this.node(id);
    process.kill(n.child.pid, 'SIGCONT');
    n.stopped = false;
    this.timeline.push(`SIGCONT ${id}`);
  }

  /** SIGKILL to the node's process; resolves once it exited. */
  async kill(id: string): Promise<void> {
    const n = this.node(id);
    if (n.stopped) this.cont(id);
    process.kill(n.child.pid, 'SIGKILL');
    this.timeline.push(`SIGKILL ${id}`);
    await n.child.exited;
  }

  /** Every node process ends (a stopped one is continued first), then the watch and the connection. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        if (!n.child.running) return;
        try {
          if (n.stopped) process.kill(n.child.pid, 'SIGCONT');
        } catch {
          // already gone
        }
        n.stopped = false;
        await n.child.kill('SIGKILL');
      }),
    );
    this.#stopWatch();
    await this.#watching.catch(() => undefined);
    await this.#nc.close().catch(() => undefined);
  }
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

/** The decision when `v` has its shape (the fields the checks read), else undefined. */
function asState(v: unknown): PlacementState | undefined {
  const s = v as Partial<PlacementState> | null;
  if (
    !s ||
    typeof s.scheduler !== 'string' ||
    !Number.isSafeInteger(s.epoch) ||
    !Number.isSafeInteger(s.generation) ||
    typeof s.placements !== 'object' ||
    typeof s.draining !== 'object'
  )
    return undefined;
  return s as PlacementState;
}

/** Starts a {@link ProcessPlatform}. */
export const startProcessPlatform = (o: ProcessPlatformOptions): Promise<ProcessPlatform> =>
  ProcessPlatform.start(o);
