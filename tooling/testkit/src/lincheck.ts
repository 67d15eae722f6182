// A linearizability checker (Wing & Gong's search with Lowe's memoization, as in Porcupine): given a
// history of operations with their invocation and response times and a sequential specification, it
// decides whether some order of the operations, consistent with real time, explains every response.
//
// An operation whose outcome is unknown (it timed out, the client died) is given `ret: Infinity`: it may
// have taken effect at any point after its call, or never (its output must then be `undefined` and the
// model must accept an unknown output for it).

/** One operation of a history. */
export interface Operation<In, Out> {
  /** Who issued it (for reports). */
  client: string;
  input: In;
  /** The response; `undefined` when unknown (timed out, crashed). */
  output: Out | undefined;
  /** Invocation time (any monotonic clock shared by every client, e.g. `process.hrtime`). */
  call: number;
  /** Response time; `Infinity` when the outcome is unknown. */
  ret: number;
}

/** A sequential specification. */
export interface Model<State, In, Out> {
  init(): State;
  /**
   * Applies `input` to `state`: `ok` when `output` is a response the object could have given in that
   * state (`output` is `undefined` for an operation with an unknown outcome: accept any), and the state
   * after it.
   */
  step(state: State, input: In, output: Out | undefined): { ok: boolean; state: State };
  /** A key identifying a state, for memoization (states with equal keys must behave alike). */
  key(state: State): string;
  /** Splits a history into independent parts (e.g. per KV key); each is checked on its own. */
  partition?(history: Array<Operation<In, Out>>): Array<Array<Operation<In, Out>>>;
  /** How an operation shows in a report. */
  describe?(op: Operation<In, Out>): string;
}

/** Result of {@link checkLinearizable}. */
export interface LinearizabilityResult {
  ok: boolean;
  /** Operations checked and partitions. */
  operations: number;
  partitions: number;
  /** States explored (a measure of the search's work). */
  explored: number;
  /** When not ok: the partition that failed and the longest prefix that could be linearized. */
  counterexample?: { partition: number; linearized: string[]; stuckAt: string[] };
  /** True when the search stopped at `maxExplored` (inconclusive: reported as not ok). */
  gaveUp?: boolean;
}

interface Entry {
  id: number;
  isCall: boolean;
  time: number;
  match?: Entry; // call -> its return
  prev?: Entry;
  next?: Entry;
}

/**
 * Checks that `history` is linearizable with respect to `model`. Exponential in the worst case; bounded by
 * `maxExplored` states per partition (then `gaveUp`).
 *
 * @example
 * const r = checkLinearizable(history, registerModel(0));
 * expect(r.ok, JSON.stringify(r.counterexample)).toBe(true);
 */
export function checkLinearizable<S, I, O>(
  history: Array<Operation<I, O>>,
  model: Model<S, I, O>,
  opts: { maxExplored?: number } = {},
): LinearizabilityResult {
  const parts = model.partition ? model.partition(history) : [history];
  let explored = 0;
  for (let p = 0; p < parts.length; p++) {
    const r = checkPartition(parts[p]!, model, opts.maxExplored ?? 2_000_000);
    explored += r.explored;
    if (!r.ok)
      return {
        ok: false,
        operations: history.length,
        partitions: parts.length,
        explored,
        ...(r.gaveUp ? { gaveUp: true } : {}),
        counterexample: { partition: p, linearized: r.linearized, stuckAt: r.stuckAt },
      };
  }
  return { ok: true, operations: history.length, partitions: parts.length, explored };
}

function checkPartition<S, I, O>(
  ops: Array<Operation<I, O>>,
  model: Model<S, I, O>,
  maxExplored: number,
): { ok: boolean; explored: number; gaveUp: boolean; linearized: string[]; stuckAt: string[] } {
  const describe = (i: number) => (model.describe ? model.describe(ops[i]!) : JSON.stringify(ops[i]));
  // Events sorted by time; a call before a return at the same instant (they overlap).
  const events: Entry[] = [];
  ops.forEach((op, id) => {
    const call: Entry = { id, isCall: true, time: op.call };
    const ret: Entry = { id, isCall: false, time: op.ret };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Entry = { id: -1, isCall: false, time: -Infinity };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  const lift = (e: Entry) => {
    // Remove a call and its return from the list.
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const r = e.match!;
    r.prev!.next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (e: Entry) => {
    const r = e.match!;
    r.prev!.next = r;
    if (r.next) r.next.prev = r;
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };
  const linearized = new Uint8Array(ops.length);
  const cache = new Set<string>();
  const stack: Array<{ entry: Entry; state: S }> = [];
  let state = model.init();
  let entry = head.next;
  let explored = 0;
  let best: number[] = [];
  const key = () => `${model.key(state)}|${Buffer.from(linearized).toString('base64')}`;
  while (head.next) {
    if (++explored > maxExplored) {
      return { ok: false, explored, gaveUp: true, linearized: best.map(describe), stuckAt: [] };
    }
    if (entry && entry.isCall) {
      const op = ops[entry.id]!;
      const r = model.step(state, op.input, op.output);
      let advanced = false;
      if (r.ok) {
        linearized[entry.id] = 1;
        const prevState = state;
        state = r.state;
        const k = key();
        if (!cache.has(k)) {
          cache.add(k);
          stack.push({ entry, state: prevState });
          lift(entry);
          entry = head.next;
          advanced = true;
          if (stack.length > best.length) best = stack.map((s) => s.entry.id);
        } else {
          linearized[entry.id] = 0;
          state = prevState;
        }
      }
      if (!advanced) entry = entry.next;
    } else {
      // A return reached before its call was linearized: backtrack.
      if (stack.length === 0) {
        const pending: string[] = [];
        for (let e: Entry | undefined = head.next; e; e = e.next) if (e.isCall) pending.push(describe(e.id));
        return {
          ok: false,
          explored,
          gaveUp: false,
          linearized: best.map(describe),
          stuckAt: pending.slice(0, 8),
        };
      }
      const top = stack.pop()!;
      state = top.state;
      linearized[top.entry.id] = 0;
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { ok: true, explored, gaveUp: false, linearized: [], stuckAt: [] };
}

// ---- models ----

/** Register operations: read, write, compare-and-set. */
export type RegisterInput<V> =
  { op: 'read' } | { op: 'write'; value: V } | { op: 'cas'; expect: V; value: V };
/** Register outputs: the value read, or whether a CAS succeeded (writes: true). */
export type RegisterOutput<V> = { value: V } | { ok: boolean };

/** A single register (read / write / cas), e.g. one NATS KV key read with `get` and written with `update`. */
export function registerModel<V>(initial: V): Model<V, RegisterInput<V>, RegisterOutput<V>> {
  return {
    init: () => initial,
    key: (s) => JSON.stringify(s),
    step(state, input, output) {
      if (input.op === 'read') {
        if (output === undefined) return { ok: true, state };
        return { ok: 'value' in output && JSON.stringify(output.value) === JSON.stringify(state), state };
      }
      if (input.op === 'write') return { ok: true, state: input.value };
      const match = JSON.stringify(state) === JSON.stringify(input.expect);
      if (output === undefined) return { ok: true, state: match ? input.value : state };
      const ok = 'ok' in output ? output.ok : false;
      return ok === match ? { ok: true, state: match ? input.value : state } : { ok: false, state };
    },
    describe: (o) => `${o.client}:${JSON.stringify(o.input)}→${JSON.stringify(o.output)}`,
  };
}

/** A lock (lease) with fencing epochs: acquire answers with the epoch granted, release with whether it held. */
export type LockInput = { op: 'acquire'; owner: string } | { op: 'release'; owner: string; epoch: number };
export type LockOutput = { granted: boolean; epoch?: number } | { released: boolean };

/**
 * A lock: at most one holder; every grant's epoch is higher than every earlier grant's; a release by the
 * holder frees it. Expiry (a holder that died) is modelled as an implicit release that may happen at any
 * time: pass `expiry: true` to allow a grant while someone holds it only when the holder's lease could
 * have expired — the checker then only enforces epoch monotonicity for grants.
 */
export function lockModel(
  opts: { expiry?: boolean } = {},
): Model<{ holder: string | null; epoch: number }, LockInput, LockOutput> {
  return {
    init: () => ({ holder: null, epoch: 0 }),
    key: (s) => `${s.holder ?? ''}@${s.epoch}`,
    step(state, input, output) {
      if (input.op === 'acquire') {
        const granted = output && 'granted' in output ? output.granted : undefined;
        if (granted === false) return { ok: state.holder !== null || !!opts.expiry, state };
        if (state.holder !== null && !opts.expiry) return { ok: granted === undefined, state };
        const epoch =
          output && 'epoch' in output && output.epoch !== undefined ? output.epoch : state.epoch + 1;
        if (epoch <= state.epoch) return { ok: granted === undefined, state };
        return { ok: true, state: { holder: input.owner, epoch } };
      }
      const released = output && 'released' in output ? output.released : undefined;
      const holds = state.holder === input.owner && state.epoch === input.epoch;
      if (released === undefined)
        return { ok: true, state: holds ? { holder: null, epoch: state.epoch } : state };
      if (released !== holds) return { ok: false, state };
      return { ok: true, state: holds ? { holder: null, epoch: state.epoch } : state };
    },
    describe: (o) => `${o.client}:${JSON.stringify(o.input)}→${JSON.stringify(o.output)}`,
  };
}

/** KV operations on many keys (checked key by key). */
export type KvInput =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'create'; key: string; value: string }
  | { op: 'update'; key: string; value: string; revision: number };
/** KV outputs: a get's value and revision (null when absent), a write's new revision or its failure. */
export type KvOutput =
  { value: string | null; revision: number } | { ok: true; revision: number } | { ok: false };

/** The state of one KV key in {@link kvModel}. */
export interface KvKeyState {
  value: string | null;
  /** The key's last revision; when not `known`, only that it is above `revision`. */
  revision: number;
  known: boolean;
}

/**
 * NATS KV semantics per key: `create` succeeds only when the key is absent, `update` only when the
 * revision matches the key's last one, `get` returns the last value and revision. Revisions come from the
 * stream (increasing, shared by all keys), so a write's revision is taken from its response; a write whose
 * outcome is unknown leaves the revision unknown (above the previous one) until a read or a write shows it.
 */
export function kvModel(): Model<KvKeyState, KvInput, KvOutput> {
  const sameRev = (s: KvKeyState, r: number) => (s.known ? s.revision === r : r > s.revision);
  return {
    init: () => ({ value: null, revision: 0, known: true }),
    key: (s) => `${s.known ? '' : '>'}${s.revision}:${s.value ?? ''}`,
    partition: (h) => {
      const by = new Map<string, Array<Operation<KvInput, KvOutput>>>();
      for (const o of h) by.set(o.input.key, [...(by.get(o.input.key) ?? []), o]);
      return [...by.values()];
    },
    step(state, input, output) {
      if (input.op === 'get') {
        if (output === undefined) return { ok: true, state };
        if (!('value' in output) || output.value !== state.value) return { ok: false, state };
        if (state.value === null && output.revision === 0) return { ok: true, state };
        if (!sameRev(state, output.revision)) return { ok: false, state };
        return { ok: true, state: { value: state.value, revision: output.revision, known: true } };
      }
      // Whether the write may succeed here (unknown revision: an update may match it).
      const may =
        input.op === 'put' ||
        (input.op === 'create' && state.value === null) ||
        (input.op === 'update' && sameRev(state, input.revision));
      const must =
        input.op === 'put' ||
        (input.op === 'create' && state.value === null) ||
        (input.op === 'update' && state.known && state.revision === input.revision);
      if (output === undefined) {
        // Took effect or not: the model is a set of possibilities only in the search, so choose "took
        // effect" when it may (a later read that shows otherwise makes the search try the other branch by
        // ordering this operation last, which is allowed for an operation that never returned).
        return may
          ? { ok: true, state: { value: input.value, revision: state.revision, known: false } }
          : { ok: true, state };
      }
      if (!('ok' in output)) return { ok: false, state };
      if (!output.ok) return { ok: !must, state };
      if (!may || output.revision <= state.revision) return { ok: false, state };
      return { ok: true, state: { value: input.value, revision: output.revision, known: true } };
    },
    describe: (o) => `${o.client}:${JSON.stringify(o.input)}→${JSON.stringify(o.output)}`,
  };
}

/** A fenced register: writes carry an epoch and are refused when a higher epoch already wrote. */
export type FencedInput = { op: 'read' } | { op: 'write'; epoch: number; value: string };
export type FencedOutput = { value: string | null; epoch: number } | { ok: boolean };

/**
 * The register behind `fencedKv` (and any resource that refuses a lower epoch): a write with an epoch below
 * the highest that wrote is refused; equal or higher is applied; a read returns the last value and its
 * epoch.
 */
export function fencedRegisterModel(): Model<
  { value: string | null; epoch: number },
  FencedInput,
  FencedOutput
> {
  return {
    init: () => ({ value: null, epoch: 0 }),
    key: (s) => `${s.epoch}:${s.value ?? ''}`,
    step(state, input, output) {
      if (input.op === 'read') {
        if (output === undefined) return { ok: true, state };
        return {
          ok: 'value' in output && output.value === state.value && output.epoch === state.epoch,
          state,
        };
      }
      const applies = input.epoch >= state.epoch;
      const next = applies ? { value: input.value, epoch: input.epoch } : state;
      if (output === undefined) return { ok: true, state: next };
      if (!('ok' in output)) return { ok: false, state };
      return output.ok === applies ? { ok: true, state: next } : { ok: false, state };
    },
    describe: (o) => `${o.client}:${JSON.stringify(o.input)}→${JSON.stringify(o.output)}`,
  };
}
