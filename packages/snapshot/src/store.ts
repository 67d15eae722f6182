import {
  closeSync,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  createReadStream,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import { Objm, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import { jetstreamManager } from '@nats-io/jetstream';
import { isStreamNotFound, resourceNames, realClock, type Clock } from '@gc/core';
import { PageHashes, checkIntegrity, formatChecksum, headerPageSize, pageHash } from '@gc/sqlite';
import { SnapshotCorruptError, SnapshotNotFoundError } from './errors.js';
import type {
  RestoreOptions,
  SnapshotInfo,
  SnapshotPosition,
  SnapshotProgress,
  SnapshotRetention,
  SnapshotStore,
  SnapshotStoreOptions,
} from './types.js';

/** Defaults of {@link SnapshotStoreOptions} (platform and app have none). */
export function defaultSnapshotStoreOptions(): Omit<SnapshotStoreOptions, 'platform' | 'app'> {
  return { replicas: 1, chunkSizeBytes: 1 << 20 };
}

/** Defaults of {@link SnapshotRetention}: keep 3, at most 7 days old. */
export function defaultSnapshotRetention(): SnapshotRetention {
  return { keepCount: 3, maxAgeMs: 7 * 24 * 3600 * 1000 };
}

/** Object name of the snapshot at `txid`. Zero-padded so names sort by txid. */
export function snapshotName(txid: number): string {
  return `snap-${String(txid).padStart(16, '0')}`;
}

/** Incremental page hashing of a byte stream that is a database file. */
class StreamHasher {
  readonly hashes = new PageHashes();
  #pageSize = 0;
  #buf: Buffer = Buffer.alloc(0);
  #pgno = 1;
  #bytes = 0;
  constructor(readonly what: string) {}
  get bytes(): number {
    return this.#bytes;
  }
  get pageSize(): number {
    return this.#pageSize;
  }
  push(chunk: Uint8Array): void {
    this.#bytes += chunk.length;
    // Hash whole pages straight from the chunk; copy only a partial page left over.
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#buf.length) data = Buffer.concat([this.#buf, data]);
    if (this.#pageSize === 0) {
      if (data.length < 100) {
        this.#buf = Buffer.from(data);
        return;
      }
      this.#pageSize = headerPageSize(data, this.what);
    }
    let off = 0;
    while (data.length - off >= this.#pageSize) {
      this.hashes.set(
        this.#pgno,
        pageHash(this.#pgno, data.subarray(off, off + this.#pageSize), this.#pageSize),
      );
      this.#pgno++;
      off += this.#pageSize;
    }
    this.#buf = off < data.length ? Buffer.from(data.subarray(off)) : Buffer.alloc(0);
  }
  /** Final check: no partial page left. */
  finish(): void {
    if (this.#buf.length !== 0)
      throw new SnapshotCorruptError(this.what, `${this.#buf.length} trailing bytes are not a whole page`);
    this.hashes.resize(this.#pgno - 1);
  }
}

function toInfo(o: ObjectInfo, platform: string, app: string): SnapshotInfo | undefined {
  const m = o.metadata ?? {};
  const n = (k: string) => Number(m[k]);
  if (o.deleted || m['gc-platform'] !== platform || m['gc-app'] !== app) return undefined;
  const info: SnapshotInfo = {
    name: o.name,
    platform,
    app,
    txid: n('gc-txid'),
    seq: n('gc-seq'),
    epoch: n('gc-epoch'),
    checksum: m['gc-checksum'] ?? '',
    pageSizeBytes: n('gc-page-size'),
    pageCount: n('gc-page-count'),
    sizeBytes: o.size,
    createdAtMs: n('gc-created-ms'),
  };
  return Number.isSafeInteger(info.txid) && Number.isSafeInteger(info.seq) ? info : undefined;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

class SnapshotStoreImpl implements SnapshotStore {
  readonly bucket: string;
  readonly #os: ObjectStore;
  readonly #platform: string;
  readonly #app: string;
  readonly #clock: Clock;

  constructor(os: ObjectStore, bucket: string, platform: string, app: string, clock: Clock) {
    this.#os = os;
    this.bucket = bucket;
    this.#platform = platform;
    this.#app = app;
    this.#clock = clock;
  }

  async put(
    path: string,
    position: SnapshotPosition,
    opts: { onProgress?: (p: SnapshotProgress) => void } = {},
  ): Promise<SnapshotInfo> {
    const total = statSync(path).size;
    const name = snapshotName(position.txid);
    const hasher = new StreamHasher(path);
    const source = createReadStream(path, { highWaterMark: 1 << 20 });
    const rs = new ReadableStream<Uint8Array>({
      async start(controller) {
        try {
          for await (const chunk of source) {
            const c = chunk as Buffer;
            hasher.push(c);
            controller.enqueue(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
            opts.onProgress?.({ phase: 'upload', doneBytes: hasher.bytes, totalBytes: total });
          }
          hasher.finish();
          const got = formatChecksum(hasher.hashes.checksum);
          if (got !== position.checksum) {
            throw new SnapshotCorruptError(
              path,
              `its page checksum is ${got}, expected ${position.checksum} for txid ${position.txid}`,
            );
          }
          controller.close();
        } catch (err) {
          controller.error(err);
        }
      },
    });
    const created = this.#clock.wallNow();
    let o: ObjectInfo;
    try {
      o = await this.#os.put(
        {
          name,
          description: `gc snapshot of ${this.#platform}/${this.#app} at txid ${position.txid}`,
          metadata: {
            'gc-platform': this.#platform,
            'gc-app': this.#app,
            'gc-txid': String(position.txid),
            'gc-seq': String(position.seq),
            'gc-epoch': String(position.epoch),
            'gc-checksum': position.checksum,
            'gc-page-size': String(position.pageSizeBytes),
            'gc-page-count': String(position.pageCount),
            'gc-created-ms': String(created),
          },
        },
        rs,
      );
    } catch (err) {
      // Cleanup of the half-written snapshot: the upload's error is the one to report.
      await this.#os.delete(name).catch(() => undefined);
      if (err instanceof SnapshotCorruptError) throw err;
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof SnapshotCorruptError) throw cause;
      throw err;
    }
    const info = toInfo(o, this.#platform, this.#app);
    if (!info) throw new SnapshotCorruptError(name, 'its metadata did not round-trip');
    return info;
  }

  async list(): Promise<SnapshotInfo[]> {
    const all = await this.#os.list();
    return all
      .map((o) => toInfo(o, this.#platform, this.#app))
      .filter((x): x is SnapshotInfo => x !== undefined)
      .sort((a, b) => a.txid - b.txid);
  }

  async latest(): Promise<SnapshotInfo | undefined> {
    return (await this.list()).at(-1);
  }

  async restore(targetPath: string, opts: RestoreOptions = {}): Promise<SnapshotInfo> {
    const list = await this.list();
    const candidates = opts.name
      ? list.filter((s) => s.name === opts.name)
      : opts.fallback === false
        ? list.slice(-1)
        : list.slice().reverse();
    if (candidates.length === 0)
      throw new SnapshotNotFoundError(opts.name ?? `bucket ${this.bucket} is empty`);
    const errors: Error[] = [];
    for (const snap of candidates) {
      try {
        await this.#restoreOne(snap, targetPath, opts.onProgress);
        return snap;
      } catch (err) {
        if (
          !(err instanceof SnapshotCorruptError) &&
          !(err instanceof Error && err.name === 'IntegrityCheckError')
        )
          throw err;
        errors.push(err);
      }
    }
    throw new SnapshotCorruptError(
      candidates.map((c) => c.name).join(', '),
      `no snapshot verified (${errors.map((e) => e.message).join(' | ')})`,
      { cause: errors[0] },
    );
  }

  async #restoreOne(
    snap: SnapshotInfo,
    targetPath: string,
    onProgress?: (p: SnapshotProgress) => void,
  ): Promise<void> {
    const tmp = join(
      dirname(targetPath),
      `.${basename(targetPath)}.restore-${randomBytes(4).toString('hex')}`,
    );
    const fd = openSync(tmp, 'w');
    let ok = false;
    try {
      const r = await this.#os.get(snap.name);
      if (!r) throw new SnapshotNotFoundError(snap.name);
      const hasher = new StreamHasher(snap.name);
      let done = 0;
      try {
        const reader = r.data.getReader();
        for (;;) {
          const { value, done: end } = await reader.read();
          if (end) break;
          writeSync(fd, value);
          hasher.push(value);
          done += value.length;
          onProgress?.({ phase: 'restore', doneBytes: done, totalBytes: snap.sizeBytes });
        }
        const streamErr = await r.error;
        if (streamErr) throw streamErr;
        hasher.finish();
      } catch (err) {
        if (err instanceof SnapshotCorruptError) throw err;
        throw new SnapshotCorruptError(snap.name, `download failed verification: ${(err as Error).message}`, {
          cause: err,
        });
      }
      fsyncSync(fd);
      closeSync(fd);
      if (done !== snap.sizeBytes)
        throw new SnapshotCorruptError(snap.name, `it has ${done} bytes, metadata says ${snap.sizeBytes}`);
      const got = formatChecksum(hasher.hashes.checksum);
      if (got !== snap.checksum)
        throw new SnapshotCorruptError(snap.name, `page checksum ${got} != recorded ${snap.checksum}`);
      onProgress?.({ phase: 'verify', doneBytes: done, totalBytes: snap.sizeBytes });
      checkIntegrity(tmp);
      renameSync(tmp, targetPath);
      fsyncDir(dirname(targetPath));
      ok = true;
    } finally {
      try {
        closeSync(fd);
      } catch {
        // already closed after fsync
      }
      if (!ok) for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
    }
  }

  async delete(name: string): Promise<void> {
    await this.#os.delete(name);
  }

  async prune(
    retention: Partial<SnapshotRetention> = {},
  ): Promise<{ deleted: SnapshotInfo[]; oldestKept?: SnapshotInfo }> {
    const r = { ...defaultSnapshotRetention(), ...retention };
    const list = await this.list();
    const now = this.#clock.wallNow();
    const keep: SnapshotInfo[] = [];
    const deleted: SnapshotInfo[] = [];
    list.forEach((s, i) => {
      const newest = i === list.length - 1;
      const fromEnd = list.length - i;
      if (newest || (fromEnd <= r.keepCount && now - s.createdAtMs <= r.maxAgeMs)) keep.push(s);
      else deleted.push(s);
    });
    for (const s of deleted) await this.#os.delete(s.name);
    return { deleted, oldestKept: keep[0] };
  }
}

/**
 * Opens (creating if needed) the snapshot bucket `{platform}_{app}_snapshots`.
 *
 * @example
 * const store = await createSnapshotStore(nc, { platform: 'prod', app: 'orders' });
 * const info = await store.restore('/data/orders.db'); // newest snapshot that verifies
 */
export async function createSnapshotStore(
  nc: NatsConnection,
  options: Partial<SnapshotStoreOptions> & Pick<SnapshotStoreOptions, 'platform' | 'app'>,
  clock: Clock = realClock,
): Promise<SnapshotStore> {
  const o = { ...defaultSnapshotStoreOptions(), ...options };
  const names = resourceNames(o.platform).app(o.app);
  const os = await new Objm(nc).create(names.snapshots, {
    replicas: o.replicas,
    storage: 'file',
    description: `gc snapshots of ${names.platform}/${names.app}`,
  });
  return new SnapshotStoreImpl(os, names.snapshots, names.platform, names.app, clock);
}

/**
 * Opens the snapshot bucket of an app without creating it: undefined when it does not exist (a reader that
 * must not leave a bucket behind, such as a WAL primary looking for the history's tip).
 *
 * @example
 * const store = await openSnapshotStore(nc, { platform: 'prod', app: 'orders' });
 * console.log(store ? await store.latest() : 'no snapshots');
 */
export async function openSnapshotStore(
  nc: NatsConnection,
  options: Pick<SnapshotStoreOptions, 'platform' | 'app'>,
  clock: Clock = realClock,
): Promise<SnapshotStore | undefined> {
  const names = resourceNames(options.platform).app(options.app);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(`OBJ_${names.snapshots}`);
  } catch (err) {
    if (isStreamNotFound(err)) return undefined;
    throw err;
  }
  const os = await new Objm(nc).open(names.snapshots, false);
  return new SnapshotStoreImpl(os, names.snapshots, names.platform, names.app, clock);
}
