// Worker-thread entry of a primary whose capture engine runs off the application's thread (see
// `PrimaryOptions.worker`): connects to NATS on its own, runs the WAL capture, checkpoints and publishing,
// and answers the facade's requests. The application keeps its database connection and its commits.
import { parentPort, workerData } from 'node:worker_threads';
import {
  connect,
  createLogger,
  exposedGc,
  realClock,
  startIdleGc,
  type LogFields,
  type Logger,
  type LogLevel,
} from '@gc/core';
import type { NatsConnection } from '@nats-io/nats-core';
import { defaultPrimaryOptions } from '../primary.js';
import { startPrimaryEngine } from '../primary/engine.js';
import type { Primary, PrimaryEvent } from '../types.js';
import { borrowWriteLock } from './write-lock.js';
import {
  toWireError,
  toWireEvent,
  type FromWorker,
  type ToWorker,
  type WireEvent,
  type WorkerStart,
} from './protocol.js';

/** How long the engine waits for the app's thread to lend the write lock (see `write-lock.ts`). */
const LEND_WAIT_MS = 1000;

const port = parentPort!;
const start = workerData as WorkerStart;
// This thread has its own V8 heap: when the process keeps its heap compact while idle (the `gc` daemon's
// idle collections, or `--expose-gc`), this one is kept compact too (the timer does not hold the thread).
const gcFn = exposedGc();
if (gcFn) startIdleGc({ clock: realClock, gc: gcFn });
const post = (m: FromWorker) => port.postMessage(m);

/** A logger whose lines go to the facade's logger on the application's thread. */
function forwardingLogger(level: LogLevel, bindings: LogFields = {}): Logger {
  const base = createLogger({ level, sink: { write: () => undefined } });
  const line =
    (l: 'trace' | 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: LogFields): void => {
      if (base.isEnabled(l)) post({ type: 'log', level: l, msg, fields: { ...bindings, ...fields } });
    };
  return {
    level: base.level,
    trace: line('trace'),
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (b) => forwardingLogger(level, { ...bindings, ...b }),
    isEnabled: (l) => base.isEnabled(l),
  };
}

let nc: NatsConnection | undefined;
let primary: Primary | undefined;
let pending: WireEvent[] = [];
let flushQueued = false;

// Events go out in batches, one message per turn of the worker's event loop, with the position after them;
// a reply first sends the events before it so that the facade sees them in order.
function flushEvents(): void {
  if (!pending.length || !primary) return;
  const events = pending;
  pending = [];
  post({ type: 'events', events, position: primary.position() });
}

function onEvent(e: PrimaryEvent): void {
  pending.push(toWireEvent(e));
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(() => {
    flushQueued = false;
    flushEvents();
  });
}

async function main(): Promise<void> {
  try {
    nc = await connect({ name: `gc-wal-${start.options.app}`, ...start.connect });
    const word = start.lockWord;
    primary = await startPrimaryEngine(
      nc,
      {
        ...defaultPrimaryOptions(),
        ...start.options,
        logger: forwardingLogger(start.logLevel as LogLevel),
        onEvent,
        worker: undefined,
      },
      // The app's thread answers between two of its tasks: give it longer than the lock's own budget (the
      // worker does not block meanwhile), or a busy or CPU-starved app thread would mean no checkpoint.
      (step, timeoutMs) =>
        borrowWriteLock(word, () => post({ type: 'lock' }), step, Math.max(timeoutMs, LEND_WAIT_MS)),
    );
    flushEvents(); // start-up events (`resync`): only the `onEvent` option's listener sees them
    post({ type: 'ready', position: primary.position() });
  } catch (err) {
    post({ type: 'failed', error: toWireError(err) });
    // Cleanup after a failed start: the failure was posted above.
    await nc?.close().catch(() => undefined);
    port.close();
    return;
  }
  const p = primary;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'tick') {
      p.captureNow();
      return;
    }
    void (async () => {
      try {
        let value: unknown;
        if (m.method === 'sync') value = await p.sync(m.arg as number | undefined);
        else if (m.method === 'checkpoint') value = await p.checkpoint();
        else if (m.method === 'snapshotTo') value = await p.snapshotTo(m.arg as string);
        else value = await p.stop(m.arg as number | undefined);
        flushEvents();
        post({ type: 'reply', id: m.id, ok: true, value, position: p.position() });
        if (m.method === 'stop') {
          // Closing after stop: its reply is already posted.
          await nc?.close().catch(() => undefined);
          port.close();
        }
      } catch (err) {
        flushEvents();
        post({ type: 'reply', id: m.id, ok: false, error: toWireError(err), position: p.position() });
      }
    })();
  });
}

void main();
